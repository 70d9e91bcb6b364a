import { describe, expect, it } from 'vitest'
import pino from 'pino'
import { Writable } from 'node:stream'
import { openDatabase } from '../src/db/open.js'
import { reconcileOnce } from '../src/workers/reconciler.js'
import { sendDue } from '../src/workers/sender.js'
import { auth, buildTestApp, FakeClock, FakeKie, hex32 } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx

const queue = { rateLimitMax: 3, rateLimitWindowMs: 1000, retryBaseMs: 100, retryCapMs: 1000, submitDeadlineMs: 5000 }
const post = (payload: unknown = { taskId: hex32(), imageIndex: 0 }) =>
  t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: payload as object })
const send = () => sendDue({ repo: t.repo, dispatcher: t.app.services.dispatcher, clock: t.clock, log: t.app.log })
// Every send answered and its answer committed (answers share the app's group commit).
const settle = async () => {
  await t.app.services.dispatcher.idle()
  await new Promise((r) => setImmediate(r))
}
const transient = (reason: 'maintenance' | 'server_error' | 'rate_limited' | 'network') =>
  ({ ok: false as const, kind: 'transient' as const, reason, message: reason, retryAfterMs: null, maybeDelivered: false })

describe('pacing', () => {
  it('sends within the budget at once and queues the rest in arrival order, with position and estimate', async () => {
    t = await buildTestApp({ queue })
    const answers = []
    for (let i = 0; i < 5; i++) answers.push((await post()).json())
    expect(answers.map((a) => a.status)).toEqual(['submitted', 'submitted', 'submitted', 'queued', 'queued'])
    expect(answers.slice(3).map((a) => a.queue.position)).toEqual([1, 2])
    // The window is 1000 ms plus a 5% margin, counted from the first sends.
    expect(answers[3].queue.estimatedSendAt).toBe(new Date(t.clock.now() + 1050).toISOString())
    expect(t.kie.upscaleCalls).toHaveLength(3)

    expect(send()).toBeGreaterThan(0) // nothing free yet: wait for the window
    expect(t.kie.upscaleCalls).toHaveLength(3)
    t.clock.advance(1051)
    expect(send()).toBe(0)
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(5)
    const calledFor = t.kie.upscaleCalls.map((c) => new URL(c.callBackUrl).searchParams.get('task'))
    expect(calledFor).toEqual(answers.map((a) => a.id))
    for (const a of answers) expect(t.repo.getTask(a.id)).toMatchObject({ status: 'submitted', attempts: 1 })
  })

  it('keeps counting the window across a restart on the same database', async () => {
    const clock = new FakeClock()
    const dbPath = `/tmp/gw-pacing-${process.pid}-${Date.now()}.db`
    t = await buildTestApp({ queue, clock, dbPath })
    for (let i = 0; i < 3; i++) expect((await post()).json().status).toBe('submitted')
    await t.close()
    t = await buildTestApp({ queue, clock, db: openDatabase(dbPath) })
    expect((await post()).json()).toMatchObject({ status: 'queued', queue: { position: 1 } })
    expect(t.kie.upscaleCalls).toHaveLength(0)
  })

  it('counts a request from when its answer came back, since kie.ai counts arrivals', async () => {
    t = await buildTestApp({ queue: { ...queue, rateLimitMax: 1 } })
    let answer!: () => void
    const gate = new Promise<void>((r) => (answer = r))
    const original = t.kie.generateUpscale.bind(t.kie)
    t.kie.generateUpscale = async (req) => {
      if (t.kie.upscaleCalls.length === 0) await gate
      return original(req)
    }
    const slow = post()
    await new Promise((r) => setTimeout(r, 20))
    t.clock.advance(5000) // still in flight, long after the window it started in
    expect((await post()).json().status).toBe('queued')
    answer()
    expect((await slow).json().status).toBe('submitted')
    t.clock.advance(1049)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(1) // a window has not passed since the answer
    t.clock.advance(2)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(2)
  })

  it('lets a new task wait behind older ready ones instead of jumping the queue', async () => {
    t = await buildTestApp({ queue })
    for (let i = 0; i < 4; i++) await post()
    t.clock.advance(1051) // budget free again, but one task still waits in line
    const late = (await post()).json()
    expect(late).toMatchObject({ status: 'queued', queue: { position: 2 } })
  })
})

describe('retries', () => {
  it.each([
    ['429', transient('rate_limited'), 1050],
    ['455', transient('maintenance'), 50],
    ['5xx', transient('server_error'), 50],
    ['a refused connection', transient('network'), 50]
  ])('retries after %s and completes on the next attempt', async (_name, answer, waitMs) => {
    t = await buildTestApp({ queue })
    t.kie.next.push(answer)
    const task = (await post()).json()
    expect(task.status).toBe('queued')
    t.clock.advance(waitMs - 1)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(1)
    t.clock.advance(1)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(2)
    expect(t.repo.getTask(task.id)).toMatchObject({ status: 'submitted', attempts: 2, last_error: null })
  })

  it('fails with GW_UPSTREAM_UNAVAILABLE once the submit deadline is reached, never leaving it queued', async () => {
    t = await buildTestApp({ queue: { ...queue, circuitFailureThreshold: 100 } })
    t.kie.next.push(transient('maintenance'))
    const id = (await post()).json().id
    for (let i = 0; i < 50 && t.repo.getTask(id)!.status === 'queued'; i++) {
      t.kie.next.push(transient('maintenance'))
      t.clock.advance(1000)
      send()
      await settle()
    }
    expect(t.repo.getTask(id)).toMatchObject({ status: 'failed', error_code: 'GW_UPSTREAM_UNAVAILABLE' })
    expect(t.repo.getTask(id)!.completed_at! - t.repo.getTask(id)!.created_at).toBeLessThanOrEqual(5000)
  })

  // kie.ai answers {"code":500,"msg":"This field is required"} to some bad requests: retried
  // until the deadline, such a task held its place for 30 minutes and, counted against the
  // breaker, paused every other task.
  it('retries envelope 500 at most KIE_SERVER_ERROR_RETRIES times, then fails GW_UPSTREAM_ERROR with kie.ai\'s msg; the breaker stays closed', async () => {
    t = await buildTestApp({ queue: { ...queue, circuitFailureThreshold: 2, serverErrorRetries: 3, submitDeadlineMs: 600_000 } })
    const refusal = { ...transient('server_error'), message: 'This field is required' }
    for (let i = 0; i < 4; i++) t.kie.next.push(refusal)
    const res = await post()
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ status: 'queued' })
    const id = res.json().id
    for (let i = 0; i < 3; i++) {
      expect(t.repo.getTask(id)).toMatchObject({ status: 'queued', server_errors: i + 1 })
      t.clock.advance(1000)
      send()
      await settle()
    }
    expect(t.kie.upscaleCalls).toHaveLength(4)
    expect(t.repo.getTask(id)).toMatchObject({ status: 'failed', error_code: 'GW_UPSTREAM_ERROR', attempts: 4, server_errors: 3 })
    expect(t.repo.getTask(id)!.error_message).toContain('This field is required')
    expect(t.app.services.dispatcher.breaker.openUntil()).toBeNull()
    // Another task goes straight through: nothing was paused.
    expect((await post()).json()).toMatchObject({ status: 'submitted' })
  })

  it('never retries a definitive refusal', async () => {
    t = await buildTestApp({ queue })
    t.kie.next.push({ ok: false, kind: 'rejected', code: 422, msg: 'bad index', httpStatus: 200 })
    expect((await post()).statusCode).toBe(422)
    t.clock.advance(60_000)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(1)
  })
})

describe('circuit breaker', () => {
  it('opens after repeated failures, sends nothing while open, logs once, and probes after the cool-off', async () => {
    const lines: string[] = []
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) })
    t = await buildTestApp({ queue: { ...queue, rateLimitMax: 100, circuitFailureThreshold: 3, circuitCooldownMs: 5000, submitDeadlineMs: 60_000 }, loggerInstance: pino(sink) })
    for (let i = 0; i < 3; i++) t.kie.next.push(transient('maintenance'))
    const ids = []
    for (let i = 0; i < 6; i++) ids.push((await post()).json().id)
    expect(t.kie.upscaleCalls).toHaveLength(3) // the last three were held back without a request
    for (const id of ids) expect(t.repo.getTask(id)!.status).toBe('queued')
    expect(lines.filter((l) => l.includes('circuit open'))).toHaveLength(1)

    t.clock.advance(4000)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(3)
    t.clock.advance(1001)
    send() // half-open: exactly one probe
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(4)
    send()
    await settle()
    expect(t.kie.upscaleCalls).toHaveLength(9)
    for (const id of ids) expect(t.repo.getTask(id)!.status).toBe('submitted')
    expect(lines.filter((l) => l.includes('circuit closed'))).toHaveLength(1)
  })
})

describe('reconciliation', () => {
  const record = (kieTaskId: string, fields: Record<string, unknown>) => ({
    ok: true as const,
    data: { taskId: kieTaskId, successFlag: 0, resultInfoJson: null, errorCode: null, errorMessage: null, createTime: null, completeTime: null, ...fields }
  })
  const reconcile = () => reconcileOnce({ repo: t.repo, kie: t.kie, clock: t.clock, reconcile: t.app.services.reconcile, log: t.app.log, random: () => 0.5 })
  const submitted = async () => {
    const task = (await post()).json()
    return { id: task.id as string, kie: task.kieTaskId as string }
  }

  it.each([
    ['an object with {resultUrl} items and ISO time', { resultInfoJson: { resultUrls: [{ resultUrl: 'https://r.example/a.png' }] }, completeTime: '2026-11-25T12:00:30Z' }, '2026-11-25T12:00:30.000Z'],
    ['a JSON string and "YYYY-MM-DD HH:mm:ss"', { resultInfoJson: '{"resultUrls":[{"resultUrl":"https://r.example/a.png"}]}', completeTime: '2026-11-25 12:00:30' }, '2026-11-25T12:00:30.000Z'],
    ['plain strings and epoch milliseconds', { resultInfoJson: { resultUrls: ['https://r.example/a.png'] }, completeTime: Date.parse('2026-11-25T12:00:30Z') }, '2026-11-25T12:00:30.000Z']
  ])('applies success from record-info given %s', async (_name, fields, completedAt) => {
    t = await buildTestApp({ queue, reconcile: { reconcileAfterMs: 60_000 } })
    const { id, kie } = await submitted()
    t.kie.records.set(kie, record(kie, { successFlag: 1, ...fields }))
    t.clock.advance(59_999)
    expect(await reconcile()).toBe(0) // heard from it too recently
    t.clock.advance(1)
    expect(await reconcile()).toBe(1)
    const view = (await t.app.inject({ url: `/upscale/${id}`, headers: auth() })).json()
    expect(view).toMatchObject({ status: 'succeeded', resultUrls: ['https://r.example/a.png'], completedAt })
    t.clock.advance(3_600_000)
    expect(await reconcile()).toBe(0) // final: never polled again
  })

  it.each([2, 3])('applies failure from successFlag %i with its message', async (flag) => {
    t = await buildTestApp({ queue, reconcile: { reconcileAfterMs: 1000 } })
    const { id, kie } = await submitted()
    t.kie.records.set(kie, record(kie, { successFlag: flag, errorCode: 500, errorMessage: 'Banned prompt' }))
    t.clock.advance(1000)
    await reconcile()
    expect(t.repo.getTask(id)).toMatchObject({ status: 'failed', error_code: 'GW_UPSTREAM_FAILED', error_message: 'Banned prompt', status_source: 'reconcile' })
  })

  it('times a task out from its last sign of life: polls that find it generating do not count', async () => {
    t = await buildTestApp({ queue, reconcile: { reconcileAfterMs: 1000, taskTimeoutMs: 10_000 } })
    const { id, kie } = await submitted()
    t.kie.records.set(kie, record(kie, { successFlag: 0 }))
    for (let i = 0; i < 9; i++) {
      t.clock.advance(1000)
      await reconcile()
    }
    expect(t.repo.getTask(id)!.status).toBe('submitted')
    t.clock.advance(1000)
    await reconcile()
    expect(t.repo.getTask(id)).toMatchObject({ status: 'failed', error_code: 'GW_TIMEOUT', status_source: 'timeout' })
  })

  it('counts a change of upstream state as a sign of life', async () => {
    t = await buildTestApp({ queue, reconcile: { reconcileAfterMs: 1000, taskTimeoutMs: 10_000 } })
    const { id, kie } = await submitted()
    t.kie.records.delete(kie) // record-info: "recordInfo is null"
    t.clock.advance(8000)
    await reconcile()
    t.kie.records.set(kie, record(kie, { successFlag: 0 })) // now it is generating: a change
    t.clock.advance(8000)
    await reconcile()
    t.clock.advance(8000)
    await reconcile()
    expect(t.repo.getTask(id)!.status).toBe('submitted')
    t.clock.advance(2001)
    await reconcile()
    expect(t.repo.getTask(id)!.error_code).toBe('GW_TIMEOUT')
  })

  it('fails an unknown outcome with GW_UPSTREAM_OUTCOME_UNKNOWN once callbacks can no longer come', async () => {
    t = await buildTestApp({ queue, reconcile: { outcomeUnknownAfterMs: 60_000 } })
    t.kie.next.push({ ok: false, kind: 'transient', reason: 'timeout', message: 'no answer', retryAfterMs: null, maybeDelivered: true })
    const id = (await post()).json().id
    t.clock.advance(59_999)
    await reconcile()
    expect(t.repo.getTask(id)!.status).toBe('submitted')
    t.clock.advance(1)
    await reconcile()
    const view = (await t.app.inject({ url: `/upscale/${id}`, headers: auth() })).json()
    expect(view).toMatchObject({ status: 'failed', error: { code: 'GW_UPSTREAM_OUTCOME_UNKNOWN', message: expect.stringContaining('safe to resubmit') } })
    expect(t.kie.upscaleCalls).toHaveLength(1)
  })

  it('lets a callback and a poll race: whichever comes first wins, once', async () => {
    t = await buildTestApp({ queue, reconcile: { reconcileAfterMs: 1000 } })
    const { id, kie } = await submitted()
    t.kie.records.set(kie, record(kie, { successFlag: 3, errorMessage: 'failed upstream' }))
    t.clock.advance(1000)
    await reconcile()
    const { callbackQuery, successCallback } = await import('./helper.js')
    const res = await t.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(id)}`, payload: successCallback(kie) })
    expect(res.statusCode).toBe(200)
    expect(t.repo.getTask(id)!.status).toBe('failed')
    expect(t.repo.taskEvents(id).map((e) => `${e.from_status}->${e.to_status}:${e.source}`)).toEqual([
      'null->queued:create',
      'queued->submitted:submit',
      'submitted->failed:reconcile'
    ])
  })
})

describe('crash recovery', () => {
  it('never resends a task whose request was in flight at a crash, and frees leases of tasks not yet sent', async () => {
    const dbPath = `/tmp/gw-recover-${process.pid}-${Date.now()}.db`
    const clock = new FakeClock()
    t = await buildTestApp({ queue, clock, dbPath })
    const now = clock.now()
    const inFlight = t.repo.createTask({ id: 'in-flight', owner: 'o', parentTaskId: 'p', imageIndex: 0, waterMark: null, submitDeadlineAt: now + 5000 }, now)
    const leased = t.repo.createTask({ id: 'leased', owner: 'o', parentTaskId: 'p', imageIndex: 1, waterMark: null, submitDeadlineAt: now + 5000 }, now)
    t.repo.claimReady('dead-process', now, 30_000, 10)
    expect(t.repo.beginSend(inFlight.id, 'dead-process', now, { max: 20, windowStart: now - 10_000 })).toEqual({ slotId: 1 })
    await t.close() // as if killed here

    const kie = new FakeKie()
    t = await buildTestApp({ queue, clock, kie, db: openDatabase(dbPath) })
    expect(t.repo.getTask(inFlight.id)).toMatchObject({ status: 'submitted', send_state: 'sending', status_source: 'recovery' })
    expect(t.repo.getTask(leased.id)).toMatchObject({ status: 'queued', lease_owner: null })
    send()
    await settle()
    expect(kie.upscaleCalls.map((c) => c.imageIndex)).toEqual([1])
  })
})
