import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { finishDocument } from '../openapi-document.js'

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
  async function openapi(app: FastifyInstance, opts: { version: string; publicBaseUrl?: string | undefined; admin?: boolean }) {
    const catalog: RouteOptions[] = []
    app.decorate('routeCatalog', catalog)
    app.addHook('onRoute', (route) => {
      catalog.push(route)
    })
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'kie.ai Midjourney gateway',
          version: opts.version,
          license: { name: 'MIT', identifier: 'MIT' },
          description:
            "Midjourney image work through kie.ai, durably: generate grids, vary them, upscale their images; paced under kie.ai's rate limit, retried, reconciled, never sent twice. Errors share one shape: { statusCode, error, code, message }."
        },
        servers: [{ url: opts.publicBaseUrl ?? '/', description: 'This gateway' }],
        // Every operation needs a client key unless it says otherwise (security: []).
        security: [{ bearer: [] }],
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS' },
            metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when it is set' },
            // Only when the admin API exists (ADMIN_API_KEYS, or a sandbox key).
            ...(opts.admin ? { admin: { type: 'http', scheme: 'bearer', description: 'One of ADMIN_API_KEYS (not a client key)' } } : {})
          }
        },
        tags: [
          { name: 'upscale', description: 'Client API: upscale tasks (as before other kinds existed)' },
          { name: 'tasks', description: 'Client API: every kind of task (generate, vary, upscale)' },
          { name: 'kie.ai', description: 'Called by kie.ai' },
          { name: 'operations', description: 'Health and metrics' },
          ...(opts.admin ? [{ name: 'admin', description: "Operator API behind the console (ADMIN_API_KEYS): every client's tasks, callbacks, deliveries and files" }] : []),
          { name: 'webhooks', description: "Sent by the gateway to a task's callbackUrl" }
        ]
      },
      // Shared schemas keep their $id as their component name.
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      transformObject: (documentObject) => finishDocument((documentObject as { openapiObject: Record<string, unknown> }).openapiObject) as never
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
    app.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger())
  },
  { name: 'openapi', fastify: '5.x', dependencies: [] }
)
