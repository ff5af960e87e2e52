-- cohort's schema on Postgres: store/sqlite's migrations 0001-0007 as one.
-- Times are microseconds since the Unix epoch (BIGINT), as on SQLite, so
-- that both run the same queries (store/sqlstore). Comments on why a
-- column or index exists are in store/sqlite/migrations.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'instructor', 'participant')),
	created_at    BIGINT NOT NULL,
	hosted_domain TEXT NOT NULL DEFAULT ''
);

CREATE TABLE api_tokens (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	secret_hash TEXT NOT NULL UNIQUE,
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE browser_sessions (
	cookie_hash TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	revoked_at  BIGINT,
	csrf_token  TEXT NOT NULL DEFAULT '',
	session_id  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE classes (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	owner_id   TEXT NOT NULL REFERENCES users (id),
	runtime    TEXT NOT NULL, -- JSON of cohort.Runtime
	policy     TEXT NOT NULL, -- JSON of cohort.Policy
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
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
	created_at       BIGINT NOT NULL,
	state_changed_at BIGINT NOT NULL,
	ready_at         BIGINT,
	ended_at         BIGINT,
	version          BIGINT NOT NULL DEFAULT 1,
	end_cause        TEXT NOT NULL DEFAULT '',
	last_activity_at BIGINT,
	extension_us     BIGINT NOT NULL DEFAULT 0,
	idle_deadline    BIGINT,
	hard_deadline    BIGINT,
	check_at         BIGINT,
	warned_at        BIGINT,
	bill_vm          DOUBLE PRECISION NOT NULL DEFAULT 0,
	bill_disk        DOUBLE PRECISION NOT NULL DEFAULT 0,
	bill_cap_us      BIGINT NOT NULL DEFAULT 0,
	budget_stop_at   BIGINT
);
CREATE UNIQUE INDEX sessions_one_active ON sessions (class_id, user_id)
	WHERE state NOT IN ('stopped', 'failed');
CREATE INDEX sessions_state ON sessions (state);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_check_at ON sessions (state, check_at);
CREATE INDEX sessions_class ON sessions (class_id, created_at DESC);

CREATE TABLE login_codes (
	code_hash         TEXT PRIMARY KEY,
	user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	expires_at        BIGINT NOT NULL,
	used_at           BIGINT,
	cookie_expires_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE session_events (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	time       BIGINT NOT NULL,
	state      TEXT NOT NULL,
	message    TEXT NOT NULL
);
CREATE INDEX session_events_session ON session_events (session_id, id);

CREATE TABLE login_attempts (
	state_hash TEXT PRIMARY KEY,
	nonce      TEXT NOT NULL,
	verifier   TEXT NOT NULL,
	next       TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE TABLE device_codes (
	device_hash TEXT PRIMARY KEY,
	user_code   TEXT NOT NULL UNIQUE,
	expires_at  BIGINT NOT NULL,
	user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
	approved_at BIGINT,
	claimed_at  BIGINT,
	client_name TEXT NOT NULL DEFAULT '',
	client_addr TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE class_members (
	class_id TEXT NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
	email    TEXT NOT NULL,
	role     TEXT NOT NULL CHECK (role IN ('participant', 'instructor')),
	added_by TEXT NOT NULL,
	added_at BIGINT NOT NULL,
	PRIMARY KEY (class_id, email)
);
CREATE INDEX class_members_email ON class_members (email);

CREATE TABLE class_invites (
	id         TEXT PRIMARY KEY,
	class_id   TEXT NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
	code_hash  TEXT NOT NULL UNIQUE,
	domain     TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT,
	uses       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE audit_events (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time        BIGINT NOT NULL,
	actor_id    TEXT NOT NULL DEFAULT '',
	actor_email TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	class_id    TEXT NOT NULL DEFAULT '',
	session_id  TEXT NOT NULL DEFAULT '',
	subject     TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT '',
	client_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_class ON audit_events (class_id, id);

CREATE TABLE spend (
	month      TEXT NOT NULL,
	class_id   TEXT NOT NULL,
	class_name TEXT NOT NULL,
	amount     DOUBLE PRECISION NOT NULL,
	sessions   BIGINT NOT NULL,
	PRIMARY KEY (month, class_id)
);

CREATE TABLE settings (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	monthly_budget DOUBLE PRECISION NOT NULL DEFAULT 0
);
INSERT INTO settings (id) VALUES (1);
