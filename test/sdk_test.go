package test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// sdkDir is the generated TypeScript client.
const sdkDir = "../clients/ts"

// sdkRequire finds the client's TypeScript compiler (npm ci --prefix clients/ts), or skips —
// unless GLOW_TEST_REQUIRE_NODE=1, as in CI.
func sdkRequire(t *testing.T) string {
	t.Helper()
	nodeRequire(t)
	tsc := filepath.Join(sdkDir, "node_modules", ".bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		missing := errors.New("clients/ts/node_modules is missing: run `npm ci --prefix clients/ts`")
		if os.Getenv("GLOW_TEST_REQUIRE_NODE") == "1" {
			t.Fatalf("GLOW_TEST_REQUIRE_NODE=1 but %v", missing)
		}
		t.Skipf("skipping the TypeScript client's tests: %v", missing)
	}
	abs, _ := filepath.Abs(tsc)
	return abs
}

// tsc runs the compiler in the client's directory.
func tsc(t *testing.T, compiler string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, compiler, args...)
	cmd.Dir = sdkDir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The TypeScript client builds with tsc and ships its types; an app written against it
// compiles, one that sends a wrong payload or an unknown event does not; and, built, it
// calls a live glow over HTTP and socket.io and gets a chat reply streamed whose deltas make
// the stored message.
func TestTypeScriptSDK(t *testing.T) {
	compiler := sdkRequire(t)
	if out, err := tsc(t, compiler, "-p", "tsconfig.json"); err != nil {
		t.Fatalf("tsc -p clients/ts: %v\n%s", err, out)
	}
	for _, f := range []string{"index.d.ts", "events.gen.d.ts", "schema.gen.d.ts", "index.js"} {
		if _, err := os.Stat(filepath.Join(sdkDir, "dist", f)); err != nil {
			t.Errorf("the build has no dist/%s", f)
		}
	}
	if out, err := tsc(t, compiler, "-p", "examples"); err != nil {
		t.Errorf("the example app does not compile: %v\n%s", err, out)
	}
	for file, want := range map[string]string{
		"examples/fail-payload.ts": "TS2322", // a string where page_size is a number
		"examples/fail-event.ts":   "TS2345", // an event that is no operation
	} {
		out, err := tsc(t, compiler, "--noEmit", "--strict", "--target", "ES2022", "--module", "NodeNext",
			"--moduleResolution", "NodeNext", "--skipLibCheck", file)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%s compiled, or failed otherwise (want %s): %v\n%s", file, want, err, out)
		}
	}

	node := nodeRequire(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	res := realtimeRun(t, node, "sdk.mjs", map[string]string{
		"GLOW_URL":           env.URL,
		"GLOW_ADMIN_TOKEN":   env.Admin,
		"GLOW_TOKEN":         env.Token(t, "sdk-learner", "learner", "sdk"),
		"GLOW_DEPARTMENT_ID": env.Department(t, "sdk").String(),
	}, nil)
	res.requireAllPassed(t, "http/status", "http/profile", "http/no-token-problem", "socketio/attempt.start",
		"socketio/chat_message", "chat/many-deltas", "chat/deltas-make-completed-text", "chat/deltas-make-stored-reply")
}
