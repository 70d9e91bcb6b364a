/**
 * Group commit: writes that arrive together share one transaction, so one fsync (with
 * synchronous=FULL) covers all of them, and each caller is answered only after the commit.
 * Each write runs in its own savepoint: one that throws fails alone.
 */
export function createGroupCommit(inTransaction: (fn: () => void) => void) {
  type Item = { work: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }
  let pending: Item[] = []

  function flush() {
    const batch = pending
    pending = []
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = []
    try {
      inTransaction(() => {
        for (const item of batch) {
          try {
            results.push({ ok: true, value: item.work() })
          } catch (error) {
            results.push({ ok: false, error })
          }
        }
      })
    } catch (error) {
      for (const item of batch) item.reject(error)
      return
    }
    batch.forEach((item, i) => {
      const r = results[i] as (typeof results)[number]
      if (r.ok) item.resolve(r.value)
      else item.reject(r.error)
    })
  }

  return {
    /** `work` must be synchronous and, to fail alone, a transaction of its own (a savepoint here). */
    submit<T>(work: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (pending.length === 0) setImmediate(flush)
        pending.push({ work, resolve: resolve as (v: unknown) => void, reject })
      })
    }
  }
}

export type GroupCommit = ReturnType<typeof createGroupCommit>
