// What the simulator's own tests share: a loopback callback receiver, a simulator that is
// closed after the test, and a wait on a condition.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach } from 'vitest'
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../src/simulator/index.js'

export const KEY = 'test-api-key'
export const HMAC = 'test-webhook-hmac-key'
export const HEX32 = /^[0-9a-f]{32}$/

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
export interface Received { headers: IncomingHttpHeaders, body: any }
export interface Receiver { url: string, received: Received[], close: () => Promise<void> }

export const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** A callback receiver on 127.0.0.1 answering with the queued statuses in turn, then 200. */
export async function startReceiver(statuses: number[] = []): Promise<Receiver> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => { raw += c.toString() })
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(raw) })
      res.statusCode = statuses.shift() ?? 200
      res.end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const close = async (): Promise<void> => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  cleanups.push(close)
  return { url: `http://127.0.0.1:${port}/kie/callback`, received, close }
}

export async function start(opts: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  const running = await startSimulator({ apiKey: KEY, completionDelayMs: 20, callbackRetryScale: 0.0001, ...opts })
  cleanups.push(running.close)
  return running
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
