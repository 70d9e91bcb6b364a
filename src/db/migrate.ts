import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type Database from 'better-sqlite3'

const FILE_NAME = /^(\d{3})_[a-z0-9_]+\.sql$/

interface Migration {
  version: number
  name: string
  sql: string
  checksum: string
}

// Works from src/db (tests) and dist/src/db (built): walk up to the folder holding migrations/.
function findMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(dir, 'migrations')
    if (existsSync(candidate)) return candidate
    const parent = dirname(dir)
    if (parent === dir) throw new Error('migrations/ folder not found')
    dir = parent
  }
}

export function loadMigrations(dir = findMigrationsDir()): Migration[] {
  return readdirSync(dir)
    .filter((f) => FILE_NAME.test(f))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name), 'utf8')
      return {
        version: Number(name.slice(0, 3)),
        name,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex')
      }
    })
}

/** Applies pending migrations, each in its own transaction; refuses a changed applied file. */
export function migrate(db: Database.Database, migrations = loadMigrations()): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)`)
  const applied = new Map(
    (db.prepare('SELECT version, name, checksum FROM schema_migrations').all() as Migration[]).map((m) => [m.version, m])
  )
  let count = 0
  for (const m of migrations) {
    const done = applied.get(m.version)
    if (done) {
      if (done.checksum !== m.checksum) {
        throw new Error(`migration ${m.name} was changed after it was applied (checksum mismatch); add a new migration instead`)
      }
      continue
    }
    db.transaction(() => {
      db.exec(m.sql)
      db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)').run(
        m.version, m.name, m.checksum, Date.now()
      )
    })()
    count++
  }
  return count
}

export function pendingMigrations(db: Database.Database, migrations = loadMigrations()): number {
  const row = db.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number }
  return migrations.length - row.n
}
