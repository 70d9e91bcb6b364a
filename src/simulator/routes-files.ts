import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { renderPng } from './png.js'
import { DirectQuerySchema, ErrorEnvelopeSchema, FileParamsSchema, PngSchema } from './schemas.js'
import type { Simulator } from './state.js'

/**
 * Result files: real PNGs, so a client that downloads and inspects them gets an image. No auth,
 * like kie.ai's CDN. `sim.failFileDownloads` makes the next N downloads answer 500, and a file
 * answers 404 once `variants.fileRetentionMs` has passed since its task finished.
 * POST /api/v1/common/download-url hands out a temporary direct link to one of them, valid for
 * `variants.directLinkTtlMs` (the link carries its own expiry, like a signed URL).
 */
export const fileRoutes: FastifyPluginAsyncTypebox<{ sim: Simulator }> = async (app, { sim }) => {
  const cache = new Map<string, Buffer>()
  const png = (name: string) => {
    let bytes = cache.get(name)
    if (bytes === undefined) {
      bytes = renderPng(name)
      cache.set(name, bytes)
    }
    return bytes
  }

  for (const prefix of ['/files', '/direct']) {
    app.get(`${prefix}/:name`, {
      schema: {
        params: FileParamsSchema,
        querystring: DirectQuerySchema,
        response: { 200: PngSchema, 403: ErrorEnvelopeSchema, 404: ErrorEnvelopeSchema, 500: ErrorEnvelopeSchema }
      }
    }, async (request, reply) => {
      const { name } = request.params
      const now = Date.now()
      sim.fileRequests.push({ at: now, path: `${prefix}/${name}` })
      if (prefix === '/files' && sim.failFileDownloads > 0) {
        sim.failFileDownloads--
        return await reply.code(500).send({ code: 500, msg: 'CDN error (simulated)', data: null })
      }
      // a missing or unreadable expiry is no valid link either
      if (prefix === '/direct' && !(Number(request.query.expires) > now)) {
        return await reply.code(403).send({ code: 403, msg: 'The link has expired', data: null })
      }
      if (!sim.hasFile(name, now)) return await reply.code(404).send({ code: 404, msg: 'Not Found', data: null })
      return await reply.type('image/png').header('cache-control', 'public, max-age=86400').send(png(name))
    })
  }

  app.post('/api/v1/common/download-url', {
    schema: { body: Type.Object({ url: Type.String() }) }
  }, async (request) => {
    const name = /\/files\/([^/?#]+)$/.exec(request.body.url)?.[1]
    if (!name || !sim.hasFile(name)) return { code: 422, msg: 'The url is not a kie.ai result', data: null }
    return { code: 200, msg: 'success', data: `${sim.publicUrl}/direct/${name}?expires=${Date.now() + sim.variants.directLinkTtlMs}` }
  })
}
