import type { Logger } from 'pino'

/** How one call to kie.ai ended. `transient` answers may be retried; `rejected` ones never. */
export type KieResult<T> =
  | { ok: true; data: T }
  | { ok: false; kind: 'rejected'; code: number; msg: string; httpStatus: number }
  | {
      ok: false
      kind: 'transient'
      reason: 'rate_limited' | 'maintenance' | 'server_error' | 'bad_response' | 'network' | 'timeout'
      message: string
      retryAfterMs: number | null
      /** The request may have reached kie.ai and created a task: resending could bill twice. */
      maybeDelivered: boolean
    }

export interface UpscaleRequest {
  taskId: string
  imageIndex: number
  waterMark?: string | undefined
  callBackUrl: string
}

export interface RecordInfo {
  taskId: string
  successFlag: number
  resultInfoJson: unknown
  errorCode: unknown
  errorMessage: string | null
  createTime: unknown
  completeTime: unknown
}

export interface KieClient {
  /** `abort` ends the request early (shutdown); its outcome is then unknown. */
  generateUpscale(req: UpscaleRequest, abort?: AbortSignal): Promise<KieResult<{ taskId: string }>>
  recordInfo(kieTaskId: string, abort?: AbortSignal): Promise<KieResult<RecordInfo>>
  /** A temporary (20 minute) direct link to one of kie.ai's result files. */
  downloadUrl(url: string): Promise<KieResult<string>>
}

export interface KieClientOptions {
  baseUrl: string
  apiKey: string
  timeoutMs: number
  log?: Logger | undefined
}

const TRANSIENT_CODES: Record<number, 'rate_limited' | 'maintenance' | 'server_error'> = {
  429: 'rate_limited',
  455: 'maintenance',
  500: 'server_error'
}
// Errors raised before a single byte could have left: the request certainly did not reach kie.ai.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH'])

function parseRetryAfter(header: string | null): number | null {
  if (!header) return null
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(header)
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now())
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } } | null
  return e?.cause?.code ?? e?.code
}

/** Classifies kie.ai's answer per ../shared/kie-api.md: read the body whatever the HTTP status. */
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
    if (parsed && typeof parsed === 'object') body = parsed as Envelope
  } catch {
    // handled below
  }
  const code = typeof body?.code === 'number' ? body.code : null
  const msg = typeof body?.msg === 'string' ? body.msg : ''
  if (httpStatus === 429 || code === 429) {
    return { ok: false, kind: 'transient', reason: 'rate_limited', message: msg || 'rate limited', retryAfterMs, maybeDelivered: false }
  }
  if (code === null && httpStatus >= 400 && httpStatus < 500 && httpStatus !== 408) {
    return { ok: false, kind: 'rejected', code: httpStatus, msg: `HTTP ${httpStatus}`, httpStatus }
  }
  if (httpStatus >= 500 || code === null) {
    const is2xx = httpStatus >= 200 && httpStatus < 300
    return {
      ok: false,
      kind: 'transient',
      reason: code === null ? 'bad_response' : 'server_error',
      message: code === null ? `HTTP ${httpStatus} with a body that is not kie.ai's JSON envelope` : msg || `HTTP ${httpStatus}`,
      retryAfterMs,
      // A 2xx whose body we cannot read may still have created the task.
      maybeDelivered: code === null && is2xx
    }
  }
  const transient = TRANSIENT_CODES[code] ?? (code >= 500 && code < 600 && code !== 501 && code !== 505 ? 'server_error' : undefined)
  if (transient) {
    return { ok: false, kind: 'transient', reason: transient, message: msg || `code ${code}`, retryAfterMs, maybeDelivered: false }
  }
  if (httpStatus >= 200 && httpStatus < 300 && code === 200) {
    const data = body?.data
    if (hasData(data)) return { ok: true, data }
    return { ok: false, kind: 'transient', reason: 'bad_response', message: 'success without the expected data', retryAfterMs, maybeDelivered: true }
  }
  return { ok: false, kind: 'rejected', code: code === 200 ? httpStatus : code, msg: msg || `HTTP ${httpStatus}`, httpStatus }
}

const hasTaskId = (d: unknown): d is { taskId: string } =>
  typeof d === 'object' && d !== null && typeof (d as { taskId?: unknown }).taskId === 'string' && (d as { taskId: string }).taskId.length > 0
const isLink = (d: unknown): d is string => typeof d === 'string' && /^https?:\/\//.test(d)
const isRecord = (d: unknown): d is RecordInfo => typeof d === 'object' && d !== null && typeof (d as RecordInfo).successFlag === 'number'

export function createKieClient(opts: KieClientOptions): KieClient {
  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    hasData: (d: unknown) => d is T,
    abort: AbortSignal | undefined
  ): Promise<KieResult<T>> {
    const started = performance.now()
    try {
      const res = await fetch(opts.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${opts.apiKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' })
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: abort ? AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), abort]) : AbortSignal.timeout(opts.timeoutMs),
        redirect: 'error'
      })
      const text = await res.text()
      const result = classify(res.status, text, parseRetryAfter(res.headers.get('retry-after')), hasData)
      opts.log?.debug({ path, httpStatus: res.status, ok: result.ok, ms: Math.round(performance.now() - started) }, 'kie.ai call')
      return result
    } catch (err) {
      const code = errorCode(err)
      const timedOut = (err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError'
      opts.log?.warn({ path, code, timedOut, ms: Math.round(performance.now() - started) }, 'kie.ai call failed')
      return {
        ok: false,
        kind: 'transient',
        reason: timedOut ? 'timeout' : 'network',
        message: timedOut ? `no answer within ${opts.timeoutMs} ms` : `network error${code ? ` (${code})` : ''}`,
        retryAfterMs: null,
        maybeDelivered: method === 'POST' && !(code !== undefined && NOT_SENT_CODES.has(code))
      }
    }
  }

  return {
    generateUpscale: (req, abort) => call('POST', '/api/v1/mj/generateUpscale', req, hasTaskId, abort),
    downloadUrl: (url) => call('POST', '/api/v1/common/download-url', { url }, isLink, undefined),
    recordInfo: (kieTaskId, abort) =>
      call('GET', `/api/v1/mj/record-info?taskId=${encodeURIComponent(kieTaskId)}`, undefined, isRecord, abort)
  }
}
