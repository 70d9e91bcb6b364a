// The operator console: plain DOM, no framework and no build step. Its data come from the
// admin API (/admin/*), called with the admin key the operator pasted (kept in this tab's
// sessionStorage only).
//
// Safety rule: everything a client or kie.ai wrote (prompts, watermarks, kie.ai's messages,
// raw callback bodies, URLs) reaches the page as text nodes or through setAttribute on the few
// attributes el() allows. Nothing here turns text into markup (ESLint refuses the HTML sinks
// in this folder, and test/console.browser.test.ts checks the sources). The Content-Security-
// Policy the gateway sends with this file forbids inline script and style as a second line of
// defence.

const KEY_STORAGE = 'gateway-console.admin-key'
const FILTER_STORAGE = 'gateway-console.filters'
const API_BASE = new URL('../admin/', document.baseURI)
const REFRESH_MS = 5000
const PAGE_SIZE = 25
const STATUSES = ['queued', 'submitted', 'succeeded', 'failed']
const TYPES = ['generate', 'vary', 'upscale']
const NO_FILTERS = { status: '', type: '', client: '', q: '' }

// ------------------------------------------------------------------------------ el()

// Attributes that carry no code and no URL. href and src are checked apart: an in-page route
// (#/…) and a blob: URL the page made itself are the only values they take.
const PLAIN_ATTRIBUTES = new Set([
  'alt', 'aria-busy', 'aria-current', 'aria-label', 'aria-live', 'autocomplete', 'class', 'colspan', 'datetime',
  'disabled', 'for', 'hidden', 'id', 'inputmode', 'maxlength', 'name', 'placeholder', 'role', 'scope',
  'spellcheck', 'title', 'type', 'value'
])

/**
 * The one way this page makes DOM: an element, its attributes (set with setAttribute, or
 * addEventListener for on* functions) and its children (nodes, or strings made into text nodes).
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on')) {
      if (typeof value !== 'function') throw new TypeError(`el: ${name} must be a function`)
      node.addEventListener(name.slice(2), value)
    } else if (name === 'href') {
      if (!String(value).startsWith('#')) throw new TypeError('el: href must be an in-page route (#…)')
      node.setAttribute('href', String(value))
    } else if (name === 'src') {
      if (!String(value).startsWith('blob:')) throw new TypeError('el: src must be a blob: URL made by this page')
      node.setAttribute('src', String(value))
    } else if (PLAIN_ATTRIBUTES.has(name) || name.startsWith('data-')) {
      node.setAttribute(name, value === true ? '' : String(value))
    } else {
      throw new TypeError(`el: attribute ${name} is not allowed`)
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

const $ = (id) => document.getElementById(id)

// ------------------------------------------------------------------------------ state

const state = {
  key: sessionStorage.getItem(KEY_STORAGE),
  filters: loadFilters(),
  /** The cursor of each list page visited; the last one is on screen (null: the newest). */
  cursors: [null],
  route: parseRoute(),
  /** The JSON now on screen, per part: an unchanged answer is not drawn again. */
  drawn: { overview: '', main: '' },
  /** Thumbnails fetched for the open task: `${taskId}/${index}` → blob: URL. */
  thumbs: new Map(),
  /** The full image in the viewer, revoked when it closes. */
  fullImage: null,
  /** The list's next page, from its last answer. */
  nextCursor: null,
  timer: null,
  generation: 0
}

function loadFilters() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(FILTER_STORAGE) ?? 'null')
    if (saved && typeof saved === 'object') {
      const f = { ...NO_FILTERS }
      for (const k of Object.keys(NO_FILTERS)) if (typeof saved[k] === 'string') f[k] = saved[k]
      return f
    }
  } catch {
    // a broken entry is forgotten
  }
  return { ...NO_FILTERS }
}

function parseRoute() {
  const m = /^#\/tasks\/([^/?#]+)$/.exec(location.hash)
  if (!m) return { name: 'list' }
  try {
    return { name: 'task', id: decodeURIComponent(m[1]) }
  } catch {
    return { name: 'list' }
  }
}

const taskHref = (id) => `#/tasks/${encodeURIComponent(id)}`

// ------------------------------------------------------------------------------ the admin API

class ApiError extends Error {
  constructor(status, body) {
    super(body && typeof body.message === 'string' ? body.message : `HTTP ${status}`)
    this.status = status
    this.code = body && typeof body.code === 'string' ? body.code : null
  }
}

/** Thrown after a 401 sent the operator back to the login form: nothing more to show. */
class LoggedOut extends Error {}

/** One call to the admin API with the admin key; a 401 ends the session. */
async function request(path, { method = 'GET', as = 'json' } = {}) {
  const url = new URL(path, API_BASE)
  // The key goes to this gateway only, whatever a URL in an answer says.
  if (url.origin !== location.origin) throw new ApiError(0, { message: `Not fetched: ${url.origin} is not this gateway` })
  let res
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${state.key}`, accept: as === 'json' ? 'application/json' : 'image/*' },
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error'
    })
  } catch (err) {
    throw new ApiError(0, { message: `The gateway did not answer (${err instanceof Error ? err.message : String(err)})` })
  }
  if (res.status === 401) {
    showLogin('The admin key was refused (401). Paste a key from ADMIN_API_KEYS.')
    throw new LoggedOut()
  }
  if (!res.ok) {
    let body = null
    try {
      body = await res.json()
    } catch {
      // not JSON: the status says it
    }
    throw new ApiError(res.status, body)
  }
  if (as === 'blob') return res.blob()
  const text = await res.text()
  return text === '' ? null : JSON.parse(text)
}

const enc = encodeURIComponent

function listQuery() {
  const q = new URLSearchParams()
  for (const [name, value] of Object.entries(state.filters)) if (value.trim() !== '') q.set(name, value.trim())
  q.set('limit', String(PAGE_SIZE))
  const cursor = state.cursors[state.cursors.length - 1]
  if (cursor) q.set('cursor', cursor)
  return `tasks?${q}`
}

// ------------------------------------------------------------------------------ formatting

const pad = (n) => String(n).padStart(2, '0')

function formatTime(iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return String(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

function relative(iso) {
  if (!iso) return ''
  const ms = new Date(iso).getTime() - Date.now()
  if (Number.isNaN(ms)) return ''
  const s = Math.round(Math.abs(ms) / 1000)
  const span = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : s < 86400 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`
  return ms >= 0 ? `in ${span}` : `${span} ago`
}

const time = (iso) => el('time', { datetime: iso, title: iso ? `${iso} (${relative(iso)})` : undefined }, formatTime(iso))
/** "3 s ago", "in 2 min", with the time itself as its title. */
const ago = (iso) => (iso ? el('time', { datetime: iso, title: `${formatTime(iso)} (${iso})` }, relative(iso)) : '—')

const orDash = (value) => (value === null || value === undefined || value === '' ? '—' : String(value))

function formatBytes(n) {
  if (n === null || n === undefined) return '—'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

const STATUS_CLASS = {
  queued: 'neutral', submitted: 'info', succeeded: 'ok', failed: 'bad',
  pending: 'info', delivered: 'ok', dead: 'bad',
  closed: 'ok', open: 'bad', 'half-open': 'warn',
  valid: 'ok', accepted: 'ok', stored: 'ok', duplicate: 'neutral'
}

const badge = (text) => el('span', { class: `badge ${STATUS_CLASS[text] ?? (String(text).startsWith('signature_') || String(text).startsWith('bad_') ? 'bad' : 'neutral')}` }, orDash(text))

const json = (value) => el('pre', { class: 'json' }, JSON.stringify(value, null, 2))

/** A gateway id in a list: its first 8 characters (the link's title and the task page show it whole). */
const shortId = (id) => (typeof id === 'string' && id.length > 12 ? `${id.slice(0, 8)}\u2026` : orDash(id))

// ------------------------------------------------------------------------------ shell

function showLogin(message) {
  stopTimer()
  state.key = null
  sessionStorage.removeItem(KEY_STORAGE)
  state.drawn = { overview: '', main: '' }
  forgetImages()
  $('shell').hidden = true
  $('logout').hidden = true
  $('refresh-state').textContent = ''
  $('login').hidden = false
  $('login-message').textContent = message
  const input = $('admin-key')
  input.value = ''
  input.focus()
}

function enter() {
  $('login').hidden = true
  $('login-message').textContent = ''
  $('shell').hidden = false
  $('logout').hidden = false
  showView()
}

function setBanner(message) {
  const banner = $('banner')
  banner.hidden = !message
  banner.textContent = message ?? ''
}

function stopTimer() {
  clearTimeout(state.timer)
  state.timer = null
}

/** Fetches what is on screen now, draws what changed, and comes back in REFRESH_MS. */
async function refresh() {
  stopTimer()
  if (!state.key) return
  const generation = ++state.generation
  const route = state.route
  const main = route.name === 'task' ? `tasks/${enc(route.id)}` : listQuery()
  $('refresh-state').textContent = 'refreshing…'
  const [overview, body] = await Promise.allSettled([request('overview'), request(main)])
  // A newer refresh (a filter, a page, another task) was started meanwhile: its answer counts.
  if (generation !== state.generation || !state.key) return
  const failures = [overview, body].filter((r) => r.status === 'rejected').map((r) => r.reason)
  if (failures.some((f) => f instanceof LoggedOut)) return
  try {
    if (overview.status === 'fulfilled') drawOverview(overview.value)
    if (body.status === 'fulfilled') {
      if (route.name === 'task') drawTask(body.value)
      else drawList(body.value)
    } else if (route.name === 'task' && body.reason instanceof ApiError && body.reason.status === 404) {
      drawMissingTask(route.id)
    }
  } catch (err) {
    failures.push(new Error(`The console could not show this answer: ${err instanceof Error ? err.message : String(err)}`))
  }
  const shown = failures.filter((f) => !(route.name === 'task' && f instanceof ApiError && f.status === 404))
  setBanner(shown.length ? shown.map(describe).join(' · ') : null)
  const stamp = $('refresh-state')
  stamp.textContent = `updated ${formatTime(new Date().toISOString()).slice(11)} · every ${REFRESH_MS / 1000} s`
  stamp.setAttribute('data-count', String(Number(stamp.getAttribute('data-count') ?? 0) + 1))
  state.timer = setTimeout(refresh, REFRESH_MS)
}

const describe = (err) => (err instanceof ApiError && err.code ? `${err.code}: ${err.message}` : String(err?.message ?? err))

/** Draws the frame of the current route, then fills it. */
function showView() {
  state.route = parseRoute()
  state.drawn.main = ''
  forgetImages()
  const view = $('view')
  if (state.route.name === 'task') {
    view.replaceChildren(
      el('p', { class: 'crumbs' }, el('a', { href: '#/' }, '← All tasks')),
      el('p', { id: 'notice', class: 'notice', role: 'status', hidden: true }),
      el('div', { id: 'task', 'aria-busy': 'true' }, el('p', { class: 'muted' }, 'Loading…'))
    )
  } else {
    view.replaceChildren(filterForm(), el('div', { id: 'list', 'aria-busy': 'true' }, el('p', { class: 'muted' }, 'Loading…')))
  }
  void refresh()
}

// ------------------------------------------------------------------------------ overview

function drawOverview(o) {
  const text = JSON.stringify(o)
  if (text === state.drawn.overview) return
  state.drawn.overview = text
  const q = o.queue ?? {}
  const w = q.window ?? {}
  const b = o.breaker ?? {}
  const c = o.credits ?? {}
  const t = o.tasks ?? {}
  const refused = o.refusedCallbacks ?? { sinceMs: 3600000, byVerdict: [] }
  const byVerdict = Array.isArray(refused.byVerdict) ? refused.byVerdict : []
  const unsigned = byVerdict.find((v) => v.verdict === 'signature_missing')
  const minutes = Math.round((refused.sinceMs ?? 3600000) / 60000)

  const card = (title, id, ...rows) => el('div', { class: 'card', 'data-card': id }, el('h2', null, title), ...rows)
  const row = (label, ...value) => el('p', { class: 'row' }, el('span', { class: 'label' }, label), el('span', { class: 'value' }, ...value))

  $('overview').replaceChildren(
    card('Queue', 'queue',
      row('depth', el('strong', { 'data-field': 'queue-depth' }, orDash(q.depth))),
      row('next send', q.nextSendAt ? ago(q.nextSendAt) : '—'),
      row('rate window', `${orDash(w.used)} / ${orDash(w.max)} per ${w.windowMs ? `${w.windowMs / 1000} s` : '—'}`)
    ),
    card('Circuit breaker', 'breaker',
      row('state', badge(b.state)),
      row('open until', b.openUntil ? ago(b.openUntil) : '—')
    ),
    card('kie.ai credits', 'credits',
      row('balance', el('strong', null, c.balance === null || c.balance === undefined ? 'unknown' : String(c.balance))),
      row('checked', c.checkedAt ? ago(c.checkedAt) : 'not yet')
    ),
    card('Tasks', 'tasks', ...STATUSES.map((s) => row(s, el('strong', { 'data-field': `tasks-${s}` }, orDash(t[s]))))),
    card(`Refused callbacks (last ${minutes === 60 ? 'hour' : `${minutes} min`})`, 'refused',
      byVerdict.length === 0
        ? el('p', { class: 'muted' }, 'none')
        : el('ul', { class: 'verdicts' }, byVerdict.map((v) => el('li', null, badge(v.verdict), ' ', el('strong', null, String(v.count))))),
      el('p', { class: unsigned && unsigned.count > 0 ? 'note warn' : 'note' },
        'A burst of signature_missing means kie.ai\u2019s webhook HMAC setting is off: turn it on (the gateway checks signatures with KIE_WEBHOOK_HMAC_KEY).')
    )
  )
}

// ------------------------------------------------------------------------------ the task list

function filterForm() {
  const f = state.filters
  const select = (name, label, values) =>
    el('label', null, label,
      el('select', { name, onchange: applyFilters },
        el('option', { value: '' }, 'any'),
        values.map((v) => {
          const option = el('option', { value: v }, v)
          option.selected = f[name] === v
          return option
        })
      )
    )
  const form = el('form', { id: 'filters', class: 'filters', autocomplete: 'off', role: 'search', onsubmit: (e) => { e.preventDefault(); applyFilters() } },
    select('status', 'Status', STATUSES),
    select('type', 'Type', TYPES),
    el('label', null, 'Client', el('input', { name: 'client', type: 'text', value: f.client, placeholder: 'name:<key name> or fingerprint', spellcheck: 'false', onchange: applyFilters })),
    el('label', { class: 'grow' }, 'Search', el('input', { name: 'q', type: 'search', value: f.q, placeholder: 'gateway id or kie.ai id', spellcheck: 'false' })),
    el('button', { type: 'submit' }, 'Search'),
    el('button', { type: 'button', class: 'secondary', onclick: clearFilters }, 'Clear')
  )
  return form
}

function readFilters() {
  const form = $('filters')
  const f = { ...NO_FILTERS }
  for (const name of Object.keys(NO_FILTERS)) f[name] = String(form.elements.namedItem(name)?.value ?? '')
  return f
}

function applyFilters() {
  state.filters = readFilters()
  sessionStorage.setItem(FILTER_STORAGE, JSON.stringify(state.filters))
  state.cursors = [null]
  state.drawn.main = ''
  void refresh()
}

function filterBy(name, value) {
  const input = $('filters')?.elements.namedItem(name)
  if (!input) return
  input.value = value
  applyFilters()
}

function clearFilters() {
  const form = $('filters')
  for (const name of Object.keys(NO_FILTERS)) form.elements.namedItem(name).value = ''
  applyFilters()
}

function page(delta) {
  if (delta > 0 && state.nextCursor) state.cursors.push(state.nextCursor)
  if (delta < 0 && state.cursors.length > 1) state.cursors.pop()
  state.drawn.main = ''
  void refresh()
}

function drawList(body) {
  const list = $('list')
  if (!list) return
  const text = JSON.stringify(body)
  if (text === state.drawn.main) return
  state.drawn.main = text
  const items = Array.isArray(body?.items) ? body.items : []
  state.nextCursor = body?.nextCursor ?? null
  const filtered = Object.values(state.filters).some((v) => v.trim() !== '')
  const head = ['created', 'id', 'type', 'status', 'client', 'kie.ai id', 'prompt', 'watermark', 'error', 'updated']
  const table = el('table', { class: 'tasks' },
    el('thead', null, el('tr', null, head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', null, items.map((t) =>
      el('tr', { 'data-task-id': t.id },
        el('td', { class: 'nowrap' }, time(t.createdAt)),
        el('td', { class: 'mono nowrap' }, el('a', { href: taskHref(t.id), title: t.id }, shortId(t.id))),
        el('td', null, orDash(t.type)),
        el('td', null, badge(t.status)),
        el('td', null, el('button', { type: 'button', class: 'chip', title: `Show only the tasks of ${t.client}`, onclick: () => filterBy('client', t.client) }, orDash(t.client))),
        el('td', { class: 'mono clip narrow', title: t.kieTaskId ?? undefined }, orDash(t.kieTaskId)),
        el('td', { class: 'clip', title: t.prompt ?? undefined, 'data-field': 'prompt' }, orDash(t.prompt)),
        el('td', { class: 'clip', title: t.waterMark ?? undefined, 'data-field': 'waterMark' }, orDash(t.waterMark)),
        el('td', null, t.errorCode ? el('span', { class: 'code bad' }, t.errorCode) : '—'),
        el('td', { class: 'nowrap muted' }, ago(t.updatedAt))
      )
    ))
  )
  const pageNo = state.cursors.length
  list.setAttribute('aria-busy', 'false')
  list.replaceChildren(
    items.length === 0 ? el('p', { class: 'empty' }, filtered ? 'No task matches these filters.' : 'No tasks yet.') : table,
    el('nav', { class: 'pager', 'aria-label': 'Pages' },
      el('button', { type: 'button', class: 'secondary', disabled: pageNo === 1, onclick: () => page(-1) }, '← Newer'),
      el('span', { class: 'muted' }, `page ${pageNo} · ${items.length} task${items.length === 1 ? '' : 's'}`),
      el('button', { type: 'button', class: 'secondary', disabled: !state.nextCursor, onclick: () => page(1) }, 'Older →')
    )
  )
}

// ------------------------------------------------------------------------------ one task

function notice(message, kind = 'ok') {
  const p = $('notice')
  if (!p) return
  p.hidden = false
  p.className = `notice ${kind}`
  p.textContent = message
}

/** A button that POSTs to the admin API, says what happened and refreshes. */
function actionButton(label, path, done, extra = {}) {
  const button = el('button', {
    type: 'button',
    ...extra,
    onclick: async () => {
      button.disabled = true
      try {
        const body = await request(path, { method: 'POST' })
        notice(done(body))
      } catch (err) {
        if (err instanceof LoggedOut) return
        notice(describe(err), 'bad')
      } finally {
        button.disabled = false
      }
      state.drawn.main = ''
      void refresh()
    }
  }, label)
  return button
}

function drawMissingTask(id) {
  const box = $('task')
  if (!box) return
  state.drawn.main = ''
  box.setAttribute('aria-busy', 'false')
  box.replaceChildren(el('h1', null, 'No such task'), el('p', null, 'The gateway knows no task ', el('code', null, id), '.'))
}

function drawTask(body) {
  const box = $('task')
  if (!box) return
  const text = JSON.stringify(body)
  if (text === state.drawn.main) return
  state.drawn.main = text
  const t = body.task ?? {}
  const id = t.id
  const prompt = t.params && typeof t.params === 'object' ? t.params.prompt : undefined
  const field = (label, ...value) => [el('dt', null, label), el('dd', { 'data-field': label }, ...value)]
  const link = (taskId) => (taskId ? el('a', { href: taskHref(taskId), class: 'mono' }, taskId) : '—')

  const actions = el('div', { class: 'actions' },
    t.status === 'submitted'
      ? actionButton('Reconcile now', `tasks/${enc(id)}/reconcile`, () => 'Reconciliation asked: kie.ai\u2019s record of this task is read now.', { title: 'Ask kie.ai (record-info) for this task now' })
      : null
  )

  box.setAttribute('aria-busy', 'false')
  box.replaceChildren(
    el('div', { class: 'task-head' },
      el('h1', null, `${orDash(t.type)} `, el('span', { class: 'mono' }, orDash(id)), ' ', badge(t.status)),
      actions
    ),
    el('section', { class: 'panel', 'aria-label': 'Fields' },
      el('dl', { class: 'fields' },
        field('client', orDash(t.client)),
        field('status', badge(t.status)),
        field('kie.ai id', el('span', { class: 'mono' }, orDash(t.kieTaskId))),
        field('parent', link(t.parentId)),
        field('kie.ai parent id', el('span', { class: 'mono' }, orDash(t.taskId))),
        field('image index', orDash(t.imageIndex)),
        field('prompt', el('span', { class: 'text' }, orDash(prompt))),
        field('watermark', el('span', { class: 'text' }, orDash(t.waterMark))),
        field('error', t.error ? [el('span', { class: 'code bad' }, orDash(t.error.code)), ' ', el('span', { class: 'text' }, orDash(t.error.message))] : '—'),
        field('callback URL', el('span', { class: 'mono text' }, orDash(t.callbackUrl))),
        field('result URLs', Array.isArray(t.resultUrls) && t.resultUrls.length ? el('ul', { class: 'urls' }, t.resultUrls.map((u) => el('li', { class: 'mono text' }, u))) : '—'),
        field('created', time(t.createdAt)),
        field('updated', time(t.updatedAt)),
        field('completed', time(t.completedAt)),
        field('queue', t.queue ? json(t.queue) : '—'),
        field('archive', t.archive ? el('details', null, el('summary', null, archiveSummary(t.archive)), json(t.archive)) : '—'),
        field('params', json(t.params ?? null))
      )
    ),
    filesSection(id, body.files ?? []),
    timelineSection(body.timeline ?? []),
    callbacksSection(body.callbacks ?? []),
    deliveriesSection(id, body.deliveries ?? [])
  )
}

function archiveSummary(a) {
  const files = Array.isArray(a.files) ? a.files : []
  const stored = files.filter((f) => f.status === 'stored').length
  return `${orDash(a.status)}${files.length ? ` \u00b7 ${stored} of ${files.length} files stored` : ''}${a.error ? ` \u00b7 ${a.error}` : ''}`
}

function section(title, count, ...content) {
  return el('section', { class: 'panel', 'data-section': title.toLowerCase() }, el('h2', null, title, count === null ? null : el('span', { class: 'count' }, String(count))), ...content)
}

function filesSection(taskId, files) {
  const figures = files.map((f) => {
    const caption = el('figcaption', null, `#${f.index} · ${orDash(f.status)} · ${formatBytes(f.bytes)}`, f.error ? el('span', { class: 'text bad' }, ` · ${f.error}`) : null)
    if (!f.thumbnailUrl && !f.imageUrl) return el('figure', { class: 'file' }, el('div', { class: 'thumb none' }, 'no image'), caption)
    const img = el('img', { alt: `Image ${f.index} of task ${taskId}`, 'data-index': String(f.index) })
    const button = el('button', { type: 'button', class: 'thumb', title: 'Open the full image', onclick: () => openImage(taskId, f) }, img)
    void loadThumb(img, taskId, f)
    return el('figure', { class: 'file' }, button, caption)
  })
  return section('Images', files.length, files.length ? el('div', { class: 'files' }, figures) : el('p', { class: 'muted' }, 'No images (yet).'))
}

async function loadThumb(img, taskId, f) {
  const key = `${taskId}/${f.index}`
  let url = state.thumbs.get(key)
  if (!url) {
    try {
      const blob = await request(f.thumbnailUrl ?? f.imageUrl, { as: 'blob' })
      url = URL.createObjectURL(blob)
      // The operator may have moved on while it loaded.
      if (state.route.name !== 'task' || state.route.id !== taskId) return URL.revokeObjectURL(url)
      state.thumbs.set(key, url)
    } catch (err) {
      if (err instanceof LoggedOut) return
      img.replaceWith(el('span', { class: 'thumb none bad' }, err instanceof ApiError && err.code ? err.code : 'not loaded'))
      return
    }
  }
  img.setAttribute('src', url)
}

async function openImage(taskId, f) {
  const viewer = $('viewer')
  const image = $('viewer-image')
  closeImage()
  $('viewer-caption').textContent = `Image ${f.index} of ${taskId} · loading…`
  image.removeAttribute('src')
  image.setAttribute('alt', `Image ${f.index} of task ${taskId}`)
  viewer.showModal()
  try {
    const blob = await request(f.imageUrl ?? f.thumbnailUrl, { as: 'blob' })
    if (!viewer.open) return
    state.fullImage = URL.createObjectURL(blob)
    image.setAttribute('src', state.fullImage)
    $('viewer-caption').textContent = `Image ${f.index} of ${taskId} · ${orDash(f.contentType ?? blob.type)} · ${formatBytes(blob.size)}`
  } catch (err) {
    if (err instanceof LoggedOut) return
    $('viewer-caption').textContent = `Image ${f.index} of ${taskId}: ${err instanceof ApiError && err.code ? `${err.code}: ` : ''}${err.message}`
  }
}

function closeImage() {
  if (state.fullImage) URL.revokeObjectURL(state.fullImage)
  state.fullImage = null
}

function forgetImages() {
  for (const url of state.thumbs.values()) URL.revokeObjectURL(url)
  state.thumbs.clear()
  const viewer = $('viewer')
  if (viewer?.open) viewer.close()
  closeImage()
}

function timelineSection(timeline) {
  return section('Timeline', timeline.length,
    el('table', { class: 'timeline' },
      el('thead', null, el('tr', null, ['at', 'from', 'to', 'source'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, timeline.map((e) => el('tr', null,
        el('td', { class: 'nowrap' }, time(e.at)),
        el('td', null, e.from ? badge(e.from) : '—'),
        el('td', null, badge(e.to)),
        el('td', { class: 'mono' }, orDash(e.source))
      )))
    )
  )
}

function callbacksSection(callbacks) {
  return section('kie.ai callbacks', callbacks.length,
    callbacks.length === 0
      ? el('p', { class: 'muted' }, 'No callback from kie.ai (yet).')
      : callbacks.map((c) => el('article', { class: 'callback', 'data-callback-id': String(c.id) },
        el('p', { class: 'meta' },
          time(c.receivedAt), ' ', badge(c.verdict), ' ',
          el('span', null, `HTTP ${orDash(c.httpStatus)}`), ' · ',
          el('span', null, c.signed ? 'signed' : 'unsigned'), ' · ',
          el('span', { class: 'mono' }, orDash(c.contentType)), ' · from ',
          el('span', { class: 'mono' }, orDash(c.remoteAddress)), ' · ',
          el('span', null, formatBytes(c.bodyBytes)),
          c.bodySha256 ? el('span', { class: 'mono muted', title: 'SHA-256 of the whole body' }, ` · sha256 ${c.bodySha256.slice(0, 16)}…`) : null
        ),
        el('pre', { class: 'body' }, typeof c.body === 'string' ? c.body : JSON.stringify(c.body))
      ))
  )
}

function deliveriesSection(taskId, deliveries) {
  return section('Webhook deliveries', deliveries.length,
    deliveries.length === 0
      ? el('p', { class: 'muted' }, 'No webhook for this task (no callbackUrl).')
      : deliveries.map((d) => el('article', { class: 'delivery', 'data-delivery-id': String(d.id), 'data-state': d.state },
        el('p', { class: 'meta' },
          el('strong', null, orDash(d.type)), ' ', badge(d.state), ' to ', el('span', { class: 'mono text' }, orDash(d.url)),
          ' · created ', time(d.createdAt),
          d.nextAttemptAt ? [' · next attempt ', time(d.nextAttemptAt)] : null,
          d.state === 'dead'
            ? actionButton('Retry', `tasks/${enc(taskId)}/deliveries/retry`, () => 'Retry queued: the dead-lettered deliveries of this task are sent once more.',
              { class: 'retry', title: 'Send the dead-lettered deliveries of this task once more' })
            : null
        ),
        el('table', { class: 'attempts' },
          el('thead', null, el('tr', null, ['#', 'at', 'status', 'duration', 'error'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', null, (d.attempts ?? []).map((a, i) => el('tr', { 'data-attempt': String(i + 1) },
            el('td', null, String(i + 1)),
            el('td', { class: 'nowrap' }, time(a.at)),
            el('td', null, a.statusCode === null || a.statusCode === undefined ? '—' : String(a.statusCode)),
            el('td', null, `${orDash(a.durationMs)} ms`),
            el('td', { class: 'text' }, orDash(a.error))
          )))
        )
      ))
  )
}

// ------------------------------------------------------------------------------ start

function start() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault()
    const key = $('admin-key').value.trim()
    if (!key) return
    state.key = key
    sessionStorage.setItem(KEY_STORAGE, key)
    // The first refresh checks the key: a 401 comes back here with a message.
    enter()
  })
  $('logout').addEventListener('click', () => showLogin('Logged out.'))
  $('viewer-close').addEventListener('click', () => $('viewer').close())
  $('viewer').addEventListener('close', closeImage)
  // A click on the backdrop (outside the image) closes it too.
  $('viewer').addEventListener('click', (e) => {
    if (e.target === $('viewer')) $('viewer').close()
  })
  window.addEventListener('hashchange', () => {
    if (state.key) showView()
  })
  if (state.key) enter()
  else showLogin('')
}

start()
