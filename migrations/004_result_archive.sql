-- The gateway's own copy of each result image: kie.ai keeps its files for about 14 days.
CREATE TABLE result_files (
  id              INTEGER PRIMARY KEY,
  task_id         TEXT    NOT NULL,
  idx             INTEGER NOT NULL,
  url             TEXT    NOT NULL,
  status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'stored', 'failed', 'pruned')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until     INTEGER,
  path            TEXT,
  bytes           INTEGER,
  sha256          TEXT,
  content_type    TEXT,
  error           TEXT,
  created_at      INTEGER NOT NULL,
  stored_at       INTEGER,
  updated_at      INTEGER NOT NULL,
  UNIQUE (task_id, idx)
);
CREATE INDEX result_files_due ON result_files (next_attempt_at) WHERE status = 'pending';
CREATE INDEX result_files_stored_at ON result_files (stored_at) WHERE status = 'stored';
