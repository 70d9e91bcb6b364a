/**
 * What happened, for the parts that react to it. The emitter knows nobody: routes and the
 * repository are built before the workers that listen, so nothing refers forward.
 */
export interface SignalMap {
  /** A task joined the send queue (or may be sent now). */
  taskQueued: undefined
  /** A task became final; emitted after its transaction committed. */
  taskFinal: string
  /** A task is due for record-info at once (an ambiguous callback). */
  reconcileNow: undefined
  /** kie.ai refused a task for want of credits: the balance is worth asking now. */
  creditsRefused: undefined
  /** Result files wait to be archived. */
  archiveDue: undefined
  /** Webhook deliveries wait to be sent. */
  webhookDue: undefined
  /** A callback delivery was stored, with its verdict. */
  callbackStored: string
}

type Listener<K extends keyof SignalMap> = (value: SignalMap[K]) => void

export function createSignals() {
  const listeners = new Map<keyof SignalMap, Array<(value: unknown) => void>>()
  return {
    on<K extends keyof SignalMap>(name: K, fn: Listener<K>): void {
      listeners.set(name, [...(listeners.get(name) ?? []), fn as (value: unknown) => void])
    },
    emit<K extends keyof SignalMap>(name: K, ...value: SignalMap[K] extends undefined ? [] : [SignalMap[K]]): void {
      for (const fn of listeners.get(name) ?? []) fn(value[0])
    }
  }
}

export type Signals = ReturnType<typeof createSignals>
