-- Times are Unix microseconds (UTC).
CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	email      TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL CHECK (role IN ('admin', 'instructor', 'participant')),
	created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	secret_hash TEXT NOT NULL UNIQUE,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
);

CREATE TABLE browser_sessions (
	cookie_hash TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	revoked_at  INTEGER
);

CREATE TABLE classes (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	owner_id   TEXT NOT NULL REFERENCES users (id),
	runtime    TEXT NOT NULL, -- JSON of cohort.Runtime
	policy     TEXT NOT NULL, -- JSON of cohort.Policy
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
	id               TEXT PRIMARY KEY,
	class_id         TEXT NOT NULL REFERENCES classes (id),
	user_id          TEXT NOT NULL REFERENCES users (id),
	state            TEXT NOT NULL,
	reason           TEXT NOT NULL DEFAULT '',
	driver           TEXT NOT NULL,
	address          TEXT NOT NULL DEFAULT '',
	notebook_token   TEXT NOT NULL,
	created_at       INTEGER NOT NULL,
	state_changed_at INTEGER NOT NULL,
	ready_at         INTEGER,
	ended_at         INTEGER,
	version          INTEGER NOT NULL DEFAULT 1
);

-- One active session per participant per class.
CREATE UNIQUE INDEX sessions_one_active ON sessions (class_id, user_id)
	WHERE state NOT IN ('stopped', 'failed');
CREATE INDEX sessions_state ON sessions (state);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_codes (
	code_hash  TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
);

CREATE TABLE session_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	time       INTEGER NOT NULL,
	state      TEXT NOT NULL,
	message    TEXT NOT NULL
);
CREATE INDEX session_events_session ON session_events (session_id, id);
