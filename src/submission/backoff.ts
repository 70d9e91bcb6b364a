export interface BackoffOptions {
  baseMs: number
  capMs: number
  random?: () => number
}

/** Capped exponential backoff with full jitter (attempt 1 → up to base, then doubling). */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round((opts.random ?? Math.random)() * ceiling)
}
