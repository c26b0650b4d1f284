package store_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// TestSecretKey: the first start creates the data directory's key file with mode 0600; a
// later start with the same key opens the secrets; a start with another key (a changed
// GLOW_SECRET_KEY) is refused before it serves, and a key file others may read is refused.
func TestSecretKey(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			cfg := d.Config(t)
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(filepath.Join(cfg.DataDir, store.SecretKeyFile))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v; want mode 0600", info, err)
			}
			p := store.Provider{ID: store.NewID(), Name: "p", Kind: store.ProviderOpenAI, BaseURL: "http://127.0.0.1:9/v1",
				APIKey: "sk-the-key", CreatedAt: store.Now(), UpdatedAt: store.Now()}
			if err := s.Q().SaveProvider(ctx, p); err != nil {
				t.Fatal(err)
			}
			s.Close()

			text, _ := os.ReadFile(filepath.Join(cfg.DataDir, store.SecretKeyFile))
			same := cfg
			same.SecretKey = strings.TrimSpace(string(text)) // the file's key, given as GLOW_SECRET_KEY
			s, err = store.Open(ctx, same)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Q().ProviderByID(ctx, p.ID); err != nil || got.APIKey != "sk-the-key" {
				t.Fatalf("the key after a restart: %q, %v", got.APIKey, err)
			}
			s.Close()

			other := cfg
			other.SecretKey = hex.EncodeToString(make([]byte, 32))
			if s, err := store.Open(ctx, other); err == nil || !strings.Contains(err.Error(), "not the one") {
				if s != nil {
					s.Close()
				}
				t.Fatalf("a start with another key: %v, want a refusal", err)
			}
			short := cfg
			short.SecretKey = "c2hvcnQ="
			if _, err := store.Open(ctx, short); err == nil || !strings.Contains(err.Error(), "32 bytes") {
				t.Fatalf("a short key: %v", err)
			}
			if err := os.Chmod(filepath.Join(cfg.DataDir, store.SecretKeyFile), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "readable by others") {
				t.Fatalf("a key file others may read: %v", err)
			}
		})
	}
}

// TestPlainKeysSealedAtStart: a provider key an older version stored in plain text is sealed
// by the next start, and still reads the same.
func TestPlainKeysSealedAtStart(t *testing.T) {
	d := testdb.Dialects(t)[0] // SQLite: its file is reachable from the test
	ctx := context.Background()
	cfg := d.Config(t)
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := store.Provider{ID: store.NewID(), Name: "old", Kind: store.ProviderOpenAI, BaseURL: "http://127.0.0.1:9/v1",
		CreatedAt: store.Now(), UpdatedAt: store.Now()}
	if err := s.Q().SaveProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open(store.SQLite, "file:"+filepath.Join(cfg.DataDir, "glow.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE providers SET api_key = 'sk-plain-old' WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stored string
	if err := db.QueryRow(`SELECT api_key FROM providers WHERE id = ?`, p.ID).Scan(&stored); err != nil || strings.Contains(stored, "sk-plain-old") {
		t.Fatalf("stored after the start: %q, %v", stored, err)
	}
	db.Close()
	if got, err := s.Q().ProviderByID(ctx, p.ID); err != nil || got.APIKey != "sk-plain-old" {
		t.Fatalf("the key: %q, %v", got.APIKey, err)
	}
}
