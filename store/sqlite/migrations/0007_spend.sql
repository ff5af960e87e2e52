-- A seat stopped because its class's budget was lowered stops at this
-- time, after the usual warning.
ALTER TABLE sessions ADD COLUMN budget_stop_at INTEGER;

-- What ended sessions cost, by month (UTC, "2026-12") and class, at the
-- terms each was admitted with: added in the transaction that ends a
-- session, so that a month's spend is one small read. It outlives the
-- class: money spent stays spent.
CREATE TABLE spend (
	month TEXT NOT NULL,
	class_id TEXT NOT NULL,
	class_name TEXT NOT NULL,
	amount REAL NOT NULL,
	sessions INTEGER NOT NULL,
	PRIMARY KEY (month, class_id)
);

-- The installation's settings an admin changes at run time: one row.
CREATE TABLE settings (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	monthly_budget REAL NOT NULL DEFAULT 0
);
INSERT INTO settings (id) VALUES (1);
