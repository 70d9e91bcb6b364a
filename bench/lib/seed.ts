// Fills a gateway database directly, in the project's own schema (openDatabase runs the
// migrations), with tasks that look like production ones. The rows are generated inside
// SQLite (INSERT … SELECT over a counter) so that a million take seconds, not minutes.
import { createHash } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { openDatabase } from '../../src/db/open.js'

export interface SeedOptions {
  owner: string
  /** succeeded: finished tasks, each with the callback delivery that finished it (stored raw).
   *  submitted: sent to kie.ai, waiting for their callback. */
  status: 'succeeded' | 'submitted'
  /** keep every k-th task in the returned sample (1 = all) */
  sampleEvery: number
}

export interface SeedResult {
  rows: number
  sample: Array<{ id: string; kieTaskId: string }>
  seconds: number
  /** database file plus WAL after a checkpoint */
  bytes: number
  /** how long the gateway's start-up count of tasks by status takes on this file */
  statusCountMs: number
}

export function fileBytes(path: string): number {
  let total = 0
  for (const p of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(p)) total += statSync(p).size
  return total
}

const hex = (bytes: number) => `lower(hex(randomblob(${bytes})))`
// A random version-4-shaped UUID, as randomUUID() makes them.
const UUID = `substr(u, 1, 8) || '-' || substr(u, 9, 4) || '-4' || substr(u, 14, 3) || '-a' || substr(u, 18, 3) || '-' || substr(u, 21, 12)`

export function seedTasks(path: string, n: number, opts: SeedOptions): SeedResult {
  const started = performance.now()
  const db = openDatabase(path)
  // Only this loading connection: the gateway opens the file with its own (durable) settings.
  db.pragma('synchronous = OFF')
  db.pragma('cache_size = -262144')
  const done = opts.status === 'succeeded'
  const now = Date.now()
  // Finished tasks spread over the past; waiting ones are recent, so that no sweep
  // (timeout, reconciliation) touches them while the bench runs.
  const insertTasks = db.prepare(`WITH RECURSIVE c(i) AS (SELECT CAST(@from AS INTEGER) UNION ALL SELECT i + 1 FROM c WHERE i + 1 < @to),
    r AS MATERIALIZED (SELECT i, ${hex(16)} AS u, ${hex(16)} AS kie, ${hex(16)} AS parent,
            ${done ? '@now - (@n - i) * 1000' : '@now - (@n - i)'} AS created FROM c)
    INSERT INTO tasks (id, owner, type, status, parent_id, parent_task_id, image_index, water_mark, params, kie_task_id, result_urls,
      send_state, attempts, next_attempt_at, submit_deadline_at, sent_at, reconcile_at, upstream_state, status_source,
      created_at, updated_at, completed_at, last_activity_at)
    SELECT ${UUID}, @owner, 'upscale', @status, NULL, parent, i % 4, NULL,
      -- As POST /upscale stores them: JSON.stringify({ taskId, imageIndex }).
      '{"taskId":"' || parent || '","imageIndex":' || (i % 4) || '}', kie,
      ${done ? `'["https://tempfile.aiquickdraw.com/v/' || kie || '_' || (i % 4) || '_0.jpeg"]'` : 'NULL'}, 'sent', 1,
      created, created + 1800000, created + 40, ${done ? 'NULL' : '@now + 3600000'}, ${done ? "'success'" : "'generating'"},
      ${done ? "'callback'" : "'submit'"}, created, created + ${done ? 60000 : 40}, ${done ? 'created + 60000' : 'NULL'},
      ${done ? 'created + 60000' : '@now'}
    FROM r`)
  // The raw body is kept with its length in bytes and its SHA-256 (hex), as the callback route stores it.
  db.function('bench_sha256', { deterministic: true }, (body: unknown) => createHash('sha256').update(String(body)).digest('hex'))
  const insertDeliveries = db.prepare(`INSERT INTO callback_deliveries
      (received_at, task_id, kie_task_id, verdict, http_status, content_type, signature, signature_timestamp, remote_address,
       body, body_bytes, body_sha256)
    SELECT completed_at, id, kie_task_id, 'accepted', 200, 'application/json', NULL, NULL, '203.0.113.7',
      body, length(CAST(body AS BLOB)), bench_sha256(body)
    FROM (SELECT completed_at, id, kie_task_id,
      '{"code":200,"msg":"success","data":{"taskId":"' || kie_task_id || '","promptJson":"{\\"taskId\\":\\"' || parent_task_id ||
      '\\",\\"index\\":' || image_index || '}","resultUrls":' || result_urls || '}}' AS body
      FROM tasks WHERE seq > @after)`)
  const batch = 100_000
  for (let from = 0; from < n; from += batch) {
    db.transaction(() => {
      const after = (db.prepare('SELECT coalesce(max(seq), 0) AS m FROM tasks').get() as { m: number }).m
      insertTasks.run({ from, to: Math.min(n, from + batch), n, now, owner: opts.owner, status: opts.status })
      if (done) insertDeliveries.run({ after })
    })()
  }
  // The triggers keep task_counts; a seed that bypassed them would show here.
  const counted = (db.prepare('SELECT coalesce(sum(n), 0) AS n FROM task_counts WHERE type = ? AND status = ?').get('upscale', opts.status) as { n: number }).n
  if (counted !== n) throw new Error(`seed: task_counts says ${counted} ${opts.status} upscale tasks, ${n} were inserted`)
  const sample = db
    .prepare('SELECT id, kie_task_id AS kieTaskId FROM tasks WHERE (seq - 1) % ? = 0 ORDER BY seq')
    .all(opts.sampleEvery) as SeedResult['sample']
  db.pragma('wal_checkpoint(TRUNCATE)')
  const t0 = performance.now()
  db.prepare('SELECT status, count(*) AS n FROM tasks GROUP BY status').all()
  const statusCountMs = performance.now() - t0
  db.close()
  return { rows: n, sample, seconds: (performance.now() - started) / 1000, bytes: fileBytes(path), statusCountMs }
}
