// The ceiling: a bare Fastify route answering a small JSON object, no plugins, no logging.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'

const app = Fastify({ logger: false })
const hello = async () => ({ hello: 'world' })
app.get('/', hello)
// The gateway's read routes, so that both arms of a ratio can be sent the very same requests.
app.get('/upscale/:id', hello)
app.get('/tasks/:id', hello)
app.get('/tasks', hello)
await app.listen({ host: '127.0.0.1', port: 0 })
process.send?.({ type: 'ready', port: (app.server.address() as AddressInfo).port })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
