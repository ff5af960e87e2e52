-- The token of a class's private materials repository, sealed with the
-- server's key (package seal; empty for none). Apart from the materials'
-- JSON, which the API answers with: this column never leaves the store.
ALTER TABLE classes ADD COLUMN materials_secret TEXT NOT NULL DEFAULT '';
