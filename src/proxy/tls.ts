/**
 * TLS material for the proxy: the certificates the data plane serves (checked, indexed by the
 * DNS names in their subjectAltName for SNI) and the CA files used to verify HTTPS upstreams.
 * Everything is read and checked up front, so a broken file is a located config problem and a
 * reload with a broken pair changes nothing (the old contexts keep serving).
 */
import {createPrivateKey, X509Certificate, type KeyObject} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createSecureContext, type SecureContext, type SecureVersion} from 'node:tls'

import {ConfigError, type ConfigProblem} from '../errors.js'

/** One certificate/key pair of `tls.certificates` (paths absolute once the config is parsed). */
export interface CertificatePair {
  readonly certFile: string
  readonly keyFile: string
}

/** The data-plane TLS settings (`tls:` in the config). */
export interface TlsSettings {
  readonly certificates: readonly CertificatePair[]
  readonly minVersion: SecureVersion
}

/** A certificate as loaded: the PEM text, what it covers and until when. */
export interface LoadedCertificate {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: string
  readonly key: string
  /** Lowercased DNS names from subjectAltName (the CN only when there is no DNS SAN, as old clients do). */
  readonly names: readonly string[]
  readonly notBefore: Date
  readonly notAfter: Date
  readonly fingerprint256: string
}

/** What a certificate file problem concerns, for located errors. */
export type CertificateField = 'certFile' | 'keyFile'

/** A certificate pair that cannot be served: the field at fault and why. */
export class CertificateProblem extends Error {
  constructor(
    readonly field: CertificateField,
    message: string,
    readonly suggestion: string,
  ) {
    super(message)
  }
}

/** Reads and checks one pair: both files readable, the cert parses, the key parses and matches it. Throws CertificateProblem. */
export function loadCertificate(pair: CertificatePair): LoadedCertificate {
  const cert = readText(pair.certFile, 'certFile')
  const key = readText(pair.keyFile, 'keyFile')
  let x509: X509Certificate
  try {
    // The first PEM block is the leaf; the rest of the file is its chain, sent as is.
    x509 = new X509Certificate(cert)
  } catch (error) {
    throw new CertificateProblem('certFile', `${pair.certFile}: not a PEM certificate (${(error as Error).message})`, 'Point certFile at a PEM file that starts with -----BEGIN CERTIFICATE----- (leaf first, then its chain).')
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(key)
  } catch (error) {
    throw new CertificateProblem('keyFile', `${pair.keyFile}: not an unencrypted PEM private key (${(error as Error).message})`, 'Point keyFile at the PEM private key of the certificate (encrypted keys are not supported).')
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CertificateProblem('keyFile', `${pair.keyFile}: this key does not belong to the certificate in ${pair.certFile}`, 'Use the key the certificate was issued for; after a rotation, replace both files.')
  }
  return {
    certFile: pair.certFile,
    keyFile: pair.keyFile,
    cert,
    key,
    names: certificateNames(x509),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    fingerprint256: x509.fingerprint256,
  }
}

function readText(file: string, field: CertificateField): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (error as Error).message
    throw new CertificateProblem(field, `${file}: cannot be read: ${why}`, `Check the ${field} path (relative paths are relative to the config file) and that the proxy may read it.`)
  }
}

/** DNS names a certificate is valid for: subjectAltName DNS entries; the subject CN only without any. */
export function certificateNames(x509: X509Certificate): string[] {
  const names: string[] = []
  // Node renders the SAN as `DNS:a.example, DNS:*.b.example, IP Address:127.0.0.1`.
  for (const entry of (x509.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) names.push(normaliseName(entry.slice(4)))
  }
  if (names.length > 0) return names
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1]
  return cn === undefined ? [] : [normaliseName(cn)]
}

function normaliseName(name: string): string {
  const lower = name.trim().toLowerCase()
  return lower.endsWith('.') ? lower.slice(0, -1) : lower
}

/**
 * True when `pattern` (a certificate name) covers `host`. A wildcard stands for exactly one whole
 * left-most label, as RFC 6125 §6.4.3 and browsers have it: `*.example.com` covers `a.example.com`
 * but neither `example.com` nor `a.b.example.com`.
 */
export function nameMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === host
  const dot = host.indexOf('.')
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2)
}

/** Warnings about a loaded certificate at `nowMs`: expired, not yet valid, no DNS name. */
export function certificateWarnings(certificate: LoadedCertificate, nowMs: number = Date.now()): string[] {
  const warnings: string[] = []
  if (certificate.notAfter.getTime() < nowMs) warnings.push(`${certificate.certFile}: certificate expired on ${certificate.notAfter.toISOString()}; clients will refuse it`)
  if (certificate.notBefore.getTime() > nowMs) warnings.push(`${certificate.certFile}: certificate is not valid before ${certificate.notBefore.toISOString()}`)
  if (certificate.names.length === 0) warnings.push(`${certificate.certFile}: certificate names no DNS host; it is only served as the default`)
  return warnings
}

/**
 * The certificates of one config generation with their secure contexts, and the SNI choice:
 * an exact name first, then a wildcard, then the first certificate listed (the default, also
 * served to clients that send no SNI, e.g. ones connecting to an IP address).
 */
export class CertificateStore {
  readonly certificates: readonly LoadedCertificate[]
  private readonly exact = new Map<string, SecureContext>()
  private readonly wildcard = new Map<string, SecureContext>()
  readonly defaultContext: SecureContext

  constructor(certificates: readonly LoadedCertificate[], minVersion: SecureVersion) {
    if (certificates.length === 0) throw new Error('CertificateStore needs at least one certificate')
    this.certificates = certificates
    const contexts = certificates.map((c) => createSecureContext({cert: c.cert, key: c.key, minVersion}))
    this.defaultContext = contexts[0]!
    certificates.forEach((certificate, i) => {
      for (const name of certificate.names) {
        // The first certificate listed for a name wins, like the order of the config.
        const table = name.startsWith('*.') ? this.wildcard : this.exact
        const key = name.startsWith('*.') ? name.slice(2) : name
        if (!table.has(key)) table.set(key, contexts[i]!)
      }
    })
  }

  /** The context for an SNI server name (any case, optional trailing dot). */
  contextFor(servername: string): SecureContext {
    const host = normaliseName(servername)
    const exact = this.exact.get(host)
    if (exact !== undefined) return exact
    const dot = host.indexOf('.')
    return (dot > 0 ? this.wildcard.get(host.slice(dot + 1)) : undefined) ?? this.defaultContext
  }

  /** The certificate a client asking for `servername` (or none) gets; for status and tests. */
  certificateFor(servername: string | undefined): LoadedCertificate {
    if (servername !== undefined) {
      const host = normaliseName(servername)
      for (const c of this.certificates) if (c.names.includes(host)) return c
      for (const c of this.certificates) if (c.names.some((n) => n.startsWith('*.') && nameMatches(n, host))) return c
    }
    return this.certificates[0]!
  }
}

/** Loads every pair of `settings`; throws ConfigError naming each pair at fault (nothing is half-loaded). */
export function loadCertificateStore(settings: TlsSettings, file: string): CertificateStore {
  const problems: ConfigProblem[] = []
  const loaded: LoadedCertificate[] = []
  settings.certificates.forEach((pair, i) => {
    try {
      loaded.push(loadCertificate(pair))
    } catch (error) {
      if (!(error instanceof CertificateProblem)) throw error
      problems.push({location: {file}, path: `tls.certificates.${i}.${error.field}`, message: error.message, suggestion: error.suggestion})
    }
  })
  if (problems.length > 0) {
    throw new ConfigError(`proxy config ${file}: TLS certificates: ${problems.length} problem${problems.length === 1 ? '' : 's'} found`, problems, {
      subject: file,
      suggestions: ['Fix the certificate files; the certificates already loaded keep serving.'],
    })
  }
  return new CertificateStore(loaded, settings.minVersion)
}

/** Reads a CA bundle for verifying an upstream; throws a message naming the file when it has no certificate. */
export function readCaFile(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(`${file}: cannot be read: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new Error(`${file}: contains no PEM certificate`)
  for (const block of blocks) {
    try {
      new X509Certificate(block)
    } catch (error) {
      throw new Error(`${file}: a certificate does not parse (${(error as Error).message})`)
    }
  }
  return text
}

/** One certificate as `GET /api/state` reports it. */
export interface CertificateState {
  certFile: string
  names: string[]
  notAfter: string
  expired: boolean
  fingerprint256: string
}

export function certificateState(certificate: LoadedCertificate, nowMs: number = Date.now()): CertificateState {
  return {
    certFile: certificate.certFile,
    names: [...certificate.names],
    notAfter: certificate.notAfter.toISOString(),
    expired: certificate.notAfter.getTime() < nowMs,
    fingerprint256: certificate.fingerprint256,
  }
}
