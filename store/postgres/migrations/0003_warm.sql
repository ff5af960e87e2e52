-- Warm seats (warm.go): sessions owned by the pool user until a
-- participant claims one. The pool user signs in nowhere (its email is
-- reserved); a class may have many warm seats at once.
ALTER TABLE sessions ADD COLUMN claimed_at BIGINT;
INSERT INTO users (id, email, role, created_at) VALUES ('usr_pool', 'warm-seats@cohort.invalid', 'participant', 0)
	ON CONFLICT DO NOTHING;
DROP INDEX sessions_one_active;
CREATE UNIQUE INDEX sessions_one_active ON sessions (class_id, user_id)
	WHERE state NOT IN ('stopped', 'failed') AND user_id <> 'usr_pool';
