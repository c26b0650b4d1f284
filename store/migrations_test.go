package store

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

// TestDepartmentsGetTheirRecords: a database of before the department kind (migration
// 00010) keeps its departments; migration 00011 gives each its record, in its own scope,
// with the department's id and name, and 00012 indexes the records' text for searches.
func TestDepartmentsGetTheirRecords(t *testing.T) {
	ctx := context.Background()
	p, q := migratedTo(t, 10)
	owner, err := q.CreateProfile(ctx, "owner", "admin")
	if err != nil {
		t.Fatal(err)
	}
	d := Department{ID: NewID(), Name: "sales", CreatedAt: Now()}
	if _, err := q.exec(ctx, `INSERT INTO departments (id, name, created_at) VALUES (?, ?, ?)`, d.ID, d.Name, d.CreatedAt); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	r, err := q.RecordByID(ctx, DepartmentKind, d.ID)
	if err != nil {
		t.Fatalf("the department's record: %v", err)
	}
	if r.Name != "sales" || r.CreatedBy != owner.ID || len(r.Departments()) != 1 || r.Departments()[0] != d.ID {
		t.Errorf("the record: %+v", r)
	}
	var scope string
	if err := q.get(ctx, &scope, `SELECT scope FROM artifacts WHERE id = ?`, d.ID); err != nil || scope != "|"+d.ID.String()+"|" {
		t.Errorf("its scope: %q, %v", scope, err)
	}
	if _, err := p.UpTo(ctx, 12); err != nil {
		t.Fatal(err)
	}
	found, total, err := q.SearchRecords(ctx, RecordFilter{Kind: DepartmentKind, Text: "SAL"}, 10, 0)
	if err != nil || total != 1 || found[0].ID != d.ID {
		t.Errorf("searching the indexed records: %v, %d, %v", found, total, err)
	}
}

// TestPersonasGetTheirRecords: migration 00014 gives each persona of an older database its
// record (its instructions and attempt count as fields, its departments as links and
// scope; a deleted one stays deleted) and moves the persona drafts to the family's drafts.
func TestPersonasGetTheirRecords(t *testing.T) {
	ctx := context.Background()
	p, q := migratedTo(t, 13)
	owner, err := q.CreateProfile(ctx, "owner", "admin")
	if err != nil {
		t.Fatal(err)
	}
	sales, err := q.EnsureDepartment(ctx, "sales", owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := Now()
	sue, gone := NewID(), NewID()
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO personas (id, name, description, instructions, attempt_count, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{sue, "Sue", "a buyer", "be tough", 3, owner.ID, now, now}},
		{`INSERT INTO personas (id, name, description, instructions, attempt_count, created_by, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{gone, "Gone", "", "", 0, owner.ID, now, now, now}},
		{`INSERT INTO persona_departments (persona_id, department_id) VALUES (?, ?)`, []any{sue, sales.ID}},
		{`INSERT INTO persona_drafts (id, persona_id, profile_id, name, form_state, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			[]any{NewID(), gone, owner.ID, "old draft", `{"name":"Gone again"}`, now}},
	} {
		if _, err := q.exec(ctx, stmt.query, stmt.args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	r, err := q.RecordByID(ctx, PersonaKind, sue)
	if err != nil || r.Name != "Sue" || string(r.Fields["instructions"]) != `"be tough"` || string(r.Fields["attempt_count"]) != "3" ||
		len(r.Departments()) != 1 || r.Departments()[0] != sales.ID {
		t.Fatalf("the persona's record: %+v %v", r, err)
	}
	found, total, err := q.SearchRecords(ctx, RecordFilter{Kind: PersonaKind, Scope: &Scope{DepartmentIDs: []uuid.UUID{sales.ID}}, Text: "BUY"}, 10, 0)
	if err != nil || total != 1 || found[0].ID != sue {
		t.Errorf("searching it in its department's scope: %v %d %v", found, total, err)
	}
	if _, err := q.RecordByID(ctx, PersonaKind, gone); !errors.Is(err, ErrNotFound) {
		t.Errorf("the deleted persona's record: %v", err)
	}
	drafts, total, err := q.ListRecordDrafts(ctx, PersonaKind, DraftFilter{ProfileID: owner.ID}, 10, 0)
	if err != nil || total != 1 || drafts[0].Name != "old draft" || drafts[0].ArtifactID == nil || *drafts[0].ArtifactID != gone {
		t.Errorf("the drafts: %+v %d %v", drafts, total, err)
	}
}

// migratedTo is a new embedded database migrated up to version, with the migrations to go
// on and a Q without secrets.
func migratedTo(t *testing.T, version int64) (*goose.Provider, Q) {
	t.Helper()
	db, err := sqlx.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "glow.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir, err := fs.Sub(migrations, "migrations/"+SQLite)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.DB, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return p, (&Store{db: db, dialect: SQLite}).Q()
}
