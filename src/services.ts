import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Clock } from './clock.js'
import type { Repository } from './db/repository.js'
import type { KieClient } from './kie/client.js'
import type { SubmitDeps } from './tasks/submit.js'

/** What the routes and workers share; built once in buildApp. */
export interface Services {
  repo: Repository
  kie: KieClient
  clock: Clock
  apiKeys: readonly string[]
  callbackSecret: string
  kieWebhookHmacKey: string | null
  submitDeps(log: Logger): SubmitDeps
}
