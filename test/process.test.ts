import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RunningSimulator } from '../src/simulator/index.js'
import { CALLBACK_SECRET, KEY_A } from './helper.js'
import { api, freePort, HMAC_KEY, SIM_KEY, spawnGateway, startSim, tempDir, until } from './e2e-helper.js'

// The built server as a real process: kill -9 and SIGTERM are what operators and crashes do.
let sim: RunningSimulator
let dir: string
let port: number
let children: Array<ReturnType<typeof spawnGateway>> = []
beforeEach(async () => {
  dir = tempDir()
  // Callback retries at 0.3, 1.5 and 4.5 s: long enough to outlast a restart on a busy machine.
  sim = await startSim({ completionDelayMs: 400, callbackRetryScale: 0.005 })
  port = await freePort()
})
afterEach(async () => {
  // Before helper.ts's shared cleanup closes the simulator and removes the folder.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await Promise.all(children.map((c) => c.exited))
  children = []
})

async function start() {
  const child = spawnGateway({
    NODE_ENV: 'production',
    PORT: String(port),
    DATABASE_PATH: join(dir, 'gw.db'),
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    KIE_API_KEY: SIM_KEY,
    KIE_BASE_URL: sim.url,
    KIE_WEBHOOK_HMAC_KEY: HMAC_KEY,
    API_KEYS: KEY_A,
    CALLBACK_SECRET,
    RECONCILE_AFTER_MS: '2000'
  })
  children.push(child)
  const base = `http://127.0.0.1:${port}`
  await until('the gateway to be ready', async () => {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${child.output()}`)
    return (await fetch(`${base}/readyz`).catch(() => null))?.ok
  })
  return { child, base }
}

const upscaleCalls = () => sim.sim.calls.filter((c) => c.path === '/api/v1/mj/generateUpscale')

describe('the server process', () => {
  it('after kill -9 loses no acknowledged task, sends none twice, and finishes them all', async () => {
    const first = await start()
    const child = first.child
    let base = first.base
    const acks = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api(base).post('/upscale', { taskId: sim.sim.createParentTask(), imageIndex: i % 4 }))
    )
    const ids = await Promise.all(acks.map(async (r) => (expect(r.status).toBe(202), (await r.json()).id as string)))
    child.kill('SIGKILL') // before kie.ai's callbacks (400 ms later) can land
    expect(await child.exited).toBeNull()

    ;({ base } = await start())
    const finals = await Promise.all(
      ids.map((id) =>
        until(`task ${id} to succeed`, async () => {
          const t = await (await api(base).get(`/upscale/${id}`)).json()
          return t.status === 'succeeded' ? t : undefined
        })
      )
    )
    expect(finals.map((t) => t.id)).toEqual(ids)
    expect(upscaleCalls()).toHaveLength(ids.length)
  })

  // SIGTERM (every request in flight answered, exit 0 within 10 s) is tested once, under load,
  // in crash-harness.test.ts ('SIGTERM during load').

  it('refuses to start with a malformed variable, naming it in one line', async () => {
    const child = spawnGateway({ PORT: 'eighty', DATABASE_PATH: join(dir, 'x.db') })
    children.push(child)
    expect(await child.exited).toBe(1)
    expect(child.output().trim()).toBe('Configuration error: PORT must be an integer from 0 to 65535 (got "eighty")')
  })
})
