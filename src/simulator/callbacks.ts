import http, { type ClientRequest } from 'node:http'
import https from 'node:https'
import type { FastifyBaseLogger } from 'fastify'
import { signKieCallback } from './sign.js'
import type { TimerSet } from './timers.js'
import type { CallbackBody } from './views.js'

/** kie.ai retries a failed callback after 1, 5 and 15 minutes, then gives up. */
export const RETRY_DELAYS_MS = [60_000, 300_000, 900_000] as const

/** A callback URL as logged: its token (the receiver's secret) never reaches a log line. */
const logged = (url: string): string => url.replace(/([?&]token=)[^&#]*/g, '$1[redacted]')

export interface CallbackAttempt {
  taskId: string
  url: string
  attempt: number
  at: number
  /** HTTP status received; null on network error or timeout */
  status: number | null
  body: CallbackBody
  headers: Record<string, string>
  /** true for a chaos duplicate: an extra delivery after the callback already got its HTTP 200 */
  duplicate: boolean
}

export interface DeliveryOptions {
  /** wait this long before the first attempt */
  delayMs?: number
  /** once an attempt gets HTTP 200, send the same callback once more after this many ms */
  duplicateAfterMs?: number | null
}

export interface CallbackSenderDeps {
  hmacKey: string | undefined
  retryScale: number
  timeoutMs: number
  timers: TimerSet
  log: FastifyBaseLogger
  record: (attempt: CallbackAttempt) => void
}

export class CallbackSender {
  readonly #deps: CallbackSenderDeps
  readonly #inflight = new Set<ClientRequest>()
  readonly #ordinals = new Map<string, number>()

  constructor(deps: CallbackSenderDeps) {
    this.#deps = deps
  }

  /** First delivery of a finished task, retried on anything but HTTP 200. */
  deliver(taskId: string, url: string, payload: CallbackBody, opts: DeliveryOptions = {}): void {
    const delayMs = opts.delayMs ?? 0
    if (delayMs > 0) {
      this.#deps.timers.after(delayMs, () => this.deliver(taskId, url, payload, { ...opts, delayMs: 0 }))
      return
    }
    // Signed once per delivery: whether kie.ai re-signs retries is undocumented, and the
    // stale timestamp is the harder case for a receiver's timestamp window.
    const timestamp = Math.floor(Date.now() / 1000)
    const run = (round: number): void => {
      void this.send(taskId, url, payload, timestamp).then((status) => {
        if (this.#deps.timers.closed) return
        if (status === 200) {
          const after = opts.duplicateAfterMs
          if (after != null) {
            this.#deps.timers.after(after, () => { void this.send(taskId, url, payload, timestamp, true) })
          }
          return
        }
        const delay = RETRY_DELAYS_MS[round]
        if (delay === undefined) {
          this.#deps.log.warn({ taskId, url: logged(url), status }, 'simulator: callback given up after retries')
          return
        }
        this.#deps.timers.after(delay * this.#deps.retryScale, () => run(round + 1))
      })
    }
    run(0)
  }

  /** One delivery attempt; resolves to the HTTP status received, or null. */
  async send(taskId: string, url: string, payload: CallbackBody,
    timestamp = Math.floor(Date.now() / 1000), duplicate = false): Promise<number | null> {
    if (this.#deps.timers.closed) return null
    const attempt = (this.#ordinals.get(taskId) ?? 0) + 1
    this.#ordinals.set(taskId, attempt)
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (this.#deps.hmacKey !== undefined) {
      headers['x-webhook-timestamp'] = String(timestamp)
      headers['x-webhook-signature'] = signKieCallback(this.#deps.hmacKey, taskId, timestamp)
    }
    const at = Date.now()
    const status = await this.#post(url, JSON.stringify(payload), headers)
    this.#deps.record({ taskId, url, attempt, at, status, body: payload, headers, duplicate })
    this.#deps.log.info({ taskId, url: logged(url), attempt, status, duplicate }, 'simulator: callback attempt')
    return status
  }

  close(): void {
    for (const req of this.#inflight) req.destroy()
    this.#inflight.clear()
  }

  #post(url: string, body: string, headers: Record<string, string>): Promise<number | null> {
    return new Promise((resolve) => {
      let target: URL
      try {
        target = new URL(url)
      } catch {
        resolve(null)
        return
      }
      const lib = target.protocol === 'https:' ? https : http
      // agent:false: no pooled sockets left behind to hold up anyone's close()
      const req = lib.request(target, {
        method: 'POST',
        agent: false,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }
      }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? null))
        res.on('error', () => resolve(res.statusCode ?? null))
      })
      // kie.ai wants the whole answer within the limit, not merely some bytes flowing
      const deadline = setTimeout(() => req.destroy(new Error('callback timed out')), this.#deps.timeoutMs)
      deadline.unref()
      this.#inflight.add(req)
      req.on('close', () => {
        clearTimeout(deadline)
        this.#inflight.delete(req)
      })
      req.on('error', () => resolve(null))
      req.end(body)
    })
  }
}
