package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Departments are the tenancy units: the departments table is what profiles, personas and
// the family's records belong to. Each department also has a record of the family, of
// kind DepartmentKind with the department's id, in its own scope; the family's department
// operations keep the table in step with it (SaveDepartment, DeleteDepartment).

// DepartmentKind is the family's kind of the departments' records.
const DepartmentKind = "department"

// EnsureDepartment returns the department with this name, creating it (and its record,
// made by the profile by) if needed.
func (q Q) EnsureDepartment(ctx context.Context, name string, by uuid.UUID) (Department, error) {
	var d Department
	err := q.get(ctx, &d, `SELECT id, name, created_at FROM departments WHERE name = ?`, name)
	if !errors.Is(err, ErrNotFound) {
		return d, err
	}
	d = Department{ID: NewID(), Name: name, CreatedAt: Now()}
	if err := q.SaveDepartment(ctx, d.ID, d.Name, d.CreatedAt); err != nil {
		return d, err
	}
	return d, q.InsertRecord(ctx, Record{ID: d.ID, Kind: DepartmentKind, Name: name, CreatedBy: by, CreatedAt: d.CreatedAt,
		UpdatedAt: d.CreatedAt, Links: map[string][]uuid.UUID{DepartmentsRelation: {d.ID}}})
}

// SaveDepartment creates the department id or renames it. Another department's name is
// ErrDuplicate.
func (q Q) SaveDepartment(ctx context.Context, id uuid.UUID, name string, createdAt time.Time) error {
	// Asked first, not left to the unique index: on PostgreSQL a refused statement would
	// end the caller's transaction, which goes on to report the item.
	var other int
	if err := q.get(ctx, &other, `SELECT COUNT(*) FROM departments WHERE name = ? AND id <> ?`, name, id); err != nil {
		return err
	}
	if other > 0 {
		return fmt.Errorf("department %q: %w", name, ErrDuplicate)
	}
	_, err := q.exec(ctx, `INSERT INTO departments (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, id, name, createdAt)
	return err
}

// DepartmentMembers counts the profiles of a department.
func (q Q) DepartmentMembers(ctx context.Context, id uuid.UUID) (int, error) {
	var n int
	err := q.get(ctx, &n, `SELECT COUNT(*) FROM profile_departments WHERE department_id = ?`, id)
	return n, err
}

// DeleteDepartment removes a department; the personas in it leave it.
func (q Q) DeleteDepartment(ctx context.Context, id uuid.UUID) error {
	n, err := q.exec(ctx, `DELETE FROM departments WHERE id = ?`, id)
	if err == nil && n == 0 {
		return fmt.Errorf("department %s: %w", id, ErrNotFound)
	}
	return err
}
