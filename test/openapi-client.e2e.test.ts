// Issue 15: the served OpenAPI document as a calling service uses it. A typed client is
// generated from /openapi.json at test time (openapi-typescript) and type-checked against
// openapi-fetch; then every operation is driven through openapi-fetch against the gateway and
// the simulator over loopback, and each answer is held to the document: its status must be
// documented for that operation, its content type too, its body must validate (Ajv, JSON
// Schema 2020-12) against the schema declared for both, and every header the gateway sets must
// be declared on that response. An operation left undriven, or a status or header sent but not
// documented, fails here.
import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import formats from 'ajv-formats'
import createClient from 'openapi-fetch'
import openapiTS, { astToString } from 'openapi-typescript'
import { describe, expect, it } from 'vitest'
import { callbackToken } from '../src/kie/callback-token.js'
import { signKieCallback } from '../src/kie/signature.js'
import { CALLBACK_SECRET, KEY_A, closeServer, onCleanup } from './helper.js'
import { HMAC_KEY, tempDir, until } from './e2e-helper.js'
import { setup } from './resilience-helper.js'

type Json = Record<string, unknown>
interface Response3 { description: string; headers?: Json; content?: Record<string, { schema?: unknown }> }
interface Operation { operationId: string; responses: Record<string, Response3> }
interface Doc { openapi: string; paths: Record<string, Record<string, Operation>>; components: Json; webhooks: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }> }

// ajv-formats is CommonJS: its function is the default export's default under NodeNext.
const addFormats = (formats as unknown as { default: typeof formats.default }).default
type Init = Json & { parseAs?: string }
type Call = (path: string, init?: Init) => Promise<{ data?: unknown; error?: unknown; response: Response }>
type Loose = { GET: Call; POST: Call }
const REPO = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)
const ADMIN_KEY = 'admin-key-openapi-e2e-0123456789'
// Headers the gateway sets itself: each one sent must be documented on that response.
const OWN_HEADERS = ['x-request-id', 'location', 'retry-after', 'idempotent-replayed', 'etag', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

async function fetchDoc(url: string): Promise<Doc> {
  const res = await fetch(`${url}/openapi.json`)
  expect(res.status).toBe(200)
  return (await res.json()) as Doc
}

/** Holds each answer to the document; remembers which operations were driven and how. */
function contract(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats(ajv)
  ajv.addSchema({ $id: 'api', components: doc.components })
  const toApi = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"api#/components/'))
  const seen = new Map<string, Set<number>>()
  const opOf = (method: string, template: string) => {
    const op = doc.paths[template]?.[method]
    expect(op, `${method.toUpperCase()} ${template} is not in the document`).toBeDefined()
    return op as Operation
  }
  return {
    seen,
    /** `body` is what openapi-fetch parsed (JSON) or the raw text/bytes. */
    check(method: string, template: string, response: Response, body: unknown) {
      const op = opOf(method, template)
      const where = `${op.operationId} answered ${response.status}`
      const declared = op.responses[String(response.status)]
      expect(declared, `${where}, which the document does not list (${Object.keys(op.responses).join(', ')})`).toBeDefined()
      const d = declared as Response3
      const type = response.headers.get('content-type')?.split(';')[0]?.trim()
      if (d.content === undefined) expect(type, `${where} with a body the document does not declare`).toBeUndefined()
      else {
        const media = d.content[type ?? '']
        expect(media, `${where} as ${type}, not one of ${Object.keys(d.content).join(', ')}`).toBeDefined()
        if (type === 'application/json') {
          const validate = ajv.compile(toApi(media?.schema) as object)
          expect(validate(body), `${where}: ${JSON.stringify(validate.errors)} for ${JSON.stringify(body).slice(0, 400)}`).toBe(true)
        }
      }
      const documented = Object.keys(d.headers ?? {}).map((h) => h.toLowerCase())
      for (const h of OWN_HEADERS) if (response.headers.has(h)) expect(documented, `${where} with header ${h}, not documented there`).toContain(h)
      const statuses = seen.get(op.operationId) ?? new Set<number>()
      statuses.add(response.status)
      seen.set(op.operationId, statuses)
    },
    validateWebhook(type: string, body: unknown) {
      const schema = doc.webhooks[type]?.post.requestBody.content['application/json']?.schema
      expect(schema, `webhook ${type} is not in the document`).toBeDefined()
      const validate = ajv.compile(toApi(schema) as object)
      expect(validate(body), `webhook ${type}: ${JSON.stringify(validate.errors)}`).toBe(true)
    }
  }
}

/** A client's webhook receiver that answers 410 (so its delivery is dead-lettered at once). */
async function goneReceiver() {
  const events: Array<{ headers: Json; body: unknown }> = []
  const server = createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => (raw += c.toString()))
    req.on('end', () => {
      events.push({ headers: req.headers, body: JSON.parse(raw) })
      res.writeHead(410).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  onCleanup(() => closeServer(server))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events }
}

describe('the served OpenAPI document, through a client generated from it', () => {
  it('generates types with openapi-typescript that compile against openapi-fetch', async () => {
    const t = await setup()
    const doc = await fetchDoc(t.gw.url)
    const dir = join(tempDir(), 'client')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'api.d.ts'), astToString(await openapiTS(doc as never)))
    // A calling service's code: typed paths, parameters and bodies; a wrong one would not compile.
    writeFileSync(join(dir, 'client.ts'), [
      "import createClient from 'openapi-fetch'",
      "import type { paths, components } from './api.js'",
      "const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:1', headers: { authorization: 'Bearer k' } })",
      'export async function use(): Promise<components["schemas"]["Task"] | undefined> {',
      "  const made = await client.POST('/upscale', { body: { taskId: 'abc', imageIndex: 1 }, headers: { 'idempotency-key': 'k1' } })",
      '  if (made.error) return undefined',
      "  const read = await client.GET('/tasks/{id}', { params: { path: { id: made.data.id }, query: { wait: 30 } } })",
      "  await client.GET('/tasks', { params: { query: { status: 'succeeded', limit: 20 } } })",
      "  await client.POST('/generate', { body: { taskType: 'mj_txt2img', prompt: 'a lighthouse' } })",
      "  await client.GET('/tasks/{id}/result', { params: { path: { id: made.data.id }, query: { index: 0 } }, parseAs: 'arrayBuffer' })",
      '  return read.data',
      '}'
    ].join('\n'))
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true, lib: ['es2022', 'dom'],
        baseUrl: '.', paths: { 'openapi-fetch': [join(REPO, 'node_modules/openapi-fetch')] }
      },
      files: ['client.ts']
    }))
    const tsc = join(REPO, 'node_modules/typescript/bin/tsc')
    const out = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')]).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
    expect(out).toBe('')
  }, 60_000)

  it('drives every operation; each answer is documented for its status, content type, body and headers', async () => {
    const hook = await goneReceiver()
    const t = await setup({
      app: (simUrl, dir) => ({
        archive: { dir: `${dir}/results`, hosts: [new URL(simUrl).host] },
        webhooks: { secret: 'whsec-openapi-e2e-0123456789abcdef', allowLoopback: true, scheduleMs: [] },
        metricsToken: 'metrics-token-0123456789',
        adminKeys: [`ops:${ADMIN_KEY}`]
      })
    })
    const doc = await fetchDoc(t.gw.url)
    const c = contract(doc)
    const client = createClient({ baseUrl: t.gw.url, headers: { authorization: `Bearer ${KEY_A}` } }) as unknown as Loose
    const anonymous = createClient({ baseUrl: t.gw.url }) as unknown as Loose
    const admin = createClient({ baseUrl: t.gw.url, headers: { authorization: `Bearer ${ADMIN_KEY}` } }) as unknown as Loose
    const call = async (cl: Loose, method: 'GET' | 'POST', template: string, init: Init = {}) => {
      const r = await cl[method](template, init)
      c.check(method.toLowerCase(), template, r.response, r.data ?? r.error)
      return r
    }

    // Operations.
    await call(anonymous, 'GET', '/healthz')
    await call(anonymous, 'GET', '/readyz')
    await call(anonymous, 'GET', '/metrics', { headers: { authorization: 'Bearer metrics-token-0123456789' }, parseAs: 'text' })
    await call(anonymous, 'GET', '/metrics', { parseAs: 'text' })

    // Submissions, with their refusals.
    const parent = t.sim.createParentTask()
    const body = { taskId: parent, imageIndex: 1, callbackUrl: hook.url }
    const up = await call(client, 'POST', '/upscale', { body, headers: { 'idempotency-key': 'openapi-e2e-1' } })
    const upscale = up.data as { id: string; kieTaskId: string }
    await call(client, 'POST', '/upscale', { body, headers: { 'idempotency-key': 'openapi-e2e-1' } })
    await call(client, 'POST', '/upscale', { body: { ...body, imageIndex: 2 }, headers: { 'idempotency-key': 'openapi-e2e-1' } })
    await call(client, 'POST', '/upscale', { body: { taskId: parent, imageIndex: 9 } })
    await call(anonymous, 'POST', '/upscale', { body })
    await call(client, 'POST', '/upscale', { body: 'x'.repeat(9000), bodySerializer: (b: unknown) => JSON.stringify({ taskId: parent, imageIndex: 0, waterMark: b }) })
    await call(client, 'POST', '/upscale', { body: 'taskId=x', bodySerializer: (b: unknown) => b, headers: { 'content-type': 'text/plain' } })
    const grid = await call(client, 'POST', '/generate', { body: { taskType: 'mj_txt2img', prompt: 'a lighthouse at dawn', speed: 'fast' } })
    await call(client, 'POST', '/generate', { body: { prompt: 'no type' } })
    await call(client, 'POST', '/vary', { body: { taskId: t.sim.createParentTask(), imageIndex: 0 } })
    await call(client, 'POST', '/vary', { body: { parentId: upscale.id, imageIndex: 0 } })

    // Reads.
    const gridId = (grid.data as { id: string }).id
    await until('both tasks final', () => ['succeeded', 'failed'].includes(t.row(upscale.id).status) && ['succeeded', 'failed'].includes(t.row(gridId).status))
    await call(client, 'GET', '/upscale/{id}', { params: { path: { id: upscale.id } } })
    await call(client, 'GET', '/upscale/{id}', { params: { path: { id: 'no-such-task' } } })
    await call(client, 'GET', '/upscale/{id}', { params: { path: { id: 'x'.repeat(120) } } })
    await call(client, 'GET', '/tasks/{id}', { params: { path: { id: gridId }, query: { wait: 1 } } })
    await call(client, 'GET', '/tasks/{id}', { params: { path: { id: gridId } }, querySerializer: () => 'wait=1.5' })
    await call(anonymous, 'GET', '/tasks/{id}', { params: { path: { id: gridId } } })
    await call(client, 'GET', '/upscale', { params: { query: { limit: 5 } } })
    await call(client, 'GET', '/tasks', { params: { query: { type: 'generate', status: 'succeeded', limit: 5 } } })
    await call(client, 'GET', '/tasks', { params: { query: {} }, querySerializer: () => 'status=done' })

    // The archive.
    await until('archived', () => t.gw.repo.resultFiles(upscale.id).some((f) => f.status === 'stored') && t.gw.repo.resultFiles(gridId).length === 4 && t.gw.repo.resultFiles(gridId).every((f) => f.status === 'stored'))
    const image = await call(client, 'GET', '/upscale/{id}/result', { params: { path: { id: upscale.id } }, parseAs: 'arrayBuffer' })
    expect(Buffer.from(image.data as ArrayBuffer).subarray(1, 4).toString()).toBe('PNG')
    await call(client, 'GET', '/upscale/{id}/result', { params: { path: { id: upscale.id } }, headers: { 'if-none-match': image.response.headers.get('etag') }, parseAs: 'arrayBuffer' })
    await call(client, 'GET', '/tasks/{id}/result', { params: { path: { id: gridId }, query: { index: 3 } }, parseAs: 'arrayBuffer' })
    await call(client, 'GET', '/tasks/{id}/result', { params: { path: { id: 'no-such-task' } }, parseAs: 'arrayBuffer' })

    // Webhooks: the receiver answers 410, so the delivery is dead at once; retried, it dies again.
    await until('the webhook dead-lettered', () => t.gw.repo.webhookDeliveries(upscale.id).some((d) => d.state === 'dead'))
    expect(hook.events.length).toBeGreaterThan(0)
    for (const e of hook.events) c.validateWebhook((e.body as { type: string }).type, e.body)
    await call(client, 'GET', '/upscale/{id}/deliveries', { params: { path: { id: upscale.id } } })
    await call(client, 'GET', '/tasks/{id}/deliveries', { params: { path: { id: upscale.id } } })
    await call(client, 'POST', '/upscale/{id}/deliveries/retry', { params: { path: { id: upscale.id } } })
    await until('dead again', () => t.gw.repo.webhookDeliveries(upscale.id).every((d) => d.state === 'dead'))
    await call(client, 'POST', '/tasks/{id}/deliveries/retry', { params: { path: { id: upscale.id } } })
    await call(client, 'POST', '/tasks/{id}/deliveries/retry', { params: { path: { id: gridId } } })

    // The admin API: every client's tasks, a task's whole story, its files and thumbnails, and the actions.
    await call(admin, 'GET', '/admin/overview')
    await call(client, 'GET', '/admin/overview')
    await call(admin, 'GET', '/admin/tasks', { params: { query: { status: 'succeeded', type: 'upscale', limit: 5 } } })
    await call(admin, 'GET', '/admin/tasks', { params: { query: { q: upscale.kieTaskId, client: 'name:nobody' } } })
    await call(admin, 'GET', '/admin/tasks', { params: { query: {} }, querySerializer: () => 'limit=0' })
    await call(admin, 'GET', '/admin/tasks/{id}', { params: { path: { id: gridId } } })
    await call(admin, 'GET', '/admin/tasks/{id}', { params: { path: { id: upscale.id } } })
    await call(admin, 'GET', '/admin/tasks/{id}', { params: { path: { id: 'no-such-task' } } })
    const file = await call(admin, 'GET', '/admin/tasks/{id}/files/{index}', { params: { path: { id: gridId, index: 2 } }, parseAs: 'arrayBuffer' })
    expect(Buffer.from(file.data as ArrayBuffer).subarray(1, 4).toString()).toBe('PNG')
    await call(admin, 'GET', '/admin/tasks/{id}/files/{index}', { params: { path: { id: gridId, index: 2 } }, headers: { 'if-none-match': file.response.headers.get('etag') }, parseAs: 'arrayBuffer' })
    await call(admin, 'GET', '/admin/tasks/{id}/files/{index}', { params: { path: { id: gridId, index: 9 } }, parseAs: 'arrayBuffer' })
    const thumb = await call(admin, 'GET', '/admin/tasks/{id}/files/{index}/thumbnail', { params: { path: { id: gridId, index: 0 } }, parseAs: 'arrayBuffer' })
    expect(thumb.response.headers.get('content-type')).toBe('image/webp')
    await call(admin, 'GET', '/admin/tasks/{id}/files/{index}/thumbnail', { params: { path: { id: gridId, index: 0 } }, headers: { 'if-none-match': thumb.response.headers.get('etag') }, parseAs: 'arrayBuffer' })
    await call(admin, 'GET', '/admin/tasks/{id}/files/{index}/thumbnail', { params: { path: { id: 'no-such-task', index: 0 } }, parseAs: 'arrayBuffer' })
    await until('dead for the admin retry', () => t.gw.repo.webhookDeliveries(upscale.id).every((d) => d.state === 'dead'))
    await call(admin, 'POST', '/admin/tasks/{id}/deliveries/retry', { params: { path: { id: upscale.id } } })
    await until('dead once more', () => t.gw.repo.webhookDeliveries(upscale.id).every((d) => d.state === 'dead'))
    await call(admin, 'POST', '/admin/tasks/{id}/deliveries/retry', { params: { path: { id: gridId } } })
    await call(admin, 'POST', '/admin/tasks/{id}/reconcile', { params: { path: { id: upscale.id } } })

    // kie.ai's callback: a late one for a finished task (200, changes nothing) and a stranger's.
    const cb = { code: 200, msg: 'success', data: { taskId: upscale.kieTaskId, resultUrls: ['https://x/y.png'] } }
    const timestamp = String(Math.floor(Date.now() / 1000))
    const signed = { 'x-webhook-timestamp': timestamp, 'x-webhook-signature': signKieCallback(HMAC_KEY, upscale.kieTaskId, timestamp) }
    await call(anonymous, 'POST', '/callbacks/mj', { params: { query: { task: upscale.id, token: callbackToken(CALLBACK_SECRET, upscale.id) } }, body: cb, headers: signed })
    await call(anonymous, 'POST', '/callbacks/mj', { params: { query: { task: upscale.id, token: 'wrong' } }, body: cb })

    // The per-key rate limit, on a gateway that allows two requests a minute.
    const tight = await setup({ app: () => ({ clientRateLimit: { max: 2, windowMs: 60_000 } }) })
    const tightClient = createClient({ baseUrl: tight.gw.url, headers: { authorization: `Bearer ${KEY_A}` } }) as unknown as Loose
    for (let i = 0; i < 3; i++) await call(tightClient, 'GET', '/tasks', { params: { query: {} } })
    expect(c.seen.get('listTasks')).toContain(429)

    // Reconciling an open task, on a gateway whose simulator takes a minute to finish one.
    const slow = await setup({ sim: { completionDelayMs: 60_000 }, app: () => ({ adminKeys: [`ops:${ADMIN_KEY}`] }) })
    const slowAdmin = createClient({ baseUrl: slow.gw.url, headers: { authorization: `Bearer ${ADMIN_KEY}` } }) as unknown as Loose
    const open = await slow.submit()
    expect(open.body).toMatchObject({ status: 'submitted', kieTaskId: expect.any(String) })
    const reconciled = await call(slowAdmin, 'POST', '/admin/tasks/{id}/reconcile', { params: { path: { id: (open.body as { id: string }).id } } })
    expect(reconciled.response.status).toBe(202)
    expect(c.seen.get('reconcileAdminTask')).toEqual(new Set([409, 202]))

    // Every operation in the document was driven.
    const all = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId))
    expect([...c.seen.keys()].sort()).toEqual([...all].sort())
  }, 60_000)
})
