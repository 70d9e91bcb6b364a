import { afterEach, describe, expect, it } from 'vitest'
import { callbackToken } from '../src/kie/callback-token.js'
import { signKieCallback } from '../src/kie/signature.js'
import { auth, buildTestApp, CALLBACK_SECRET, callbackQuery, failureCallback, hex32, successCallback } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx
afterEach(async () => {
  await t.app.close()
  t.db.close()
})

async function submitted(opts: Parameters<typeof buildTestApp>[0] = {}) {
  t = await buildTestApp(opts)
  const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 1 } })
  expect(res.statusCode).toBe(202)
  return res.json() as { id: string; kieTaskId: string }
}

const deliver = (query: string, body: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: 'POST',
    url: `/callbacks/mj?${query}`,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body)
  })
const task = async (id: string) => (await t.app.inject({ url: `/upscale/${id}`, headers: auth() })).json()
const deliveries = (id: string) => t.repo.callbackDeliveries(id) as Array<{ verdict: string; body: string; http_status: number; kie_task_id: string | null }>

describe('POST /callbacks/mj', () => {
  it('records a success with its result URLs and stores the delivery raw', async () => {
    const { id, kieTaskId } = await submitted()
    t.clock.advance(5000)
    const body = successCallback(kieTaskId)
    const res = await deliver(callbackQuery(id), body)
    expect(res.statusCode).toBe(200)
    expect(await task(id)).toMatchObject({
      status: 'succeeded',
      resultUrls: body.data.resultUrls,
      error: null,
      completedAt: new Date(t.clock.now()).toISOString()
    })
    expect(deliveries(id)).toEqual([expect.objectContaining({ verdict: 'accepted', http_status: 200, kie_task_id: kieTaskId, body: JSON.stringify(body) })])
  })

  it("records a failure with kie.ai's message", async () => {
    const { id, kieTaskId } = await submitted()
    expect((await deliver(callbackQuery(id), failureCallback(kieTaskId, 'Banned prompt'))).statusCode).toBe(200)
    expect(await task(id)).toMatchObject({ status: 'failed', resultUrls: null, error: { code: 'GW_UPSTREAM_FAILED', message: 'Banned prompt' } })
  })

  it('treats a success without any URL as a failure rather than an empty success', async () => {
    const { id, kieTaskId } = await submitted()
    await deliver(callbackQuery(id), successCallback(kieTaskId, []))
    expect((await task(id)).status).toBe('failed')
  })

  it('answers 200 to duplicates and late contradictions, and changes nothing', async () => {
    const { id, kieTaskId } = await submitted()
    await deliver(callbackQuery(id), successCallback(kieTaskId))
    const before = await task(id)
    t.clock.advance(60_000)
    expect((await deliver(callbackQuery(id), successCallback(kieTaskId))).statusCode).toBe(200)
    expect((await deliver(callbackQuery(id), failureCallback(kieTaskId))).statusCode).toBe(200)
    expect((await deliver(callbackQuery(id), successCallback(kieTaskId, ['https://evil.example/x.png']))).statusCode).toBe(200)
    expect(await task(id)).toEqual(before)
    expect(deliveries(id).map((d) => d.verdict)).toEqual(['accepted', 'ignored_final', 'ignored_final', 'ignored_final'])
  })

  it.each([
    ['a wrong token', (id: string) => `task=${id}&token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`],
    ['a token of another task', (id: string) => `task=${id}&token=${callbackToken(CALLBACK_SECRET, 'another-task')}`],
    ['a token made with another secret', (id: string) => callbackQuery(id, 'another-secret-another-secret-12345')],
    ['no token', (id: string) => `task=${id}`],
    ['no query at all', () => '']
  ])('refuses %s with 401, stores the delivery and changes nothing', async (_name, query) => {
    const { id, kieTaskId } = await submitted()
    const res = await deliver(query(id), successCallback(kieTaskId))
    expect(res.statusCode).toBe(401)
    expect(res.json()).toMatchObject({ statusCode: 401, code: 'GW_CALLBACK_UNAUTHORIZED' })
    expect((await task(id)).status).toBe('submitted')
    const stored = t.db.prepare("SELECT verdict, body FROM callback_deliveries WHERE verdict = 'bad_token'").all()
    expect(stored).toEqual([{ verdict: 'bad_token', body: JSON.stringify(successCallback(kieTaskId)) }])
  })

  it('accepts tokens made with a previous CALLBACK_SECRET during a rotation', async () => {
    const old = 'the-old-callback-secret-0123456789abcdef'
    const { id, kieTaskId } = await submitted({ previousCallbackSecrets: [old] })
    const res = await deliver(callbackQuery(id, old), successCallback(kieTaskId))
    expect(res.statusCode).toBe(200)
    expect((await task(id)).status).toBe('succeeded')
  })

  it('refuses a body that is not JSON with 400 and keeps it raw', async () => {
    const { id } = await submitted()
    const res = await deliver(callbackQuery(id), '<html>oops', { 'content-type': 'text/html' })
    expect(res.statusCode).toBe(400)
    expect(res.json().code).toBe('GW_VALIDATION')
    expect(deliveries(id)).toEqual([expect.objectContaining({ verdict: 'malformed', body: '<html>oops', http_status: 400 })])
    expect((await task(id)).status).toBe('submitted')
  })

  it.each([
    ['top-level taskId', (k: string) => ({ code: 200, msg: 'success', taskId: k, data: { resultUrls: ['https://r.example/a.png'] } })],
    ['data.task_id', (k: string) => ({ code: 200, msg: 'success', data: { task_id: k, resultUrls: ['https://r.example/a.png'] } })]
  ])('finds the kie task id in %s', async (_name, body) => {
    const { id, kieTaskId } = await submitted()
    expect((await deliver(callbackQuery(id), body(kieTaskId))).statusCode).toBe(200)
    expect((await task(id)).status).toBe('succeeded')
  })

  it('learns the kie task id from the callback when the submission answer was lost', async () => {
    t = await buildTestApp()
    const now = t.clock.now()
    const row = t.repo.createTask({ id: 'lost-answer', owner: 'o', parentTaskId: 'p', imageIndex: 0, waterMark: null, submitDeadlineAt: now + 1000 }, now)
    expect(t.repo.beginSend(row.id, null, now, { max: 20, windowStart: now - 10_000 })).toEqual({ slotId: 1 })
    t.repo.markOutcomeUnknown(row.id, now, 'timeout')
    const kieTaskId = hex32()
    expect((await deliver(callbackQuery(row.id), successCallback(kieTaskId))).statusCode).toBe(200)
    expect(t.repo.getTask(row.id)).toMatchObject({ status: 'succeeded', kie_task_id: kieTaskId })
  })

  it('refuses a callback naming another kie task while the task is open', async () => {
    const { id } = await submitted()
    const res = await deliver(callbackQuery(id), successCallback(hex32()))
    expect(res.statusCode).toBe(409)
    expect((await task(id)).status).toBe('submitted')
    expect(deliveries(id).map((d) => d.verdict)).toEqual(['kie_task_mismatch'])
  })
})

describe('kie.ai webhook signature (KIE_WEBHOOK_HMAC_KEY set)', () => {
  const key = 'test-webhook-hmac-key'
  const signed = (kieTaskId: string, ts: number, sig = signKieCallback(key, kieTaskId, ts)) => ({
    'x-webhook-timestamp': String(ts),
    'x-webhook-signature': sig
  })

  it('matches the documented test vector', () => {
    expect(signKieCallback(key, 'ee9c2715375b7837f8bb51d641ff5863', 1769670760)).toBe('xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=')
  })

  it("accepts a valid signature, including kie.ai's last retry 21 minutes late", async () => {
    const { id, kieTaskId } = await submitted({ kieWebhookHmacKey: key })
    const ts = Math.floor(t.clock.now() / 1000)
    t.clock.advance(21 * 60_000)
    expect((await deliver(callbackQuery(id), successCallback(kieTaskId), signed(kieTaskId, ts))).statusCode).toBe(200)
    expect((await task(id)).status).toBe('succeeded')
  })

  it('accepts a signature made with a previous key while kie.ai rotates it', async () => {
    const { id, kieTaskId } = await submitted({ kieWebhookHmacKey: 'the-new-key', previousKieWebhookHmacKeys: [key] })
    const ts = Math.floor(t.clock.now() / 1000)
    expect((await deliver(callbackQuery(id), successCallback(kieTaskId), signed(kieTaskId, ts))).statusCode).toBe(200)
  })

  it.each([
    ['no signature headers', () => ({}), 'signature_missing'],
    ['a wrong signature', (k: string, ts: number) => signed(k, ts, signKieCallback('wrong-key', k, ts)), 'signature_invalid'],
    ['a signature over another task id', (k: string, ts: number) => signed(k, ts, signKieCallback(key, hex32(), ts)), 'signature_invalid'],
    ['a timestamp 31 minutes old', (k: string, ts: number) => signed(k, ts - 31 * 60), 'signature_stale'],
    ['a timestamp far in the future', (k: string, ts: number) => signed(k, ts + 3600), 'signature_stale']
  ])('refuses %s with 401 and changes nothing', async (_name, headers, verdict) => {
    const { id, kieTaskId } = await submitted({ kieWebhookHmacKey: key })
    const ts = Math.floor(t.clock.now() / 1000)
    const res = await deliver(callbackQuery(id), successCallback(kieTaskId), headers(kieTaskId, ts))
    expect(res.statusCode).toBe(401)
    expect((await task(id)).status).toBe('submitted')
    expect(deliveries(id).map((d) => d.verdict)).toEqual([verdict])
  })
})
