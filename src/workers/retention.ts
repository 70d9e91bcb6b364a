import { removeArchived } from '../archive/files.js'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { PRUNE_BATCH, type Retention, type RetentionSettings } from '../db/retention.js'

export interface RetentionDeps {
  retention: Retention
  settings: RetentionSettings
  clock: Clock
  log: FastifyBaseLogger
}

const EVERY_MS = 60_000
// A full batch means there is more: come back soon, but let other work in between.
const BACKLOG_MS = 250

/** One bounded pass of retention; returns the delay before the next. */
export async function pruneDue(deps: RetentionDeps): Promise<number> {
  const pruned = deps.retention.pruneOnce(deps.clock.now(), deps.settings)
  // Each with its thumbnail, if the admin API made one.
  await Promise.all(pruned.files.map(removeArchived))
  const { files, ...counts } = pruned
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  if (total > 0) deps.log.info({ ...counts, files: files.length }, 'retention: old rows pruned')
  const more = counts.callbackDeliveries >= PRUNE_BATCH || counts.webhookAttempts >= PRUNE_BATCH || counts.idempotencyKeys >= PRUNE_BATCH || counts.tasks >= 100
  return more ? BACKLOG_MS : EVERY_MS
}
