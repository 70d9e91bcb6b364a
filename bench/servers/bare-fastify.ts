// The ceiling: a bare Fastify route answering a small JSON object, no plugins, no logging.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'

const app = Fastify({ logger: false })
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ host: '127.0.0.1', port: 0 })
process.send?.({ type: 'ready', port: (app.server.address() as AddressInfo).port })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
