/**
 * Switches between the forms kie.ai's documentation (kie-api.md) and public client code show for the
 * same answer. Unlike chaos they do not misbehave: each value is a form a client must accept.
 * All default to the documented form; change sim.variants at any time.
 */
export interface Variants {
  /** How a bad/missing bearer key is answered: 200 = HTTP 200 with {"code":401,"msg":"You do not have access permissions","data":null} (kie.ai's documented default); 401 = a real HTTP 401 with that same envelope. DEFAULT 200 (this changes today's behaviour, which answers a real 401). */
  authFailureHttpStatus: 200 | 401
  /** The completion callback's body shape:
   *  'documented': {code, msg, data:{taskId, promptJson, resultUrls:[strings]}} (today's; the default)
   *  'verification': the webhook-verification page's shape: {taskId, code, msg: 'Success' (or the failure msg), data:{task_id, callbackType: 'task_completed' | 'task_failed', promptJson}} with NO resultUrls (a success callback then carries no URL at all)
   *  'resultInfoJsonObject': {code, msg, data:{taskId, promptJson, resultInfoJson:{resultUrls:[{resultUrl}]}}} (no data.resultUrls)
   *  'resultInfoJsonString': same but resultInfoJson is JSON.stringify of that object
   *  'urlObjects': data.resultUrls is [{resultUrl: '...'}] objects instead of strings
   *  'codeString': documented shape but `code` is a string ("200" / "500") */
  callbackShape: 'documented' | 'verification' | 'resultInfoJsonObject' | 'resultInfoJsonString' | 'urlObjects' | 'codeString'
  /** record-info's successFlag as a JSON number or a numeric string ("1"). Default 'number'. */
  successFlagAs: 'number' | 'string'
  /** The successFlag of a failed task in record-info: 2 (failed) or 3 (generation failed). Default 3 (today's). */
  failedFlag: 2 | 3
  /** Format of createTime/completeTime in record-info: 'iso' (default, today's), 'plain' ("YYYY-MM-DD HH:mm:ss" in UTC), 'epochMs' (a JSON number of ms), 'epochSeconds' (a JSON number of whole seconds). */
  timeFormat: 'iso' | 'plain' | 'epochMs' | 'epochSeconds'
  /** record-info answers {code:200,msg:'success',data:null} while a task is still generating. Default false. */
  recordInfoNullWhileGenerating: boolean
  /** resultInfoJson in record-info sent as a JSON string instead of an object. Default false. */
  recordInfoResultAsString: boolean
  /** How long a link from POST /api/v1/common/download-url stays valid; after that GET /direct/... answers 403 with an error envelope. Default 20 minutes (20*60_000). */
  directLinkTtlMs: number
  /** Result files (GET /files/... and /direct/...) answer 404 once this long has passed since their task finished. Default Infinity (kept forever). */
  fileRetentionMs: number
}

export type CallbackShape = Variants['callbackShape']
export type TimeFormat = Variants['timeFormat']

export const defaultVariants = (): Variants => ({
  authFailureHttpStatus: 200,
  callbackShape: 'documented',
  successFlagAs: 'number',
  failedFlag: 3,
  timeFormat: 'iso',
  recordInfoNullWhileGenerating: false,
  recordInfoResultAsString: false,
  directLinkTtlMs: 20 * 60_000,
  fileRetentionMs: Number.POSITIVE_INFINITY
})

/** A time (ms since the epoch) in one of the four forms kie.ai's APIs are seen to use. */
export function formatTime(ms: number, format: TimeFormat): string | number {
  switch (format) {
    case 'iso': return new Date(ms).toISOString()
    // sibling kie APIs: "YYYY-MM-DD HH:mm:ss", no zone; UTC here so tests do not depend on the machine's zone
    case 'plain': return new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
    case 'epochMs': return ms
    case 'epochSeconds': return Math.floor(ms / 1000)
  }
}
