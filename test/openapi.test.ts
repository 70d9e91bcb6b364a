import { FormatRegistry, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { beforeAll, describe, expect, it } from 'vitest'
import { ErrorResponseSchema } from '../src/errors.js'
import { DeliveryListSchema, DeliverySchema } from '../src/routes/deliveries.js'
import { TaskListSchema, TaskSchema } from '../src/tasks/schemas.js'
import { buildTestApp } from './helper.js'

FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)))

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx
let doc: { openapi: string; paths: Record<string, Record<string, { summary?: string; responses: Record<string, unknown>; requestBody?: unknown }>> }
beforeAll(async () => {
  // With an admin key, so the admin API's schemas are held to the same rules.
  t = await buildTestApp({ adminKeys: ['ops:admin-key-0123456789abcdef'] })
  const res = await t.app.inject({ url: '/openapi.json' })
  expect(res.statusCode).toBe(200)
  doc = res.json()
})

interface RouteSchema {
  hide?: boolean
  summary?: string
  body?: TSchema
  querystring?: TSchema
  params?: TSchema
  response?: Record<string, TSchema>
}
const documented = () =>
  t.app.routeCatalog
    .filter((r) => !(r.schema as RouteSchema | undefined)?.hide && r.method !== 'HEAD' && !r.url.startsWith('/docs'))
    .flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).map((m) => ({ method: m.toLowerCase(), url: r.url, schema: (r.schema ?? {}) as RouteSchema })))
const SHARED: TSchema[] = [ErrorResponseSchema, TaskSchema, TaskListSchema, DeliverySchema, DeliveryListSchema]
const resolve = (s: TSchema): TSchema => SHARED.find((shared) => shared.$id === s.$ref) ?? s

describe('OpenAPI document', () => {
  it('is served at /openapi.json and browsable at /docs', async () => {
    expect(doc.openapi).toMatch(/^3\./)
    const page = await t.app.inject({ url: '/docs/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toContain('text/html')
  })

  it('documents every route with a summary and its request and response schemas', () => {
    const routes = documented()
    expect(routes.length).toBeGreaterThanOrEqual(8)
    for (const r of routes) {
      const path = r.url.replace(/:(\w+)/g, '{$1}')
      const op = doc.paths[path]?.[r.method]
      expect(op, `${r.method.toUpperCase()} ${r.url} is not in the document`).toBeDefined()
      expect(op?.summary, `${r.method.toUpperCase()} ${r.url} has no summary`).toBeTruthy()
      expect(r.schema.response, `${r.url} has no response schemas`).toBeDefined()
      // Actions on a task (retry its deliveries, reconcile it) take no body.
      if (r.method === 'post') expect(op?.requestBody ?? /\/(deliveries\/retry|reconcile)$/.test(r.url), `${r.url} has no request body`).toBeTruthy()
      // Every route that can refuse documents the error shape.
      const statuses = Object.keys(r.schema.response ?? {})
      if (r.url !== '/healthz') expect(statuses.some((s) => Number(s) >= 400), `${r.url} documents no error`).toBe(true)
    }
  })

  it('has an example for every schema, and every example validates against its own schema', () => {
    let checked = 0
    for (const r of documented()) {
      const parts = [r.schema.body, r.schema.querystring, r.schema.params, ...Object.values(r.schema.response ?? {})]
      for (const part of parts) {
        if (!part) continue
        const schema = resolve(part)
        const examples = (schema as { examples?: unknown[] }).examples
        expect(examples?.length, `${r.method} ${r.url}: a schema without an example`).toBeGreaterThan(0)
        // Binary bodies (the archived image) are documented, not JSON-validated.
        if ((schema as { format?: string }).format === 'binary') continue
        for (const example of examples ?? []) {
          const errors = [...Value.Errors(schema, SHARED, example)].map((e) => `${e.path} ${e.message}`)
          expect(errors, `${r.method} ${r.url}: example does not validate`).toEqual([])
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThan(15)
  })
})
