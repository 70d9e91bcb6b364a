// Issue 13 at the routes: generate and vary, chained work, and the /tasks reads (fake kie.ai,
// fake clock; the end-to-end chain against the simulator is in tasks.e2e.test.ts).
import { describe, expect, it } from 'vitest'
import { auth, buildTestApp, callbackQuery, failureCallback, hex32, KEY_B, successCallback } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
const GRID = (k: string) => [0, 1, 2, 3].map((i) => `https://tempfile.aiquickdraw.com/v/${k}_0_${i}.png`)

const post = (t: Ctx, url: string, payload: unknown, key?: string) =>
  t.app.inject({ method: 'POST', url, headers: auth(key), payload: payload as object })
const get = async (t: Ctx, url: string, key?: string) => (await t.app.inject({ url, headers: auth(key) })).json()
const callback = (t: Ctx, id: string, body: object) => t.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(id)}`, payload: body })

describe('POST /generate', () => {
  it('sends kie.ai exactly what was asked, with the gateway\'s callback URL, and keeps the parameters', async () => {
    const t = await buildTestApp()
    const body = { taskType: 'mj_txt2img', prompt: 'a lighthouse at dawn', speed: 'fast', aspectRatio: '16:9', version: '7', variety: 10, stylization: 250, weirdness: 0, enableTranslation: true, waterMark: 'acme' }
    const res = await post(t, '/generate', body)
    expect(res.statusCode).toBe(202)
    const task = res.json()
    expect(res.headers.location).toBe(`/tasks/${task.id}`)
    expect(task).toMatchObject({ type: 'generate', status: 'submitted', parentId: null, taskId: null, imageIndex: null, params: body, kieTaskId: expect.any(String) })
    expect(t.kie.gridCalls).toEqual([{ endpoint: 'generate', body: { ...body, callBackUrl: expect.stringMatching(new RegExp(`/callbacks/mj\\?task=${task.id}&token=`)) } }])
    expect(t.kie.upscaleCalls).toEqual([])
    expect(t.repo.getTask(task.id)).toMatchObject({ type: 'generate', params: JSON.stringify(body), parent_task_id: null })
  })

  it.each([
    ['no taskType', { prompt: 'x' }, /body\.taskType: is required/],
    ['an unknown taskType', { taskType: 'mj_nope', prompt: 'x' }, /body\.taskType/],
    ['a video taskType', { taskType: 'mj_video', prompt: 'x', fileUrls: ['https://a.example/x.png'] }, /body\.taskType: mj_video is not supported yet/],
    ['an empty prompt', { taskType: 'mj_txt2img', prompt: '' }, /body\.prompt/],
    ['a prompt over 2000 characters', { taskType: 'mj_txt2img', prompt: 'x'.repeat(2001) }, /body\.prompt/],
    ['an unknown speed', { taskType: 'mj_txt2img', prompt: 'x', speed: 'slow' }, /body\.speed/],
    ['img2img without fileUrls', { taskType: 'mj_img2img', prompt: 'x' }, /body\.fileUrls: mj_img2img needs at least one image URL/],
    ['a file URL that is not http(s)', { taskType: 'mj_img2img', prompt: 'x', fileUrls: ['ftp://a/x.png'] }, /body\.fileUrls/],
    ['an unknown aspect ratio', { taskType: 'mj_txt2img', prompt: 'x', aspectRatio: '7:5' }, /body\.aspectRatio/],
    ['a version as a number', { taskType: 'mj_txt2img', prompt: 'x', version: 7 }, /body\.version/],
    ['variety not in steps of 5', { taskType: 'mj_txt2img', prompt: 'x', variety: 7 }, /body\.variety/],
    ['stylization over 1000', { taskType: 'mj_txt2img', prompt: 'x', stylization: 1001 }, /body\.stylization/],
    ['weirdness over 3000', { taskType: 'mj_txt2img', prompt: 'x', weirdness: 3001 }, /body\.weirdness/],
    ['ow without omni reference', { taskType: 'mj_txt2img', prompt: 'x', ow: 100 }, /body\.ow: only with taskType mj_omni_reference/],
    ['speed with omni reference', { taskType: 'mj_omni_reference', prompt: 'x', fileUrls: ['https://a.example/x.png'], speed: 'fast' }, /body\.speed/],
    ['an unknown field', { taskType: 'mj_txt2img', prompt: 'x', callBackUrl: 'http://x' }, /body\.callBackUrl: unknown field/]
  ])('refuses %s with 400 naming the field, storing and sending nothing', async (_name, body, message) => {
    const t = await buildTestApp()
    const res = await post(t, '/generate', body)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'GW_VALIDATION', message: expect.stringMatching(message) })
    expect((t.db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n).toBe(0)
    expect(t.kie.gridCalls).toEqual([])
  })

  it('is idempotent under an Idempotency-Key, like every POST', async () => {
    const t = await buildTestApp()
    const body = { taskType: 'mj_txt2img', prompt: 'once' }
    const headers = { ...auth(), 'idempotency-key': 'gen-1' }
    const a = await t.app.inject({ method: 'POST', url: '/generate', headers, payload: body })
    const b = await t.app.inject({ method: 'POST', url: '/generate', headers, payload: body })
    expect(b.json()).toEqual(a.json())
    expect(b.headers['idempotent-replayed']).toBe('true')
    expect(t.kie.gridCalls).toHaveLength(1)
    expect((await t.app.inject({ method: 'POST', url: '/generate', headers, payload: { ...body, prompt: 'twice' } })).statusCode).toBe(422)
  })
})

describe('chained work: generate, then vary and four upscales, without waiting in between', () => {
  it('accepts the children at once, sends nothing before the parent succeeded, then each with its kie.ai id, in order', async () => {
    const t = await buildTestApp()
    const grid = (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p' })).json()
    const children = []
    for (const imageIndex of [0, 1, 2, 3]) {
      const res = await post(t, '/upscale', { parentId: grid.id, imageIndex })
      expect(res.statusCode).toBe(202)
      expect(res.headers.location).toBe(`/upscale/${res.json().id}`)
      expect(res.json()).toMatchObject({ type: 'upscale', status: 'queued', parentId: grid.id, taskId: null, imageIndex, queue: { position: null, estimatedSendAt: null, waitingFor: grid.id } })
      children.push(res.json().id as string)
    }
    const vary = (await post(t, '/vary', { parentId: grid.id, imageIndex: 1, waterMark: 'v' })).json()
    expect(vary).toMatchObject({ type: 'vary', status: 'queued', queue: { waitingFor: grid.id } })
    // Nothing is sent while the parent runs, whatever the sender does.
    t.clock.advance(60_000)
    const { sendDue } = await import('../src/workers/sender.js')
    sendDue({ repo: t.repo, dispatcher: t.app.services.dispatcher, clock: t.clock, log: t.app.log })
    await t.app.services.dispatcher.idle()
    expect(t.kie.upscaleCalls).toEqual([])
    expect(t.kie.gridCalls.map((c) => c.endpoint)).toEqual(['generate'])

    expect((await callback(t, grid.id, successCallback(grid.kieTaskId, GRID(grid.kieTaskId)))).statusCode).toBe(200)
    for (const id of [...children, vary.id]) expect(t.repo.getTask(id)).toMatchObject({ status: 'queued', parent_task_id: grid.kieTaskId })
    sendDue({ repo: t.repo, dispatcher: t.app.services.dispatcher, clock: t.clock, log: t.app.log })
    await t.app.services.dispatcher.idle()
    expect(t.kie.upscaleCalls.map((c) => [c.taskId, c.imageIndex])).toEqual([0, 1, 2, 3].map((i) => [grid.kieTaskId, i]))
    expect(t.kie.gridCalls[1]).toEqual({ endpoint: 'generateVary', body: expect.objectContaining({ taskId: grid.kieTaskId, imageIndex: 1, waterMark: 'v' }) })
    for (const id of children) expect((await get(t, `/upscale/${id}`)).status).toBe('submitted')
  })

  it('a child chained to a finished grid is sent at once with its kie.ai id', async () => {
    const t = await buildTestApp()
    const grid = (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p' })).json()
    await callback(t, grid.id, successCallback(grid.kieTaskId, GRID(grid.kieTaskId)))
    const up = (await post(t, '/upscale', { parentId: grid.id, imageIndex: 2 })).json()
    expect(up).toMatchObject({ status: 'submitted', taskId: grid.kieTaskId, parentId: grid.id })
  })

  it('a failed parent fails its children (and theirs) with GW_PARENT_FAILED; a child of an already failed parent fails at once', async () => {
    const t = await buildTestApp()
    const grid = (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p' })).json()
    const vary = (await post(t, '/vary', { parentId: grid.id, imageIndex: 0 })).json()
    const grandchild = (await post(t, '/upscale', { parentId: vary.id, imageIndex: 3 })).json()
    await callback(t, grid.id, failureCallback(grid.kieTaskId, 'Banned prompt'))
    for (const id of [vary.id, grandchild.id]) {
      expect(await get(t, `/tasks/${id}`)).toMatchObject({ status: 'failed', error: { code: 'GW_PARENT_FAILED', message: expect.stringContaining('failed') } })
      expect(t.repo.taskEvents(id).at(-1)).toMatchObject({ to_status: 'failed', source: 'parent' })
    }
    const late = await post(t, '/upscale', { parentId: grid.id, imageIndex: 1 })
    expect(late.statusCode).toBe(202)
    expect(late.json()).toMatchObject({ status: 'failed', error: { code: 'GW_PARENT_FAILED' } })
    expect(t.kie.upscaleCalls).toEqual([])
  })

  it.each([
    ['a task of another client', async (t: Ctx) => (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p' }, KEY_B)).json().id, /is not one of your tasks/],
    ['an id that does not exist', async () => 'no-such-task', /is not one of your tasks/],
    ['an upscale', async (t: Ctx) => (await post(t, '/upscale', { taskId: hex32(), imageIndex: 0 })).json().id, /is an upscale/]
  ])('refuses a parentId that names %s with 422 GW_PARENT_INVALID', async (_name, parentOf, message) => {
    const t = await buildTestApp()
    const parentId = await parentOf(t)
    for (const url of ['/upscale', '/vary']) {
      const res = await post(t, url, { parentId, imageIndex: 0 })
      expect(res.statusCode).toBe(422)
      expect(res.json()).toMatchObject({ code: 'GW_PARENT_INVALID', message: expect.stringMatching(message) })
    }
  })

  it('needs exactly one of taskId and parentId', async () => {
    const t = await buildTestApp()
    expect((await post(t, '/vary', { imageIndex: 0 })).json()).toMatchObject({ code: 'GW_VALIDATION', message: expect.stringMatching(/body\.taskId: is required/) })
    expect((await post(t, '/upscale', { taskId: hex32(), parentId: 'x', imageIndex: 0 })).json()).toMatchObject({ code: 'GW_VALIDATION', message: expect.stringMatching(/body\.parentId: .*not both/) })
  })
})

describe('webhooks for every kind', () => {
  it('names the event after the kind: generate.succeeded, vary.failed, upscale.succeeded', async () => {
    const t = await buildTestApp({ webhooks: { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', allowHosts: ['127.0.0.1'] } })
    const callbackUrl = 'http://127.0.0.1:9/hook'
    const grid = (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p', callbackUrl })).json()
    const vary = (await post(t, '/vary', { taskId: hex32(), imageIndex: 0, callbackUrl })).json()
    const up = (await post(t, '/upscale', { parentId: grid.id, imageIndex: 0, callbackUrl })).json()
    await callback(t, grid.id, successCallback(grid.kieTaskId, GRID(grid.kieTaskId)))
    await callback(t, vary.id, failureCallback(vary.kieTaskId))
    const { sendDue } = await import('../src/workers/sender.js')
    sendDue({ repo: t.repo, dispatcher: t.app.services.dispatcher, clock: t.clock, log: t.app.log })
    await t.app.services.dispatcher.idle()
    await callback(t, up.id, successCallback(t.repo.getTask(up.id)?.kie_task_id as string))
    const types = (id: string) => t.repo.webhookDeliveries(id).map((d) => d.type)
    expect([types(grid.id), types(vary.id), types(up.id)]).toEqual([['generate.succeeded'], ['vary.failed'], ['upscale.succeeded']])
  })
})

describe('reads of every kind under /tasks', () => {
  it('serves every kind under /tasks, filtered by type and status; /upscale keeps serving upscales only', async () => {
    const t = await buildTestApp()
    const grid = (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p' })).json()
    const vary = (await post(t, '/vary', { taskId: hex32(), imageIndex: 0 })).json()
    const up = (await post(t, '/upscale', { taskId: hex32(), imageIndex: 1 })).json()
    expect((await get(t, '/tasks')).items.map((i: { id: string }) => i.id)).toEqual([up.id, vary.id, grid.id])
    expect((await get(t, '/tasks?type=vary')).items.map((i: { id: string }) => i.id)).toEqual([vary.id])
    expect((await get(t, '/tasks?type=generate&status=submitted')).items).toHaveLength(1)
    expect((await get(t, '/upscale')).items.map((i: { id: string }) => i.id)).toEqual([up.id])
    expect(await get(t, `/tasks/${grid.id}`)).toMatchObject({ id: grid.id, type: 'generate' })
    expect((await t.app.inject({ url: `/upscale/${grid.id}`, headers: auth() })).statusCode).toBe(404)
    expect((await t.app.inject({ url: '/upscale?type=vary', headers: auth() })).statusCode).toBe(400)
    expect((await t.app.inject({ url: `/tasks/${grid.id}`, headers: auth(KEY_B) })).statusCode).toBe(404)
  })

  it('long-polls any kind with ?wait=', async () => {
    const t = await buildTestApp()
    const grid = (await post(t, '/generate', { taskType: 'mj_txt2img', prompt: 'p' })).json()
    const waiting = t.app.inject({ url: `/tasks/${grid.id}?wait=5`, headers: auth() })
    await new Promise((r) => setTimeout(r, 20))
    await callback(t, grid.id, successCallback(grid.kieTaskId, GRID(grid.kieTaskId)))
    expect((await waiting).json()).toMatchObject({ status: 'succeeded', resultUrls: GRID(grid.kieTaskId) })
  })
})
