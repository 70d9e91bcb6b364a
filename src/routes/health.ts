import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema, NotReadyError } from '../errors.js'
import type { Repository } from '../db/repository.js'

const Status = Type.Object({ status: Type.Literal('ok') }, { examples: [{ status: 'ok' }] })

const healthRoutes: FastifyPluginAsyncTypebox<{ repo: Pick<Repository, 'appliedMigrations'>; expectedMigrations: number }> = async (app, opts) => {
  app.get('/healthz', { config: { rateLimit: false }, schema: { operationId: 'getHealth', tags: ['operations'], summary: 'The process is up', security: [], response: { 200: Status } } }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    config: { rateLimit: false },
    schema: { operationId: 'getReadiness', tags: ['operations'], summary: 'The database is open and migrated', security: [], response: { 200: Status, 503: Type.Ref(ErrorResponseSchema) } }
  }, async () => {
    let applied: number
    try {
      applied = opts.repo.appliedMigrations()
    } catch {
      throw new NotReadyError('Database is not open')
    }
    if (applied < opts.expectedMigrations) throw new NotReadyError('Database migrations are pending')
    return { status: 'ok' as const }
  })
}

export default healthRoutes
