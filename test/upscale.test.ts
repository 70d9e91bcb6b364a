import { beforeEach, describe, expect, it } from 'vitest'
import { auth, buildTestApp, hex32, KEY_B } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx
beforeEach(async () => {
  t = await buildTestApp()
})

const countTasks = () => (t.db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n
const post = (payload: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/upscale', headers: { ...auth(), 'content-type': 'application/json', ...headers }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })

describe('POST /upscale', () => {
  it('stores the task, sends it to kie.ai with a tokenised callback URL and answers 202', async () => {
    const parent = hex32()
    const res = await post({ taskId: parent, imageIndex: 2, waterMark: 'acme' })
    expect(res.statusCode).toBe(202)
    const body = res.json()
    expect(res.headers.location).toBe(`/upscale/${body.id}`)
    expect(body).toMatchObject({ status: 'submitted', taskId: parent, imageIndex: 2, waterMark: 'acme', resultUrls: null, error: null, completedAt: null })
    expect(body.kieTaskId).toMatch(/^[0-9a-f]{32}$/)
    expect(Date.parse(body.createdAt)).toBe(t.clock.now())

    expect(t.kie.upscaleCalls).toHaveLength(1)
    const call = t.kie.upscaleCalls[0]!
    expect(call).toMatchObject({ taskId: parent, imageIndex: 2, waterMark: 'acme' })
    const cb = new URL(call.callBackUrl)
    expect(cb.origin + cb.pathname).toBe('http://gateway.test/callbacks/mj')
    expect(cb.searchParams.get('task')).toBe(body.id)
    expect(cb.searchParams.get('token')).toMatch(/^[A-Za-z0-9_-]{40,}$/)

    const row = t.repo.getTask(body.id)!
    expect(row).toMatchObject({ status: 'submitted', kie_task_id: body.kieTaskId, send_state: 'sent', attempts: 1 })
  })

  it('omits waterMark upstream when the client did not give one', async () => {
    const res = await post({ taskId: hex32(), imageIndex: 0 })
    expect(res.statusCode).toBe(202)
    expect(res.json().waterMark).toBeNull()
    expect(t.kie.upscaleCalls[0]).not.toHaveProperty('waterMark')
  })

  const invalid: Array<[string, unknown, RegExp]> = [
    ['imageIndex as a string', { taskId: 'abc', imageIndex: '1' }, /body\.imageIndex/],
    ['imageIndex 4', { taskId: 'abc', imageIndex: 4 }, /body\.imageIndex/],
    ['imageIndex -1', { taskId: 'abc', imageIndex: -1 }, /body\.imageIndex/],
    ['imageIndex 1.5', { taskId: 'abc', imageIndex: 1.5 }, /body\.imageIndex/],
    ['imageIndex null', { taskId: 'abc', imageIndex: null }, /body\.imageIndex/],
    ['missing imageIndex', { taskId: 'abc' }, /body\.imageIndex: is required/],
    ['missing taskId', { imageIndex: 1 }, /body\.taskId: is required/],
    ['taskId as a number', { taskId: 123, imageIndex: 1 }, /body\.taskId/],
    ['empty taskId', { taskId: '', imageIndex: 1 }, /body\.taskId/],
    ['taskId with a slash', { taskId: '../x', imageIndex: 1 }, /body\.taskId/],
    ['waterMark as a number', { taskId: 'abc', imageIndex: 1, waterMark: 5 }, /body\.waterMark/],
    ['an unknown field', { taskId: 'abc', imageIndex: 1, callBackUrl: 'http://x' }, /body\.callBackUrl: unknown field/],
    ['an array body', [1, 2], /^body: /],
    ['a JSON string body', '"hello"', /^body: /],
    ['a null body', 'null', /^body/],
    // Found by fuzz.test.ts: "\ud800" is valid JSON escape text, so it passed validation and was
    // stored by better-sqlite3 as invalid UTF-8 (ED A0 80), read back as three U+FFFD: the row,
    // the 202 and what kie.ai received all differed from the request.
    ['a lone surrogate in waterMark', '{"taskId":"abc","imageIndex":1,"waterMark":"x\\ud800y"}', /body\.waterMark: must be well-formed/]
  ]
  it.each(invalid)('refuses %s with 400 naming the field, storing and sending nothing', async (_name, payload, message) => {
    const res = await post(payload)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ statusCode: 400, error: 'Bad Request', code: 'GW_VALIDATION', message: expect.stringMatching(message) })
    expect(countTasks()).toBe(0)
    expect(t.kie.upscaleCalls).toHaveLength(0)
  })

  const malformed: Array<[string, string, Record<string, string>, number, string]> = [
    ['non-JSON', '{"taskId":', {}, 400, 'GW_INVALID_JSON'],
    ['an empty JSON body', '', {}, 400, 'GW_INVALID_JSON'],
    ['a __proto__ key', '{"taskId":"a","imageIndex":1,"__proto__":{"x":1}}', {}, 400, 'GW_INVALID_JSON'],
    ['text/plain', '{"taskId":"a","imageIndex":1}', { 'content-type': 'text/plain' }, 415, 'GW_UNSUPPORTED_MEDIA_TYPE'],
    ['form encoding', 'taskId=a&imageIndex=1', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'GW_UNSUPPORTED_MEDIA_TYPE'],
    ['a body over the limit', JSON.stringify({ taskId: 'a', imageIndex: 1, waterMark: 'x'.repeat(10_000) }), {}, 413, 'GW_PAYLOAD_TOO_LARGE']
  ]
  it.each(malformed)('refuses %s with the common error shape', async (_name, payload, headers, status, code) => {
    const res = await post(payload, headers)
    expect(res.statusCode).toBe(status)
    expect(res.json()).toMatchObject({ statusCode: status, code, error: expect.any(String), message: expect.any(String) })
    expect(countTasks()).toBe(0)
    expect(t.kie.upscaleCalls).toHaveLength(0)
  })

  it('refuses a missing or unknown key with 401 and stores nothing', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-a-key-at-all-xxxxxx' }, { authorization: 'Basic abc' }]) {
      const res = await t.app.inject({ method: 'POST', url: '/upscale', headers, payload: { taskId: 'abc', imageIndex: 1 } })
      expect(res.statusCode).toBe(401)
      expect(res.json()).toMatchObject({ statusCode: 401, code: 'GW_UNAUTHORIZED' })
    }
    expect(countTasks()).toBe(0)
  })
})

describe("kie.ai's refusals", () => {
  const rejected = (code: number, msg: string, httpStatus = 200) => ({ ok: false as const, kind: 'rejected' as const, code, msg, httpStatus })
  const transient = (reason: 'rate_limited' | 'maintenance' | 'server_error' | 'bad_response' | 'network' | 'timeout', retryAfterMs: number | null = null) =>
    ({ ok: false as const, kind: 'transient' as const, reason, message: `${reason} happened`, retryAfterMs, maybeDelivered: false })

  const cases: Array<[string, Parameters<typeof t.kie.next.push>[0], number, string, string | null]> = [
    ['402 insufficient credits', rejected(402, 'Credits insufficient'), 402, 'GW_UPSTREAM_INSUFFICIENT_CREDITS', null],
    ['422 unknown parent task', rejected(422, 'record does not exist'), 422, 'GW_UPSTREAM_REJECTED', null],
    ['400 bad request', rejected(400, 'imageIndex invalid'), 422, 'GW_UPSTREAM_REJECTED', null],
    ['401 our kie key is wrong', rejected(401, 'You do not have access permissions', 401), 502, 'GW_UPSTREAM_AUTH', null],
    ['505 feature disabled', rejected(505, 'upscale is disabled'), 503, 'GW_UPSTREAM_FEATURE_DISABLED', '60'],
    ['501 generation failed', rejected(501, 'generation failed'), 502, 'GW_UPSTREAM_GENERATION_FAILED', null]
  ]
  it.each(cases)('maps %s and keeps the task as failed with the reason', async (_name, answer, status, code, retryAfter) => {
    t.kie.next.push(answer)
    const res = await post({ taskId: hex32(), imageIndex: 1 })
    expect(res.statusCode).toBe(status)
    const body = res.json()
    expect(body).toMatchObject({ statusCode: status, code })
    expect(res.headers['retry-after']).toBe(retryAfter ?? undefined)
    if (answer && 'msg' in answer && status === 422) expect(body.message).toContain(answer.msg)
    const id = String(res.headers.location).split('/').pop()!
    const row = t.repo.getTask(id)!
    expect(row).toMatchObject({ status: 'failed', error_code: code, send_state: 'sending', attempts: 1 })
    expect(row.error_message).toBe(body.message)
    expect(row.completed_at).not.toBeNull()
    const view = await t.app.inject({ url: `/upscale/${id}`, headers: auth() })
    expect(view.json()).toMatchObject({ status: 'failed', error: { code, message: body.message } })
  })

  it.each([
    ['429 rate limited', transient('rate_limited'), 10_500],
    ['429 with a longer Retry-After', transient('rate_limited', 42_000), 42_000],
    ['455 maintenance', transient('maintenance'), 500],
    ['HTTP 5xx', transient('server_error'), 500],
    ['a non-JSON error page', transient('bad_response'), 500],
    ['a refused connection', transient('network'), 500]
  ])('answers %s with 202 queued and schedules a retry, never a 5xx', async (_name, answer, delayMs) => {
    t.kie.next.push(answer)
    const res = await post({ taskId: hex32(), imageIndex: 1 })
    expect(res.statusCode).toBe(202)
    const body = res.json()
    const retryAt = t.clock.now() + delayMs
    expect(body).toMatchObject({ status: 'queued', kieTaskId: null, error: null, queue: { position: 1, estimatedSendAt: new Date(retryAt).toISOString() } })
    expect(t.repo.getTask(body.id)).toMatchObject({ status: 'queued', send_state: 'pending', attempts: 1, next_attempt_at: retryAt, last_error: answer.message })
  })

  it.each([
    ['a timeout after sending', { ...transient('timeout'), maybeDelivered: true }],
    ['a connection reset mid-answer', { ...transient('network'), maybeDelivered: true }],
    ['a 200 whose body cannot be read', { ...transient('bad_response'), maybeDelivered: true }],
    ['the kie client throwing', new Error('boom')]
  ])('never resends after %s: the task waits for its callback as submitted', async (_name, answer) => {
    t.kie.next.push(answer)
    const res = await post({ taskId: hex32(), imageIndex: 1 })
    expect(res.statusCode).toBe(202)
    const body = res.json()
    expect(body).toMatchObject({ status: 'submitted', kieTaskId: null, queue: null })
    expect(t.repo.getTask(body.id)).toMatchObject({ status: 'submitted', send_state: 'sending', attempts: 1 })
    expect(t.repo.claimReady('someone', t.clock.now() + 3_600_000, 1000, 10)).toEqual([])
  })
})

describe('GET /upscale/:id and GET /upscale', () => {
  it("answers 404 for another key's task, exactly like a missing one", async () => {
    const id = (await post({ taskId: hex32(), imageIndex: 1 })).json().id
    const mine = await t.app.inject({ url: `/upscale/${id}`, headers: auth() })
    expect(mine.statusCode).toBe(200)
    const theirs = await t.app.inject({ url: `/upscale/${id}`, headers: auth(KEY_B) })
    const missing = await t.app.inject({ url: '/upscale/00000000-0000-0000-0000-000000000000', headers: auth(KEY_B) })
    expect(theirs.statusCode).toBe(404)
    expect(theirs.json().code).toBe('GW_NOT_FOUND')
    expect(theirs.json().message.replace(id, 'X')).toBe(missing.json().message.replace('00000000-0000-0000-0000-000000000000', 'X'))
  })

  it('pages newest first with a cursor that stays stable while tasks arrive', async () => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      ids.push((await post({ taskId: hex32(), imageIndex: i % 4 })).json().id)
      t.clock.advance(1000)
    }
    await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(KEY_B), payload: { taskId: hex32(), imageIndex: 0 } })
    const page1 = (await t.app.inject({ url: '/upscale?limit=2', headers: auth() })).json()
    expect(page1.items.map((x: { id: string }) => x.id)).toEqual([ids[4], ids[3]])
    await post({ taskId: hex32(), imageIndex: 0 }) // a new task must not shift the next page
    const page2 = (await t.app.inject({ url: `/upscale?limit=2&cursor=${page1.nextCursor}`, headers: auth() })).json()
    expect(page2.items.map((x: { id: string }) => x.id)).toEqual([ids[2], ids[1]])
    const page3 = (await t.app.inject({ url: `/upscale?limit=2&cursor=${page2.nextCursor}`, headers: auth() })).json()
    expect(page3.items.map((x: { id: string }) => x.id)).toEqual([ids[0]])
    expect(page3.nextCursor).toBeNull()
  })

  it('filters by status', async () => {
    await post({ taskId: hex32(), imageIndex: 1 })
    t.kie.next.push({ ok: false, kind: 'rejected', code: 422, msg: 'nope', httpStatus: 200 })
    const failed = (await post({ taskId: hex32(), imageIndex: 1 })).headers.location
    const res = (await t.app.inject({ url: '/upscale?status=failed', headers: auth() })).json()
    expect(res.items.map((x: { id: string }) => `/upscale/${x.id}`)).toEqual([failed])
  })

  it.each([['limit=0', 'limit'], ['limit=101', 'limit'], ['limit=abc', 'limit'], ['status=done', 'status'], ['cursor=zzz', 'cursor'], ['foo=1', 'foo']])(
    'refuses ?%s with 400 naming %s',
    async (query, field) => {
      const res = await t.app.inject({ url: `/upscale?${query}`, headers: auth() })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toMatchObject({ code: 'GW_VALIDATION', message: expect.stringContaining(`querystring.${field}`) })
    }
  )
})

describe('the router', () => {
  // Found by fuzz.test.ts: these are answered by Fastify's router itself, bypassing the error
  // and not-found handlers, so they came as {"code":"FST_ERR_BAD_URL",…} and 414
  // {"code":"FST_ERR_MAX_PARAM_LENGTH",…}, without the security headers (src/app.ts frameworkErrors).
  it.each([
    ['a malformed percent-encoding', '/upscale/%zz', 400, 'GW_BAD_URL'],
    ['a path parameter over 100 characters', `/upscale/${'x'.repeat(101)}`, 414, 'GW_URI_TOO_LONG']
  ])('answers %s in the common error shape', async (_name, url, status, code) => {
    const res = await t.app.inject({ url, headers: auth() })
    expect(res.statusCode).toBe(status)
    expect(res.json()).toEqual({ statusCode: status, error: expect.any(String), code, message: expect.any(String) })
    expect(res.headers['x-content-type-options']).toBe('nosniff')
  })
})

describe('health', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' })
    expect((await t.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ok' })
  })

  it('answers unknown routes with the common error shape', async () => {
    const res = await t.app.inject({ url: '/nope' })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ statusCode: 404, error: 'Not Found', code: 'GW_NOT_FOUND', message: 'Route GET /nope not found' })
  })
})
