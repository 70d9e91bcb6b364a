// Issue 16: the admin API behind the operator console. Its own keys (ADMIN_API_KEYS), every
// client's tasks, a task's whole story (timeline, callbacks as stored, deliveries, files),
// thumbnails made once with sharp and cached beside their file, and the gateway at a glance.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterEach, describe, expect, it } from 'vitest'
import { archiveDue } from '../src/archive/worker.js'
import type { AppOptions } from '../src/app.js'
import { pruneDue } from '../src/workers/retention.js'
import { createCreditReading, createCreditWatch } from '../src/workers/credits.js'
import { loadConfig } from '../src/config.js'
import { buildTestApp, CALLBACK_SECRET, callbackQuery, failureCallback, FakeKie, hex32, successCallback } from './helper.js'
import { freePort, spawnGateway, tempDir, until } from './e2e-helper.js'

const ALPHA = 'alpha-key-0123456789abcdef'
const BETA = 'beta-key-0123456789abcdef'
const ADMIN = 'admin-key-0123456789abcdef'
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const HOUR = 3_600_000
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
type Ctx = Awaited<ReturnType<typeof buildTestApp>>
type Json = Record<string, unknown>

async function adminApp(extra: Partial<AppOptions> = {}) {
  const dir = tempDir()
  const t = await buildTestApp({ apiKeys: [`alpha:${ALPHA}`, `beta:${BETA}`], adminKeys: [`ops:${ADMIN}`], // No result host: a download the archive worker tries here fails at once, never leaving the machine.
    archive: { dir: join(dir, 'results'), hosts: [] }, ...extra })
  const admin = async (url: string, method: 'GET' | 'POST' = 'GET', headers: Json = {}) => t.app.inject({ method, url, headers: { ...bearer(ADMIN), ...headers } as Record<string, string> })
  return { ...t, dir, admin }
}

const post = async (t: Ctx, key: string, url: string, payload: object) => {
  const res = await t.app.inject({ method: 'POST', url, headers: bearer(key), payload })
  expect(res.statusCode, res.body).toBe(202)
  return res.json() as { id: string; kieTaskId: string | null; status: string }
}
const generate = (t: Ctx, key: string, prompt: string, extra: object = {}) => post(t, key, '/generate', { taskType: 'mj_txt2img', prompt, ...extra })
const upscale = (t: Ctx, key: string, extra: object = {}) => post(t, key, '/upscale', { taskId: hex32(), imageIndex: 1, ...extra })
const vary = (t: Ctx, key: string) => post(t, key, '/vary', { taskId: hex32(), imageIndex: 0 })
const callback = (t: Ctx, query: string, payload: object | string, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: `/callbacks/mj?${query}`, payload, headers: { 'content-type': 'application/json', ...headers } })
const urls = (kieTaskId: string, n: number) => Array.from({ length: n }, (_, i) => `https://tempfile.aiquickdraw.com/v/${kieTaskId}_0_${i}.png`)

/** Stores bytes as the archive would have, for result file `idx` of the task. */
function storeFile(t: Ctx & { dir: string }, taskId: string, idx: number, bytes: Buffer, contentType = 'image/png') {
  const row = t.repo.resultFiles(taskId).find((f) => f.idx === idx)
  expect(row, `result file ${idx} of ${taskId}`).toBeDefined()
  const folder = join(t.dir, 'results', taskId)
  mkdirSync(folder, { recursive: true })
  const path = join(folder, `${idx}.png`)
  writeFileSync(path, bytes)
  expect(t.repo.resultStored(row!.id, t.clock.now(), { path, bytes: bytes.length, sha256: sha(bytes), contentType })).toBe(true)
  return path
}
const bigPng = () => sharp({ create: { width: 640, height: 400, channels: 3, background: { r: 200, g: 80, b: 30 } } }).png().toBuffer()

const ROUTES: Array<['GET' | 'POST', string]> = [
  ['GET', '/admin/overview'],
  ['GET', '/admin/tasks'],
  ['GET', '/admin/tasks/some-task'],
  ['GET', '/admin/tasks/some-task/files/0'],
  ['GET', '/admin/tasks/some-task/files/0/thumbnail'],
  ['POST', '/admin/tasks/some-task/deliveries/retry'],
  ['POST', '/admin/tasks/some-task/reconcile']
]

describe('admin API: access', () => {
  it('does not exist without admin keys: every route is a 404 exactly like an unknown route, and not in the document', async () => {
    const t = await buildTestApp({ adminKeys: [] })
    for (const [method, url] of ROUTES) {
      for (const headers of [{}, bearer(ADMIN)]) {
        const res = await t.app.inject({ method, url, headers })
        expect(res.statusCode, `${method} ${url}`).toBe(404)
        expect(res.json()).toEqual({ statusCode: 404, error: 'Not Found', code: 'GW_NOT_FOUND', message: `Route ${method} ${url} not found` })
      }
    }
    const unknown = await t.app.inject({ url: '/no-such-route' })
    expect(Object.keys(unknown.headers).sort()).toEqual(Object.keys((await t.app.inject({ url: '/admin/overview' })).headers).sort())
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as { paths: Json; components: { securitySchemes: Json } }
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/admin'))).toEqual([])
    expect(doc.components.securitySchemes.admin).toBeUndefined()
  })

  it('refuses a client key and a wrong key with 401; an admin key is no client key', async () => {
    const t = await adminApp({ authFailures: { max: 1000 } })
    for (const [method, url] of ROUTES) {
      for (const headers of [{}, bearer(ALPHA), bearer('wrong-admin-key-0123456789'), { authorization: 'Basic abc' }]) {
        const res = await t.app.inject({ method, url, headers })
        expect(res.statusCode, `${method} ${url} with ${JSON.stringify(headers)}`).toBe(401)
        expect(res.json()).toMatchObject({ statusCode: 401, code: 'GW_UNAUTHORIZED' })
      }
    }
    expect((await t.admin('/admin/overview')).statusCode).toBe(200)
    expect((await t.app.inject({ url: '/tasks', headers: bearer(ADMIN) })).statusCode).toBe(401)
  })

  it('counts wrong admin keys toward the per-address limit, and then refuses the right one too', async () => {
    const t = await adminApp({ authFailures: { max: 2 } })
    for (let i = 0; i < 2; i++) expect((await t.app.inject({ url: '/admin/overview', headers: bearer(`guess-${i}-0123456789abcdef`) })).statusCode).toBe(401)
    const blocked = await t.admin('/admin/overview')
    expect(blocked.statusCode).toBe(429)
    expect(blocked.json()).toMatchObject({ code: 'GW_RATE_LIMITED' })
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0)
    // The same limit: a client key from that address is refused too.
    expect((await t.app.inject({ url: '/tasks', headers: bearer(ALPHA) })).statusCode).toBe(429)
    t.clock.advance(61_000)
    expect((await t.admin('/admin/overview')).statusCode).toBe(200)
  })

  it('is not subject to the per-client rate limit, and logs one line per request as admin:<name>', async () => {
    const lines: Json[] = []
    const { default: pino } = await import('pino')
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Json) })
    const t = await adminApp({ clientRateLimit: { max: 2, windowMs: 60_000 }, loggerInstance: logger })
    for (let i = 0; i < 5; i++) {
      const res = await t.admin('/admin/tasks')
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-ratelimit-limit']).toBeUndefined()
    }
    const requests = lines.filter((l) => l.msg === 'request' && l.route === '/admin/tasks')
    expect(requests).toHaveLength(5)
    expect(requests.every((l) => l.client === 'admin:ops' && l.statusCode === 200)).toBe(true)
    expect(JSON.stringify(lines)).not.toContain(ADMIN)
  })
})

describe('admin API: the task list', () => {
  it("lists every client's tasks newest first, filters by status, type, client and exact id, and pages by cursor", async () => {
    const t = await adminApp()
    const a1 = await generate(t, ALPHA, 'a lighthouse at dusk', { waterMark: 'acme' })
    const b1 = await upscale(t, BETA)
    const a2 = await vary(t, ALPHA)
    const b2 = await generate(t, BETA, 'a storm')
    expect((await callback(t, callbackQuery(b2.id), failureCallback(b2.kieTaskId!))).statusCode).toBe(200)
    const a3 = await upscale(t, ALPHA)
    expect((await callback(t, callbackQuery(a3.id), successCallback(a3.kieTaskId!))).statusCode).toBe(200)

    const list = async (query: string) => {
      const res = await t.admin(`/admin/tasks${query}`)
      expect(res.statusCode, res.body).toBe(200)
      return res.json() as { items: Array<Json & { id: string }>; nextCursor: string | null }
    }
    const ids = async (query: string) => (await list(query)).items.map((i) => i.id)

    const all = await list('')
    expect(all.items.map((i) => i.id)).toEqual([a3.id, b2.id, a2.id, b1.id, a1.id])
    expect(all.nextCursor).toBeNull()
    expect(all.items.find((i) => i.id === a1.id)).toEqual({
      id: a1.id, type: 'generate', status: 'submitted', client: 'name:alpha', kieTaskId: a1.kieTaskId, prompt: 'a lighthouse at dusk', waterMark: 'acme',
      errorCode: null, createdAt: expect.any(String), updatedAt: expect.any(String)
    })
    expect(all.items.find((i) => i.id === b2.id)).toMatchObject({ status: 'failed', client: 'name:beta', prompt: 'a storm', errorCode: 'GW_UPSTREAM_FAILED' })
    expect(all.items.find((i) => i.id === b1.id)).toMatchObject({ type: 'upscale', prompt: null })

    expect(await ids('?client=name:alpha')).toEqual([a3.id, a2.id, a1.id])
    expect(await ids('?client=name:beta')).toEqual([b2.id, b1.id])
    expect(await ids('?status=failed')).toEqual([b2.id])
    expect(await ids('?status=succeeded')).toEqual([a3.id])
    expect(await ids('?status=submitted')).toEqual([a2.id, b1.id, a1.id])
    expect(await ids('?type=generate')).toEqual([b2.id, a1.id])
    expect(await ids('?type=upscale&client=name:alpha')).toEqual([a3.id])
    expect(await ids('?status=submitted&client=name:beta&type=upscale')).toEqual([b1.id])
    expect(await ids(`?q=${a2.id}`)).toEqual([a2.id])
    expect(await ids(`?q=${b1.kieTaskId}`)).toEqual([b1.id])
    expect(await ids(`?q=${b1.kieTaskId}&client=name:alpha`)).toEqual([])
    expect(await ids(`?q=${b1.kieTaskId}&client=name:beta&status=submitted`)).toEqual([b1.id])
    expect(await ids('?q=no-such-task')).toEqual([])
    expect(await ids('?client=name:nobody')).toEqual([])

    const pages: string[][] = []
    let cursor: string | null = ''
    while (cursor !== null) {
      const page = await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      pages.push(page.items.map((i) => i.id))
      cursor = page.nextCursor
    }
    expect(pages).toEqual([[a3.id, b2.id], [a2.id, b1.id], [a1.id]])
    // A page stays stable while new tasks arrive.
    const first = await list('?limit=2')
    await generate(t, BETA, 'newer')
    expect(await ids(`?limit=2&cursor=${first.nextCursor}`)).toEqual([a2.id, b1.id])
    expect(await ids(`?client=name:alpha&limit=1&cursor=${(await list('?client=name:alpha&limit=1')).nextCursor}`)).toEqual([a2.id])

    for (const bad of ['?status=done', '?limit=0', '?limit=101', '?limit=1.5', '?cursor=bm9wZQ', '?extra=1', '?type=video']) {
      const res = await t.admin(`/admin/tasks${bad}`)
      expect(res.statusCode, bad).toBe(400)
      expect(res.json()).toMatchObject({ code: 'GW_VALIDATION' })
    }
  })

  it('uses an index for every combination of filters', async () => {
    const t = await adminApp()
    const plans: string[] = []
    const prepare = t.db.prepare.bind(t.db)
    // Each statement the list makes, explained: none may scan the tasks table without an index.
    t.db.prepare = ((sql: string) => {
      if (sql.startsWith('SELECT seq, id, owner')) plans.push((prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ beforeSeq: 1, limit: 1, owner: 'o', type: 'generate', status: 'failed', q: 'x' }) as Array<{ detail: string }>).map((r) => r.detail).join('; '))
      return prepare(sql)
    }) as typeof t.db.prepare
    const values = { client: 'name:alpha', type: 'generate', status: 'failed', q: 'x' }
    const keys = Object.keys(values) as Array<keyof typeof values>
    for (let mask = 0; mask < 16; mask++) {
      const query = keys.filter((_, i) => mask & (1 << i)).map((k) => `${k}=${values[k]}`).join('&')
      expect((await t.admin(`/admin/tasks?${query}`)).statusCode).toBe(200)
    }
    t.db.prepare = prepare
    expect(plans).toHaveLength(16)
    for (const plan of plans) expect(plan).not.toMatch(/SCAN tasks(?! USING)/)
  })
})

describe('admin API: a task', () => {
  it('shows its view and owner, timeline, callbacks as stored (bodies verbatim, as text), deliveries and files', async () => {
    const t = await adminApp({ webhooks: { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', allowLoopback: true } })
    const task = await generate(t, ALPHA, 'a lighthouse', { callbackUrl: 'http://127.0.0.1:9/hook' })
    t.clock.advance(1000)
    // A stranger's delivery naming the task, larger than the 4 KB kept of it, with markup in it.
    const hostile = JSON.stringify({ note: '<script>alert(1)</script>', pad: 'x'.repeat(5000) })
    expect((await callback(t, `task=${task.id}&token=wrong`, hostile)).statusCode).toBe(401)
    t.clock.advance(1000)
    const accepted = JSON.stringify({ ...successCallback(task.kieTaskId!, urls(task.kieTaskId!, 4)), msg: '<b>done</b> & "quoted"' })
    expect((await callback(t, callbackQuery(task.id), accepted, { 'x-webhook-signature': 'sig', 'x-webhook-timestamp': '1' })).statusCode).toBe(200)
    const png = await bigPng()
    storeFile(t, task.id, 0, png)
    const failed = t.repo.resultFiles(task.id).find((f) => f.idx === 2)!
    t.repo.resultFailed(failed.id, t.clock.now(), 'HTTP 404 from the result host')

    const res = await t.admin(`/admin/tasks/${task.id}`)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    const page = res.json() as Json & { task: Json; timeline: Json[]; callbacks: Json[]; deliveries: Json[]; files: Json[] }

    const clientView = (await t.app.inject({ url: `/tasks/${task.id}`, headers: bearer(ALPHA) })).json() as Json
    expect(page.task).toEqual({ ...clientView, client: 'name:alpha' })
    expect(page.timeline).toEqual([
      { at: expect.any(String), from: null, to: 'queued', source: 'create' },
      { at: expect.any(String), from: 'queued', to: 'submitted', source: 'submit' },
      { at: new Date(t.clock.now()).toISOString(), from: 'submitted', to: 'succeeded', source: 'callback' }
    ])

    expect(page.callbacks).toHaveLength(2)
    const [stranger, kie] = page.callbacks as [Json, Json]
    expect(stranger).toMatchObject({ verdict: 'bad_token', httpStatus: 401, contentType: 'application/json', remoteAddress: '127.0.0.1', signed: false, bodyBytes: Buffer.byteLength(hostile), bodySha256: sha(Buffer.from(hostile)) })
    expect(stranger.body).toBe(hostile.slice(0, 4096))
    expect(stranger.body).toContain('<script>alert(1)</script>')
    expect(kie).toMatchObject({ verdict: 'accepted', httpStatus: 200, signed: true, body: accepted, bodyBytes: Buffer.byteLength(accepted) })
    // Verbatim in a JSON string: the markup is text for the console to render as text.
    expect(res.body).toContain(JSON.stringify(hostile.slice(0, 4096)).slice(0, 40))
    expect(res.body).toContain('<script>alert(1)</script>')

    // kie.ai echoes the callback URL; its token is not shown (it would let a reader post callbacks).
    const echoed = JSON.stringify({ code: 200, msg: 'success', data: { taskId: task.kieTaskId, callBackUrl: `http://gw/callbacks/mj?${callbackQuery(task.id)}` } })
    expect((await callback(t, callbackQuery(task.id), echoed, { 'x-webhook-signature': 'sig', 'x-webhook-timestamp': '1' })).statusCode).toBe(200)
    const shown = ((await t.admin(`/admin/tasks/${task.id}`)).json() as { callbacks: Array<{ body: string }> }).callbacks[2]?.body
    expect(shown).toContain(`task=${task.id}&token=[redacted]`)
    expect(shown).not.toContain(new URLSearchParams(callbackQuery(task.id)).get('token'))

    const clientDeliveries = (await t.app.inject({ url: `/tasks/${task.id}/deliveries`, headers: bearer(ALPHA) })).json() as { items: Json[] }
    expect(page.deliveries).toEqual(clientDeliveries.items)
    expect(page.deliveries).toEqual([expect.objectContaining({ type: 'generate.succeeded', url: 'http://127.0.0.1:9/hook', state: 'pending' })])

    expect(page.files).toEqual([
      { index: 0, status: 'stored', bytes: png.length, contentType: 'image/png', error: null, imageUrl: `/admin/tasks/${task.id}/files/0`, thumbnailUrl: `/admin/tasks/${task.id}/files/0/thumbnail` },
      { index: 1, status: 'pending', bytes: null, contentType: null, error: null, imageUrl: null, thumbnailUrl: null },
      { index: 2, status: 'failed', bytes: null, contentType: null, error: 'HTTP 404 from the result host', imageUrl: null, thumbnailUrl: null },
      { index: 3, status: 'pending', bytes: null, contentType: null, error: null, imageUrl: null, thumbnailUrl: null }
    ])

    // Any client's task; an unknown one is a 404.
    const other = await upscale(t, BETA)
    expect((await t.admin(`/admin/tasks/${other.id}`)).json()).toMatchObject({ task: { id: other.id, client: 'name:beta', status: 'submitted' }, callbacks: [], deliveries: [], files: [] })
    const missing = await t.admin('/admin/tasks/no-such-task')
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toMatchObject({ code: 'GW_NOT_FOUND' })
  })

  it('serves a stored file with its ETag, and 404, 409 and 410 as the result route does', async () => {
    const t = await adminApp()
    const task = await generate(t, ALPHA, 'files')
    await callback(t, callbackQuery(task.id), successCallback(task.kieTaskId!, urls(task.kieTaskId!, 4)))
    const png = await bigPng()
    storeFile(t, task.id, 1, png)
    t.repo.resultFailed(t.repo.resultFiles(task.id).find((f) => f.idx === 3)!.id, t.clock.now(), 'gone')

    const res = await t.admin(`/admin/tasks/${task.id}/files/1`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('image/png')
    expect(res.rawPayload.equals(png)).toBe(true)
    expect(res.headers.etag).toBe(`"${sha(png)}"`)
    expect(res.headers['cache-control']).toBe('private, max-age=31536000, immutable')
    expect((await t.admin(`/admin/tasks/${task.id}/files/1`, 'GET', { 'if-none-match': res.headers.etag })).statusCode).toBe(304)

    const pending = await t.admin(`/admin/tasks/${task.id}/files/0`)
    expect(pending.statusCode).toBe(409)
    expect(pending.json()).toMatchObject({ code: 'GW_RESULT_PENDING' })
    expect(pending.headers['retry-after']).toBe('5')
    expect((await t.admin(`/admin/tasks/${task.id}/files/0/thumbnail`)).statusCode).toBe(409)
    const gone = await t.admin(`/admin/tasks/${task.id}/files/3`)
    expect(gone.statusCode).toBe(410)
    expect(gone.json()).toMatchObject({ code: 'GW_RESULT_UNAVAILABLE' })
    expect((await t.admin(`/admin/tasks/${task.id}/files/3/thumbnail`)).statusCode).toBe(410)
    for (const url of [`/admin/tasks/${task.id}/files/9`, `/admin/tasks/${task.id}/files/9/thumbnail`, '/admin/tasks/nope/files/0', '/admin/tasks/nope/files/0/thumbnail']) {
      expect((await t.admin(url)).statusCode, url).toBe(404)
    }
    expect((await t.admin(`/admin/tasks/${task.id}/files/1.5`)).statusCode).toBe(400)
    expect((await t.admin(`/admin/tasks/${task.id}/files/16`)).statusCode).toBe(400)
  })

  it('makes a real WebP thumbnail once, caches it beside the file, and deletes it with the file', async () => {
    const t = await adminApp()
    const task = await generate(t, ALPHA, 'thumbs')
    await callback(t, callbackQuery(task.id), successCallback(task.kieTaskId!, urls(task.kieTaskId!, 2)))
    const path = storeFile(t, task.id, 0, await bigPng())
    const small = storeFile(t, task.id, 1, (await import('../src/simulator/png.js')).renderPng('small'))
    const cached = `${path}.thumb.webp`
    expect(existsSync(cached)).toBe(false)

    const res = await t.admin(`/admin/tasks/${task.id}/files/0/thumbnail`)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.headers['content-type']).toBe('image/webp')
    expect(res.headers['cache-control']).toBe('private, max-age=31536000, immutable')
    expect(res.headers.etag).toMatch(/^"[0-9a-f]{64}-w256\.webp"$/)
    expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length)
    const meta = await sharp(res.rawPayload).metadata()
    expect(meta).toMatchObject({ format: 'webp', width: 256, height: 160 })
    expect(existsSync(cached)).toBe(true)
    const { mtimeMs } = statSync(cached)

    await new Promise((r) => setTimeout(r, 20))
    const again = await t.admin(`/admin/tasks/${task.id}/files/0/thumbnail`)
    expect(again.statusCode).toBe(200)
    expect(again.rawPayload.equals(res.rawPayload)).toBe(true)
    expect(statSync(cached).mtimeMs).toBe(mtimeMs)
    expect((await t.admin(`/admin/tasks/${task.id}/files/0/thumbnail`, 'GET', { 'if-none-match': res.headers.etag })).statusCode).toBe(304)

    // Never wider than the image; concurrent requests make it once.
    const both = await Promise.all([1, 2, 3].map(() => t.admin(`/admin/tasks/${task.id}/files/1/thumbnail`)))
    for (const r of both) expect(r.rawPayload.equals(both[0]!.rawPayload)).toBe(true)
    expect(await sharp(both[0]!.rawPayload).metadata()).toMatchObject({ format: 'webp', width: 64, height: 64 })
    expect(existsSync(`${small}.thumb.webp`)).toBe(true)

    // RESULTS_TTL_DAYS removes the file and its thumbnail.
    const settings = { ...t.app.services.archive!, ttlMs: 1000 }
    t.clock.advance(2000)
    await archiveDue({ repo: t.repo, kie: t.kie, clock: t.clock, settings, log: t.app.log })
    expect(existsSync(path)).toBe(false)
    expect(existsSync(cached)).toBe(false)
    expect(existsSync(`${small}.thumb.webp`)).toBe(false)
    expect((await t.admin(`/admin/tasks/${task.id}/files/0/thumbnail`)).statusCode).toBe(410)
  })

  it('deletes thumbnails with their files when TASK_RETENTION_DAYS prunes the task', async () => {
    const t = await adminApp()
    const task = await generate(t, ALPHA, 'retention')
    await callback(t, callbackQuery(task.id), successCallback(task.kieTaskId!, urls(task.kieTaskId!, 1)))
    const path = storeFile(t, task.id, 0, await bigPng())
    expect((await t.admin(`/admin/tasks/${task.id}/files/0/thumbnail`)).statusCode).toBe(200)
    expect(existsSync(`${path}.thumb.webp`)).toBe(true)
    t.clock.advance(2 * 86_400_000)
    await pruneDue({ retention: t.app.services.retention, settings: { ...t.app.services.retentionSettings, taskMs: 86_400_000 }, clock: t.clock, log: t.app.log })
    expect(t.repo.getTask(task.id)).toBeUndefined()
    expect(existsSync(path)).toBe(false)
    expect(existsSync(`${path}.thumb.webp`)).toBe(false)
  })
})

describe('admin API: actions', () => {
  it('retries a dead-lettered delivery of any client (202), and answers 409 when there is none', async () => {
    const t = await adminApp({ webhooks: { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', allowLoopback: true, scheduleMs: [1000, 1000] } })
    const task = await upscale(t, BETA, { callbackUrl: 'http://127.0.0.1:9/hook' })
    await callback(t, callbackQuery(task.id), successCallback(task.kieTaskId!))
    const none = await t.admin(`/admin/tasks/${task.id}/deliveries/retry`, 'POST')
    expect(none.statusCode).toBe(409)
    expect(none.json()).toMatchObject({ code: 'GW_NOTHING_TO_RETRY' })

    const [delivery] = t.repo.webhookDeliveries(task.id)
    t.repo.recordWebhookAttempt(delivery!, { at: t.clock.now(), statusCode: 500, durationMs: 12, error: null, excerpt: null }, { state: 'dead', nextAttemptAt: t.clock.now() })
    let due = 0
    t.app.services.signals.on('webhookDue', () => due++)
    const retried = await t.admin(`/admin/tasks/${task.id}/deliveries/retry`, 'POST')
    expect(retried.statusCode, retried.body).toBe(202)
    expect(retried.json()).toEqual({ items: [expect.objectContaining({ id: delivery!.event_id, state: 'pending', attempts: [expect.objectContaining({ statusCode: 500 })] })] })
    expect(retried.json()).toEqual((await t.app.inject({ url: `/tasks/${task.id}/deliveries`, headers: bearer(BETA) })).json())
    expect(due).toBe(1)
    expect((await t.admin('/admin/tasks/nope/deliveries/retry', 'POST')).statusCode).toBe(404)
  })

  it('reconciles a submitted task now (202, reconcile_at set), and refuses one that is not open with 409 GW_TASK_NOT_OPEN', async () => {
    const t = await adminApp({ queue: { rateLimitMax: 2 } })
    // Its submission answer is lost: submitted, but without kie.ai's id record-info cannot be asked.
    t.kie.next.push({ ok: false, kind: 'transient', reason: 'timeout', message: 'no answer', retryAfterMs: null, maybeDelivered: true })
    const lost = await upscale(t, BETA)
    const open = await upscale(t, ALPHA)
    const queued = await upscale(t, ALPHA)
    expect([lost.status, open.status, queued.status]).toEqual(['submitted', 'submitted', 'queued'])
    expect(t.repo.getTask(lost.id)!.kie_task_id).toBeNull()
    expect(t.repo.getTask(open.id)!.reconcile_at).toBe(t.clock.now() + 60_000)
    t.clock.advance(500)
    let asked = 0
    t.app.services.signals.on('reconcileNow', () => asked++)

    const res = await t.admin(`/admin/tasks/${open.id}/reconcile`, 'POST')
    expect(res.statusCode, res.body).toBe(202)
    expect(res.json()).toEqual({ task: { ...(await t.app.inject({ url: `/tasks/${open.id}`, headers: bearer(ALPHA) })).json(), client: 'name:alpha' } })
    expect(res.json().task).toMatchObject({ id: open.id, status: 'submitted' })
    expect(t.repo.getTask(open.id)!.reconcile_at).toBe(t.clock.now())
    expect(t.repo.dueForReconcile(t.clock.now(), 10).map((r) => r.id)).toEqual([open.id])
    expect(asked).toBe(1)

    await callback(t, callbackQuery(open.id), successCallback(open.kieTaskId!))
    const refusals = [
      [open.id, /already succeeded/],
      [queued.id, /queued/],
      [lost.id, /not known/]
    ] as const
    for (const [id, why] of refusals) {
      const refused = await t.admin(`/admin/tasks/${id}/reconcile`, 'POST')
      expect(refused.statusCode, id).toBe(409)
      expect(refused.json()).toMatchObject({ statusCode: 409, error: 'Conflict', code: 'GW_TASK_NOT_OPEN', message: expect.stringMatching(why) })
    }
    expect(asked).toBe(1)
    expect((await t.admin('/admin/tasks/nope/reconcile', 'POST')).statusCode).toBe(404)
  })
})

describe('admin API: the overview', () => {
  it('shows the queue, the rate window, the breaker, credits, tasks by status and the last hour of refused callbacks', async () => {
    const t = await adminApp({ queue: { rateLimitMax: 2, rateLimitWindowMs: 10_000, circuitFailureThreshold: 1, circuitCooldownMs: 5000 } })
    const start = t.clock.now()
    // Two hours ago: refused callbacks that no longer count.
    for (let i = 0; i < 3; i++) await callback(t, 'task=old&token=wrong', '{}')
    t.clock.advance(2 * HOUR)
    const now = t.clock.now()

    const sent = [await upscale(t, ALPHA), await generate(t, BETA, 'two')]
    const queued = [await upscale(t, ALPHA), await vary(t, BETA), await upscale(t, BETA)]
    expect(sent.map((s) => s.status)).toEqual(['submitted', 'submitted'])
    expect(queued.map((s) => s.status)).toEqual(['queued', 'queued', 'queued'])
    await callback(t, callbackQuery(sent[0]!.id), successCallback(sent[0]!.kieTaskId!))
    await callback(t, callbackQuery(sent[1]!.id), failureCallback(sent[1]!.kieTaskId!))
    // Refused in the last hour: 4 bad tokens, 2 unknown tasks, 1 malformed query; answered ones do not count.
    for (let i = 0; i < 4; i++) await callback(t, `task=${sent[0]!.id}&token=wrong`, '{}')
    for (let i = 0; i < 2; i++) expect((await callback(t, callbackQuery('no-such-task'), '{}')).statusCode).toBe(404)
    expect((await callback(t, 'task=x&task=y&token=z', '{}')).statusCode).toBe(400)
    await callback(t, callbackQuery(sent[0]!.id), successCallback(sent[0]!.kieTaskId!))

    const overview = async () => {
      const res = await t.admin('/admin/overview')
      expect(res.statusCode, res.body).toBe(200)
      return res.json() as Json & { queue: Json; breaker: Json; credits: Json; tasks: Json; refusedCallbacks: Json }
    }
    const o = await overview()
    expect(o.queue).toEqual({ depth: 3, nextSendAt: new Date(now + 10_500).toISOString(), window: { used: 2, max: 2, windowMs: 10_500 } })
    expect(o.tasks).toEqual({ queued: 3, submitted: 0, succeeded: 1, failed: 1 })
    expect(o.breaker).toEqual({ state: 'closed', openUntil: null })
    expect(o.credits).toEqual({ balance: null, checkedAt: null })
    expect(o.refusedCallbacks).toEqual({
      sinceMs: HOUR,
      byVerdict: [{ verdict: 'bad_token', count: 4 }, { verdict: 'unknown_task', count: 2 }, { verdict: 'bad_query', count: 1 }]
    })
    expect(start).toBeLessThan(now)

    // Later: the window has room, the breaker opens and then lets a probe through, credits are read.
    t.clock.advance(11_000)
    t.app.services.dispatcher.breaker.failure(t.clock.now(), 'test')
    const openUntil = t.clock.now() + 5000
    t.app.services.creditReading.balance = 1234.5
    t.app.services.creditReading.checkedAt = t.clock.now()
    const later = await overview()
    expect(later.queue).toEqual({ depth: 3, nextSendAt: new Date(openUntil).toISOString(), window: { used: 0, max: 2, windowMs: 10_500 } })
    expect(later.breaker).toEqual({ state: 'open', openUntil: new Date(openUntil).toISOString() })
    expect(later.credits).toEqual({ balance: 1234.5, checkedAt: new Date(t.clock.now()).toISOString() })
    t.clock.advance(5000)
    expect((await overview()).breaker).toEqual({ state: 'half-open', openUntil: new Date(openUntil).toISOString() })
    // An hour on, nothing refused counts.
    t.clock.advance(HOUR)
    expect((await overview()).refusedCallbacks).toEqual({ sinceMs: HOUR, byVerdict: [] })
  })

  it('the credits worker keeps its last reading for the overview', async () => {
    const kie = new FakeKie()
    kie.balance = { ok: true, data: 42 }
    const reading = createCreditReading()
    const t = await adminApp({ kie })
    const check = createCreditWatch({ kie, settings: { pollMs: 1000, warnBelow: 10 }, log: t.app.log, reading, now: () => 1_700_000_000_000 })
    await check()
    expect(reading).toEqual({ balance: 42, checkedAt: 1_700_000_000_000 })
    kie.balance = { ok: false, kind: 'transient', reason: 'network' } as never
    await check()
    expect(reading).toEqual({ balance: 42, checkedAt: 1_700_000_000_000 })
  })
})

describe('admin API: configuration', () => {
  it('reads ADMIN_API_KEYS like API_KEYS, and refuses a key that is in both', () => {
    expect(loadConfig({}).adminKeys).toEqual([])
    expect(loadConfig({ ADMIN_API_KEYS: ` ops:${ADMIN} , ${BETA}, ` }).adminKeys).toEqual([`ops:${ADMIN}`, BETA])
    expect(() => loadConfig({ ADMIN_API_KEYS: 'short' })).toThrow(/^ADMIN_API_KEYS must be a comma-separated list of admin keys, each at least 16 characters/)
    expect(() => loadConfig({ API_KEYS: `alpha:${ALPHA}`, ADMIN_API_KEYS: `ops:${ALPHA}` })).toThrow(/ADMIN_API_KEYS must not repeat a key of API_KEYS/)
  })
})

describe('admin API: the server process', () => {
  let children: Array<ReturnType<typeof spawnGateway>> = []
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await Promise.all(children.map((c) => c.exited))
    children = []
  })
  const start = async (env: Record<string, string>) => {
    const port = await freePort()
    const child = spawnGateway({ PORT: String(port), ...env })
    children.push(child)
    const base = `http://127.0.0.1:${port}`
    await until('the gateway to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`gateway exited: ${child.output()}`)
      return (await fetch(`${base}/readyz`).catch(() => null))?.ok
    })
    return { child, base, get: (path: string, key: string) => fetch(`${base}${path}`, { headers: bearer(key) }) }
  }
  const stop = async (child: ReturnType<typeof spawnGateway>) => {
    child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
  }

  it('outside production generates an admin key once, logs it, and keeps it across restarts', async () => {
    const dir = tempDir()
    const env = { DATABASE_PATH: join(dir, 'gw.db'), SANDBOX_SIMULATOR_PORT: '0' }
    const first = await start(env)
    const line = /ADMIN_API_KEYS is not set: sandbox admin key is (admin_[A-Za-z0-9_-]+)/.exec(first.child.output())
    expect(line, first.child.output()).not.toBeNull()
    const key = line![1] as string
    const dev = /sandbox development key is (dev_[A-Za-z0-9_-]+)/.exec(first.child.output())![1] as string
    expect((await first.get('/admin/overview', key)).status).toBe(200)
    expect((await first.get('/admin/overview', dev)).status).toBe(401)
    expect((await first.get('/tasks', key)).status).toBe(401)
    await stop(first.child)
    const again = await start(env)
    expect(again.child.output()).toContain(`sandbox admin key is ${key}`)
    expect((await again.get('/admin/tasks', key)).status).toBe(200)
  }, 30_000)

  it('in production without ADMIN_API_KEYS answers 404 on /admin/..., and serves it with one', async () => {
    const dir = tempDir()
    const env = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_PATH: join(dir, 'gw.db'),
      PUBLIC_BASE_URL: 'http://127.0.0.1:1',
      KIE_API_KEY: 'kie-key',
      KIE_BASE_URL: 'http://127.0.0.1:1',
      API_KEYS: `alpha:${ALPHA}`,
      CALLBACK_SECRET
    }
    const off = await start(env)
    expect(off.child.output()).not.toContain('ADMIN_API_KEYS is not set')
    const res = await off.get('/admin/overview', ADMIN)
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ statusCode: 404, error: 'Not Found', code: 'GW_NOT_FOUND', message: 'Route GET /admin/overview not found' })
    await stop(off.child)
    const on = await start({ ...env, ADMIN_API_KEYS: `ops:${ADMIN}` })
    expect((await on.get('/admin/overview', ADMIN)).status).toBe(200)
    expect((await on.get('/admin/overview', ALPHA)).status).toBe(401)
  }, 30_000)
})
