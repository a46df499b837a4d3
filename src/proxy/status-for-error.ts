/**
 * The one mapping from a forwarding failure to an HTTP status (the same split as Traefik's ComputeStatusCode):
 * 504 for any upstream timeout, 502 for a refused, reset or
 * malformed upstream (connect timeouts included: the upstream is unreachable), 499 when the client
 * went away first (nothing is written).
 */
export const CLIENT_CLOSED_REQUEST = 499

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

export function statusForError(error: unknown, clientGone: boolean): number {
  if (clientGone) return CLIENT_CLOSED_REQUEST
  const code = (error as {code?: unknown} | null)?.code
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return 504
  if ((error as {name?: unknown} | null)?.name === 'TimeoutError') return 504
  return 502
}

/** True when no byte of the request can have reached the upstream, so retrying elsewhere is safe. */
export function isConnectError(error: unknown): boolean {
  const code = (error as {code?: unknown} | null)?.code
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENOTFOUND' || code === 'EADDRNOTAVAIL'
}

/** Connection-level failures that mark a server down for a cooldown (passive health). */
export function isServerFailure(error: unknown): boolean {
  const code = (error as {code?: unknown} | null)?.code
  return isConnectError(error) || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE'
}

/**
 * Errors raised while forming the upstream request (undici refuses an argument, or the body is
 * shorter than its Content-Length): nothing reached the upstream and the cause is the request, so
 * they are answered 400 and never charged to a version.
 */
export function isRequestFormError(error: unknown): boolean {
  const code = (error as {code?: unknown} | null)?.code
  return code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || (typeof code === 'string' && code.startsWith('ERR_INVALID_ARG'))
}
