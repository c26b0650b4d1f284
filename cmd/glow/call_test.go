package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// glow login keeps the server and token (mode 0600); then every operation is a command:
// glow <artifact> <op> with its scalar fields as flags or --data, JSON out (a table for a
// search), and the exit code by the answer's status class.
func TestOperationCommands(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	editor := env.Token(t, "cli-editor", "editor", "cli-sales")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("GLOW_URL", "")
	t.Setenv("GLOW_TOKEN", "")

	if code, _, _ := glow(t, "profile", "context", "--url", env.URL); code != exitClientError {
		t.Errorf("before login: exit %d, want %d (no token: 401)", code, exitClientError)
	}
	if code, _, _ := glow(t, "login", "--url", env.URL, "--token", "glow_wrong"); code != 1 {
		t.Errorf("login with a wrong token: exit %d, want 1", code)
	}
	code, stdout, stderr := glow(t, "login", "--url", env.URL, "--token", editor)
	if code != 0 || !strings.Contains(stdout, "as cli-editor") {
		t.Fatalf("login: exit %d, %q %q", code, stdout, stderr)
	}
	path, _ := configPath()
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v, mode %v; want 0600", path, err, info.Mode())
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), editor) {
		t.Errorf("the config does not keep the token")
	}

	code, stdout, _ = glow(t, "profile", "context")
	var ctx struct{ Profile struct{ Name string } }
	if code != exitOK || json.Unmarshal([]byte(stdout), &ctx) != nil || ctx.Profile.Name != "cli-editor" {
		t.Errorf("profile context: exit %d, %q", code, stdout)
	}
	body := filepath.Join(t.TempDir(), "personas.json")
	if err := os.WriteFile(body, []byte(`{"personas":[{"name":"Tabled Tom","description":"a buyer","department_ids":["`+env.Department(t, "cli-sales").String()+`"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr = glow(t, "persona", "create", "--data", "@"+body); code != exitOK || !strings.Contains(stdout, `"success": true`) {
		t.Errorf("persona create --data @file: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, _ = glow(t, "persona", "search", "--search", "Tabled", "--page_size", "5")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) < 2 || !strings.Contains(lines[0], "NAME") || !strings.Contains(stdout, "Tabled Tom") {
		t.Errorf("persona search: exit %d, want a table with Tabled Tom:\n%s", code, stdout)
	}
	if code, stdout, _ = glow(t, "persona", "search", "--output", "json"); code != exitOK || !strings.HasPrefix(stdout, "{") {
		t.Errorf("persona search --output json: exit %d, %q", code, stdout)
	}
	if code, stdout, _ = glow(t, "persona", "get", "--persona_id", "00000000-0000-4000-8000-000000000000"); code != exitClientError || !strings.Contains(stdout, `"status": 404`) {
		t.Errorf("persona get of nothing: exit %d, %q; want %d and the problem", code, stdout, exitClientError)
	}
	if code, _, stderr = glow(t, "persona", "search", "--page_size", "many"); code != 2 || !strings.Contains(stderr, "whole number") {
		t.Errorf("--page_size many: exit %d, %q; want 2", code, stderr)
	}
	if code, _, _ = glow(t, "persona", "search", "--url", "http://127.0.0.1:1"); code != exitUnreachable {
		t.Errorf("an unreachable server: exit %d, want %d", code, exitUnreachable)
	}
	if code, _, stderr = glow(t, "persona", "nope"); code != 2 || !strings.Contains(stderr, "persona create") {
		t.Errorf("an unknown operation: exit %d, %q; want 2 and the list", code, stderr)
	}
	if code, _, stderr = glow(t, "persona", "search", "-h"); code != 0 || !strings.Contains(stderr, "--page_size") && !strings.Contains(stderr, "-page_size") {
		t.Errorf("persona search -h: exit %d, %q", code, stderr)
	}
}
