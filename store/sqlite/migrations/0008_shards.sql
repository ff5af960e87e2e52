-- The GCE driver's shards: stacks of up to 25 sessions of a class, which
-- any replica may update (provisioner/gce). A shard's lease says who
-- updates it now; an update is owed while generation > settled.
CREATE TABLE shards (
	name        TEXT PRIMARY KEY,
	class_id    TEXT NOT NULL,
	generation  INTEGER NOT NULL DEFAULT 0,
	settled     INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX shards_class ON shards (class_id);

-- A session in a shard: what the driver creates for it (spec, JSON with
-- the notebook's token, as sessions.notebook_token) and what exists (vm).
-- No reference to sessions or classes: a row outlives its class until
-- its VM is gone.
CREATE TABLE shard_members (
	session_id TEXT PRIMARY KEY,
	shard      TEXT NOT NULL REFERENCES shards (name),
	class_id   TEXT NOT NULL,
	wanted     INTEGER NOT NULL,
	spec       TEXT NOT NULL,
	vm         TEXT NOT NULL DEFAULT '',
	failed     TEXT NOT NULL DEFAULT '',
	note       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX shard_members_class ON shard_members (class_id);
