import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import type { AppOptions } from '../src/app.js'
import { systemClock } from '../src/clock.js'
import type { QueueSettings } from '../src/config.js'
import { openDatabase } from '../src/db/open.js'
import { createKieClient, type KieClient, type KieClientOptions } from '../src/kie/client.js'
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../src/simulator/index.js'
import { buildTestApp, KEY_A, onCleanup } from './helper.js'

export const SIM_KEY = 'sim-api-key'
export const HMAC_KEY = 'e2e-webhook-hmac-key'

export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true })
/** A fresh folder, removed after the test (or after the file, from a beforeAll). */
export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'gw-e2e-'))
  onCleanup(() => removeDir(dir))
  return dir
}

/** The simulator on loopback, closed after the test (or after the file, from a beforeAll). */
export async function startSim(opts: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  const running = await startSimulator({ apiKey: SIM_KEY, hmacKey: HMAC_KEY, completionDelayMs: 50, callbackRetryScale: 0.0005, ...opts })
  onCleanup(() => running.close())
  return running
}

export interface LogLine {
  level: number
  time: number
  msg: string
  [key: string]: unknown
}

export interface GatewayOptions {
  /** A file, for tests that restart on it; ':memory:' otherwise. */
  dbPath: string
  simUrl: string
  /** 0 (any free port) unless a restart must come back on the same one. */
  port?: number
  /** The key kie.ai signs callbacks with; null: callbacks need no signature. */
  hmacKey?: string | null
  queue?: Partial<QueueSettings>
  /** The kie.ai client's timeout (2 s by default). */
  kieTimeoutMs?: number
  /** The kie.ai client's logger (it logs each call with the request id). */
  kieLog?: KieClientOptions['log']
  /** Wraps the real kie.ai client, to watch or delay its calls. */
  wrapKie?: (real: KieClient) => KieClient
  /** Anything else buildApp takes (a logger, an archive, credit settings, ...), and where the client points. */
  app?: Partial<AppOptions> & { kieApiKey?: string; kieBaseUrl?: string }
}

/**
 * The gateway in this process, over real loopback HTTP, talking to the simulator with the
 * real kie.ai client, the system clock and its background workers running. Built by
 * buildTestApp, so it is closed after the test like every app; its log lines are kept in
 * `logs` unless `app.loggerInstance` is given.
 */
export async function startGateway(opts: GatewayOptions) {
  const { kieApiKey, kieBaseUrl, ...appOptions } = opts.app ?? {}
  const logs: LogLine[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) })
  const kie = createKieClient({
    baseUrl: kieBaseUrl ?? opts.simUrl,
    apiKey: kieApiKey ?? SIM_KEY,
    timeoutMs: opts.kieTimeoutMs ?? 2000,
    ...(opts.kieLog === undefined ? {} : { log: opts.kieLog })
  })
  let url = ''
  const { app, db, repo, close } = await buildTestApp({
    db: openDatabase(opts.dbPath),
    kie: (opts.wrapKie ?? ((k) => k))(kie),
    clock: systemClock,
    workers: true,
    random: Math.random,
    publicBaseUrl: () => url,
    kieWebhookHmacKey: opts.hmacKey === undefined ? HMAC_KEY : opts.hmacKey,
    loggerInstance: logger,
    ...(opts.queue === undefined ? {} : { queue: opts.queue }),
    ...appOptions
  })
  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 })
  const port = (app.server.address() as AddressInfo).port
  url = `http://127.0.0.1:${port}`
  return { url, port, app, db, repo, logs, close }
}

const SERVER = new URL('../dist/src/server.js', import.meta.url)

/** The built server as a child process, to be killed for real. */
export function spawnGateway(env: Record<string, string>): ChildProcess & { exited: Promise<number | null>; output: () => string } {
  if (!existsSync(SERVER)) throw new Error('dist/src/server.js is missing: npm test builds it first (npm run build)')
  const child = spawn(process.execPath, [SERVER.pathname], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d))
  child.stderr?.on('data', (d: Buffer) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return Object.assign(child, { exited, output: () => out })
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

// Taken when this module loads, before any test fakes the timers (vi.useFakeTimers): `until`
// keeps polling in real time while a test drives the app's own timers by hand.
const realSetTimeout = globalThis.setTimeout
const realNow = performance.now.bind(performance)

/** Polls `probe` until it answers something truthy: a wait on what can be seen, never on time. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = realNow() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (realNow() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => realSetTimeout(r, 20))
  }
}

// Test bodies are asserted field by field, so `any` is the honest type here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type JsonResponse = Omit<Response, 'json'> & { json(): Promise<any> }

export const api = (base: string, key = KEY_A) => ({
  post: (path: string, body: unknown) =>
    fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }) as Promise<JsonResponse>,
  get: (path: string) => fetch(base + path, { headers: { authorization: `Bearer ${key}` } }) as Promise<JsonResponse>
})
