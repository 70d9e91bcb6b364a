import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { openDatabase } from '../src/db/open.js'
import { createKieClient } from '../src/kie/client.js'
import { renderPng, type RunningSimulator } from '../src/simulator/index.js'
import { auth, buildTestApp, callbackQuery, closeServer, hex32, onCleanup, successCallback } from './helper.js'
import { SIM_KEY, startSim, tempDir, until } from './e2e-helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
// Apps, the simulator, result hosts and folders are closed after each test by helper.ts.
let t: Ctx | null = null
let sim: RunningSimulator | null = null
let dir = ''

const PNG = renderPng('archive-test')
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A result host on loopback: `answers` in turn, the last one repeated. */
async function resultHost(answers: Array<(res: import('node:http').ServerResponse) => void>) {
  let n = 0
  const host = createServer((_req, res) => (answers[Math.min(n++, answers.length - 1)] as (r: typeof res) => void)(res))
  onCleanup(() => closeServer(host))
  await new Promise<void>((r) => host.listen(0, '127.0.0.1', r))
  const hostPort = `127.0.0.1:${(host.address() as AddressInfo).port}`
  return { url: `http://${hostPort}/v/${hex32()}_0_0.png`, hostPort, requests: () => n }
}
const png = (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'image/png' }).end(PNG)
const fail = (res: import('node:http').ServerResponse) => res.writeHead(500).end('oops')

async function appWith(archive: object, extra: object = {}) {
  dir = tempDir()
  t = await buildTestApp({ clock: systemClock, workers: true, archive: { dir: join(dir, 'results'), retryBaseMs: 20, retryCapMs: 50, ...archive }, ...extra })
  await t.app.ready()
  return t
}
async function succeed(resultUrl: string) {
  const task = (await t!.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0 } })).json()
  const cb = await t!.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(task.id)}`, payload: successCallback(task.kieTaskId, [resultUrl]) })
  expect(cb.statusCode).toBe(200)
  return task.id as string
}
const view = async (id: string) => (await t!.app.inject({ url: `/upscale/${id}`, headers: auth() })).json()
const settled = (id: string) => until(`archive of ${id}`, async () => ((await view(id)).archive?.status !== 'pending' ? view(id) : undefined))

describe('result archive', () => {
  it("archives the simulator's real PNG and serves it byte-identical, with ETag and 304", async () => {
    sim = await startSim()
    await appWith({ hosts: [new URL(sim.url).host] }, {})
    t!.app.services.kie.downloadUrl = createKieClient({ baseUrl: sim.url, apiKey: SIM_KEY, timeoutMs: 2000 }).downloadUrl
    const fileUrl = sim.sim.tasks.get(sim.sim.createParentTask())!.resultUrls[0]!
    const original = await fetch(fileUrl)
    expect(original.status).toBe(200)
    const bytes = Buffer.from(await original.arrayBuffer())
    const id = await succeed(fileUrl)
    const done = await settled(id)
    expect(done.archive).toMatchObject({ status: 'stored', bytes: bytes.length, sha256: sha(bytes), contentType: 'image/png', url: `/upscale/${id}/result`, error: null })

    const res = await t!.app.inject({ url: `/upscale/${id}/result`, headers: auth() })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('image/png')
    expect(res.headers['content-length']).toBe(String(bytes.length))
    expect(res.rawPayload.equals(bytes)).toBe(true)
    expect(sha(res.rawPayload)).toBe(done.archive.sha256)
    expect(res.headers.etag).toBe(`"${done.archive.sha256}"`)
    const again = await t!.app.inject({ url: `/upscale/${id}/result`, headers: { ...auth(), 'if-none-match': res.headers.etag as string } })
    expect(again.statusCode).toBe(304)
    expect(again.rawPayload.length).toBe(0)
    const { KEY_B } = await import('./helper.js')
    expect((await t!.app.inject({ url: `/upscale/${id}/result`, headers: auth(KEY_B) })).statusCode).toBe(404)
  })

  it('retries a result host that fails twice, then stores the file', async () => {
    const h = await resultHost([fail, fail, png])
    await appWith({ hosts: [h.hostPort] })
    const id = await succeed(h.url)
    const done = await settled(id)
    expect(done.archive).toMatchObject({ status: 'stored', sha256: sha(PNG) })
    expect(h.requests()).toBe(3)
    expect(t!.repo.resultFiles(id)[0]).toMatchObject({ attempts: 3, status: 'stored' })
  })

  it("falls back to kie.ai's download-url when the direct download fails", async () => {
    sim = await startSim()
    sim.sim.failFileDownloads = 1000
    await appWith({ hosts: [new URL(sim.url).host] })
    t!.app.services.kie.downloadUrl = createKieClient({ baseUrl: sim.url, apiKey: SIM_KEY, timeoutMs: 2000 }).downloadUrl
    const id = await succeed(sim.sim.tasks.get(sim.sim.createParentTask())!.resultUrls[0]!)
    expect((await settled(id)).archive.status).toBe('stored')
    expect(sim.sim.fileRequests.map((r) => r.path.split('/')[1])).toEqual(['files', 'direct'])
  })

  it('refuses a file that is not an image, whatever its Content-Type says, and keeps no file', async () => {
    const h = await resultHost([(res) => res.writeHead(200, { 'content-type': 'image/png' }).end('<html>not an image</html>')])
    await appWith({ hosts: [h.hostPort] })
    const id = await succeed(h.url)
    const done = await settled(id)
    expect(done.archive).toMatchObject({ status: 'failed', url: null, error: expect.stringContaining('not an image') })
    expect(readdirSync(join(dir, 'results'))).toEqual([])
    expect((await t!.app.inject({ url: `/upscale/${id}/result`, headers: auth() })).statusCode).toBe(410)
  })

  it('refuses a file over RESULT_MAX_BYTES', async () => {
    const h = await resultHost([(res) => res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.concat([PNG, Buffer.alloc(4096)]))])
    await appWith({ hosts: [h.hostPort], maxBytes: 1024 })
    const done = await settled(await succeed(h.url))
    expect(done.archive).toMatchObject({ status: 'failed', error: expect.stringContaining('RESULT_MAX_BYTES') })
    expect(readdirSync(join(dir, 'results'))).toEqual([])
  })

  it('downloads only from RESULT_HOSTS, never from an address a client chose', async () => {
    const h = await resultHost([png])
    await appWith({ hosts: ['tempfile.aiquickdraw.com'] })
    const done = await settled(await succeed(h.url))
    expect(done.archive).toMatchObject({ status: 'failed', error: expect.stringContaining('RESULT_HOSTS') })
    expect(h.requests()).toBe(0)
  })

  it('after a crash mid-download leaves no partial file and resumes the work', async () => {
    const h = await resultHost([png])
    dir = tempDir()
    const results = join(dir, 'results')
    const dbPath = join(dir, 'gw.db')
    t = await buildTestApp({ clock: systemClock, dbPath, archive: { dir: results, hosts: [h.hostPort] } })
    const id = await succeed(h.url)
    // The state a kill -9 mid-download leaves: a leased row and a partial temporary file.
    t.repo.claimResultFiles(Date.now(), 5 * 60_000, 10)
    await t.close()
    const { mkdirSync } = await import('node:fs')
    mkdirSync(results, { recursive: true })
    writeFileSync(join(results, '.tmp-crashed'), PNG.subarray(0, 10))

    t = await buildTestApp({ clock: systemClock, db: openDatabase(dbPath), workers: true, archive: { dir: results, hosts: [h.hostPort] } })
    await t.app.ready()
    expect(existsSync(join(results, '.tmp-crashed'))).toBe(false)
    const done = await settled(id)
    expect(done.archive.status).toBe('stored')
    expect(readdirSync(results).filter((f) => f.startsWith('.tmp-'))).toEqual([])
    const stored = t.repo.resultFiles(id)[0]!
    expect(readFileSync(stored.path!).equals(PNG)).toBe(true)
  })

  it('sends the success webhook only once the archive is stored, so its link works', async () => {
    const h = await resultHost([fail, fail, png])
    const received: string[] = []
    const receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => (received.push(body), res.writeHead(200).end()))
    })
    onCleanup(() => closeServer(receiver))
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    await appWith({ hosts: [h.hostPort] }, { webhooks: { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', allowHosts: ['127.0.0.1'] } })
    const task = (await t!.app.inject({
      method: 'POST',
      url: '/upscale',
      headers: auth(),
      payload: { taskId: hex32(), imageIndex: 0, callbackUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` }
    })).json()
    await t!.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(task.id)}`, payload: successCallback(task.kieTaskId, [h.url]) })
    await until('the webhook', () => received.length === 1)
    const event = JSON.parse(received[0]!)
    expect(event).toMatchObject({ type: 'upscale.succeeded', data: { archive: { status: 'stored', url: `/upscale/${task.id}/result` } } })
    expect(h.requests()).toBe(3)
  })

  it('prunes files after the TTL and says so on the task', async () => {
    const h = await resultHost([png])
    await appWith({ hosts: [h.hostPort], ttlMs: 200 })
    const id = await succeed(h.url)
    const stored = await settled(id)
    expect(stored.archive.status).toBe('stored')
    const path = t!.repo.resultFiles(id)[0]!.path!
    const pruned = await until('pruned', async () => ((await view(id)).archive.status === 'pruned' ? view(id) : undefined))
    expect(pruned.archive).toMatchObject({ status: 'pruned', url: null, error: expect.stringContaining('RESULTS_TTL_DAYS') })
    expect(existsSync(path)).toBe(false)
    expect((await t!.app.inject({ url: `/upscale/${id}/result`, headers: auth() })).statusCode).toBe(410)
  })
})
