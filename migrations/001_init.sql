-- Upscale tasks. `seq` is arrival order: the list cursor and, later, the send queue order.
CREATE TABLE tasks (
  seq              INTEGER PRIMARY KEY,
  id               TEXT    NOT NULL UNIQUE,
  owner            TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('queued', 'submitted', 'succeeded', 'failed')),
  parent_task_id   TEXT    NOT NULL,
  image_index      INTEGER NOT NULL CHECK (image_index BETWEEN 0 AND 3),
  water_mark       TEXT,
  kie_task_id      TEXT,
  result_urls      TEXT,
  error_code       TEXT,
  error_message    TEXT,
  -- 'sending' means the request may have reached kie.ai: it is never sent again.
  send_state       TEXT    NOT NULL DEFAULT 'pending' CHECK (send_state IN ('pending', 'sending', 'sent')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  completed_at     INTEGER,
  last_activity_at INTEGER NOT NULL
);
CREATE INDEX tasks_owner_seq ON tasks (owner, seq);
CREATE INDEX tasks_owner_status_seq ON tasks (owner, status, seq);
CREATE INDEX tasks_kie_task_id ON tasks (kie_task_id) WHERE kie_task_id IS NOT NULL;

-- Every callback delivery, accepted or refused, exactly as it arrived.
CREATE TABLE callback_deliveries (
  id                  INTEGER PRIMARY KEY,
  received_at         INTEGER NOT NULL,
  task_id             TEXT,
  kie_task_id         TEXT,
  verdict             TEXT    NOT NULL,
  http_status         INTEGER NOT NULL,
  content_type        TEXT,
  signature           TEXT,
  signature_timestamp TEXT,
  remote_address      TEXT,
  body                TEXT    NOT NULL
);
CREATE INDEX callback_deliveries_task_id ON callback_deliveries (task_id);

-- Values the gateway generates once and keeps (sandbox keys and secrets).
CREATE TABLE settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
