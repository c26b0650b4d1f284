package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// TestNoSecretInEventsLogsOrReceipts plants secrets through both transports — a provider's
// API key (created over socket.io, rotated over HTTP with an idempotency key) and a
// setting's secrets (created over socket.io, changed by a soft update over HTTP, then
// accepted) — reads one back with decrypt, and then looks for them everywhere they must not
// be: every event pushed to the profile's sockets, every byte of the database (SQLite's
// files; with PostgreSQL, every row of every table), and the server's log at debug level.
// The lifecycle events still name the calls, with the secrets redacted.
func TestNoSecretInEventsLogsOrReceipts(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			const planted = "sk-planted-7f3a9c1e5b"
			sock := env.Dial(t, env.Admin)
			defer sock.Close()
			call := func(op string, body map[string]any) []byte {
				t.Helper()
				status, res := sock.Call(t, op, body)
				if status != 200 {
					t.Fatalf("%s over socket.io: %d %s", op, status, res)
				}
				return res
			}
			post := func(path string, body map[string]any) []byte {
				t.Helper()
				res := env.Post(t, env.Admin, path, body)
				if res.Status != 200 {
					t.Fatalf("%s over HTTP: %d %s", path, res.Status, res.Body)
				}
				return res.Body
			}

			var provider struct {
				Results []struct {
					ID string `json:"provider_id"`
				} `json:"results"`
			}
			_ = json.Unmarshal(call("provider.create", map[string]any{"providers": []any{map[string]any{"name": "openai", "kind": "openai",
				"base_url": "http://127.0.0.1:9/v1", "secrets": map[string]any{"api_key": planted + "-socket"}}}}), &provider)
			providerID := provider.Results[0].ID
			post("/provider/update", map[string]any{"providers": []any{map[string]any{"id": providerID,
				"secrets": map[string]any{"api_key": planted + "-http"}}}, "idempotency_key": "rotate-1"})
			started := sock.WaitEvent(t, "provider.update.started", nil, 5*time.Second)
			if !strings.Contains(string(started.Data), `"secrets":"[redacted]"`) {
				t.Fatalf("provider.update.started does not show the key redacted: %s", started.Data)
			}
			if key, err := env.Server.Store.Q().ProviderByID(context.Background(), uuid.MustParse(providerID)); err != nil || key.APIKey != planted+"-http" {
				t.Fatalf("the key the runs use: %q, %v", key.APIKey, err)
			}
			var key struct {
				Secrets map[string]string `json:"secrets"`
			}
			_ = json.Unmarshal(call("provider.decrypt", map[string]any{"provider_id": providerID}), &key)
			if key.Secrets["api_key"] != planted+"-http" {
				t.Fatalf("provider.decrypt answers %v", key.Secrets)
			}
			if ev := sock.WaitEvent(t, "provider.decrypt.completed", nil, 5*time.Second); !strings.Contains(string(ev.Data), `"api_key":"[redacted]"`) {
				t.Fatalf("provider.decrypt.completed does not show the key redacted: %s", ev.Data)
			}

			var setting struct {
				Results []struct {
					ID string `json:"setting_id"`
				} `json:"results"`
			}
			_ = json.Unmarshal(call("setting.create", map[string]any{"settings": []any{map[string]any{"name": "Sales",
				"secrets": map[string]any{"crm": planted + "-setting"}}}}), &setting)
			settingID := setting.Results[0].ID
			post("/setting/update", map[string]any{"settings": []any{map[string]any{"id": settingID,
				"secrets": map[string]any{"webhook": planted + "-staged"}}}, "soft": true, "idempotency_key": "stage-secret"})
			post("/setting/update", map[string]any{"idempotency_key": "stage-secret", "accept": true})
			var decrypted struct {
				Secrets map[string]string `json:"secrets"`
			}
			_ = json.Unmarshal(call("setting.decrypt", map[string]any{"setting_id": settingID}), &decrypted)
			if decrypted.Secrets["crm"] != planted+"-setting" || decrypted.Secrets["webhook"] != planted+"-staged" {
				t.Fatalf("decrypt answers %v", decrypted.Secrets)
			}
			completed := sock.WaitEvent(t, "setting.decrypt.completed", nil, 5*time.Second)
			if !strings.Contains(string(completed.Data), `"crm":"[redacted]"`) {
				t.Fatalf("setting.decrypt.completed does not show the secrets redacted: %s", completed.Data)
			}
			sock.WaitEvent(t, "setting.update.completed", nil, 5*time.Second)
			env.Server.Events.Sync()

			for _, ev := range sock.Events() {
				if strings.Contains(string(ev.Data), planted) {
					t.Errorf("pushed event %s carries a secret: %s", ev.Name, ev.Data)
				}
			}
			for where, text := range storedText(t, env) {
				if strings.Contains(text, planted) {
					t.Errorf("%s holds a secret in plain text", where)
				}
			}
			if logs := env.Logs(); strings.Contains(logs, planted) {
				t.Errorf("the log carries a secret:\n%s", logs)
			}
		})
	}
}

// storedText is everything the server's database holds, as text: with SQLite the bytes of
// its files (the database, its write-ahead log), with PostgreSQL every row of every table.
func storedText(t *testing.T, env *testserver.Env) map[string]string {
	t.Helper()
	out := map[string]string{}
	if env.Options().DatabaseURL == "" {
		files, err := filepath.Glob(filepath.Join(env.Options().DataDir, "glow.db*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no database files: %v", err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = string(b)
		}
		return out
	}
	db := rawDB(t, env)
	var tables []string
	if err := db.Select(&tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var rows []string
		if err := db.Select(&rows, `SELECT t::text FROM "`+table+`" t`); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out["table "+table] = strings.Join(rows, "\n")
	}
	if len(out) < 10 {
		t.Fatalf("read only %d tables", len(out))
	}
	return out
}

// rawDB opens the server's database directly, for reading what it stored.
func rawDB(t *testing.T, env *testserver.Env) *sqlx.DB {
	return openDB(t, env, "?mode=ro")
}

// grantEditors lets the seeded editor role call every standard operation of the artifacts
// but decrypt, as a deployment may (the parity table runs every kind's rows as an editor).
func grantEditors(t *testing.T, env *testserver.Env, artifacts ...string) {
	t.Helper()
	db := openDB(t, env, "?_pragma=busy_timeout(10000)")
	for _, a := range artifacts {
		for _, op := range familyOperations(a) {
			if op == "decrypt" {
				continue
			}
			if _, err := db.Exec(db.Rebind(`INSERT INTO role_permissions (role, artifact, operation) VALUES ('editor', ?, ?)
				ON CONFLICT DO NOTHING`), a, op); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func openDB(t *testing.T, env *testserver.Env, sqliteParams string) *sqlx.DB {
	t.Helper()
	o := env.Options()
	driver, dsn := "postgres", o.DatabaseURL
	if dsn == "" {
		driver, dsn = store.SQLite, "file:"+filepath.Join(o.DataDir, "glow.db")+sqliteParams
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
