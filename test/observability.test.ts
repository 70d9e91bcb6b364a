import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { callbackToken } from '../src/kie/callback-token.js'
import { createLogger } from '../src/logger.js'
import { auth, buildTestApp, CALLBACK_SECRET, callbackQuery, hex32, KEY_A, KEY_B, successCallback } from './helper.js'
import { HMAC_KEY, SIM_KEY, startGateway, startSim, until } from './e2e-helper.js'

// Apps and the simulator are closed after each test by helper.ts.
type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx | null = null

const metricValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('metrics', () => {
  it('counts tasks by status, submissions by outcome, callbacks by verdict, and the queue', async () => {
    t = await buildTestApp({ queue: { rateLimitMax: 2 } })
    const ok = (await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0 } })).json()
    t.kie.next.push({ ok: false, kind: 'rejected', code: 402, msg: 'no credits', httpStatus: 200 })
    await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 1 } })
    await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 2 } }) // over the budget: queued
    await t.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(ok.id)}`, payload: successCallback(ok.kieTaskId) })
    await t.app.inject({ method: 'POST', url: `/callbacks/mj?task=${ok.id}&token=forged`, payload: successCallback(ok.kieTaskId) })

    const res = await t.app.inject({ url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/plain')
    const text = res.body
    expect(metricValue(text, 'gateway_tasks{status="succeeded"}')).toBe(1)
    expect(metricValue(text, 'gateway_tasks{status="failed"}')).toBe(1)
    expect(metricValue(text, 'gateway_tasks{status="queued"}')).toBe(1)
    expect(metricValue(text, 'gateway_tasks{status="submitted"}')).toBe(0)
    expect(metricValue(text, 'gateway_queue_depth')).toBe(1)
    expect(metricValue(text, 'gateway_kie_submissions_total{outcome="accepted"}')).toBe(1)
    expect(metricValue(text, 'gateway_kie_submissions_total{outcome="rejected_402"}')).toBe(1)
    expect(metricValue(text, 'gateway_callbacks_total{verdict="accepted"}')).toBe(1)
    expect(metricValue(text, 'gateway_callbacks_total{verdict="bad_token"}')).toBe(1)
    expect(metricValue(text, 'gateway_kie_request_duration_seconds_count{endpoint="generateUpscale"}')).toBe(2)
    expect(metricValue(text, 'gateway_pacing_wait_seconds_count')).toBe(2)
    expect(text).toContain('process_cpu_user_seconds_total')
  })

  it('follows status changes made after start-up, from an existing database', async () => {
    const dbPath = `/tmp/gw-metrics-${process.pid}-${Date.now()}.db`
    t = await buildTestApp({ dbPath })
    await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0 } })
    await t.close()
    t = await buildTestApp({ dbPath })
    await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0 } })
    const text = (await t.app.inject({ url: '/metrics' })).body
    expect(metricValue(text, 'gateway_tasks{status="submitted"}')).toBe(2)
  })

  it('is protected by METRICS_TOKEN when set', async () => {
    t = await buildTestApp({ metricsToken: 'metrics-secret-token' })
    expect((await t.app.inject({ url: '/metrics' })).statusCode).toBe(401)
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401)
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-secret-token' } })).statusCode).toBe(200)
  })
})

describe('logs and headers', () => {
  it('logs one line per request, carries X-Request-Id to the kie.ai call, and leaks no secret', async () => {
    const lines: string[] = []
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) })
    const log = createLogger('debug', sink)
    const sim = await startSim()
    const { url } = await startGateway({ dbPath: ':memory:', simUrl: sim.url, kieLog: log, app: { apiKeys: [`billing:${KEY_A}`, KEY_B], loggerInstance: log } })

    const res = await fetch(`${url}/upscale`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json', 'x-request-id': 'trace-abc-123' },
      body: JSON.stringify({ taskId: sim.sim.createParentTask(), imageIndex: 1 })
    })
    expect(res.status).toBe(202)
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('cache-control')).toBe('no-store')
    const task = (await res.json()) as { id: string }
    await until('the callback', () => lines.some((l) => l.includes('"route":"/callbacks/mj"')))
    const other = await fetch(`${url}/upscale/${task.id}`, { headers: { authorization: `Bearer ${KEY_A}` } })
    expect(other.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    await fetch(`${url}/callbacks/mj?task=${task.id}&token=${callbackToken(CALLBACK_SECRET, task.id)}`, { method: 'POST', body: '{}' })

    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    const requests = entries.filter((e) => e.msg === 'request')
    const post = requests.filter((e) => e.reqId === 'trace-abc-123')
    expect(post).toHaveLength(1) // one line per request, not two
    expect(post[0]).toMatchObject({ method: 'POST', route: '/upscale', statusCode: 202, client: 'billing', taskId: task.id })
    expect(typeof post[0]!.durationMs).toBe('number')
    expect(entries.some((e) => e.reqId === 'trace-abc-123' && e.msg === 'kie.ai generateUpscale')).toBe(true)
    expect(requests.some((e) => e.route === '/callbacks/mj' && e.kieTaskId)).toBe(true)

    const all = lines.join('')
    for (const secret of [KEY_A, KEY_B, SIM_KEY, HMAC_KEY, CALLBACK_SECRET, callbackToken(CALLBACK_SECRET, task.id)]) {
      expect(all.includes(secret), `a secret leaked into the log: ${secret.slice(0, 6)}…`).toBe(false)
    }
  })
})
