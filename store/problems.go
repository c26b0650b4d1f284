package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Problem is a feedback or bug report about an artifact, and whether it was resolved.
type Problem struct {
	ID          uuid.UUID  `db:"id"`
	Artifact    string     `db:"artifact"`
	Type        string     `db:"type"`
	Message     string     `db:"message"`
	SubjectID   *uuid.UUID `db:"subject_id"`
	ProfileID   uuid.UUID  `db:"profile_id"`
	ProfileName string     `db:"profile_name"` // read only
	CreatedAt   time.Time  `db:"created_at"`
	ResolvedAt  *time.Time `db:"resolved_at"`
	ResolvedBy  *uuid.UUID `db:"resolved_by"`
}

// InsertProblem stores a report.
func (q Q) InsertProblem(ctx context.Context, p Problem) error {
	_, err := q.exec(ctx, `INSERT INTO problems (id, artifact, type, message, subject_id, profile_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Artifact, p.Type, p.Message, p.SubjectID, p.ProfileID, p.CreatedAt)
	return err
}

// ProblemFilter selects reports: those of the reporter and of the profiles in any of the
// departments (DepartmentIDs nil: every report).
type ProblemFilter struct {
	Resolved      *bool  // nil: open and resolved
	Artifact      string // "" for every artifact
	ID            *uuid.UUID
	Reporter      uuid.UUID
	DepartmentIDs []uuid.UUID
}

func (f ProblemFilter) where() (string, []any) {
	where := "1 = 1"
	switch {
	case f.Resolved == nil:
	case *f.Resolved:
		where = "pr.resolved_at IS NOT NULL"
	default:
		where = "pr.resolved_at IS NULL"
	}
	var args []any
	if f.Artifact != "" {
		where, args = where+" AND pr.artifact = ?", append(args, f.Artifact)
	}
	if f.ID != nil {
		where, args = where+" AND pr.id = ?", append(args, *f.ID)
	}
	if f.DepartmentIDs != nil {
		scope := "pr.profile_id = ?"
		args = append(args, f.Reporter)
		if len(f.DepartmentIDs) > 0 {
			c, a := in(` OR EXISTS (SELECT 1 FROM profile_departments pd WHERE pd.profile_id = pr.profile_id AND pd.department_id IN (?))`, f.DepartmentIDs)
			scope, args = scope+c, append(args, a...)
		}
		where += " AND (" + scope + ")"
	}
	return where, args
}

const problemColumns = `pr.id, pr.artifact, pr.type, pr.message, pr.subject_id, pr.profile_id, p.name AS profile_name,
	pr.created_at, pr.resolved_at, pr.resolved_by`

// SearchProblems returns a page of the matching reports, newest first, and how many match.
func (q Q) SearchProblems(ctx context.Context, f ProblemFilter, limit, offset int) ([]Problem, int, error) {
	where, args := f.where()
	var ps []Problem
	total, err := q.page(ctx, &ps, problemColumns, `problems pr JOIN profiles p ON p.id = pr.profile_id`, where,
		`pr.created_at DESC, pr.id DESC`, args, limit, offset)
	return ps, total, err
}

// ResolveProblem marks the report id resolved by a profile (or, with by nil, open again),
// if the filter's scope reaches it, and returns it as it now stands. A report out of
// scope or that does not exist is ErrNotFound.
func (q Q) ResolveProblem(ctx context.Context, id uuid.UUID, scope ProblemFilter, by *uuid.UUID, at time.Time) (Problem, error) {
	scope.ID, scope.Resolved = &id, nil
	where, args := scope.where()
	var p Problem
	if err := q.get(ctx, &p, `SELECT `+problemColumns+` FROM problems pr JOIN profiles p ON p.id = pr.profile_id WHERE `+where, args...); err != nil {
		return Problem{}, err
	}
	switch {
	case by != nil && p.ResolvedAt == nil:
		p.ResolvedAt, p.ResolvedBy = &at, by
	case by == nil && p.ResolvedAt != nil:
		p.ResolvedAt, p.ResolvedBy = nil, nil
	default:
		return p, nil // already as asked
	}
	_, err := q.exec(ctx, `UPDATE problems SET resolved_at = ?, resolved_by = ? WHERE id = ?`, p.ResolvedAt, p.ResolvedBy, id)
	return p, err
}
