-- A class's seat table lists its sessions, newest first, every few seconds
-- per instructor: without this the list read every session ever made.
CREATE INDEX sessions_class ON sessions (class_id, created_at DESC);
