// Issue 15: query integers are read strictly (canonical decimal digits within range), and a
// refused enum names the values it allows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auth, buildTestApp, closeAll } from './helper.js'

let t: Awaited<ReturnType<typeof buildTestApp>>
beforeAll(async () => {
  t = await buildTestApp()
})
afterAll(closeAll)

const get = async (url: string) => {
  const res = await t.app.inject({ url, headers: auth() })
  return { status: res.statusCode, body: res.json() as { code?: string; message?: string; items?: unknown[] } }
}

describe('query parameters', () => {
  it.each(['1.5', '1e1', '0x5', '%201', '01', '-0', '+5', '5%20', ''])('refuses ?limit=%s with 400 naming the field', async (v) => {
    const r = await get(`/tasks?limit=${v}`)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ code: 'GW_VALIDATION', message: expect.stringMatching(/^querystring\.limit: /) })
  })

  it.each(['1.5', '1e1', '00', '0x1'])('refuses ?wait=%s', async (v) => {
    const task = (await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: 'a'.repeat(32), imageIndex: 0 } })).json() as { id: string }
    const r = await get(`/tasks/${task.id}?wait=${v}`)
    expect(r.status).toBe(400)
    expect(r.body.message).toBe('querystring.wait: must be a whole number written in decimal digits')
  })

  it('accepts canonical integers within range, and refuses them out of range', async () => {
    expect((await get('/tasks?limit=5')).status).toBe(200)
    expect((await get('/tasks?limit=100')).status).toBe(200)
    expect(await get('/tasks?limit=101')).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^querystring\.limit: .*100/) } })
    expect((await get('/tasks?limit=0')).status).toBe(400)
  })

  it('lists the allowed values of a refused enum', async () => {
    expect(await get('/tasks?status=done')).toMatchObject({
      status: 400,
      body: { code: 'GW_VALIDATION', message: 'querystring.status: must be one of queued, submitted, succeeded, failed' }
    })
    expect((await get('/tasks?type=video')).body.message).toBe('querystring.type: must be one of generate, vary, upscale')
  })
})

describe("kie.ai's message in the log", () => {
  it('goes into kieMsg: a log line never carries two msg keys', async () => {
    const { default: pino } = await import('pino')
    const lines: string[] = []
    const app = await buildTestApp({ loggerInstance: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }) })
    app.kie.next.push({ ok: false, kind: 'rejected', code: 422, msg: 'The image index is out of range', httpStatus: 200 })
    const res = await app.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: 'b'.repeat(32), imageIndex: 1 } })
    expect(res.statusCode).toBe(422)
    const refused = lines.find((l) => l.includes('kie.ai refused the task'))
    expect(refused).toBeDefined()
    expect(JSON.parse(refused as string)).toMatchObject({ kieMsg: 'The image index is out of range', msg: 'kie.ai refused the task' })
    for (const line of lines) expect(line.match(/"msg":/g)?.length ?? 0, line).toBeLessThanOrEqual(1)
  })
})
