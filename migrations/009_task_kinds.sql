-- Every Midjourney image task through one queue: generate (a grid from a prompt), vary (a new grid
-- from one image of a grid) and upscale. A grid has no parent task and no image index, so the
-- table is rebuilt with those columns nullable, beside three new ones:
--   type      the kind of task
--   params    kie.ai's parameters as the client submitted them (JSON)
--   parent_id the caller's own gateway task this one is chained to; until that parent has
--             succeeded, parent_task_id (its kie.ai id) is NULL and the task waits.
CREATE TABLE tasks_new (
  seq                INTEGER PRIMARY KEY,
  id                 TEXT    NOT NULL UNIQUE,
  owner              TEXT    NOT NULL,
  type               TEXT    NOT NULL DEFAULT 'upscale' CHECK (type IN ('generate', 'vary', 'upscale')),
  status             TEXT    NOT NULL CHECK (status IN ('queued', 'submitted', 'succeeded', 'failed')),
  parent_id          TEXT,
  parent_task_id     TEXT,
  image_index        INTEGER CHECK (image_index IS NULL OR image_index BETWEEN 0 AND 3),
  water_mark         TEXT,
  params             TEXT,
  kie_task_id        TEXT,
  result_urls        TEXT,
  error_code         TEXT,
  error_message      TEXT,
  send_state         TEXT    NOT NULL DEFAULT 'pending' CHECK (send_state IN ('pending', 'sending', 'sent')),
  attempts           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at    INTEGER NOT NULL,
  submit_deadline_at INTEGER NOT NULL,
  lease_owner        TEXT,
  lease_until        INTEGER,
  sent_at            INTEGER,
  last_error         TEXT,
  reconcile_at       INTEGER,
  reconcile_attempts INTEGER NOT NULL DEFAULT 0,
  upstream_state     TEXT,
  status_source      TEXT    NOT NULL DEFAULT 'create',
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  completed_at       INTEGER,
  last_activity_at   INTEGER NOT NULL,
  webhook_url        TEXT,
  server_errors      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tasks_new (seq, id, owner, type, status, parent_id, parent_task_id, image_index, water_mark, params,
  kie_task_id, result_urls, error_code, error_message, send_state, attempts, next_attempt_at, submit_deadline_at,
  lease_owner, lease_until, sent_at, last_error, reconcile_at, reconcile_attempts, upstream_state, status_source,
  created_at, updated_at, completed_at, last_activity_at, webhook_url, server_errors)
SELECT seq, id, owner, 'upscale', status, NULL, parent_task_id, image_index, water_mark,
  json_object('taskId', parent_task_id, 'imageIndex', image_index, 'waterMark', water_mark),
  kie_task_id, result_urls, error_code, error_message, send_state, attempts, next_attempt_at, submit_deadline_at,
  lease_owner, lease_until, sent_at, last_error, reconcile_at, reconcile_attempts, upstream_state, status_source,
  created_at, updated_at, completed_at, last_activity_at, webhook_url, server_errors
FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE INDEX tasks_owner_seq ON tasks (owner, seq);
CREATE INDEX tasks_owner_status_seq ON tasks (owner, status, seq);
CREATE INDEX tasks_owner_type_seq ON tasks (owner, type, seq);
CREATE INDEX tasks_kie_task_id ON tasks (kie_task_id) WHERE kie_task_id IS NOT NULL;
CREATE INDEX tasks_send_queue ON tasks (seq) WHERE status = 'queued' AND send_state = 'pending';
CREATE INDEX tasks_reconcile ON tasks (reconcile_at) WHERE status = 'submitted';
CREATE INDEX tasks_activity ON tasks (last_activity_at) WHERE status = 'submitted';
CREATE INDEX tasks_queued ON tasks (seq) WHERE status = 'queued';
CREATE INDEX tasks_completed_at ON tasks (completed_at) WHERE status IN ('succeeded', 'failed');
CREATE INDEX tasks_parent_id ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TRIGGER tasks_created AFTER INSERT ON tasks BEGIN
  INSERT INTO task_events (task_id, at, from_status, to_status, source)
  VALUES (NEW.id, NEW.created_at, NULL, NEW.status, NEW.status_source);
END;
CREATE TRIGGER tasks_status_changed AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
  INSERT INTO task_events (task_id, at, from_status, to_status, source)
  VALUES (NEW.id, NEW.updated_at, OLD.status, NEW.status, NEW.status_source);
END;

-- Tasks per kind and status, kept by the database itself (metrics never count the tasks table).
DROP TABLE task_status_counts;
CREATE TABLE task_counts (
  type   TEXT NOT NULL,
  status TEXT NOT NULL,
  n      INTEGER NOT NULL,
  PRIMARY KEY (type, status)
);
INSERT INTO task_counts (type, status, n)
  SELECT k.type, s.status, (SELECT count(*) FROM tasks t WHERE t.type = k.type AND t.status = s.status)
  FROM (SELECT 'generate' AS type UNION ALL SELECT 'vary' UNION ALL SELECT 'upscale') k,
       (SELECT 'queued' AS status UNION ALL SELECT 'submitted' UNION ALL SELECT 'succeeded' UNION ALL SELECT 'failed') s;
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
  UPDATE task_counts SET n = n + 1 WHERE type = NEW.type AND status = NEW.status;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
  UPDATE task_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
  UPDATE task_counts SET n = n + 1 WHERE type = NEW.type AND status = NEW.status;
END;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
  UPDATE task_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
END;
