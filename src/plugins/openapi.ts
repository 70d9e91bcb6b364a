import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered, so a test can hold the document to them. */
    routeCatalog: RouteOptions[]
  }
}

/**
 * The OpenAPI 3 document, generated from the TypeBox schemas the routes validate with,
 * at /openapi.json, and a browsable page at /docs. Registered before the routes.
 */
export default fp(
  async function openapi(app: FastifyInstance, opts: { version: string }) {
    const catalog: RouteOptions[] = []
    app.decorate('routeCatalog', catalog)
    app.addHook('onRoute', (route) => {
      catalog.push(route)
    })
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'kie.ai Midjourney upscale gateway',
          version: opts.version,
          description:
            "Submit upscales of Midjourney grid images to kie.ai, durably: paced under kie.ai's rate limit, retried, reconciled, never sent twice. Errors share one shape: { statusCode, error, code, message }."
        },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS' } } },
        tags: [
          { name: 'upscale', description: 'Client API: upscale tasks (as before other kinds existed)' },
          { name: 'tasks', description: 'Client API: every kind of task (generate, vary, upscale)' },
          { name: 'kie.ai', description: 'Called by kie.ai' },
          { name: 'operations', description: 'Health and metrics' }
        ]
      },
      // Shared schemas keep their $id as their component name.
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) }
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
    app.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger())
  },
  { name: 'openapi', fastify: '5.x', dependencies: [] }
)
