import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyStatic from '@fastify/static'
import { errorBody } from '../errors.js'

/**
 * The page's own files only: no inline script or style, nothing from another origin, images
 * from the gateway or from blob: URLs (the page fetches them with the admin key), no framing.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/**
 * src/console/ under vitest (src/plugins/ → src/console/), dist/src/console/ when built:
 * `npm run build` copies the folder there, so dist/ (all the image holds) is complete.
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url))

export interface ConsoleOptions {
  /** ADMIN_API_KEYS is set: the console is served; otherwise /console and below answer 404. */
  enabled: boolean
  /** Where the files are (CONSOLE_DIR unless a test says otherwise). */
  dir?: string
}

const ROUTE = { schema: { hide: true } }

/**
 * The operator console at /console/: static files (index.html, console.js, console.css), each
 * answered with a strict Content-Security-Policy; its data come from the admin API (/admin/*),
 * which the page calls with the admin key. Registered without fastify-plugin: the headers
 * below apply to these routes only (and to the 404s they hand to the not-found handler).
 */
export async function consolePlugin(app: FastifyInstance, opts: ConsoleOptions) {
  if (!opts.enabled) {
    // As for any unknown route; said explicitly, so nothing else can answer these paths.
    const notFound = async (request: FastifyRequest, reply: FastifyReply) => {
      request.errorCode = 'GW_NOT_FOUND'
      return reply.code(404).send(errorBody(404, 'GW_NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`))
    }
    app.get('/console', ROUTE, notFound)
    app.get('/console/*', ROUTE, notFound)
    return
  }

  const root = opts.dir ?? CONSOLE_DIR
  if (!existsSync(`${root}/index.html`)) {
    throw new Error(`The operator console's files are missing from ${root} (npm run build copies src/console there)`)
  }

  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('content-security-policy', CONSOLE_CSP)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('cross-origin-opener-policy', 'same-origin')
    reply.header('cross-origin-resource-policy', 'same-origin')
    // (X-Frame-Options and Referrer-Policy come from http-conventions, as on every response.)
    // The page itself is never stored (it is the entry point of a new version, and errors are
    // not kept either); the script and the style sheet are revalidated by ETag each time.
    const type = String(reply.getHeader('content-type') ?? '')
    reply.header('cache-control', reply.statusCode >= 400 || type.startsWith('text/html') ? 'no-store' : 'no-cache')
    done(null, payload)
  })

  // A relative Location, so the redirect also works behind a proxy that adds a path prefix.
  app.get('/console', ROUTE, async (request, reply) => {
    const query = request.url.indexOf('?')
    return reply.redirect(`console/${query === -1 ? '' : request.url.slice(query)}`, 301)
  })

  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    // The gateway's own /docs registers @fastify/static too; reply.sendFile is not needed here.
    decorateReply: false,
    index: ['index.html'],
    dotfiles: 'ignore',
    // Cache-Control is set above, per kind of file.
    cacheControl: false,
    list: false
  })
}

export default consolePlugin
