// Issue 16: the operator console at /console, in a real browser. Debian's chromium (headless,
// driven by playwright-core) against the gateway in this process over loopback, with the
// simulator as kie.ai, the result archive (and its thumbnails) and a client's webhook receiver
// that answers 410, so a delivery is dead-lettered at once. The browser test runs where
// /usr/bin/chromium exists (CI installs it, see .ci/run); the header and 404 tests always run.
//
// CONSOLE_SCREENSHOTS=1 also saves the list and a task page as docs/console-list.png and
// docs/console-task.png (the README shows them).
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONSOLE_CSP } from '../src/plugins/console.js'
import { buildTestApp, closeServer, onCleanup } from './helper.js'
import { freePort, spawnGateway, tempDir, until } from './e2e-helper.js'
import { setup } from './resilience-helper.js'

const CHROMIUM = '/usr/bin/chromium'
const ADMIN_ENTRY = 'ops:admin-key-0123456789abcdef'
/** What the operator pastes: the key part of the named entry. */
const ADMIN_KEY = 'admin-key-0123456789abcdef'
const WEBHOOK_SECRET = 'whsec-console-e2e-0123456789abcdef'
const REPO = fileURLToPath(new URL('..', import.meta.url))
const CONSOLE_SRC = join(REPO, 'src/console')
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS === '1'

// What page.evaluate and waitForFunction run is the browser's code, with the browser's globals,
// which this Node-only project does not declare.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any, location: { hash: string; href: string }

const XSS_PROMPT = '<img src=x onerror=alert(1)>'
const XSS_WATERMARK = '<script>alert(1)</script>'

/** A client's webhook receiver that answers 410: the delivery is dead-lettered at once. */
async function goneReceiver() {
  let received = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      received++
      res.writeHead(410).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  onCleanup(() => closeServer(server))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received: () => received }
}

describe('the console is served with a strict policy, and only with an admin key', () => {
  it('every console response carries the CSP and nosniff; the page is never stored; /console redirects to /console/', async () => {
    const { app } = await buildTestApp({ adminKeys: [ADMIN_ENTRY] })
    const get = (url: string) => app.inject({ url })

    const redirect = await get('/console?x=1')
    expect(redirect.statusCode).toBe(301)
    expect(redirect.headers.location).toBe('console/?x=1')
    expect(redirect.headers['content-security-policy']).toBe(CONSOLE_CSP)

    const page = await get('/console/')
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['cache-control']).toBe('no-store')
    expect(page.body).toContain('<script type="module" src="console.js"></script>')
    expect((await get('/console/index.html')).headers['cache-control']).toBe('no-store')

    for (const [path, type] of [['console.js', /^(text|application)\/javascript/], ['console.css', /^text\/css/], ['favicon.svg', /^image\/svg\+xml/]] as const) {
      const res = await get(`/console/${path}`)
      expect(res.statusCode, path).toBe(200)
      expect(res.headers['content-type'], path).toMatch(type)
      expect(res.headers['cache-control'], path).toBe('no-cache')
      expect(res.headers.etag, path).toBeTruthy()
    }
    const missing = await get('/console/nope.js')
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ statusCode: 404, error: 'Not Found', code: 'GW_NOT_FOUND', message: 'Route GET /console/nope.js not found' })
    // Nothing outside the folder, however the path is spelled.
    for (const url of ['/console/../package.json', '/console/%2e%2e/package.json', '/console/..%2fpackage.json', '/console//etc/passwd', '/console/.hidden']) {
      const res = await get(url)
      expect([400, 403, 404], url).toContain(res.statusCode)
      expect(res.body, url).not.toContain('kie-mj-upscale-gateway')
    }

    for (const res of [redirect, page, missing, await get('/console/console.js'), await get('/console/console.css')]) {
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP)
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['x-frame-options']).toBe('DENY')
    }
    // The rest of the gateway keeps its own headers.
    expect((await get('/healthz')).headers['content-security-policy']).toBeUndefined()
  })

  it('without an admin key, /console and everything below it are 404 in the common error shape', async () => {
    const { app } = await buildTestApp()
    for (const url of ['/console', '/console/', '/console/index.html', '/console/console.js']) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(404)
      expect(res.json(), url).toEqual({ statusCode: 404, error: 'Not Found', code: 'GW_NOT_FOUND', message: `Route GET ${url} not found` })
      expect(res.headers['content-security-policy']).toBeUndefined()
    }
  })

  it('the page has no inline script, style or event handler, and its script never turns text into markup', () => {
    const html = readFileSync(join(CONSOLE_SRC, 'index.html'), 'utf8')
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)]
    expect(scripts).toHaveLength(1)
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="[^"]+"/)
      expect(body?.trim()).toBe('')
    }
    expect(html).not.toMatch(/<style\b/i)
    expect(html).not.toMatch(/\sstyle\s*=/i)
    expect(html).not.toMatch(/\son[a-z]+\s*=/i)
    expect(html).not.toMatch(/javascript:/i)
    for (const file of readdirSync(CONSOLE_SRC).filter((f) => f.endsWith('.js'))) {
      const source = readFileSync(join(CONSOLE_SRC, file), 'utf8')
      expect(source, file).not.toMatch(/\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\s*\(|new Function\b|srcdoc/)
      // No handler from text, no URL set but through el()'s checks.
      expect(source, file).not.toMatch(/setAttribute\(\s*['"`]on|\.(src|href|action)\s*=[^=]/)
    }
  })

  it('the built server serves it from dist/ when ADMIN_API_KEYS is set', async () => {
    expect(existsSync(join(REPO, 'dist/src/console/index.html')), 'npm run build copies src/console into dist/src/console').toBe(true)
    const dir = tempDir()
    const port = await freePort()
    const child = spawnGateway({
      NODE_ENV: 'production',
      PORT: String(port),
      DATABASE_PATH: join(dir, 'gw.db'),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      KIE_API_KEY: 'console-test-kie-key',
      KIE_BASE_URL: 'http://127.0.0.1:9',
      API_KEYS: 'client-key-0123456789abcdef',
      ADMIN_API_KEYS: ADMIN_ENTRY,
      CALLBACK_SECRET: 'console-test-callback-secret-0123456789',
      LOG_LEVEL: 'error'
    })
    onCleanup(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await child.exited
    })
    const base = `http://127.0.0.1:${port}`
    await until('the built gateway to listen', async () => {
      if (child.exitCode !== null) throw new Error(`gateway exited: ${child.output()}`)
      return (await fetch(`${base}/healthz`).catch(() => null))?.ok
    })
    const page = await fetch(`${base}/console/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP)
    expect(await page.text()).toContain('console.js')
    expect((await fetch(`${base}/console/console.js`)).status).toBe(200)
    const overview = await fetch(`${base}/admin/overview`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    expect(overview.status).toBe(200)
  })
})

describe.skipIf(!existsSync(CHROMIUM))('the operator console in a browser (chromium)', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
    })
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('logs in, lists, filters, searches, opens a task with its images, retries a dead webhook, and shows hostile text as text', async () => {
    const hook = await goneReceiver()
    const t = await setup({
      // The reconciler leaves submitted tasks alone for a minute: only the operator's button asks.
      reconcile: { reconcileAfterMs: 60_000 },
      app: (simUrl, dir) => ({
        adminKeys: [ADMIN_ENTRY],
        archive: { dir: `${dir}/results`, hosts: [new URL(simUrl).host] },
        webhooks: { secret: WEBHOOK_SECRET, allowLoopback: true, scheduleMs: [] }
      })
    })
    // Five tasks: a hostile prompt and watermark (with a webhook that dies), a plain grid, an
    // upscale chained to it, a grid kie.ai fails, and an upscale left submitted.
    const made = async (path: string, body: unknown) => {
      const res = await t.client.post(path, body)
      expect(res.status, JSON.stringify(body)).toBe(202)
      return (await res.json()).id as string
    }
    const hostile = await made('/generate', { taskType: 'mj_txt2img', prompt: XSS_PROMPT, waterMark: XSS_WATERMARK, callbackUrl: hook.url })
    const grid = await made('/generate', { taskType: 'mj_txt2img', prompt: 'a lighthouse at dawn, watercolor', speed: 'fast', aspectRatio: '16:9', callbackUrl: hook.url })
    const upscale = await made('/upscale', { parentId: grid, imageIndex: 1 })
    t.sim.failGrids = true
    const failed = await made('/generate', { taskType: 'mj_txt2img', prompt: 'a storm over the harbour' })
    t.sim.failGrids = false
    for (const id of [hostile, grid, upscale, failed]) await t.final(id)
    await until('both grids archived', () => [hostile, grid].every((id) => t.gw.repo.resultFiles(id).filter((f) => f.status === 'stored').length === 4))
    await until('the hostile task\u2019s webhook dead-lettered', () => t.gw.repo.webhookDeliveries(hostile).some((d) => d.state === 'dead'))
    const upscaleKieId = t.row(upscale).kie_task_id as string
    // kie.ai loses its callback, and record-info says "generating" until told otherwise.
    t.sim.chaos.dropCallbackRate = 1
    t.sim.chaos.recordInfoStuckGenerating = true
    const open = await made('/upscale', { taskId: t.sim.createParentTask(), imageIndex: 0 })
    await until('the fifth task submitted', () => t.row(open).status === 'submitted' && t.row(open).kie_task_id !== null)
    const openKieId = t.row(open).kie_task_id as string

    const context = await browser.newContext({ viewport: { width: 1440, height: 960 } })
    onCleanup(() => context.close())
    const page = await context.newPage()
    const dialogs: string[] = []
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    const problems: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text())
    })
    page.on('pageerror', (e) => problems.push(e.message))

    // The login form; a wrong key comes back to it with a message.
    await page.goto(`${t.gw.url}/console`)
    expect(new URL(page.url()).pathname).toBe('/console/')
    await page.fill('#admin-key', 'not-the-admin-key-0000000000')
    await page.click('#login-form button[type=submit]')
    await page.waitForFunction(() => /refused \(401\)/.test(document.getElementById('login-message')?.textContent ?? ''))
    expect(await page.isVisible('#login')).toBe(true)
    await page.fill('#admin-key', ADMIN_KEY)
    await page.click('#login-form button[type=submit]')

    // The list: every client's tasks, newest first; the overview beside it.
    const rows = page.locator('table.tasks tbody tr')
    const ids = () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-task-id')))
    await until('five tasks listed', async () => (await rows.count()) === 5)
    expect(await ids()).toEqual([open, failed, upscale, grid, hostile])
    await page.waitForFunction(() => document.querySelector('[data-field="tasks-succeeded"]')?.textContent === '3')
    expect(await page.textContent('[data-field="tasks-failed"]')).toBe('1')
    expect(await page.textContent('[data-field="tasks-submitted"]')).toBe('1')
    expect(await page.textContent('[data-card="refused"]')).toContain('signature_missing means')

    // Hostile text is text: visible as written, no element made of it, no dialog.
    const hostileRow = page.locator(`tr[data-task-id="${hostile}"]`)
    expect(await hostileRow.locator('[data-field="prompt"]').textContent()).toBe(XSS_PROMPT)
    expect(await hostileRow.locator('[data-field="waterMark"]').textContent()).toBe(XSS_WATERMARK)
    const injected = () => page.evaluate(() => ({
      imgX: document.querySelectorAll('img[src="x"], img[onerror]').length,
      scripts: [...document.scripts].map((s: { src: string }) => new URL(s.src, location.href).pathname)
    }))
    expect(await injected()).toEqual({ imgX: 0, scripts: ['/console/console.js'] })

    // Filter by status: kept through the next refresh by itself.
    await page.selectOption('select[name=status]', 'failed')
    await until('only the failed task', async () => JSON.stringify(await ids()) === JSON.stringify([failed]))
    const refreshes = async () => Number(await page.getAttribute('#refresh-state', 'data-count'))
    const before = await refreshes()
    await until('a refresh by itself', async () => (await refreshes()) > before, 10_000)
    expect(await ids()).toEqual([failed])
    expect(await page.inputValue('select[name=status]')).toBe('failed')
    await page.selectOption('select[name=status]', '')
    await until('all five again', async () => (await rows.count()) === 5)

    // Search by the gateway id, then by kie.ai's.
    for (const q of [upscale, upscaleKieId]) {
      await page.fill('input[name=q]', q)
      await page.press('input[name=q]', 'Enter')
      await until(`the search for ${q}`, async () => JSON.stringify(await ids()) === JSON.stringify([upscale]))
    }
    await page.click('#filters button.secondary') // Clear
    await until('all five after clearing', async () => (await rows.count()) === 5)

    if (SCREENSHOTS) {
      mkdirSync(join(REPO, 'docs'), { recursive: true })
      await page.screenshot({ path: join(REPO, 'docs/console-list.png'), fullPage: true })
    }

    // The hostile task's page: its fields as text, its timeline, kie.ai's callback, its images.
    await hostileRow.locator('a').click()
    await page.waitForFunction((id) => location.hash === `#/tasks/${id}` && document.querySelector('#task h1')?.textContent?.includes(id), hostile)
    expect(await page.textContent('dd[data-field="prompt"]')).toBe(XSS_PROMPT)
    expect(await page.textContent('dd[data-field="watermark"]')).toBe(XSS_WATERMARK)
    expect(await page.textContent('dd[data-field="params"]')).toContain(XSS_PROMPT)
    expect(await injected()).toEqual({ imgX: 0, scripts: ['/console/console.js'] })
    const timeline = await page.locator('[data-section="timeline"] tbody tr').allTextContents()
    expect(timeline.map((r) => r.replace(/^[\d\s:-]+/, ''))).toEqual(['—queuedcreate', 'queuedsubmittedsubmit', 'submittedsucceededcallback'])
    const callback = page.locator('article.callback').first()
    expect(await callback.locator('.badge').first().textContent()).toBe('accepted')
    expect(JSON.parse((await callback.locator('pre.body').textContent()) as string)).toMatchObject({ code: 200, data: { taskId: t.row(hostile).kie_task_id } })

    // Four thumbnails, fetched with the key and shown through blob: URLs.
    const thumbs = page.locator('.files img')
    await until('four thumbnails decoded', async () =>
      (await thumbs.count()) === 4 && (await thumbs.evaluateAll((imgs) => imgs.every((i) => i.complete && i.naturalWidth > 0))))
    expect(await thumbs.evaluateAll((imgs) => imgs.map((i) => i.getAttribute('src')?.slice(0, 5)))).toEqual(['blob:', 'blob:', 'blob:', 'blob:'])
    // A click opens the full image.
    await page.locator('.files button.thumb').nth(2).click()
    await page.waitForFunction(() => {
      const img = document.getElementById('viewer-image')
      return document.getElementById('viewer')?.open && img?.complete && img.naturalWidth > 0
    })
    expect(await page.textContent('#viewer-caption')).toMatch(/^Image 2 of .* image\/png/)
    await page.click('#viewer-close')
    await page.waitForFunction(() => !document.getElementById('viewer').open)

    // The dead webhook: Retry, and the new attempt appears (by the page's own refresh).
    const delivery = page.locator('article.delivery')
    expect(await delivery.getAttribute('data-state')).toBe('dead')
    expect(await delivery.locator('tbody tr').count()).toBe(1)
    expect(await delivery.locator('tbody tr td').nth(2).textContent()).toBe('410')
    expect(await page.isVisible('text=Reconcile now')).toBe(false) // only for submitted tasks
    const sent = hook.received()
    await delivery.locator('button.retry').click()
    await page.waitForFunction(() => /Retry queued/.test(document.getElementById('notice')?.textContent ?? ''))
    await until('a second attempt shown', async () => (await page.locator('article.delivery tbody tr').count()) === 2, 10_000)
    expect(hook.received()).toBe(sent + 1)
    expect(await page.getAttribute('article.delivery', 'data-state')).toBe('dead')
    expect(hashOf(page)).toBe(`#/tasks/${hostile}`)

    // Back to the list, to the submitted task: "Reconcile now" asks kie.ai's record-info at once.
    await page.click('text=\u2190 All tasks')
    await until('the list again', async () => (await rows.count()) === 5)
    await page.locator(`tr[data-task-id="${open}"] a`).click()
    const reconcile = page.locator('button', { hasText: 'Reconcile now' })
    await reconcile.waitFor()
    t.sim.chaos.recordInfoStuckGenerating = false
    const asked = t.recordInfoCalls(openKieId).length
    await reconcile.click()
    await page.waitForFunction(() => /Reconciliation asked/.test(document.getElementById('notice')?.textContent ?? ''))
    await until('record-info asked', () => t.recordInfoCalls(openKieId).length > asked)
    await until('the task shown succeeded', async () => (await page.textContent('#task h1 .badge')) === 'succeeded', 10_000)
    expect(await reconcile.count()).toBe(0)
    expect(await page.locator('[data-section="timeline"] tbody tr td.mono').allTextContents()).toEqual(['create', 'submit', 'reconcile'])

    if (SCREENSHOTS) {
      await page.goto(`${t.gw.url}/console/#/tasks/${grid}`)
      await until('the grid\u2019s thumbnails', async () =>
        page.locator('.files img').evaluateAll((imgs) => imgs.length === 4 && imgs.every((i) => i.naturalWidth > 0)))
      await page.screenshot({ path: join(REPO, 'docs/console-task.png'), fullPage: true })
    }

    expect(dialogs).toEqual([])
    expect(problems).toEqual([])
  }, 60_000)
})

const hashOf = (page: Page) => new URL(page.url()).hash
