import type { FastifyBaseLogger } from 'fastify'
import type { CreditSettings } from '../config.js'
import type { KieClient } from '../kie/client.js'

export interface CreditWatchDeps {
  kie: KieClient
  settings: CreditSettings
  log: FastifyBaseLogger
  /** Where the last balance read is kept (the admin overview shows it); with the time it was read. */
  reading?: CreditReading
  now?: () => number
}

/** kie.ai's credit balance as last read; null until a reading succeeded. */
export interface CreditReading {
  balance: number | null
  /** Epoch milliseconds of that reading. */
  checkedAt: number | null
}

export const createCreditReading = (): CreditReading => ({ balance: null, checkedAt: null })

/**
 * Asks kie.ai for the account's credit balance (the instrumented client keeps the gauge) and
 * warns once each time it falls below the threshold. Returns how long to wait before the next run.
 */
export function createCreditWatch(deps: CreditWatchDeps) {
  const { settings, log } = deps
  let low = false
  return async function checkCredits(): Promise<number> {
    const answer = await deps.kie.credits()
    if (!answer.ok) {
      log.warn({ reason: answer.kind === 'rejected' ? answer.code : answer.reason }, 'could not read the kie.ai credit balance')
      return settings.pollMs
    }
    const credits = answer.data
    if (deps.reading) {
      deps.reading.balance = credits
      deps.reading.checkedAt = (deps.now ?? Date.now)()
    }
    if (credits < settings.warnBelow && !low) {
      log.warn({ credits, warnBelow: settings.warnBelow }, 'kie.ai credits are running low: top up the kie.ai account')
    } else if (credits >= settings.warnBelow && low) {
      log.info({ credits, warnBelow: settings.warnBelow }, 'kie.ai credits are above the warning threshold again')
    }
    low = credits < settings.warnBelow
    return settings.pollMs
  }
}
