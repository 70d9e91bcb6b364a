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
  -- Send queue: a pending task is sent in seq order once next_attempt_at has passed,
  -- by whoever holds its lease; it fails once submit_deadline_at passes.
  next_attempt_at    INTEGER NOT NULL,
  submit_deadline_at INTEGER NOT NULL,
  lease_owner        TEXT,
  lease_until        INTEGER,
  sent_at            INTEGER,
  last_error         TEXT,
  -- Reconciliation: when to ask record-info next, and what it said last.
  reconcile_at       INTEGER,
  reconcile_attempts INTEGER NOT NULL DEFAULT 0,
  upstream_state     TEXT,
  -- What caused the latest status change (submit, callback, reconcile, timeout, recovery).
  status_source    TEXT    NOT NULL DEFAULT 'create',
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  completed_at     INTEGER,
  last_activity_at INTEGER NOT NULL
);
CREATE INDEX tasks_owner_seq ON tasks (owner, seq);
CREATE INDEX tasks_owner_status_seq ON tasks (owner, status, seq);
CREATE INDEX tasks_kie_task_id ON tasks (kie_task_id) WHERE kie_task_id IS NOT NULL;
CREATE INDEX tasks_send_queue ON tasks (seq) WHERE status = 'queued' AND send_state = 'pending';
CREATE INDEX tasks_reconcile ON tasks (reconcile_at) WHERE status = 'submitted';
CREATE INDEX tasks_activity ON tasks (last_activity_at) WHERE status = 'submitted';

-- Every status change, written by the database itself in the same transaction.
CREATE TABLE task_events (
  id          INTEGER PRIMARY KEY,
  task_id     TEXT    NOT NULL,
  at          INTEGER NOT NULL,
  from_status TEXT,
  to_status   TEXT    NOT NULL,
  source      TEXT    NOT NULL
);
CREATE INDEX task_events_task_id ON task_events (task_id);
CREATE TRIGGER tasks_created AFTER INSERT ON tasks BEGIN
  INSERT INTO task_events (task_id, at, from_status, to_status, source)
  VALUES (NEW.id, NEW.created_at, NULL, NEW.status, NEW.status_source);
END;
CREATE TRIGGER tasks_status_changed AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
  INSERT INTO task_events (task_id, at, from_status, to_status, source)
  VALUES (NEW.id, NEW.updated_at, OLD.status, NEW.status, NEW.status_source);
END;

-- Requests for new kie.ai tasks: the sliding rate window, kept across restarts. kie.ai counts
-- arrivals, so a request counts from when its answer came back (it arrived by then at the
-- latest); while in flight (arrived_by NULL) it always counts.
CREATE TABLE send_slots (
  id         INTEGER PRIMARY KEY,
  started_at INTEGER NOT NULL,
  arrived_by INTEGER
);
CREATE INDEX send_slots_arrived_by ON send_slots (arrived_by);

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
