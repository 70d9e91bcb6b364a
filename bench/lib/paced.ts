// An open-loop load generator: requests start on a fixed schedule (rate per second, evenly
// spaced), whether or not earlier ones have been answered, and latency counts from the
// scheduled start, so a stalled server cannot hide its queue (no coordinated omission).
//
// Why not autocannon's overallRate: it gives each connection a per-second quota and sends
// that quota back to back at the start of every second, so the server sees a burst at full
// speed and then silence; the latencies then measure the burst, not the offered rate.
import { Agent, request } from 'node:http'

export interface PacedOptions {
  url: string
  rate: number
  seconds: number
  /** most sockets open at once; requests beyond wait for one (and that wait counts) */
  maxSockets?: number
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  /** path (and body) of each request */
  next: () => { path: string; body?: string }
}

export interface PacedResult {
  offeredRate: number
  achievedRate: number
  p50: number
  p90: number
  p99: number
  max: number
  requests: number
  non2xx: number
  errors: number
}

export const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number)

export async function paced(opts: PacedOptions): Promise<PacedResult> {
  const target = new URL(opts.url)
  const agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 })
  const latencies: number[] = []
  let non2xx = 0
  let errors = 0
  let inFlight = 0
  const total = Math.round(opts.rate * opts.seconds)
  const interval = 1000 / opts.rate
  let sent = 0
  const start = performance.now()
  let lastDone = start

  const fire = (scheduledAt: number) => {
    const { path, body } = opts.next()
    inFlight++
    const req = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method: opts.method ?? 'GET',
        path,
        headers: body === undefined ? opts.headers : { ...opts.headers, 'content-length': Buffer.byteLength(body) }
      },
      (res) => {
        res.resume()
        res.on('end', () => {
          const now = performance.now()
          latencies.push(now - scheduledAt)
          if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) non2xx++
          inFlight--
          lastDone = now
        })
      }
    )
    req.on('error', () => {
      errors++
      inFlight--
    })
    req.end(body)
  }

  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1)
      while (sent < due) {
        fire(start + sent * interval)
        sent++
      }
      if (sent < total) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  const drainDeadline = performance.now() + 30_000
  while (inFlight > 0 && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 5))
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {
    offeredRate: opts.rate,
    achievedRate: latencies.length / ((lastDone - start) / 1000),
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
    requests: latencies.length,
    non2xx,
    errors
  }
}
