-- The admin API lists every client's tasks, newest first, by status or by kind: without these
-- a filter on a rare status (failed, say) would scan the whole table. Per-client lists keep
-- their (owner, ...) indexes.
CREATE INDEX tasks_status_seq ON tasks (status, seq);
CREATE INDEX tasks_type_seq ON tasks (type, seq);
