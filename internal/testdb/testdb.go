// Package testdb gives tests fresh databases: a SQLite file in a temporary directory, and a
// new PostgreSQL database per test when GLOW_TEST_POSTGRES_URL names a server (see
// scripts/with-postgres.sh, which `make test` uses). GLOW_TEST_REQUIRE_POSTGRES=1 turns a
// missing server into a failure instead of a skip.
package testdb

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the PostgreSQL driver, to create and drop test databases

	"github.com/glowhq/glow/store"
)

// Dialect is one database a test suite runs on.
type Dialect struct {
	Name string // store.SQLite or store.Postgres
	// Config returns the configuration of a new, empty database that lives as long as t.
	Config func(t testing.TB) store.Config
}

// Dialects lists SQLite and, when a server is configured, PostgreSQL. Run a suite on each:
//
//	for _, d := range testdb.Dialects(t) {
//		t.Run(d.Name, func(t *testing.T) { … d.Open(t) … })
//	}
func Dialects(t testing.TB) []Dialect {
	ds := []Dialect{{Name: store.SQLite, Config: sqliteConfig}}
	if os.Getenv("GLOW_TEST_POSTGRES_URL") != "" {
		ds = append(ds, Dialect{Name: store.Postgres, Config: postgresConfig})
	} else if os.Getenv("GLOW_TEST_REQUIRE_POSTGRES") == "1" {
		t.Fatal("GLOW_TEST_REQUIRE_POSTGRES=1 but GLOW_TEST_POSTGRES_URL is empty: run the tests through scripts/with-postgres.sh")
	} else {
		t.Log("GLOW_TEST_POSTGRES_URL is not set: the PostgreSQL variant is skipped (make test starts a server)")
	}
	return ds
}

// Open opens a new, empty, migrated database of this dialect, closed when t ends.
func (d Dialect) Open(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, d.Config(t))
	if err != nil {
		t.Fatalf("open %s: %v", d.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sqliteConfig(t testing.TB) store.Config {
	return store.Config{DataDir: t.TempDir()}
}

// postgresConfig creates a database named after a fresh uuid and drops it when t ends.
func postgresConfig(t testing.TB) store.Config {
	t.Helper()
	admin := os.Getenv("GLOW_TEST_POSTGRES_URL")
	name := "glow_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("GLOW_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return store.Config{DatabaseURL: u.String(), DataDir: t.TempDir()} // the data directory keeps the secret key
}
