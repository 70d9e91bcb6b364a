import type { Db } from './open.js'
import type { ResultFileRow } from './rows.js'

/** The archive: result files to download, store, retry and prune. */
export function createArchive(db: Db) {
  const s = {
    insertResultFiles: db.prepare(`INSERT INTO result_files (task_id, idx, url, next_attempt_at, created_at, updated_at)
      SELECT @taskId, CAST(key AS INTEGER), value, @now, @now, @now FROM json_each(@urls)`),
    dueResultFiles: db.prepare(`SELECT id FROM result_files
      WHERE status = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
      ORDER BY next_attempt_at LIMIT @limit`),
    leaseResultFile: db.prepare('UPDATE result_files SET lease_until = @until WHERE id = @id RETURNING *'),
    nextResultFileAt: db.prepare(`SELECT min(next_attempt_at) AS at FROM result_files WHERE status = 'pending'`),
    resultStored: db.prepare(`UPDATE result_files SET status = 'stored', path = @path, bytes = @bytes, sha256 = @sha256,
        content_type = @contentType, error = NULL, attempts = attempts + 1, stored_at = @now, updated_at = @now, lease_until = NULL
      WHERE id = @id AND status = 'pending'`),
    resultRetry: db.prepare(`UPDATE result_files SET attempts = attempts + 1, next_attempt_at = @at, error = @error,
        updated_at = @now, lease_until = NULL WHERE id = @id AND status = 'pending'`),
    resultFailed: db.prepare(`UPDATE result_files SET status = 'failed', attempts = attempts + 1, error = @error,
        updated_at = @now, lease_until = NULL WHERE id = @id AND status = 'pending'`),
    resultFilesFor: db.prepare('SELECT * FROM result_files WHERE task_id = ? ORDER BY idx'),
    expiredResults: db.prepare(`SELECT * FROM result_files WHERE status = 'stored' AND stored_at <= ? LIMIT 100`),
    resultPruned: db.prepare(`UPDATE result_files SET status = 'pruned', error = @error, updated_at = @now WHERE id = @id`),
    releaseLeases: db.prepare(`UPDATE result_files SET lease_until = NULL WHERE status = 'pending' AND lease_until IS NOT NULL`)
  }

  return {
    /** Queues a succeeded task's result URLs for download; called inside the task's `finish`. */
    queueResults: (taskId: string, resultUrls: string[], now: number) =>
      s.insertResultFiles.run({ taskId, urls: JSON.stringify(resultUrls), now }),
    claimResultFiles: db.transaction((now: number, leaseMs: number, limit: number): ResultFileRow[] =>
      (s.dueResultFiles.all({ now, limit }) as Array<{ id: number }>).map(
        ({ id }) => s.leaseResultFile.get({ id, until: now + leaseMs }) as ResultFileRow
      )
    ),
    nextResultFileAt: () => (s.nextResultFileAt.get() as { at: number | null }).at,
    resultStored: (id: number, now: number, f: { path: string; bytes: number; sha256: string; contentType: string }) =>
      s.resultStored.run({ id, now, ...f }).changes === 1,
    resultRetry: (id: number, now: number, at: number, error: string) => s.resultRetry.run({ id, now, at, error }).changes === 1,
    resultFailed: (id: number, now: number, error: string) => s.resultFailed.run({ id, now, error }).changes === 1,
    resultFiles: (taskId: string) => s.resultFilesFor.all(taskId) as ResultFileRow[],
    expiredResults: (storedBefore: number) => s.expiredResults.all(storedBefore) as ResultFileRow[],
    resultPruned: (id: number, now: number, error: string) => s.resultPruned.run({ id, now, error }),
    /** Frees every download lease (after a crash); returns how many were held. */
    releaseLeases: () => s.releaseLeases.run().changes
  }
}

export type Archive = ReturnType<typeof createArchive>
