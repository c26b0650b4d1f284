package test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// TestNoSecretInEventsLogsOrReceipts plants a provider's API key through both transports
// (and an idempotent update) and then looks for it everywhere it must not be: every event
// pushed to the profile's sockets, every stored event row, the idempotency receipts and the
// server's log at debug level. The lifecycle events still name the call, with the key
// redacted.
func TestNoSecretInEventsLogsOrReceipts(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			const planted = "sk-planted-7f3a9c1e5b"
			sock := env.Dial(t, env.Admin)
			defer sock.Close()

			status, body := sock.Call(t, "provider.create", map[string]any{"name": "openai", "kind": "openai",
				"base_url": "http://127.0.0.1:9/v1", "api_key": planted + "-socket"})
			if status != 200 {
				t.Fatalf("provider.create over socket.io: %d %s", status, body)
			}
			var created struct {
				Provider struct {
					ID string `json:"id"`
				} `json:"provider"`
			}
			_ = json.Unmarshal(body, &created)
			res := env.Post(t, env.Admin, "/provider/update", map[string]any{"provider_id": created.Provider.ID,
				"api_key": planted + "-http", "idempotency_key": "rotate-1"})
			if res.Status != 200 {
				t.Fatalf("provider.update over HTTP: %d %s", res.Status, res.Body)
			}
			started := sock.WaitEvent(t, "provider.update.started", nil, 5*time.Second)
			if !strings.Contains(string(started.Data), `"api_key":"[redacted]"`) {
				t.Fatalf("provider.update.started does not show the key redacted: %s", started.Data)
			}
			sock.WaitEvent(t, "provider.update.completed", nil, 5*time.Second)
			env.Server.Events.Sync()

			for _, ev := range sock.Events() {
				if strings.Contains(string(ev.Data), planted) {
					t.Errorf("pushed event %s carries the key: %s", ev.Name, ev.Data)
				}
			}
			db := rawDB(t, env)
			response := "CAST(response AS TEXT)"
			if d.Name == store.Postgres {
				response = "convert_from(response, 'UTF8')"
			}
			for table, query := range map[string]string{
				"events":           `SELECT name || ' ' || data FROM events`,
				"idempotency_keys": `SELECT key || ' ' || request_hash || ' ' || COALESCE(` + response + `, '') FROM idempotency_keys`,
			} {
				var rows []string
				if err := db.Select(&rows, query); err != nil {
					t.Fatalf("%s: %v", table, err)
				}
				for _, row := range rows {
					if strings.Contains(row, planted) {
						t.Errorf("a row of %s carries the key: %s", table, row)
					}
				}
			}
			if logs := env.Logs(); strings.Contains(logs, planted) {
				t.Errorf("the log carries the key:\n%s", logs)
			}
		})
	}
}

// rawDB opens the server's database directly, for reading what it stored.
func rawDB(t *testing.T, env *testserver.Env) *sqlx.DB {
	t.Helper()
	o := env.Options()
	driver, dsn := "postgres", o.DatabaseURL
	if dsn == "" {
		driver, dsn = store.SQLite, "file:"+filepath.Join(o.DataDir, "glow.db")+"?mode=ro"
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
