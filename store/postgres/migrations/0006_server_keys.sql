-- The IDs (never the keys) of the keys an installation's servers must
-- share: the first server records each, and a replica whose key differs
-- refuses to start rather than seal with another.
CREATE TABLE server_keys (
	name TEXT PRIMARY KEY,
	id TEXT NOT NULL,
	recorded_at BIGINT NOT NULL
);
