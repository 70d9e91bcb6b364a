#!/usr/bin/env node
// Proves the Dockerfile recipe is complete without a Docker engine.
//
// Each stage gets a fresh temp folder standing in for the container's "/". Only what the
// COPY instructions name is copied in (honouring .dockerignore), the RUN commands run there
// (system-package commands such as apt-get are skipped), and the final stage's CMD is started
// with the image's ENV plus what production requires. /healthz and /readyz must answer 200,
// the HEALTHCHECK command must exit 0, and the stop signal must give exit code 0.
//
// Usage (from anywhere): node scripts/check-container-recipe.mjs
// Exits 0 with "container recipe OK", or 1 with the reason.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DOCKERFILE = path.join(REPO_ROOT, 'Dockerfile')
const DOCKERIGNORE = path.join(REPO_ROOT, '.dockerignore')

const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 10_000
const RUN_TIMEOUT_MS = 15 * 60_000
const HEALTHCHECK_MIN_TIMEOUT_MS = 10_000

class RecipeError extends Error {}
const fail = (message) => {
  throw new RecipeError(message)
}

const log = (line) => process.stdout.write(`[recipe] ${line}\n`)

// ---------------------------------------------------------------------------------------------
// Dockerfile parsing

/** Joins continuation lines and drops comments; returns [{ line, keyword, args }]. */
function readInstructions(text) {
  let escape = '\\'
  const lines = text.split(/\r?\n/)
  // Parser directives (# escape=`) may only appear at the very top.
  for (const raw of lines) {
    const m = /^\s*#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(raw)
    if (!m) break
    if (m[1].toLowerCase() === 'escape') escape = m[2]
  }
  const out = []
  let pending = null
  let startLine = 0
  lines.forEach((raw, i) => {
    const trimmed = raw.trim()
    if (pending === null && (trimmed === '' || trimmed.startsWith('#'))) return
    if (pending !== null && (trimmed === '' || trimmed.startsWith('#'))) return // comments/blank lines inside a continuation
    if (pending === null) startLine = i + 1
    const body = raw.replace(/\s+$/, '')
    if (body.endsWith(escape)) {
      pending = (pending ?? '') + body.slice(0, -escape.length)
      return
    }
    const full = ((pending ?? '') + body).trim()
    pending = null
    const m = /^(\S+)\s*([\s\S]*)$/.exec(full)
    out.push({ line: startLine, keyword: m[1].toUpperCase(), args: m[2].trim() })
  })
  if (pending !== null) {
    const full = pending.trim()
    const m = /^(\S+)\s*([\s\S]*)$/.exec(full)
    out.push({ line: startLine, keyword: m[1].toUpperCase(), args: m[2].trim() })
  }
  return out
}

/** Splits shell-like words, honouring quotes and backslash escapes. */
function splitWords(s) {
  const words = []
  let cur = ''
  let inWord = false
  let quote = null
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (quote) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"' && i + 1 < s.length && '"\\$'.includes(s[i + 1])) cur += s[++i]
      else cur += c
    } else if (c === '"' || c === "'") {
      quote = c
      inWord = true
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (quote) fail(`unterminated ${quote} quote in: ${s}`)
  if (inWord) words.push(cur)
  return words
}

/** Replaces $VAR, ${VAR} and ${VAR:-default} with values from env (Dockerfile substitution). */
function substitute(s, env) {
  return s.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a, def, b) => {
    if (m === '\\$') return '$'
    const name = a ?? b
    const v = env[name]
    if (v !== undefined && v !== '') return v
    return def ?? ''
  })
}

function parseJsonArray(args, what) {
  let v
  try {
    v = JSON.parse(args)
  } catch (err) {
    fail(`${what} looks like exec form but is not valid JSON: ${args} (${err.message})`)
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) {
    fail(`${what} exec form must be a non-empty JSON array of strings: ${args}`)
  }
  return v
}

/** Leading --name=value flags, then the rest. */
function takeFlags(args) {
  const flags = {}
  let rest = args
  for (;;) {
    const m = /^--([a-zA-Z-]+)(?:=(\S*))?\s*/.exec(rest)
    if (!m) break
    flags[m[1]] = m[2] ?? 'true'
    rest = rest.slice(m[0].length)
  }
  return { flags, rest }
}

/** Parses ENV in both "K=V K2=V2" and legacy "K V" forms. */
function parseEnv(args) {
  const first = /^(\S+)/.exec(args)?.[1] ?? ''
  if (!first.includes('=')) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(args)
    if (!m) fail(`ENV needs a value: ENV ${args}`)
    const value = splitWords(m[2]).join(' ')
    return [[m[1], value]]
  }
  return splitWords(args).map((w) => {
    const eq = w.indexOf('=')
    if (eq <= 0) fail(`ENV expects KEY=VALUE pairs: ENV ${args}`)
    return [w.slice(0, eq), w.slice(eq + 1)]
  })
}

const IGNORED = new Set(['EXPOSE', 'LABEL', 'MAINTAINER'])

function parseDockerfile(text) {
  const stages = []
  let stage = null
  for (const ins of readInstructions(text)) {
    const where = `Dockerfile:${ins.line}`
    const { keyword, args } = ins
    if (keyword === 'FROM') {
      const { rest } = takeFlags(args)
      const m = /^(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(rest)
      if (!m) fail(`${where}: cannot parse FROM ${args}`)
      const image = m[1]
      if (stages.some((s) => s.name === image.toLowerCase())) {
        fail(`${where}: FROM an earlier stage (${image}) is not supported by this check`)
      }
      stage = { index: stages.length, name: m[2]?.toLowerCase() ?? null, image, line: ins.line, steps: [] }
      stages.push(stage)
      continue
    }
    if (keyword === 'ARG' && !stage) continue // global ARGs only feed FROM; none are used here
    if (!stage) fail(`${where}: ${keyword} before the first FROM`)
    const step = { keyword, line: ins.line, raw: `${keyword} ${args}` }
    switch (keyword) {
      case 'WORKDIR':
      case 'USER':
        step.value = args
        break
      case 'COPY': {
        const { flags, rest } = takeFlags(args)
        if (/^<</.test(rest)) fail(`${where}: COPY heredocs are not supported by this check`)
        const words = rest.startsWith('[') ? parseJsonArray(rest, `${where}: COPY`) : splitWords(rest)
        if (words.length < 2) fail(`${where}: COPY needs at least one source and a destination`)
        step.from = flags.from ?? null
        step.sources = words.slice(0, -1)
        step.dest = words[words.length - 1]
        break
      }
      case 'RUN': {
        const { flags, rest } = takeFlags(args)
        if (/^<<-?\s*["']?\w+/.test(rest)) fail(`${where}: RUN heredocs are not supported by this check`)
        step.flags = flags
        if (rest.startsWith('[')) step.argv = parseJsonArray(rest, `${where}: RUN`)
        else step.shell = rest
        break
      }
      case 'ENV':
        step.pairs = parseEnv(args)
        break
      case 'VOLUME': {
        step.paths = args.startsWith('[') ? parseJsonArray(args, `${where}: VOLUME`) : splitWords(args)
        break
      }
      case 'HEALTHCHECK': {
        if (/^NONE$/i.test(args)) {
          step.none = true
          break
        }
        const { flags, rest } = takeFlags(args)
        const m = /^CMD\s+([\s\S]+)$/i.exec(rest)
        if (!m) fail(`${where}: HEALTHCHECK must be NONE or [OPTIONS] CMD command`)
        step.options = flags
        const cmd = m[1].trim()
        if (cmd.startsWith('[')) step.argv = parseJsonArray(cmd, `${where}: HEALTHCHECK CMD`)
        else step.shell = cmd
        break
      }
      case 'CMD':
        if (args.startsWith('[')) step.argv = parseJsonArray(args, `${where}: CMD`)
        else step.shell = args
        break
      case 'STOPSIGNAL':
        step.value = /^\d+$/.test(args) ? Number(args) : args.toUpperCase().replace(/^(?!SIG)/, 'SIG')
        break
      default:
        if (IGNORED.has(keyword)) break
        fail(`${where}: ${keyword} is not supported by this check; extend scripts/check-container-recipe.mjs`)
    }
    stage.steps.push(step)
  }
  if (stages.length === 0) fail('the Dockerfile has no FROM')
  return stages
}

// ---------------------------------------------------------------------------------------------
// .dockerignore (moby patternmatcher semantics: paths relative to the context root,
// `**` spans directories, `*` and `?` stay within one, `!` re-includes, last match wins,
// and a pattern that matches a parent directory excludes everything beneath it)

function globToRegExp(pattern) {
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++
        if (pattern[i + 1] === '/') {
          i++
          re += '(?:.*/)?'
        } else re += '.*'
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1)
      if (end < 0) re += '\\['
      else {
        let cls = pattern.slice(i + 1, end)
        if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1)
        re += `[${cls.replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i]
    else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&')
  }
  return new RegExp(re + '$')
}

function loadDockerignore(text) {
  const rules = []
  for (let line of text.split(/\r?\n/)) {
    line = line.trim()
    if (!line || line.startsWith('#')) continue
    let negate = false
    if (line.startsWith('!')) {
      negate = true
      line = line.slice(1).trim()
    }
    line = path.posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '')
    if (!line || line === '.') continue
    rules.push({ pattern: line, negate, re: globToRegExp(line) })
  }
  const hasNegations = rules.some((r) => r.negate)
  /** rel: posix path relative to the context root. */
  const excluded = (rel) => {
    const parts = rel.split('/')
    let result = false
    for (const rule of rules) {
      let matched = rule.re.test(rel)
      for (let n = 1; !matched && n < parts.length; n++) matched = rule.re.test(parts.slice(0, n).join('/'))
      if (matched) result = !rule.negate
    }
    return result
  }
  return { rules, excluded, hasNegations }
}

// ---------------------------------------------------------------------------------------------
// Filesystem emulation

/** Maps an absolute container path onto a stage's root folder. */
function hostPath(root, containerPath) {
  return path.join(root, path.posix.resolve('/', containerPath))
}

const hasGlob = (s) => /[*?[]/.test(s)

/** Expands a COPY source (relative to base) into posix relative paths. */
function expandSource(base, source) {
  const clean = path.posix.normalize(source).replace(/^\/+/, '').replace(/\/+$/, '') || '.'
  if (clean.startsWith('..')) fail(`COPY source ${source} is outside the build context`)
  if (!hasGlob(clean)) return fs.existsSync(path.join(base, clean)) ? [clean] : []
  let found = ['']
  for (const seg of clean.split('/')) {
    const next = []
    for (const dir of found) {
      const abs = path.join(base, dir)
      if (!hasGlob(seg)) {
        const p = dir ? `${dir}/${seg}` : seg
        if (fs.existsSync(path.join(base, p))) next.push(p)
        continue
      }
      let entries
      try {
        entries = fs.readdirSync(abs)
      } catch {
        continue
      }
      const re = globToRegExp(seg)
      for (const e of entries.sort()) if (re.test(e)) next.push(dir ? `${dir}/${e}` : e)
    }
    found = next
  }
  return found
}

function copyInto(srcAbs, destAbs, filter) {
  fs.mkdirSync(path.dirname(destAbs), { recursive: true })
  fs.cpSync(srcAbs, destAbs, {
    recursive: true,
    force: true,
    preserveTimestamps: true,
    verbatimSymlinks: true,
    filter: filter ?? (() => true)
  })
}

function runCopy(step, stage, stagesByName, ignore) {
  let base
  let filter = null
  let label
  if (step.from) {
    const from = stagesByName.get(step.from.toLowerCase()) ?? (/^\d+$/.test(step.from) ? stagesByName.get(Number(step.from)) : undefined)
    if (!from) fail(`Dockerfile:${step.line}: COPY --from=${step.from} names no earlier stage (external images are not supported)`)
    if (!from.root) fail(`Dockerfile:${step.line}: COPY --from=${step.from} refers to a stage that is not built yet`)
    base = from.root
    label = `stage ${from.name ?? from.index}`
  } else {
    base = REPO_ROOT
    label = 'context'
    filter = (src) => {
      const rel = path.relative(REPO_ROOT, src).split(path.sep).join('/')
      if (rel === '' || rel.startsWith('..')) return true
      if (!ignore.excluded(rel)) return true
      // An excluded directory may still hold re-included files when there are ! patterns.
      return ignore.hasNegations && fs.lstatSync(src).isDirectory()
    }
  }
  const destRaw = substitute(step.dest, stage.env)
  const destContainer = path.posix.resolve(stage.workdir, destRaw)
  const destAbs = hostPath(stage.root, destContainer)
  let copied = 0
  const sources = step.sources.map((s) => substitute(s, stage.env))
  const expanded = []
  for (const source of sources) {
    // --from sources are absolute container paths (or relative to that stage's "/").
    const rel = step.from ? path.posix.resolve('/', source).slice(1) || '.' : source
    const matches = expandSource(base, rel)
    const kept = step.from ? matches : matches.filter((m) => m === '.' || !ignore.excluded(m))
    if (kept.length === 0) {
      const why = matches.length > 0 ? ' (excluded by .dockerignore)' : ''
      fail(`Dockerfile:${step.line}: COPY source ${source} not found in ${label}${why}`)
    }
    expanded.push(...kept)
  }
  const destIsDir = /[/\\]$|(^|\/)\.$/.test(destRaw) || expanded.length > 1 || sources.some(hasGlob)
  if (expanded.length > 1 && !/[/\\]$|(^|\/)\.$/.test(destRaw)) {
    fail(`Dockerfile:${step.line}: COPY with several sources needs a destination ending in /`)
  }
  for (const rel of expanded) {
    const srcAbs = path.join(base, rel)
    const isDir = fs.statSync(srcAbs).isDirectory()
    // A directory copies its contents; a file lands inside the destination folder or as the destination.
    const target = isDir || !destIsDir ? destAbs : path.join(destAbs, path.basename(rel))
    copyInto(srcAbs, target, filter)
    copied++
  }
  log(`  ${step.raw}  ->  ${copied} source(s) from ${label} into ${destContainer}`)
}

// ---------------------------------------------------------------------------------------------
// Processes

const children = new Set()

function killTree(child, signal = 'SIGKILL') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal) // its own process group (spawned detached)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

function spawnTracked(command, args, options) {
  const child = spawn(command, args, { ...options, detached: true })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

function waitExit(child, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    let timer = null
    const done = (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    }
    if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode, child.signalCode)
    child.once('exit', done)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new RecipeError(`${what} could not start: ${err.message}`))
    })
    if (timeoutMs) {
      timer = setTimeout(() => {
        killTree(child)
        reject(new RecipeError(`${what} did not finish within ${Math.round(timeoutMs / 1000)} s`))
      }, timeoutMs)
    }
  })
}

/** Shell or exec form, as Docker would run it (bash stands in for /bin/sh). */
function commandOf(step) {
  return step.argv ? [step.argv[0], step.argv.slice(1)] : ['bash', ['-c', step.shell]]
}

const describe = ({ code, signal }) => (signal ? `signal ${signal}` : `exit code ${code}`)

/** Environment for RUN steps: the host's (PATH, HOME, npm config), minus what would leak into the build. */
function buildEnv(stageEnv) {
  const env = { ...process.env }
  for (const k of Object.keys(env)) {
    if (k === 'NODE_ENV' || k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k === 'INIT_CWD') delete env[k]
    else if (/^npm_(package|lifecycle|command|config_(omit|production|include|only))/i.test(k)) delete env[k]
  }
  return { ...env, ...stageEnv }
}

// Commands needing root on the image's filesystem: system packages and folder ownership.
const SYSTEM_COMMAND = /^(apt-get|apt|apk|yum|dnf|microdnf)\b/
const FOLDER_SETUP_PART = /^(mkdir\s+(-p\s+)?(\/\S*\s*)+|chown\s+.*|chmod\s+.*)$/

function skipReason(shell) {
  const s = shell.trim()
  if (SYSTEM_COMMAND.test(s)) return 'system packages are part of the base image set-up, not emulated'
  const parts = s.split(/\s*&&\s*/)
  if (parts.every((p) => FOLDER_SETUP_PART.test(p.trim()))) return 'folder ownership set-up; VOLUME is emulated instead'
  return null
}

async function runStep(step, stage) {
  if (step.shell !== undefined) {
    const why = skipReason(step.shell)
    if (why) {
      log(`  skip ${step.raw}  (${why})`)
      return
    }
  }
  const ignoredFlags = Object.keys(step.flags ?? {})
  if (ignoredFlags.length) log(`  note: RUN flags ignored: ${ignoredFlags.map((f) => `--${f}`).join(' ')}`)
  const cwd = hostPath(stage.root, stage.workdir)
  log(`  ${step.raw}  (in ${cwd})`)
  const started = Date.now()
  const [cmd, args] = commandOf(step)
  const child = spawnTracked(cmd, args, { cwd, env: buildEnv(stage.env), stdio: ['ignore', 'inherit', 'inherit'] })
  const result = await waitExit(child, RUN_TIMEOUT_MS, `Dockerfile:${step.line} RUN`)
  if (result.code !== 0) fail(`Dockerfile:${step.line}: RUN failed with ${describe(result)}: ${step.raw}`)
  log(`  ok after ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function probe(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    const body = await res.text()
    return { status: res.status, body: body.slice(0, 200) }
  } catch (err) {
    return { status: 0, body: err.cause?.code ?? err.message }
  }
}

// ---------------------------------------------------------------------------------------------
// Main

function tail(lines) {
  return lines.slice(-30).join('\n') || '(no output)'
}

async function main() {
  const t0 = Date.now()
  log(`repo root ${REPO_ROOT}`)
  if (!fs.existsSync(DOCKERFILE)) fail(`no Dockerfile at ${DOCKERFILE}`)
  const stages = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'))
  const ignore = loadDockerignore(fs.existsSync(DOCKERIGNORE) ? fs.readFileSync(DOCKERIGNORE, 'utf8') : '')
  log(`parsed Dockerfile: ${stages.map((s) => `${s.name ?? `stage ${s.index}`} (FROM ${s.image})`).join(', ')}`)
  log(`.dockerignore: ${ignore.rules.map((r) => (r.negate ? '!' : '') + r.pattern).join(' ') || '(none)'}`)

  // Module resolution walks up the tree: a stray node_modules above the temp folder would hide a missing COPY.
  for (let dir = path.resolve(os.tmpdir()); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'node_modules'))) fail(`${path.join(dir, 'node_modules')} exists above the temp folder and would mask missing dependencies`)
    if (path.dirname(dir) === dir) break
  }

  const tmpParent = fs.mkdtempSync(path.join(os.tmpdir(), 'container-recipe-'))
  state.tmpParent = tmpParent
  const stagesByName = new Map()
  for (const stage of stages) {
    stage.root = fs.mkdtempSync(path.join(tmpParent, `${stage.name ?? `stage${stage.index}`}-`))
    stage.workdir = '/'
    stage.env = {}
    stage.volumes = []
    stage.user = null
    stage.cmd = null
    stage.healthcheck = null
    stage.stopSignal = 'SIGTERM'
    const final = stage === stages[stages.length - 1]
    log(`stage ${stage.name ?? stage.index}${final ? ' (final image)' : ''}: FROM ${stage.image} -> ${stage.root}`)
    for (const step of stage.steps) {
      switch (step.keyword) {
        case 'WORKDIR':
          stage.workdir = path.posix.resolve(stage.workdir, substitute(step.value, stage.env))
          fs.mkdirSync(hostPath(stage.root, stage.workdir), { recursive: true })
          log(`  WORKDIR ${stage.workdir}`)
          break
        case 'COPY':
          runCopy(step, stage, stagesByName, ignore)
          break
        case 'RUN':
          await runStep(step, stage)
          break
        case 'ENV':
          for (const [k, v] of step.pairs) stage.env[k] = substitute(v, stage.env)
          log(`  ENV ${step.pairs.map(([k]) => `${k}=${stage.env[k]}`).join(' ')}`)
          break
        case 'USER':
          stage.user = step.value
          log(`  USER ${step.value}  (not emulated: runs as ${os.userInfo().username})`)
          break
        case 'VOLUME':
          for (const p of step.paths) {
            const vol = path.posix.resolve(stage.workdir, substitute(p, stage.env))
            stage.volumes.push(vol)
            fs.mkdirSync(hostPath(stage.root, vol), { recursive: true })
            log(`  VOLUME ${vol}  -> ${hostPath(stage.root, vol)}`)
          }
          break
        case 'HEALTHCHECK':
          stage.healthcheck = step
          break
        case 'CMD':
          stage.cmd = step
          break
        case 'STOPSIGNAL':
          stage.stopSignal = step.value
          break
        default:
          break // EXPOSE, LABEL, ...
      }
    }
    if (stage.name) stagesByName.set(stage.name, stage)
    stagesByName.set(stage.index, stage)
  }

  // ---- start the final stage
  const final = stages[stages.length - 1]
  if (!final.cmd) fail('the final stage has no CMD')
  const cwd = hostPath(final.root, final.workdir)
  const port = await freePort()
  const volumeEnv = {}
  for (const [k, v] of Object.entries(final.env)) {
    const vol = final.volumes.find((vp) => v === vp || v.startsWith(vp.endsWith('/') ? vp : `${vp}/`))
    volumeEnv[k] = vol ? hostPath(final.root, v) : v
  }
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? os.homedir(),
    ...volumeEnv,
    PORT: String(port),
    HOST: '127.0.0.1',
    KIE_API_KEY: 'recipe-check-kie-key',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    API_KEYS: 'recipe-check-client-key-0123456789',
    CALLBACK_SECRET: randomBytes(32).toString('base64url'),
    KIE_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn'
  }
  const shown = Object.entries(env)
    .filter(([k]) => k !== 'PATH' && k !== 'HOME')
    .map(([k, v]) => `${k}=${k === 'CALLBACK_SECRET' || k === 'KIE_API_KEY' ? '***' : v}`)
  log(`starting CMD ${final.cmd.argv ? JSON.stringify(final.cmd.argv) : final.cmd.shell} in ${cwd}`)
  log(`  env ${shown.join(' ')}`)
  log(`  host node ${process.version} stands in for the image's (${final.image})`)

  const output = []
  const [cmd, args] = commandOf(final.cmd)
  const server = spawnTracked(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  state.server = server
  let exited = null
  server.on('exit', (code, signal) => (exited = { code, signal }))
  let spawnError = null
  server.on('error', (err) => (spawnError = err))
  for (const stream of [server.stdout, server.stderr]) {
    let buf = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk) => {
      buf += chunk
      const lines = buf.split('\n')
      buf = lines.pop()
      for (const l of lines) {
        output.push(l)
        process.stdout.write(`  [server] ${l}\n`)
      }
    })
    stream.on('end', () => {
      if (buf) {
        output.push(buf)
        process.stdout.write(`  [server] ${buf}\n`)
      }
    })
  }

  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + READY_TIMEOUT_MS
  const pending = new Set(['/healthz', '/readyz'])
  let last = {}
  while (pending.size > 0) {
    if (spawnError) fail(`CMD could not start: ${spawnError.message}`)
    if (exited) fail(`the server exited during start-up with ${describe(exited)}; output:\n${tail(output)}`)
    if (Date.now() > deadline) {
      const states = [...pending].map((p) => `${p}: ${last[p]?.status || 'no answer'} ${last[p]?.body ?? ''}`.trim())
      fail(`not ready within ${READY_TIMEOUT_MS / 1000} s (${states.join('; ')}); output:\n${tail(output)}`)
    }
    for (const p of [...pending]) {
      last[p] = await probe(base + p)
      if (last[p].status === 200) {
        pending.delete(p)
        log(`GET ${p} -> 200 ${last[p].body}  (${((Date.now() - (deadline - READY_TIMEOUT_MS)) / 1000).toFixed(1)} s after start)`)
      }
    }
    if (pending.size > 0) await sleep(250)
  }

  // ---- HEALTHCHECK, run the way Docker would inside the container
  const hc = final.healthcheck
  if (!hc || hc.none) {
    log('no HEALTHCHECK in the final stage; skipped')
  } else {
    const declared = parseDuration(hc.options.timeout) ?? 30_000
    const timeoutMs = Math.max(declared, HEALTHCHECK_MIN_TIMEOUT_MS)
    const [hcCmd, hcArgs] = commandOf(hc)
    const hcOut = []
    const child = spawnTracked(hcCmd, hcArgs, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    for (const s of [child.stdout, child.stderr]) s.on('data', (d) => hcOut.push(String(d)))
    const result = await waitExit(child, timeoutMs, 'HEALTHCHECK')
    if (result.code !== 0) fail(`HEALTHCHECK failed with ${describe(result)}: ${hc.raw}\n${hcOut.join('').trim()}`)
    log(`HEALTHCHECK exited 0  (${hc.raw.replace(/^HEALTHCHECK\s+/, '').slice(0, 120)}${hc.raw.length > 132 ? '...' : ''})`)
  }

  // ---- graceful stop, as `docker stop` does
  if (exited) fail(`the server exited unexpectedly with ${describe(exited)}; output:\n${tail(output)}`)
  const signal = final.stopSignal
  log(`sending ${signal} to the server (pid ${server.pid})`)
  const stopStart = Date.now()
  server.kill(signal)
  const result = await waitExit(server, STOP_TIMEOUT_MS, `the server after ${signal}`).catch((err) => {
    throw new RecipeError(`${err.message}; output:\n${tail(output)}`)
  })
  if (result.code !== 0) fail(`the server stopped with ${describe(result)} after ${signal} (expected exit code 0); output:\n${tail(output)}`)
  log(`server exited with code 0 after ${((Date.now() - stopStart) / 1000).toFixed(1)} s`)
  log(`container recipe OK  (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
}

function parseDuration(s) {
  if (!s) return null
  let total = 0
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g
  let m
  let any = false
  while ((m = re.exec(s))) {
    any = true
    const n = Number(m[1])
    total += { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 }[m[2]] * n
  }
  return any ? total : null
}

const state = { tmpParent: null, server: null }

function cleanup() {
  for (const child of children) killTree(child)
  if (state.tmpParent) {
    try {
      fs.rmSync(state.tmpParent, { recursive: true, force: true, maxRetries: 3 })
    } catch (err) {
      process.stderr.write(`[recipe] could not remove ${state.tmpParent}: ${err.message}\n`)
    }
    state.tmpParent = null
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`[recipe] FAILED: interrupted by ${sig}\n`)
    cleanup()
    process.exit(1)
  })
}

main().then(
  () => {
    cleanup()
    process.exit(0)
  },
  (err) => {
    const message = err instanceof RecipeError ? err.message : err?.stack ?? String(err)
    process.stderr.write(`[recipe] FAILED: ${message}\n`)
    cleanup()
    process.exit(1)
  }
)
