import type { TaskRow } from '../db/repository.js'
import type { QueueInfo } from '../submission/estimate.js'
import type { Task } from './schemas.js'

const iso = (ms: number) => new Date(ms).toISOString()

export function toTask(row: TaskRow, queue: QueueInfo | null = null): Task {
  return {
    id: row.id,
    status: row.status,
    taskId: row.parent_task_id,
    imageIndex: row.image_index,
    waterMark: row.water_mark,
    kieTaskId: row.kie_task_id,
    callbackUrl: row.callback_url,
    resultUrls: row.result_urls === null ? null : (JSON.parse(row.result_urls) as string[]),
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    completedAt: row.completed_at === null ? null : iso(row.completed_at),
    queue: queue && { position: queue.position, estimatedSendAt: iso(queue.estimatedSendAt) }
  }
}

// Opaque to clients; it is the arrival sequence, so pages stay stable while tasks arrive.
export const encodeCursor = (seq: number) => Buffer.from(`s:${seq}`).toString('base64url')

export function decodeCursor(cursor: string): number | null {
  const m = /^s:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString())
  return m ? Number(m[1]) : null
}
