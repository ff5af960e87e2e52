-- A browser cookie is either a sign-in to the app (session_id '') or a
-- notebook origin's cookie, valid for that one session only.
ALTER TABLE browser_sessions ADD COLUMN session_id TEXT NOT NULL DEFAULT '';

-- Every audit row says where the request came from.
ALTER TABLE audit_events ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';

-- The approval page of a CLI sign-in names the client, its address and
-- when it asked.
ALTER TABLE device_codes ADD COLUMN client_name TEXT NOT NULL DEFAULT '';
ALTER TABLE device_codes ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE device_codes ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;

-- The notebook cookie a one-time code gives ends with the sign-in that
-- minted the code.
ALTER TABLE login_codes ADD COLUMN cookie_expires_at INTEGER NOT NULL DEFAULT 0;
