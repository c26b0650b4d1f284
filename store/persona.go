package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Persona is a character a learner practises with.
type Persona struct {
	ID            uuid.UUID   `db:"id"`
	Name          string      `db:"name"`
	Description   string      `db:"description"`
	Instructions  string      `db:"instructions"`
	CreatedBy     uuid.UUID   `db:"created_by"`
	CreatedAt     time.Time   `db:"created_at"`
	UpdatedAt     time.Time   `db:"updated_at"`
	DepartmentIDs []uuid.UUID `db:"-"`
}

// Scope is the part of the data a caller may see: everything, or records shared with
// every department (no departments of their own) plus those of the listed departments.
type Scope struct {
	All           bool
	DepartmentIDs []uuid.UUID
}

// where returns the condition that keeps the personas aliased p inside the scope.
func (s Scope) where() (string, []any) {
	if s.All {
		return "1 = 1", nil
	}
	shared := `NOT EXISTS (SELECT 1 FROM persona_departments sd WHERE sd.persona_id = p.id)`
	if len(s.DepartmentIDs) == 0 {
		return shared, nil
	}
	return in(`(`+shared+` OR EXISTS (SELECT 1 FROM persona_departments sd
		WHERE sd.persona_id = p.id AND sd.department_id IN (?)))`, s.DepartmentIDs)
}

// Allows reports whether a record with these departments is inside the scope.
func (s Scope) Allows(departmentIDs []uuid.UUID) bool {
	if s.All || len(departmentIDs) == 0 {
		return true
	}
	for _, d := range departmentIDs {
		for _, mine := range s.DepartmentIDs {
			if d == mine {
				return true
			}
		}
	}
	return false
}

const personaColumns = `p.id, p.name, p.description, p.instructions, p.created_by, p.created_at, p.updated_at`

// PersonaKind is the family's kind of the personas' records. Each persona has a record of
// this kind with its id; the family's operations keep the personas table, which attempts
// and chats read, in step with it (SavePersona, DeletePersona). Its attempt count is a
// field of the record (the table's attempt_count column is no longer read).
const PersonaKind = "persona"

// SavePersona creates the persona p.ID or writes its fields and departments.
func (q Q) SavePersona(ctx context.Context, p Persona) error {
	if _, err := q.exec(ctx, `INSERT INTO personas (id, name, description, instructions, attempt_count, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
			instructions = excluded.instructions, updated_at = excluded.updated_at`,
		p.ID, p.Name, p.Description, p.Instructions, 0, p.CreatedBy, p.CreatedAt, p.UpdatedAt); err != nil {
		return err
	}
	if _, err := q.exec(ctx, `DELETE FROM persona_departments WHERE persona_id = ?`, p.ID); err != nil {
		return err
	}
	for _, d := range p.DepartmentIDs {
		if _, err := q.exec(ctx, `INSERT INTO persona_departments (persona_id, department_id) VALUES (?, ?)`, p.ID, d); err != nil {
			return err
		}
	}
	return nil
}

// PersonaByID finds a persona that is not deleted, with its departments.
func (q Q) PersonaByID(ctx context.Context, id uuid.UUID) (Persona, error) {
	var p Persona
	if err := q.get(ctx, &p, `SELECT `+personaColumns+` FROM personas p WHERE p.id = ? AND p.deleted_at IS NULL`, id); err != nil {
		return p, err
	}
	deps, err := q.personaDepartments(ctx, []uuid.UUID{id})
	p.DepartmentIDs = deps[id]
	return p, err
}

// DeletePersona archives a persona: it leaves searches and gets, its attempts remain.
func (q Q) DeletePersona(ctx context.Context, id uuid.UUID) error {
	n, err := q.exec(ctx, `UPDATE personas SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, Now(), id)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// personaDepartments maps persona ids to their department ids.
func (q Q) personaDepartments(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error) {
	out := make(map[uuid.UUID][]uuid.UUID, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	query, args := in(`SELECT pd.persona_id, pd.department_id FROM persona_departments pd
		JOIN departments d ON d.id = pd.department_id
		WHERE pd.persona_id IN (?) ORDER BY d.name, d.id`, ids)
	var rows []struct {
		PersonaID    uuid.UUID `db:"persona_id"`
		DepartmentID uuid.UUID `db:"department_id"`
	}
	if err := q.sel(ctx, &rows, query, args...); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.PersonaID] = append(out[r.PersonaID], r.DepartmentID)
	}
	return out, nil
}

// IncrementPersonaAttempts adds one to the attempt count of a persona's record, in one
// statement: attempts started at once each count.
func (q Q) IncrementPersonaAttempts(ctx context.Context, id uuid.UUID) error {
	_, err := q.exec(ctx, `UPDATE artifacts SET fields = `+q.setCount("COALESCE("+q.fieldNumber("attempt_count")+", 0) + 1")+`
		WHERE id = ? AND kind = ?`, id, PersonaKind)
	return err
}

// RecountPersonaAttempts sets the attempt count of the persona records f selects to the
// number of their attempts.
func (q Q) RecountPersonaAttempts(ctx context.Context, f RecordFilter) error {
	where, args := q.recordWhere(f, "")
	_, err := q.exec(ctx, `UPDATE artifacts SET fields = `+q.setCount("(SELECT COUNT(*) FROM attempts t WHERE t.persona_id = artifacts.id)")+`
		WHERE id IN (SELECT a.id FROM artifacts a WHERE `+where+`)`, args...)
	return err
}

// fieldNumber reads a number field of a record's fields (the row being updated), in the
// dialect of q.
func (q Q) fieldNumber(name string) string {
	if q.x.DriverName() == "sqlite" {
		return "json_extract(fields, '$." + name + "')"
	}
	return "(fields::jsonb->>'" + name + "')::bigint"
}

// setCount is the fields of the row being updated with attempt_count set to value.
func (q Q) setCount(value string) string {
	if q.x.DriverName() == "sqlite" {
		return "json_set(fields, '$.attempt_count', " + value + ")"
	}
	return "jsonb_set(fields::jsonb, '{attempt_count}', to_jsonb(" + value + "))::text"
}
