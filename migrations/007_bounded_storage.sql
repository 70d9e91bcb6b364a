-- Bounded storage: a delivery refused before its token proved anything keeps its size, its
-- hash and its first 4 KB, not the whole body.
ALTER TABLE callback_deliveries ADD COLUMN body_bytes INTEGER;
ALTER TABLE callback_deliveries ADD COLUMN body_sha256 TEXT;

-- Retention passes walk these, oldest first, a bounded batch at a time.
CREATE INDEX callback_deliveries_received_at ON callback_deliveries (received_at);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);
CREATE INDEX tasks_completed_at ON tasks (completed_at) WHERE status IN ('succeeded', 'failed');
CREATE INDEX idempotency_keys_task_id ON idempotency_keys (task_id);

-- A pruned task leaves the counts that metrics read.
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
  UPDATE task_status_counts SET n = n - 1 WHERE status = OLD.status;
END;
