// Shared by the end-to-end resilience tests: the gateway (real kie.ai client, sender and
// reconciler loops running) over loopback HTTP in front of the simulator. Every interval is scaled down (rate budget 5 per 500 ms on both sides, retries in tens of
// milliseconds) so the file runs in seconds; every server binds 127.0.0.1:0 and is closed
// after the test by test/helper.ts's shared cleanup.
import { join } from 'node:path'
import type { AppOptions } from '../src/app.js'
import type { QueueSettings, ReconcileSettings } from '../src/config.js'
import type { TaskRow } from '../src/db/repository.js'
import type { KieClient } from '../src/kie/client.js'
import type { ApiCall, RunningSimulator, SimulatorOptions } from '../src/simulator/index.js'
import { api, startGateway, startSim, tempDir, until } from './e2e-helper.js'

export type { LogLine } from './e2e-helper.js'

export const UPSCALE_PATH = '/api/v1/mj/generateUpscale'
export const RECORD_INFO_PATH = '/api/v1/mj/record-info'
/** The reconciler starts a run at least this long after the previous one ended (src/workers/plugin.ts). */
export const RECONCILER_PERIOD_MS = 1000

/** Fast settings: the same budget as the simulator's, small retries, no deadline or timeout in reach. */
export const FAST: QueueSettings = {
  rateLimitMax: 5,
  rateLimitWindowMs: 500,
  submitDeadlineMs: 30_000,
  retryBaseMs: 20,
  retryCapMs: 200,
  circuitFailureThreshold: 3,
  circuitCooldownMs: 300,
  serverErrorRetries: 3
}

/** Fast reconciliation: asked after 200 ms; no timeout in reach. */
export const FAST_RECONCILE: ReconcileSettings = { reconcileAfterMs: 200, taskTimeoutMs: 30_000, outcomeUnknownAfterMs: 30_000 }

/** A simulator and a gateway with the same rate budget, both closed after the test. */
export async function setup(
  opts: {
    sim?: Partial<SimulatorOptions>
    queue?: Partial<QueueSettings>
    reconcile?: Partial<ReconcileSettings>
    kieTimeoutMs?: number
    wrapKie?: (real: KieClient) => KieClient
    app?: (simUrl: string, dir: string) => Partial<AppOptions> & { kieApiKey?: string; kieBaseUrl?: string }
  } = {}
) {
  const queue = { ...FAST, ...opts.queue }
  const dir = tempDir()
  const running: RunningSimulator = await startSim({
    rateLimitMax: queue.rateLimitMax,
    rateLimitWindowMs: queue.rateLimitWindowMs,
    seed: 20261125,
    ...opts.sim
  })
  const extra = opts.app?.(running.url, dir) ?? {}
  const gw = await startGateway({
    dbPath: join(dir, 'gw.db'),
    simUrl: running.url,
    queue,
    ...(opts.kieTimeoutMs === undefined ? {} : { kieTimeoutMs: opts.kieTimeoutMs }),
    ...(opts.wrapKie === undefined ? {} : { wrapKie: opts.wrapKie }),
    // Clients here poll hard; the per-key limit is not under test.
    app: { clientRateLimit: { max: 1_000_000, windowMs: 60_000 }, reconcile: { ...FAST_RECONCILE, ...opts.reconcile }, ...extra }
  })
  const sim = running.sim
  const client = api(gw.url)

  const post = async (body: unknown) => {
    const res = await client.post('/upscale', body)
    return { status: res.status, location: res.headers.get('location'), body: await res.json(), answeredAt: Date.now() }
  }
  /** POST /upscale for a fresh finished parent grid. */
  const submit = (imageIndex = 0) => post({ taskId: sim.createParentTask(), imageIndex })
  const get = async (id: string) => (await client.get(`/upscale/${id}`)).json()
  const row = (id: string) => gw.repo.getTask(id) as TaskRow
  /** Waits (reading the database, cheaply) until the task is final, then answers GET /upscale/:id. */
  const final = async (id: string, timeoutMs = 10_000) => {
    await until(`task ${id} to be final`, () => ['succeeded', 'failed'].includes(row(id).status), timeoutMs)
    return get(id)
  }
  const upscaleCalls = () => sim.calls.filter((c) => c.method === 'POST' && c.path === UPSCALE_PATH)
  const recordInfoCalls = (kieTaskId?: string) =>
    sim.calls.filter((c) => c.path === RECORD_INFO_PATH && (kieTaskId === undefined || c.query.taskId === kieTaskId))
  /** The gateway task a generateUpscale call was for (its callBackUrl names it). */
  const taskOfCall = (c: ApiCall) => new URL((c.body as { callBackUrl: string }).callBackUrl).searchParams.get('task')
  const finalTransitions = (id: string) =>
    gw.repo.taskEvents(id).filter((e) => e.to_status === 'succeeded' || e.to_status === 'failed')

  return { sim, gw, queue, dir, client, post, submit, get, final, row, upscaleCalls, recordInfoCalls, taskOfCall, finalTransitions }
}

/** The largest number of timestamps inside any window [t, t + windowMs). */
export function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b)
  let best = 0
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= windowMs) j++
    best = Math.max(best, i - j + 1)
  }
  return best
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
export const statuses = (events: Array<{ from_status: string | null; to_status: string; source: string }>) =>
  events.map((e) => `${e.from_status ?? '∅'}→${e.to_status}:${e.source}`)

