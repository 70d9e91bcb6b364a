import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema, UnauthorizedError } from '../errors.js'
import type { Services } from '../services.js'

const digest = (s: string) => createHash('sha256').update(s).digest()

const metricsRoutes: FastifyPluginAsyncTypebox<{ services: Services; token: string | null }> = async (app, { services, token }) => {
  const expected = token ? digest(`Bearer ${token}`) : null
  app.get('/metrics', {
    config: { rateLimit: false },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text format); needs METRICS_TOKEN as a bearer token when it is set',
      response: {
        200: Type.String({ examples: ['# HELP gateway_queue_depth Tasks waiting to be sent to kie.ai\n# TYPE gateway_queue_depth gauge\ngateway_queue_depth 0\n'] }),
        401: Type.Ref(ErrorResponseSchema)
      }
    }
  }, async (request, reply) => {
    if (expected && !timingSafeEqual(digest(request.headers.authorization ?? ''), expected)) {
      throw new UnauthorizedError('Metrics need Authorization: Bearer <METRICS_TOKEN>')
    }
    return reply.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics())
  })
}

export default metricsRoutes
