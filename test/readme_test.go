package test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// readmeSnippet returns the README's code block that starts with first.
func readmeSnippet(t *testing.T, first string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "```js\n"+first)
	if i < 0 {
		t.Fatalf("the README has no js block starting with %q", first)
	}
	block := text[i+len("```js\n"):]
	return block[:strings.Index(block, "```")]
}

// The README's chat.mjs runs as written against a live glow: it creates a persona, starts a
// chat, streams the reply, and exits by itself.
func TestReadmeChatScriptRuns(t *testing.T) {
	node := nodeRequire(t)
	script := readmeSnippet(t, "// chat.mjs")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chat.mjs"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	modules, _ := filepath.Abs(filepath.Join(nodeDir, "node_modules")) // where socket.io-client is installed
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "chat.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GLOW_URL="+env.URL, "TOKEN="+env.Admin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node chat.mjs: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if len(strings.TrimSpace(stdout.String())) < 20 {
		t.Errorf("chat.mjs printed no reply: %q", stdout.String())
	}
}
