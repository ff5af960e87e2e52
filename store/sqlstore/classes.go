package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cohortdev/cohort"
)

const classColumns = `id, name, owner_id, runtime, policy, materials, materials_secret, created_at, updated_at`

const qualifiedClassColumns = `c.id, c.name, c.owner_id, c.runtime, c.policy, c.materials, c.materials_secret, c.created_at, c.updated_at`

func scanClass(row interface{ Scan(...any) error }) (*cohort.Class, error) {
	var c cohort.Class
	var runtime, policy, materials, secret string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.OwnerID, &runtime, &policy, &materials, &secret, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(runtime), &c.Runtime); err != nil {
		return nil, fmt.Errorf("class %s runtime: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(policy), &c.Policy); err != nil {
		return nil, fmt.Errorf("class %s policy: %w", c.ID, err)
	}
	if materials != "" {
		if err := json.Unmarshal([]byte(materials), &c.Materials); err != nil {
			return nil, fmt.Errorf("class %s materials: %w", c.ID, err)
		}
		c.Materials.Credential = secret
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

func classJSON(c *cohort.Class) (runtime, policy, materials string, err error) {
	r, err := json.Marshal(c.Runtime)
	if err != nil {
		return "", "", "", err
	}
	p, err := json.Marshal(c.Policy)
	if err != nil {
		return "", "", "", err
	}
	m, err := materialsJSON(c.Materials)
	return string(r), string(p), m, err
}

func materialsJSON(m *cohort.Materials) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// CreateClass inserts a class, setting its ID and times, and puts its
// owner on the roster as instructor.
func (s *Store) CreateClass(ctx context.Context, c *cohort.Class) error {
	if c.ID == "" {
		c.ID = cohort.NewID("cls")
	}
	c.CreatedAt = s.Now().UTC()
	c.UpdatedAt = c.CreatedAt
	runtime, policy, materials, err := classJSON(c)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO classes (`+classColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.OwnerID, runtime, policy, materials, credential(c.Materials), micros(c.CreatedAt), micros(c.UpdatedAt))
		if err != nil {
			return fmt.Errorf("insert class: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO class_members (class_id, email, role, added_by, added_at)
			SELECT ?, email, 'instructor', email, ? FROM users WHERE id = ?`, c.ID, micros(c.CreatedAt), c.OwnerID)
		if err != nil {
			return fmt.Errorf("enroll class owner: %w", err)
		}
		return nil
	})
}

// GetClass returns a class by ID.
func (s *Store) GetClass(ctx context.Context, id string) (*cohort.Class, error) {
	c, err := scanClass(s.read.QueryRowContext(ctx, `SELECT `+classColumns+` FROM classes WHERE id = ?`, id))
	return c, notFound(err, "class %s not found", id)
}

// ListClasses returns all classes, newest first.
func (s *Store) ListClasses(ctx context.Context) ([]*cohort.Class, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+classColumns+` FROM classes ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list classes: %w", err)
	}
	return collect(rows, scanClass)
}

// ListClassesFor returns the classes whose roster holds email, newest first.
func (s *Store) ListClassesFor(ctx context.Context, email string) ([]*cohort.Class, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+qualifiedClassColumns+` FROM classes c
		JOIN class_members m ON m.class_id = c.id WHERE m.email = lower(?) ORDER BY c.created_at DESC, c.id`, email)
	if err != nil {
		return nil, fmt.Errorf("list classes of %s: %w", email, err)
	}
	return collect(rows, scanClass)
}

// UpdateClass writes a class's name, runtime and policy (not its
// materials: SetMaterials).
func (s *Store) UpdateClass(ctx context.Context, c *cohort.Class) error {
	c.UpdatedAt = s.Now().UTC()
	runtime, policy, _, err := classJSON(c)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE classes SET name = ?, runtime = ?, policy = ?, updated_at = ? WHERE id = ?`,
		c.Name, runtime, policy, micros(c.UpdatedAt), c.ID)
	if err != nil {
		return fmt.Errorf("update class: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "class %s not found", c.ID)
	}
	return nil
}

// credential is the sealed token of a class's materials, stored in a
// column of its own (materials_secret), never in their JSON.
func credential(m *cohort.Materials) string {
	if m == nil {
		return ""
	}
	return m.Credential
}

// SetMaterials writes a class's materials (nil: none) with their
// credential, and nothing else of it.
func (s *Store) SetMaterials(ctx context.Context, classID string, m *cohort.Materials) error {
	b, err := materialsJSON(m)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE classes SET materials = ?, materials_secret = ? WHERE id = ?`, b, credential(m), classID)
	if err != nil {
		return fmt.Errorf("set materials: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ENOTFOUND, "class %s not found", classID)
	}
	return nil
}

// SwapMaterials writes a class's materials if they are still old:
// ECONFLICT if they changed meanwhile (an instructor set others). The
// credential stays: a swap records a newer version of the same
// repository.
func (s *Store) SwapMaterials(ctx context.Context, classID string, old, m *cohort.Materials) error {
	was, err := materialsJSON(old)
	if err != nil {
		return err
	}
	now, err := materialsJSON(m)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE classes SET materials = ? WHERE id = ? AND materials = ?`, now, classID, was)
	if err != nil {
		return fmt.Errorf("swap materials: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cohort.Errorf(cohort.ECONFLICT, "the materials of class %s changed meanwhile", classID)
	}
	return nil
}

// DeleteClass removes a class with no active session, and its history.
func (s *Store) DeleteClass(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx querier) error {
		var exists, active int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM classes WHERE id = ?),
			(SELECT count(*) FROM sessions WHERE class_id = ? AND state NOT IN ('stopped', 'failed'))`, id, id).Scan(&exists, &active)
		switch {
		case err != nil:
			return fmt.Errorf("count sessions: %w", err)
		case exists == 0:
			return cohort.Errorf(cohort.ENOTFOUND, "class %s not found", id)
		case active > 0:
			return cohort.Errorf(cohort.ECONFLICT, "class %s has %d active sessions; stop them (and drain its warm seats) before deleting the class", id, active)
		}
		for _, q := range []string{
			`DELETE FROM sessions WHERE class_id = ?`,
			`DELETE FROM classes WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("delete class: %w", err)
			}
		}
		return nil
	})
}
