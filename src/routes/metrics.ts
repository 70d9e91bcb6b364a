import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema, UnauthorizedError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { safeEqual } from '../safe-equal.js'

const metricsRoutes: FastifyPluginAsyncTypebox<{ metrics: Metrics; token: string | null }> = async (app, { metrics, token }) => {
  app.get('/metrics', {
    config: { rateLimit: false },
    schema: {
      operationId: 'getMetrics',
      tags: ['operations'],
      // No client key; METRICS_TOKEN when it is set.
      security: [{ metricsToken: [] }, {}],
      summary: 'Prometheus metrics (text format); needs METRICS_TOKEN as a bearer token when it is set',
      response: {
        200: Type.String({ examples: ['# HELP gateway_queue_depth Tasks waiting to be sent to kie.ai\n# TYPE gateway_queue_depth gauge\ngateway_queue_depth 0\n'] }),
        401: Type.Ref(ErrorResponseSchema)
      }
    }
  }, async (request, reply) => {
    if (token && !safeEqual(request.headers.authorization ?? '', `Bearer ${token}`)) {
      throw new UnauthorizedError('Metrics need Authorization: Bearer <METRICS_TOKEN>')
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

export default metricsRoutes
