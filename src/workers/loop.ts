import type { FastifyBaseLogger } from 'fastify'

/**
 * Runs `run` again and again: each run returns the delay before the next. The timer is
 * re-armed only after a run finishes, is unref()'d, and `wake()` brings the next run forward.
 * A failed run is logged, never thrown.
 */
export function createLoop(name: string, run: () => Promise<number>, log: FastifyBaseLogger, errorDelayMs = 1000) {
  let timer: NodeJS.Timeout | null = null
  let running: Promise<void> | null = null
  let woken = false
  let stopped = true

  const arm = (ms: number) => {
    if (stopped) return
    if (timer) clearTimeout(timer)
    timer = setTimeout(tick, Math.max(0, ms))
    timer.unref()
  }

  function tick() {
    timer = null
    if (running || stopped) return
    woken = false
    running = (async () => {
      let next = errorDelayMs
      try {
        next = await run()
      } catch (err) {
        log.error({ err, worker: name }, 'worker run failed')
      }
      running = null
      arm(woken ? 0 : next)
    })()
  }

  return {
    start() {
      stopped = false
      arm(0)
    },
    wake() {
      if (running) woken = true
      else arm(0)
    },
    /** Stops the timer and waits for a run in progress. */
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      timer = null
      await running
    }
  }
}

export type Loop = ReturnType<typeof createLoop>
