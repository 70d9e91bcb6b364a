// Row and value shapes of the repository (no SQL here).

import type { ErrorCode } from '../errors.js'
import type { ArchiveStatus, TaskStatus, TaskType } from '../tasks/schemas.js'

export type { TaskStatus, TaskType }
export type StatusSource = 'create' | 'submit' | 'callback' | 'reconcile' | 'timeout' | 'recovery' | 'deadline' | 'parent'

export interface TaskRow {
  seq: number
  id: string
  owner: string
  type: TaskType
  status: TaskStatus
  /** The caller's own gateway task this one is chained to. */
  parent_id: string | null
  /** The parent's kie.ai task id: null for a grid from a prompt, and while a chained task waits. */
  parent_task_id: string | null
  image_index: number | null
  water_mark: string | null
  /** kie.ai's parameters as submitted (JSON). */
  params: string | null
  kie_task_id: string | null
  result_urls: string | null
  error_code: ErrorCode | null
  error_message: string | null
  send_state: 'pending' | 'sending' | 'sent'
  attempts: number
  next_attempt_at: number
  submit_deadline_at: number
  lease_owner: string | null
  lease_until: number | null
  sent_at: number | null
  last_error: string | null
  reconcile_at: number | null
  reconcile_attempts: number
  upstream_state: string | null
  status_source: StatusSource
  created_at: number
  updated_at: number
  completed_at: number | null
  last_activity_at: number
  webhook_url: string | null
  server_errors: number
}

/** What a read shows of a task (src/tasks/view.ts); a full TaskRow is one too, without its files. */
export type TaskViewRow = Pick<TaskRow, 'seq' | 'id' | 'type' | 'status' | 'parent_id' | 'parent_task_id' | 'image_index' | 'water_mark' |
  'params' | 'kie_task_id' | 'result_urls' | 'error_code' | 'error_message' | 'send_state' | 'next_attempt_at' | 'webhook_url' |
  'created_at' | 'updated_at' | 'completed_at'> & {
  /** A succeeded task's archived files, when read with it; otherwise looked up. */
  files?: ResultFileView[]
}

export interface WebhookDeliveryRow {
  id: number
  event_id: string
  task_id: string
  type: string
  url: string
  created_at: number
  state: 'pending' | 'delivered' | 'dead'
  attempts: number
  next_attempt_at: number
  lease_until: number | null
  updated_at: number
}

export interface WebhookAttemptRow {
  id: number
  delivery_id: number
  at: number
  status_code: number | null
  duration_ms: number
  error: string | null
  response_excerpt: string | null
}

export interface NewTask {
  id: string
  owner: string
  type?: TaskType
  /** A chained task's parent (a gateway task id); it waits until that parent has succeeded. */
  parentId?: string | null
  parentTaskId: string | null
  imageIndex: number | null
  waterMark: string | null
  /** kie.ai's parameters as submitted. */
  params?: Record<string, unknown> | null
  submitDeadlineAt: number
  /** The client's webhook URL (the API's `callbackUrl`). */
  webhookUrl?: string | null
}

export type Outcome =
  | { status: 'succeeded'; resultUrls: string[] }
  | { status: 'failed'; code: ErrorCode; message: string }

export interface CallbackDelivery {
  receivedAt: number
  taskId: string | null
  kieTaskId: string | null
  verdict: string
  httpStatus: number
  contentType: string | null
  signature: string | null
  signatureTimestamp: string | null
  remoteAddress: string | null
  /** The whole body, or only its first 4 KB for a delivery refused before its token was valid. */
  body: string
  bodyBytes: number
  bodySha256: string | null
}

/** What a stored callback does to its task, in the same transaction. */
export type CallbackEffect =
  | { kind: 'finish'; taskId: string; outcome: Outcome; kieTaskId: string | null }
  /** An ambiguous signal: ask record-info now; `kieTaskId` is learned only from a verified callback. */
  | { kind: 'reconcile'; taskId: string; kieTaskId: string | null; alive: boolean }

export interface ListQuery {
  owner: string
  /** Only this kind; every kind when undefined. */
  type?: TaskType | undefined
  status?: TaskStatus | undefined
  beforeSeq?: number | undefined
  limit: number
}

export interface Budget {
  /** Requests counted in the window; a send is allowed while below max. */
  max: number
  windowStart: number
}

/** What a read shows of an archived file. */
export type ResultFileView = Pick<ResultFileRow, 'idx' | 'status' | 'bytes' | 'sha256' | 'content_type' | 'error'>

export interface ResultFileRow {
  id: number
  task_id: string
  idx: number
  url: string
  status: ArchiveStatus
  attempts: number
  next_attempt_at: number
  lease_until: number | null
  path: string | null
  bytes: number | null
  sha256: string | null
  content_type: string | null
  error: string | null
  created_at: number
  stored_at: number | null
  updated_at: number
}

/** What a task becoming final writes in its own transaction (src/tasks/on-final.ts decides). */
export interface FinalWrites {
  queueResults(taskId: string, resultUrls: string[], now: number): void
  enqueueWebhook(taskId: string, type: string, url: string, now: number): void
  /** Chained tasks waiting for this parent get its kie.ai id and join the queue; returns how many. */
  releaseChildren(parentId: string, parentKieTaskId: string, now: number): number
  /** Chained tasks waiting for this parent fail with it (and theirs with them). */
  failChildren(parentId: string, now: number, message: string): void
}

/** The reaction to a task becoming final: part of its transaction, then after the commit. */
export interface FinalHook {
  inTransaction(task: TaskRow, outcome: Outcome, now: number, writes: FinalWrites): void
  afterCommit(taskId: string): void
}

export interface RepositoryHooks {
  onFinal?: FinalHook
  /** Called for each stored callback delivery with its verdict. */
  onCallback?: (verdict: string) => void
}

export interface IdempotencyRow {
  owner: string
  key: string
  request_hash: string
  task_id: string
  response_status: number | null
  response_body: string | null
  created_at: number
}

