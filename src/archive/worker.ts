import { mkdir, readdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Repository, ResultFileRow } from '../db/repository.js'
import type { KieClient } from '../kie/client.js'
import { downloadImage, type Download } from './download.js'
import { removeArchived } from './files.js'
import { backoffDelay } from '../submission/backoff.js'
import type { GroupCommit } from '../db/group-commit.js'

export interface ArchiveSettings {
  dir: string
  maxBytes: number
  /** Hosts kie.ai serves results from (host or host:port). */
  hosts: readonly string[]
  /** null keeps files forever. */
  ttlMs: number | null
  retryBaseMs: number
  retryCapMs: number
  /** kie.ai keeps its files about 14 days: retrying after that is pointless. */
  retentionMs: number
  timeoutMs: number
}

export const DEFAULT_ARCHIVE: Omit<ArchiveSettings, 'dir'> = {
  maxBytes: 50 * 1024 * 1024,
  hosts: ['tempfile.aiquickdraw.com', 'tempfile.redpandaai.co'],
  ttlMs: null,
  retryBaseMs: 30_000,
  retryCapMs: 2 * 3_600_000,
  retentionMs: 14 * 24 * 3_600_000,
  timeoutMs: 60_000
}

export interface ArchiveDeps {
  repo: Repository
  /** The app's group commit: outcomes of downloads ending together share one durable commit. */
  commits?: GroupCommit
  kie: KieClient
  clock: Clock
  settings: ArchiveSettings
  log: FastifyBaseLogger
  random?: () => number
  /** A file was stored or gave up: held-back success webhooks may go. */
  onSettled?: () => void
}

const LEASE_MS = 5 * 60_000
const PARALLEL = 4
const extOf = (contentType: string) => contentType.split('/')[1]?.replace('jpeg', 'jpg') ?? 'bin'

/** Removes partial downloads a crash left behind; their rows are simply due again. */
export async function cleanTemporaryFiles(dir: string): Promise<number> {
  await mkdir(dir, { recursive: true })
  const leftovers = (await readdir(dir)).filter((f) => f.startsWith('.tmp-'))
  await Promise.all(leftovers.map((f) => unlink(join(dir, f)).catch(() => undefined)))
  return leftovers.length
}

async function fetchOne(deps: ArchiveDeps, file: ResultFileRow): Promise<Download> {
  const { settings } = deps
  const options = { dir: settings.dir, maxBytes: settings.maxBytes, timeoutMs: settings.timeoutMs }
  const direct = await downloadImage(file.url, { ...options, allowedHosts: new Set(settings.hosts.map((h) => h.toLowerCase())) })
  if (direct.ok || direct.permanent) return direct
  // kie.ai can hand out a temporary direct link to its own file; it is trusted because kie.ai gave it.
  const link = await deps.kie.downloadUrl(file.url)
  if (!link.ok) return direct
  const viaLink = await downloadImage(link.data, { ...options, allowedHosts: null })
  return viaLink.ok ? viaLink : { ...direct, error: `${direct.error}; via download-url: ${viaLink.error}` }
}

async function archiveOne(deps: ArchiveDeps, file: ResultFileRow) {
  const { repo, clock, settings, log } = deps
  const result = await fetchOne(deps, file)
  const write = (fn: (now: number) => void) =>
    deps.commits ? deps.commits.submit(() => repo.inTransaction(() => fn(clock.now()))) : Promise.resolve(fn(clock.now()))
  if (result.ok) {
    const folder = join(settings.dir, file.task_id)
    await mkdir(folder, { recursive: true })
    const path = join(folder, `${file.idx}.${extOf(result.contentType)}`)
    // Renamed only when complete: a reader never sees a partial file.
    await rename(result.tmpPath, path)
    await write((now) => repo.resultStored(file.id, now, { path, bytes: result.bytes, sha256: result.sha256, contentType: result.contentType }))
    log.info({ taskId: file.task_id, index: file.idx, bytes: result.bytes }, 'result archived')
  } else if (result.permanent || clock.now() - file.created_at > settings.retentionMs) {
    await write((now) => repo.resultFailed(file.id, now, result.error))
    log.warn({ taskId: file.task_id, index: file.idx, error: result.error }, 'result not archived')
  } else {
    const delay = backoffDelay(file.attempts + 1, { baseMs: settings.retryBaseMs, capMs: settings.retryCapMs, jitter: [0.5, 1], random: deps.random })
    await write((now) => repo.resultRetry(file.id, now, now + delay, result.error))
    log.info({ taskId: file.task_id, index: file.idx, error: result.error, retryInMs: delay }, 'result download failed; will retry')
  }
  if (result.ok || repo.resultFiles(file.task_id).every((f) => f.status !== 'pending')) deps.onSettled?.()
}

/** Archives due result files and prunes expired ones; returns the delay before the next run. */
export async function archiveDue(deps: ArchiveDeps): Promise<number> {
  const { repo, clock, settings } = deps
  const now = clock.now()
  if (settings.ttlMs !== null) {
    for (const f of repo.expiredResults(now - settings.ttlMs)) {
      // With its thumbnail, if the admin API made one.
      if (f.path) await removeArchived(f.path)
      repo.resultPruned(f.id, now, `removed after RESULTS_TTL_DAYS (${Math.round(settings.ttlMs / 86_400_000)} days)`)
    }
  }
  const due = repo.claimResultFiles(now, LEASE_MS, PARALLEL)
  await Promise.all(due.map((f) => archiveOne(deps, f)))
  if (due.length > 0) return 0
  const next = repo.nextResultFileAt()
  return next === null ? 1000 : Math.min(1000, Math.max(5, next - now))
}

