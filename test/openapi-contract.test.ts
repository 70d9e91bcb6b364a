// Issue 15: the served document passes a third-party validator (Redocly's recommended rules)
// with no errors, and says what generated clients rely on: unique operation ids, explicit
// security, enums for codes and states, shared schemas by $ref, the webhooks.
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../src/errors.js'
import { buildTestApp } from './helper.js'

type Json = Record<string, unknown>
interface Operation { operationId?: string; summary?: string; tags?: string[]; security?: unknown[]; responses: Record<string, Json & { headers?: Json; content?: Json }> }
let doc: Json & { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Json> }; webhooks?: Json }
let raw: string

beforeAll(async () => {
  // With an admin key: the admin API is linted too.
  const t = await buildTestApp({ publicBaseUrl: 'https://gw.acme.test', adminKeys: ['ops:admin-key-0123456789abcdef'] })
  const res = await t.app.inject({ url: '/openapi.json' })
  raw = res.body
  doc = res.json()
})

const operations = () => Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })))

describe('the served OpenAPI document', () => {
  it('has no errors under Redocly\'s recommended rules', async () => {
    const config = await createConfig({ extends: ['recommended'] })
    const problems = await lintFromString({ source: raw, absoluteRef: 'openapi.json', config })
    const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)
    expect(errors).toEqual([])
  }, 30_000)

  it('is OpenAPI 3.1 with servers, a license and bearer security by default', () => {
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.servers).toEqual([expect.objectContaining({ url: 'https://gw.acme.test' })])
    expect(doc.info).toMatchObject({ license: { name: 'MIT' } })
    expect(doc.security).toEqual([{ bearer: [] }])
  })

  it('gives every operation a unique operationId, a summary and tags; the routes without a client key say so', () => {
    const ids = operations().map(({ op }) => op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const { path, method, op } of operations()) {
      expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/)
      expect(op.summary, `${method} ${path}`).toBeTruthy()
      expect(op.tags?.length, `${method} ${path}`).toBeGreaterThan(0)
    }
    for (const path of ['/healthz', '/readyz']) expect(doc.paths[path]?.get?.security).toEqual([])
    expect(doc.paths['/callbacks/mj']?.post?.security).toEqual([])
    expect(doc.paths['/metrics']?.get?.security).toEqual([{ metricsToken: [] }, {}])
  })

  it('documents the statuses any request can get, with X-Request-Id and the rate-limit headers', () => {
    for (const { path, method, op } of operations()) {
      const statuses = Object.keys(op.responses)
      for (const s of ['400', '408', '431', '500', '503']) expect(statuses, `${method} ${path}`).toContain(s)
      for (const r of Object.values(op.responses)) expect(Object.keys(r.headers ?? {}), `${method} ${path}`).toContain('X-Request-Id')
      if (op.security === undefined) {
        for (const s of ['401', '429']) expect(statuses, `${method} ${path}`).toContain(s)
        expect(Object.keys(op.responses[429]?.headers ?? {})).toEqual(expect.arrayContaining(['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']))
      }
      if (path.includes('{id}')) for (const s of ['404', '414']) expect(statuses, `${method} ${path}`).toContain(s)
    }
    for (const path of ['/upscale', '/generate', '/vary']) {
      const op = doc.paths[path]?.post as Operation
      for (const s of ['413', '415', '422']) expect(Object.keys(op.responses), path).toContain(s)
      expect(Object.keys(op.responses[202]?.headers ?? {})).toEqual(expect.arrayContaining(['Location', 'Idempotent-Replayed']))
    }
  })

  it('serves the archived image as image/*, metrics as text/plain, and the result with its ETag', () => {
    for (const path of ['/upscale/{id}/result', '/tasks/{id}/result']) {
      const op = doc.paths[path]?.get as Operation
      expect(Object.keys(op.responses[200]?.content ?? {})).toEqual(['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
      expect(op.responses[304]?.content).toBeUndefined()
      expect(Object.keys(op.responses[200]?.headers ?? {})).toContain('ETag')
    }
    expect(Object.keys(doc.paths['/metrics']?.get?.responses[200]?.content ?? {})).toEqual(['text/plain'])
  })

  it('has error codes, task states and archive states as enums, and shared schemas referenced, not copied', () => {
    const s = doc.components.schemas
    expect((s.ErrorResponse?.properties as Json).code).toMatchObject({ type: 'string', enum: [...ERROR_CODES] })
    const task = s.Task?.properties as Record<string, Json>
    expect(task.status).toMatchObject({ type: 'string', enum: ['queued', 'submitted', 'succeeded', 'failed'] })
    expect(task.error).toMatchObject({ type: ['object', 'null'] })
    expect(((task.error as { properties: Json }).properties.code as Json).enum).toEqual([...ERROR_CODES])
    const archive = task.archive as { properties: Record<string, Json & { items?: { properties: Record<string, Json> } }> }
    expect(archive.properties.status?.enum).toEqual(['pending', 'stored', 'failed', 'pruned'])
    expect(archive.properties.files?.items?.properties.status?.enum).toEqual(['pending', 'stored', 'failed', 'pruned'])
    // No anyOf of constants left anywhere: generated clients read enums.
    expect(raw).not.toMatch(/"anyOf":\[\{"const"/)
    for (const path of ['/upscale/{id}', '/tasks/{id}']) {
      expect(doc.paths[path]?.get?.responses[200]?.content).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/Task' } } })
    }
    expect(raw.match(/"title":"Task"/g)).toHaveLength(1)
  })

  it('puts the admin API under its own bearer scheme: 401 and the wrong-key 429, no per-key rate-limit headers', () => {
    const admin = operations().filter(({ path }) => path.startsWith('/admin/'))
    expect(admin.map(({ op }) => op.operationId).sort()).toEqual(
      ['getAdminOverview', 'listAdminTasks', 'getAdminTask', 'getAdminTaskFile', 'getAdminTaskThumbnail', 'retryAdminTaskDeliveries', 'reconcileAdminTask'].sort()
    )
    expect((doc.components as unknown as { securitySchemes: Json }).securitySchemes.admin).toMatchObject({ type: 'http', scheme: 'bearer' })
    for (const { path, method, op } of admin) {
      expect(op.security, `${method} ${path}`).toEqual([{ admin: [] }])
      expect(op.tags).toEqual(['admin'])
      expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['401', '429']))
      expect(Object.keys(op.responses[429]?.headers ?? {})).toContain('Retry-After')
      for (const r of Object.values(op.responses)) expect(Object.keys(r.headers ?? {}), `${method} ${path}`).not.toContain('X-RateLimit-Limit')
    }
    const thumbnail = doc.paths['/admin/tasks/{id}/files/{index}/thumbnail']?.get as Operation
    expect(Object.keys(thumbnail.responses[200]?.content ?? {})).toEqual(['image/webp'])
    expect(Object.keys(thumbnail.responses[200]?.headers ?? {})).toEqual(expect.arrayContaining(['ETag', 'Cache-Control']))
    expect(Object.keys(doc.paths['/admin/tasks/{id}/files/{index}']?.get?.responses[200]?.content ?? {})).toEqual(['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
    expect(doc.paths['/admin/tasks/{id}/reconcile']?.post?.responses[409]?.description).toContain('GW_TASK_NOT_OPEN')
  })

  it('describes the webhook events with their Standard Webhooks headers', () => {
    const types = ['generate', 'vary', 'upscale'].flatMap((t) => [`${t}.succeeded`, `${t}.failed`])
    expect(Object.keys(doc.webhooks ?? {}).sort()).toEqual(types.sort())
    const post = (doc.webhooks?.['upscale.succeeded'] as { post: { parameters: Array<{ name: string; in: string }> } }).post
    expect(post.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['header:webhook-id', 'header:webhook-timestamp', 'header:webhook-signature'])
    expect(doc.components.schemas.WebhookEvent).toMatchObject({ required: ['type', 'timestamp', 'data'] })
  })
})
