package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Record is one artifact of the standard family (agent, tool, …): the columns every kind
// has, the kind's own fields as JSON values, and its links, per relation, in order.
type Record struct {
	ID          uuid.UUID
	Kind        string
	Name        string
	Description string
	Fields      map[string]json.RawMessage
	Links       map[string][]uuid.UUID // relation ("departments", "models", …) → targets
	Secrets     map[string]string      // name → value, in plain text here and sealed in the database
	PendingBy   *uuid.UUID             // a soft create staged it for this profile
	CreatedBy   uuid.UUID
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// DepartmentsRelation is the relation every kind has: the departments a record belongs to
// (none: shared with every department).
const DepartmentsRelation = "departments"

// Departments are the record's departments.
func (r Record) Departments() []uuid.UUID { return r.Links[DepartmentsRelation] }

type recordRow struct {
	ID          uuid.UUID  `db:"id"`
	Kind        string     `db:"kind"`
	Name        string     `db:"name"`
	Description string     `db:"description"`
	Fields      string     `db:"fields"`
	Secrets     string     `db:"secrets"`
	PendingBy   *uuid.UUID `db:"pending_by"`
	CreatedBy   uuid.UUID  `db:"created_by"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

const recordColumns = `a.id, a.kind, a.name, a.description, a.fields, a.secrets, a.pending_by, a.created_by, a.created_at, a.updated_at`

// Source is where a relation's targets live: a table, the column that names them, and for
// the family's own table the kind. Sources are fixed in code, never built from input.
type Source struct {
	Table string // "departments", "models", "artifacts"
	Label string // the column shown as a target's name
	Kind  string // for "artifacts": the targets' kind
	Soft  bool   // the table marks deleted rows with deleted_at
	// Departments is the table linking the targets to departments, and its column naming
	// the target ("profile_departments", "profile_id"): a caller below level 0 may only pick
	// targets of their departments (and, when Shared, those of none).
	Departments *Membership
}

// Membership is a table of (target, department_id) rows.
type Membership struct {
	Table, Key string
	Shared     bool // a target in no department is shared with all
}

// scoped is the condition that keeps the targets (aliased t) that a caller with scope may
// pick, for a source whose targets belong to departments.
func (s Source) scoped(scope Scope) (string, []any) {
	if scope.All {
		return "1 = 1", nil
	}
	m := s.Departments
	cond := `t.id IN (SELECT m.` + m.Key + ` FROM ` + m.Table + ` m WHERE m.department_id IN (?))`
	if len(scope.DepartmentIDs) == 0 {
		cond = "1 = 0"
	}
	if m.Shared {
		cond = `(` + cond + ` OR NOT EXISTS (SELECT 1 FROM ` + m.Table + ` m WHERE m.` + m.Key + ` = t.id))`
	}
	if len(scope.DepartmentIDs) == 0 {
		return cond, nil
	}
	return in(cond, scope.DepartmentIDs)
}

// live is the condition that keeps a source's rows (aliased t) that exist.
func (s Source) live() (string, []any) {
	conds, args := []string{"1 = 1"}, []any(nil)
	if s.Soft {
		conds = append(conds, "t.deleted_at IS NULL")
	}
	if s.Kind != "" { // records of the family: not those a soft create staged
		conds, args = append(conds, "t.kind = ?", "t.pending_by IS NULL"), append(args, s.Kind)
	}
	return strings.Join(conds, " AND "), args
}

// InsertRecord stores a new record with its links.
func (q Q) InsertRecord(ctx context.Context, r Record) error {
	fields, secrets, err := q.stored(r)
	if err != nil {
		return err
	}
	if _, err := q.exec(ctx, `INSERT INTO artifacts (id, kind, name, description, fields, secrets, scope, pending_by, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Kind, r.Name, r.Description, fields, secrets, scopeText(r.Departments()),
		r.PendingBy, r.CreatedBy, r.CreatedAt, r.UpdatedAt); err != nil {
		return err
	}
	return q.addLinks(ctx, r.ID, r.Links)
}

// scopeText is a record's departments as its scope column keeps them, beside their links:
// "|<id>|<id>|", or "" for a shared record. Searches test the scope on the row itself (a
// LIKE per department), which costs a small part of a lookup in the links per row.
func scopeText(departments []uuid.UUID) string {
	if len(departments) == 0 {
		return ""
	}
	var b strings.Builder
	for _, d := range departments {
		b.WriteString("|")
		b.WriteString(d.String())
	}
	b.WriteString("|")
	return b.String()
}

// stored is a record's fields and its secrets (sealed) as the database keeps them.
func (q Q) stored(r Record) (fields, secrets string, err error) {
	rawFields, err := json.Marshal(nonNil(r.Fields))
	if err != nil {
		return "", "", err
	}
	sealed := make(map[string]string, len(r.Secrets))
	for name, value := range r.Secrets {
		sealed[name] = q.box.seal(value, recordSecretPlace(r.ID.String(), name))
	}
	rawSecrets, err := json.Marshal(sealed)
	return string(rawFields), string(rawSecrets), err
}

// openSecrets reads what sealSecrets wrote.
func (q Q) openSecrets(id uuid.UUID, text string) (map[string]string, error) {
	var sealed map[string]string
	if err := json.Unmarshal([]byte(text), &sealed); err != nil {
		return nil, fmt.Errorf("record %s: stored secrets: %w", id, err)
	}
	out := make(map[string]string, len(sealed))
	for name, value := range sealed {
		plain, err := q.box.open(value, recordSecretPlace(id.String(), name))
		if err != nil {
			return nil, err
		}
		out[name] = plain
	}
	return out, nil
}

func nonNil(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return map[string]json.RawMessage{}
	}
	return m
}

func (q Q) addLinks(ctx context.Context, id uuid.UUID, links map[string][]uuid.UUID) error {
	for relation, targets := range links {
		for i, t := range targets {
			if _, err := q.exec(ctx, `INSERT INTO artifact_links (artifact_id, relation, target_id, position) VALUES (?, ?, ?, ?)`,
				id, relation, t, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// RecordByID finds a record of a kind that is not deleted, with its links.
func (q Q) RecordByID(ctx context.Context, kind string, id uuid.UUID) (Record, error) {
	var row recordRow
	if err := q.get(ctx, &row, `SELECT `+recordColumns+` FROM artifacts a WHERE a.id = ? AND a.kind = ? AND a.deleted_at IS NULL`, id, kind); err != nil {
		return Record{}, err
	}
	rs, err := q.records(ctx, []recordRow{row})
	if err != nil {
		return Record{}, err
	}
	return rs[0], nil
}

// UpdateRecord writes a record's columns and fields and replaces its links.
func (q Q) UpdateRecord(ctx context.Context, r Record) error {
	fields, secrets, err := q.stored(r)
	if err != nil {
		return err
	}
	n, err := q.exec(ctx, `UPDATE artifacts SET name = ?, description = ?, fields = ?, secrets = ?, scope = ?, updated_at = ?
		WHERE id = ? AND kind = ? AND deleted_at IS NULL`, r.Name, r.Description, fields, secrets, scopeText(r.Departments()),
		r.UpdatedAt, r.ID, r.Kind)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	if _, err := q.exec(ctx, `DELETE FROM artifact_links WHERE artifact_id = ?`, r.ID); err != nil {
		return err
	}
	return q.addLinks(ctx, r.ID, r.Links)
}

// DeleteRecord archives a record: it leaves searches and gets; its links stay, so what
// pointed at it can still say what it was.
func (q Q) DeleteRecord(ctx context.Context, kind string, id uuid.UUID) error {
	n, err := q.exec(ctx, `UPDATE artifacts SET deleted_at = ? WHERE id = ? AND kind = ? AND deleted_at IS NULL`, Now(), id, kind)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// records turns rows into records, reading their links in one query.
func (q Q) records(ctx context.Context, rows []recordRow) ([]Record, error) {
	out := make([]Record, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(rows))
	byID := make(map[uuid.UUID]*Record, len(rows))
	for i, r := range rows {
		out[i] = Record{ID: r.ID, Kind: r.Kind, Name: r.Name, Description: r.Description, PendingBy: r.PendingBy,
			CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Links: map[string][]uuid.UUID{}}
		if err := json.Unmarshal([]byte(r.Fields), &out[i].Fields); err != nil {
			return nil, fmt.Errorf("%s %s: stored fields: %w", r.Kind, r.ID, err)
		}
		var err error
		if out[i].Secrets, err = q.openSecrets(r.ID, r.Secrets); err != nil {
			return nil, err
		}
		ids[i] = r.ID
		byID[r.ID] = &out[i]
	}
	query, args := in(`SELECT artifact_id, relation, target_id FROM artifact_links WHERE artifact_id IN (?)
		ORDER BY artifact_id, relation, position`, ids)
	var links []struct {
		ArtifactID uuid.UUID `db:"artifact_id"`
		Relation   string    `db:"relation"`
		TargetID   uuid.UUID `db:"target_id"`
	}
	if err := q.sel(ctx, &links, query, args...); err != nil {
		return nil, err
	}
	for _, l := range links {
		r := byID[l.ArtifactID]
		r.Links[l.Relation] = append(r.Links[l.Relation], l.TargetID)
	}
	return out, nil
}

// RecordFilter selects records of one kind for a search, an export or a bulk change.
type RecordFilter struct {
	Kind     string
	Scope    *Scope // nil: every record (a kind whose reads are not clamped by department)
	Text     string // matched case-insensitively against name and description
	Links    map[string][]uuid.UUID
	ID       *uuid.UUID  // keep only this record
	Excluded []uuid.UUID // leave these out
	// Viewer also keeps the records a soft create of this profile staged (uuid.Nil: none).
	Viewer uuid.UUID
}

// recordWhere returns the condition on the records (aliased a) that f keeps; without is a
// relation whose filter it leaves out (a facet counts its options so).
func (q Q) recordWhere(f RecordFilter, without string) (string, []any) {
	text := strings.ToLower(f.Text)
	indexed := q.x.DriverName() == "sqlite" && utf8.RuneCountInString(text) >= 3 // the trigram index serves it
	kind := "a.kind = ?"
	if indexed {
		kind = "+a.kind = ?" // the unary + keeps the kind's index from driving the query instead
	}
	conds := []string{kind, "a.deleted_at IS NULL", "(a.pending_by IS NULL OR a.pending_by = ?)"}
	args := []any{f.Kind, f.Viewer}
	add := func(c string, a ...any) {
		conds = append(conds, c)
		args = append(args, a...)
	}
	if f.Scope != nil && !f.Scope.All {
		conds := []string{"a.scope = ''"} // shared
		var args []any
		for _, d := range f.Scope.DepartmentIDs {
			conds, args = append(conds, "a.scope LIKE ?"), append(args, "%|"+d.String()+"|%")
		}
		add("("+strings.Join(conds, " OR ")+")", args...)
	}
	if f.Text != "" {
		pattern := likePattern(f.Text)
		if indexed {
			// The trigram index (migration 00012) finds the candidates; the LIKE confirms them.
			add(`a.text_key IN (SELECT rowid FROM artifacts_text WHERE artifacts_text MATCH ?)`, `"`+strings.ReplaceAll(text, `"`, `""`)+`"`)
		}
		add(`(lower(a.name) LIKE ? ESCAPE '\' OR lower(a.description) LIKE ? ESCAPE '\')`, pattern, pattern)
	}
	if f.ID != nil {
		add("a.id = ?", *f.ID)
	}
	if len(f.Excluded) > 0 {
		c, a := in(`a.id NOT IN (?)`, f.Excluded)
		add(c, a...)
	}
	for relation, targets := range f.Links {
		if relation == without || len(targets) == 0 {
			continue
		}
		c, a := in(`EXISTS (SELECT 1 FROM artifact_links fl WHERE fl.artifact_id = a.id AND fl.relation = ? AND fl.target_id IN (?))`,
			relation, targets)
		add(c, a...)
	}
	return strings.Join(conds, " AND "), args
}

// SearchRecords returns one page of the matching records, most recently changed first, and
// the number of matches across all pages.
func (q Q) SearchRecords(ctx context.Context, f RecordFilter, limit, offset int) ([]Record, int, error) {
	where, args := q.recordWhere(f, "")
	var rows []recordRow
	total, err := q.page(ctx, &rows, recordColumns, "artifacts a", where, "a.updated_at DESC, a.id DESC", args, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	rs, err := q.records(ctx, rows)
	return rs, total, err
}

// ListRecords returns every matching record, by name.
func (q Q) ListRecords(ctx context.Context, f RecordFilter) ([]Record, error) {
	where, args := q.recordWhere(f, "")
	var rows []recordRow
	if err := q.sel(ctx, &rows, `SELECT `+recordColumns+` FROM artifacts a WHERE `+where+` ORDER BY a.name, a.id`, args...); err != nil {
		return nil, err
	}
	return q.records(ctx, rows)
}

// Facet asks for the counts of one relation's targets among the matching records.
type Facet struct {
	Relation string
	Source   Source
	Options  []uuid.UUID // list only these targets (nil: all)
	NameText string      // list only the targets whose name matches
}

// RecordFacets counts the records matching f per target of each facet's relation, the
// filter on that relation left out: the targets with their names, by name. The facets
// whose relation f does not filter share one pass over the matching records, which reads
// their links through the links' primary key (artifact_id, relation, target_id).
func (q Q) RecordFacets(ctx context.Context, f RecordFilter, facets []Facet) (map[string][]FacetCount, error) {
	counts := map[string]map[uuid.UUID]int{}
	var unfiltered []string
	for _, fc := range facets {
		counts[fc.Relation] = map[uuid.UUID]int{}
		if len(f.Links[fc.Relation]) == 0 {
			unfiltered = append(unfiltered, fc.Relation)
		} else if err := q.countLinks(ctx, f, fc.Relation, []string{fc.Relation}, counts); err != nil {
			return nil, err
		}
	}
	if len(unfiltered) > 0 {
		if err := q.countLinks(ctx, f, "", unfiltered, counts); err != nil {
			return nil, err
		}
	}
	out := make(map[string][]FacetCount, len(facets))
	for _, fc := range facets {
		among := make([]uuid.UUID, 0, len(counts[fc.Relation]))
		for t := range counts[fc.Relation] {
			if fc.Options == nil || slices.Contains(fc.Options, t) {
				among = append(among, t)
			}
		}
		named, err := q.Targets(ctx, fc.Source, OptionFilter{Text: fc.NameText, Among: among})
		if err != nil {
			return nil, err
		}
		list := make([]FacetCount, len(named))
		for i, n := range named {
			list[i] = FacetCount{ID: n.ID, Name: n.Name, Count: counts[fc.Relation][n.ID]}
		}
		out[fc.Relation] = list
	}
	return out, nil
}

// countLinks adds to counts, per relation and target, the records matching f (without its
// filter on the relation without) that link to it.
func (q Q) countLinks(ctx context.Context, f RecordFilter, without string, relations []string, counts map[string]map[uuid.UUID]int) error {
	where, args := q.recordWhere(f, without)
	relIn, relArgs := in(`l.relation IN (?)`, relations)
	// CROSS JOIN keeps SQLite's loop on the records outside: driven from the links instead, it
	// would visit every link of the relations and then look their records up.
	query := `SELECT l.relation, l.target_id, COUNT(*) AS count FROM artifacts a
		CROSS JOIN artifact_links l WHERE l.artifact_id = a.id AND ` + relIn + `
		AND ` + where + ` GROUP BY l.relation, l.target_id`
	var rows []struct {
		Relation string    `db:"relation"`
		TargetID uuid.UUID `db:"target_id"`
		Count    int       `db:"count"`
	}
	if err := q.sel(ctx, &rows, query, append(relArgs, args...)...); err != nil {
		return err
	}
	for _, r := range rows {
		counts[r.Relation][r.TargetID] = r.Count
	}
	return nil
}

// Named is a target of a relation with its name.
type Named struct {
	ID   uuid.UUID `db:"id"`
	Name string    `db:"name"`
}

// OptionFilter narrows the targets of a relation that an editor may pick.
type OptionFilter struct {
	Text  string      // case-insensitive match on the name
	Among []uuid.UUID // only these (nil: any)
	Not   []uuid.UUID // leave these out
	Scope *Scope      // only targets in this scope (nil: any), for the family's kinds and sources with Departments
	Limit int
}

// Targets returns the existing targets of a source that the filter keeps, by name.
func (q Q) Targets(ctx context.Context, src Source, f OptionFilter) ([]Named, error) {
	if f.Among != nil && len(f.Among) == 0 {
		return nil, nil
	}
	live, args := src.live()
	query := `SELECT t.id, t.` + src.Label + ` AS name FROM ` + src.Table + ` t WHERE ` + live
	if f.Text != "" {
		query += ` AND lower(t.` + src.Label + `) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(f.Text))
	}
	for _, part := range []struct {
		cond string
		ids  []uuid.UUID
	}{{` AND t.id IN (?)`, f.Among}, {` AND t.id NOT IN (?)`, f.Not}} {
		if len(part.ids) > 0 {
			c, a := in(part.cond, part.ids)
			query += c
			args = append(args, a...)
		}
	}
	switch {
	case f.Scope != nil && src.Table == "artifacts":
		scoped := RecordFilter{Kind: src.Kind, Scope: f.Scope}
		where, a := q.recordWhere(scoped, "")
		query += ` AND t.id IN (SELECT a.id FROM artifacts a WHERE ` + where + `)`
		args = append(args, a...)
	case f.Scope != nil && src.Departments != nil:
		cond, a := src.scoped(*f.Scope)
		query += ` AND ` + cond
		args = append(args, a...)
	}
	query += ` ORDER BY t.` + src.Label + `, t.id`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var out []Named
	err := q.sel(ctx, &out, query, args...)
	return out, err
}

// PruneLinks drops the links of relation, from the matching records, to targets that no
// longer exist in src, and returns how many links it dropped.
func (q Q) PruneLinks(ctx context.Context, f RecordFilter, relation string, src Source) (int, error) {
	where, args := q.recordWhere(f, "")
	live, liveArgs := src.live()
	n, err := q.exec(ctx, `DELETE FROM artifact_links WHERE relation = ?
		AND artifact_id IN (SELECT a.id FROM artifacts a WHERE `+where+`)
		AND NOT EXISTS (SELECT 1 FROM `+src.Table+` t WHERE t.id = artifact_links.target_id AND `+live+`)`,
		append(append([]any{relation}, args...), liveArgs...)...)
	if err != nil || n == 0 || relation != DepartmentsRelation {
		return int(n), err
	}
	rs, err := q.ListRecords(ctx, f) // their scope column follows their department links
	for _, r := range rs {
		if err == nil {
			_, err = q.exec(ctx, `UPDATE artifacts SET scope = ? WHERE id = ?`, scopeText(r.Departments()), r.ID)
		}
	}
	return int(n), err
}

// CountRecords counts the matching records.
func (q Q) CountRecords(ctx context.Context, f RecordFilter) (int, error) {
	where, args := q.recordWhere(f, "")
	var n int
	err := q.get(ctx, &n, `SELECT COUNT(*) FROM artifacts a WHERE `+where, args...)
	return n, err
}

// RecordDraft is an immutable snapshot of a family record's editor form.
type RecordDraft struct {
	ID         uuid.UUID  `db:"id"`
	Kind       string     `db:"kind"`
	ArtifactID *uuid.UUID `db:"artifact_id"`
	ProfileID  uuid.UUID  `db:"profile_id"`
	Name       string     `db:"name"`
	FormState  []byte     `db:"form_state"` // JSON
	CreatedAt  time.Time  `db:"created_at"`
}

const recordDraftColumns = `id, kind, artifact_id, profile_id, name, form_state, created_at`

// InsertRecordDraft appends a draft.
func (q Q) InsertRecordDraft(ctx context.Context, d RecordDraft) error {
	_, err := q.exec(ctx, `INSERT INTO artifact_drafts (`+recordDraftColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Kind, d.ArtifactID, d.ProfileID, d.Name, string(d.FormState), d.CreatedAt)
	return err
}

// RecordDraftByID finds a draft of a kind.
func (q Q) RecordDraftByID(ctx context.Context, kind string, id uuid.UUID) (RecordDraft, error) {
	var d RecordDraft
	err := q.get(ctx, &d, `SELECT `+recordDraftColumns+` FROM artifact_drafts WHERE id = ? AND kind = ?`, id, kind)
	return d, err
}

// ListRecordDrafts returns a page of a profile's drafts of a kind, newest first, and their
// total.
func (q Q) ListRecordDrafts(ctx context.Context, kind string, f DraftFilter, limit, offset int) ([]RecordDraft, int, error) {
	conds := []string{"profile_id = ?", "kind = ?"}
	args := []any{f.ProfileID, kind}
	if f.SubjectID != nil {
		conds = append(conds, "artifact_id = ?")
		args = append(args, *f.SubjectID)
	}
	if f.Text != "" {
		conds = append(conds, `lower(name) LIKE ? ESCAPE '\'`)
		args = append(args, likePattern(f.Text))
	}
	conds, args = createdBetween(conds, args, f.From, f.To)
	var ds []RecordDraft
	total, err := q.page(ctx, &ds, recordDraftColumns, "artifact_drafts", strings.Join(conds, " AND "), "created_at DESC, id DESC", args, limit, offset)
	return ds, total, err
}

// FacetCount is one option of a facet with the number of records in it.
type FacetCount struct {
	ID    uuid.UUID `db:"id"`
	Name  string    `db:"name"`
	Count int       `db:"count"`
}

// DraftFilter selects a profile's drafts.
type DraftFilter struct {
	ProfileID uuid.UUID
	SubjectID *uuid.UUID // only the drafts of this record
	Text      string     // case-insensitive match on the draft's name
	From, To  *time.Time
}
