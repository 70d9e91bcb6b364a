import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { renderPng } from './png.js'
import { ErrorEnvelopeSchema, FileParamsSchema, PngSchema } from './schemas.js'
import type { Simulator } from './state.js'

/** Result files: real PNGs, so a client that downloads and inspects them gets an image. No auth, like kie.ai's CDN. */
export const fileRoutes: FastifyPluginAsyncTypebox<{ sim: Simulator }> = async (app, { sim }) => {
  const cache = new Map<string, Buffer>()

  app.get('/files/:name', {
    schema: { params: FileParamsSchema, response: { 200: PngSchema, 404: ErrorEnvelopeSchema } }
  }, async (request, reply) => {
    const { name } = request.params
    if (!sim.hasFile(name)) return await reply.code(404).send({ code: 404, msg: 'Not Found', data: null })
    let png = cache.get(name)
    if (png === undefined) {
      png = renderPng(name)
      cache.set(name, png)
    }
    return await reply.type('image/png').header('cache-control', 'public, max-age=86400').send(png)
  })
}
