-- What happens when a task becomes final now lives in one module (src/tasks/on-final.ts), which
-- writes the webhook event to the outbox in the same transaction as the status change; the
-- client's URL is its webhook URL (the public field keeps kie.ai's word, callbackUrl).
DROP TRIGGER tasks_final_webhook;
ALTER TABLE tasks RENAME COLUMN callback_url TO webhook_url;
