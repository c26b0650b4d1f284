package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// chatServer is a server whose local model streams fast, a learner of a department, and a
// persona of it.
func chatServer(t *testing.T) (env *testserver.Env, learner, persona string) {
	t.Helper()
	env = testserver.Start(t, testdb.Dialects(t)[0], &server.Options{LocalTokenDelay: time.Millisecond})
	learner = env.Token(t, "cli-chatter", "learner", "cli-chat")
	res := env.Post(t, env.Admin, "/persona/create", `{"personas":[{"name":"Terminal Tess","description":"a buyer who answers briefly",`+
		`"department_ids":["`+env.Department(t, "cli-chat").String()+`"]}]}`)
	persona, _ = res.JSON(t)["results"].([]any)[0].(map[string]any)["persona_id"].(string)
	if persona == "" {
		t.Fatalf("persona.create: %s", res.Body)
	}
	return env, learner, persona
}

// runGlow runs the built binary with stdin and returns its exit code and output.
func runGlow(t *testing.T, bin, stdin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// The live chat REPL, fed by a pipe: it starts an attempt with the persona, sends each line
// as attempt.chat_message, prints every event of the chat as "<event>: <json>" — the
// learner's message, the reply's deltas as they stream, its completion and the stored reply
// — and ends at the end of input once the reply has ended. ":q" ends it at once.
func TestChatLiveREPL(t *testing.T) {
	bin := buildGlow(t)
	env, learner, persona := chatServer(t)
	vars := []string{"GLOW_URL=" + env.URL, "GLOW_TOKEN=" + learner, "XDG_CONFIG_HOME=" + t.TempDir()}
	code, stdout, stderr := runGlow(t, bin, "Why should we switch?\n", vars, "attempt", "chat", "live", "--persona", persona)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var deltas strings.Builder
	var names []string
	var completed, stored string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		name, data, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("a line that is not <event>: <json>: %q", line)
		}
		names = append(names, name)
		var d struct {
			Delta, Text string
			Message     struct{ Role, Text string }
		}
		if name != "chat" && json.Unmarshal([]byte(data), &d) != nil {
			t.Fatalf("%s: not JSON: %q", name, data)
		}
		switch name {
		case "attempt.generate.text.progress":
			deltas.WriteString(d.Delta)
		case "attempt.generate.completed":
			completed = d.Text
		case "attempt.chat.message":
			if d.Message.Role == "assistant" {
				stored = d.Message.Text
			}
		}
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"chat", "attempt.chat.message", "attempt.generate.started", "attempt.generate.text.progress", "attempt.generate.completed"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s line in:\n%s", want, stdout)
		}
	}
	if deltas.Len() == 0 || deltas.String() != completed || completed != stored {
		t.Errorf("the deltas make %q, completed says %q, the stored reply %q", deltas.String(), completed, stored)
	}

	start := time.Now()
	if code, stdout, stderr = runGlow(t, bin, ":q\nnever sent\n", vars, "attempt", "chat", "live", "--persona", persona); code != 0 ||
		strings.Contains(stdout, "never sent") || time.Since(start) > 20*time.Second {
		t.Errorf(":q: exit %d in %s\n%s\n%s", code, time.Since(start), stdout, stderr)
	}
}

// --watch on an operation that starts a run follows it: the text streams to stdout, the
// progress to stderr, and the exit code says how it ended.
func TestWatchFollowsTheRun(t *testing.T) {
	bin := buildGlow(t)
	env, learner, _ := chatServer(t)
	vars := []string{"GLOW_URL=" + env.URL, "GLOW_TOKEN=" + learner, "XDG_CONFIG_HOME=" + t.TempDir()}
	code, stdout, stderr := runGlow(t, bin, "", vars, "profile", "generate", "--data", `{"instructions":["a short bio"]}`, "--watch")
	if code != 0 || len(strings.TrimSpace(stdout)) < 10 || !strings.Contains(stderr, "100%") {
		t.Errorf("profile generate --watch: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if strings.HasPrefix(strings.TrimSpace(stdout), "{") {
		t.Errorf("--watch printed the answer, not the run's text: %q", stdout)
	}
}

// The REPL at a terminal: typed on a pseudo-terminal, a line goes out and its reply streams
// back; ":q" ends it.
func TestChatLiveOnATerminal(t *testing.T) {
	bin := buildGlow(t)
	env, learner, persona := chatServer(t)
	cmd := exec.Command(bin, "attempt", "chat", "live", "--persona", persona)
	cmd.Env = append(os.Environ(), "GLOW_URL="+env.URL, "GLOW_TOKEN="+learner, "XDG_CONFIG_HOME="+t.TempDir())
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out safeBuffer
	go func() { _, _ = io.Copy(&out, tty) }()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the terminal within 20 s:\n%s", what, out.String())
			}
		}
	}
	waitFor("chat: ")
	if _, err := tty.Write([]byte("Hello from a terminal\r")); err != nil {
		t.Fatal(err)
	}
	waitFor("attempt.generate.completed: ")
	if _, err := tty.Write([]byte(":q\r")); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf(":q: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf(":q did not end the REPL:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "attempt.generate.text.progress: ") {
		t.Errorf("the reply did not stream to the terminal:\n%s", out.String())
	}
}

// safeBuffer is a bytes.Buffer for one writer and one reader.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
