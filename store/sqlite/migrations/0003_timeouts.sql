ALTER TABLE sessions ADD COLUMN end_cause TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_activity_at INTEGER;
ALTER TABLE sessions ADD COLUMN extension_us INTEGER NOT NULL DEFAULT 0;
-- A cache of the deadlines the timeouts package computes; check_at (the
-- next deadline less the warning time) is what the sweep's query reads.
-- NULL until first computed.
ALTER TABLE sessions ADD COLUMN idle_deadline INTEGER;
ALTER TABLE sessions ADD COLUMN hard_deadline INTEGER;
ALTER TABLE sessions ADD COLUMN check_at INTEGER;
ALTER TABLE sessions ADD COLUMN warned_at INTEGER;

CREATE INDEX sessions_check_at ON sessions (state, check_at);
