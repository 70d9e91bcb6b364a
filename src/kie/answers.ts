/**
 * How one call to kie.ai ended. `transient` answers may be retried unless `maybeDelivered`
 * says the request may have created a task; `rejected` ones never are.
 */
export type KieResult<T> =
  | { ok: true; data: T }
  | { ok: false; kind: 'rejected'; code: number; msg: string; httpStatus: number }
  | {
      ok: false
      kind: 'transient'
      reason: TransientReason
      message: string
      retryAfterMs: number | null
      /** The request may have reached kie.ai and created a task: resending could bill twice. */
      maybeDelivered: boolean
    }

export type TransientReason = 'rate_limited' | 'maintenance' | 'server_error' | 'unreachable' | 'bad_response' | 'network' | 'timeout'
export type KieFailure = Extract<KieResult<unknown>, { ok: false }>

/** What an answer to a task-creating request says about the task kie.ai may have made. */
export type Meaning = 'accepted' | 'refused' | 'dropped' | 'not_created' | 'server_error' | 'maybe_created'

/** An HTTP answer as read: `code` is set only when the body is kie.ai's envelope. */
export interface Answer {
  httpStatus: number
  code: number | null
  hasData: boolean
}

const is2xx = (s: number) => s >= 200 && s < 300
const REFUSED_CODES = new Set([400, 401, 402, 404, 422, 501, 505])
// The CDN in front of kie.ai says it could not reach the origin: the request never arrived.
const ORIGIN_UNREACHED = new Set([521, 522, 523, 525, 526])

/**
 * THE table (also in the README's guarantees section and in test/kie-answers.test.ts): what
 * each answer to a task-creating request means, by whether kie.ai may have created the task.
 * Rows are tried in order; the first that matches decides. Network failures, which carry no
 * HTTP answer, are read by `networkFailure` below.
 */
export const SUBMISSION_ANSWERS: ReadonlyArray<{ answer: string; meaning: Meaning; matches: (a: Answer) => boolean }> = [
  { answer: 'HTTP 429, or envelope 429', meaning: 'dropped', matches: (a) => a.httpStatus === 429 || a.code === 429 },
  { answer: 'envelope with code 200 and a task id', meaning: 'accepted', matches: (a) => is2xx(a.httpStatus) && a.code === 200 && a.hasData },
  { answer: 'envelope with 400, 401, 402, 404, 422, 501, 505', meaning: 'refused', matches: (a) => a.code !== null && REFUSED_CODES.has(a.code) },
  { answer: 'envelope 455', meaning: 'not_created', matches: (a) => a.code === 455 },
  { answer: 'envelope 500', meaning: 'server_error', matches: (a) => a.code === 500 },
  {
    answer: 'HTTP 521, 522, 523, 525, 526 (the CDN could not reach kie.ai), HTTP 503 without an envelope',
    meaning: 'not_created',
    matches: (a) => a.code === null && (ORIGIN_UNREACHED.has(a.httpStatus) || a.httpStatus === 503)
  },
  // A CDN's own refusal (403 from a firewall, 413, ...) never reached kie.ai; 408 asks for a retry.
  { answer: 'HTTP 408 without an envelope', meaning: 'not_created', matches: (a) => a.code === null && a.httpStatus === 408 },
  { answer: 'any other HTTP 4xx without an envelope', meaning: 'refused', matches: (a) => a.code === null && a.httpStatus >= 400 && a.httpStatus < 500 },
  // kie.ai's envelope with a code the docs do not list: kie.ai answered, so no task; 5xx ones are retried like 500.
  { answer: 'envelope with another 5xx code', meaning: 'server_error', matches: (a) => a.code !== null && a.code >= 500 && a.code < 600 && a.code !== 200 },
  { answer: 'envelope with another 4xx code', meaning: 'refused', matches: (a) => a.code !== null && a.code >= 400 && a.code < 500 },
  {
    answer: 'HTTP 502, 504, 520, 524, any other 5xx or 2xx whose body is not the envelope (or lacks the task id)',
    meaning: 'maybe_created',
    matches: () => true
  }
]

export function meaningOf(a: Answer): Meaning {
  return (SUBMISSION_ANSWERS.find((row) => row.matches(a)) as (typeof SUBMISSION_ANSWERS)[number]).meaning
}

/** `code` as a number or a numeric string, the way kie.ai and its CDN write it. */
export function readCode(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (typeof v === 'string' && /^\d{1,4}$/.test(v.trim())) return Number(v.trim())
  return null
}

/** Reads kie.ai's answer per ../shared/kie-api.md: the body whatever the HTTP status. */
export function classify<T>(
  httpStatus: number,
  text: string,
  retryAfterMs: number | null,
  hasData: (data: unknown) => data is T
): KieResult<T> {
  type Envelope = { code?: unknown; msg?: unknown; data?: unknown }
  let body: Envelope | null = null
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Envelope
  } catch {
    // not the envelope: read below by its HTTP status
  }
  const code = readCode(body?.code)
  const msg = typeof body?.msg === 'string' ? body.msg : ''
  const data = body?.data
  const answer: Answer = { httpStatus, code, hasData: code === 200 && hasData(data) }
  const transient = (reason: TransientReason, message: string, maybeDelivered: boolean): KieResult<T> =>
    ({ ok: false, kind: 'transient', reason, message, retryAfterMs, maybeDelivered })
  const notEnvelope = `HTTP ${httpStatus} with a body that is not kie.ai's JSON envelope`
  switch (meaningOf(answer)) {
    case 'accepted':
      return { ok: true, data: data as T }
    case 'dropped':
      return transient('rate_limited', msg || 'rate limited', false)
    case 'refused':
      return { ok: false, kind: 'rejected', code: code ?? httpStatus, msg: msg || `HTTP ${httpStatus}`, httpStatus }
    case 'server_error':
      return transient('server_error', msg || `code ${code}`, false)
    case 'not_created':
      return code === 455 ? transient('maintenance', msg || 'maintenance', false) : transient('unreachable', notEnvelope, false)
    case 'maybe_created':
      return transient('bad_response', code === 200 ? 'success without the expected data' : notEnvelope, true)
  }
}

// Failures before a single byte of the request could have left: it certainly did not reach kie.ai.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID'
])

function errorCode(err: unknown): string | undefined {
  // A DOMException (an abort, a timeout) carries a numeric code: not a system error code.
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null
  const code = e?.cause?.code ?? e?.code
  return typeof code === 'string' ? code : undefined
}

/** DNS, refused connections and TLS handshakes fail before the request is written. */
export function neverSent(code: string | undefined): boolean {
  return code !== undefined && (NOT_SENT_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))
}

/** A call that got no HTTP answer: a timeout or a reset after the request was written may have created a task. */
export function networkFailure(err: unknown, post: boolean, timeoutMs: number): Extract<KieFailure, { kind: 'transient' }> & { code: string | undefined } {
  const code = errorCode(err)
  const timedOut = (err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError'
  return {
    ok: false,
    kind: 'transient',
    reason: timedOut ? 'timeout' : 'network',
    message: timedOut ? `no answer within ${timeoutMs} ms` : `network error${code ? ` (${code})` : ''}`,
    retryAfterMs: null,
    maybeDelivered: post && !neverSent(code),
    code
  }
}
