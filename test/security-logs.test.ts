// No secret in any log line (issue 11, part 7): the sandbox runs the simulator on the gateway's
// own logger, and the simulator logged each callback URL with its per-task token.
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { openDatabase } from '../src/db/open.js'
import { callbackToken } from '../src/kie/callback-token.js'
import { createKieClient } from '../src/kie/client.js'
import { createLogger } from '../src/logger.js'
import { startSimulator, type RunningSimulator } from '../src/simulator/index.js'
import { api, SIM_KEY, until } from './e2e-helper.js'
import { CALLBACK_SECRET, KEY_A } from './helper.js'

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe('log lines carry no callback token', () => {
  it('neither the gateway nor the sandbox simulator logs a task\'s token, however often kie.ai calls back', async () => {
    const lines: string[] = []
    const log = createLogger('debug', new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }))
    const running: RunningSimulator = await startSimulator({ apiKey: SIM_KEY, completionDelayMs: 50, callbackRetryScale: 0.0005, logger: log.child({ component: 'simulator' }) })
    closers.push(() => running.close())
    const db = openDatabase(':memory:')
    let url = ''
    const app = await buildApp({
      db,
      kie: createKieClient({ baseUrl: running.url, apiKey: SIM_KEY, timeoutMs: 2000 }),
      apiKeys: [KEY_A],
      publicBaseUrl: () => url,
      callbackSecret: CALLBACK_SECRET,
      loggerInstance: log
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    closers.push(async () => {
      await app.close()
      db.close()
    })
    const res = await api(url).post('/upscale', { taskId: running.sim.createParentTask(), imageIndex: 0 })
    const id = (await res.json()).id as string
    await until('the task to succeed', async () => (await (await api(url).get(`/upscale/${id}`)).json()).status === 'succeeded')
    // kie.ai calling back once more (a duplicate) logs the URL again.
    await running.sim.deliverCallback((await (await api(url).get(`/upscale/${id}`)).json()).kieTaskId)
    const token = callbackToken(CALLBACK_SECRET, id)
    const attempts = lines.filter((l) => l.includes('simulator: callback attempt'))
    expect(attempts.length).toBeGreaterThanOrEqual(2)
    for (const l of attempts) expect(l).toContain('token=[redacted]')
    expect(lines.filter((l) => l.includes(token))).toEqual([])
    expect(lines.filter((l) => l.includes(SIM_KEY))).toEqual([])
  })
})
