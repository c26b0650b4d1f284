package test

import (
	"net/http"
	"testing"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// TestSearchFoldsCaseBeyondASCII: free-text search ignores the case of any letter, not only
// of ASCII ones, and answers the same on SQLite and PostgreSQL.
func TestSearchFoldsCaseBeyondASCII(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			res := env.Post(t, env.Admin, "/persona/create", map[string]any{"personas": []map[string]any{
				{"name": "ÉCOLE Ünïcödé Straße", "description": "ΣΟΦΊΑ teaches"}, {"name": "Plain"}}})
			if res.Status != http.StatusOK {
				t.Fatalf("create: %d %s", res.Status, res.Body)
			}
			for _, text := range []string{"école", "ÜNÏCÖDÉ", "STRAßE", "σοφία", "École ünïcödé"} {
				got := env.Post(t, env.Admin, "/persona/search", map[string]any{"search": text}).JSON(t)
				if got["total_count"] != float64(1) {
					t.Errorf("search %q: %v personas, want 1", text, got["total_count"])
				}
			}
		})
	}
}
