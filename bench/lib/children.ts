// Child processes under test: the built gateway with its production configuration, the
// baselines, and the simulator. Every one binds 127.0.0.1 and is stopped by stopAll().
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const DIST_ROOT = fileURLToPath(new URL('../..', import.meta.url)) // dist/
export const SERVER_JS = join(DIST_ROOT, 'src', 'server.js')
const script = (name: string) => join(DIST_ROOT, 'bench', 'servers', `${name}.js`)

export const API_KEY = 'bench-client-key-0123456789abcdef'
export const CALLBACK_SECRET = 'bench-callback-secret-0123456789abcdefghij'
export const SIM_API_KEY = 'bench-sim-key'

const running = new Set<ChildProcess>()

/** Set BENCH_CPU_PROF=<dir> to write a V8 CPU profile of every gateway child there. */
const profileArgs = () => [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_PERF ? ['--perf-basic-prof'] : [])]

export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

export interface Gateway {
  url: string
  pid: number
  /** ms from spawn until /readyz answered 200 */
  readyMs: number
  logFile: string
  stop: () => Promise<void>
}

export interface GatewayOptions {
  dbPath: string
  logFile: string
  kieBaseUrl?: string
  env?: Record<string, string>
}

/** The built server (dist/src/server.js) with production settings; its log lines go to logFile. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  if (!existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run npm run bench (it builds first)`)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const log = openSync(opts.logFile, 'a')
  const started = performance.now()
  // With the V8 flag the Dockerfile and npm start give it (a small young generation: see BENCHMARKS.md).
  const child = spawn(process.execPath, [...profileArgs(), '--max-semi-space-size=4', SERVER_JS], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_BASE_URL: url,
      API_KEYS: API_KEY,
      CALLBACK_SECRET,
      KIE_API_KEY: SIM_API_KEY,
      // Nothing listens there unless a simulator is given: the gateway needs kie.ai only to submit.
      KIE_BASE_URL: opts.kieBaseUrl ?? 'http://127.0.0.1:9',
      DATABASE_PATH: opts.dbPath,
      // The per-key limiter must not cut the load.
      CLIENT_RATE_LIMIT_MAX: '999999999',
      ...opts.env
    },
    stdio: ['ignore', log, log]
  })
  closeSync(log)
  running.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let dead = false
  void exited.then(() => {
    dead = true
    running.delete(child)
  })
  for (;;) {
    if (dead) throw new Error(`gateway exited during start-up; see ${opts.logFile}:\n${readFileSync(opts.logFile, 'utf8').slice(-2000)}`)
    try {
      const res = await fetch(`${url}/readyz`)
      if (res.status === 200) break
    } catch {
      // not listening yet
    }
    if (performance.now() - started > 30_000) throw new Error('gateway not ready after 30 s')
    await sleep(2)
  }
  const readyMs = performance.now() - started
  return {
    url,
    pid: child.pid as number,
    readyMs,
    logFile: opts.logFile,
    stop: async () => {
      if (!dead) child.kill('SIGTERM')
      await Promise.race([exited, sleep(15_000)])
      if (!dead) child.kill('SIGKILL')
      await exited
    }
  }
}

export interface Forked<T> {
  child: ChildProcess
  ready: T
  request: <R>(msg: { type: string }) => Promise<R>
  stop: () => Promise<void>
}

/** A bench/servers/<name>.js child that reports { type: 'ready', ... } over IPC. */
export async function forkServer<T>(name: string, env: Record<string, string> = {}): Promise<Forked<T>> {
  const child = fork(script(name), [], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  running.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => running.delete(child))
  const ready = await new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T))
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)))
  })
  return {
    child,
    ready,
    request: <R>(msg: { type: string }) =>
      new Promise<R>((resolve) => {
        child.once('message', (m) => resolve(m as R))
        child.send(msg)
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await Promise.race([exited, sleep(5_000)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    }
  }
}

/** Kills whatever is still running (on error or interrupt). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL')
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Resident set size of a process in MB, from /proc/<pid>/status (VmRSS); null off Linux. */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}

/** Samples RSS every 100 ms until stopped; returns the peak. */
export function sampleRss(pid: number): () => number | null {
  let peak: number | null = null
  const take = () => {
    const v = rssMb(pid)
    if (v !== null) peak = Math.max(peak ?? 0, v)
  }
  take()
  const timer = setInterval(take, 100)
  return () => {
    clearInterval(timer)
    take()
    return peak
  }
}

/** CPU seconds (user + system) a process has used so far: fields 14 and 15 of /proc/<pid>/stat,
 *  in clock ticks of 1/100 s; NaN off Linux or once the process is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The name (field 2) is in parentheses and may hold spaces: count from after it (field 3 first).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}
