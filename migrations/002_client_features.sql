-- Idempotency-Key: one task per (client key, idempotency key), with the answer it got.
CREATE TABLE idempotency_keys (
  owner           TEXT    NOT NULL,
  key             TEXT    NOT NULL,
  request_hash    TEXT    NOT NULL,
  task_id         TEXT    NOT NULL,
  response_status INTEGER,
  response_body   TEXT,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
