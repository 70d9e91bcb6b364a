import type { TaskRow } from '../db/repository.js'
import type { KieClient, KieResult } from '../kie/client.js'

/** kie.ai's endpoint for each kind of task (../shared/kie-api.md). */
export const KIE_ENDPOINTS = { generate: 'generate', vary: 'generateVary', upscale: 'generateUpscale' } as const

/**
 * The one request that creates a task's kie.ai task: its parameters as the client submitted
 * them, the parent's kie.ai id for chained work, and the gateway's callback URL.
 */
export function createKieTask(kie: KieClient, task: TaskRow, callBackUrl: string, abort: AbortSignal): Promise<KieResult<{ taskId: string }>> {
  const params = task.params === null ? {} : (JSON.parse(task.params) as Record<string, unknown>)
  if (task.type === 'generate') return kie.generate({ ...params, callBackUrl }, abort)
  const parent = {
    taskId: task.parent_task_id as string,
    imageIndex: task.image_index as number,
    ...(task.water_mark === null ? {} : { waterMark: task.water_mark }),
    callBackUrl
  }
  return task.type === 'vary' ? kie.generateVary(parent, abort) : kie.generateUpscale(parent, abort)
}
