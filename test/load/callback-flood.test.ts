// Load: a flood on POST /callbacks/mj (issue 11, part 1). Run apart from the rest of the suite
// (vitest.load.config.ts), so that other test files do not share the two cores while /healthz
// latency is measured.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { auth, buildTestApp, callbackQuery, hex32, successCallback } from '../helper.js'
import { tempDir } from '../e2e-helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx

const BAD = 'task=some-task&token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const metric = async (verdict: string) =>
  Number(new RegExp(`^gateway_callbacks_total\\{verdict="${verdict}"\\} (\\d+)$`, 'm').exec((await t.app.inject({ url: '/metrics' })).body)?.[1] ?? 0)
const submitted = async () => {
  const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0 } })
  return res.json() as { id: string; kieTaskId: string }
}

describe('a stranger flooding /callbacks/mj', () => {
  it('a flood of 10,000 bad-token callbacks of 60 KB: the database grows by under 5 MB, /healthz answers within 100 ms, genuine callbacks are all applied', async () => {
    const dir = tempDir()
    const dbPath = join(dir, 'gw.db')
    t = await buildTestApp({ dbPath })
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
    const tasks = await Promise.all(Array.from({ length: 20 }, () => submitted()))
    const size = () => [dbPath, `${dbPath}-wal`].reduce((n, f) => n + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0)
    const before = size()

    // The flood comes from another thread, so the gateway's event loop serves only the gateway.
    const flood = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads')
      const body = '{"code":200,"msg":"' + 'x'.repeat(60 * 1024 - 30) + '"}'
      let next = 0, statuses = {}
      async function lane () {
        while (next < workerData.count) {
          next++
          const res = await fetch(workerData.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
          await res.arrayBuffer()
          statuses[res.status] = (statuses[res.status] || 0) + 1
        }
      }
      Promise.all(Array.from({ length: 8 }, lane)).then(() => parentPort.postMessage(statuses))
    `, { eval: true, workerData: { url: `${base}/callbacks/mj?${BAD}`, count: 10_000 } })
    const done = new Promise<Record<string, number>>((resolve, reject) => {
      flood.once('message', resolve)
      flood.once('error', reject)
    })

    // Answering before the flood: a cold first request is not what is measured.
    await (await fetch(`${base}/healthz`)).arrayBuffer()
    const latencies: number[] = []
    let finished = false
    void done.then(() => (finished = true))
    let sent = 0
    while (!finished) {
      const started = performance.now()
      const res = await fetch(`${base}/healthz`)
      await res.arrayBuffer()
      latencies.push(performance.now() - started)
      expect(res.status).toBe(200)
      // Genuine callbacks, spread over the flood.
      if (sent < tasks.length && latencies.length % 3 === 0) {
        const task = tasks[sent++] as { id: string; kieTaskId: string }
        const cb = await fetch(`${base}/callbacks/mj?${callbackQuery(task.id)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(successCallback(task.kieTaskId)) })
        expect(cb.status).toBe(200)
        await cb.arrayBuffer()
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    const statuses = await done
    await flood.terminate()
    for (const task of tasks.slice(sent)) {
      const cb = await fetch(`${base}/callbacks/mj?${callbackQuery(task.id)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(successCallback(task.kieTaskId)) })
      expect(cb.status).toBe(200)
      await cb.arrayBuffer()
    }

    expect(statuses).toEqual({ 401: 10_000 })
    expect(sent).toBeGreaterThan(0)
    for (const task of tasks) expect(t.repo.getTask(task.id)?.status).toBe('succeeded')
    expect(size() - before).toBeLessThan(5 * 1024 * 1024)
    expect(Math.max(...latencies)).toBeLessThan(100)
    expect(await metric('bad_token')).toBe(10_000)
    expect((t.db.prepare("SELECT count(*) AS n FROM callback_deliveries WHERE verdict = 'bad_token'").get() as { n: number }).n).toBeLessThanOrEqual(60 * 2)
  }, 120_000)
})
