import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Repository } from '../db/repository.js'
import { deliveriesExample } from '../openapi-examples.js'
import { ErrorResponseSchema, NotFoundError, NothingToRetryError } from '../errors.js'
import { clientAuth } from '../plugins/client-auth.js'
import type { Clock } from '../clock.js'
import type { Signals } from '../signals.js'
import { TaskParamsSchema } from '../tasks/schemas.js'

const Iso = Type.String({ format: 'date-time' })

export const DeliverySchema = Type.Object(
  {
    id: Type.String({ description: 'The webhook-id header: the same on every attempt' }),
    type: Type.String(),
    url: Type.String(),
    state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')]),
    createdAt: Iso,
    nextAttemptAt: Type.Union([Iso, Type.Null()]),
    attempts: Type.Array(
      Type.Object({
        at: Iso,
        statusCode: Type.Union([Type.Integer(), Type.Null()]),
        durationMs: Type.Integer(),
        error: Type.Union([Type.String(), Type.Null()])
      })
    )
  },
  { $id: 'WebhookDelivery', title: 'WebhookDelivery', examples: deliveriesExample.items }
)
export const DeliveryListSchema = Type.Object({ items: Type.Array(Type.Ref(DeliverySchema)) }, { $id: 'WebhookDeliveryList', title: 'WebhookDeliveryList', examples: [deliveriesExample] })
const iso = (ms: number) => new Date(ms).toISOString()

/** A task's webhook deliveries with their attempts, as GET /tasks/:id/deliveries shows them (the admin API too). */
export function deliveriesOf(repo: Repository, taskId: string) {
  const attempts = repo.webhookAttempts(taskId)
  return repo.webhookDeliveries(taskId).map((d) => ({
    id: d.event_id,
    type: d.type,
    url: d.url,
    state: d.state,
    createdAt: iso(d.created_at),
    nextAttemptAt: d.state === 'pending' ? iso(d.next_attempt_at) : null,
    attempts: attempts
      .filter((a) => a.delivery_id === d.id)
      .map((a) => ({ at: iso(a.at), statusCode: a.status_code, durationMs: a.duration_ms, error: a.error }))
  }))
}

export interface DeliveryRoutesOptions {
  apiKeys: readonly string[]
  repo: Repository
  clock: Clock
  signals: Signals
  /** A retried dead letter gets one more attempt: its attempts count as all but the last. */
  webhookAttempts: number
}

const deliveryRoutes: FastifyPluginAsyncTypebox<DeliveryRoutesOptions> = async (app, opts) => {
  const { repo, clock, signals } = opts
  app.addHook('onRequest', clientAuth(opts.apiKeys))
  // /upscale keeps serving upscale tasks only, as it always did; /tasks serves every kind.
  for (const [prefix, only] of [['/upscale', 'upscale'], ['/tasks', null]] as const) {
  const owned = (id: string, owner: string) => {
    const task = repo.getOwnedTask(id, owner)
    if (!task || (only !== null && task.type !== only)) throw new NotFoundError(`Task ${id} not found`)
  }

  app.get(`${prefix}/:id/deliveries`, {
    schema: {
      operationId: only === 'upscale' ? 'listUpscaleDeliveries' : 'listTaskDeliveries',
      tags: [only ?? 'tasks'],
      summary: "The task's webhook deliveries and every attempt",
      params: TaskParamsSchema,
      response: { 200: Type.Ref(DeliveryListSchema), ...Object.fromEntries([401, 404, 429].map((c) => [c, Type.Ref(ErrorResponseSchema)])) }
    }
  }, async (request) => {
    owned(request.params.id, request.clientId)
    return { items: deliveriesOf(repo, request.params.id) }
  })

  app.post(`${prefix}/:id/deliveries/retry`, {
    schema: {
      operationId: only === 'upscale' ? 'retryUpscaleDeliveries' : 'retryTaskDeliveries',
      tags: [only ?? 'tasks'],
      summary: 'Send a dead-lettered webhook delivery once more',
      params: TaskParamsSchema,
      response: { 202: Type.Ref(DeliveryListSchema), ...Object.fromEntries([401, 404, 409, 429].map((c) => [c, Type.Ref(ErrorResponseSchema)])) }
    }
  }, async (request, reply) => {
    owned(request.params.id, request.clientId)
    // One more attempt: counted as the last of the schedule, so a failure dead-letters it again.
    const retried = repo.retryDeadWebhooks(request.params.id, clock.now(), opts.webhookAttempts)
    if (retried.length === 0) throw new NothingToRetryError(request.params.id)
    signals.emit('webhookDue')
    return reply.code(202).send({ items: deliveriesOf(repo, request.params.id) })
  })
  }
}

export default deliveryRoutes
