import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { TaskRow } from '../src/db/repository.js'
import { buildSimulator, mulberry32, type ApiCall, type RunningSimulator, type SimulatorOptions } from '../src/simulator/index.js'
import { CALLBACK_SECRET, KEY_A, KEY_B } from './helper.js'
import { api, freePort, HMAC_KEY, SIM_KEY, spawnGateway, tempDir, until } from './e2e-helper.js'

// Crash harness: the built server (dist/src/server.js) as a child process, killed with SIGKILL at
// random moments or stopped with SIGTERM under load, always on one database file and one port,
// against the simulator running in this process. Reproduce a failure with CRASH_SEED=<seed>.

const UPSCALE_PATH = '/api/v1/mj/generateUpscale'
const FINAL = new Set(['succeeded', 'failed'])

// A small rate budget on both sides, so bursts overflow into the durable send queue.
const RATE_MAX = 5
const RATE_WINDOW_MS = 500

type Child = ReturnType<typeof spawnGateway>
type Sim = RunningSimulator & { setDelay: (f: () => number) => void }

let dir: string
let dbPath: string
let port: number
let base: string
let sim: Sim | null = null
let children: Child[] = []
/** When a gateway answered /readyz until it was killed: callbacks in these spans should land. */
let upSpans: Array<[number, number]> = []

beforeEach(async () => {
  dir = tempDir()
  dbPath = join(dir, 'gw.db')
  port = await freePort()
  base = `http://127.0.0.1:${port}`
  upSpans = []
})
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') {
    children.forEach((c, i) => console.log(`--- gateway process ${i + 1} output (tail) ---\n${c.output().slice(-4000)}`))
  }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await Promise.all(children.map((c) => c.exited))
  children = []
  await sim?.close()
  sim = null
  // The folder is removed after this by helper.ts's shared cleanup.
})

/**
 * The simulator, with a hook that holds generateUpscale requests for `delay()` ms after their
 * arrival was recorded (the rate limiter counts arrivals): kills and signals then land while kie.ai
 * has the request but the gateway has no answer yet. Unlike a scripted answer, the request is then
 * handled for real, so the task exists on the simulator and its callback comes.
 */
async function startSlowSim(opts: Partial<SimulatorOptions>): Promise<Sim> {
  let delay: () => number = () => 0
  const { app, sim: state } = buildSimulator({ apiKey: SIM_KEY, hmacKey: HMAC_KEY, ...opts })
  app.addHook('preHandler', async (request) => {
    if (request.method === 'POST' && request.url.startsWith(UPSCALE_PATH)) {
      const ms = delay()
      if (ms > 0) await sleep(ms)
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  state.publicUrl = url
  return { url, sim: state, close: async () => void (await app.close()), setDelay: (f) => void (delay = f) }
}

async function startGatewayProcess(extraEnv: Record<string, string> = {}) {
  if (!sim) throw new Error('start the simulator first')
  const child = spawnGateway({
    NODE_ENV: 'production',
    PORT: String(port),
    DATABASE_PATH: dbPath,
    PUBLIC_BASE_URL: base,
    KIE_API_KEY: SIM_KEY,
    KIE_BASE_URL: sim.url,
    KIE_WEBHOOK_HMAC_KEY: HMAC_KEY,
    API_KEYS: `${KEY_A},${KEY_B}`,
    CALLBACK_SECRET,
    KIE_TIMEOUT_MS: '5000',
    KIE_RATE_LIMIT_MAX: String(RATE_MAX),
    KIE_RATE_LIMIT_WINDOW_MS: String(RATE_WINDOW_MS),
    RECONCILE_AFTER_MS: '300',
    // Longer than the simulator's callback retries (0.3 + 1.5 + 4.5 s), as 35 min outlasts kie.ai's 21 min.
    OUTCOME_UNKNOWN_AFTER_MS: '7000',
    RETRY_BASE_MS: '100',
    RETRY_CAP_MS: '1000',
    ...extraEnv
  })
  children.push(child)
  await until(
    'the gateway to be ready',
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway exited early: ${child.output()}`)
      return (await fetch(`${base}/readyz`).catch(() => null))?.ok
    },
    15_000
  )
  return child
}

/** Reads the database file directly (alongside the running gateway: WAL mode allows it). */
function readDb<T>(read: (db: Database.Database) => T): T {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    return read(db)
  } finally {
    db.close()
  }
}
const allTasks = () => readDb((db) => db.prepare('SELECT * FROM tasks ORDER BY seq').all() as TaskRow[])
const deliveriesByTask = () =>
  new Map(
    readDb((db) => db.prepare('SELECT task_id, count(*) AS n FROM callback_deliveries GROUP BY task_id').all() as Array<{ task_id: string; n: number }>).map(
      (r) => [r.task_id, r.n]
    )
  )
const recoveredIds = () =>
  new Set(readDb((db) => db.prepare(`SELECT DISTINCT task_id FROM task_events WHERE source = 'recovery'`).all() as Array<{ task_id: string }>).map((r) => r.task_id))

async function waitAllFinal(timeoutMs: number): Promise<TaskRow[]> {
  try {
    return await until('every task to be final', () => {
      const rows = allTasks()
      return rows.every((t) => FINAL.has(t.status)) ? rows : undefined
    }, timeoutMs)
  } catch (err) {
    const open = allTasks().filter((t) => !FINAL.has(t.status))
    console.log('tasks still open:', open.map((t) => ({ id: t.id, status: t.status, send: t.send_state, kie: t.kie_task_id, err: t.last_error })))
    throw err
  }
}

/** One POST /upscale; never throws: a connection error is a result too. */
type PostResult = { answered: true; status: number; id: string | null; body: unknown; complete: boolean } | { answered: false; status: 0; error: string }
async function postUpscale(parent: string, imageIndex: number, key = KEY_A): Promise<PostResult> {
  try {
    const res = await api(base, key).post('/upscale', { taskId: parent, imageIndex })
    // The Location header names the task even when the body cannot be read any more.
    const id = res.headers.get('location')?.replace('/upscale/', '') ?? null
    let body: unknown = null
    let complete = true
    try {
      body = await res.json()
    } catch {
      complete = false
    }
    return { answered: true, status: res.status, id, body, complete }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } }
    return { answered: false, status: 0, error: `${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}` }
  }
}

/** The task id the gateway put into a callback URL or an upscale request body. */
function taskParam(url: unknown): string | null {
  if (typeof url !== 'string') return null
  try {
    return new URL(url).searchParams.get('task')
  } catch {
    return null
  }
}

/**
 * The end-state checks both tests share: nothing acknowledged is lost, nothing is sent twice,
 * the rate limiter never refused the gateway, every task is final, successes carry kie.ai's
 * result URLs, and every callback kie.ai saw answered 200 was stored first.
 */
async function checkEndState(tasks: TaskRow[], acked: Map<string, string>, label: string) {
  const s = sim as Sim
  const byId = new Map(tasks.map((t) => [t.id, t]))

  // 0 acknowledged tasks lost, and each is readable by its owner (and only by its owner).
  const lost = [...acked.keys()].filter((id) => !byId.has(id))
  expect(lost, `${label}: acknowledged tasks missing from the database`).toEqual([])
  for (const [id, key] of acked) {
    const res = await api(base, key).get(`/upscale/${id}`)
    expect(res.status, `${label}: GET /upscale/${id} by its owner`).toBe(200)
    const view = await res.json()
    expect(view.status).toBe(byId.get(id)?.status)
  }
  const [someId, owner] = [...acked][0] ?? []
  if (someId !== undefined) {
    const other = owner === KEY_A ? KEY_B : KEY_A
    expect((await api(base, other).get(`/upscale/${someId}`)).status, 'another key gets 404').toBe(404)
  }

  // 0 tasks sent twice. Hard: no task may have more than one request that kie.ai could have
  // turned into a (billed) upscale, i.e. one not refused outright with an answer.
  const upscaleCalls = s.sim.calls.filter((c) => c.method === 'POST' && c.path === UPSCALE_PATH)
  const describeCalls = (id: string) =>
    s.sim.upscaleCallsFor(id).map((c) => ({ at: c.at, http: c.httpStatus, code: c.code, created: c.taskId !== null, fault: c.fault }))
  const mayHaveCreated = (c: ApiCall) => c.taskId !== null || c.httpStatus === 0
  const billedTwice = tasks.filter((t) => s.sim.upscaleCallsFor(t.id).filter(mayHaveCreated).length > 1)
  expect(billedTwice.map((t) => ({ id: t.id, calls: describeCalls(t.id) })), `${label}: tasks that kie.ai may have made twice`).toEqual([])
  const strangers = upscaleCalls.filter((c) => !byId.has(taskParam((c.body as { callBackUrl?: unknown } | undefined)?.callBackUrl) ?? ''))
  expect(strangers.length, `${label}: generateUpscale calls for tasks the database does not know`).toBe(0)

  // The gateway's pacing kept within kie.ai's limit: no 429 from the simulator's own limiter, so
  // no task needed a second request at all. Soft, so that the checks below still run.
  const limited = upscaleCalls.filter((c) => c.httpStatus === 429 && c.fault === null)
  if (limited.length > 0) {
    const t0 = upscaleCalls[0]?.at ?? 0
    console.log(
      `${label}: ${limited.length} of ${upscaleCalls.length} generateUpscale calls refused by the rate limiter; arrivals (ms after the first, HTTP status):\n` +
        upscaleCalls.map((c) => `${c.at - t0}:${c.httpStatus}`).join(' ')
    )
    // The gateway counts a send from beginSend (tasks.sent_at); the simulator counts its arrival.
    const lag = tasks
      .filter((t) => t.attempts === 1 && t.sent_at !== null)
      .flatMap((t) => s.sim.upscaleCallsFor(t.id).map((c) => c.at - (t.sent_at as number)))
      .sort((a, b) => a - b)
    console.log(
      `${label}: delay from the gateway's send slot to the simulator's arrival, single-attempt tasks (ms): ` +
        `min ${lag[0]}, median ${lag[Math.floor(lag.length / 2)]}, max ${lag[lag.length - 1]}; ` +
        `the gateway's margin is ${Math.ceil(RATE_WINDOW_MS * 0.05)} ms`
    )
  }
  expect.soft(limited.length, `${label}: generateUpscale calls refused by the simulator's rate limiter (${RATE_MAX} per ${RATE_WINDOW_MS} ms)`).toBe(0)
  const sentTwice = tasks.filter((t) => s.sim.upscaleCallsFor(t.id).length > 1)
  expect.soft(sentTwice.map((t) => ({ id: t.id, calls: describeCalls(t.id) })), `${label}: tasks sent to kie.ai more than once`).toEqual([])

  // Every task final.
  expect(tasks.filter((t) => !FINAL.has(t.status)).map((t) => t.id)).toEqual([])

  // Successes carry exactly the URLs kie.ai recorded for their kie task, which was made for this task.
  for (const t of tasks.filter((t) => t.status === 'succeeded')) {
    const kie = t.kie_task_id === null ? undefined : s.sim.tasks.get(t.kie_task_id)
    expect(kie, `${label}: succeeded task ${t.id} names a kie task the simulator made`).toBeDefined()
    expect(taskParam(kie?.callBackUrl), `kie task ${t.kie_task_id} belongs to ${t.id}`).toBe(t.id)
    expect(JSON.parse(t.result_urls ?? 'null')).toEqual(kie?.resultUrls)
    expect(s.sim.upscaleCallsFor(t.id).flatMap((c) => (c.taskId === null ? [] : [c.taskId])), `the request that made ${t.id}`).toEqual([t.kie_task_id])
  }

  // A callback that got HTTP 200 was stored before the answer: kill -9 must not undo it.
  const stored = deliveriesByTask()
  const answered = new Map<string, number>()
  for (const cb of s.sim.callbacks) {
    const id = taskParam(cb.url)
    if (cb.status === 200 && id !== null) answered.set(id, (answered.get(id) ?? 0) + 1)
  }
  const unstored = [...answered].filter(([id, n]) => (stored.get(id) ?? 0) < n).map(([id, n]) => ({ id, answered200: n, stored: stored.get(id) ?? 0 }))
  expect(unstored, `${label}: callbacks answered 200 but not stored`).toEqual([])

  return { upscaleCalls, answered }
}

function summarize(label: string, tasks: TaskRow[], acked: Map<string, string>, extra: Record<string, unknown>) {
  const s = sim as Sim
  const failedBy: Record<string, number> = {}
  for (const t of tasks) if (t.status === 'failed') failedBy[t.error_code ?? '?'] = (failedBy[t.error_code ?? '?'] ?? 0) + 1
  // Failed as "outcome unknown" although kie.ai did make (and bill) the upscale: its callback came too late.
  const billedButFailedTasks = tasks.filter((t) => t.status === 'failed' && s.sim.upscaleCallsFor(t.id).some((c) => c.taskId !== null))
  const billedButFailed = billedButFailedTasks.length
  for (const t of billedButFailedTasks) {
    const sentAt = t.sent_at ?? 0
    const span = (at: number) => upSpans.find(([from, to]) => at >= from && at <= to)
    const upState = (at: number) => {
      const found = span(at)
      return found === undefined ? 'gateway down' : found[1] === Number.POSITIVE_INFINITY ? 'gateway up' : `gateway killed ${found[1] - at} ms later`
    }
    const attempts = s.sim.callbacks
      .filter((c) => taskParam(c.url) === t.id)
      .map((c) => `+${c.at - sentAt}ms:${c.status ?? 'no answer'}(${upState(c.at)})`)
    const verdicts = readDb((db) => db.prepare('SELECT received_at, verdict, http_status FROM callback_deliveries WHERE task_id = ?').all(t.id) as Array<{ received_at: number; verdict: string; http_status: number }>)
    console.log(
      `[${label}] made by kie.ai but failed ${t.error_code} at +${(t.completed_at ?? 0) - sentAt}ms after its send: callback attempts ${attempts.join(' ')}; ` +
        `stored deliveries ${verdicts.map((v) => `+${v.received_at - sentAt}ms:${v.verdict}/${v.http_status}`).join(' ') || 'none'}`
    )
  }
  const recovered = recoveredIds()
  console.log(
    `[${label}] ` +
      JSON.stringify({
        ...extra,
        tasks: tasks.length,
        acked: acked.size,
        succeeded: tasks.filter((t) => t.status === 'succeeded').length,
        failed: failedBy,
        recoveredInFlightSends: recovered.size,
        billedButFailed,
        upscaleCalls: s.sim.calls.filter((c) => c.path === UPSCALE_PATH).length,
        callbackAttempts: s.sim.callbacks.length
      })
  )
}

const seedFromEnv = () => {
  const fromEnv = Number(process.env.CRASH_SEED)
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1 + Math.floor(Math.random() * 2 ** 31)
}

describe('crash harness: the built server under kill -9 and SIGTERM', () => {
  it('a kill -9 harness: loses no acknowledged task, sends none twice, and finishes every task', async () => {
    const seed = seedFromEnv()
    console.log(`[kill -9 harness] seed ${seed} (rerun with CRASH_SEED=${seed})`)
    const rand = mulberry32(seed)
    const ROUNDS = 7
    const BURST = 12
    const started = Date.now()

    // Callback retries 0.3, 1.5 and 4.5 s after a failed attempt: they outlast a restart.
    sim = await startSlowSim({
      rateLimitMax: RATE_MAX,
      rateLimitWindowMs: RATE_WINDOW_MS,
      completionDelayMs: 200,
      callbackRetryScale: 0.005,
      seed
    })
    // Up to 150 ms between kie.ai receiving a request and answering it.
    sim.setDelay(() => Math.floor(rand() * 150))
    const parents = Array.from({ length: 4 }, (_, i) => sim!.sim.createParentTask(`crash parent ${i}`))

    const acked = new Map<string, string>()
    const rounds: Array<Record<string, unknown>> = []
    for (let round = 1; round <= ROUNDS; round++) {
      const child = await startGatewayProcess()
      const upFrom = Date.now()
      // Half the rounds die while the burst's requests are in flight, half while queued tasks are being sent.
      const killAfterMs = Math.floor(rand() < 0.5 ? rand() * 250 : 250 + rand() * 750)
      const keys = Array.from({ length: BURST }, () => (rand() < 0.5 ? KEY_A : KEY_B))
      const callsBefore = sim.sim.calls.length
      const t0 = Date.now()
      let settled = 0
      const burst = keys.map((key, i) =>
        (async () => {
          const r = await postUpscale(parents[i % 4] as string, i % 4, key)
          settled++
          return { key, r }
        })()
      )
      await sleep(killAfterMs)
      const pendingPosts = BURST - settled
      const pendingSends = sim.sim.calls.slice(callsBefore).filter((c) => c.path === UPSCALE_PATH && c.httpStatus === 0).length
      upSpans.push([upFrom, Date.now()])
      child.kill('SIGKILL')
      expect(await child.exited).toBeNull()
      const results = await Promise.all(burst)
      const statuses: Record<string, number> = {}
      const errors = new Set<string>()
      for (const { key, r } of results) {
        statuses[r.status] = (statuses[r.status] ?? 0) + 1
        if (!r.answered) errors.add(r.error)
        else if (r.status !== 202) errors.add(JSON.stringify(r.body))
        if (r.answered && r.status === 202) {
          expect(r.id, 'a 202 names its task').toMatch(/^[0-9a-f-]{36}$/)
          acked.set(r.id as string, key)
        }
      }
      rounds.push({ round, killAfterMs, actualMs: Date.now() - t0, pendingPosts, pendingSends, statuses, errors: [...errors] })
      console.log(`[kill -9 harness] round ${round}: ${JSON.stringify(rounds[rounds.length - 1])}`)
    }

    // The harness proves nothing if nothing got through: most rounds must have acknowledged tasks.
    const answeredOther = rounds.flatMap((r) => Object.keys(r.statuses as Record<string, number>).filter((s) => s !== '0' && s !== '202'))
    expect(answeredOther, 'POST /upscale answers other than 202 (details in the round lines)').toEqual([])
    expect(acked.size, 'acknowledged tasks over all rounds').toBeGreaterThanOrEqual(BURST)

    // The last start: everything must come to an end.
    const last = await startGatewayProcess()
    upSpans.push([Date.now(), Number.POSITIVE_INFINITY])
    const tasks = await waitAllFinal(25_000)
    summarize('kill -9 harness', tasks, acked, { seed, rounds: ROUNDS, ms: Date.now() - started })
    await checkEndState(tasks, acked, `seed ${seed}`)

    // After all that, a clean stop still works.
    last.kill('SIGTERM')
    expect(await last.exited).toBe(0)
  }, 60_000)

  it('SIGTERM during load: answers every request it accepted, exits 0 within 10 s, and the restart finishes every task', async () => {
    const seed = seedFromEnv()
    console.log(`[SIGTERM] seed ${seed} (rerun with CRASH_SEED=${seed})`)
    const rand = mulberry32(seed)
    sim = await startSlowSim({
      rateLimitMax: RATE_MAX,
      rateLimitWindowMs: RATE_WINDOW_MS,
      completionDelayMs: 200,
      callbackRetryScale: 0.005,
      seed
    })
    // Slow submissions: kie.ai takes 800 ms to answer each, so sends are in flight at the signal.
    sim.setDelay(() => 800)
    const parent = sim.sim.createParentTask('sigterm parent')
    const child = await startGatewayProcess()

    // Wave 1: 30 concurrent requests; the signal comes once the server has taken them all in
    // (each has its row) while the first sends still wait for kie.ai.
    const WAVE1 = 30
    const wave1 = Array.from({ length: WAVE1 }, (_, i) => postUpscale(parent, i % 4))
    await until('the gateway to store all of wave 1', () => allTasks().length >= WAVE1, 10_000)
    await until('a send to be in flight', () => sim!.sim.calls.some((c) => c.path === UPSCALE_PATH && c.httpStatus === 0), 5_000)
    await sleep(Math.floor(rand() * 300))
    const inFlightSends = sim.sim.calls.filter((c) => c.path === UPSCALE_PATH && c.httpStatus === 0).length
    const signalAt = Date.now()
    child.kill('SIGTERM')

    // Wave 2: requests arriving during shutdown, on fresh and pooled connections alike.
    const wave2 = await Promise.all(Array.from({ length: 10 }, (_, i) => sleep(i * 15).then(() => postUpscale(parent, i % 4))))
    const code = await child.exited
    const exitMs = Date.now() - signalAt
    if (code !== 0) console.log(child.output())
    expect(code, 'exit code after SIGTERM').toBe(0)
    expect(exitMs).toBeLessThan(10_000)

    const first = await Promise.all(wave1)
    // Every request the server took in before the signal got its complete answer: a 202.
    expect(first.filter((r) => !(r.answered && r.status === 202 && r.complete && r.id !== null)), 'wave 1 answers').toEqual([])

    // During shutdown: a complete 202 or 503, or no connection at all; never a half answer.
    for (const r of wave2) {
      if (!r.answered) expect(r.error).toMatch(/ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed|socket/i)
      else {
        expect([202, 503], JSON.stringify(r)).toContain(r.status)
        expect(r.complete).toBe(true)
      }
    }

    // A clean stop leaves no send in doubt: everything in flight was answered and recorded.
    const afterStop = allTasks()
    expect(afterStop.filter((t) => t.send_state === 'sending').map((t) => t.id), 'sends left in doubt by a clean stop').toEqual([])
    // No task was created for a request that got no answer.
    const answeredIds = new Set([...first, ...wave2].flatMap((r) => (r.answered && r.id !== null ? [r.id] : [])))
    expect(afterStop.filter((t) => !answeredIds.has(t.id)).map((t) => t.id), 'tasks stored for requests left without an answer').toEqual([])
    const stateAtStop: Record<string, number> = {}
    for (const t of afterStop) stateAtStop[t.status] = (stateAtStop[t.status] ?? 0) + 1

    // Restart on the same database: the queue drains and every task ends.
    const acked = new Map([...first, ...wave2].flatMap((r) => (r.answered && r.status === 202 && r.id !== null ? [[r.id, KEY_A] as const] : [])))
    const restarted = await startGatewayProcess()
    const tasks = await waitAllFinal(25_000)
    const wave2Outcomes: Record<string, number> = {}
    for (const r of wave2) {
      const k = r.answered ? String(r.status) : r.error.split(':')[0] ?? 'error'
      wave2Outcomes[k] = (wave2Outcomes[k] ?? 0) + 1
    }
    summarize('SIGTERM', tasks, acked, { seed, exitMs, inFlightSends, stateAtStop, wave2: wave2Outcomes })
    await checkEndState(tasks, acked, `SIGTERM seed ${seed}`)
    restarted.kill('SIGTERM')
    expect(await restarted.exited).toBe(0)
  }, 60_000)
})

