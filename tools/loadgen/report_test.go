package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The report being rewritten does not count as an uncommitted change; any other file does.
func TestCodeVersionLeavesOutTheReport(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("docs/BENCHMARKS.md", "old")
	write("main.go", "package main")
	git("add", ".")
	git("commit", "-q", "-m", "first")

	write("docs/BENCHMARKS.md", "an earlier run")
	if v := codeVersion("docs/BENCHMARKS.md"); !strings.HasPrefix(v, "commit ") || strings.Contains(v, "uncommitted") {
		t.Fatalf("with only the report changed: %q", v)
	}
	if v := codeVersion(""); !strings.Contains(v, "uncommitted") {
		t.Fatalf("without a report, its change counts: %q", v)
	}
	write("main.go", "package main // changed")
	if v := codeVersion("docs/BENCHMARKS.md"); !strings.Contains(v, "with uncommitted changes") {
		t.Fatalf("with the code changed: %q", v)
	}
}
