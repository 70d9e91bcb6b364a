/**
 * Long-poll support: requests waiting for a task to become final are parked here and woken
 * by the event that finished it; nothing re-reads the database while they wait.
 */
export function createWaiters() {
  const waiting = new Map<string, Set<() => void>>()

  function remove(taskId: string, wake: () => void) {
    const set = waiting.get(taskId)
    set?.delete(wake)
    if (set?.size === 0) waiting.delete(taskId)
  }

  return {
    /** Resolves when the task is reported final, after `ms`, or at shutdown, whichever first. */
    wait(taskId: string, ms: number): Promise<void> {
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          remove(taskId, wake)
          resolve()
        }
        const timer = setTimeout(wake, ms)
        let set = waiting.get(taskId)
        if (!set) waiting.set(taskId, (set = new Set()))
        set.add(wake)
      })
    },
    notify(taskId: string) {
      for (const wake of [...(waiting.get(taskId) ?? [])]) wake()
    },
    /** Answers every parked request now (shutdown). */
    releaseAll() {
      for (const set of [...waiting.values()]) for (const wake of [...set]) wake()
    },
    count: () => [...waiting.values()].reduce((n, s) => n + s.size, 0)
  }
}

export type Waiters = ReturnType<typeof createWaiters>
