import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../src/app.js'
import { openDatabase } from '../src/db/open.js'
import { createKieClient } from '../src/kie/client.js'
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../src/simulator/index.js'
import { CALLBACK_SECRET, KEY_A, KEY_B } from './helper.js'

export const SIM_KEY = 'sim-api-key'
export const HMAC_KEY = 'e2e-webhook-hmac-key'

export const tempDir = () => mkdtempSync(join(tmpdir(), 'gw-e2e-'))
export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true })

export function startSim(opts: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  return startSimulator({ apiKey: SIM_KEY, hmacKey: HMAC_KEY, completionDelayMs: 50, callbackRetryScale: 0.0005, ...opts })
}

/** The gateway in this process, over real loopback HTTP, talking to the simulator with the real client. */
export async function startGateway(opts: { dbPath: string; simUrl: string; port?: number; hmacKey?: string | null }) {
  const db = openDatabase(opts.dbPath)
  let url = ''
  const app = await buildApp({
    db,
    kie: createKieClient({ baseUrl: opts.simUrl, apiKey: SIM_KEY, timeoutMs: 2000 }),
    apiKeys: [KEY_A, KEY_B],
    publicBaseUrl: () => url,
    callbackSecret: CALLBACK_SECRET,
    kieWebhookHmacKey: opts.hmacKey === undefined ? HMAC_KEY : opts.hmacKey
  })
  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 })
  const port = (app.server.address() as AddressInfo).port
  url = `http://127.0.0.1:${port}`
  return {
    url,
    port,
    db,
    async close() {
      await app.close()
      db.close()
    }
  }
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

export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
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
