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

export interface LoadRequest {
  path: string
  body?: string
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
  /** varies path/body per request; called once per request (autocannon rebuilds each request: costly,
   *  and on a small machine the client then limits the rate). Prefer requests. */
  next?: () => { path?: string; body?: string }
  /** a fixed cycle of requests (method and headers from the options), each built once per connection:
   *  the cheapest way to vary path and body. Every connection runs through the whole list from its start. */
  requests?: ReadonlyArray<LoadRequest>
  /** with requests: each connection gets its own contiguous share of the list instead of the whole of it,
   *  so that no request is sent twice unless a connection runs through its share (one autocannon
   *  instance per connection, results merged) */
  split?: boolean
}

type Raw = autocannon.Result
// In autocannon (it merges its workers' results so), not in its type definitions.
const aggregateResult = (autocannon as unknown as { aggregateResult: (parts: unknown[], opts: object) => Raw }).aggregateResult

const summarize = (result: Raw): LoadResult => ({
  rps: result.requests.total / result.duration,
  p50: result.latency.p50,
  p90: result.latency.p90,
  p99: result.latency.p99,
  max: result.latency.max,
  requests: result.requests.total,
  non2xx: result.non2xx,
  errors: result.errors,
  seconds: result.duration
})

export async function load(opts: LoadOptions): Promise<LoadResult> {
  const { next } = opts
  if (next && opts.requests) throw new Error('load: next and requests are exclusive')
  const connections = opts.connections ?? 50
  // autocannon writes each built request into its object: every run gets fresh ones.
  const built = (list: ReadonlyArray<LoadRequest>) =>
    list.map((r) => (r.body !== undefined ? { path: r.path, body: r.body } : { path: r.path }))
  const base = {
    url: opts.url,
    duration: opts.seconds,
    pipelining: opts.pipelining ?? 1,
    method: opts.method ?? 'GET',
    headers: opts.headers ?? {},
    ...(opts.body !== undefined ? { body: opts.body } : {})
  }
  if (opts.requests && opts.split) {
    const list = opts.requests
    if (list.length < connections) throw new Error(`load: ${list.length} requests cannot be split between ${connections} connections`)
    if (opts.overallRate) throw new Error('load: split does not take overallRate')
    const share = Math.floor(list.length / connections)
    const parts = await Promise.all(
      Array.from({ length: connections }, (_, k) =>
        autocannon({ ...base, connections: 1, skipAggregateResult: true, requests: built(list.slice(k * share, (k + 1) * share)) })
      )
    )
    // The instances' latency histograms merged, as autocannon does for its workers.
    return summarize(aggregateResult(parts, { url: opts.url, connections }))
  }
  const result = await autocannon({
    ...base,
    connections,
    ...(opts.overallRate ? { overallRate: opts.overallRate } : {}),
    ...(opts.requests ? { requests: built(opts.requests) } : {}),
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
  return summarize(result)
}
