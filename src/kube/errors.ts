/**
 * Turns what the Kubernetes client (src/kube/client.ts) throws into canary's error hierarchy (src/errors.ts), so a
 * cluster failure exits with the same documented codes as a local one:
 * 404 → NotFoundError (4), 409 → ConflictError (5), 422 → ConfigError (3) with the server's causes,
 * 401/403 → ForbiddenError (3: the fix is configuration, `canary render --rbac`, and retrying never
 * helps), connection failures and 5xx → UnreachableError (6). Anything else is our bug (1).
 */
import {ConfigError, ConflictError, InternalError, NotFoundError, UnreachableError, type CanaryError, type CanaryErrorOptions, type ConfigProblem} from '../errors.js'

/** The API server refused the request for lack of permission (RBAC) or credentials (exit 3). */
export class ForbiddenError extends ConfigError {
  override readonly code = 'E_FORBIDDEN'
  /** The verb the server refused, e.g. `patch`. */
  readonly verb: string
  /** The resource the server refused, e.g. `deployments.apps`. */
  readonly resource: string

  constructor(message: string, verb: string, resource: string, options: CanaryErrorOptions = {}) {
    super(message, [], options)
    this.verb = verb
    this.resource = resource
  }

  override toJSON() {
    return {...super.toJSON(), verb: this.verb, resource: this.resource}
  }
}

/** A metav1.Status as the API server sends it. */
export interface KubeStatus {
  readonly reason?: string
  readonly message?: string
  readonly code?: number
  readonly details?: {readonly name?: string; readonly group?: string; readonly kind?: string; readonly causes?: ReadonlyArray<{readonly field?: string; readonly message?: string; readonly reason?: string}>}
}

/** What was being done when the error happened, for the message: `patch Ingress shop/web-canary`. */
export interface KubeOperation {
  /** Kubernetes verb: get, list, watch, create, update, patch, delete. */
  readonly verb: string
  /** `Ingress shop/web-canary`. */
  readonly subject: string
  /** Resource as RBAC names it, e.g. `ingresses.networking.k8s.io`. */
  readonly resource: string
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'])

function statusOf(body: unknown): KubeStatus | undefined {
  if (typeof body === 'string') {
    try {
      return statusOf(JSON.parse(body))
    } catch {
      return undefined
    }
  }
  return typeof body === 'object' && body !== null ? (body as KubeStatus) : undefined
}

/** OpenSSL's and Node's TLS failures (an unknown CA, a name mismatch, an expired certificate): the server cannot be trusted, so it is not reached. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH$)/

/** The network or TLS error code (ECONNREFUSED, CERT_HAS_EXPIRED, …) anywhere in a cause chain. */
function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = (e as {code?: unknown}).code
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || TLS_CODE.test(code))) return code
    const errno = (e as {errno?: unknown}).errno
    if (typeof errno === 'string' && NETWORK_CODES.has(errno)) return errno
    e = (e as {cause?: unknown}).cause
  }
  return undefined
}

/**
 * The verb and resource RBAC refused, from the API server's Forbidden message (`… User "u" cannot
 * create resource "traefikservices" in API group "traefik.io" …`, apiserver's forbiddenMessage).
 * They can differ from the request's: a server-side apply (PATCH) of an absent object is also
 * authorized as `create`, and that is the check that fails when only `create` is missing.
 */
function refusedAccess(message: string): {verb: string; resource: string} | undefined {
  const match = /cannot (\w+) resource "([^"]+)" in API group "([^"]*)"/.exec(message)
  if (match === null) return undefined
  const [, verb, resource, group] = match as unknown as [string, string, string, string]
  // RBAC names subresources as `pods/proxy`; canary names resources `deployments.apps`.
  const [base, subresource] = resource.split('/') as [string, string | undefined]
  return {verb, resource: `${group === '' ? base : `${base}.${group}`}${subresource === undefined ? '' : `/${subresource}`}`}
}

/** Maps one failed API call to a CanaryError naming the object, the verb and the cause. */
export function mapKubeError(error: unknown, operation: KubeOperation, server?: string): CanaryError {
  if (error instanceof ConfigError || error instanceof ConflictError || error instanceof NotFoundError || error instanceof UnreachableError || error instanceof InternalError) return error
  const httpCode = typeof (error as {code?: unknown}).code === 'number' ? ((error as {code: number}).code) : undefined
  const subject = operation.subject
  if (httpCode === undefined) {
    const code = networkCode(error)
    if (code !== undefined || (error as {name?: string}).name === 'FetchError') {
      return new UnreachableError(`${subject}: ${operation.verb} failed: the Kubernetes API server${server === undefined ? '' : ` at ${server}`} is unreachable (${code ?? (error as Error).message})`, {
        cause: error, subject,
        suggestions: ['Check the cluster is running and your kubeconfig context points at it (kubectl cluster-info).', 'Choose another context with --context, or another file with --kubeconfig or KUBECONFIG.'],
      })
    }
    if ((error as {name?: string}).name === 'AbortError') return new UnreachableError(`${subject}: ${operation.verb} was cancelled`, {cause: error, subject})
    return new InternalError(`${subject}: ${operation.verb} failed: ${(error as Error).message ?? String(error)}`, {cause: error, subject, suggestions: ['This is a bug in canary. Re-run with --verbose and report it with the output.']})
  }
  const status = statusOf((error as {body?: unknown}).body)
  const serverMessage = status?.message ?? `HTTP ${httpCode}`
  const message = `${subject}: ${operation.verb} failed: ${serverMessage}`
  switch (httpCode) {
    case 401:
      return new ForbiddenError(`${subject}: ${operation.verb} failed: the API server did not accept the credentials (Unauthorized)`, operation.verb, operation.resource, {
        cause: error, subject, suggestions: ['Refresh the credentials of your kubeconfig user (token expired?).'],
      })
    case 403: {
      const {verb, resource} = refusedAccess(serverMessage) ?? operation
      return new ForbiddenError(message, verb, resource, {
        cause: error, subject,
        suggestions: [`Grant "${verb}" on "${resource}" to the identity canary runs as: \`canary render --rbac\` prints a minimal ServiceAccount, Role and RoleBinding.`],
      })
    }
    case 404:
      return new NotFoundError(message, {cause: error, subject, suggestions: ['Check the namespace (-n) and the context (--context).']})
    case 409:
      return new ConflictError(message, {cause: error, subject, suggestions: status?.reason === 'AlreadyExists' ? ['Another run created it first; run the command again.'] : ['Someone else changed the object at the same time; run the command again (canary re-reads the state).']})
    case 422: {
      const problems: ConfigProblem[] = (status?.details?.causes ?? []).map((c) => ({path: c.field ?? '', message: c.message ?? c.reason ?? 'invalid'}))
      return new ConfigError(message, problems, {cause: error, subject, suggestions: ['The API server rejected the object canary built from the release spec; check the spec fields named above.']})
    }
    default:
      if (httpCode >= 500) {
        return new UnreachableError(message, {cause: error, subject, suggestions: ['The API server failed; retry, and check its health (kubectl get --raw /readyz).']})
      }
      return new InternalError(message, {cause: error, subject, suggestions: ['This is a bug in canary. Re-run with --verbose and report it with the output.']})
  }
}
