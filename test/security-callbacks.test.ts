// Attacks on POST /callbacks/mj, the one route that needs no client key (issue 11, parts 1 and 7):
// a stranger can make the gateway keep only a bounded trace of what it sends.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { auth, buildTestApp, callbackQuery, hex32, successCallback } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx

const BAD = 'task=some-task&token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const post = (query: string, payload: string | Buffer, remoteAddress = '127.0.0.1', headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: `/callbacks/mj?${query}`, headers: { 'content-type': 'application/json', ...headers }, payload, remoteAddress })
const stored = () =>
  t.db.prepare('SELECT verdict, http_status, task_id, remote_address, body, body_bytes, body_sha256 FROM callback_deliveries ORDER BY id').all() as Array<{
    verdict: string; http_status: number; task_id: string | null; remote_address: string; body: string; body_bytes: number; body_sha256: string | null
  }>
const metric = async (verdict: string) =>
  Number(new RegExp(`^gateway_callbacks_total\\{verdict="${verdict}"\\} (\\d+)$`, 'm').exec((await t.app.inject({ url: '/metrics' })).body)?.[1] ?? 0)
const submitted = async () => {
  const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0 } })
  return res.json() as { id: string; kieTaskId: string }
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

describe('a stranger cannot fill the disk through /callbacks/mj', () => {
  // Before issue 11 every refused delivery was kept whole: 2,000 requests added 131 MB in 2 s.
  it('keeps a bad-token delivery as its size, its SHA-256 and its first 4 KB', async () => {
    t = await buildTestApp()
    const body = Buffer.from('{"code":200,"msg":"' + 'x'.repeat(60 * 1024 - 30) + '"}')
    expect((await post(BAD, body)).statusCode).toBe(401)
    expect(stored()).toEqual([{ verdict: 'bad_token', http_status: 401, task_id: 'some-task', remote_address: '127.0.0.1', body: body.subarray(0, 4096).toString(), body_bytes: body.length, body_sha256: sha(body) }])
  })

  it('keeps a delivery with a valid token whole, whatever its size', async () => {
    t = await buildTestApp()
    const { id, kieTaskId } = await submitted()
    const body = JSON.stringify({ ...successCallback(kieTaskId), padding: 'y'.repeat(20_000) })
    expect((await post(callbackQuery(id), body)).statusCode).toBe(200)
    expect(stored()).toEqual([expect.objectContaining({ verdict: 'accepted', body, body_bytes: Buffer.byteLength(body), body_sha256: sha(body) })])
  })

  it('stores at most CALLBACK_REFUSED_LOG_MAX refusals a minute per source address, counts the rest, and never limits a valid token', async () => {
    t = await buildTestApp({ callbackRefusedLogMax: 5 })
    const { id, kieTaskId } = await submitted()
    for (let i = 0; i < 8; i++) expect((await post(BAD, '{}')).statusCode).toBe(401)
    expect(stored()).toHaveLength(5)
    expect(await metric('bad_token')).toBe(8)
    // Another address has its own budget; kie.ai's genuine callback is never limited.
    expect((await post(BAD, '{}', '127.0.0.9')).statusCode).toBe(401)
    expect((await post(callbackQuery(id), JSON.stringify(successCallback(kieTaskId)))).statusCode).toBe(200)
    expect(stored().map((d) => [d.verdict, d.remote_address])).toEqual([
      ...Array(5).fill(['bad_token', '127.0.0.1']), ['bad_token', '127.0.0.9'], ['accepted', '127.0.0.1']
    ])
    expect(t.repo.getTask(id)?.status).toBe('succeeded')
    // A minute later the address may be heard again.
    t.clock.advance(60_000)
    await post(BAD, '{}')
    expect(stored()).toHaveLength(8)
  })

  // Before issue 11 these never reached the handler and were not recorded at all.
  it.each([
    ['a body over 64 KB', BAD, Buffer.alloc(70 * 1024, 0x61), 413, 'body_too_large'],
    ['a duplicated task parameter', 'task=a&task=b&token=x', Buffer.from('{}'), 400, 'bad_query'],
    ['an over-long task parameter', `task=${'x'.repeat(65)}&token=x`, Buffer.from('{}'), 400, 'bad_query']
  ])('records %s, refused before the handler, bounded the same way', async (_name, query, body, status, verdict) => {
    t = await buildTestApp({ callbackRefusedLogMax: 2 })
    for (let i = 0; i < 3; i++) expect((await post(query, body)).statusCode).toBe(status)
    const rows = stored()
    expect(rows).toHaveLength(2)
    expect(rows[0]).toMatchObject({ verdict, http_status: status, remote_address: '127.0.0.1', body_bytes: body.length })
    expect(rows[0]?.body.length).toBeLessThanOrEqual(4096)
    expect(await metric(verdict)).toBe(3)
  })
})
