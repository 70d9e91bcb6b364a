import type { Db } from './open.js'

/** Named values kept across restarts, and the schema's health. */
export function createSettings(db: Db) {
  const s = {
    getSetting: db.prepare('SELECT value FROM settings WHERE name = ?'),
    insertSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
    ping: db.prepare('SELECT count(*) AS n FROM schema_migrations')
  }

  return {
    /** Returns the stored value, storing `make()` first if there is none. */
    getOrCreateSetting: (name: string, make: () => string): string => {
      s.insertSetting.run(name, make())
      return (s.getSetting.get(name) as { value: string }).value
    },
    appliedMigrations: () => (s.ping.get() as { n: number }).n
  }
}

export type Settings = ReturnType<typeof createSettings>
