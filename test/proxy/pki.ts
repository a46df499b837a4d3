// Certificates for the TLS tests, made by the real `openssl` CLI in a temporary directory: a CA
// and leaf certificates it signs (P-256 keys: fast to generate).
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** A leaf certificate and its key, as files. */
export interface Leaf {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: string
  readonly key: string
}

export interface Pki {
  readonly dir: string
  /** The CA certificate file (PEM). */
  readonly caFile: string
  readonly ca: string
  /** A leaf signed by the CA for `names` (DNS SANs; `IP:` entries too), valid `days` (negative: already expired). */
  leaf(id: string, names: readonly string[], days?: number): Leaf
  /** A self-signed certificate (not from the CA). */
  selfSigned(id: string, names: readonly string[]): Leaf
  remove(): void
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, {cwd: dir, stdio: ['ignore', 'ignore', 'pipe']})
}

/** Fails with a message naming the tool when openssl is missing (never a silent skip). */
export function requireOpenssl(): void {
  if (spawnSync('openssl', ['version']).status !== 0) throw new Error('the TLS tests need the openssl CLI: apt-get install -y openssl')
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function san(names: readonly string[]): string {
  return `subjectAltName=${names.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)).join(',')}\n`
}

export function makePki(): Pki {
  requireOpenssl()
  const dir = mkdtempSync(join(tmpdir(), 'canary-pki-'))
  openssl(dir, ['req', '-x509', ...KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=canary test CA'])
  const read = (file: string) => readFileSync(join(dir, file), 'utf8')
  const leaf = (id: string, names: readonly string[], days = 1): Leaf => {
    writeFileSync(join(dir, `${id}.ext`), san(names))
    openssl(dir, ['req', ...KEY, '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${names[0] ?? id}`])
    openssl(dir, ['x509', '-req', '-in', `${id}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', String(days), '-extfile', `${id}.ext`, '-out', `${id}.pem`])
    return {certFile: join(dir, `${id}.pem`), keyFile: join(dir, `${id}.key`), cert: read(`${id}.pem`), key: read(`${id}.key`)}
  }
  const selfSigned = (id: string, names: readonly string[]): Leaf => {
    writeFileSync(join(dir, `${id}.ext`), san(names))
    openssl(dir, ['req', '-x509', ...KEY, '-keyout', `${id}.key`, '-out', `${id}.pem`, '-days', '1', '-subj', `/CN=${names[0] ?? id}`, '-addext', san(names).trim()])
    return {certFile: join(dir, `${id}.pem`), keyFile: join(dir, `${id}.key`), cert: read(`${id}.pem`), key: read(`${id}.key`)}
  }
  return {dir, caFile: join(dir, 'ca.pem'), ca: read('ca.pem'), leaf, selfSigned, remove: () => rmSync(dir, {recursive: true, force: true})}
}
