package handlers

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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

func failed(index int, personaID *uuid.UUID, message string, errs ...gen.FieldError) gen.PersonaResult {
	return gen.PersonaResult{Index: index, Success: false, PersonaId: personaID, Message: message, Errors: errs}
}

// PersonaCreate creates each persona in its own transaction: one bad item fails alone.
func (s *Service) PersonaCreate(ctx context.Context, in *gen.PersonaCreateRequest) (*gen.PersonaCreateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	results, err := eachItem(in.Personas, func(i int, item gen.PersonaInput) (gen.PersonaResult, error) {
		return s.createPersona(ctx, id, i, item)
	})
	if err != nil {
		return nil, err
	}
	return &gen.PersonaCreateResponse{Results: results, IdempotencyKey: in.IdempotencyKey}, nil
}

// eachItem answers a bulk request item by item. A failed item is a result; an error (the
// database failing, say) fails the whole call.
func eachItem[T any](items []T, fn func(i int, item T) (gen.PersonaResult, error)) ([]gen.PersonaResult, error) {
	results := make([]gen.PersonaResult, len(items))
	for i, item := range items {
		var err error
		if results[i], err = fn(i, item); err != nil {
			return nil, err
		}
	}
	return results, nil
}

func (s *Service) createPersona(ctx context.Context, id *auth.Identity, i int, item gen.PersonaInput) (gen.PersonaResult, error) {
	name := strings.TrimSpace(item.Name)
	if name == "" {
		return failed(i, nil, "not created", gen.FieldError{Field: "name", Message: "name is blank"}), nil
	}
	var res gen.PersonaResult
	err := s.store.Tx(ctx, func(q store.Q) error {
		deps, errs := departmentsFor(ctx, q, id, item.DepartmentIds, "persona")
		if errs != nil {
			res = failed(i, nil, "not created", errs...)
			return nil
		}
		now := store.Now()
		p := store.Persona{
			ID: store.NewID(), Name: name, Description: deref(item.Description), Instructions: deref(item.Instructions),
			CreatedBy: id.ProfileID, CreatedAt: now, UpdatedAt: now, DepartmentIDs: deps,
		}
		if err := q.InsertPersona(ctx, p); err != nil {
			return err
		}
		res = gen.PersonaResult{Index: i, Success: true, PersonaId: &p.ID, Message: "created"}
		return nil
	})
	return res, err
}

// PersonaGet returns one persona and what the caller may do with it.
func (s *Service) PersonaGet(ctx context.Context, in *gen.PersonaGetRequest) (*gen.PersonaGetResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	p, err := visiblePersona(ctx, q, id, in.PersonaId)
	if err != nil {
		return nil, err
	}
	deps, err := q.DepartmentsByIDs(ctx, p.DepartmentIDs)
	if err != nil {
		return nil, err
	}
	out := &gen.PersonaGetResponse{
		Persona:     personaOut(p),
		Departments: departmentsOut(deps),
		CanEdit:     id.Can("persona", "update") && canManage(id, p.DepartmentIDs),
		CanDelete:   id.Can("persona", "delete") && canManage(id, p.DepartmentIDs),
	}
	if in.DraftId != nil {
		d, err := q.PersonaDraftByID(ctx, *in.DraftId)
		if err != nil || d.ProfileID != id.ProfileID || d.PersonaID == nil || *d.PersonaID != p.ID {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return nil, problem.NotFound("draft %s of persona %s not found among your drafts", *in.DraftId, p.ID)
		}
		draft, err := draftOut(d)
		if err != nil {
			return nil, err
		}
		out.Draft = &draft
	}
	return out, nil
}

// PersonaUpdate patches each persona in its own transaction.
func (s *Service) PersonaUpdate(ctx context.Context, in *gen.PersonaUpdateRequest) (*gen.PersonaUpdateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	results, err := eachItem(in.Personas, func(i int, patch gen.PersonaPatch) (gen.PersonaResult, error) {
		return s.updatePersona(ctx, id, i, patch)
	})
	if err != nil {
		return nil, err
	}
	return &gen.PersonaUpdateResponse{Results: results, IdempotencyKey: in.IdempotencyKey}, nil
}

func (s *Service) updatePersona(ctx context.Context, id *auth.Identity, i int, patch gen.PersonaPatch) (gen.PersonaResult, error) {
	var res gen.PersonaResult
	err := s.store.Tx(ctx, func(q store.Q) error {
		p, err := q.PersonaByID(ctx, patch.Id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			res = failed(i, &patch.Id, "persona not found")
			return nil
		case err != nil:
			return err
		case !canManage(id, p.DepartmentIDs):
			res = failed(i, &patch.Id, "you may not change this persona")
			return nil
		}
		if patch.Name != nil {
			if p.Name = strings.TrimSpace(*patch.Name); p.Name == "" {
				res = failed(i, &patch.Id, "not updated", gen.FieldError{Field: "name", Message: "name is blank"})
				return nil
			}
		}
		if patch.Description != nil {
			p.Description = *patch.Description
		}
		if patch.Instructions != nil {
			p.Instructions = *patch.Instructions
		}
		if patch.DepartmentIds != nil {
			deps, errs := departmentsFor(ctx, q, id, patch.DepartmentIds, "persona")
			if errs != nil {
				res = failed(i, &patch.Id, "not updated", errs...)
				return nil
			}
			p.DepartmentIDs = deps
		}
		p.UpdatedAt = store.Now()
		if err := q.UpdatePersona(ctx, p); err != nil {
			return err
		}
		res = gen.PersonaResult{Index: i, Success: true, PersonaId: &p.ID, Message: "updated"}
		return nil
	})
	return res, err
}

// PersonaDelete archives each persona in its own transaction.
func (s *Service) PersonaDelete(ctx context.Context, in *gen.PersonaDeleteRequest) (*gen.PersonaDeleteResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	results, err := eachItem(in.PersonaIds, func(i int, personaID uuid.UUID) (gen.PersonaResult, error) {
		return s.deletePersona(ctx, id, i, personaID)
	})
	if err != nil {
		return nil, err
	}
	return &gen.PersonaDeleteResponse{Results: results, IdempotencyKey: in.IdempotencyKey}, nil
}

func (s *Service) deletePersona(ctx context.Context, id *auth.Identity, i int, personaID uuid.UUID) (gen.PersonaResult, error) {
	var res gen.PersonaResult
	err := s.store.Tx(ctx, func(q store.Q) error {
		p, err := q.PersonaByID(ctx, personaID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			res = failed(i, &personaID, "persona not found")
			return nil
		case err != nil:
			return err
		case !canManage(id, p.DepartmentIDs):
			res = failed(i, &personaID, "you may not delete this persona")
			return nil
		}
		if err := q.DeletePersona(ctx, personaID); err != nil {
			return err
		}
		res = gen.PersonaResult{Index: i, Success: true, PersonaId: &personaID, Message: "deleted"}
		return nil
	})
	return res, err
}

// PersonaSearch returns a page of the personas in the caller's scope.
func (s *Service) PersonaSearch(ctx context.Context, in *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	f := store.PersonaFilter{Scope: id.Scope(), Text: strings.TrimSpace(deref(in.Search)), DepartmentIDs: in.FilterDepartmentIds}
	pageSize, offset := deref(in.PageSize), deref(in.PageOffset)
	q := s.store.Q()
	ps, total, err := q.SearchPersonas(ctx, f, pageSize, offset)
	if err != nil {
		return nil, err
	}
	var options []uuid.UUID // nil lists every department, for level 0
	if id.Level != 0 {
		options = ids(id.DepartmentIDs)
	}
	facet, err := q.PersonaDepartmentFacet(ctx, f, options, strings.TrimSpace(deref(in.DepartmentSearch)))
	if err != nil {
		return nil, err
	}
	out := &gen.PersonaSearchResponse{
		Personas:   make([]gen.PersonaRow, len(ps)),
		TotalCount: total,
		PageSize:   pageSize,
		PageOffset: offset,
		DepartmentFilter: gen.DepartmentFacet{
			Options:     make([]gen.FacetOption, len(facet)),
			SelectedIds: ids(in.FilterDepartmentIds),
		},
	}
	for i, p := range ps {
		manage := canManage(id, p.DepartmentIDs)
		out.Personas[i] = gen.PersonaRow{
			Id: p.ID, Name: p.Name, Description: p.Description, DepartmentIds: ids(p.DepartmentIDs),
			AttemptCount: p.AttemptCount, UpdatedAt: utc(p.UpdatedAt),
			CanEdit:      id.Can("persona", "update") && manage,
			CanDelete:    id.Can("persona", "delete") && manage,
			CanDuplicate: id.Can("persona", "duplicate"),
		}
	}
	for i, o := range facet {
		out.DepartmentFilter.Options[i] = gen.FacetOption{Id: o.ID, Name: o.Name, Count: o.Count}
	}
	return out, nil
}

// PersonaDuplicate copies a persona the caller can see. The copy keeps the departments the
// caller belongs to (all of them for level 0).
func (s *Service) PersonaDuplicate(ctx context.Context, in *gen.PersonaDuplicateRequest) (*gen.PersonaDuplicateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var copyID uuid.UUID
	err = s.store.Tx(ctx, func(q store.Q) error {
		p, err := visiblePersona(ctx, q, id, in.PersonaId)
		if err != nil {
			return err
		}
		deps, err := copyDepartments(id, p.DepartmentIDs)
		if err != nil {
			return err
		}
		name := strings.TrimSpace(deref(in.Name))
		if name == "" {
			name = truncate(p.Name+" (copy)", 200)
		}
		now := store.Now()
		c := store.Persona{
			ID: store.NewID(), Name: name, Description: p.Description, Instructions: p.Instructions,
			CreatedBy: id.ProfileID, CreatedAt: now, UpdatedAt: now, DepartmentIDs: deps,
		}
		copyID = c.ID
		return q.InsertPersona(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	return &gen.PersonaDuplicateResponse{Success: true, PersonaId: copyID, Message: "duplicated", IdempotencyKey: in.IdempotencyKey}, nil
}

// PersonaDraft appends a snapshot of the editor's form.
func (s *Service) PersonaDraft(ctx context.Context, in *gen.PersonaDraftRequest) (*gen.PersonaDraftResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	if in.PersonaId != nil {
		if _, err := visiblePersona(ctx, q, id, *in.PersonaId); err != nil {
			return nil, err
		}
	}
	if deps := deref(in.FormState.DepartmentIds); len(deps) > 0 {
		found, err := q.DepartmentsByIDs(ctx, deps)
		if err != nil {
			return nil, err
		}
		known := map[uuid.UUID]bool{}
		for _, d := range found {
			known[d.ID] = true
		}
		var errs []problem.Detail
		for i, d := range deps {
			if !known[d] {
				errs = append(errs, problem.Detail{Location: fmt.Sprintf("body.form_state.department_ids[%d]", i),
					Message: "department does not exist", Value: d.String()})
			}
		}
		if errs != nil {
			return nil, problem.Invalid("the form refers to unknown departments", errs...)
		}
	}
	state, err := json.Marshal(in.FormState)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(deref(in.Name))
	if name == "" {
		name = strings.TrimSpace(deref(in.FormState.Name))
	}
	if name == "" {
		name = "Untitled draft"
	}
	d := store.PersonaDraft{ID: store.NewID(), PersonaID: in.PersonaId, ProfileID: id.ProfileID, Name: name,
		FormState: state, CreatedAt: store.Now()}
	if err := q.InsertPersonaDraft(ctx, d); err != nil {
		return nil, err
	}
	draft, err := draftOut(d)
	if err != nil {
		return nil, err
	}
	return &gen.PersonaDraftResponse{Success: true, Draft: draft, Message: "draft saved", IdempotencyKey: in.IdempotencyKey}, nil
}

// PersonaDrafts lists the caller's drafts, newest first.
func (s *Service) PersonaDrafts(ctx context.Context, in *gen.PersonaDraftsRequest) (*gen.PersonaDraftsResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	f := store.DraftFilter{ProfileID: id.ProfileID, SubjectID: in.PersonaId, Text: strings.TrimSpace(deref(in.Search)),
		From: in.DateFrom, To: in.DateTo}
	ds, total, err := s.store.Q().ListPersonaDrafts(ctx, f, deref(in.PageLimit), deref(in.PageOffset))
	if err != nil {
		return nil, err
	}
	out := &gen.PersonaDraftsResponse{Entries: make([]gen.PersonaDraft, len(ds)), TotalCount: total}
	for i, d := range ds {
		if out.Entries[i], err = draftOut(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PersonaExport writes the personas in the caller's scope to a CSV file.
func (s *Service) PersonaExport(ctx context.Context, in *gen.PersonaExportRequest) (*gen.PersonaExportResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	if in.PersonaId != nil {
		if _, err := visiblePersona(ctx, q, id, *in.PersonaId); err != nil {
			return nil, err
		}
	}
	ps, err := q.ListPersonas(ctx, store.PersonaFilter{Scope: id.Scope(), ID: in.PersonaId})
	if err != nil {
		return nil, err
	}
	content, err := personasCSV(ctx, q, ps)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	name := "personas-" + now.Format("20060102T150405Z") + ".csv"
	if in.PersonaId != nil {
		name = "persona-" + in.PersonaId.String() + ".csv"
	}
	f := store.File{ID: store.NewID(), ProfileID: id.ProfileID, Name: name, ContentType: "text/csv; charset=utf-8",
		Size: len(content), Content: content, CreatedAt: now}
	if err := q.InsertFile(ctx, f); err != nil {
		return nil, err
	}
	return &gen.PersonaExportResponse{FileId: f.ID, FileName: f.Name, ContentType: f.ContentType, Size: f.Size,
		RowCount: len(ps), IdempotencyKey: in.IdempotencyKey}, nil
}

// personasCSV renders personas with their department names. Cells that a spreadsheet would
// run as a formula are prefixed with a quote.
func personasCSV(ctx context.Context, q store.Q, ps []store.Persona) ([]byte, error) {
	var all []uuid.UUID
	for _, p := range ps {
		all = append(all, p.DepartmentIDs...)
	}
	deps, err := q.DepartmentsByIDs(ctx, all)
	if err != nil {
		return nil, err
	}
	names := map[uuid.UUID]string{}
	for _, d := range deps {
		names[d.ID] = d.Name
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"id", "name", "description", "instructions", "departments", "attempt_count", "created_at", "updated_at"})
	for _, p := range ps {
		depNames := make([]string, len(p.DepartmentIDs))
		for i, d := range p.DepartmentIDs {
			depNames[i] = names[d]
		}
		_ = w.Write([]string{
			p.ID.String(), csvCell(p.Name), csvCell(p.Description), csvCell(p.Instructions),
			csvCell(strings.Join(depNames, "; ")), strconv.Itoa(p.AttemptCount),
			utc(p.CreatedAt).Format(time.RFC3339), utc(p.UpdatedAt).Format(time.RFC3339),
		})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// groupWindow is how long a group stays the caller's current one without being used.
const groupWindow = 60 * time.Second

// PersonaGroup resolves the caller's working group for personas.
func (s *Service) PersonaGroup(ctx context.Context, in *gen.GroupRequest) (*gen.GroupResponse, error) {
	return s.group(ctx, "persona", in)
}

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

// PersonaProblem records a report about personas.
func (s *Service) PersonaProblem(ctx context.Context, in *gen.PersonaProblemRequest) (*gen.PersonaProblemResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	if in.PersonaId != nil {
		if _, err := visiblePersona(ctx, q, id, *in.PersonaId); err != nil {
			return nil, err
		}
	}
	problemID, err := s.report(ctx, q, id, "persona", in.PersonaId, string(in.Type), in.Message)
	if err != nil {
		return nil, err
	}
	return &gen.PersonaProblemResponse{Success: true, ProblemId: problemID, Message: "report recorded", IdempotencyKey: in.IdempotencyKey}, nil
}

// report records a report about an artifact (or one of its records, subject).
func (s *Service) report(ctx context.Context, q store.Q, id *auth.Identity, artifact string, subject *uuid.UUID, typ, message string) (uuid.UUID, error) {
	p := store.Problem{ID: store.NewID(), Artifact: artifact, Type: typ, Message: message,
		SubjectID: subject, ProfileID: id.ProfileID, CreatedAt: store.Now()}
	return p.ID, q.InsertProblem(ctx, p)
}

// PersonaRefresh recomputes the attempt counts of the personas in the caller's scope.
func (s *Service) PersonaRefresh(ctx context.Context, in *gen.PersonaRefreshRequest) (*gen.PersonaRefreshResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r := store.Refresh{ID: store.NewID(), Artifact: "persona", SubjectID: in.PersonaId, ProfileID: id.ProfileID}
	err = s.store.Tx(ctx, func(q store.Q) error {
		if in.PersonaId != nil {
			if _, err := visiblePersona(ctx, q, id, *in.PersonaId); err != nil {
				return err
			}
		}
		n, err := q.RefreshPersonaStats(ctx, store.PersonaFilter{Scope: id.Scope(), ID: in.PersonaId})
		if err != nil {
			return err
		}
		r.RefreshedCount, r.CreatedAt = n, store.Now()
		return q.InsertRefresh(ctx, r)
	})
	if err != nil {
		return nil, err
	}
	return &gen.PersonaRefreshResponse{Success: true, RefreshId: r.ID, RefreshedCount: r.RefreshedCount, Refreshed: []string{"attempt_count"},
		IdempotencyKey: in.IdempotencyKey}, nil
}

func personaOut(p store.Persona) gen.Persona {
	return gen.Persona{
		Id: p.ID, Name: p.Name, Description: p.Description, Instructions: p.Instructions,
		DepartmentIds: ids(p.DepartmentIDs), AttemptCount: p.AttemptCount, CreatedBy: p.CreatedBy,
		CreatedAt: utc(p.CreatedAt), UpdatedAt: utc(p.UpdatedAt),
	}
}

func departmentsOut(ds []store.Department) []gen.DepartmentRef {
	out := make([]gen.DepartmentRef, len(ds))
	for i, d := range ds {
		out[i] = gen.DepartmentRef{Id: d.ID, Name: d.Name}
	}
	return out
}

func draftOut(d store.PersonaDraft) (gen.PersonaDraft, error) {
	out := gen.PersonaDraft{Id: d.ID, PersonaId: d.PersonaID, Name: d.Name, ProfileId: d.ProfileID, CreatedAt: utc(d.CreatedAt)}
	if err := json.Unmarshal(d.FormState, &out.FormState); err != nil {
		return out, fmt.Errorf("draft %s: stored form state: %w", d.ID, err)
	}
	return out, nil
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
