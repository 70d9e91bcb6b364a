// Issue 13 end to end: the gateway against the simulator over loopback. Each kind submitted as
// kie.ai documents it; a chain (generate, then four upscales) in order under one rate budget,
// nothing sent before its parent succeeded; a failed parent failing its children.
import { describe, expect, it } from 'vitest'
import { GENERATE_PATH, UPSCALE_PATH, VARY_PATH } from '../src/simulator/index.js'
import { until } from './e2e-helper.js'
import { setup } from './resilience-helper.js'

type T = Awaited<ReturnType<typeof setup>>
const finalTask = async (t: T, id: string) => {
  await until(`task ${id} to be final`, () => ['succeeded', 'failed'].includes(t.row(id).status), 10_000)
  return (await t.client.get(`/tasks/${id}`)).json()
}

describe('generate, vary and chained upscales through the gateway', () => {
  it('generate then four upscales in five requests: sent in order, each only after its parent, one kie.ai task each, all archived', async () => {
    // The grid takes long enough that the four upscales arrive while it runs.
    const t = await setup({ sim: { completionDelayMs: 600 }, app: (simUrl, dir) => ({ archive: { dir: `${dir}/results`, hosts: [new URL(simUrl).host] } }) })
    const body = { taskType: 'mj_txt2img', prompt: 'a lighthouse at dawn', speed: 'fast', aspectRatio: '16:9', version: '7' }
    const grid = await (await t.client.post('/generate', body)).json()
    expect(grid).toMatchObject({ type: 'generate', status: 'submitted' })
    const ups = []
    for (const imageIndex of [0, 1, 2, 3]) ups.push(await (await t.client.post('/upscale', { parentId: grid.id, imageIndex })).json())
    for (const up of ups) expect(up).toMatchObject({ status: 'queued', queue: { waitingFor: grid.id } })

    const doneGrid = await finalTask(t, grid.id)
    const kieGrid = t.sim.tasks.get(doneGrid.kieTaskId)
    expect(doneGrid).toMatchObject({ status: 'succeeded', resultUrls: kieGrid?.resultUrls })
    expect(doneGrid.resultUrls).toHaveLength(4)
    const done = await Promise.all(ups.map((u) => finalTask(t, u.id)))
    for (const d of done) expect(d).toMatchObject({ status: 'succeeded', taskId: doneGrid.kieTaskId })

    // kie.ai received the generate exactly as asked, once, and each upscale once, after the grid was finished.
    const gen = t.sim.callsFor(grid.id, GENERATE_PATH)
    expect(gen).toHaveLength(1)
    expect(gen[0]?.body).toEqual({ ...body, callBackUrl: expect.stringContaining(`task=${grid.id}`) })
    const finishedAt = kieGrid?.completeTime as number
    for (const [i, up] of ups.entries()) {
      const calls = t.sim.callsFor(up.id, UPSCALE_PATH)
      expect(calls).toHaveLength(1)
      expect(calls[0]?.body).toMatchObject({ taskId: doneGrid.kieTaskId, imageIndex: i })
      expect(calls[0]?.at as number).toBeGreaterThanOrEqual(finishedAt)
    }
    // In arrival order, within the one rate budget.
    const starts = ups.map((u) => (t.sim.callsFor(u.id, UPSCALE_PATH)[0]?.at as number))
    expect([...starts].sort((a, b) => a - b)).toEqual(starts)
    expect(t.sim.acceptedTasks()).toBe(5)
    expect(t.sim.calls.filter((c) => c.httpStatus === 429)).toEqual([])
    // The archive keeps all four images of the grid.
    await until('the grid archived', () => t.gw.repo.resultFiles(grid.id).filter((f) => f.status === 'stored').length === 4)
    for (const index of [0, 1, 2, 3]) {
      const image = await t.client.get(`/tasks/${grid.id}/result?index=${index}`)
      expect(image.status).toBe(200)
      expect(Buffer.from(await image.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG')
    }
  })

  it('vary of a finished grid by kie.ai id and by parentId: kie.ai generateVary, a new grid', async () => {
    const t = await setup()
    const parent = t.sim.createParentTask()
    const byId = await (await t.client.post('/vary', { taskId: parent, imageIndex: 3 })).json()
    const grid = await finalTask(t, byId.id)
    expect(grid).toMatchObject({ type: 'vary', status: 'succeeded' })
    expect(grid.resultUrls).toHaveLength(4)
    expect(t.sim.callsFor(byId.id, VARY_PATH)[0]?.body).toMatchObject({ taskId: parent, imageIndex: 3 })
    const chained = await (await t.client.post('/vary', { parentId: byId.id, imageIndex: 0 })).json()
    expect(await finalTask(t, chained.id)).toMatchObject({ status: 'succeeded', taskId: grid.kieTaskId })
  })

  it('a failed grid fails its chained upscales with GW_PARENT_FAILED, and nothing is sent for them', async () => {
    const t = await setup()
    t.sim.failGrids = true
    const grid = await (await t.client.post('/generate', { taskType: 'mj_txt2img', prompt: 'p' })).json()
    const ups = []
    for (const imageIndex of [0, 1]) ups.push(await (await t.client.post('/upscale', { parentId: grid.id, imageIndex })).json())
    expect(await finalTask(t, grid.id)).toMatchObject({ status: 'failed', error: { code: 'GW_UPSTREAM_FAILED' } })
    for (const up of ups) expect(await finalTask(t, up.id)).toMatchObject({ status: 'failed', error: { code: 'GW_PARENT_FAILED' } })
    expect(t.sim.calls.filter((c) => c.path === UPSCALE_PATH)).toEqual([])
  })
})
