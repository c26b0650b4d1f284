package test

// The socket.io contract, checked with the official Node client (socket.io-client, pinned in
// node/package.json): the scripts in node/ connect to a server started here, print one
// JSON line per check, and these tests assert the results. Without node (18 or later) or
// node/node_modules the tests skip, unless GLOW_TEST_REQUIRE_NODE=1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// nodeScriptTimeout bounds one script run; the scripts' own deadline is shorter (20 s), so a
// stuck script reports itself before it is killed.
const nodeScriptTimeout = 25 * time.Second

// nodeDir holds the scripts and their node_modules, relative to this package.
const nodeDir = "node"

// TestNodeHandshakeRefusesWithoutValidToken: over websocket and over polling, a handshake
// with no token, an unknown token, a tampered token or a non-string token ends in
// connect_error "unauthorized" carrying the 401 problem document, and never connects; the
// same handshake with a valid token connects.
func TestNodeHandshakeRefusesWithoutValidToken(t *testing.T) {
	node := nodeRequire(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	res := nodeRun(t, node, "handshake.mjs", map[string]string{
		"GLOW_URL":   env.URL,
		"GLOW_TOKEN": env.Admin,
	})
	var want []string
	for _, transport := range []string{"websocket", "polling"} {
		for _, c := range []string{"no-token", "unknown-token", "tampered-token", "token-not-a-string"} {
			for _, what := range []string{"refused", "message", "data-is-401-problem", "not-connected"} {
				want = append(want, transport+"/"+c+"/"+what)
			}
		}
		want = append(want, transport+"/valid-token/connected")
	}
	res.requireAllPassed(t, want...)
}

// TestNodeAcksOverWebsocketAndUpgrade: system.health, profile.context and persona.search
// (valid, and page_size 0 for a 422 problem) are acknowledged with {status, body} equal to
// HTTP's answer, over websocket only, across the client's own polling→websocket upgrade
// (the engine ends on websocket after its "upgrade" event), and with the upgrade held back
// so the same calls are answered first over polling, then over websocket.
func TestNodeAcksOverWebsocketAndUpgrade(t *testing.T) {
	node := nodeRequire(t)
	d := testdb.Dialects(t)[0]
	env := testserver.Start(t, d, nil)
	res := nodeRun(t, node, "roundtrip.mjs", map[string]string{
		"GLOW_URL":      env.URL,
		"GLOW_TOKEN":    env.Token(t, "node-roundtrip", "learner", "node-dept"),
		"GLOW_PROFILE":  "node-roundtrip",
		"GLOW_ROLE":     "learner",
		"GLOW_DATABASE": d.Name,
	})
	var want []string
	callChecks := func(prefix string) {
		for _, c := range []string{
			"system.health/status", "system.health/body.status", "system.health/body.database",
			"profile.context/status", "profile.context/body.profile.name", "profile.context/body-equals-http",
			"persona.search/status", "persona.search/body.page_size-default",
			"persona.search-invalid/status", "persona.search-invalid/body-is-422-problem",
			"persona.search-invalid/body.errors-names-page_size", "persona.search-invalid/body-equals-http",
		} {
			want = append(want, prefix+"/"+c)
		}
	}
	want = append(want, "websocket/engine-transport", "websocket/still-websocket")
	callChecks("websocket")
	want = append(want, "upgrade/at-connect/system.health", "upgrade/upgrade-event-transport",
		"upgrade/engine-transport", "upgrade/no-upgrade-error", "upgrade/still-websocket")
	callChecks("upgrade/after")
	want = append(want, "held/engine-transport-before", "held/upgrade-event-transport",
		"held/engine-transport-after", "held/no-upgrade-error",
		"held/before/system.health/answered-on-polling", "held/before/persona.search-invalid/answered-on-polling",
		"held/after/system.health/answered-on-websocket", "held/after/persona.search-invalid/answered-on-websocket")
	callChecks("held/before")
	callChecks("held/after")
	res.requireAllPassed(t, want...)
}

// TestNodeLifecycleEventsReachEverySocketOfTheProfile: calls made on one socket, and over
// HTTP with the same profile's token, push persona.search.started and then .completed (200)
// or .failed (422) to that socket and to a second socket of the profile on another session,
// with one call_id per call, the transport it came on ("socketio" or "http"), the request as
// sent and the caller's answer as body; a socket of another profile hears only of its own
// calls.
func TestNodeLifecycleEventsReachEverySocketOfTheProfile(t *testing.T) {
	node := nodeRequire(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	res := nodeRun(t, node, "lifecycle.mjs", map[string]string{
		"GLOW_URL":            env.URL,
		"GLOW_TOKEN":          env.Token(t, "node-lifecycle", "learner", "node-dept"),
		"GLOW_TOKEN_OBSERVER": env.Token(t, "node-lifecycle", "learner"),
		"GLOW_TOKEN_OTHER":    env.Token(t, "node-bystander", "learner", "node-dept"),
	})
	var want []string
	for _, c := range []struct{ name, outcome, transport string }{
		{"socketio-completed", "completed", "socketio"},
		{"socketio-failed", "failed", "socketio"},
		{"http-completed", "completed", "http"},
		{"http-failed", "failed", "http"},
	} {
		for _, who := range []string{"observer", "caller"} {
			p := c.name + "/" + who + "/"
			want = append(want, p+"started.transport", p+"started.request", p+c.outcome+".call_id",
				p+c.outcome+".transport", p+c.outcome+".status", p+c.outcome+".body-is-answer")
		}
		want = append(want, c.name+"/caller-same-call_id")
	}
	want = append(want, "call_ids-distinct", "other-profile/own-call/completed.call_id",
		"other-profile/hears-nothing-else", "observer/hears-nothing-of-other-profile",
		"caller/only-lifecycle-events", "observer/only-lifecycle-events", "other-profile/only-lifecycle-events")
	res.requireAllPassed(t, want...)

	// The results carry the transport each check saw: make sure the HTTP calls really were
	// reported as such, not merely passed by a lenient script.
	for _, name := range []string{"http-completed/observer/started.transport", "socketio-failed/observer/failed.transport"} {
		var d struct{ Got, Want string }
		if err := json.Unmarshal(res.checks[name].Detail, &d); err != nil || d.Got == "" || d.Got != d.Want {
			t.Errorf("%s: detail %s", name, res.checks[name].Detail)
		}
	}
}

// nodeRequire returns the node binary, or skips (fails with GLOW_TEST_REQUIRE_NODE=1) when
// node 18+ or the scripts' node_modules are missing.
func nodeRequire(t *testing.T) string {
	t.Helper()
	node, missing := exec.LookPath("node")
	if missing == nil {
		out, err := exec.Command(node, "--version").Output()
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		switch {
		case err != nil:
			missing = fmt.Errorf("node --version: %v", err)
		case major < 18:
			missing = fmt.Errorf("node %s is too old: the scripts need 18 or later (fetch)", v)
		}
	}
	if missing == nil {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "socket.io-client", "package.json")); err != nil {
			missing = errors.New("test/node/node_modules is missing: run `npm ci --prefix test/node`")
		}
	}
	if missing != nil {
		if os.Getenv("GLOW_TEST_REQUIRE_NODE") == "1" {
			t.Fatalf("GLOW_TEST_REQUIRE_NODE=1 but %v", missing)
		}
		t.Skipf("skipping the socket.io-client tests: %v (GLOW_TEST_REQUIRE_NODE=1 makes this a failure)", missing)
	}
	return node
}

// nodeCheck is one line a script prints.
type nodeCheck struct {
	Check   string          `json:"check"`
	OK      bool            `json:"ok"`
	Detail  json.RawMessage `json:"detail"`
	Summary *struct {
		Checks int `json:"checks"`
		Failed int `json:"failed"`
	} `json:"summary"`
}

// nodeResult is a script's run.
type nodeResult struct {
	script string
	checks map[string]nodeCheck
	failed []nodeCheck
	total  int
}

// nodeCommand is node running a script of nodeDir, with vars added to the environment.
func nodeCommand(ctx context.Context, node, script string, vars map[string]string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = nodeDir
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// nodeRun runs a script with env added to the environment and fails the test when it
// breaks (a non-JSON line, no summary, a summary that does not add up, an exit status
// other than 0 or 1, or the timeout). Failed checks are left to requireAllPassed.
func nodeRun(t *testing.T, node, script string, env map[string]string) *nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeScriptTimeout)
	defer cancel()
	cmd := nodeCommand(ctx, node, script, env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)

	dump := func() string {
		return fmt.Sprintf("--- stdout\n%s--- stderr\n%s", stdout.String(), stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s\n%s", script, nodeScriptTimeout, dump())
	}
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v\n%s", script, err, dump())
	}

	r := &nodeResult{script: script, checks: map[string]nodeCheck{}}
	var summary *nodeCheck
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var c nodeCheck
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatalf("%s printed a line that is not JSON: %q\n%s", script, line, dump())
		}
		if c.Summary != nil {
			summary = &c
			continue
		}
		if summary != nil {
			t.Fatalf("%s printed a check after its summary: %s", script, line)
		}
		if _, dup := r.checks[c.Check]; dup {
			t.Fatalf("%s reported check %q twice", script, c.Check)
		}
		r.checks[c.Check] = c
		r.total++
		if !c.OK {
			r.failed = append(r.failed, c)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s output: %v", script, err)
	}
	t.Logf("%s: %d checks, %d failed, exit %d, %s", script, r.total, len(r.failed), code, elapsed.Round(time.Millisecond))
	if code == 2 || summary == nil {
		t.Fatalf("%s broke (exit %d)%s\n%s", script, code, r.failures(), dump())
	}
	if summary.Summary.Checks != r.total || summary.Summary.Failed != len(r.failed) || (code == 0) != (len(r.failed) == 0) {
		t.Fatalf("%s: summary %+v and exit %d disagree with %d checks, %d failed\n%s",
			script, *summary.Summary, code, r.total, len(r.failed), dump())
	}
	if len(r.failed) > 0 && testing.Verbose() {
		t.Log(dump())
	}
	return r
}

// requireAllPassed fails the test for every failed check and for every check in want that
// the script did not report.
func (r *nodeResult) requireAllPassed(t *testing.T, want ...string) {
	t.Helper()
	for _, c := range r.failed {
		t.Errorf("%s: check %s failed: %s", r.script, c.Check, c.Detail)
	}
	for _, name := range want {
		if _, ok := r.checks[name]; !ok {
			t.Errorf("%s did not report check %s", r.script, name)
		}
	}
	if t.Failed() {
		return
	}
	if r.total < len(want) {
		t.Errorf("%s reported %d checks, fewer than the %d expected", r.script, r.total, len(want))
	}
}

func (r *nodeResult) failures() string {
	var b strings.Builder
	for _, c := range r.failed {
		fmt.Fprintf(&b, "\n  %s: %s", c.Check, c.Detail)
	}
	return b.String()
}
