package store

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

// TestDepartmentsGetTheirRecords: a database of before the department kind (migration
// 00010) keeps its departments; migration 00011 gives each its record, in its own scope,
// with the department's id and name, and 00012 indexes the records' text for searches.
func TestDepartmentsGetTheirRecords(t *testing.T) {
	ctx := context.Background()
	db, err := sqlx.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "glow.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir, err := fs.Sub(migrations, "migrations/"+SQLite)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.DB, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	s := &Store{db: db, dialect: SQLite}
	q := s.Q()
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
