// The table of README "Guarantees": every answer to a task-creating request, row by row, read
// by the one function the gateway uses (src/kie/answers.ts).
import { describe, expect, it } from 'vitest'
import { classify, meaningOf, networkFailure, SUBMISSION_ANSWERS, type Meaning } from '../src/kie/answers.js'

const hasTaskId = (d: unknown): d is { taskId: string } => typeof (d as { taskId?: unknown } | null)?.taskId === 'string'
const envelope = (code: unknown, msg = 'm', data: unknown = null) => JSON.stringify({ code, msg, data })
const html = (status: number) => `<html><head><title>${status}</title></head><body>cloudflare</body></html>`

/** What the dispatcher does with each meaning, as the README says. */
function action(status: number, body: string): Meaning {
  const r = classify(status, body, null, hasTaskId)
  if (r.ok) return 'accepted'
  if (r.kind === 'rejected') return 'refused'
  if (r.maybeDelivered) return 'maybe_created'
  if (r.reason === 'rate_limited') return 'dropped'
  if (r.reason === 'server_error') return 'server_error'
  return 'not_created'
}

const rows: Array<[string, number, string, Meaning]> = [
  ['envelope 200 with a task id', 200, envelope(200, 'success', { taskId: 'abc' }), 'accepted'],
  ...[400, 401, 402, 404, 422, 501, 505].map((c): [string, number, string, Meaning] => [`envelope ${c} in an HTTP 200`, 200, envelope(c), 'refused']),
  ['envelope 401 in a real HTTP 401', 401, envelope(401, 'You do not have access permissions'), 'refused'],
  ['envelope code as a numeric string ("402")', 200, envelope('402'), 'refused'],
  ['HTTP 429 with an envelope', 429, envelope(429), 'dropped'],
  ['HTTP 429 without an envelope', 429, html(429), 'dropped'],
  ['envelope 429 in an HTTP 200', 200, envelope(429), 'dropped'],
  ['envelope 455', 200, envelope(455, 'Service unavailable'), 'not_created'],
  ['envelope 500 in an HTTP 200 ("This field is required")', 200, envelope(500, 'This field is required'), 'server_error'],
  ['envelope 500 in an HTTP 500', 500, envelope(500, 'Internal Server Error'), 'server_error'],
  ...[521, 522, 523, 525, 526].map((s): [string, number, string, Meaning] => [`HTTP ${s} (the CDN could not reach kie.ai)`, s, html(s), 'not_created']),
  ['HTTP 503 without an envelope', 503, html(503), 'not_created'],
  ...[502, 504, 520, 524].map((s): [string, number, string, Meaning] => [`HTTP ${s} after the origin`, s, html(s), 'maybe_created']),
  ['HTTP 500 without an envelope', 500, 'Internal Server Error', 'maybe_created'],
  ['HTTP 200 whose body is not JSON', 200, html(200), 'maybe_created'],
  ['HTTP 200 with an empty body', 200, '', 'maybe_created'],
  ['envelope 200 without a task id', 200, envelope(200, 'success', null), 'maybe_created'],
  ['envelope 200 in an HTTP 502', 502, envelope(200, 'success', { taskId: 'abc' }), 'maybe_created']
]

describe('SUBMISSION_ANSWERS: what each answer to a task-creating request means', () => {
  it.each(rows)('%s → %s', (_name, status, body, expected) => {
    expect(action(status, body)).toBe(expected)
  })

  it('ends in a catch-all that never resends', () => {
    expect(SUBMISSION_ANSWERS.at(-1)?.meaning).toBe('maybe_created')
    expect(meaningOf({ httpStatus: 302, code: null, hasData: false })).toBe('maybe_created')
  })

  it.each([
    ['a refused connection', 'ECONNREFUSED', false],
    ['a DNS failure', 'ENOTFOUND', false],
    ['a DNS timeout', 'EAI_AGAIN', false],
    ['a TLS certificate failure', 'CERT_HAS_EXPIRED', false],
    ['a TLS handshake failure', 'ERR_SSL_WRONG_VERSION_NUMBER', false],
    ['a connect timeout', 'UND_ERR_CONNECT_TIMEOUT', false],
    ['a reset after the request was written', 'ECONNRESET', true],
    ['the socket closed mid-answer', 'UND_ERR_SOCKET', true],
    ['an error without a code', undefined, true]
  ])('%s on a POST: maybe created = %s', (_name, code, maybe) => {
    const err = Object.assign(new TypeError('fetch failed'), { cause: code === undefined ? undefined : { code } })
    expect(networkFailure(err, true, 1000)).toMatchObject({ kind: 'transient', maybeDelivered: maybe })
  })

  it('a timeout after sending may have created the task', () => {
    const err = new DOMException('The operation was aborted due to timeout', 'TimeoutError')
    expect(networkFailure(err, true, 1000)).toMatchObject({ reason: 'timeout', maybeDelivered: true })
  })
})
