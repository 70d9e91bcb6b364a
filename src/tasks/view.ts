import type { ResultFileView, TaskViewRow } from '../db/repository.js'
import type { QueueInfo } from '../submission/estimate.js'
import type { Task } from './schemas.js'
import type { ErrorCode } from '../errors.js'

const iso = (ms: number) => new Date(ms).toISOString()

function archiveOf(row: TaskViewRow, files: readonly ResultFileView[]): Task['archive'] {
  if (files.length === 0) return null
  // Upscales keep the address their clients know; every kind is served under /tasks.
  const base = row.type === 'upscale' ? `/upscale/${row.id}/result` : `/tasks/${row.id}/result`
  const url = (f: ResultFileView) => (f.status === 'stored' ? `${base}${f.idx === 0 ? '' : `?index=${f.idx}`}` : null)
  const statuses = new Set(files.map((f) => f.status))
  const status = statuses.has('pending') ? 'pending' : statuses.has('failed') ? 'failed' : statuses.has('pruned') ? 'pruned' : 'stored'
  const first = files[0] as ResultFileView
  return {
    status,
    bytes: first.bytes,
    sha256: first.sha256,
    contentType: first.content_type,
    url: url(first),
    error: files.find((f) => f.error && f.status !== 'stored')?.error ?? null,
    files: files.map((f) => ({ index: f.idx, status: f.status, bytes: f.bytes, sha256: f.sha256, contentType: f.content_type, url: url(f) }))
  }
}

export function toTask(row: TaskViewRow, queue: QueueInfo | null = null, files: readonly ResultFileView[] = []): Task {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    parentId: row.parent_id,
    taskId: row.parent_task_id,
    imageIndex: row.image_index,
    params: row.params === null ? null : (JSON.parse(row.params) as Record<string, unknown>),
    waterMark: row.water_mark,
    kieTaskId: row.kie_task_id,
    callbackUrl: row.webhook_url,
    resultUrls: row.result_urls === null ? null : (JSON.parse(row.result_urls) as string[]),
    error: row.error_code === null ? null : { code: row.error_code as ErrorCode, message: row.error_message ?? '' },
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    completedAt: row.completed_at === null ? null : iso(row.completed_at),
    archive: archiveOf(row, files),
    queue: queue && { position: queue.position, estimatedSendAt: queue.estimatedSendAt === null ? null : iso(queue.estimatedSendAt), waitingFor: queue.waitingFor }
  }
}

// Opaque to clients; it is the arrival sequence, so pages stay stable while tasks arrive.
export const encodeCursor = (seq: number) => Buffer.from(`s:${seq}`).toString('base64url')

export function decodeCursor(cursor: string): number | null {
  const m = /^s:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString())
  return m ? Number(m[1]) : null
}

