import { describe, expect, it } from 'vitest'
import {
  GENERATE_PATH, GENERATE_TASK_TYPES, signKieCallback, UPSCALE_FAILURE, UPSCALE_PATH, VARY_PATH,
  type RunningSimulator, type Variants
} from '../src/simulator/index.js'
import { HEX32, HMAC, KEY, start, startReceiver, waitFor } from './sim-helpers.js'

// The simulator's generate and generateVary (issue 13), over real loopback HTTP like test/simulator.test.ts.

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
const IMAGE = 'https://example.com/cat.png'

function api(base: string) {
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }
  return {
    post: async (path: string, body: unknown, signal?: AbortSignal) => {
      const res = await fetch(base + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), signal })
      const text = await res.text()
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
      let json: any = null
      try { json = JSON.parse(text) } catch { /* an HTML answer: kept as text */ }
      return { status: res.status, type: res.headers.get('content-type'), text, body: json }
    },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
    get: async (path: string) => await (await fetch(base + path, { headers })).json() as any
  }
}

type Client = ReturnType<typeof api>
const recordInfo = async (client: Client, id: string) => (await client.get(`/api/v1/mj/record-info?taskId=${id}`)).data

/** A body kie.ai accepts for each task type: the image types need a file URL, video needs motion and takes no speed. */
const VALID: Record<string, Record<string, unknown>> = {
  mj_txt2img: { taskType: 'mj_txt2img', prompt: 'a red fox', speed: 'relaxed', aspectRatio: '16:9', version: '7', variety: 10, stylization: 100, weirdness: 0 },
  mj_img2img: { taskType: 'mj_img2img', prompt: 'the same, in blue', fileUrls: [IMAGE], speed: 'fast' },
  mj_style_reference: { taskType: 'mj_style_reference', prompt: 'in this style', fileUrls: [IMAGE, 'http://example.com/b.jpg'], speed: 'turbo' },
  mj_omni_reference: { taskType: 'mj_omni_reference', prompt: 'this character', fileUrls: [IMAGE], ow: 500 },
  mj_video: { taskType: 'mj_video', prompt: 'it moves', fileUrls: [IMAGE], motion: 'low', videoBatchSize: 2 },
  mj_video_hd: { taskType: 'mj_video_hd', prompt: 'it moves in HD', fileUrl: IMAGE, motion: 'high', videoBatchSize: 4 }
}

/** Submit a generate and wait for its grid to finish. */
async function grid(running: RunningSimulator, body: Record<string, unknown> = VALID.mj_txt2img!): Promise<string> {
  const res = await api(running.url).post(GENERATE_PATH, body)
  expect(res.body, JSON.stringify(body)).toMatchObject({ code: 200, data: { taskId: expect.stringMatching(HEX32) } })
  const id: string = res.body.data.taskId
  await waitFor(`grid ${id}`, () => running.sim.tasks.get(id)?.state === 'success')
  return id
}

/** Fetch each URL and check it is a real PNG. */
async function expectPngs(urls: string[]): Promise<void> {
  for (const url of urls) {
    const res = await fetch(url)
    expect([res.status, res.headers.get('content-type')], url).toEqual([200, 'image/png'])
    expect([...Buffer.from(await res.arrayBuffer()).subarray(0, 8)], url).toEqual(PNG_SIGNATURE)
  }
}

describe('POST /api/v1/mj/generate: accepted bodies', () => {
  it.each(GENERATE_TASK_TYPES)('%s: a four-image grid, record-info echoes taskType and paramJson', async (taskType) => {
    const running = await start({ credits: 5 })
    const client = api(running.url)
    const body: Record<string, unknown> = { ...VALID[taskType], extraField: { kept: true } }
    const id = await grid(running, body)
    expect(running.sim.credits).toBe(4)
    const info = await recordInfo(client, id)
    expect(info).toMatchObject({ taskId: id, taskType, successFlag: 1, errorCode: null, errorMessage: null })
    const speedEcho: Record<string, string> = { relaxed: 'Relax', fast: 'Fast', turbo: 'Turbo' }
    const echoed = typeof body.speed === 'string' ? { ...body, speed: speedEcho[body.speed] } : body
    expect(JSON.parse(info.paramJson)).toEqual(echoed)
    // the normalised speed is a new value, not a new key: the order is the body's
    expect(Object.keys(JSON.parse(info.paramJson))).toEqual(Object.keys(body))
    expect(info.resultInfoJson.resultUrls).toHaveLength(4)
    expect(running.sim.tasks.get(id)).toMatchObject({ type: 'generate', taskType, prompt: body.prompt, parentTaskId: null })
  })

  it('accepts the least body, null for optional fields, and a prompt of 2000 characters (code points)', async () => {
    const running = await start()
    const client = api(running.url)
    for (const body of [
      { taskType: 'mj_txt2img', prompt: 'x' },
      { taskType: 'mj_txt2img', prompt: 'x', speed: null, version: null, callBackUrl: null },
      { taskType: 'mj_txt2img', prompt: 'a'.repeat(2000) },
      { taskType: 'mj_txt2img', prompt: '🦊'.repeat(2000) },
      { taskType: 'mj_txt2img', prompt: 'x', enableTranslation: true, waterMark: 'sim', variety: 100, stylization: 1000, weirdness: 3000 },
      { taskType: 'mj_txt2img', prompt: 'x', fileUrls: [], version: 'niji7', aspectRatio: '2:1' },
      { taskType: 'mj_omni_reference', prompt: 'x', fileUrls: [IMAGE], ow: 1 }
    ]) {
      const res = await client.post(GENERATE_PATH, body)
      expect([res.status, res.body], JSON.stringify(body).slice(0, 80)).toEqual([200, { code: 200, msg: 'success', data: { taskId: expect.stringMatching(HEX32) } }])
    }
  })
})

describe('POST /api/v1/mj/generate: validation', () => {
  const txt = (extra: Record<string, unknown>) => ({ taskType: 'mj_txt2img', prompt: 'x', ...extra })
  const refused: Array<[string, unknown, string]> = [
    ['no taskType', { prompt: 'x' }, 'taskType'],
    ['an unknown taskType', { taskType: 'mj_txt2vid', prompt: 'x' }, 'taskType'],
    ['a taskType that is no string', { taskType: 1, prompt: 'x' }, 'taskType'],
    ['no prompt', { taskType: 'mj_txt2img' }, 'prompt'],
    ['an empty prompt', txt({ prompt: '' }), 'prompt'],
    ['a prompt of 2001 characters', txt({ prompt: 'a'.repeat(2001) }), 'prompt'],
    ['a prompt that is no string', txt({ prompt: ['x'] }), 'prompt'],
    ['an unknown speed', txt({ speed: 'Relax' }), 'speed'],
    ['speed for omni reference', { ...VALID.mj_omni_reference, speed: 'fast' }, 'speed'],
    ['speed for video', { ...VALID.mj_video, speed: 'relaxed' }, 'speed'],
    ['speed for video hd', { ...VALID.mj_video_hd, speed: 'turbo' }, 'speed'],
    ['fileUrls that is no array', txt({ fileUrls: IMAGE }), 'fileUrls'],
    ['a file URL that is no URL', txt({ fileUrls: [IMAGE, 'cat.png'] }), 'fileUrls[1]'],
    ['a file URL that is not http(s)', txt({ fileUrls: ['ftp://example.com/cat.png'] }), 'fileUrls[0]'],
    ['a file URL that is no string', txt({ fileUrls: [7] }), 'fileUrls[0]'],
    ['a legacy fileUrl that is no URL', txt({ fileUrl: 'javascript:alert(1)' }), 'fileUrl'],
    ...(['mj_img2img', 'mj_style_reference', 'mj_omni_reference', 'mj_video', 'mj_video_hd'] as const).map((taskType): [string, unknown, string] =>
      [`${taskType} without a file URL`, { ...VALID[taskType], fileUrls: [], fileUrl: undefined }, 'fileUrls']),
    ['an unknown aspectRatio', txt({ aspectRatio: '5:4' }), 'aspectRatio'],
    ['a version as a number', txt({ version: 7 }), 'version'],
    ['an unknown version', txt({ version: '8' }), 'version'],
    ['variety off the steps of 5', txt({ variety: 12 }), 'variety'],
    ['variety above 100', txt({ variety: 105 }), 'variety'],
    ['variety as a string', txt({ variety: '10' }), 'variety'],
    ['stylization above 1000', txt({ stylization: 1001 }), 'stylization'],
    ['stylization below 0', txt({ stylization: -1 }), 'stylization'],
    ['weirdness above 3000', txt({ weirdness: 3001 }), 'weirdness'],
    ['weirdness not whole', txt({ weirdness: 1.5 }), 'weirdness'],
    ['ow of 0', { ...VALID.mj_omni_reference, ow: 0 }, 'ow'],
    ['ow above 1000', { ...VALID.mj_omni_reference, ow: 1001 }, 'ow'],
    ['ow without omni reference', { ...VALID.mj_img2img, ow: 100 }, 'ow'],
    ['waterMark that is no string', txt({ waterMark: true }), 'waterMark'],
    ['enableTranslation that is no boolean', txt({ enableTranslation: 'yes' }), 'enableTranslation'],
    ['callBackUrl that is no string', txt({ callBackUrl: { url: 'x' } }), 'callBackUrl'],
    ['videoBatchSize of 3', { ...VALID.mj_video, videoBatchSize: 3 }, 'videoBatchSize'],
    ['an unknown motion', { ...VALID.mj_video, motion: 'medium' }, 'motion'],
    ['video without motion', { ...VALID.mj_video, motion: undefined }, 'motion'],
    ['video hd without motion', { ...VALID.mj_video_hd, motion: null }, 'motion']
  ]

  it.each(refused)('refuses %s: HTTP 200, code 422, a msg naming the field, nothing made or billed', async (_what, body, field) => {
    const running = await start({ credits: 5 })
    const res = await api(running.url).post(GENERATE_PATH, body)
    expect([res.status, res.body]).toEqual([200, { code: 422, msg: expect.stringContaining(field), data: null }])
    expect(res.body.msg).toMatch(new RegExp(`^Validation failed: ${field.replace(/[[\]]/g, '\\$&')}[ ]`))
    expect(running.sim.tasks.size).toBe(0)
    expect(running.sim.credits).toBe(5)
    expect(running.sim.calls).toEqual([expect.objectContaining({ path: GENERATE_PATH, httpStatus: 200, code: 422, taskId: null })])
  })

  it('answers code 400 for a body that is no JSON object, as for upscale', async () => {
    const running = await start({ credits: 5 })
    for (const body of ['[1]', '"x"', 'null', '{not json']) {
      const res = await api(running.url).post(GENERATE_PATH, body)
      expect([res.status, res.body?.code], body).toEqual([200, 400])
    }
    expect(running.sim.tasks.size).toBe(0)
  })
})

describe('credits and the new-task rate limit', () => {
  it('generate and vary take one credit each and answer 402 without one, making nothing', async () => {
    const running = await start({ credits: 2 })
    const client = api(running.url)
    const parent = await grid(running)
    expect((await client.post(VARY_PATH, { taskId: parent, imageIndex: 0 })).body.code).toBe(200)
    expect(running.sim.credits).toBe(0)
    const refusal = { code: 402, msg: 'Insufficient credits. Please top up your account.', data: null }
    expect((await client.post(GENERATE_PATH, VALID.mj_txt2img)).body).toEqual(refusal)
    expect((await client.post(VARY_PATH, { taskId: parent, imageIndex: 1 })).body).toEqual(refusal)
    expect(running.sim.tasks.size).toBe(2)
    expect((await client.get('/api/v1/chat/credit')).data).toBe(0)
  })

  it('one sliding window for generate, generateVary and generateUpscale together', async () => {
    const running = await start({ rateLimitMax: 3, rateLimitWindowMs: 400 })
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    expect((await client.post(GENERATE_PATH, VALID.mj_txt2img)).body.code).toBe(200)
    expect((await client.post(VARY_PATH, { taskId: parent, imageIndex: 0 })).body.code).toBe(200)
    expect((await client.post(UPSCALE_PATH, { taskId: parent, imageIndex: 0 })).body.code).toBe(200)
    for (const [path, body] of [[GENERATE_PATH, VALID.mj_txt2img], [VARY_PATH, { taskId: parent, imageIndex: 1 }], [UPSCALE_PATH, { taskId: parent, imageIndex: 1 }]] as const) {
      const limited = await client.post(path, body)
      expect([limited.status, limited.body], path).toEqual([429, { code: 429, msg: expect.stringContaining('Rate limit'), data: null }])
    }
    expect(running.sim.tasks.size).toBe(4)
    await new Promise((resolve) => setTimeout(resolve, 450))
    expect((await client.post(GENERATE_PATH, VALID.mj_txt2img)).body.code).toBe(200)
  })
})

describe('the grid callback', () => {
  it('comes in the documented shape, signed, with four URLs that serve real PNGs; promptJson is the body as sent', async () => {
    const running = await start({ hmacKey: HMAC })
    const receiver = await startReceiver()
    const body = { ...VALID.mj_txt2img, callBackUrl: `${receiver.url}?task=local-1` }
    const id = (await api(running.url).post(GENERATE_PATH, body)).body.data.taskId as string
    await waitFor('callback', () => receiver.received.length === 1)
    const [cb] = receiver.received
    expect(cb!.body).toEqual({ code: 200, msg: 'success', data: { taskId: id, promptJson: expect.any(String), resultUrls: expect.any(Array) } })
    expect(JSON.parse(cb!.body.data.promptJson)).toEqual(body)
    const urls: string[] = cb!.body.data.resultUrls
    expect(urls).toEqual([0, 1, 2, 3].map((i) => expect.stringMatching(new RegExp(`^${running.url}/files/[0-9a-f]{32}_0_${i}\\.png$`))))
    expect(new Set(urls.map((u) => u.split('/').at(-1)!.slice(0, 32))).size).toBe(1)
    await expectPngs(urls)
    const pixels = await Promise.all(urls.map(async (u) => Buffer.from(await (await fetch(u)).arrayBuffer()).toString('base64')))
    expect(new Set(pixels).size).toBe(4)
    expect(cb!.headers['x-webhook-signature']).toBe(signKieCallback(HMAC, id, cb!.headers['x-webhook-timestamp'] as string))
    expect(running.sim.tasks.get(id)?.resultUrls).toEqual(urls)
    expect((await recordInfo(api(running.url), id)).resultInfoJson.resultUrls).toEqual(urls.map((resultUrl) => ({ resultUrl })))
  })

  const shapes: Array<[Variants['callbackShape'], (urls: string[]) => unknown]> = [
    ['documented', (urls) => ({ code: 200, msg: 'success', data: expect.objectContaining({ resultUrls: urls }) })],
    ['codeString', (urls) => ({ code: '200', msg: 'success', data: expect.objectContaining({ resultUrls: urls }) })],
    ['urlObjects', (urls) => ({ code: 200, msg: 'success', data: expect.objectContaining({ resultUrls: urls.map((resultUrl) => ({ resultUrl })) }) })],
    ['resultInfoJsonObject', (urls) => ({ code: 200, msg: 'success', data: expect.objectContaining({ resultInfoJson: { resultUrls: urls.map((resultUrl) => ({ resultUrl })) } }) })],
    ['resultInfoJsonString', (urls) => ({ code: 200, msg: 'success', data: expect.objectContaining({ resultInfoJson: JSON.stringify({ resultUrls: urls.map((resultUrl) => ({ resultUrl })) }) }) })],
    ['verification', () => ({ taskId: expect.any(String), code: 200, msg: 'Success', data: expect.objectContaining({ callbackType: 'task_completed' }) })]
  ]

  it.each(shapes)('callbackShape %s carries the whole grid, for generate and vary alike', async (shape, expected) => {
    const running = await start({ variants: { callbackShape: shape } })
    const receiver = await startReceiver()
    const client = api(running.url)
    const gen = (await client.post(GENERATE_PATH, { ...VALID.mj_img2img, callBackUrl: receiver.url })).body.data.taskId as string
    await waitFor('generate callback', () => receiver.received.length === 1)
    const vary = (await client.post(VARY_PATH, { taskId: gen, imageIndex: 2, callBackUrl: receiver.url })).body.data.taskId as string
    await waitFor('vary callback', () => receiver.received.length === 2)
    for (const [i, id] of [gen, vary].entries()) {
      const urls = running.sim.tasks.get(id)!.resultUrls
      expect(urls).toHaveLength(4)
      expect(receiver.received[i]!.body, id).toEqual(expected(urls))
      expect(receiver.received[i]!.body.data.taskId ?? receiver.received[i]!.body.data.task_id).toBe(id)
    }
  })

  it('failGrids: generate and vary fail with code 500 and no URL; record-info says failed', async () => {
    const running = await start()
    const receiver = await startReceiver()
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    running.sim.failGrids = true
    const gen = (await client.post(GENERATE_PATH, { ...VALID.mj_txt2img, callBackUrl: receiver.url })).body.data.taskId as string
    const vary = (await client.post(VARY_PATH, { taskId: parent, imageIndex: 3, callBackUrl: receiver.url })).body.data.taskId as string
    await waitFor('two callbacks', () => receiver.received.length === 2)
    for (const id of [gen, vary]) {
      const cb = receiver.received.find((r) => r.body.data.taskId === id)!
      expect(cb.body).toEqual({ code: 500, msg: UPSCALE_FAILURE, data: { taskId: id, promptJson: expect.any(String), resultUrls: [] } })
      expect(await recordInfo(client, id)).toMatchObject({ successFlag: 3, errorCode: 500, errorMessage: UPSCALE_FAILURE, resultInfoJson: { resultUrls: [] } })
    }
    // a failed grid is no parent
    expect((await client.post(VARY_PATH, { taskId: gen, imageIndex: 0 })).body).toMatchObject({ code: 422, msg: expect.stringContaining('not finished') })
  })
})

describe('POST /api/v1/mj/generateVary', () => {
  it('makes a new grid from a generate grid and from a vary grid; upscale takes a vary grid too', async () => {
    const running = await start({ credits: 10 })
    const receiver = await startReceiver()
    const client = api(running.url)
    const gen = await grid(running)
    const first = { taskId: gen, imageIndex: 1, waterMark: 'sim', callBackUrl: receiver.url }
    const v1 = (await client.post(VARY_PATH, first)).body.data.taskId as string
    expect(v1).toMatch(HEX32)
    await waitFor('vary callback', () => receiver.received.length === 1)
    expect(receiver.received[0]!.body).toEqual({ code: 200, msg: 'success', data: { taskId: v1, promptJson: JSON.stringify(first), resultUrls: expect.any(Array) } })
    await expectPngs(receiver.received[0]!.body.data.resultUrls)
    expect(receiver.received[0]!.body.data.resultUrls).toHaveLength(4)
    expect(running.sim.tasks.get(v1)).toMatchObject({ type: 'vary', parentTaskId: gen, imageIndex: 1, waterMark: 'sim', prompt: 'a red fox', state: 'success' })
    const info = await recordInfo(client, v1)
    expect(info).toMatchObject({ taskId: v1, taskType: 'mj_vary', successFlag: 1 })
    expect(JSON.parse(info.paramJson)).toEqual(first)
    expect(info.resultInfoJson.resultUrls).toHaveLength(4)

    const v2 = (await client.post(VARY_PATH, { taskId: v1, imageIndex: 3, callBackUrl: receiver.url })).body.data.taskId as string
    await waitFor('vary of a vary', () => receiver.received.length === 2)
    expect(running.sim.tasks.get(v2)).toMatchObject({ type: 'vary', parentTaskId: v1, state: 'success' })
    expect(receiver.received[1]!.body.data.resultUrls).toHaveLength(4)

    const up = (await client.post(UPSCALE_PATH, { taskId: v2, imageIndex: 0, callBackUrl: receiver.url })).body.data.taskId as string
    await waitFor('upscale of a vary', () => receiver.received.length === 3)
    expect(receiver.received[2]!.body).toMatchObject({ code: 200, data: { taskId: up, resultUrls: [expect.any(String)] } })
    await expectPngs(receiver.received[2]!.body.data.resultUrls)
    expect(running.sim.tasks.get(up)).toMatchObject({ type: 'upscale', parentTaskId: v2 })
    expect(running.sim.credits).toBe(6)
  })

  it('refuses bad bodies and parents with code 422 in an HTTP 200, making and billing nothing', async () => {
    const running = await start({ credits: 5 })
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    const upscaled = (await client.post(UPSCALE_PATH, { taskId: parent, imageIndex: 0 })).body.data.taskId as string
    running.sim.pauseCompletions()
    const unfinished = (await client.post(VARY_PATH, { taskId: parent, imageIndex: 0 })).body.data.taskId as string
    const before = { tasks: running.sim.tasks.size, credits: running.sim.credits }
    const refused: Array<[unknown, string]> = [
      [{ imageIndex: 0 }, 'taskId'],
      [{ taskId: '', imageIndex: 0 }, 'taskId'],
      [{ taskId: parent }, 'imageIndex'],
      [{ taskId: parent, imageIndex: 4 }, 'imageIndex'],
      [{ taskId: parent, imageIndex: -1 }, 'imageIndex'],
      [{ taskId: parent, imageIndex: '1' }, 'imageIndex'],
      [{ taskId: parent, imageIndex: 0.5 }, 'imageIndex'],
      [{ taskId: parent, imageIndex: 0, waterMark: 1 }, 'waterMark'],
      [{ taskId: parent, imageIndex: 0, callBackUrl: 1 }, 'callBackUrl'],
      [{ taskId: 'f'.repeat(32), imageIndex: 0 }, 'record does not exist'],
      [{ taskId: upscaled, imageIndex: 0 }, 'record does not exist'],
      [{ taskId: unfinished, imageIndex: 0 }, 'parent task is not finished']
    ]
    for (const [body, named] of refused) {
      const res = await client.post(VARY_PATH, body)
      expect([res.status, res.body], JSON.stringify(body)).toEqual([200, { code: 422, msg: expect.stringContaining(named), data: null }])
    }
    // an upscale of an upscale is refused the same way
    expect((await client.post(UPSCALE_PATH, { taskId: upscaled, imageIndex: 0 })).body).toMatchObject({ code: 422, msg: expect.stringContaining('record does not exist') })
    for (const body of ['[1]', 'null', '{not json']) expect((await client.post(VARY_PATH, body)).body.code, body).toBe(400)
    expect({ tasks: running.sim.tasks.size, credits: running.sim.credits }).toEqual(before)
  })
})

describe('createParentTask', () => {
  it('still makes a finished generate grid without HTTP', async () => {
    const running = await start()
    const id = running.sim.createParentTask('a parent')
    expect(running.sim.tasks.get(id)).toMatchObject({ type: 'generate', taskType: 'mj_txt2img', state: 'success', successFlag: 1, prompt: 'a parent' })
    expect(running.sim.calls).toEqual([])
    const info = await recordInfo(api(running.url), id)
    expect(JSON.parse(info.paramJson)).toEqual({ taskType: 'mj_txt2img', prompt: 'a parent' })
    await expectPngs(info.resultInfoJson.resultUrls.map((r: { resultUrl: string }) => r.resultUrl))
  })
})

describe('scripted answers and chaos faults on generate and generateVary', () => {
  const targets = [
    ['generate', GENERATE_PATH, () => VALID.mj_txt2img],
    ['generateVary', VARY_PATH, (parent: string) => ({ taskId: parent, imageIndex: 0 })]
  ] as const
  const made = (running: RunningSimulator) => running.sim.tasks.size - 1

  it.each(targets)('%s: forced JSON and raw answers make nothing; afterCreate makes and bills the task', async (endpoint, path, body) => {
    const running = await start({ credits: 5 })
    const receiver = await startReceiver()
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    const withCb = (task: string) => ({ ...body(parent), callBackUrl: `${receiver.url}?task=${task}` })
    running.sim.script(endpoint,
      { httpStatus: 500, body: { code: 500, msg: 'boom', data: null } },
      { httpStatus: 502, raw: '<html>502</html>' },
      { afterCreate: true, httpStatus: 504, raw: '<html>504 Gateway Time-out</html>' })
    expect(await client.post(path, withCb('a'))).toMatchObject({ status: 500, body: { code: 500, msg: 'boom', data: null } })
    expect(await client.post(path, withCb('b'))).toMatchObject({ status: 502, text: '<html>502</html>', type: 'text/html; charset=utf-8' })
    expect(made(running)).toBe(0)
    expect(running.sim.credits).toBe(5)
    expect(await client.post(path, withCb('c'))).toMatchObject({ status: 504, text: '<html>504 Gateway Time-out</html>' })
    const [task] = [...running.sim.tasks.values()].slice(1)
    expect(task).toBeDefined()
    expect(running.sim.credits).toBe(4)
    expect(running.sim.callsFor('c')).toEqual([expect.objectContaining({ path, httpStatus: 504, code: null, taskId: task!.id, fault: null })])
    expect(running.sim.acceptedTasks()).toBe(1)
    await waitFor('callback', () => receiver.received.length === 1)
    expect(receiver.received[0]!.body.data.taskId).toBe(task!.id)
    // the queue drained: the next request is handled normally
    expect((await client.post(path, body(parent))).body.code).toBe(200)
  })

  it.each(targets)('%s: hangup makes nothing, accept-then-hangup makes the task, stall holds the request', async (endpoint, path, body) => {
    const running = await start({ credits: 5 })
    const receiver = await startReceiver()
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    running.sim.script(endpoint, 'hangup', 'accept-then-hangup', 'stall')
    await expect(client.post(path, body(parent))).rejects.toThrow()
    expect(made(running)).toBe(0)
    await expect(client.post(path, { ...body(parent), callBackUrl: `${receiver.url}?task=t` })).rejects.toThrow()
    expect(made(running)).toBe(1)
    expect(running.sim.credits).toBe(4)
    expect(running.sim.callsFor('t')).toEqual([expect.objectContaining({ path, httpStatus: 0, code: null, taskId: expect.stringMatching(HEX32) })])
    await waitFor('callback', () => receiver.received.length === 1)
    await expect(client.post(path, body(parent), AbortSignal.timeout(150))).rejects.toThrow()
    expect(running.sim.calls.at(-1)).toMatchObject({ path, httpStatus: 0, taskId: null })
    expect(made(running)).toBe(1)
  })

  it.each(targets)('%s: sim.chaos.upscaleFaults strike it too, before and after the origin', async (endpoint, path, body) => {
    const running = await start({ credits: 5 })
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    running.sim.chaos.upscaleFaults = { code455: 1 }
    expect((await client.post(path, body(parent))).body).toEqual({ code: 455, msg: 'Service unavailable', data: null })
    expect(running.sim.calls.at(-1)).toMatchObject({ path, fault: 'code455', taskId: null })
    running.sim.chaos.upscaleFaults = { cdn521: 1 }
    expect((await client.post(path, body(parent))).status).toBe(521)
    expect(made(running)).toBe(0)
    running.sim.chaos.upscaleFaults = { cdn524: 1 }
    const after = await client.post(path, body(parent))
    expect([after.status, after.body]).toEqual([524, null])
    expect(running.sim.calls.at(-1)).toMatchObject({ path, fault: 'cdn524', taskId: expect.stringMatching(HEX32) })
    expect(made(running)).toBe(1)
    expect(running.sim.credits).toBe(4)
    // scripted answers still come first
    running.sim.script(endpoint, { body: { code: 500, msg: 'scripted', data: null } })
    expect((await client.post(path, body(parent))).body.msg).toBe('scripted')
  })

  it('callsFor and acceptedTasks span the three endpoints; the upscale helpers still see upscales only', async () => {
    const running = await start()
    const client = api(running.url)
    const parent = running.sim.createParentTask()
    const cb = (task: string) => ({ callBackUrl: `http://127.0.0.1:9/cb?task=${task}&token=t0k3n` })
    running.sim.script('generate', { httpStatus: 500, body: { code: 500, msg: 'boom', data: null } })
    await client.post(GENERATE_PATH, { ...VALID.mj_txt2img, ...cb('g') })
    await client.post(GENERATE_PATH, { ...VALID.mj_txt2img, ...cb('g') })
    await client.post(VARY_PATH, { taskId: parent, imageIndex: 0, ...cb('g') })
    await client.post(UPSCALE_PATH, { taskId: parent, imageIndex: 0, ...cb('g') })
    await client.post(UPSCALE_PATH, { taskId: parent, imageIndex: 1, ...cb('u') })
    await client.post(GENERATE_PATH, { taskType: 'nope', prompt: 'x', ...cb('g') })
    await client.get(`/api/v1/mj/record-info?taskId=${parent}&callBackUrl=x`)
    expect(running.sim.callsFor('g').map((c) => [c.path, c.code])).toEqual([
      [GENERATE_PATH, 500], [GENERATE_PATH, 200], [VARY_PATH, 200], [UPSCALE_PATH, 200], [GENERATE_PATH, 422]
    ])
    expect(running.sim.callsFor('g', VARY_PATH)).toHaveLength(1)
    expect(running.sim.callsFor('nobody')).toEqual([])
    expect(running.sim.acceptedTasks()).toBe(4)
    expect(running.sim.acceptedTasks(GENERATE_PATH)).toBe(1)
    expect(running.sim.upscaleCallsFor('g')).toHaveLength(1)
    expect(running.sim.acceptedUpscales()).toBe(2)
  })
})
