-- A class's materials (cohort.Materials as JSON; empty for none), set
-- apart from the class's other fields: sessions record a branch's newest
-- commit there without racing an instructor's edit of the class.
ALTER TABLE classes ADD COLUMN materials TEXT NOT NULL DEFAULT '';
