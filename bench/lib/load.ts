// autocannon's programmatic API, reduced to what the bench reports.
import autocannon from 'autocannon'

export interface LoadResult {
  /** completed requests per second over the run */
  rps: number
  p50: number
  p90: number
  p99: number
  max: number
  requests: number
  non2xx: number
  errors: number
  seconds: number
}

export interface LoadOptions {
  url: string
  seconds: number
  connections?: number
  pipelining?: number
  /** a fixed offered rate over all connections; unset = as fast as the server answers */
  overallRate?: number
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  /** varies path/body per request; called once per request */
  next?: () => { path?: string; body?: string }
}

export async function load(opts: LoadOptions): Promise<LoadResult> {
  const { next } = opts
  const result = await autocannon({
    url: opts.url,
    duration: opts.seconds,
    connections: opts.connections ?? 50,
    pipelining: opts.pipelining ?? 1,
    ...(opts.overallRate ? { overallRate: opts.overallRate } : {}),
    method: opts.method ?? 'GET',
    headers: opts.headers ?? {},
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(next
      ? {
          requests: [
            {
              setupRequest: (req: autocannon.Request) => ({ ...req, ...next() })
            }
          ]
        }
      : {})
  })
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    seconds: result.duration
  }
}
