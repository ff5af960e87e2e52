ALTER TABLE users ADD COLUMN hosted_domain TEXT NOT NULL DEFAULT '';

ALTER TABLE browser_sessions ADD COLUMN csrf_token TEXT NOT NULL DEFAULT '';

CREATE TABLE login_attempts (
	state_hash TEXT PRIMARY KEY,
	nonce      TEXT NOT NULL,
	verifier   TEXT NOT NULL,
	next       TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE TABLE device_codes (
	device_hash TEXT PRIMARY KEY,
	user_code   TEXT NOT NULL UNIQUE,
	expires_at  INTEGER NOT NULL,
	user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
	approved_at INTEGER,
	claimed_at  INTEGER
);

CREATE TABLE class_members (
	class_id TEXT NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
	email    TEXT NOT NULL,
	role     TEXT NOT NULL CHECK (role IN ('participant', 'instructor')),
	added_by TEXT NOT NULL,
	added_at INTEGER NOT NULL,
	PRIMARY KEY (class_id, email)
);
CREATE INDEX class_members_email ON class_members (email);

-- Owners of existing classes become their instructors.
INSERT INTO class_members (class_id, email, role, added_by, added_at)
	SELECT c.id, u.email, 'instructor', u.email, c.created_at FROM classes c JOIN users u ON u.id = c.owner_id;

CREATE TABLE class_invites (
	id         TEXT PRIMARY KEY,
	class_id   TEXT NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
	code_hash  TEXT NOT NULL UNIQUE,
	domain     TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER,
	uses       INTEGER NOT NULL DEFAULT 0
);

-- No foreign keys: the record outlives what it is about.
CREATE TABLE audit_events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	time        INTEGER NOT NULL,
	actor_id    TEXT NOT NULL DEFAULT '',
	actor_email TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	class_id    TEXT NOT NULL DEFAULT '',
	session_id  TEXT NOT NULL DEFAULT '',
	subject     TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_class ON audit_events (class_id, id);
