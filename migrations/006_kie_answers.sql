-- Envelope-500 answers a task has had: kie.ai uses code 500 for some bad requests too, so
-- only a few are retried (KIE_SERVER_ERROR_RETRIES) before the task fails.
ALTER TABLE tasks ADD COLUMN server_errors INTEGER NOT NULL DEFAULT 0;
