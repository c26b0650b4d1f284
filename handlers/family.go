package handlers

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// family is the one implementation of the standard operations of every kind (kinds.go).
// Each operation's generated method (gen.FamilyOperations) hands its request to Serve,
// which reads it by its JSON names, answers with a JSON object of the operation's response
// schema, and decodes that into the typed response.
type family struct {
	s *Service
	// dry serves a soft call: a create stores its records pending, an update or delete is
	// rolled back and only says what it would do.
	dry bool
}

// maxAll is the most records an update or delete of `all` may change at once.
const maxAll = 1000

// Serve answers one standard operation of a kind.
func (f family) Serve(ctx context.Context, op *gen.Operation, in, out any) error {
	k, ok := kinds[op.Artifact]
	if !ok {
		return fmt.Errorf("family: %s is marked x-glow-family but no kind describes %s", op.ID, op.Artifact)
	}
	switch op.Name { // the operations whose requests every kind shares
	case "generate":
		res, err := f.generate(ctx, k, in.(*gen.RecordGenerateRequest))
		if err == nil {
			*out.(*gen.GenerateResponse) = *res
		}
		return err
	case "generations":
		res, err := f.s.generations(ctx, k.Name, in.(*gen.GenerationsRequest))
		if err == nil {
			*out.(*gen.GenerationsResponse) = *res
		}
		return err
	case "group":
		res, err := f.s.group(ctx, k.Name, in.(*gen.GroupRequest))
		if err == nil {
			*out.(*gen.GroupResponse) = *res
		}
		return err
	}
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	req := bodyOf(in)
	var res map[string]any
	switch {
	case req.has("accept"):
		res, err = f.accept(ctx, id, k, op, req)
	case req.bool("soft"):
		res, err = f.stage(ctx, id, k, op, in, req)
	default:
		res, err = f.serve(ctx, id, k, op.Name, req)
	}
	if err != nil {
		return err
	}
	if key := req.strp("idempotency_key"); key != nil && op.Idempotent {
		res["idempotency_key"] = *key
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// serve answers the operations that take a body of the kind's own shape.
func (f family) serve(ctx context.Context, id *auth.Identity, k *kind, op string, req body) (res map[string]any, err error) {
	switch op {
	case "create":
		res, err = f.create(ctx, id, k, req)
	case "get":
		res, err = f.get(ctx, id, k, req)
	case "update":
		res, err = f.update(ctx, id, k, req)
	case "delete":
		res, err = f.delete(ctx, id, k, req)
	case "search":
		res, err = f.search(ctx, id, k, req)
	case "duplicate":
		res, err = f.duplicate(ctx, id, k, req)
	case "draft":
		res, err = f.draft(ctx, id, k, req)
	case "drafts":
		res, err = f.drafts(ctx, id, k, req)
	case "export":
		res, err = f.export(ctx, id, k, req)
	case "problem":
		res, err = f.problem(ctx, id, k, req)
	case "refresh":
		res, err = f.refresh(ctx, id, k, req)
	case "decrypt":
		res, err = f.decrypt(ctx, id, k, req)
	default:
		return nil, fmt.Errorf("family: no implementation of %s.%s", k.Name, op)
	}
	return res, err
}

// visible loads a record the caller may read: 404 when missing, 403 when it belongs to
// other departments (unless the kind's reads are shared).
func (f family) visible(ctx context.Context, q store.Q, id *auth.Identity, k *kind, recordID uuid.UUID) (store.Record, error) {
	r, err := q.RecordByID(ctx, k.Name, recordID)
	if err == nil && r.PendingBy != nil && *r.PendingBy != id.ProfileID {
		err = store.ErrNotFound // staged by another profile's soft create
	}
	if err != nil {
		return r, notFound(err, k.Name, recordID)
	}
	if !k.SharedReads && !id.Scope().Allows(r.Departments()) {
		return r, problem.Forbidden("%s %s belongs to departments you are not in", k.Name, recordID)
	}
	return r, nil
}

// visibleIf is visible for an optional id.
func (f family) visibleIf(ctx context.Context, q store.Q, id *auth.Identity, k *kind, recordID *uuid.UUID) error {
	if recordID == nil {
		return nil
	}
	_, err := f.visible(ctx, q, id, k, *recordID)
	return err
}

// out renders a record as the kind's schema (Agent, Tool, …).
func (k *kind) out(r store.Record) map[string]any {
	m := map[string]any{"id": r.ID, "name": r.Name, "description": r.Description, "created_by": r.CreatedBy,
		"created_at": utc(r.CreatedAt), "updated_at": utc(r.UpdatedAt)}
	k.fieldsOut(m, r, k.Fields)
	k.fieldsOut(m, r, k.Derived)
	for _, rel := range k.relations() {
		m[rel.Key] = ids(r.Links[rel.Name])
	}
	if k.Secrets {
		names := make([]string, 0, len(r.Secrets))
		for name := range r.Secrets {
			names = append(names, name)
		}
		slices.Sort(names)
		m["secret_names"] = names
	}
	m["pending"] = r.PendingBy != nil
	return m
}

// fieldsOut puts the fields fds of r into m (a field r lacks has its default).
func (k *kind) fieldsOut(m map[string]any, r store.Record, fds []kindField) {
	for _, fd := range fds {
		if v, ok := r.Fields[fd.Name]; ok {
			m[fd.Name] = v
		} else {
			m[fd.Name] = fd.Default
		}
	}
}

// row renders a record as a search row, with what the caller may do with it.
func (k *kind) row(id *auth.Identity, r store.Record) map[string]any {
	manage := canManage(id, r.Departments())
	m := map[string]any{"id": r.ID, "name": r.Name, "description": r.Description, "updated_at": utc(r.UpdatedAt),
		"can_edit":      id.Can(k.Name, "update") && manage,
		"can_delete":    id.Can(k.Name, "delete") && manage,
		"can_duplicate": id.Can(k.Name, "duplicate"),
		"pending":       r.PendingBy != nil,
	}
	k.fieldsOut(m, r, k.Derived)
	for _, rel := range k.relations() {
		m[rel.Key] = ids(r.Links[rel.Name])
	}
	return m
}

func result(i int, k *kind, recordID *uuid.UUID, success bool, message string, errs ...gen.FieldError) map[string]any {
	m := map[string]any{"index": i, "success": success, "message": message}
	if recordID != nil {
		m[k.Name+"_id"] = *recordID
	}
	if len(errs) > 0 {
		m["errors"] = errs
	}
	return m
}

// set applies the fields an item (a create's input, an update's patch) carries to r. A
// record being created gets the defaults of the fields the item leaves out.
func (f family) set(ctx context.Context, q store.Q, id *auth.Identity, k *kind, r *store.Record, item body, creating bool) ([]gen.FieldError, error) {
	var errs []gen.FieldError
	if item.has("name") {
		if r.Name = strings.TrimSpace(item.str("name")); r.Name == "" {
			errs = append(errs, gen.FieldError{Field: "name", Message: "name is blank"})
		}
	}
	if item.has("description") {
		r.Description = item.str("description")
	}
	if r.Fields == nil {
		r.Fields = map[string]json.RawMessage{}
	}
	for _, fd := range k.Fields {
		v, given := item.value(fd.Name), item.has(fd.Name)
		if !given && !creating {
			continue
		}
		if !given {
			v = fd.Default
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		r.Fields[fd.Name] = raw
	}
	for _, fd := range k.Derived { // no request sets them: a new record starts from the defaults
		if creating {
			raw, err := json.Marshal(fd.Default)
			if err != nil {
				return nil, err
			}
			r.Fields[fd.Name] = raw
		}
	}
	if r.Links == nil {
		r.Links = map[string][]uuid.UUID{}
	}
	for _, rel := range k.Relations {
		if !item.has(rel.Key) {
			if rel.One && creating {
				r.Links[rel.Name] = []uuid.UUID{rel.Default}
			}
			continue
		}
		targets := item.ids(rel.Key)
		if rel.One && len(targets) != 1 {
			errs = append(errs, gen.FieldError{Field: rel.Key, Message: fmt.Sprintf("a %s has one %s: give its id", k.Name, strings.TrimSuffix(rel.Name, "s"))})
			continue
		}
		missing, err := f.missing(ctx, q, id, rel, targets)
		if err != nil {
			return nil, err
		}
		for _, t := range missing {
			errs = append(errs, gen.FieldError{Field: rel.Key, Message: fmt.Sprintf("%s %s does not exist", strings.TrimSuffix(rel.Name, "s"), t)})
		}
		r.Links[rel.Name] = targets
	}
	if k.Tenancy && creating {
		r.Links[store.DepartmentsRelation] = []uuid.UUID{r.ID} // its own scope
	} else if creating || item.has("department_ids") {
		var given []uuid.UUID
		if item.has("department_ids") {
			given = item.ids("department_ids")
		}
		deps, depErrs := departmentsFor(ctx, q, id, given, k.Name)
		errs = append(errs, depErrs...)
		r.Links[store.DepartmentsRelation] = deps
	}
	if k.Secrets && item.has("secrets") {
		secrets, _ := item.value("secrets").(gen.SecretValues)
		errs = append(errs, setSecrets(r, secrets)...)
	}
	if errs == nil && k.Check != nil {
		errs = k.Check(*r)
	}
	return errs, nil
}

// secretName is what a secret may be called.
var secretName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// setSecrets applies the secrets an item gives: a value replaces the secret of its name,
// an empty one removes it.
func setSecrets(r *store.Record, given gen.SecretValues) []gen.FieldError {
	if r.Secrets == nil {
		r.Secrets = map[string]string{}
	}
	var errs []gen.FieldError
	for name, value := range given {
		switch {
		case !secretName.MatchString(name):
			errs = append(errs, gen.FieldError{Field: "secrets", Message: fmt.Sprintf("%q is not a secret's name: use 1 to 100 letters, digits, _, - or .", name)})
		case value == "":
			delete(r.Secrets, name)
		default:
			r.Secrets[name] = value
		}
	}
	if len(r.Secrets) > maxSecrets {
		errs = append(errs, gen.FieldError{Field: "secrets", Message: fmt.Sprintf("at most %d secrets", maxSecrets)})
	}
	return errs
}

// maxSecrets is the most secrets a record keeps.
const maxSecrets = 20

// targetScope is the part of a relation's targets the caller may link to and see as
// options (nil: all of them).
func targetScope(id *auth.Identity, rel relation) *store.Scope {
	if target, ok := kinds[rel.Source.Kind]; ok {
		return target.readScope(id.Scope())
	}
	if rel.Source.Departments != nil {
		scope := id.Scope()
		return &scope
	}
	return nil
}

// missing are the targets of a relation that do not exist (or that the caller cannot see).
func (f family) missing(ctx context.Context, q store.Q, id *auth.Identity, rel relation, targets []uuid.UUID) ([]uuid.UUID, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	found, err := q.Targets(ctx, rel.Source, store.OptionFilter{Among: targets, Scope: targetScope(id, rel)})
	if err != nil {
		return nil, err
	}
	known := map[uuid.UUID]bool{}
	for _, t := range found {
		known[t.ID] = true
	}
	var out []uuid.UUID
	for _, t := range targets {
		if !known[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f family) create(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	if !req.has(k.Plural) {
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body." + k.Plural, Message: "give the " + k.Plural + " to create"})
	}
	items := req.items(k.Plural)
	results := make([]map[string]any, len(items))
	for i, item := range items {
		err := f.s.store.Tx(ctx, func(q store.Q) (err error) {
			results[i], err = f.createOne(ctx, q, id, k, i, item)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{"results": results}, nil
}

// createOne creates the i-th item of a create with q (pending, when staged) and answers
// its result.
func (f family) createOne(ctx context.Context, q store.Q, id *auth.Identity, k *kind, i int, item body) (map[string]any, error) {
	now := store.Now()
	r := store.Record{ID: store.NewID(), Kind: k.Name, CreatedBy: id.ProfileID, CreatedAt: now, UpdatedAt: now}
	if f.dry {
		r.PendingBy = &id.ProfileID // staged: seen by the caller alone until accepted
	}
	errs, err := f.set(ctx, q, id, k, &r, item, true)
	if err != nil {
		return nil, err
	}
	if errs == nil && !f.dry {
		errs, err = k.save(ctx, q, r)
	}
	if err != nil {
		return nil, err
	}
	if errs != nil {
		return result(i, k, nil, false, "not created", errs...), nil
	}
	return result(i, k, &r.ID, true, "created"), q.InsertRecord(ctx, r)
}

func (f family) get(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	q := f.s.store.Q()
	r, err := f.visible(ctx, q, id, k, *req.id(k.Name + "_id"))
	if err != nil {
		return nil, err
	}
	manage := canManage(id, r.Departments())
	out := map[string]any{k.Name: k.out(r), "can_edit": id.Can(k.Name, "update") && manage, "can_delete": id.Can(k.Name, "delete") && manage}
	for _, rel := range k.relations() {
		if out[rel.Name], err = f.options(ctx, q, id, rel, r.Links[rel.Name], req.sub(rel.Name)); err != nil {
			return nil, err
		}
	}
	if draftID := req.id("draft_id"); draftID != nil {
		d, err := q.RecordDraftByID(ctx, k.Name, *draftID)
		if err != nil || d.ProfileID != id.ProfileID || d.ArtifactID == nil || *d.ArtifactID != r.ID {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return nil, problem.NotFound("draft %s of %s %s not found among your drafts", *draftID, k.Name, r.ID)
		}
		if out["draft"], err = draftOf(k, d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// options lists a relation's section of get: the selected targets (in the record's order),
// then up to limit others the caller may pick, by name; search narrows both.
func (f family) options(ctx context.Context, q store.Q, id *auth.Identity, rel relation, selected []uuid.UUID, filter body) ([]map[string]any, error) {
	text := strings.TrimSpace(filter.str("search"))
	limit := 20
	if filter.has("limit") {
		limit = filter.int("limit")
	}
	scope := targetScope(id, rel)
	if rel.Name == store.DepartmentsRelation && id.Level != 0 {
		scope = &store.Scope{} // below level 0, only one's own departments may be picked
	}
	out := []map[string]any{}
	onlySelected, onlyOthers := filter.has("selected") && filter.bool("selected"), filter.has("selected") && !filter.bool("selected")
	if !onlyOthers && len(selected) > 0 {
		found, err := q.Targets(ctx, rel.Source, store.OptionFilter{Text: text, Among: selected})
		if err != nil {
			return nil, err
		}
		names := map[uuid.UUID]string{}
		for _, t := range found {
			names[t.ID] = t.Name
		}
		for _, s := range selected {
			if name, ok := names[s]; ok {
				out = append(out, map[string]any{"id": s, "name": name, "selected": true})
			}
		}
	}
	if onlySelected || limit == 0 {
		return out, nil
	}
	others := store.OptionFilter{Text: text, Not: selected, Limit: limit}
	if scope != nil && rel.Name == store.DepartmentsRelation {
		others.Among = ids(id.DepartmentIDs)
	} else {
		others.Scope = scope
	}
	found, err := q.Targets(ctx, rel.Source, others)
	if err != nil {
		return nil, err
	}
	for _, t := range found {
		out = append(out, map[string]any{"id": t.ID, "name": t.Name, "selected": false})
	}
	return out, nil
}

// filterOf reads a search's filters (a search request, or an update's or delete's filter).
func (k *kind) filterOf(scope *store.Scope, b body) store.RecordFilter {
	f := store.RecordFilter{Kind: k.Name, Scope: scope, Text: strings.TrimSpace(b.str("search")), Links: map[string][]uuid.UUID{}}
	for _, rel := range k.relations() {
		if targets := b.ids("filter_" + rel.Facet + "_ids"); len(targets) > 0 {
			f.Links[rel.Name] = targets
		}
	}
	return f
}

func (f family) search(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	filter := k.filterOf(k.readScope(id.Scope()), req)
	filter.Viewer = id.ProfileID // and the caller's staged creates
	pageSize, offset := 12, req.int("page_offset")
	if req.has("page_size") {
		pageSize = req.int("page_size")
	}
	q := f.s.store.Q()
	rs, total, err := q.SearchRecords(ctx, filter, pageSize, offset)
	if err != nil {
		return nil, err
	}
	rows := make([]map[string]any, len(rs))
	for i, r := range rs {
		rows[i] = k.row(id, r)
	}
	out := map[string]any{k.Plural: rows, "total_count": total, "page_size": pageSize, "page_offset": offset}
	var facets []store.Facet
	for _, rel := range k.relations() {
		fc := store.Facet{Relation: rel.Name, Source: rel.Source, NameText: strings.TrimSpace(req.str(rel.Facet + "_search"))}
		if rel.Name == store.DepartmentsRelation && id.Level != 0 && !k.SharedReads {
			fc.Options = ids(id.DepartmentIDs) // below level 0, only one's own departments are listed
		}
		facets = append(facets, fc)
	}
	counted, err := q.RecordFacets(ctx, filter, facets)
	if err != nil {
		return nil, err
	}
	for _, rel := range k.relations() {
		opts := make([]gen.FacetOption, len(counted[rel.Name]))
		for i, o := range counted[rel.Name] {
			opts[i] = gen.FacetOption{Id: o.ID, Name: o.Name, Count: o.Count}
		}
		out[rel.Facet+"_filter"] = gen.FacetFilter{Options: opts, SelectedIds: ids(filter.Links[rel.Name])}
	}
	return out, nil
}

// targets are the records an update or delete changes: the listed ones, or with `all` those
// its filter selects in the caller's scope but the excluded ones.
func (f family) targets(ctx context.Context, id *auth.Identity, k *kind, req body, listed []uuid.UUID) ([]uuid.UUID, error) {
	all := req.bool("all")
	switch {
	case all && listed != nil:
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body.all", Message: "give either all or a list, not both"})
	case !all && listed == nil:
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body", Message: "give a list, or all: true with a filter"})
	case !all:
		return listed, nil
	}
	scope := id.Scope()
	filter := k.filterOf(&scope, req.sub("filter"))
	filter.Excluded = req.ids("excluded_ids")
	q := f.s.store.Q()
	n, err := q.CountRecords(ctx, filter)
	if err != nil {
		return nil, err
	}
	if n > maxAll {
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body.filter",
			Message: fmt.Sprintf("the filter selects %d %s; at most %d may be changed at once", n, k.Plural, maxAll)})
	}
	rs, err := q.ListRecords(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]uuid.UUID, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out, nil
}

func (f family) update(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	items := req.items(k.Plural)
	var listed []uuid.UUID
	if req.has(k.Plural) {
		listed = make([]uuid.UUID, len(items))
		for i, item := range items {
			listed[i] = *item.id("id")
		}
	}
	targets, err := f.targets(ctx, id, k, req, listed)
	if err != nil {
		return nil, err
	}
	return f.eachRecord(ctx, id, k, targets, "change", func(q store.Q, i int, r store.Record) (map[string]any, error) {
		patch := req.sub("patch")
		if listed != nil {
			patch = items[i]
		}
		return f.patch(ctx, q, id, k, i, r, patch, true)
	})
}

// patch applies the i-th patch of an update to r, and stores the result when save.
func (f family) patch(ctx context.Context, q store.Q, id *auth.Identity, k *kind, i int, r store.Record, patch body, save bool) (map[string]any, error) {
	errs, err := f.set(ctx, q, id, k, &r, patch, false)
	if err != nil || errs != nil {
		return result(i, k, &r.ID, false, "not updated", errs...), err
	}
	if !save {
		return result(i, k, &r.ID, true, "updated"), nil
	}
	if errs, err := k.save(ctx, q, r); err != nil || errs != nil {
		return result(i, k, &r.ID, false, "not updated", errs...), err
	}
	r.UpdatedAt = store.Now()
	return result(i, k, &r.ID, true, "updated"), q.UpdateRecord(ctx, r)
}

func (f family) delete(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	targets, err := f.targets(ctx, id, k, req, req.ids(k.Name+"_ids"))
	if err != nil {
		return nil, err
	}
	return f.eachRecord(ctx, id, k, targets, "delete", func(q store.Q, i int, r store.Record) (map[string]any, error) {
		if k.Mirror != nil {
			if refused, err := k.Mirror.remove(ctx, q, r); err != nil || refused != "" {
				return result(i, k, &r.ID, false, refused), err
			}
		}
		return result(i, k, &r.ID, true, "deleted"), q.DeleteRecord(ctx, k.Name, r.ID)
	})
}

// eachRecord changes the target records one by one, each in its own transaction: a record
// that is gone, or that the caller may not change (verb it), fails its item; fn does the
// rest and answers the item's result.
func (f family) eachRecord(ctx context.Context, id *auth.Identity, k *kind, targets []uuid.UUID, verb string,
	fn func(q store.Q, i int, r store.Record) (map[string]any, error)) (map[string]any, error) {
	results := make([]map[string]any, len(targets))
	for i, recordID := range targets {
		err := f.s.store.Tx(ctx, func(q store.Q) (err error) {
			results[i], err = f.changeOne(ctx, q, id, k, i, recordID, verb, fn)
			if err == nil && f.dry {
				return errDryRun // a staged call only says what it would do
			}
			return err
		})
		if err != nil && !errors.Is(err, errDryRun) {
			return nil, err
		}
	}
	return map[string]any{"results": results}, nil
}

// changeOne loads the i-th target with q and, when the caller may change it, answers what
// fn does with it.
func (f family) changeOne(ctx context.Context, q store.Q, id *auth.Identity, k *kind, i int, recordID uuid.UUID, verb string,
	fn func(q store.Q, i int, r store.Record) (map[string]any, error)) (map[string]any, error) {
	r, err := q.RecordByID(ctx, k.Name, recordID)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && r.PendingBy != nil && *r.PendingBy != id.ProfileID:
		return result(i, k, &recordID, false, k.Name+" not found"), nil
	case err != nil:
		return nil, err
	case !canManage(id, r.Departments()):
		return result(i, k, &recordID, false, "you may not "+verb+" this "+k.Name), nil
	case r.PendingBy != nil:
		return result(i, k, &recordID, false, "a soft create staged this "+k.Name+": accept or reject it first"), nil
	}
	return fn(q, i, r)
}

func (f family) duplicate(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	var copyID uuid.UUID
	err := f.s.store.Tx(ctx, func(q store.Q) error {
		r, err := f.visible(ctx, q, id, k, *req.id(k.Name + "_id"))
		if err != nil {
			return err
		}
		deps, err := copyDepartments(id, r.Departments())
		if err != nil {
			return err
		}
		name := strings.TrimSpace(req.str("name"))
		if name == "" {
			name = truncate(r.Name+" (copy)", 200)
		}
		now := store.Now()
		c := store.Record{ID: store.NewID(), Kind: k.Name, Name: name, Description: r.Description, Fields: maps.Clone(r.Fields),
			Secrets: r.Secrets, Links: maps.Clone(r.Links), CreatedBy: id.ProfileID, CreatedAt: now, UpdatedAt: now}
		for i, fd := range slices.Concat(k.Fields, k.Derived) {
			if slices.Contains(k.Uncopied, fd.Name) || i >= len(k.Fields) {
				if c.Fields[fd.Name], err = json.Marshal(fd.Default); err != nil {
					return err
				}
			}
		}
		c.Links[store.DepartmentsRelation] = deps
		if k.Tenancy {
			c.Links[store.DepartmentsRelation] = []uuid.UUID{c.ID}
		}
		if errs, err := k.save(ctx, q, c); err != nil {
			return err
		} else if errs != nil {
			return problem.Conflict("the copy %q: %s", c.Name, errs[0].Message)
		}
		copyID = c.ID
		return q.InsertRecord(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"success": true, k.Name + "_id": copyID, "message": "duplicated"}, nil
}

// copyDepartments are the departments of a copy of a record with these: those the caller is
// in (all of them for level 0), or the caller's own when none is.
func copyDepartments(id *auth.Identity, of []uuid.UUID) ([]uuid.UUID, error) {
	if id.Level == 0 {
		return of, nil
	}
	var deps []uuid.UUID
	for _, d := range of {
		if id.Scope().Allows([]uuid.UUID{d}) {
			deps = append(deps, d)
		}
	}
	if len(deps) == 0 {
		deps = id.DepartmentIDs
	}
	if len(deps) == 0 {
		return nil, problem.Forbidden("you belong to no department; ask an admin to add you to one")
	}
	return deps, nil
}

func (f family) draft(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	q := f.s.store.Q()
	recordID := req.id(k.Name + "_id")
	if err := f.visibleIf(ctx, q, id, k, recordID); err != nil {
		return nil, err
	}
	form := req.sub("form_state")
	var details []problem.Detail
	for _, rel := range k.relations() {
		missing, err := f.missing(ctx, q, id, rel, form.ids(rel.Key))
		if err != nil {
			return nil, err
		}
		for _, t := range missing {
			details = append(details, problem.Detail{Location: "body.form_state." + rel.Key,
				Message: strings.TrimSuffix(rel.Name, "s") + " does not exist", Value: t.String()})
		}
	}
	if details != nil {
		return nil, problem.Invalid("the form refers to records that do not exist", details...)
	}
	state, err := json.Marshal(form.present())
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.str("name"))
	if name == "" {
		name = strings.TrimSpace(form.str("name"))
	}
	if name == "" {
		name = "Untitled draft"
	}
	d := store.RecordDraft{ID: store.NewID(), Kind: k.Name, ArtifactID: recordID, ProfileID: id.ProfileID, Name: name,
		FormState: state, CreatedAt: store.Now()}
	if err := q.InsertRecordDraft(ctx, d); err != nil {
		return nil, err
	}
	out, err := draftOf(k, d)
	if err != nil {
		return nil, err
	}
	return map[string]any{"success": true, "draft": out, "message": "draft saved"}, nil
}

func draftOf(k *kind, d store.RecordDraft) (map[string]any, error) {
	out := map[string]any{"id": d.ID, "name": d.Name, "profile_id": d.ProfileID, "created_at": utc(d.CreatedAt),
		"form_state": json.RawMessage(d.FormState)}
	if !json.Valid(d.FormState) {
		return nil, fmt.Errorf("draft %s: stored form state is not JSON", d.ID)
	}
	if d.ArtifactID != nil {
		out[k.Name+"_id"] = *d.ArtifactID
	}
	return out, nil
}

func (f family) drafts(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	limit := 50
	if req.has("page_limit") {
		limit = req.int("page_limit")
	}
	filter := store.DraftFilter{ProfileID: id.ProfileID, SubjectID: req.id(k.Name + "_id"), Text: strings.TrimSpace(req.str("search"))}
	if from, ok := req.value("date_from").(time.Time); ok {
		filter.From = &from
	}
	if to, ok := req.value("date_to").(time.Time); ok {
		filter.To = &to
	}
	ds, total, err := f.s.store.Q().ListRecordDrafts(ctx, k.Name, filter, limit, req.int("page_offset"))
	if err != nil {
		return nil, err
	}
	entries := make([]map[string]any, len(ds))
	for i, d := range ds {
		if entries[i], err = draftOf(k, d); err != nil {
			return nil, err
		}
	}
	return map[string]any{"entries": entries, "total_count": total}, nil
}

func (f family) export(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	q := f.s.store.Q()
	recordID := req.id(k.Name + "_id")
	if err := f.visibleIf(ctx, q, id, k, recordID); err != nil {
		return nil, err
	}
	rs, err := q.ListRecords(ctx, store.RecordFilter{Kind: k.Name, Scope: k.readScope(id.Scope()), ID: recordID})
	if err != nil {
		return nil, err
	}
	content, err := f.csv(ctx, q, k, rs)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	name := k.Plural + "-" + now.Format("20060102T150405Z") + ".csv"
	if recordID != nil {
		name = k.Name + "-" + recordID.String() + ".csv"
	}
	file := store.File{ID: store.NewID(), ProfileID: id.ProfileID, Name: name, ContentType: "text/csv; charset=utf-8",
		Size: len(content), Content: content, CreatedAt: now}
	if err := q.InsertFile(ctx, file); err != nil {
		return nil, err
	}
	return map[string]any{"file_id": file.ID, "file_name": file.Name, "content_type": file.ContentType, "size": file.Size,
		"row_count": len(rs)}, nil
}

// csv renders records: id, name, description, the kind's fields (text and numbers as they
// are, the rest as JSON), each relation's target names joined by "; ", and the times.
// Cells a spreadsheet would run as a formula are prefixed with a quote.
func (f family) csv(ctx context.Context, q store.Q, k *kind, rs []store.Record) ([]byte, error) {
	header := []string{"id", "name", "description"}
	for _, fd := range k.Fields {
		header = append(header, fd.Name)
	}
	names := map[string]map[uuid.UUID]string{}
	for _, rel := range k.relations() {
		header = append(header, rel.Name)
		var all []uuid.UUID
		for _, r := range rs {
			all = append(all, r.Links[rel.Name]...)
		}
		names[rel.Name] = map[uuid.UUID]string{}
		if len(all) == 0 {
			continue
		}
		found, err := q.Targets(ctx, rel.Source, store.OptionFilter{Among: all})
		if err != nil {
			return nil, err
		}
		for _, t := range found {
			names[rel.Name][t.ID] = t.Name
		}
	}
	header = append(header, "created_at", "updated_at")
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header)
	for _, r := range rs {
		line := []string{r.ID.String(), csvCell(r.Name), csvCell(r.Description)}
		for _, fd := range k.Fields {
			line = append(line, csvCell(fieldText(r.Fields[fd.Name])))
		}
		for _, rel := range k.relations() {
			var ns []string
			for _, t := range r.Links[rel.Name] {
				ns = append(ns, names[rel.Name][t])
			}
			line = append(line, csvCell(strings.Join(ns, "; ")))
		}
		line = append(line, utc(r.CreatedAt).Format(time.RFC3339), utc(r.UpdatedAt).Format(time.RFC3339))
		_ = w.Write(line)
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// fieldText is a stored field as a CSV cell: a string as it is, anything else as JSON.
func fieldText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (f family) problem(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	q := f.s.store.Q()
	subject := req.id(k.Name + "_id")
	if err := f.visibleIf(ctx, q, id, k, subject); err != nil {
		return nil, err
	}
	problemID, err := f.s.report(ctx, q, id, k.Name, subject, req.str("type"), req.str("message"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"success": true, "problem_id": problemID, "message": "report recorded"}, nil
}

func (f family) refresh(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	subject := req.id(k.Name + "_id")
	r := store.Refresh{ID: store.NewID(), Artifact: k.Name, SubjectID: subject, ProfileID: id.ProfileID}
	dropped := 0
	err := f.s.store.Tx(ctx, func(q store.Q) error {
		if err := f.visibleIf(ctx, q, id, k, subject); err != nil {
			return err
		}
		filter := store.RecordFilter{Kind: k.Name, Scope: k.readScope(id.Scope()), ID: subject}
		for _, rel := range k.relations() {
			n, err := q.PruneLinks(ctx, filter, rel.Name, rel.Source)
			if err != nil {
				return err
			}
			dropped += n
		}
		if k.Derive != nil {
			if err := k.Derive(ctx, q, filter); err != nil {
				return err
			}
		}
		n, err := q.CountRecords(ctx, filter)
		if err != nil {
			return err
		}
		r.RefreshedCount, r.CreatedAt = n, store.Now()
		return q.InsertRefresh(ctx, r)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"success": true, "refresh_id": r.ID, "refreshed_count": r.RefreshedCount,
		"refreshed": k.refreshes(), "dropped_links": dropped}, nil
}

// refreshes names what refresh recomputes: the links, and the derived fields.
func (k *kind) refreshes() []string {
	out := []string{"links"}
	for _, fd := range k.Derived {
		out = append(out, fd.Name)
	}
	return out
}

func (f family) decrypt(ctx context.Context, id *auth.Identity, k *kind, req body) (map[string]any, error) {
	r, err := f.visible(ctx, f.s.store.Q(), id, k, *req.id(k.Name + "_id"))
	if err != nil {
		return nil, err
	}
	secrets := r.Secrets
	if secrets == nil {
		secrets = map[string]string{}
	}
	return map[string]any{k.Name + "_id": r.ID, "secrets": secrets}, nil
}
