import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, type Db } from '../src/db/open.js'
import { createRepository } from '../src/db/repository.js'

// scripts/backup.mjs as operators run it: a separate process, while the gateway holds the
// database open in WAL mode with recent commits still in the -wal file.
const SCRIPT = fileURLToPath(new URL('../scripts/backup.mjs', import.meta.url))
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function runBackup(databasePath: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SCRIPT, ...args],
      { cwd: REPO_ROOT, env: { ...process.env, DATABASE_PATH: databasePath }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      }
    )
  })
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '')

let dir: string
let db: Db
let dbPath: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-backup-'))
  dbPath = join(dir, 'data', 'gateway.db')
  db = openDatabase(dbPath)
  const repo = createRepository(db)
  const now = Date.parse('2026-11-25T12:00:00Z')
  for (let i = 0; i < 4; i++) {
    repo.createTask(
      {
        id: `00000000-0000-4000-8000-00000000000${i}`,
        owner: 'client-a',
        parentTaskId: `parent${i}`.padEnd(32, '0'),
        imageIndex: i,
        waterMark: i % 2 === 0 ? null : 'mark',
        submitDeadlineAt: now + 1_800_000
      },
      now + i
    )
  }
})
afterEach(() => {
  if (db.open) db.close()
  rmSync(dir, { recursive: true, force: true })
})

const allTasks = (conn: Database.Database) => conn.prepare('SELECT * FROM tasks ORDER BY id').all()

describe('scripts/backup.mjs', () => {
  it('copies the open WAL-mode database consistently and verifies the copy', async () => {
    // The commits are still in the WAL: the copy must include them, not just the main file.
    expect(statSync(`${dbPath}-wal`).size).toBeGreaterThan(0)
    const dest = join(dir, 'copies', 'nightly.db')

    const run = await runBackup(dbPath, [dest])

    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(existsSync(dest)).toBe(true)
    expect(run.stdout).toContain(dest)
    expect(run.stdout).toMatch(/^size: \d+ bytes$/m)
    expect(run.stdout).toMatch(/^tasks: 4$/m)
    // A self-contained file: no -wal/-shm next to it, and no leftover temporary files.
    expect(existsSync(`${dest}-wal`)).toBe(false)
    expect(existsSync(`${dest}-shm`)).toBe(false)
    expect(readdir(join(dir, 'copies'))).toEqual(['nightly.db'])

    const copy = new Database(dest, { readonly: true, fileMustExist: true })
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok')
      expect(allTasks(copy)).toEqual(allTasks(db))
      expect(allTasks(copy)).toHaveLength(4)
    } finally {
      copy.close()
    }

    // The gateway's connection is undisturbed and keeps writing.
    createRepository(db).createTask(
      { id: '00000000-0000-4000-8000-000000000009', owner: 'client-a', parentTaskId: 'p'.repeat(32), imageIndex: 0, waterMark: null, submitDeadlineAt: Date.now() + 60_000 },
      Date.now()
    )
    expect(allTasks(db)).toHaveLength(5)
  })

  it('defaults to <database folder>/backups/gateway-<UTC timestamp>.db', async () => {
    const run = await runBackup(dbPath, [])
    expect(run.code).toBe(0)
    const made = readdir(join(dir, 'data', 'backups'))
    expect(made).toHaveLength(1)
    expect(made[0]).toMatch(/^gateway-\d{8}T\d{6}Z\.db$/)
    expect(run.stdout).toContain(join(dir, 'data', 'backups', made[0]!))
  })

  it('refuses to overwrite an existing file, leaving it untouched', async () => {
    const dest = join(dir, 'existing.db')
    writeFileSync(dest, 'precious')

    const run = await runBackup(dbPath, [dest])

    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(lines(run.stderr)).toHaveLength(1)
    expect(run.stderr).toMatch(/refusing to overwrite/)
    expect(readFileSync(dest, 'utf8')).toBe('precious')
  })

  it('fails with one line when the database does not exist, creating nothing', async () => {
    const missing = join(dir, 'nowhere', 'gateway.db')
    const dest = join(dir, 'out.db')

    const run = await runBackup(missing, [dest])

    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(lines(run.stderr)).toHaveLength(1)
    expect(run.stderr).toContain(missing)
    expect(existsSync(missing)).toBe(false)
    expect(existsSync(dest)).toBe(false)
  })
})

function readdir(path: string): string[] {
  return readdirSync(path).sort()
}
