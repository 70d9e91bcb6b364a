import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { resolveSafe, type SsrfPolicy } from './ssrf.js'

export interface DeliveryResult {
  statusCode: number | null
  durationMs: number
  error: string | null
  excerpt: string | null
}

const EXCERPT_BYTES = 256

/**
 * POSTs one webhook. The host is resolved and checked here, and the connection goes to that
 * very address (no second lookup a DNS rebinding could answer differently); redirects are
 * not followed; at most a short excerpt of the answer is read.
 */
export async function postWebhook(
  rawUrl: string,
  headers: Record<string, string>,
  body: string,
  policy: SsrfPolicy,
  timeoutMs: number
): Promise<DeliveryResult> {
  const started = performance.now()
  const done = (r: Omit<DeliveryResult, 'durationMs'>): DeliveryResult => ({ ...r, durationMs: Math.round(performance.now() - started) })
  const url = new URL(rawUrl)
  let target: { address: string; family: 4 | 6 }
  try {
    target = await resolveSafe(url, policy)
  } catch (err) {
    return done({ statusCode: null, error: `refused: ${(err as Error).message}`, excerpt: null })
  }
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) callback(null, [{ address: target.address, family: target.family }])
    else callback(null, target.address, target.family)
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve) => {
    const req = send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'kie-upscale-gateway-webhooks', ...headers },
      lookup: pinned,
      timeout: timeoutMs
    })
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (err) => {
      clearTimeout(deadline)
      resolve(done({ statusCode: null, error: err.message, excerpt: null }))
    })
    req.on('response', (res: IncomingMessage) => {
      let excerpt = Buffer.alloc(0)
      res.on('data', (chunk: Buffer) => {
        if (excerpt.length < EXCERPT_BYTES) excerpt = Buffer.concat([excerpt, chunk]).subarray(0, EXCERPT_BYTES)
        else res.destroy()
      })
      const finish = () => {
        clearTimeout(deadline)
        resolve(done({ statusCode: res.statusCode ?? null, error: null, excerpt: excerpt.toString('utf8') }))
      }
      res.on('end', finish)
      res.on('close', finish)
    })
    req.end(body)
  })
}
