// The yardstick: a straightforward status route with the gateway's production duties
// (key check, per-key rate limit, one log line per request, security headers, a point read
// scoped to its key, a response schema), on the gateway's own database. Not the gateway: a
// measure of what such a route costs here. Env: DB (the database), LOG (the log file).
import Fastify from 'fastify'
import rateLimit from '@fastify/rate-limit'
import Database from 'better-sqlite3'
import pino from 'pino'
import type { AddressInfo } from 'node:net'

const db = new Database(process.env.DB as string, { readonly: true })
const read = db.prepare('SELECT * FROM tasks WHERE id = ? AND owner = ?')
const key = process.env.KEY as string
const owner = process.env.OWNER as string
const app = Fastify({ loggerInstance: pino(pino.destination({ dest: process.env.LOG as string, sync: false })), disableRequestLogging: true })
await app.register(rateLimit, { max: 999_999_999, timeWindow: 60_000, hook: 'preHandler', keyGenerator: (r) => r.headers.authorization ?? r.ip })
app.addHook('onRequest', async (request, reply) => {
  if (request.headers.authorization !== `Bearer ${key}`) return reply.code(401).send({ error: 'unauthorized' })
})
app.addHook('onSend', async (_request, reply) => {
  reply.headers({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
})
app.addHook('onResponse', async (request, reply) => {
  request.log.info({ method: request.method, url: request.url, statusCode: reply.statusCode, durationMs: reply.elapsedTime }, 'request')
})
const nullable = (type: string) => ({ type: [type, 'null'] })
app.get('/upscale/:id', {
  schema: {
    response: {
      200: {
        type: 'object',
        properties: {
          id: { type: 'string' }, status: { type: 'string' }, taskId: nullable('string'), imageIndex: nullable('integer'),
          kieTaskId: nullable('string'), resultUrls: { type: ['array', 'null'], items: { type: 'string' } },
          createdAt: { type: 'string' }, updatedAt: { type: 'string' }, completedAt: nullable('string')
        }
      }
    }
  }
}, async (request) => {
  const row = read.get((request.params as { id: string }).id, owner) as Record<string, unknown> | undefined
  if (!row) throw Object.assign(new Error('not found'), { statusCode: 404 })
  const iso = (v: unknown) => (v === null ? null : new Date(v as number).toISOString())
  return {
    id: row.id, status: row.status, taskId: row.parent_task_id, imageIndex: row.image_index, kieTaskId: row.kie_task_id,
    resultUrls: row.result_urls === null ? null : JSON.parse(row.result_urls as string),
    createdAt: iso(row.created_at), updatedAt: iso(row.updated_at), completedAt: iso(row.completed_at)
  }
})
await app.listen({ host: '127.0.0.1', port: 0 })
process.send?.({ type: 'ready', port: (app.server.address() as AddressInfo).port })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
