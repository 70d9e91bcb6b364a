import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { auth, buildTestApp, callbackQuery, closeServer, failureCallback, hex32, onCleanup, successCallback } from './helper.js'
import { until } from './e2e-helper.js'

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
type Ctx = Awaited<ReturnType<typeof buildTestApp>>
// Apps and receivers are closed after each test by helper.ts.
let t: Ctx | null = null

interface Received {
  headers: Record<string, string>
  body: string
}

/** A client's webhook receiver on loopback that answers with the given statuses in turn. */
async function startReceiver(statuses: number[]) {
  const received: Received[] = []
  const receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body })
      res.writeHead(statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200).end('ok')
    })
  })
  onCleanup(() => closeServer(receiver))
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/upscale`, received }
}

const webhooks = (extra: object = {}) => ({
  clock: systemClock,
  workers: true,
  webhooks: { secret: SECRET, scheduleMs: [50, 50, 50], allowHosts: ['127.0.0.1'], ...extra }
})
const submit = async (callbackUrl: string) => {
  const res = await t!.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 2, callbackUrl } })
  expect(res.statusCode).toBe(202)
  return res.json() as { id: string; kieTaskId: string }
}
const complete = (task: { id: string; kieTaskId: string }, body: object = successCallback(task.kieTaskId)) =>
  t!.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(task.id)}`, payload: body })
const deliveries = async (id: string) => (await t!.app.inject({ url: `/upscale/${id}/deliveries`, headers: auth() })).json().items

describe('webhooks to the client', () => {
  it('sends one signed Standard Webhooks event when the task succeeds, verifiable by the standardwebhooks library', async () => {
    const hook = await startReceiver([200])
    t = await buildTestApp(webhooks())
    const task = await submit(hook.url)
    await complete(task)
    await until('the webhook', () => hook.received.length === 1)
    const [event] = hook.received
    const payload = new Webhook(SECRET).verify(event!.body, event!.headers) as { type: string; timestamp: string; data: { id: string; status: string; resultUrls: string[] } }
    expect(payload).toMatchObject({ type: 'upscale.succeeded', data: { id: task.id, status: 'succeeded', resultUrls: successCallback(task.kieTaskId).data.resultUrls } })
    const view = (await t.app.inject({ url: `/upscale/${task.id}`, headers: auth() })).json()
    expect(payload.data).toEqual(view)
    expect(event!.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/)
    // A duplicate callback changes nothing, so nothing more is sent.
    await complete(task)
    await new Promise((r) => setTimeout(r, 150))
    expect(hook.received).toHaveLength(1)
    expect(await deliveries(task.id)).toEqual([
      expect.objectContaining({ id: event!.headers['webhook-id'], type: 'upscale.succeeded', state: 'delivered', attempts: [expect.objectContaining({ statusCode: 200 })] })
    ])
  })

  it('sends upscale.failed for a failure', async () => {
    const hook = await startReceiver([204])
    t = await buildTestApp(webhooks())
    const task = await submit(hook.url)
    await complete(task, failureCallback(task.kieTaskId, 'moderated'))
    await until('the webhook', () => hook.received.length === 1)
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ type: 'upscale.failed', data: { status: 'failed', error: { message: 'moderated' } } })
  })

  it('retries a receiver that fails twice: one event id, three attempts, listed with their statuses', async () => {
    const hook = await startReceiver([500, 503, 200])
    t = await buildTestApp(webhooks())
    const task = await submit(hook.url)
    await complete(task)
    await until('three attempts', () => hook.received.length === 3)
    expect(new Set(hook.received.map((r) => r.headers['webhook-id'])).size).toBe(1)
    for (const r of hook.received) new Webhook(SECRET).verify(r.body, r.headers)
    const [d] = await until('delivered', async () => ((await deliveries(task.id))[0]?.state === 'delivered' ? deliveries(task.id) : undefined))
    expect(d.attempts.map((a: { statusCode: number }) => a.statusCode)).toEqual([500, 503, 200])
    expect(d.attempts.every((a: { durationMs: number; at: string }) => a.durationMs >= 0 && Date.parse(a.at) > 0)).toBe(true)
  })

  it('resumes after a restart between attempts, with the same event id', async () => {
    const hook = await startReceiver([500, 200])
    const dbPath = `/tmp/gw-webhooks-${process.pid}-${Date.now()}.db`
    t = await buildTestApp({ ...webhooks({ scheduleMs: [400] }), dbPath })
    const task = await submit(hook.url)
    await complete(task)
    await until('the first attempt', () => hook.received.length === 1)
    await t.close()
    t = await buildTestApp({ ...webhooks({ scheduleMs: [400] }), dbPath })
    await t.app.ready()
    await until('the second attempt', () => hook.received.length === 2)
    expect(hook.received[1]!.headers['webhook-id']).toBe(hook.received[0]!.headers['webhook-id'])
    expect(hook.received[1]!.body).toBe(hook.received[0]!.body)
  })

  it('dead-letters after the last attempt, and sends again on manual retry', async () => {
    const hook = await startReceiver([500, 500, 500, 500, 200])
    t = await buildTestApp(webhooks())
    const task = await submit(hook.url)
    await complete(task)
    const dead = await until('dead-lettered', async () => ((await deliveries(task.id))[0]?.state === 'dead' ? deliveries(task.id) : undefined))
    expect(dead[0].attempts).toHaveLength(4)
    expect(hook.received).toHaveLength(4)
    const retry = await t.app.inject({ method: 'POST', url: `/upscale/${task.id}/deliveries/retry`, headers: auth() })
    expect(retry.statusCode).toBe(202)
    await until('delivered', async () => (await deliveries(task.id))[0]?.state === 'delivered')
    expect(hook.received).toHaveLength(5)
    const again = await t.app.inject({ method: 'POST', url: `/upscale/${task.id}/deliveries/retry`, headers: auth() })
    expect(again.statusCode).toBe(409)
    expect(again.json().code).toBe('GW_NOTHING_TO_RETRY')
  })

  it('stops at 410 Gone', async () => {
    const hook = await startReceiver([410])
    t = await buildTestApp(webhooks())
    const task = await submit(hook.url)
    await complete(task)
    await until('dead', async () => (await deliveries(task.id))[0]?.state === 'dead')
    expect(hook.received).toHaveLength(1)
  })

  it('checks the address again at send time', async () => {
    t = await buildTestApp(webhooks({ allowHosts: [] }))
    await t.app.ready()
    const now = Date.now()
    t.repo.createTask({ id: 'sneaky', owner: 'o', parentTaskId: 'p', imageIndex: 0, waterMark: null, submitDeadlineAt: now + 1000, webhookUrl: 'http://127.0.0.1:9/x' }, now)
    t.repo.finish('sneaky', { status: 'failed', code: 'GW_UPSTREAM_FAILED', message: 'x' }, now, 'submit')
    await until('dead', () => t!.repo.webhookDeliveries('sneaky')[0]?.state === 'dead')
    expect(t.repo.webhookAttempts('sneaky')[0]).toMatchObject({ status_code: null, error: expect.stringContaining('refused') })
  })
})

describe('SSRF guard on callbackUrl', () => {
  const refused: Array<[string, string]> = [
    ['a loopback address', 'http://127.0.0.1:8080/x'],
    ['localhost', 'http://localhost/x'],
    ['a private 10/8 address', 'http://10.1.2.3/x'],
    ['a private 172.16/12 address', 'http://172.16.5.4/x'],
    ['a private 192.168/16 address', 'https://192.168.1.10/x'],
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/'],
    ['a CGNAT address', 'http://100.64.0.1/x'],
    ['0.0.0.0', 'http://0.0.0.0/x'],
    ['IPv6 loopback', 'http://[::1]/x'],
    ['an IPv6 unique-local address', 'http://[fd00:ec2::254]/x'],
    ['an IPv6 link-local address', 'http://[fe80::1]/x'],
    ['an IPv4-mapped IPv6 loopback', 'http://[::ffff:127.0.0.1]/x'],
    ['a non-http scheme', 'ftp://example.com/x'],
    ['a file URL', 'file:///etc/passwd'],
    ['credentials in the URL', 'https://user:pw@example.com/x'],
    ['not a URL', 'not a url']
  ]
  it.each(refused)('refuses %s with 400 naming the field, storing nothing', async (_name, callbackUrl) => {
    t = await buildTestApp({ webhooks: { secret: SECRET } })
    const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0, callbackUrl } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'GW_VALIDATION', message: expect.stringMatching(/^body\.callbackUrl: /) })
    expect((t.db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n).toBe(0)
    expect(t.kie.upscaleCalls).toHaveLength(0)
  })

  it('refuses callbackUrl when webhooks are not configured', async () => {
    t = await buildTestApp()
    const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0, callbackUrl: 'https://example.com/x' } })
    expect(res.statusCode).toBe(400)
    expect(res.json().message).toContain('WEBHOOK_SECRET')
  })

  // How single addresses are classified is tested once, in security-ssrf.test.ts ('the address classifier').
})

describe('client rate limit', () => {
  it('answers 429 with Retry-After in the common error shape, per client key', async () => {
    t = await buildTestApp({ clientRateLimit: { max: 3, windowMs: 60_000 } })
    for (let i = 0; i < 3; i++) expect((await t.app.inject({ url: '/upscale', headers: auth() })).statusCode).toBe(200)
    const res = await t.app.inject({ url: '/upscale', headers: auth() })
    expect(res.statusCode).toBe(429)
    expect(res.json()).toEqual({ statusCode: 429, error: 'Too Many Requests', code: 'GW_RATE_LIMITED', message: expect.stringContaining('retry in') })
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
    const { KEY_B } = await import('./helper.js')
    expect((await t.app.inject({ url: '/upscale', headers: auth(KEY_B) })).statusCode).toBe(200)
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200)
  })
})
