import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import type { RunningSimulator } from '../src/simulator/index.js'
import { api, startGateway, startSim, tempDir, until } from './e2e-helper.js'

// The folder, the simulator and the gateway are closed after each test by helper.ts.
let sim: RunningSimulator
let gw: Awaited<ReturnType<typeof startGateway>>
let dir: string
beforeEach(async () => {
  dir = tempDir()
  sim = await startSim()
  gw = await startGateway({ dbPath: join(dir, 'gw.db'), simUrl: sim.url })
})

const upscaleCalls = () => sim.sim.calls.filter((c) => c.path === '/api/v1/mj/generateUpscale')
const final = (id: string) =>
  until(`task ${id} to finish`, async () => {
    const t = await (await api(gw.url).get(`/upscale/${id}`)).json()
    return t.status === 'succeeded' || t.status === 'failed' ? t : undefined
  })

describe('end to end over loopback: gateway ⇄ simulator', () => {
  it('submit → kie.ai → signed callback → poll shows succeeded with a URL that serves the image', async () => {
    const parent = sim.sim.createParentTask('a red fox')
    const res = await api(gw.url).post('/upscale', { taskId: parent, imageIndex: 3 })
    expect(res.status).toBe(202)
    const submitted = await res.json()
    expect(submitted).toMatchObject({ status: 'submitted', taskId: parent, imageIndex: 3 })

    const done = await final(submitted.id)
    const simTask = sim.sim.tasks.get(submitted.kieTaskId)!
    expect(done).toMatchObject({ status: 'succeeded', kieTaskId: simTask.id, resultUrls: simTask.resultUrls, error: null })
    expect(sim.sim.callbacks.filter((c) => c.taskId === simTask.id).map((c) => c.status)).toEqual([200])
    expect(upscaleCalls()).toHaveLength(1)

    const image = await fetch(done.resultUrls[0])
    expect(image.headers.get('content-type')).toBe('image/png')
    expect(Buffer.from(await image.arrayBuffer()).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  })

  // kie.ai's failure callback, its refusal for want of credits and the other rows of the answer
  // table are tested once, in kie-answers.e2e.test.ts.

  it("maps the simulator's own refusal of an unknown parent task to 422", async () => {
    const unknown = await api(gw.url).post('/upscale', { taskId: 'f'.repeat(32), imageIndex: 0 })
    expect(unknown.status).toBe(422)
    expect(await unknown.json()).toMatchObject({ code: 'GW_UPSTREAM_REJECTED' })
  })

  it('refuses bad input without calling kie.ai', async () => {
    const res = await api(gw.url).post('/upscale', { taskId: sim.sim.createParentTask(), imageIndex: '1' })
    expect(res.status).toBe(400)
    expect(upscaleCalls()).toHaveLength(0)
  })

  it('a restart on the same database file loses nothing, and callbacks missed while down land on retry', async () => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await (await api(gw.url).post('/upscale', { taskId: sim.sim.createParentTask(), imageIndex: i % 4 })).json()).id)
    const port = gw.port
    await gw.close() // down before the callbacks come: they fail and kie.ai retries them
    await until('a failed callback delivery', () => sim.sim.callbacks.some((c) => c.status !== 200))
    gw = await startGateway({ dbPath: join(dir, 'gw.db'), simUrl: sim.url, port })
    for (const id of ids) expect((await final(id)).status).toBe('succeeded')
    expect(upscaleCalls()).toHaveLength(5)
  })
})
