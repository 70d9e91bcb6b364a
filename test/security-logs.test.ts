// No secret in any log line (issue 11, part 7): the sandbox runs the simulator on the gateway's
// own logger, and the simulator logged each callback URL with its per-task token.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { callbackToken } from '../src/kie/callback-token.js'
import { createLogger } from '../src/logger.js'
import { api, SIM_KEY, startGateway, startSim, until } from './e2e-helper.js'
import { CALLBACK_SECRET, KEY_A } from './helper.js'

describe('log lines carry no callback token', () => {
  it('neither the gateway nor the sandbox simulator logs a task\'s token, however often kie.ai calls back', async () => {
    const lines: string[] = []
    const log = createLogger('debug', new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }))
    // Unsigned callbacks, as in the sandbox; both closed after the test by helper.ts.
    const running = await startSim({ hmacKey: undefined, logger: log.child({ component: 'simulator' }) })
    const { url } = await startGateway({ dbPath: ':memory:', simUrl: running.url, hmacKey: null, app: { apiKeys: [KEY_A], loggerInstance: log } })
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
