import { crc32, inflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  buildSimulator, defaultVariants, signKieCallback, startSimulator, UPSCALE_FAILURE, UPSCALE_FAULTS, type RunningSimulator, type Variants
} from '../src/simulator/index.js'
import { cleanups, HEX32, HMAC, KEY, start, startReceiver, waitFor } from './sim-helpers.js'
import { bearerMatches } from '../src/simulator/sign.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function api(base: string, key = KEY) {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
  return {
    post: async (path: string, body: unknown) => {
      const res = await fetch(base + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
      return { status: res.status, body: await res.json() as any, res }
    },
    get: async (path: string) => {
      const res = await fetch(base + path, { headers })
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
      return { status: res.status, body: await res.json() as any, res }
    }
  }
}

describe('the simulator\'s own signing and bearer check', () => {
  // The expected value is the one published in kie-api.md, hard-coded: not computed by any code under test.
  // callbacks.test.ts checks the same vector against the gateway's verifier (src/kie/signature.ts):
  // a different implementation, so the twin is intended.
  it('signs the test vector from kie-api.md', () => {
    expect(signKieCallback(HMAC, 'ee9c2715375b7837f8bb51d641ff5863', '1769670760'))
      .toBe('xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=')
    expect(signKieCallback(HMAC, 'ee9c2715375b7837f8bb51d641ff5863', 1769670760))
      .toBe('xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=')
  })

  it('matches the bearer token exactly, whatever the lengths', () => {
    expect(bearerMatches(`Bearer ${KEY}`, KEY)).toBe(true)
    for (const header of [undefined, '', KEY, `Bearer ${KEY}x`, `Bearer ${KEY.slice(0, -1)}`, `bearer ${KEY}`, `Bearer  ${KEY}`]) {
      expect(bearerMatches(header, KEY), String(header)).toBe(false)
    }
  })

  it('imports nothing from the gateway\'s code', async () => {
    const { readdir, readFile } = await import('node:fs/promises')
    const dir = new URL('../src/simulator/', import.meta.url)
    for (const name of await readdir(dir)) {
      const text = await readFile(new URL(name, dir), 'utf8')
      expect(text, name).not.toMatch(/(from\s*|import\s*\(\s*)['"]\.\.\//)
    }
  })
})

describe('auth and routing', () => {
  it('answers a missing or wrong bearer token with HTTP 200 and code 401 by default, as documented', async () => {
    const { url, sim } = await start()
    expect(sim.variants.authFailureHttpStatus).toBe(200)
    const none = await fetch(`${url}/api/v1/chat/credit`)
    expect(none.status).toBe(200)
    expect(await none.json()).toEqual({ code: 401, msg: 'You do not have access permissions', data: null })
    const parent = sim.createParentTask()
    const wrong = await api(url, 'nope').post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0 })
    expect([wrong.status, wrong.body]).toEqual([200, { code: 401, msg: 'You do not have access permissions', data: null }])
    const info = await api(url, `${KEY}x`).get(`/api/v1/mj/record-info?taskId=${parent}`)
    expect([info.status, info.body]).toEqual([200, { code: 401, msg: 'You do not have access permissions', data: null }])
    expect(sim.calls.map((c) => [c.path, c.httpStatus, c.code, c.taskId])).toEqual([
      ['/api/v1/chat/credit', 200, 401, null],
      ['/api/v1/mj/generateUpscale', 200, 401, null],
      ['/api/v1/mj/record-info', 200, 401, null]
    ])
    expect(sim.tasks.size).toBe(1)
  })

  it('answers a real HTTP 401 with the same envelope when authFailureHttpStatus is 401', async () => {
    const { url, sim } = await start({ variants: { authFailureHttpStatus: 401 } })
    const none = await fetch(`${url}/api/v1/chat/credit`)
    expect(none.status).toBe(401)
    expect(await none.json()).toEqual({ code: 401, msg: 'You do not have access permissions', data: null })
    const wrong = await api(url, 'nope').post('/api/v1/mj/generateUpscale', { taskId: 'x', imageIndex: 0 })
    expect([wrong.status, wrong.body]).toEqual([401, { code: 401, msg: 'You do not have access permissions', data: null }])
    sim.variants.authFailureHttpStatus = 200
    expect((await api(url, 'nope').post('/api/v1/common/download-url', { url: 'x' })).status).toBe(200)
    expect(sim.calls.map((c) => [c.path, c.httpStatus, c.code])).toEqual([
      ['/api/v1/chat/credit', 401, 401],
      ['/api/v1/mj/generateUpscale', 401, 401],
      ['/api/v1/common/download-url', 200, 401]
    ])
    expect(sim.tasks.size).toBe(0)
  })

  it('answers unknown /api routes with the 404 envelope', async () => {
    const { app } = buildSimulator({ apiKey: KEY })
    cleanups.push(async () => { await app.close() })
    const res = await app.inject({ method: 'GET', url: '/api/v1/mj/nope', headers: { authorization: `Bearer ${KEY}` } })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ code: 404, msg: 'Not Found', data: null })
  })

  it('reports credits', async () => {
    const { url, sim } = await start({ credits: 42 })
    expect((await api(url).get('/api/v1/chat/credit')).body).toEqual({ code: 200, msg: 'success', data: 42 })
    sim.credits = 7
    expect((await api(url).get('/api/v1/chat/credit')).body.data).toBe(7)
  })
})

describe('generate, upscale, callback, record-info', () => {
  it('runs the documented flow end to end with signed callbacks', async () => {
    const { url, sim } = await start({ hmacKey: HMAC, credits: 10 })
    const receiver = await startReceiver()
    const client = api(url)

    const gen = await client.post('/api/v1/mj/generate', { taskType: 'mj_txt2img', prompt: 'a red fox', callBackUrl: receiver.url })
    expect(gen.body).toMatchObject({ code: 200, msg: 'success' })
    const parentId: string = gen.body.data.taskId
    expect(parentId).toMatch(HEX32)
    await waitFor('parent callback', () => receiver.received.length === 1)
    expect(receiver.received[0]?.body.data.resultUrls).toHaveLength(4)

    const submitted = { taskId: parentId, imageIndex: 2, waterMark: 'sim', callBackUrl: receiver.url }
    const up = await client.post('/api/v1/mj/generateUpscale', submitted)
    expect(up.status).toBe(200)
    expect(up.body).toEqual({ code: 200, msg: 'success', data: { taskId: expect.stringMatching(HEX32) } })
    const upId: string = up.body.data.taskId

    await waitFor('upscale callback', () => receiver.received.length === 2)
    const cb = receiver.received[1]!
    expect(cb.body).toEqual({
      code: 200,
      msg: 'success',
      data: { taskId: upId, promptJson: expect.any(String), resultUrls: [expect.stringMatching(new RegExp(`^${url}/files/[0-9a-f]{32}_0_0\\.png$`))] }
    })
    expect(JSON.parse(cb.body.data.promptJson)).toEqual(submitted)
    const ts = cb.headers['x-webhook-timestamp'] as string
    expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(10)
    expect(cb.headers['x-webhook-signature']).toBe(signKieCallback(HMAC, upId, ts))
    await waitFor('callback recorded', () => sim.callbacks.length === 2)
    expect(sim.callbacks[1]).toMatchObject({ taskId: upId, url: receiver.url, attempt: 1, status: 200 })

    const info = await client.get(`/api/v1/mj/record-info?taskId=${upId}`)
    expect(info.body).toMatchObject({ code: 200, msg: 'success' })
    expect(info.body.data).toMatchObject({
      taskId: upId,
      taskType: 'mj_upscale',
      successFlag: 1,
      errorCode: null,
      errorMessage: null,
      resultInfoJson: { resultUrls: cb.body.data.resultUrls.map((resultUrl: string) => ({ resultUrl })) }
    })
    expect(JSON.parse(info.body.data.paramJson)).toEqual(submitted)
    expect(new Date(info.body.data.createTime).toISOString()).toBe(info.body.data.createTime)
    expect(new Date(info.body.data.completeTime).toISOString()).toBe(info.body.data.completeTime)

    const parentInfo = await client.get(`/api/v1/mj/record-info?taskId=${parentId}`)
    expect(parentInfo.body.data).toMatchObject({ taskType: 'mj_txt2img', successFlag: 1 })
    expect(parentInfo.body.data.resultInfoJson.resultUrls).toHaveLength(4)

    // One generate and one upscale: kie.ai bills both.
    expect((await client.get('/api/v1/chat/credit')).body.data).toBe(8)
    expect(sim.calls.filter((c) => c.path === '/api/v1/mj/generateUpscale')).toHaveLength(1)
    expect(sim.tasks.get(upId)).toMatchObject({ type: 'upscale', parentTaskId: parentId, imageIndex: 2, waterMark: 'sim', state: 'success' })
  })

  it('serves the result URL as a real, stable PNG', async () => {
    const { url, sim } = await start()
    const receiver = await startReceiver()
    const parent = sim.createParentTask()
    const up = await api(url).post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0, callBackUrl: receiver.url })
    await waitFor('callback', () => receiver.received.length === 1)
    const fileUrl: string = receiver.received[0]!.body.data.resultUrls[0]
    expect(sim.tasks.get(up.body.data.taskId)?.resultUrls).toEqual([fileUrl])

    const res = await fetch(fileUrl)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/png')
    const bytes = Buffer.from(await res.arrayBuffer())
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    expect(bytes.toString('ascii', 12, 16)).toBe('IHDR')
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([64, 64])
    // walk the chunks: every CRC must match Node's own crc32 and the pixels must inflate to 64 rows of RGB
    const types: string[] = []
    for (let o = 8; o < bytes.length;) {
      const len = bytes.readUInt32BE(o)
      const type = bytes.toString('ascii', o + 4, o + 8)
      expect(bytes.readUInt32BE(o + 8 + len), type).toBe(crc32(bytes.subarray(o + 4, o + 8 + len)))
      if (type === 'IDAT') expect(inflateSync(bytes.subarray(o + 8, o + 8 + len)).length).toBe(64 * (1 + 64 * 3))
      types.push(type)
      o += 12 + len
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND'])
    expect(Buffer.from(await (await fetch(fileUrl)).arrayBuffer()).equals(bytes)).toBe(true)

    const parentUrl = sim.tasks.get(parent)!.resultUrls[0]!
    const other = Buffer.from(await (await fetch(parentUrl)).arrayBuffer())
    expect(other.equals(bytes)).toBe(false)
    expect((await fetch(`${url}/files/${'0'.repeat(32)}_0_0.png`)).status).toBe(404)
  })

  it('ends upscales in failure when failUpscales is set or the parent prompt says fail-upscale', async () => {
    const { url, sim } = await start()
    const receiver = await startReceiver()
    const client = api(url)
    const doomed = sim.createParentTask('please fail-upscale this')
    const a = await client.post('/api/v1/mj/generateUpscale', { taskId: doomed, imageIndex: 1, callBackUrl: receiver.url })
    sim.failUpscales = true
    const b = await client.post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 3, callBackUrl: receiver.url })
    await waitFor('two callbacks', () => receiver.received.length === 2)
    for (const taskId of [a.body.data.taskId, b.body.data.taskId]) {
      const cb = receiver.received.find((r) => r.body.data.taskId === taskId)!
      expect(cb.body).toEqual({ code: 500, msg: 'Generation failed: content moderation', data: { taskId, promptJson: expect.any(String), resultUrls: [] } })
      const info = await client.get(`/api/v1/mj/record-info?taskId=${taskId}`)
      expect(info.body.data).toMatchObject({ successFlag: 3, errorCode: 500, errorMessage: cb.body.msg, resultInfoJson: { resultUrls: [] } })
    }
  })
})

describe('validation and limits', () => {
  it('answers 422 in an HTTP 200 for bad upscale requests and creates nothing', async () => {
    const { url, sim } = await start({ credits: 5 })
    const client = api(url)
    const parent = sim.createParentTask()
    sim.pauseCompletions()
    const unfinished = (await client.post('/api/v1/mj/generate', { taskType: 'mj_txt2img', prompt: 'slow' })).body.data.taskId
    const bad = [
      { taskId: 'f'.repeat(32), imageIndex: 0 },
      { taskId: parent, imageIndex: 4 },
      { taskId: parent, imageIndex: -1 },
      { taskId: parent, imageIndex: '1' },
      { taskId: parent, imageIndex: 1.5 },
      { taskId: parent },
      { imageIndex: 0 },
      { taskId: unfinished, imageIndex: 0 }
    ]
    for (const body of bad) {
      const res = await client.post('/api/v1/mj/generateUpscale', body)
      expect(res.status, JSON.stringify(body)).toBe(200)
      expect(res.body, JSON.stringify(body)).toMatchObject({ code: 422, msg: expect.any(String), data: null })
    }
    for (const body of ['[1]', '"x"', '{not json']) {
      const res = await client.post('/api/v1/mj/generateUpscale', body)
      expect(res.body, body).toMatchObject({ code: 400, data: null })
    }
    expect((await client.post('/api/v1/mj/generate', { taskType: 'mj_txt2img' })).body.code).toBe(422)
    expect((await client.get('/api/v1/mj/record-info?taskId=nope')).body).toEqual({ code: 422, msg: 'recordInfo is null', data: null })
    expect((await client.get('/api/v1/mj/record-info')).body.code).toBe(422)
    expect([...sim.tasks.values()].filter((t) => t.type === 'upscale')).toHaveLength(0)
    // Only the grid made for the test was billed.
    expect(sim.credits).toBe(4)
    const last = sim.calls.at(-1)!
    expect(last).toMatchObject({ method: 'GET', path: '/api/v1/mj/record-info', httpStatus: 200, code: 422 })
  })

  it('answers code 402 when credits run out', async () => {
    const { url, sim } = await start({ credits: 1 })
    const client = api(url)
    const parent = sim.createParentTask()
    expect((await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0 })).body.code).toBe(200)
    const res = await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 1 })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ code: 402, msg: expect.stringContaining('Insufficient credits'), data: null })
    expect(sim.credits).toBe(0)
    // A grid costs credits too.
    expect((await client.post('/api/v1/mj/generate', { taskType: 'mj_txt2img', prompt: 'free' })).body.code).toBe(402)
  })

  it('answers HTTP 429 beyond the sliding window and drops the request', async () => {
    const { url, sim } = await start({ rateLimitMax: 3, rateLimitWindowMs: 300 })
    const client = api(url)
    const parent = sim.createParentTask()
    for (let i = 0; i < 3; i++) {
      expect((await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: i })).body.code).toBe(200)
    }
    const limited = await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 3 })
    expect(limited.status).toBe(429)
    expect(limited.body).toMatchObject({ code: 429, msg: expect.any(String), data: null })
    expect((await client.post('/api/v1/mj/generate', { taskType: 'mj_txt2img', prompt: 'x' })).status).toBe(429)
    expect(sim.tasks.size).toBe(4)
    expect(sim.calls.filter((c) => c.httpStatus === 429).map((c) => [c.path, c.code, c.fault]))
      .toEqual([['/api/v1/mj/generateUpscale', 429, null], ['/api/v1/mj/generate', 429, null]])
    await sleep(350)
    expect((await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 3 })).body.code).toBe(200)
  })

  it('counts new-task requests by arrival time in a sliding window', () => {
    const { sim } = buildSimulator({ apiKey: KEY, rateLimitMax: 2, rateLimitWindowMs: 100 })
    expect([0, 50, 99, 100, 40, 149, 150].map((t) => sim.admitNewTask(t))).toEqual([true, true, false, true, false, false, true])
  })

  it('answers record-info with HTTP 429 beyond queryRateLimitPerSecond in any sliding second', async () => {
    const { url, sim } = await start({ queryRateLimitPerSecond: 3 })
    const parent = sim.createParentTask()
    const client = api(url)
    for (let i = 0; i < 3; i++) expect((await client.get(`/api/v1/mj/record-info?taskId=${parent}`)).body.code).toBe(200)
    const limited = await client.get(`/api/v1/mj/record-info?taskId=${parent}`)
    expect([limited.status, limited.body]).toEqual([429, { code: 429, msg: 'Too many requests', data: null }])
    expect(sim.calls.map((c) => c.httpStatus)).toEqual([200, 200, 200, 429])

    const fresh = buildSimulator({ apiKey: KEY, queryRateLimitPerSecond: 3 }).sim
    expect([0, 100, 200, 300, 999, 1000, 1050, 1100].map((t) => fresh.admitStatusQuery(t)))
      .toEqual([true, true, true, false, false, true, false, true])
    const byDefault = await start()
    const answers: number[] = []
    for (let i = 0; i < 11; i++) answers.push((await api(byDefault.url).get(`/api/v1/mj/record-info?taskId=${parent}`)).status)
    expect(answers).toEqual([...Array(10).fill(200), 429])
  })
})

describe('callback delivery', () => {
  it('retries after a 500 and stops once the receiver answers 200', async () => {
    const { url, sim } = await start({ hmacKey: HMAC })
    const receiver = await startReceiver([500, 503])
    const up = await api(url).post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 0, callBackUrl: receiver.url })
    await waitFor('three attempts', () => sim.callbacks.length === 3)
    await sleep(150) // longer than the scaled 15-minute delay: nothing more may come
    expect(sim.callbacks.map((c) => [c.attempt, c.status])).toEqual([[1, 500], [2, 503], [3, 200]])
    expect(receiver.received).toHaveLength(3)
    expect(new Set(receiver.received.map((r) => JSON.stringify(r.body))).size).toBe(1)
    for (const r of receiver.received) {
      expect(r.headers['x-webhook-signature']).toBe(signKieCallback(HMAC, up.body.data.taskId, r.headers['x-webhook-timestamp'] as string))
    }
  })

  it('gives up after four attempts and counts a dead receiver as a failed attempt', async () => {
    const { url, sim } = await start()
    const receiver = await startReceiver([500, 500, 500, 500, 500])
    await api(url).post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 0, callBackUrl: receiver.url })
    await waitFor('four attempts', () => sim.callbacks.length === 4)
    await sleep(200)
    expect(sim.callbacks.map((c) => c.status)).toEqual([500, 500, 500, 500])

    await receiver.close()
    const dead = await api(url).post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 0, callBackUrl: receiver.url })
    await waitFor('attempts to a closed port', () => sim.callbacks.filter((c) => c.taskId === dead.body.data.taskId).length === 4)
    expect(sim.callbacks.filter((c) => c.taskId === dead.body.data.taskId).every((c) => c.status === null)).toBe(true)
  })

  it('re-sends a finished task callback on demand, and completes or holds tasks on command', async () => {
    const { url, sim } = await start({ completionDelayMs: 60_000 })
    const receiver = await startReceiver()
    const up = await api(url).post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 0, callBackUrl: receiver.url })
    const id: string = up.body.data.taskId
    expect(sim.tasks.get(id)?.state).toBe('generating')
    await expect(sim.deliverCallback(id)).rejects.toThrow()
    expect(sim.completeNow(id)).toBe(true)
    await waitFor('first callback', () => receiver.received.length === 1)
    expect(await sim.deliverCallback(id)).toBe(200)
    expect(receiver.received).toHaveLength(2)
    expect(receiver.received[1]?.body).toEqual(receiver.received[0]?.body)
    expect(sim.callbacks.map((c) => c.attempt)).toEqual([1, 2])
  })

  it('holds due completions while paused', async () => {
    const { url, sim } = await start()
    sim.pauseCompletions()
    const up = await api(url).post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 0 })
    await sleep(80)
    expect(sim.tasks.get(up.body.data.taskId)?.successFlag).toBe(0)
    sim.resumeCompletions()
    expect(sim.tasks.get(up.body.data.taskId)?.successFlag).toBe(1)
  })
})

describe('scripted responses', () => {
  it('plays forced JSON, raw and delayed answers without creating tasks or spending credits', async () => {
    const { url, sim } = await start({ credits: 3 })
    const client = api(url)
    const parent = sim.createParentTask()
    sim.script('generateUpscale',
      { httpStatus: 500, body: { code: 500, msg: 'boom', data: null } },
      { httpStatus: 200, body: { code: 455, msg: 'maintenance', data: null }, delayMs: 100 })
    sim.script('recordInfo', { httpStatus: 502, raw: '<html>Bad Gateway</html>' })

    const first = await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0 })
    expect([first.status, first.body]).toEqual([500, { code: 500, msg: 'boom', data: null }])
    const t0 = Date.now()
    const second = await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0 })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90)
    expect(second.body.code).toBe(455)
    const html = await fetch(`${url}/api/v1/mj/record-info?taskId=${parent}`, { headers: { authorization: `Bearer ${KEY}` } })
    expect(html.status).toBe(502)
    expect(html.headers.get('content-type')).toContain('text/html')
    expect(await html.text()).toBe('<html>Bad Gateway</html>')

    expect(sim.tasks.size).toBe(1)
    expect(sim.credits).toBe(3)
    expect((await client.post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0 })).body.code).toBe(200)
    expect(sim.calls.map((c) => c.httpStatus)).toEqual([500, 200, 502, 200])
  })

  it('hangs up without creating a task', async () => {
    const { url, sim } = await start()
    const parent = sim.createParentTask()
    sim.script('generateUpscale', 'hangup')
    await expect(api(url).post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0 })).rejects.toThrow()
    expect(sim.tasks.size).toBe(1)
    expect(sim.calls).toHaveLength(1)
    expect(sim.calls[0]).toMatchObject({ httpStatus: 0, code: null })
  })

  it('accepts then hangs up: the task exists, completes and calls back', async () => {
    const { url, sim } = await start({ credits: 2 })
    const receiver = await startReceiver()
    const parent = sim.createParentTask()
    sim.script('generateUpscale', 'accept-then-hangup')
    await expect(api(url).post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 1, callBackUrl: receiver.url })).rejects.toThrow()
    const upscales = [...sim.tasks.values()].filter((t) => t.type === 'upscale')
    expect(upscales).toHaveLength(1)
    expect(sim.credits).toBe(1)
    await waitFor('callback', () => receiver.received.length === 1)
    expect(receiver.received[0]?.body.data.taskId).toBe(upscales[0]?.id)
  })

  it('stalls until the client gives up, and still closes promptly', async () => {
    const running = await startSimulator({ apiKey: KEY })
    const parent = running.sim.createParentTask()
    running.sim.script('recordInfo', 'stall')
    const stalled = fetch(`${running.url}/api/v1/mj/record-info?taskId=${parent}`, {
      headers: { authorization: `Bearer ${KEY}` }, signal: AbortSignal.timeout(150)
    })
    await expect(stalled).rejects.toThrow()
    running.sim.script('generateUpscale', 'stall')
    const hanging = fetch(`${running.url}/api/v1/mj/generateUpscale`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ taskId: parent, imageIndex: 0 })
    }).catch((err: unknown) => err)
    await waitFor('stalled request', () => running.sim.calls.length === 2)
    const t0 = Date.now()
    await running.close()
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(await hanging).toBeInstanceOf(Error)
    expect(running.sim.tasks.size).toBe(1)
  })
})

describe('chaos switches', () => {
  const upscale = async (base: string, parent: string, callBackUrl?: string) =>
    await api(base).post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0, ...(callBackUrl === undefined ? {} : { callBackUrl }) })
  const recordInfo = async (base: string, id: string) => (await api(base).get(`/api/v1/mj/record-info?taskId=${id}`)).body

  it('are all off by default', async () => {
    const { sim } = await start()
    expect(sim.chaos).toEqual({
      dropCallbackRate: 0,
      duplicateCallbackRate: 0,
      duplicateDelayMs: 20,
      callbackDelayMs: 0,
      callbackJitterMs: 0,
      recordInfoDisagrees: false,
      recordInfoStuckGenerating: false,
      upscaleFaults: {}
    })
  })

  it('drops a callback entirely while record-info reports the final state', async () => {
    const { url, sim } = await start({ chaos: { dropCallbackRate: 1 } })
    const receiver = await startReceiver()
    const id: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
    await waitFor('completion', () => sim.tasks.get(id)?.state === 'success')
    expect((await recordInfo(url, id)).data).toMatchObject({ successFlag: 1, resultInfoJson: { resultUrls: [{ resultUrl: expect.any(String) }] } })
    await sleep(100)
    expect(receiver.received).toHaveLength(0)
    expect(sim.callbacks).toHaveLength(0)
    expect(sim.droppedCallbacks).toEqual([id])
  })

  it('sends a duplicate after duplicateDelayMs, only once the callback was delivered', async () => {
    const { url, sim } = await start({ hmacKey: HMAC, chaos: { duplicateCallbackRate: 1, duplicateDelayMs: 40 } })
    const receiver = await startReceiver([500])
    const id: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
    await waitFor('three deliveries', () => sim.callbacks.length === 3)
    await sleep(100)
    expect(sim.callbacks.map((c) => [c.attempt, c.status, c.duplicate])).toEqual([[1, 500, false], [2, 200, false], [3, 200, true]])
    expect(sim.callbacks[2]!.at - sim.callbacks[1]!.at).toBeGreaterThanOrEqual(35)
    expect(receiver.received).toHaveLength(3)
    expect(receiver.received[2]?.body).toEqual(receiver.received[1]?.body)
    const dup = receiver.received[2]!.headers
    expect(dup['x-webhook-signature']).toBe(signKieCallback(HMAC, id, dup['x-webhook-timestamp'] as string))
    expect(sim.droppedCallbacks).toEqual([])
  })

  it('delays the first callback attempt while the task completes on time', async () => {
    const { url, sim } = await start({ chaos: { callbackDelayMs: 150 } })
    const receiver = await startReceiver()
    const id: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
    await waitFor('completion', () => sim.tasks.get(id)?.state === 'success')
    expect((await recordInfo(url, id)).data.successFlag).toBe(1)
    expect(receiver.received).toHaveLength(0)
    await waitFor('late callback', () => sim.callbacks.length === 1)
    expect(sim.callbacks[0]!.at - sim.tasks.get(id)!.completeTime!).toBeGreaterThanOrEqual(145)
    expect(receiver.received).toHaveLength(1)
  })

  it('jitters callbacks so that tasks completed in order call back out of order', async () => {
    const { url, sim } = await start({ completionDelayMs: 60_000, seed: 7, chaos: { callbackJitterMs: 300 } })
    const receiver = await startReceiver()
    const parent = sim.createParentTask()
    const ids: string[] = []
    for (let i = 0; i < 8; i++) ids.push((await upscale(url, parent, receiver.url)).body.data.taskId)
    const t0 = Date.now()
    for (const id of ids) sim.completeNow(id)
    await waitFor('eight callbacks', () => receiver.received.length === 8)
    expect(Date.now() - t0).toBeLessThan(1000)
    const arrived = receiver.received.map((r) => r.body.data.taskId as string)
    expect([...arrived].sort()).toEqual([...ids].sort())
    expect(arrived).not.toEqual(ids)
  })

  it('makes record-info disagree with the callback about the final outcome', async () => {
    const { url, sim } = await start({ chaos: { recordInfoDisagrees: true } })
    const receiver = await startReceiver()
    const good: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
    const bad: string = (await upscale(url, sim.createParentTask('fail-upscale'), receiver.url)).body.data.taskId
    await waitFor('two callbacks', () => receiver.received.length === 2)
    const callback = (id: string) => receiver.received.find((r) => r.body.data.taskId === id)!.body
    expect(callback(good).code).toBe(200)
    expect(callback(bad).code).toBe(500)

    expect((await recordInfo(url, good)).data).toMatchObject({ successFlag: 3, errorCode: 500, errorMessage: expect.any(String), resultInfoJson: { resultUrls: [] } })
    const badInfo = (await recordInfo(url, bad)).data
    expect(badInfo).toMatchObject({ successFlag: 1, errorCode: null, errorMessage: null })
    const [only] = badInfo.resultInfoJson.resultUrls
    expect(badInfo.resultInfoJson.resultUrls).toHaveLength(1)
    expect((await fetch(only.resultUrl)).headers.get('content-type')).toBe('image/png')

    sim.chaos.recordInfoDisagrees = false
    expect((await recordInfo(url, good)).data.successFlag).toBe(1)
    expect((await recordInfo(url, bad)).data.successFlag).toBe(3)
  })

  it('keeps record-info at generating forever when stuck', async () => {
    const { url, sim } = await start({ chaos: { recordInfoStuckGenerating: true } })
    const receiver = await startReceiver()
    const id: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
    await waitFor('callback', () => receiver.received.length === 1)
    expect(receiver.received[0]?.body.code).toBe(200)
    expect((await recordInfo(url, id)).data).toMatchObject({ successFlag: 0, resultInfoJson: null, completeTime: null, errorCode: null })
    sim.chaos.recordInfoStuckGenerating = false
    expect((await recordInfo(url, id)).data.successFlag).toBe(1)
  })

  it('answers generateUpscale with each simple fault at rate 1, creating nothing', async () => {
    const { url, sim } = await start({ credits: 5 })
    const parent = sim.createParentTask()
    const expected = {
      http429: [429, 429, expect.any(String)],
      code455: [200, 455, 'Service unavailable'],
      http500: [500, 500, expect.any(String)]
    } as const
    for (const [kind, [status, code, msg]] of Object.entries(expected)) {
      sim.chaos.upscaleFaults = { [kind]: 1 }
      const res = await upscale(url, parent)
      expect([res.status, res.body], kind).toEqual([status, { code, msg, data: null }])
      expect(sim.calls.at(-1), kind).toMatchObject({ httpStatus: status, code, fault: kind, taskId: null })
    }
    sim.chaos.upscaleFaults = { nonJson: 1 }
    const html = await fetch(`${url}/api/v1/mj/generateUpscale`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ taskId: parent, imageIndex: 0 })
    })
    expect(html.status).toBe(502)
    expect(html.headers.get('content-type')).toContain('text/html')
    await expect(html.json()).rejects.toThrow()
    expect(sim.tasks.size).toBe(1)
    expect(sim.credits).toBe(5)
    expect(sim.acceptedUpscales()).toBe(0)
  })

  it('accepts then hangs up: the task exists, counts as accepted and calls back', async () => {
    const { url, sim } = await start({ credits: 5, chaos: { upscaleFaults: { acceptThenHangup: 1 } } })
    const receiver = await startReceiver()
    await expect(upscale(url, sim.createParentTask(), receiver.url)).rejects.toThrow()
    const [task] = [...sim.tasks.values()].filter((t) => t.type === 'upscale')
    expect(task).toBeDefined()
    expect(sim.calls[0]).toMatchObject({ httpStatus: 0, code: null, fault: 'acceptThenHangup', taskId: task!.id })
    expect(sim.acceptedUpscales()).toBe(1)
    expect(sim.credits).toBe(4)
    await waitFor('callback', () => receiver.received.length === 1)
    expect(receiver.received[0]?.body.data.taskId).toBe(task!.id)
  })

  it('stalls generateUpscale until the client gives up', async () => {
    const { url, sim } = await start({ chaos: { upscaleFaults: { stall: 1 } } })
    const parent = sim.createParentTask()
    const stalled = fetch(`${url}/api/v1/mj/generateUpscale`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ taskId: parent, imageIndex: 0 }),
      signal: AbortSignal.timeout(150)
    })
    await expect(stalled).rejects.toThrow()
    expect(sim.calls[0]).toMatchObject({ httpStatus: 0, fault: 'stall', taskId: null })
    expect(sim.tasks.size).toBe(1)
  })

  it('lets scripted responses take precedence over chaos faults', async () => {
    const { url, sim } = await start({ chaos: { upscaleFaults: { code455: 1 } } })
    const parent = sim.createParentTask()
    sim.script('generateUpscale', { httpStatus: 500, body: { code: 500, msg: 'scripted', data: null } })
    expect((await upscale(url, parent)).body.msg).toBe('scripted')
    expect((await upscale(url, parent)).body.code).toBe(455)
    expect(sim.calls.map((c) => c.fault)).toEqual([null, 'code455'])
  })

  it('repeats the same chaos decisions for the same seed', async () => {
    const run = async (seed: number) => {
      const { url, sim } = await start({ seed, completionDelayMs: 60_000, chaos: { dropCallbackRate: 0.5, upscaleFaults: { code455: 0.3 } } })
      const receiver = await startReceiver()
      const parent = sim.createParentTask()
      const codes: number[] = []
      for (let i = 0; i < 16; i++) codes.push((await upscale(url, parent, receiver.url)).body.code)
      const ids = [...sim.tasks.values()].filter((t) => t.type === 'upscale').map((t) => t.id)
      for (const id of ids) sim.completeNow(id)
      return { codes, dropped: ids.map((id) => sim.droppedCallbacks.includes(id)) }
    }
    const a = await run(42)
    expect(a).toEqual(await run(42))
    expect(a.codes).toContain(455)
    expect(a.codes).toContain(200)
    expect(a.dropped).toContain(true)
    expect(a.dropped).toContain(false)
    expect(await run(43)).not.toEqual(a)
  })

  it('finds the generateUpscale calls for a gateway task id, and counts accepted upscales', async () => {
    const { url, sim } = await start()
    const receiver = await startReceiver()
    const parent = sim.createParentTask()
    const local = (id: string) => `${receiver.url}?task=${id}&token=t0k3n`
    sim.script('generateUpscale', { httpStatus: 500, body: { code: 500, msg: 'boom', data: null } })
    await upscale(url, parent, local('local-1'))
    await upscale(url, parent, local('local-1'))
    await upscale(url, parent, local('local-2'))
    await upscale(url, parent, 'not a url')
    await upscale(url, parent)
    expect(sim.upscaleCallsFor('local-1').map((c) => c.httpStatus)).toEqual([500, 200])
    expect(sim.upscaleCallsFor('local-2')).toHaveLength(1)
    expect(sim.upscaleCallsFor('local-3')).toEqual([])
    expect(sim.acceptedUpscales()).toBe(4)
  })
})

describe('variants', () => {
  const upscale = async (base: string, parent: string, callBackUrl?: string) =>
    await api(base).post('/api/v1/mj/generateUpscale', { taskId: parent, imageIndex: 0, ...(callBackUrl === undefined ? {} : { callBackUrl }) })
  /** record-info's body as text too, to see what went over the wire (a string "1" or a number 1). */
  const recordInfoRaw = async (base: string, id: string) => {
    const res = await fetch(`${base}/api/v1/mj/record-info?taskId=${id}`, { headers: { authorization: `Bearer ${KEY}` } })
    const text = await res.text()
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
    return { status: res.status, text, body: JSON.parse(text) as any }
  }

  it('default to the documented forms, and take initial values from the options', async () => {
    const expected: Variants = {
      authFailureHttpStatus: 200,
      callbackShape: 'documented',
      successFlagAs: 'number',
      failedFlag: 3,
      timeFormat: 'iso',
      recordInfoNullWhileGenerating: false,
      recordInfoResultAsString: false,
      directLinkTtlMs: 20 * 60_000,
      fileRetentionMs: Infinity
    }
    expect(defaultVariants()).toEqual(expected)
    expect(defaultVariants()).not.toBe(defaultVariants())
    expect((await start()).sim.variants).toEqual(expected)
    const { sim } = await start({ variants: { failedFlag: 2, timeFormat: 'plain' } })
    expect(sim.variants).toEqual({ ...expected, failedFlag: 2, timeFormat: 'plain' })
  })

  describe('callbackShape', () => {
    /** One success and one failure callback in the given shape, as the receiver got them, with the task ids. */
    const callbacksIn = async (shape: Variants['callbackShape']) => {
      const { url, sim } = await start({ hmacKey: HMAC, variants: { callbackShape: shape } })
      const receiver = await startReceiver()
      const good: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
      const bad: string = (await upscale(url, sim.createParentTask('fail-upscale'), receiver.url)).body.data.taskId
      await waitFor('two callbacks', () => receiver.received.length === 2)
      const of = (id: string) => receiver.received.find((r) => (r.body.data.taskId ?? r.body.data.task_id) === id)!
      for (const id of [good, bad]) {
        const { headers } = of(id)
        expect(headers['x-webhook-signature'], shape).toBe(signKieCallback(HMAC, id, headers['x-webhook-timestamp'] as string))
      }
      const promptJson = (id: string) => sim.tasks.get(id)!.paramJson
      return { sim, good, bad, ok: of(good).body, failed: of(bad).body, url: sim.tasks.get(good)!.resultUrls[0]!, promptJson }
    }

    it('documented: resultUrls as strings, code 200 or 500 (the default)', async () => {
      const { good, bad, ok, failed, url, promptJson } = await callbacksIn('documented')
      expect(ok).toEqual({ code: 200, msg: 'success', data: { taskId: good, promptJson: promptJson(good), resultUrls: [url] } })
      expect(failed).toEqual({ code: 500, msg: UPSCALE_FAILURE, data: { taskId: bad, promptJson: promptJson(bad), resultUrls: [] } })
    })

    it('verification: top-level taskId, data.task_id and callbackType, and no URL at all', async () => {
      const { good, bad, ok, failed, promptJson } = await callbacksIn('verification')
      expect(ok).toEqual({ taskId: good, code: 200, msg: 'Success', data: { task_id: good, callbackType: 'task_completed', promptJson: promptJson(good) } })
      expect(failed).toEqual({ taskId: bad, code: 500, msg: UPSCALE_FAILURE, data: { task_id: bad, callbackType: 'task_failed', promptJson: promptJson(bad) } })
      expect(JSON.stringify(ok)).not.toContain('/files/')
    })

    it('resultInfoJsonObject: data.resultInfoJson holds {resultUrl} objects, no data.resultUrls', async () => {
      const { good, bad, ok, failed, url, promptJson } = await callbacksIn('resultInfoJsonObject')
      expect(ok).toEqual({ code: 200, msg: 'success', data: { taskId: good, promptJson: promptJson(good), resultInfoJson: { resultUrls: [{ resultUrl: url }] } } })
      expect(failed).toEqual({ code: 500, msg: UPSCALE_FAILURE, data: { taskId: bad, promptJson: promptJson(bad), resultInfoJson: { resultUrls: [] } } })
    })

    it('resultInfoJsonString: the same object as a JSON string', async () => {
      const { good, bad, ok, failed, url, promptJson } = await callbacksIn('resultInfoJsonString')
      expect(ok).toEqual({ code: 200, msg: 'success', data: { taskId: good, promptJson: promptJson(good), resultInfoJson: JSON.stringify({ resultUrls: [{ resultUrl: url }] }) } })
      expect(failed).toEqual({ code: 500, msg: UPSCALE_FAILURE, data: { taskId: bad, promptJson: promptJson(bad), resultInfoJson: '{"resultUrls":[]}' } })
    })

    it('urlObjects: data.resultUrls as {resultUrl} objects', async () => {
      const { good, bad, ok, failed, url, promptJson } = await callbacksIn('urlObjects')
      expect(ok).toEqual({ code: 200, msg: 'success', data: { taskId: good, promptJson: promptJson(good), resultUrls: [{ resultUrl: url }] } })
      expect(failed).toEqual({ code: 500, msg: UPSCALE_FAILURE, data: { taskId: bad, promptJson: promptJson(bad), resultUrls: [] } })
    })

    it('codeString: the documented shape with code "200" or "500"', async () => {
      const { sim, good, bad, ok, failed, url, promptJson } = await callbacksIn('codeString')
      expect(ok).toEqual({ code: '200', msg: 'success', data: { taskId: good, promptJson: promptJson(good), resultUrls: [url] } })
      expect(failed).toEqual({ code: '500', msg: UPSCALE_FAILURE, data: { taskId: bad, promptJson: promptJson(bad), resultUrls: [] } })
      // a re-sent callback takes the shape asked for now
      sim.variants.callbackShape = 'documented'
      const receiver = await startReceiver()
      sim.tasks.get(good)!.callBackUrl = receiver.url
      expect(await sim.deliverCallback(good)).toBe(200)
      expect(receiver.received[0]?.body.code).toBe(200)
    })
  })

  describe('record-info', () => {
    it('successFlagAs string: "0", "1" and "3" as JSON strings', async () => {
      const { url, sim } = await start({ completionDelayMs: 60_000, variants: { successFlagAs: 'string' } })
      const good: string = (await upscale(url, sim.createParentTask())).body.data.taskId
      const bad: string = (await upscale(url, sim.createParentTask('fail-upscale'))).body.data.taskId
      const generating = await recordInfoRaw(url, good)
      expect(generating.text).toContain('"successFlag":"0"')
      expect(generating.body.data).toMatchObject({ successFlag: '0', resultInfoJson: null, completeTime: null })
      sim.completeNow(good)
      sim.completeNow(bad)
      expect((await recordInfoRaw(url, good)).text).toContain('"successFlag":"1"')
      expect((await recordInfoRaw(url, bad)).body.data).toMatchObject({ successFlag: '3', errorCode: 500, errorMessage: UPSCALE_FAILURE })
      sim.variants.successFlagAs = 'number'
      expect((await recordInfoRaw(url, good)).text).toContain('"successFlag":1,')
    })

    it('failedFlag 2: a failed task reports 2, in the task too; the callback still says code 500', async () => {
      const { url, sim } = await start({ variants: { failedFlag: 2 } })
      const receiver = await startReceiver()
      const bad: string = (await upscale(url, sim.createParentTask('fail-upscale'), receiver.url)).body.data.taskId
      await waitFor('callback', () => receiver.received.length === 1)
      expect(receiver.received[0]?.body).toMatchObject({ code: 500, msg: UPSCALE_FAILURE })
      expect(sim.tasks.get(bad)?.successFlag).toBe(2)
      expect((await recordInfoRaw(url, bad)).body.data).toMatchObject({
        successFlag: 2, errorCode: 500, errorMessage: UPSCALE_FAILURE, resultInfoJson: { resultUrls: [] }
      })
      // a success that record-info must show as failed (chaos) shows the same flag
      sim.chaos.recordInfoDisagrees = true
      const good: string = (await upscale(url, sim.createParentTask())).body.data.taskId
      await waitFor('completion', () => sim.tasks.get(good)?.state === 'success')
      expect((await recordInfoRaw(url, good)).body.data.successFlag).toBe(2)
    })

    it.each([
      ['iso', (ms: number) => new Date(ms).toISOString()],
      ['plain', (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')],
      ['epochMs', (ms: number) => ms],
      ['epochSeconds', (ms: number) => Math.floor(ms / 1000)]
    ] as const)('timeFormat %s', async (format, expected) => {
      const { url, sim } = await start({ completionDelayMs: 60_000, variants: { timeFormat: format } })
      const id: string = (await upscale(url, sim.createParentTask())).body.data.taskId
      const task = sim.tasks.get(id)!
      const generating = await recordInfoRaw(url, id)
      expect(generating.body.data.createTime).toStrictEqual(expected(task.createTime))
      expect(generating.body.data.completeTime).toBeNull()
      sim.completeNow(id)
      const done = await recordInfoRaw(url, id)
      expect(done.body.data.createTime).toStrictEqual(expected(task.createTime))
      expect(done.body.data.completeTime).toStrictEqual(expected(task.completeTime!))
      expect(done.text).toContain(`"completeTime":${JSON.stringify(expected(task.completeTime!))}`)
      if (format === 'plain') expect(done.body.data.createTime).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
      if (format === 'epochSeconds') expect(Number.isInteger(done.body.data.createTime)).toBe(true)
    })

    it('recordInfoNullWhileGenerating: data null until the task is final', async () => {
      const { url, sim } = await start({ completionDelayMs: 60_000, variants: { recordInfoNullWhileGenerating: true } })
      const id: string = (await upscale(url, sim.createParentTask())).body.data.taskId
      const generating = await recordInfoRaw(url, id)
      expect([generating.status, generating.text]).toEqual([200, '{"code":200,"msg":"success","data":null}'])
      sim.completeNow(id)
      expect((await recordInfoRaw(url, id)).body.data).toMatchObject({ taskId: id, successFlag: 1 })
      // unknown tasks keep their own answer
      expect((await recordInfoRaw(url, 'f'.repeat(32))).body).toEqual({ code: 422, msg: 'recordInfo is null', data: null })
    })

    it('recordInfoResultAsString: resultInfoJson as a JSON string, null while generating', async () => {
      const { url, sim } = await start({ completionDelayMs: 60_000, variants: { recordInfoResultAsString: true } })
      const id: string = (await upscale(url, sim.createParentTask())).body.data.taskId
      expect((await recordInfoRaw(url, id)).body.data.resultInfoJson).toBeNull()
      sim.completeNow(id)
      const info = (await recordInfoRaw(url, id)).body.data
      expect(info.resultInfoJson).toBe(JSON.stringify({ resultUrls: [{ resultUrl: sim.tasks.get(id)!.resultUrls[0] }] }))
    })
  })

  describe('result files', () => {
    const directLink = async (base: string, fileUrl: string) => await api(base).post('/api/v1/common/download-url', { url: fileUrl })

    it('download-url links expire after directLinkTtlMs with a 403 envelope', async () => {
      const { url, sim } = await start()
      const fileUrl = sim.tasks.get(sim.createParentTask())!.resultUrls[0]!
      const t0 = Date.now()
      const byDefault = await directLink(url, fileUrl)
      expect(byDefault.body).toMatchObject({ code: 200, msg: 'success', data: expect.stringMatching(new RegExp(`^${url}/direct/[0-9a-f]{32}_0_0\\.png\\?expires=\\d+$`)) })
      const expires = Number(new URL(byDefault.body.data as string).searchParams.get('expires'))
      expect(expires - t0).toBeGreaterThanOrEqual(20 * 60_000)
      expect(expires - Date.now()).toBeLessThanOrEqual(20 * 60_000)

      sim.variants.directLinkTtlMs = 80
      const link: string = (await directLink(url, fileUrl)).body.data
      const fresh = await fetch(link)
      expect([fresh.status, fresh.headers.get('content-type')]).toEqual([200, 'image/png'])
      await sleep(120)
      const expired = await fetch(link)
      expect(expired.status).toBe(403)
      expect(await expired.json()).toEqual({ code: 403, msg: expect.any(String), data: null })
      const name = new URL(link).pathname.split('/').at(-1)!
      for (const bad of ['', '?expires=soon', `?expires=${Date.now() - 1}`]) {
        expect((await fetch(`${url}/direct/${name}${bad}`)).status, bad).toBe(403)
      }
      expect((await fetch(`${url}/direct/${name}?expires=${Date.now() + 60_000}`)).status).toBe(200)
      expect((await fetch(fileUrl)).status).toBe(200)
    })

    it('files vanish (404) fileRetentionMs after their task finished, direct links too', async () => {
      const { url, sim } = await start({ variants: { fileRetentionMs: 150 } })
      const receiver = await startReceiver()
      const id: string = (await upscale(url, sim.createParentTask(), receiver.url)).body.data.taskId
      await waitFor('callback', () => receiver.received.length === 1)
      const fileUrl: string = receiver.received[0]!.body.data.resultUrls[0]
      expect((await fetch(fileUrl)).status).toBe(200)
      const link: string = (await directLink(url, fileUrl)).body.data
      expect((await fetch(link)).status).toBe(200)
      await waitFor('retention', () => Date.now() > sim.tasks.get(id)!.completeTime! + 160)
      const gone = await fetch(fileUrl)
      expect([gone.status, await gone.json()]).toEqual([404, { code: 404, msg: 'Not Found', data: null }])
      expect((await fetch(link)).status).toBe(404)
      expect((await directLink(url, fileUrl)).body).toMatchObject({ code: 422, data: null })
      expect(sim.hasFile(new URL(fileUrl).pathname.split('/').at(-1)!)).toBe(false)
      // record-info still names the URL: only the file is gone
      expect((await recordInfoRaw(url, id)).body.data.resultInfoJson.resultUrls).toEqual([{ resultUrl: fileUrl }])
    })
  })
})

describe('generateUpscale: refusals and CDN answers', () => {
  const upscaleRaw = async (base: string, parent: string, callBackUrl?: string) => {
    const res = await fetch(`${base}/api/v1/mj/generateUpscale`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ taskId: parent, imageIndex: 0, ...(callBackUrl === undefined ? {} : { callBackUrl }) })
    })
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
  }
  const upscales = (sim: RunningSimulator['sim']) => [...sim.tasks.values()].filter((t) => t.type === 'upscale')

  it('code500Refusal: HTTP 200 with kie.ai\'s "This field is required", nothing made or billed', async () => {
    const { url, sim } = await start({ credits: 5, chaos: { upscaleFaults: { code500Refusal: 1 } } })
    const res = await upscaleRaw(url, sim.createParentTask())
    expect([res.status, JSON.parse(res.text)]).toEqual([200, { code: 500, msg: 'This field is required', data: null }])
    expect(sim.calls[0]).toMatchObject({ httpStatus: 200, code: 500, taskId: null, fault: 'code500Refusal' })
    expect(upscales(sim)).toHaveLength(0)
    expect(sim.credits).toBe(5)
    expect(sim.acceptedUpscales()).toBe(0)
  })

  it.each([521, 522, 523, 525, 526])('cdn%i: the CDN could not reach the origin, an HTML page and no task', async (status) => {
    const kind = `cdn${status}` as const
    const { url, sim } = await start({ credits: 5, chaos: { upscaleFaults: { [kind]: 1 } } })
    const res = await upscaleRaw(url, sim.createParentTask())
    expect(res.status).toBe(status)
    expect(res.type).toContain('text/html')
    expect(res.text).toMatch(new RegExp(`^<!DOCTYPE html>[\\s\\S]*<title>api\\.kie\\.ai \\| ${status}: [^<]+</title>[\\s\\S]*Error code ${status}[\\s\\S]*</html>\\n$`))
    expect(() => JSON.parse(res.text) as unknown).toThrow()
    expect(sim.calls[0]).toMatchObject({ httpStatus: status, code: null, taskId: null, fault: kind })
    expect(upscales(sim)).toHaveLength(0)
    expect(sim.credits).toBe(5)
  })

  it('http503: "Service Temporarily Unavailable" in HTML, no envelope and no task', async () => {
    const { url, sim } = await start({ credits: 5, chaos: { upscaleFaults: { http503: 1 } } })
    const res = await upscaleRaw(url, sim.createParentTask())
    expect([res.status, res.type]).toEqual([503, 'text/html; charset=utf-8'])
    expect(res.text).toContain('<title>503 Service Temporarily Unavailable</title>')
    expect(res.text).not.toContain('"code"')
    expect(sim.calls[0]).toMatchObject({ httpStatus: 503, code: null, taskId: null, fault: 'http503' })
    expect(upscales(sim)).toHaveLength(0)
    expect(sim.credits).toBe(5)
  })

  it.each([502, 504, 520, 524])('cdn%i: the origin made and billed the task, the client gets an HTML page', async (status) => {
    const kind = `cdn${status}` as const
    const { url, sim } = await start({ credits: 5, chaos: { upscaleFaults: { [kind]: 1 } } })
    const receiver = await startReceiver()
    const res = await upscaleRaw(url, sim.createParentTask(), `${receiver.url}?task=local-${status}`)
    expect(res.status).toBe(status)
    expect(res.type).toContain('text/html')
    expect(res.text).toContain(`Error code ${status}`)
    const [task] = upscales(sim)
    expect(task).toBeDefined()
    expect(sim.upscaleCallsFor(`local-${status}`)).toEqual([expect.objectContaining({ httpStatus: status, code: null, taskId: task!.id, fault: kind })])
    expect(sim.credits).toBe(4)
    expect(sim.acceptedUpscales()).toBe(1)
    await waitFor('callback', () => receiver.received.length === 1)
    expect(receiver.received[0]?.body).toMatchObject({ code: 200, data: { taskId: task!.id, resultUrls: [expect.any(String)] } })
  })

  it('keeps the older faults and their seeded draws: new kinds come after them', () => {
    expect(UPSCALE_FAULTS.slice(0, 6)).toEqual(['http429', 'code455', 'http500', 'nonJson', 'acceptThenHangup', 'stall'])
    expect(UPSCALE_FAULTS.slice(6)).toEqual(['code500Refusal', 'cdn521', 'cdn522', 'cdn523', 'cdn525', 'cdn526', 'http503', 'cdn502', 'cdn504', 'cdn520', 'cdn524'])
  })

  it('scripted afterCreate: the normal path runs (task made and billed), then the scripted answer goes out', async () => {
    const { url, sim } = await start({ credits: 5 })
    const receiver = await startReceiver()
    const parent = sim.createParentTask()
    const cb = (id: string) => `${receiver.url}?task=${id}`
    sim.script('generateUpscale',
      { afterCreate: true, httpStatus: 504, raw: '<html>504 Gateway Time-out</html>' },
      { afterCreate: true, httpStatus: 200, body: { code: 500, msg: 'This field is required', data: null }, delayMs: 60 },
      { httpStatus: 200, body: { code: 500, msg: 'This field is required', data: null } })

    const first = await upscaleRaw(url, parent, cb('g1'))
    expect([first.status, first.type, first.text]).toEqual([504, 'text/html; charset=utf-8', '<html>504 Gateway Time-out</html>'])
    const t0 = Date.now()
    const second = await upscaleRaw(url, parent, cb('g2'))
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50)
    expect([second.status, JSON.parse(second.text)]).toEqual([200, { code: 500, msg: 'This field is required', data: null }])
    const third = await upscaleRaw(url, parent, cb('g3'))
    expect([third.status, JSON.parse(third.text)]).toEqual([200, { code: 500, msg: 'This field is required', data: null }])

    const made = upscales(sim)
    expect(made).toHaveLength(2)
    const [g1] = sim.upscaleCallsFor('g1')
    const [g2] = sim.upscaleCallsFor('g2')
    expect(g1).toMatchObject({ httpStatus: 504, code: null, fault: null, taskId: made[0]!.id })
    expect(g2).toMatchObject({ httpStatus: 200, code: 500, fault: null, taskId: made[1]!.id })
    expect(sim.upscaleCallsFor('g3')).toEqual([expect.objectContaining({ httpStatus: 200, code: 500, taskId: null })])
    expect(sim.tasks.get(made[0]!.id)?.callBackUrl).toBe(cb('g1'))
    expect(sim.credits).toBe(3)
    expect(sim.acceptedUpscales()).toBe(2)
    await waitFor('two callbacks', () => receiver.received.length === 2)
    expect(receiver.received.map((r) => r.body.data.taskId).sort()).toEqual(made.map((t) => t.id).sort())
  })

  it('scripted afterCreate makes nothing when the normal path refuses, and works for record-info', async () => {
    const { url, sim } = await start({ credits: 5 })
    sim.script('generateUpscale', { afterCreate: true, httpStatus: 524, raw: '<html>524</html>' })
    const res = await upscaleRaw(url, 'f'.repeat(32))
    expect([res.status, res.text]).toEqual([524, '<html>524</html>'])
    expect(sim.calls[0]).toMatchObject({ httpStatus: 524, taskId: null })
    expect(sim.tasks.size).toBe(0)
    expect(sim.credits).toBe(5)

    const parent = sim.createParentTask()
    sim.script('recordInfo', { afterCreate: true, httpStatus: 502, raw: '<html>502</html>' })
    const info = await fetch(`${url}/api/v1/mj/record-info?taskId=${parent}`, { headers: { authorization: `Bearer ${KEY}` } })
    expect([info.status, await info.text()]).toEqual([502, '<html>502</html>'])
  })
})

describe('chat credit', () => {
  it('follows the auth rule, and reports 0 while upscales answer 402 without billing', async () => {
    const { url, sim } = await start({ credits: 0 })
    const denied = await api(url, 'nope').get('/api/v1/chat/credit')
    expect([denied.status, denied.body]).toEqual([200, { code: 401, msg: 'You do not have access permissions', data: null }])
    sim.variants.authFailureHttpStatus = 401
    expect((await api(url, 'nope').get('/api/v1/chat/credit')).status).toBe(401)
    expect((await api(url).get('/api/v1/chat/credit')).body).toEqual({ code: 200, msg: 'success', data: 0 })
    const res = await api(url).post('/api/v1/mj/generateUpscale', { taskId: sim.createParentTask(), imageIndex: 0 })
    expect([res.status, res.body]).toEqual([200, { code: 402, msg: 'Insufficient credits. Please top up your account.', data: null }])
    expect(sim.credits).toBe(0)
    expect(sim.tasks.size).toBe(1)
    sim.credits = 3
    expect((await api(url).get('/api/v1/chat/credit')).body.data).toBe(3)
  })
})
