package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Persona is a character a learner practises with.
type Persona struct {
	ID            uuid.UUID   `db:"id"`
	Name          string      `db:"name"`
	Description   string      `db:"description"`
	Instructions  string      `db:"instructions"`
	AttemptCount  int         `db:"attempt_count"`
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

const personaColumns = `p.id, p.name, p.description, p.instructions, p.attempt_count, p.created_by, p.created_at, p.updated_at`

// InsertPersona stores a new persona with its departments.
func (q Q) InsertPersona(ctx context.Context, p Persona) error {
	if _, err := q.exec(ctx, `INSERT INTO personas (id, name, description, instructions, attempt_count, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.Description, p.Instructions, p.AttemptCount, p.CreatedBy, p.CreatedAt, p.UpdatedAt); err != nil {
		return err
	}
	return q.addPersonaDepartments(ctx, p.ID, p.DepartmentIDs)
}

func (q Q) addPersonaDepartments(ctx context.Context, id uuid.UUID, departmentIDs []uuid.UUID) error {
	for _, d := range departmentIDs {
		if _, err := q.exec(ctx, `INSERT INTO persona_departments (persona_id, department_id) VALUES (?, ?)`, id, d); err != nil {
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

// UpdatePersona writes a persona's fields and replaces its departments.
func (q Q) UpdatePersona(ctx context.Context, p Persona) error {
	n, err := q.exec(ctx, `UPDATE personas SET name = ?, description = ?, instructions = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`, p.Name, p.Description, p.Instructions, p.UpdatedAt, p.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	if _, err := q.exec(ctx, `DELETE FROM persona_departments WHERE persona_id = ?`, p.ID); err != nil {
		return err
	}
	return q.addPersonaDepartments(ctx, p.ID, p.DepartmentIDs)
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

// PersonaFilter selects personas for a search or an export.
type PersonaFilter struct {
	Scope         Scope
	Text          string      // matched case-insensitively against name and description
	DepartmentIDs []uuid.UUID // keep personas in any of these departments
	ID            *uuid.UUID  // keep only this persona
}

func (f PersonaFilter) where(withDepartments bool) (string, []any) {
	conds := []string{"p.deleted_at IS NULL"}
	var args []any
	scope, scopeArgs := f.Scope.where()
	conds = append(conds, scope)
	args = append(args, scopeArgs...)
	if f.Text != "" {
		conds = append(conds, `(lower(p.name) LIKE ? ESCAPE '\' OR lower(p.description) LIKE ? ESCAPE '\')`)
		pattern := likePattern(f.Text)
		args = append(args, pattern, pattern)
	}
	if f.ID != nil {
		conds = append(conds, "p.id = ?")
		args = append(args, *f.ID)
	}
	if withDepartments && len(f.DepartmentIDs) > 0 {
		c, a := in(`EXISTS (SELECT 1 FROM persona_departments fd WHERE fd.persona_id = p.id AND fd.department_id IN (?))`, f.DepartmentIDs)
		conds = append(conds, c)
		args = append(args, a...)
	}
	return strings.Join(conds, " AND "), args
}

// SearchPersonas returns one page of the matching personas, most recently changed first, and
// the number of matches across all pages.
func (q Q) SearchPersonas(ctx context.Context, f PersonaFilter, limit, offset int) ([]Persona, int, error) {
	where, args := f.where(true)
	var ps []Persona
	total, err := q.page(ctx, &ps, personaColumns, "personas p", where, "p.updated_at DESC, p.id DESC", args, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	return ps, total, q.fillDepartments(ctx, ps)
}

// ListPersonas returns every matching persona, by name.
func (q Q) ListPersonas(ctx context.Context, f PersonaFilter) ([]Persona, error) {
	where, args := f.where(true)
	var ps []Persona
	if err := q.sel(ctx, &ps, `SELECT `+personaColumns+` FROM personas p WHERE `+where+` ORDER BY p.name, p.id`, args...); err != nil {
		return nil, err
	}
	return ps, q.fillDepartments(ctx, ps)
}

func (q Q) fillDepartments(ctx context.Context, ps []Persona) error {
	ids := make([]uuid.UUID, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	deps, err := q.personaDepartments(ctx, ids)
	for i := range ps {
		ps[i].DepartmentIDs = deps[ps[i].ID]
	}
	return err
}

// FacetCount is one option of a facet with the number of records in it.
type FacetCount struct {
	ID    uuid.UUID `db:"id"`
	Name  string    `db:"name"`
	Count int       `db:"count"`
}

// PersonaDepartmentFacet counts the personas matching f (ignoring its department filter)
// per department. options limits the departments listed (nil lists all); nameText narrows
// them by name.
func (q Q) PersonaDepartmentFacet(ctx context.Context, f PersonaFilter, options []uuid.UUID, nameText string) ([]FacetCount, error) {
	where, args := f.where(false)
	query := `SELECT d.id, d.name, COUNT(*) AS count FROM persona_departments pd
		JOIN departments d ON d.id = pd.department_id
		JOIN personas p ON p.id = pd.persona_id
		WHERE ` + where
	if options != nil {
		if len(options) == 0 {
			return nil, nil
		}
		c, a := in(` AND d.id IN (?)`, options)
		query += c
		args = append(args, a...)
	}
	if nameText != "" {
		query += ` AND lower(d.name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(nameText))
	}
	query += ` GROUP BY d.id, d.name ORDER BY d.name, d.id`
	var fc []FacetCount
	err := q.sel(ctx, &fc, query, args...)
	return fc, err
}

// IncrementPersonaAttempts adds one to a persona's attempt count.
func (q Q) IncrementPersonaAttempts(ctx context.Context, id uuid.UUID) error {
	_, err := q.exec(ctx, `UPDATE personas SET attempt_count = attempt_count + 1 WHERE id = ?`, id)
	return err
}

// RefreshPersonaStats recomputes attempt_count from the attempts of the matching personas
// and returns how many personas it recomputed.
func (q Q) RefreshPersonaStats(ctx context.Context, f PersonaFilter) (int, error) {
	where, args := f.where(true)
	n, err := q.exec(ctx, `UPDATE personas SET attempt_count =
		(SELECT COUNT(*) FROM attempts a WHERE a.persona_id = personas.id)
		WHERE id IN (SELECT p.id FROM personas p WHERE `+where+`)`, args...)
	return int(n), err
}

// PersonaDraft is an immutable snapshot of the persona editor's form.
type PersonaDraft struct {
	ID        uuid.UUID  `db:"id"`
	PersonaID *uuid.UUID `db:"persona_id"`
	ProfileID uuid.UUID  `db:"profile_id"`
	Name      string     `db:"name"`
	FormState []byte     `db:"form_state"` // JSON
	CreatedAt time.Time  `db:"created_at"`
}

// InsertPersonaDraft appends a draft.
func (q Q) InsertPersonaDraft(ctx context.Context, d PersonaDraft) error {
	_, err := q.exec(ctx, `INSERT INTO persona_drafts (id, persona_id, profile_id, name, form_state, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, d.ID, d.PersonaID, d.ProfileID, d.Name, string(d.FormState), d.CreatedAt)
	return err
}

const draftColumns = `id, persona_id, profile_id, name, form_state, created_at`

// PersonaDraftByID finds a draft.
func (q Q) PersonaDraftByID(ctx context.Context, id uuid.UUID) (PersonaDraft, error) {
	var d PersonaDraft
	err := q.get(ctx, &d, `SELECT `+draftColumns+` FROM persona_drafts WHERE id = ?`, id)
	return d, err
}

// DraftFilter selects a profile's drafts.
type DraftFilter struct {
	ProfileID uuid.UUID
	SubjectID *uuid.UUID // only the drafts of this record
	Text      string     // case-insensitive match on the draft's name
	From, To  *time.Time
}

// ListPersonaDrafts returns a page of a profile's drafts, newest first, and their total.
func (q Q) ListPersonaDrafts(ctx context.Context, f DraftFilter, limit, offset int) ([]PersonaDraft, int, error) {
	conds := []string{"profile_id = ?"}
	args := []any{f.ProfileID}
	if f.SubjectID != nil {
		conds = append(conds, "persona_id = ?")
		args = append(args, *f.SubjectID)
	}
	if f.Text != "" {
		conds = append(conds, `lower(name) LIKE ? ESCAPE '\'`)
		args = append(args, likePattern(f.Text))
	}
	conds, args = createdBetween(conds, args, f.From, f.To)
	where := strings.Join(conds, " AND ")
	var ds []PersonaDraft
	total, err := q.page(ctx, &ds, draftColumns, "persona_drafts", where, "created_at DESC, id DESC", args, limit, offset)
	return ds, total, err
}
