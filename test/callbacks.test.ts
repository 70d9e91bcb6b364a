import { Writable } from 'node:stream'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { reconcileOnce } from '../src/workers/reconciler.js'
import { callbackToken } from '../src/kie/callback-token.js'
import { signKieCallback } from '../src/kie/signature.js'
import { auth, buildTestApp, CALLBACK_SECRET, callbackQuery, failureCallback, hex32, successCallback } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx

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

  // Fails before issue 10: a success callback without URLs (the webhook-verification page's shape,
  // say) was recorded as a permanent failure, so a paid, successful upscale was reported failed.
  it('keeps a success without any URL open, answers 200, and asks record-info at once, which settles it', async () => {
    const { id, kieTaskId } = await submitted()
    t.clock.advance(5000)
    const res = await deliver(callbackQuery(id), successCallback(kieTaskId, []))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ received: true })
    expect(t.repo.getTask(id)).toMatchObject({ status: 'submitted', reconcile_at: t.clock.now(), last_activity_at: t.clock.now() })
    expect(deliveries(id)).toEqual([expect.objectContaining({ verdict: 'ambiguous', http_status: 200, kie_task_id: kieTaskId })])
    const url = 'https://tempfile.aiquickdraw.com/v/x_0_0.png'
    t.kie.records.set(kieTaskId, { ok: true, data: { taskId: kieTaskId, successFlag: '1', resultInfoJson: JSON.stringify({ resultUrls: [{ resultUrl: url }] }), completeTime: 1769670760 } })
    await reconcileOnce({ repo: t.repo, kie: t.kie, clock: t.clock, reconcile: t.app.services.reconcile, log: t.app.log })
    expect(await task(id)).toMatchObject({ status: 'succeeded', resultUrls: [url], completedAt: new Date(1769670760_000).toISOString() })
  })

  const shapes: Array<[string, (k: string) => unknown, string, unknown]> = [
    ['data.resultInfoJson as an object', (k) => ({ code: 200, msg: 'success', data: { taskId: k, resultInfoJson: { resultUrls: [{ resultUrl: 'https://r.example/a.png' }] } } }), 'succeeded', ['https://r.example/a.png']],
    ['data.resultInfoJson as a JSON string', (k) => ({ code: 200, msg: 'success', data: { taskId: k, resultInfoJson: JSON.stringify({ resultUrls: ['https://r.example/b.png'] }) } }), 'succeeded', ['https://r.example/b.png']],
    ['{resultUrl} objects in data.resultUrls', (k) => ({ code: 200, msg: 'success', data: { taskId: k, resultUrls: [{ resultUrl: 'https://r.example/c.png' }] } }), 'succeeded', ['https://r.example/c.png']],
    ['code as a numeric string', (k) => ({ code: '200', msg: 'success', data: { taskId: k, resultUrls: ['https://r.example/d.png'] } }), 'succeeded', ['https://r.example/d.png']],
    ['a failure with code as a string', (k) => ({ code: '500', msg: 'Banned prompt', data: { taskId: k, resultUrls: [] } }), 'failed', null],
    ["the webhook-verification page's shape (no URL)", (k) => ({ taskId: k, code: 200, msg: 'Success', data: { task_id: k, callbackType: 'task_completed' } }), 'ambiguous', null],
    ['a success with one unreadable URL', (k) => ({ code: 200, msg: 'success', data: { taskId: k, resultUrls: ['https://r.example/e.png', 'javascript:alert(1)'] } }), 'ambiguous', null],
    ['no code at all', (k) => ({ msg: 'success', data: { taskId: k, resultUrls: ['https://r.example/f.png'] } }), 'ambiguous', null],
    ['a code that is not a number', (k) => ({ code: 'OK', msg: 'success', data: { taskId: k, resultUrls: ['https://r.example/f.png'] } }), 'ambiguous', null],
    ['no kie task id anywhere', () => ({ code: 200, msg: 'success', data: { resultUrls: ['https://r.example/g.png'] } }), 'ambiguous', null],
    ['a body that is not JSON', () => '<html>oops', 'ambiguous', null]
  ]
  it.each(shapes)('reads %s', async (_name, body, expected, urls) => {
    const { id, kieTaskId } = await submitted()
    const sent = body(kieTaskId)
    const res = await deliver(callbackQuery(id), sent)
    expect(res.statusCode).toBe(200)
    const stored = deliveries(id)
    expect(stored).toHaveLength(1)
    expect(stored[0]?.body).toBe(typeof sent === 'string' ? sent : JSON.stringify(sent))
    if (expected === 'ambiguous') {
      expect(stored[0]?.verdict).toBe('ambiguous')
      expect(t.repo.getTask(id)).toMatchObject({ status: 'submitted', reconcile_at: t.clock.now() })
    } else {
      expect(stored[0]?.verdict).toBe('accepted')
      expect(await task(id)).toMatchObject({ status: expected, resultUrls: urls })
    }
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

  // Fails before issue 10 (it answered 409, so kie.ai kept retrying a callback that can never apply).
  it('answers 200 to a callback for a second kie.ai task, stores it apart, never applies it, counts and logs it', async () => {
    const lines: string[] = []
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) })
    const { id, kieTaskId } = await submitted({ loggerInstance: pino(sink) })
    const other = hex32()
    const res = await deliver(callbackQuery(id), successCallback(other))
    expect(res.statusCode).toBe(200)
    expect((await task(id)).status).toBe('submitted')
    expect(deliveries(id)).toEqual([expect.objectContaining({ verdict: 'duplicate_upstream_task', kie_task_id: other, http_status: 200 })])
    expect(lines.filter((l) => l.includes('billed twice'))).toHaveLength(1)
    // The genuine callback still applies; a second one for the other task after that is still told apart.
    expect((await deliver(callbackQuery(id), successCallback(kieTaskId))).statusCode).toBe(200)
    expect((await task(id)).status).toBe('succeeded')
    expect((await deliver(callbackQuery(id), failureCallback(other))).statusCode).toBe(200)
    expect(deliveries(id).map((d) => d.verdict)).toEqual(['duplicate_upstream_task', 'accepted', 'duplicate_upstream_task'])
    const metrics = (await t.app.inject({ url: '/metrics' })).body
    expect(metrics).toMatch(/^gateway_duplicate_upstream_tasks_total 2$/m)
  })
})

describe('kie.ai webhook signature (KIE_WEBHOOK_HMAC_KEY set)', () => {
  const key = 'test-webhook-hmac-key'
  const signed = (kieTaskId: string, ts: number, sig = signKieCallback(key, kieTaskId, ts)) => ({
    'x-webhook-timestamp': String(ts),
    'x-webhook-signature': sig
  })

  // The same vector is checked in simulator.test.ts against the simulator's own signer
  // (src/simulator/sign.ts): two implementations, each held to kie.ai's documentation.
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
    // The token was valid: record-info is asked at once rather than at the next scheduled poll.
    expect(t.repo.getTask(id)).toMatchObject({ reconcile_at: t.clock.now() })
  })

  it('checks a body that names no kie task against the kie task on record, and keeps it open', async () => {
    const { id, kieTaskId } = await submitted({ kieWebhookHmacKey: key })
    const ts = Math.floor(t.clock.now() / 1000)
    expect((await deliver(callbackQuery(id), '{"code":200', signed(kieTaskId, ts))).statusCode).toBe(200)
    expect((await deliver(callbackQuery(id), '{"code":200', signed(hex32(), ts))).statusCode).toBe(401)
    expect(deliveries(id).map((d) => d.verdict)).toEqual(['ambiguous', 'signature_invalid'])
    expect((await task(id)).status).toBe('submitted')
  })

  // kie.ai's webhookHmacKey setting off while the gateway expects signatures: one clear warning per 10 minutes.
  it('warns once per 10 minutes that unsigned callbacks mean the kie.ai setting is off', async () => {
    const lines: string[] = []
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) })
    const { id, kieTaskId } = await submitted({ kieWebhookHmacKey: key, loggerInstance: pino(sink) })
    const warnings = () => lines.filter((l) => l.includes('turn on the webhookHmacKey setting')).length
    for (let i = 0; i < 3; i++) expect((await deliver(callbackQuery(id), successCallback(kieTaskId))).statusCode).toBe(401)
    expect(warnings()).toBe(1)
    t.clock.advance(9 * 60_000)
    await deliver(callbackQuery(id), successCallback(kieTaskId))
    expect(warnings()).toBe(1)
    t.clock.advance(60_000)
    await deliver(callbackQuery(id), successCallback(kieTaskId))
    expect(warnings()).toBe(2)
  })
})
