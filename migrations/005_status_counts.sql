-- Tasks per status, kept by the database itself, so metrics never count the tasks table.
CREATE TABLE task_status_counts (
  status TEXT PRIMARY KEY,
  n      INTEGER NOT NULL
);
INSERT INTO task_status_counts (status, n)
  SELECT s.status, (SELECT count(*) FROM tasks t WHERE t.status = s.status)
  FROM (SELECT 'queued' AS status UNION ALL SELECT 'submitted' UNION ALL SELECT 'succeeded' UNION ALL SELECT 'failed') s;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
  UPDATE task_status_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
  UPDATE task_status_counts SET n = n - 1 WHERE status = OLD.status;
  UPDATE task_status_counts SET n = n + 1 WHERE status = NEW.status;
END;

-- Start-up recovery looks at queued tasks only: never a scan of the whole table.
CREATE INDEX tasks_queued ON tasks (seq) WHERE status = 'queued';
