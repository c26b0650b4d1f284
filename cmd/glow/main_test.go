package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// glow runs the command in-process and returns its exit code and output.
func glow(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestTokenCommands(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.Config(t)
			db := []string{"--data-dir", cfg.DataDir, "--database-url", cfg.DatabaseURL}

			code, out, errOut := glow(t, append([]string{"token", "create", "--profile", "ada", "--role", "editor",
				"--department", "sales", "--department", "support", "--label", "laptop"}, db...)...)
			token := strings.TrimSpace(out)
			if code != 0 || !strings.HasPrefix(token, auth.TokenPrefix) || strings.Count(out, "\n") != 1 {
				t.Fatalf("token create: %d %q %q", code, out, errOut)
			}
			if !strings.Contains(errOut, `created profile "ada" with role editor`) {
				t.Errorf("token create did not say it created the profile: %q", errOut)
			}

			st, err := store.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			tok, err := st.Q().TokenByHash(ctx, auth.HashToken(token))
			if err != nil || tok.Label != "laptop" {
				t.Fatalf("the printed token is not stored (hashed): %+v %v", tok, err)
			}
			p, _ := st.Q().ProfileByName(ctx, "ada")
			deps, _ := st.Q().ProfileDepartments(ctx, p.ID)
			if p.Role != "editor" || len(deps) != 2 {
				t.Fatalf("profile %+v in %d departments", p, len(deps))
			}

			code, _, errOut = glow(t, append([]string{"token", "create", "--profile", "ada", "--role", "learner"}, db...)...)
			if code != 0 || !strings.Contains(errOut, "from editor to learner") {
				t.Fatalf("role change: %d %q", code, errOut)
			}
			if code, _, errOut = glow(t, append([]string{"token", "create", "--profile", "bob", "--role", "wizard"}, db...)...); code != 1 || !strings.Contains(errOut, "wizard") {
				t.Fatalf("unknown role: %d %q", code, errOut)
			}
			if code, _, errOut = glow(t, append([]string{"token", "create", "--profile", "bob"}, db...)...); code != 1 || !strings.Contains(errOut, "--role") {
				t.Fatalf("missing role: %d %q", code, errOut)
			}

			code, out, _ = glow(t, append([]string{"token", "list", "--profile", "ada"}, db...)...)
			if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, tok.ID.String()) {
				t.Fatalf("token list: %d %q", code, out)
			}

			if code, _, errOut = glow(t, append([]string{"token", "revoke", token}, db...)...); code != 0 || !strings.Contains(errOut, "revoked session "+tok.ID.String()) {
				t.Fatalf("revoke by token: %d %q", code, errOut)
			}
			if code, _, errOut = glow(t, append([]string{"token", "revoke", tok.ID.String()}, db...)...); code != 0 || !strings.Contains(errOut, "already revoked") {
				t.Fatalf("revoke twice by session id: %d %q", code, errOut)
			}
			if code, _, _ = glow(t, append([]string{"token", "revoke", "nonsense"}, db...)...); code != 1 {
				t.Fatalf("revoke nonsense: %d", code)
			}
			if tok, _ = st.Q().TokenByID(ctx, tok.ID); tok.RevokedAt == nil {
				t.Fatal("the token is not revoked")
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"token"}, {"token", "mint"}, {"serve", "--no-such-flag"}} {
		if code, _, errOut := glow(t, args...); code != 2 || errOut == "" {
			t.Errorf("glow %v: exit %d, stderr %q; want 2 with a message", args, code, errOut)
		}
	}
	if code, out, _ := glow(t, "version"); code != 0 || !regexp.MustCompile(`^glow \d+\.\d+\.\d+\n$`).MatchString(out) {
		t.Errorf("glow version: %d %q", code, out)
	}
	t.Setenv("GLOW_CALL_TIMEOUT", "soon")
	if code, _, errOut := glow(t, "serve"); code != 1 || !strings.Contains(errOut, "GLOW_CALL_TIMEOUT") {
		t.Errorf("serve with a bad GLOW_CALL_TIMEOUT: %d %q", code, errOut)
	}
}

// TestServeShutsDownOnSignal runs the real binary: the first start prints the admin token
// and the URLs, the token works, and SIGTERM ends the process cleanly and promptly.
func TestServeShutsDownOnSignal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "glow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "GLOW_DATABASE_URL=")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string, 20)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var token string
	for token == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve exited early: %s", stderr.String())
			}
			if m := regexp.MustCompile(`glow_[A-Za-z0-9_-]+`).FindString(line); m != "" {
				token = m
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no admin token printed within 20s")
		}
	}
	waitListening(t, addr)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/profile/context", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"admin"`) {
		t.Fatalf("the printed token does not work: %d %s", res.StatusCode, body)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve still running 15s after SIGTERM")
	}
	t.Logf("shut down in %s", time.Since(start))
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitListening(t *testing.T, addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s", addr)
}
