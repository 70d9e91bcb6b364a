-- Client webhooks: the URL a client asked to be called at, and a durable outbox.
ALTER TABLE tasks ADD COLUMN callback_url TEXT;

CREATE TABLE webhook_deliveries (
  id              INTEGER PRIMARY KEY,
  -- The Standard Webhooks `webhook-id`: the same on every attempt of one event.
  event_id        TEXT    NOT NULL UNIQUE,
  task_id         TEXT    NOT NULL,
  type            TEXT    NOT NULL,
  url             TEXT    NOT NULL,
  created_at      INTEGER NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until     INTEGER,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_task_id ON webhook_deliveries (task_id);

CREATE TABLE webhook_attempts (
  id               INTEGER PRIMARY KEY,
  delivery_id      INTEGER NOT NULL REFERENCES webhook_deliveries (id),
  at               INTEGER NOT NULL,
  status_code      INTEGER,
  duration_ms      INTEGER NOT NULL,
  error            TEXT,
  response_excerpt TEXT
);
CREATE INDEX webhook_attempts_delivery_id ON webhook_attempts (delivery_id);

-- The event is written by the same transaction that makes the task final, so it is never
-- lost and never sent for a change that was not stored.
CREATE TRIGGER tasks_final_webhook AFTER UPDATE OF status ON tasks
WHEN NEW.callback_url IS NOT NULL AND OLD.status <> NEW.status AND NEW.status IN ('succeeded', 'failed')
BEGIN
  INSERT INTO webhook_deliveries (event_id, task_id, type, url, created_at, next_attempt_at, updated_at)
  VALUES ('msg_' || lower(hex(randomblob(16))), NEW.id, 'upscale.' || NEW.status, NEW.callback_url,
          NEW.updated_at, NEW.updated_at, NEW.updated_at);
END;
