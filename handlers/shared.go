package handlers

// What the handlers share: who may change what (departments), the caller's working groups,
// problem reports, and small helpers.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// canManage reports whether id may change a record with these departments: level 0 may
// change anything; others may change what belongs to one of their departments, but not
// what is shared with every department.
func canManage(id *auth.Identity, departmentIDs []uuid.UUID) bool {
	return id.Level == 0 || (len(departmentIDs) > 0 && id.Scope().Allows(departmentIDs))
}

// visiblePersona loads a persona the caller may see: 404 when missing, 403 when it belongs
// to other departments.
func visiblePersona(ctx context.Context, q store.Q, id *auth.Identity, personaID uuid.UUID) (store.Persona, error) {
	p, err := q.PersonaByID(ctx, personaID)
	if err != nil {
		return p, notFound(err, "persona", personaID)
	}
	if !id.Scope().Allows(p.DepartmentIDs) {
		return p, problem.Forbidden("persona %s belongs to departments you are not in", personaID)
	}
	return p, nil
}

// departmentsFor checks the departments given to a record of an artifact (what). nil means
// "not given": level 0 then shares the record with every department, others get their own
// departments.
func departmentsFor(ctx context.Context, q store.Q, id *auth.Identity, given []uuid.UUID, what string) ([]uuid.UUID, []gen.FieldError) {
	fail := func(msg string) ([]uuid.UUID, []gen.FieldError) {
		return nil, []gen.FieldError{{Field: "department_ids", Message: msg}}
	}
	switch {
	case given == nil && id.Level == 0:
		return nil, nil
	case given == nil && len(id.DepartmentIDs) == 0:
		return fail("you belong to no department; ask an admin to add you to one")
	case given == nil:
		return id.DepartmentIDs, nil
	case len(given) == 0 && id.Level != 0:
		return fail("only level 0 may share a " + what + " with every department")
	}
	found, err := q.DepartmentsByIDs(ctx, given)
	if err != nil {
		return fail("departments could not be checked")
	}
	known := map[uuid.UUID]bool{}
	for _, d := range found {
		known[d.ID] = true
	}
	var errs []gen.FieldError
	for _, d := range given {
		switch {
		case !known[d]:
			errs = append(errs, gen.FieldError{Field: "department_ids", Message: fmt.Sprintf("department %s does not exist", d)})
		case !id.Scope().Allows([]uuid.UUID{d}):
			errs = append(errs, gen.FieldError{Field: "department_ids", Message: fmt.Sprintf("you are not in department %s", d)})
		}
	}
	if errs != nil {
		return nil, errs
	}
	return given, nil
}

func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// groupWindow is how long a group stays the caller's current one without being used.
const groupWindow = 60 * time.Second

// group resolves the caller's working group for an artifact: the one named, or the one used
// within groupWindow, or a new one.
func (s *Service) group(ctx context.Context, artifact string, in *gen.GroupRequest) (*gen.GroupResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var g store.Group
	reused := true
	err = s.store.Tx(ctx, func(q store.Q) error {
		now := store.Now()
		var err error
		if in.GroupId != nil {
			g, err = q.GroupByID(ctx, *in.GroupId)
			if errors.Is(err, store.ErrNotFound) || (err == nil && (g.ProfileID != id.ProfileID || g.Artifact != artifact)) {
				return problem.NotFound("%s group %s not found among your groups", artifact, *in.GroupId)
			}
		} else {
			g, err = q.RecentGroup(ctx, id.ProfileID, artifact, now.Add(-groupWindow))
			if errors.Is(err, store.ErrNotFound) {
				reused = false
				g = store.Group{ID: store.NewID(), Artifact: artifact, ProfileID: id.ProfileID, Name: in.Name, CreatedAt: now, LastUsedAt: now}
				return q.InsertGroup(ctx, g)
			}
		}
		if err != nil {
			return err
		}
		g.LastUsedAt = now
		if in.Name != nil {
			g.Name = in.Name
		}
		return q.TouchGroup(ctx, g.ID, now, in.Name)
	})
	if err != nil {
		return nil, err
	}
	return &gen.GroupResponse{GroupId: g.ID, Name: g.Name, CreatedAt: utc(g.CreatedAt), LastUsedAt: utc(g.LastUsedAt),
		Reused: reused, IdempotencyKey: in.IdempotencyKey}, nil
}

// report records a report about an artifact (or one of its records, subject).
func (s *Service) report(ctx context.Context, q store.Q, id *auth.Identity, artifact string, subject *uuid.UUID, typ, message string) (uuid.UUID, error) {
	p := store.Problem{ID: store.NewID(), Artifact: artifact, Type: typ, Message: message,
		SubjectID: subject, ProfileID: id.ProfileID, CreatedAt: store.Now()}
	return p.ID, q.InsertProblem(ctx, p)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func truncate(s string, runes int) string {
	if utf8.RuneCountInString(s) <= runes {
		return s
	}
	return string([]rune(s)[:runes])
}
