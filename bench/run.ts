// npm run bench: the gateway's cost measured as ratios against baselines run in the same
// benchmark, so that the figures hold on a noisy machine. See BENCHMARKS.md.
import { execSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, freemem, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { callbackToken } from '../src/kie/callback-token.js'
import { parseClientKey } from '../src/plugins/client-auth.js'
import { API_KEY, CALLBACK_SECRET, SIM_API_KEY, cpuSeconds, forkServer, killAll, rssMb, sampleRss, sleep, startGateway, type Gateway } from './lib/children.js'
import { load, type LoadRequest, type LoadResult } from './lib/load.js'
import { paced, type PacedResult } from './lib/paced.js'
import { seedTasks } from './lib/seed.js'

// Durations in seconds; BENCH_QUICK=1 shortens everything (for a smoke test, not for the record).
const quick = process.env.BENCH_QUICK === '1'
const MAX_S = quick ? 2 : 8
const WARM_S = quick ? 1 : 2
const FIXED_S = quick ? 2 : 6
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? (quick ? 100_000 : 1_000_000))
const SMALL_ROWS = 10_000
const STATUS_RATE = 5_000
const CALLBACK_RATE = 200
const UPSCALE_RATE = 100
const CONNECTIONS = 50
// The ratios to bare Fastify are taken at both; each arm is sent the same READ_PATHS distinct requests.
const READ_CONNECTIONS = [10, 50] as const
const READ_PATHS = 1_000

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url))
const owner = parseClientKey(API_KEY).clientId
const auth = { authorization: `Bearer ${API_KEY}` }
const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-'))
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const progress = (msg: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
const r1 = (n: number) => Math.round(n * 10) / 10
const r2 = (n: number) => Math.round(n * 100) / 100
const logLines = (gw: Gateway) => readFileSync(gw.logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"request"')).length

function check(what: string, r: LoadResult | PacedResult) {
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${what}: ${r.non2xx} non-2xx answers and ${r.errors} errors`)
}

function machine() {
  const cpuModel = (() => {
    try {
      return /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown'
    } catch {
      return cpus()[0]?.model ?? 'unknown'
    }
  })()
  let disk = 'unknown'
  try {
    disk = execSync(`df -T ${tmpdir()} | tail -1 | awk '{print $1" "$2}'`, { encoding: 'utf8' }).trim()
  } catch {
    // not essential
  }
  return {
    cpu: cpuModel,
    nproc: cpus().length,
    memoryGb: r1(totalmem() / 2 ** 30),
    freeMemoryGb: r1(freemem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    tmpdirFilesystem: disk
  }
}

async function baseline(name: 'bare-fastify' | 'bare-http'): Promise<LoadResult> {
  const server = await forkServer<{ port: number }>(name)
  try {
    const url = `http://127.0.0.1:${server.ready.port}/`
    await load({ url, seconds: WARM_S, connections: CONNECTIONS })
    const r = await load({ url, seconds: MAX_S, connections: CONNECTIONS })
    check(name, r)
    return r
  } finally {
    await server.stop()
  }
}

async function main() {
  const started = Date.now()
  progress(`temporary files in ${tmp}`)
  const results: Record<string, unknown> = {}

  // 1. The ceiling.
  progress('baseline: bare Fastify route')
  const bareFastify = await baseline('bare-fastify')
  progress(`  ${Math.round(bareFastify.rps)} req/s`)
  progress('baseline: plain node:http')
  const bareHttp = await baseline('bare-http')
  progress(`  ${Math.round(bareHttp.rps)} req/s`)

  // 2. Start-up on an empty database (migrations run), three times.
  const readyEmpty: number[] = []
  for (let i = 0; i < 3; i++) {
    const gw = await startGateway({ dbPath: join(tmp, `empty-${i}.db`), logFile: join(tmp, `empty-${i}.log`) })
    readyEmpty.push(gw.readyMs)
    await gw.stop()
  }
  progress(`start-up to ready (empty database): ${readyEmpty.map((v) => Math.round(v)).join(', ')} ms`)

  // 3. Status reads with 10k stored tasks.
  progress(`seeding ${SMALL_ROWS} tasks`)
  const small = seedTasks(join(tmp, 'small.db'), SMALL_ROWS, { owner, status: 'succeeded', sampleEvery: 1 })
  let i = 0
  const statusPath = (ids: readonly { id: string }[]) => () => ({ path: `/upscale/${(ids[i++ % ids.length] as { id: string }).id}` })
  // READ_PATHS distinct task paths, spread over the sample: built once per connection by autocannon.
  const taskPaths = (ids: readonly { id: string }[], prefix: string): LoadRequest[] => {
    const step = Math.max(1, Math.floor(ids.length / READ_PATHS))
    const out: LoadRequest[] = []
    for (let k = 0; k < ids.length && out.length < READ_PATHS; k += step) out.push({ path: `${prefix}${(ids[k] as { id: string }).id}` })
    return out
  }
  let gw = await startGateway({ dbPath: join(tmp, 'small.db'), logFile: join(tmp, 'small.log') })
  const readySmall = gw.readyMs
  await sleep(1000)
  const rssIdle = rssMb(gw.pid)
  progress(`gateway (10k tasks) ready in ${Math.round(readySmall)} ms, idle RSS ${r1(rssIdle ?? NaN)} MB`)
  progress(`reads as fast as they answer, alternating with the bare route (the same ${READ_PATHS} requests to both; the ratio is taken per round)`)
  const bareServer = await forkServer<{ port: number }>('bare-fastify')
  const bareUrl = `http://127.0.0.1:${bareServer.ready.port}`
  const barePid = bareServer.child.pid as number
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  type Round = { bare: LoadResult; gateway: LoadResult; ratio: number; bareCpuUs: number; gatewayCpuUs: number }
  type Versus = { connections: number; rounds: Round[]; ratio: number; gateway: LoadResult; bare: number; gatewayCpuUs: number; bareCpuUs: number }
  // One run and the server's CPU time per request over it, in µs.
  const timed = async (pid: number, opts: Parameters<typeof load>[0]) => {
    const cpu0 = cpuSeconds(pid)
    const result = await load(opts)
    return { result, cpuUs: ((cpuSeconds(pid) - cpu0) / result.requests) * 1e6 }
  }
  // At each connection count, three rounds of bare route / gateway, alternating; the median of the per-round ratios.
  const vsBare = async (what: string, target: Gateway, requests: readonly LoadRequest[]) => {
    const bareArm = { url: bareUrl, headers: auth, requests }
    const gatewayArm = { url: target.url, headers: auth, requests }
    check(`${what} (bare, warm-up)`, await load({ ...bareArm, seconds: WARM_S, connections: CONNECTIONS }))
    check(`${what} (warm-up)`, await load({ ...gatewayArm, seconds: WARM_S, connections: CONNECTIONS }))
    const at: Versus[] = []
    for (const connections of READ_CONNECTIONS) {
      const rounds: Round[] = []
      for (let round = 0; round < 3; round++) {
        const bare = await timed(barePid, { ...bareArm, seconds: MAX_S / 2, connections })
        check(`${what} (bare)`, bare.result)
        const gateway = await timed(target.pid, { ...gatewayArm, seconds: MAX_S / 2, connections })
        check(what, gateway.result)
        rounds.push({ bare: bare.result, gateway: gateway.result, ratio: gateway.result.rps / bare.result.rps, bareCpuUs: bare.cpuUs, gatewayCpuUs: gateway.cpuUs })
      }
      const v: Versus = {
        connections,
        rounds,
        ratio: median(rounds.map((r) => r.ratio)),
        gateway: rounds.map((r) => r.gateway).sort((a, b) => a.rps - b.rps)[1] as LoadResult,
        bare: median(rounds.map((r) => r.bare.rps)),
        gatewayCpuUs: median(rounds.map((r) => r.gatewayCpuUs)),
        bareCpuUs: median(rounds.map((r) => r.bareCpuUs))
      }
      const us = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ')
      progress(`  ${what}, ${connections} connections: ${Math.round(v.gateway.rps)} req/s; bare ${Math.round(v.bare)} req/s; ratio ${r2(v.ratio)} ` +
        `(rounds: ${rounds.map((r) => r2(r.ratio)).join(', ')}); server CPU µs/request gateway ${us(rounds.map((r) => r.gatewayCpuUs))}, bare ${us(rounds.map((r) => r.bareCpuUs))}`)
      at.push(v)
    }
    const [c10, c50] = at as [Versus, Versus]
    return { c10, c50 }
  }
  let stopRss = sampleRss(gw.pid)
  const upscaleRead = await vsBare('GET /upscale/:id', gw, taskPaths(small.sample, '/upscale/'))
  const statusMax = upscaleRead.c50.gateway
  // The same finished tasks through the route for every kind, and the first page of the list.
  const probeTask = await fetch(`${gw.url}/tasks/${(small.sample[0] as { id: string }).id}`, { headers: auth })
  const probeTaskBody = (await probeTask.json()) as { status?: string }
  if (probeTask.status !== 200 || probeTaskBody.status !== 'succeeded') throw new Error(`GET /tasks/:id answered ${probeTask.status} ${JSON.stringify(probeTaskBody).slice(0, 200)}`)
  const probeList = await fetch(`${gw.url}/tasks?limit=20`, { headers: auth })
  const probeListBody = (await probeList.json()) as { items?: unknown[] }
  if (probeList.status !== 200 || probeListBody.items?.length !== 20) throw new Error(`GET /tasks?limit=20 answered ${probeList.status} with ${probeListBody.items?.length} items`)
  const taskRead = await vsBare('GET /tasks/:id (finished)', gw, taskPaths(small.sample, '/tasks/'))
  const taskList = await vsBare('GET /tasks?limit=20', gw, [{ path: '/tasks?limit=20' }])
  const rssStatusLoad = stopRss()
  progress(`  peak RSS ${r1(rssStatusLoad ?? NaN)} MB`)
  // Tasks still waiting for kie.ai's callback, on their own database and gateway (the bare server still up).
  progress(`seeding ${SMALL_ROWS} submitted tasks`)
  const running = seedTasks(join(tmp, 'running.db'), SMALL_ROWS, { owner, status: 'submitted', sampleEvery: 1 })
  const runningGw = await startGateway({ dbPath: join(tmp, 'running.db'), logFile: join(tmp, 'running.log') })
  const probeRunning = await fetch(`${runningGw.url}/tasks/${(running.sample[0] as { id: string }).id}`, { headers: auth })
  const probeRunningBody = (await probeRunning.json()) as { status?: string }
  if (probeRunning.status !== 200 || probeRunningBody.status !== 'submitted') throw new Error(`GET /tasks/:id (running) answered ${probeRunning.status} ${JSON.stringify(probeRunningBody).slice(0, 200)}`)
  stopRss = sampleRss(runningGw.pid)
  const runningRead = await vsBare('GET /tasks/:id (running)', runningGw, taskPaths(running.sample, '/tasks/'))
  const rssRunningLoad = stopRss()
  progress(`  peak RSS ${r1(rssRunningLoad ?? NaN)} MB`)
  await runningGw.stop()
  rmSync(join(tmp, 'running.db'), { force: true })
  await bareServer.stop()
  progress(`GET /upscale/:id at ${STATUS_RATE}/s`)
  // A paced warm-up first: right after a run at full speed the heap it grew is still being collected.
  await paced({ url: gw.url, rate: STATUS_RATE, seconds: WARM_S, headers: auth, next: statusPath(small.sample) })
  const statusSmall = await paced({ url: gw.url, rate: STATUS_RATE, seconds: FIXED_S, headers: auth, next: statusPath(small.sample) })
  check('GET /upscale/:id paced', statusSmall)
  progress(`  p50 ${r2(statusSmall.p50)} ms, p99 ${r2(statusSmall.p99)} ms`)
  const linesLogged = logLines(gw)
  await gw.stop()

  // 4. Status reads with 1M stored tasks.
  progress(`seeding ${BIG_ROWS} tasks (each with its stored callback delivery and status event)`)
  const big = seedTasks(join(tmp, 'big.db'), BIG_ROWS, { owner, status: 'succeeded', sampleEvery: Math.max(1, Math.floor(BIG_ROWS / 10_000)) })
  progress(`  ${r1(big.seconds)} s, ${r1(big.bytes / 2 ** 20)} MB on disk, ${Math.round(big.bytes / big.rows)} bytes per task`)
  gc()
  gw = await startGateway({ dbPath: join(tmp, 'big.db'), logFile: join(tmp, 'big.log') })
  const readyBig = gw.readyMs
  progress(`gateway (${BIG_ROWS} tasks) ready in ${Math.round(readyBig)} ms`)
  const bigPaths = taskPaths(big.sample, '/upscale/')
  await load({ url: gw.url, seconds: WARM_S, connections: CONNECTIONS, headers: auth, requests: bigPaths })
  stopRss = sampleRss(gw.pid)
  const statusBigMax = await load({ url: gw.url, seconds: MAX_S, connections: CONNECTIONS, headers: auth, requests: bigPaths })
  const rssBigLoad = stopRss()
  check('GET /upscale/:id (big)', statusBigMax)
  await paced({ url: gw.url, rate: STATUS_RATE, seconds: WARM_S, headers: auth, next: statusPath(big.sample) })
  const statusBig = await paced({ url: gw.url, rate: STATUS_RATE, seconds: FIXED_S, headers: auth, next: statusPath(big.sample) })
  check('GET /upscale/:id paced (big)', statusBig)
  progress(`  ${Math.round(statusBigMax.rps)} req/s; at ${STATUS_RATE}/s p50 ${r2(statusBig.p50)} ms, p99 ${r2(statusBig.p99)} ms`)
  await gw.stop()
  rmSync(join(tmp, 'big.db'), { force: true })

  // 5. kie.ai's callbacks: each one finishes a submitted task (a durable write).
  // Each callback finishes its own task: the warm-up, the paced run and the run at full speed each take
  // their own part of the tasks, one per request (autocannon's setupRequest: at a few thousand a second
  // the client is not what limits the rate; ten single-connection instances over static lists measured
  // 1,266/s where this measured 1,850/s on the same build and number of tasks, in separate runs).
  const callbackTasks = quick ? 40_000 : 150_000
  const CB_CONNECTIONS = 10
  progress(`seeding ${callbackTasks} submitted tasks for callbacks`)
  const cbSeed = seedTasks(join(tmp, 'callbacks.db'), callbackTasks, { owner, status: 'submitted', sampleEvery: 1 })
  const callbacks: LoadRequest[] = cbSeed.sample.map(({ id, kieTaskId }) => ({
    path: `/callbacks/mj?task=${encodeURIComponent(id)}&token=${callbackToken(CALLBACK_SECRET, id)}`,
    body: JSON.stringify({
      code: 200,
      msg: 'success',
      data: { taskId: kieTaskId, promptJson: '{"taskId":"parent","index":0}', resultUrls: [`https://tempfile.aiquickdraw.com/v/${kieTaskId}_0_0.jpeg`] }
    })
  }))
  const pacedShare = CALLBACK_RATE * FIXED_S * 2
  const warmShare = Math.floor((callbacks.length - pacedShare) / (MAX_S + 1))
  const cbWarm = callbacks.slice(0, warmShare)
  const cbMax = callbacks.slice(warmShare, callbacks.length - pacedShare)
  let c = callbacks.length - pacedShare
  const nextCallback = () => callbacks[c++ % callbacks.length] as { path: string; body: string }
  gw = await startGateway({ dbPath: join(tmp, 'callbacks.db'), logFile: join(tmp, 'callbacks.log') })
  const cbHeaders = { 'content-type': 'application/json' }
  const cbBare = upscaleRead.c10.bare
  progress('POST /callbacks/mj as fast as it answers')
  let w = 0
  const callbackWarm = await load({ url: gw.url, seconds: 1, connections: CB_CONNECTIONS, method: 'POST', headers: cbHeaders, next: () => cbWarm[w++ % cbWarm.length] as LoadRequest })
  check('POST /callbacks/mj (warm-up)', callbackWarm)
  await sleep(3000)
  // The fixed rate first, as a steady stream: after the run at full speed, the archive still works
  // through the downloads of every task that run finished, and would be measured instead.
  const callbackFixed = await paced({ url: gw.url, rate: CALLBACK_RATE, seconds: FIXED_S, method: 'POST', headers: cbHeaders, next: nextCallback })
  check('POST /callbacks/mj paced', callbackFixed)
  progress(`  at ${CALLBACK_RATE}/s p50 ${r2(callbackFixed.p50)} ms, p99 ${r2(callbackFixed.p99)} ms`)
  stopRss = sampleRss(gw.pid)
  const cpuCb0 = cpuSeconds(gw.pid)
  let x = 0
  const callbackMax = await load({ url: gw.url, seconds: MAX_S, connections: CB_CONNECTIONS, method: 'POST', headers: cbHeaders, next: () => cbMax[x++ % cbMax.length] as LoadRequest })
  const callbackCpuUs = ((cpuSeconds(gw.pid) - cpuCb0) / callbackMax.requests) * 1e6
  const rssCallbackLoad = stopRss()
  check('POST /callbacks/mj', callbackMax)
  // A connection that ran through its share sent some callbacks again (they change nothing then).
  const callbackRepeats = Math.max(0, callbackWarm.requests - cbWarm.length) + Math.max(0, callbackMax.requests - cbMax.length)
  progress(`  ${Math.round(callbackMax.rps)} callbacks/s (${r2(callbackMax.rps / cbBare)}x bare GET at ${CB_CONNECTIONS} connections); ` +
    `server CPU ${Math.round(callbackCpuUs)} µs/callback${callbackRepeats > 0 ? `; at least ${callbackRepeats} callbacks repeated (seed more tasks)` : ''}`)
  const callbacksSent = callbackWarm.requests + callbackMax.requests + (c - (callbacks.length - pacedShare))
  await gw.stop()

  // 6. POST /upscale against the simulator: the gateway's added latency.
  progress('POST /upscale: the simulator alone, then through the gateway')
  const wide = { SIM_RATE_LIMIT_MAX: '1000000', SIM_RATE_LIMIT_WINDOW_MS: '10000', SIM_API_KEY }
  let sim = await forkServer<{ url: string; parents: string[] }>('simulator', wide)
  const parent = sim.ready.parents[0] as string
  const simBody = JSON.stringify({ taskId: parent, imageIndex: 1, callBackUrl: 'http://127.0.0.1:9/callbacks/mj?task=x&token=y' })
  const simReq = { path: '/api/v1/mj/generateUpscale', body: simBody }
  const simHeaders = { authorization: `Bearer ${SIM_API_KEY}`, 'content-type': 'application/json' }
  await paced({ url: sim.ready.url, rate: UPSCALE_RATE, seconds: 1, method: 'POST', headers: simHeaders, next: () => simReq })
  const simAlone = await paced({ url: sim.ready.url, rate: UPSCALE_RATE, seconds: FIXED_S, method: 'POST', headers: simHeaders, next: () => simReq })
  check('simulator generateUpscale', simAlone)
  gw = await startGateway({
    dbPath: join(tmp, 'upscale.db'),
    logFile: join(tmp, 'upscale.log'),
    kieBaseUrl: sim.ready.url,
    env: { KIE_RATE_LIMIT_MAX: '1000000', KIE_RATE_LIMIT_WINDOW_MS: '10000' }
  })
  const gwReq = { path: '/upscale', body: JSON.stringify({ taskId: parent, imageIndex: 1 }) }
  const gwHeaders = { ...auth, 'content-type': 'application/json' }
  await paced({ url: gw.url, rate: UPSCALE_RATE, seconds: 1, method: 'POST', headers: gwHeaders, next: () => gwReq })
  const viaGateway = await paced({ url: gw.url, rate: UPSCALE_RATE, seconds: FIXED_S, method: 'POST', headers: gwHeaders, next: () => gwReq })
  check('POST /upscale', viaGateway)
  const probe = (await (await fetch(`${gw.url}/upscale`, { method: 'POST', headers: gwHeaders, body: gwReq.body })).json()) as { status: string }
  if (probe.status !== 'submitted') throw new Error(`POST /upscale answered status ${probe.status}, expected submitted (the budget should not bind here)`)
  const simCalls = (await sim.request<{ calls: Array<{ httpStatus: number; code: number | null }> }>({ type: 'calls' })).calls
  if (simCalls.some((call) => call.code !== 200)) throw new Error('the simulator refused some upscales during the latency measurement')
  progress(`  simulator p50 ${r2(simAlone.p50)} / p99 ${r2(simAlone.p99)} ms; gateway p50 ${r2(viaGateway.p50)} / p99 ${r2(viaGateway.p99)} ms`)
  await gw.stop()
  await sim.stop()

  // 7. Pacing under a backlog: 3x the limit at once, the same limit on both sides.
  const LIMIT = 20
  const WINDOW_MS = 1000
  const BACKLOG = 5 * LIMIT
  progress(`pacing: ${BACKLOG} submissions at once, limit ${LIMIT} per ${WINDOW_MS} ms on both sides`)
  sim = await forkServer('simulator', { SIM_RATE_LIMIT_MAX: String(LIMIT), SIM_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS), SIM_API_KEY })
  const pacingParent = sim.ready.parents[0] as string
  gw = await startGateway({
    dbPath: join(tmp, 'pacing.db'),
    logFile: join(tmp, 'pacing.log'),
    kieBaseUrl: sim.ready.url,
    env: { KIE_RATE_LIMIT_MAX: String(LIMIT), KIE_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS) }
  })
  const answers = await Promise.all(
    Array.from({ length: BACKLOG }, (_, k) =>
      fetch(`${gw.url}/upscale`, { method: 'POST', headers: gwHeaders, body: JSON.stringify({ taskId: pacingParent, imageIndex: k % 4 }) }).then((res) => res.status)
    )
  )
  if (answers.some((s) => s !== 202)) throw new Error(`pacing: submissions answered ${[...new Set(answers)].join(', ')}`)
  type Call = { at: number; httpStatus: number; code: number | null }
  let calls: Call[] = []
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    calls = (await sim.request<{ calls: Call[] }>({ type: 'calls' })).calls
    if (calls.filter((call) => call.code === 200).length >= BACKLOG) break
    await sleep(100)
  }
  await gw.stop()
  await sim.stop()
  const accepted = calls.filter((call) => call.code === 200).map((call) => call.at).sort((a, b) => a - b)
  const refused = calls.filter((call) => call.httpStatus === 429 || call.code === 429).length
  if (accepted.length < BACKLOG) throw new Error(`pacing: only ${accepted.length} of ${BACKLOG} reached the simulator in 30 s`)
  let maxInWindow = 0
  for (let a = 0; a < accepted.length; a++) {
    let n = 0
    for (let b = a; b < accepted.length && (accepted[b] as number) - (accepted[a] as number) < WINDOW_MS; b++) n++
    maxInWindow = Math.max(maxInWindow, n)
  }
  const drainMs = (accepted[accepted.length - 1] as number) - (accepted[0] as number)
  // After the first window's burst, tasks sent per window over the drain, divided by the limit.
  const drainEfficiency = ((accepted.length - LIMIT) / drainMs) * WINDOW_MS / LIMIT
  // Per window under the backlog: the k-th window's sends start with the (k·LIMIT)-th arrival; the
  // windows between the first and the last start give the steady rate. (The drain figure above
  // also counts how long the client took to deliver the whole backlog: 100 POSTs from one process.)
  const windowStarts = Array.from({ length: Math.floor(accepted.length / LIMIT) }, (_, k) => accepted[k * LIMIT] as number)
  const pacingEfficiency = ((windowStarts.length - 1) * WINDOW_MS) / ((windowStarts[windowStarts.length - 1] as number) - (windowStarts[0] as number))
  progress(`  drained in ${drainMs} ms (${r2(drainEfficiency)} of the limit over the drain); window starts ${windowStarts.map((t) => t - (windowStarts[0] as number)).join(', ')} ms: ${r2(pacingEfficiency)} of the limit per window; ${refused} refused (429); at most ${maxInWindow} in any ${WINDOW_MS} ms`)

  // The table.
  const rssUnderLoad = Math.max(rssStatusLoad ?? 0, rssRunningLoad ?? 0, rssBigLoad ?? 0, rssCallbackLoad ?? 0)
  const readyMax = Math.max(readySmall, readyBig, ...readyEmpty)
  const bytesPerTask = big.bytes / big.rows
  const growth = statusBig.p99 / statusSmall.p99
  type Row = { metric: string; actual: string; target: string; pass: boolean | null; value: number }
  // One row per connection count: the median ratio, the median rates and the server CPU per request of each arm.
  const ratioRows = (what: string, m: { c10: Versus; c50: Versus }, min: number | null): Row[] =>
    [m.c10, m.c50].map((v) => ({
      metric: `${what}, ratio to bare Fastify, ${v.connections} connections`,
      value: v.ratio,
      actual: `${r2(v.ratio)}x (${Math.round(v.gateway.rps)} vs ${Math.round(v.bare)} req/s; CPU ${Math.round(v.gatewayCpuUs)} vs ${Math.round(v.bareCpuUs)} µs/req)`,
      target: min === null ? '' : `>= ${min}x`,
      pass: min === null ? null : v.ratio >= min
    }))
  const rows: Row[] = [
    { metric: 'bare Fastify route, req/s', value: bareFastify.rps, actual: `${Math.round(bareFastify.rps)}`, target: 'baseline', pass: null },
    { metric: 'plain node:http, req/s', value: bareHttp.rps, actual: `${Math.round(bareHttp.rps)}`, target: 'baseline', pass: null },
    ...ratioRows('GET /upscale/:id (finished task)', upscaleRead, 0.5),
    ...ratioRows('GET /tasks/:id (finished task)', taskRead, 0.5),
    ...ratioRows('GET /tasks/:id (running task)', runningRead, 0.4),
    ...ratioRows('GET /tasks?limit=20', taskList, null),
    { metric: `GET /upscale/:id p50 at ${STATUS_RATE}/s (10k tasks)`, value: statusSmall.p50, actual: `${r2(statusSmall.p50)} ms`, target: '', pass: null },
    { metric: `GET /upscale/:id p99 at ${STATUS_RATE}/s (10k tasks)`, value: statusSmall.p99, actual: `${r2(statusSmall.p99)} ms`, target: '<= 5 ms', pass: statusSmall.p99 <= 5 },
    { metric: `GET /upscale/:id p99 at ${STATUS_RATE}/s (${BIG_ROWS / 1e6}M tasks)`, value: statusBig.p99, actual: `${r2(statusBig.p99)} ms`, target: '', pass: null },
    { metric: `p99 ${BIG_ROWS / 1e6}M ÷ p99 10k`, value: growth, actual: `${r2(growth)}x`, target: '<= 1.3x', pass: growth <= 1.3 },
    { metric: `GET /upscale/:id req/s with ${BIG_ROWS / 1e6}M tasks, ratio to 10k`, value: statusBigMax.rps / statusMax.rps, actual: `${r2(statusBigMax.rps / statusMax.rps)}x (${Math.round(statusBigMax.rps)} req/s)`, target: '', pass: null },
    { metric: `a full count of tasks by status, for scale (${BIG_ROWS / 1e6}M tasks; not done at start-up)`, value: big.statusCountMs, actual: `${Math.round(big.statusCountMs)} ms`, target: '', pass: null },
    { metric: 'bytes on disk per task', value: bytesPerTask, actual: `${Math.round(bytesPerTask)} B`, target: '', pass: null },
    { metric: 'POST /callbacks/mj (durable), callbacks/s', value: callbackMax.rps, actual: `${Math.round(callbackMax.rps)}/s (${r2(callbackMax.rps / cbBare)}x bare GET, 10 conn.; CPU ${Math.round(callbackCpuUs)} µs each)`, target: '>= 3000/s', pass: callbackMax.rps >= 3000 },
    { metric: `POST /callbacks/mj p99 at ${CALLBACK_RATE}/s`, value: callbackFixed.p99, actual: `${r2(callbackFixed.p99)} ms (p50 ${r2(callbackFixed.p50)})`, target: '<= 10 ms', pass: callbackFixed.p99 <= 10 },
    { metric: `POST /upscale added p50 at ${UPSCALE_RATE}/s`, value: viaGateway.p50 - simAlone.p50, actual: `${r2(viaGateway.p50 - simAlone.p50)} ms (${r2(viaGateway.p50)} vs ${r2(simAlone.p50)})`, target: '', pass: null },
    { metric: `POST /upscale added p99 at ${UPSCALE_RATE}/s`, value: viaGateway.p99 - simAlone.p99, actual: `${r2(viaGateway.p99 - simAlone.p99)} ms (${r2(viaGateway.p99)} vs ${r2(simAlone.p99)})`, target: '<= 5 ms', pass: viaGateway.p99 - simAlone.p99 <= 5 },
    { metric: 'pacing: sent per window ÷ limit (backlog 5x, window starts)', value: pacingEfficiency, actual: `${r2(pacingEfficiency)} (ideal ${r2(1 / 1.05)} with the 5% margin)`, target: '>= 0.93', pass: pacingEfficiency >= 0.93 },
    { metric: 'pacing: sent over the whole drain ÷ limit (first arrival to last)', value: drainEfficiency, actual: `${r2(drainEfficiency)}`, target: '', pass: null },
    { metric: 'pacing: requests over the limit (429)', value: refused, actual: `${refused} (max ${maxInWindow}/${LIMIT} in any window)`, target: '0', pass: refused === 0 && maxInWindow <= LIMIT },
    { metric: 'RSS idle', value: rssIdle ?? NaN, actual: `${r1(rssIdle ?? NaN)} MB`, target: '', pass: null },
    { metric: 'RSS under load (peak)', value: rssUnderLoad, actual: `${r1(rssUnderLoad)} MB`, target: '<= 150 MB', pass: rssUnderLoad <= 150 },
    { metric: 'process start to ready (worst)', value: readyMax, actual: `${Math.round(readyMax)} ms`, target: '<= 1000 ms', pass: readyMax <= 1000 }
  ]
  const width = (k: 'metric' | 'actual' | 'target') => Math.max(k.length, ...rows.map((row) => row[k].length))
  const [wm, wa, wt] = [width('metric'), width('actual'), width('target')]
  const line = (m: string, a: string, t: string, p: string) => `| ${m.padEnd(wm)} | ${a.padEnd(wa)} | ${t.padEnd(wt)} | ${p.padEnd(4)} |`
  const table = [
    line('metric', 'actual', 'target', 'pass'),
    `|${'-'.repeat(wm + 2)}|${'-'.repeat(wa + 2)}|${'-'.repeat(wt + 2)}|------|`,
    ...rows.map((row) => line(row.metric, row.actual, row.target, row.pass === null ? '' : row.pass ? 'yes' : 'NO'))
  ].join('\n')
  process.stdout.write(`\n${table}\n\n`)

  Object.assign(results, {
    timestamp: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: machine(),
    settings: { quick, maxSeconds: MAX_S, fixedSeconds: FIXED_S, connections: CONNECTIONS, readConnections: READ_CONNECTIONS, readPaths: READ_PATHS, callbackConnections: CB_CONNECTIONS, statusRate: STATUS_RATE, callbackRate: CALLBACK_RATE, upscaleRate: UPSCALE_RATE, bigRows: BIG_ROWS, smallRows: SMALL_ROWS },
    table: rows,
    raw: {
      bareFastify,
      bareHttp,
      // Per connection count: every round's bare and gateway runs, their ratio and each server's CPU µs per request.
      readsVsBare: { paths: READ_PATHS, upscaleFinished: upscaleRead, taskFinished: taskRead, taskRunning: runningRead, taskList },
      statusSmall,
      statusBigMax,
      statusBig,
      callbackMax,
      callbackFixed,
      callbackWarm,
      callbackCpuUs,
      callbacksSent,
      callbackRepeats,
      callbackTasks,
      simAlone,
      viaGateway,
      pacing: { limit: LIMIT, windowMs: WINDOW_MS, backlog: BACKLOG, drainMs, efficiency: pacingEfficiency, drainEfficiency, windowStarts, refused, maxInWindow, arrivalsMs: accepted.map((t) => t - (accepted[0] as number)) },
      storage: { smallBytes: small.bytes, bigBytes: big.bytes, bigRows: big.rows, seedSeconds: r1(big.seconds), bytesPerTask, statusCountMs: big.statusCountMs },
      memory: { rssIdle, rssStatusLoad, rssRunningLoad, rssBigLoad, rssCallbackLoad },
      startup: { readyEmpty, readySmall, readyBig },
      logging: { requestLinesIn10kRun: linesLogged, logBytes10kRun: statSync(join(tmp, 'small.log')).size }
    }
  })
  mkdirSync(RESULTS_DIR, { recursive: true })
  const json = JSON.stringify(results, null, 2) + '\n'
  const file = join(RESULTS_DIR, `${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, json)
  writeFileSync(join(RESULTS_DIR, 'latest.json'), json)
  progress(`written ${file} and bench/results/latest.json`)
}

process.on('SIGINT', () => {
  killAll()
  rmSync(tmp, { recursive: true, force: true })
  process.exit(130)
})

try {
  await main()
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
} finally {
  killAll()
  if (process.env.BENCH_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true })
}
