-- What a session bills and for how long at most, fixed when it was
-- admitted (package cost): budgets count it even after its class changes.
ALTER TABLE sessions ADD COLUMN bill_vm REAL NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN bill_disk REAL NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN bill_cap_us INTEGER NOT NULL DEFAULT 0;
