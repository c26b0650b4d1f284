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

// TestFamilyTextSearch: a family search's text, which the embedded database looks up in a
// trigram index: it folds case beyond ASCII as the LIKE does, finds text with quotes and
// text shorter than a trigram, and follows renames and deletes.
func TestFamilyTextSearch(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			post := poster(t, env, env.Admin)
			res := post("/agent/create", map[string]any{"agents": []map[string]any{
				{"name": "ÉCOLE Ünïcödé Straße", "description": "ΣΟΦΊΑ teaches"},
				{"name": `Say "hi" 100%`, "description": "quotes_and_marks"},
				{"name": "Plain"}}})
			ids := []any{pathValue(res, "results.0.agent_id"), pathValue(res, "results.1.agent_id"), pathValue(res, "results.2.agent_id")}
			count := func(text string) float64 {
				t.Helper()
				n, _ := post("/agent/search", map[string]any{"search": text})["total_count"].(float64)
				return n
			}
			for text, want := range map[string]float64{"école": 1, "ÜNÏCÖDÉ": 1, "STRAßE": 1, "σοφία": 1, "École ünïcödé": 1,
				`"hi"`: 1, `y "h`: 1, "100%": 1, "s_a": 1, "hi": 1, "a": 3, "absent": 0} {
				if got := count(text); got != want {
					t.Errorf("search %q: %v agents, want %v", text, got, want)
				}
			}
			post("/agent/update", map[string]any{"agents": []map[string]any{{"id": ids[2], "name": "Renamed"}}})
			if count("plain") != 0 || count("renamed") != 1 {
				t.Errorf("after a rename: plain %v, renamed %v", count("plain"), count("renamed"))
			}
			post("/agent/delete", map[string]any{"agent_ids": []any{ids[2]}})
			if count("renamed") != 0 {
				t.Errorf("a deleted agent is found")
			}
		})
	}
}
