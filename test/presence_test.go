package test

// Presence with several tabs: the official Node client (node/presence-tabs.mjs) opens and
// closes the sockets of a profile one step at a time, driven over its stdin, and the server
// is checked between the steps: the profile's activity rows (the store and
// system.activity_search), and system.activity's counts in each caller's scope.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// presenceGrace is the servers' grace period: short, so that a test waits little for the
// "inactive" rows, and long enough for a tab to reopen well within it.
const presenceGrace = 400 * time.Millisecond

// presenceTransports is how each tab connects: websocket only, the client's default
// (long-polling upgraded to websocket), and long-polling only. Presence counts sockets,
// whatever carries them.
var presenceTransports = map[string][]string{"A": {"websocket"}, "B": nil, "C": {"polling"}}

// TestPresenceThreeTabs: three tabs of one profile open and close in every order (all six
// close orders after all three opened, interleaved opens and closes, and quick reloads: a
// close and a reopen within the grace period). Whatever the order, the profile gets exactly
// one "active" row when its first tab opens (sockets 1), nothing while tabs come and go, and
// one "inactive" row (sockets 0) a grace period after its last tab closed; a reopen within
// the grace period writes nothing. system.activity_search (as admin) shows the latest row;
// system.activity counts the profile and its open sockets for level 0 and for an editor of
// the profile's department, and nothing for an editor of another department.
func TestPresenceThreeTabs(t *testing.T) {
	node := nodeRequire(t)
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) { presenceThreeTabs(t, node, d) })
	}
}

func presenceThreeTabs(t *testing.T, node string, d testdb.Dialect) {
	env := testserver.Start(t, d, &server.Options{PresenceGrace: presenceGrace})
	viewers := []presenceViewer{
		{name: "admin", token: env.Admin, sees: true},
		{name: "editor of the department", token: env.Token(t, "presence-editor-in", "editor", "presence-tabs"), sees: true},
		{name: "editor of another department", token: env.Token(t, "presence-editor-out", "editor", "presence-elsewhere")},
	}
	tabs := presenceStartNode(t, node, env.URL)

	sequences := []string{
		// Every close order after all three opened.
		"A+ B+ C+ A- B- C-",
		"A+ B+ C+ A- C- B-",
		"A+ B+ C+ B- A- C-",
		"A+ B+ C+ B- C- A-",
		"A+ B+ C+ C- A- B-",
		"A+ B+ C+ C- B- A-",
		// Interleaved.
		"A+ B+ A- C+ B- C-",
		"C+ A+ C- B+ A- B-",
		"A+ B+ A- A+ B- A-", // A reloads while B keeps the profile online
		// Quick reloads: the last tab closes and one opens again within the grace period.
		"A+ A- A+ A-",
		"A+ A- B+ B- C+ C-",
		"A+ B+ C+ A- B- C- B+ B-",
	}
	var ended []presenceProfile
	for i, seq := range sequences {
		name := fmt.Sprintf("presence-seq%02d-learner", i)
		p := presenceProfile{name: name, token: env.Token(t, name, "learner", "presence-tabs")}
		p.id = presenceProfileID(t, env, name)
		t.Run(strings.ReplaceAll(seq, " ", "_"), func(t *testing.T) {
			presenceRunSequence(t, env, tabs, p, seq, viewers)
		})
		if t.Failed() {
			return
		}
		ended = append(ended, p)
	}

	// Another grace period later, no profile got anything more.
	time.Sleep(presenceGrace + 200*time.Millisecond)
	for _, p := range ended {
		presenceRequireRows(t, env, p, store.Active, store.Inactive)
	}
	tabs.finish(t)
}

// TestPresenceActivityScope: system.activity counts the profiles online in the caller's
// scope and their sockets: level 0 all of them, an editor those of their departments. It
// still does when other profiles of the department have just closed their last tab (their
// latest row is "active" for the grace period, and newer than the row of the profile still
// online), and its "recent" list holds only profiles in scope.
func TestPresenceActivityScope(t *testing.T) {
	node := nodeRequire(t)
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, &server.Options{PresenceGrace: 5 * time.Second})
			editorSales := env.Token(t, "presence-editor-sales", "editor", "presence-sales")
			editorSupport := env.Token(t, "presence-editor-support", "editor", "presence-support")
			sales := presenceNewProfile(t, env, "presence-sales-one", "presence-sales")
			support := presenceNewProfile(t, env, "presence-support-one", "presence-support")
			salesIDs := map[uuid.UUID]bool{sales.id: true}
			var later []presenceProfile
			for _, name := range []string{"two", "three", "four", "five"} {
				p := presenceNewProfile(t, env, "presence-sales-"+name, "presence-sales")
				later = append(later, p)
				salesIDs[p.id] = true
			}
			supportIDs := map[uuid.UUID]bool{support.id: true}

			tabs := presenceStartNode(t, node, env.URL)
			tabs.open(t, "S1", sales.token, nil)
			tabs.open(t, "S2", sales.token, []string{"polling"})
			tabs.open(t, "T1", support.token, nil)
			presenceWaitSockets(t, env, sales.id, 2)
			presenceWaitSockets(t, env, support.id, 1)

			check := func(when string) {
				t.Helper()
				presenceRequireActivity(t, env, "admin "+when, env.Admin, 2, 3, nil)
				presenceRequireActivity(t, env, "sales editor "+when, editorSales, 1, 2, salesIDs)
				presenceRequireActivity(t, env, "support editor "+when, editorSupport, 1, 1, supportIDs)
			}
			check("with three tabs open")

			// More sales profiles come and go: within the grace period their latest rows are
			// "active", and newer than the row of the sales profile still online.
			for i, p := range later {
				tab := fmt.Sprintf("L%d", i)
				tabs.open(t, tab, p.token, nil)
				presenceWaitSockets(t, env, p.id, 1)
				tabs.close(t, tab)
				presenceWaitSockets(t, env, p.id, 0)
			}
			check("after other sales profiles left")

			for _, tab := range []string{"S1", "S2", "T1"} {
				tabs.close(t, tab)
			}
			presenceWaitSockets(t, env, sales.id, 0)
			presenceWaitSockets(t, env, support.id, 0)
			presenceRequireActivity(t, env, "admin with every tab closed", env.Admin, 0, 0, nil)
			presenceRequireActivity(t, env, "sales editor with every tab closed", editorSales, 0, 0, salesIDs)
			tabs.finish(t)
		})
	}
}

// TestPresenceReloadWhileTheDatabaseIsSlow: while the database is slow, sockets open and
// close without waiting for it — their rows wait for it, in order, in the tracker's writer.
// A tab reloads (its socket closes and a new one opens) just as the grace period of an
// earlier close ends, so that the grace timer fires while the rows wait: a reopen within the
// grace period must still write nothing. The profile keeps its one "active" row, and gets
// its "inactive" one a grace period after its last close. The sockets are counted through the
// server's tracker, as the socket.io transport does; the slow database is SQLite's write
// lock, held by a transaction of the test.
func TestPresenceReloadWhileTheDatabaseIsSlow(t *testing.T) {
	d := testdb.Dialects(t)[0]
	if d.Name != store.SQLite {
		t.Skip("holds SQLite's write lock")
	}
	const grace = 300 * time.Millisecond
	env := testserver.Start(t, d, &server.Options{PresenceGrace: grace})
	tracker := env.Server.Presence
	tab := presenceNewProfile(t, env, "presence-slow-reload", "presence-slow")
	other := presenceNewProfile(t, env, "presence-slow-other", "presence-slow")

	tracker.Connected(tab.id)
	tracker.Disconnected(tab.id) // the grace period starts
	closed := time.Now()

	// The database becomes slow: the test holds its write lock.
	locked, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- env.Server.Store.Tx(context.Background(), func(q store.Q) error {
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	// Another profile connects: its "active" row waits for the database; the socket does not.
	connected := make(chan struct{})
	go func() { tracker.Connected(other.id); close(connected) }()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("a socket's connect waits for the database")
	}
	// The tab reloads just before the first close's grace period ends: its new socket opens
	// and closes again (a second reload).
	time.Sleep(time.Until(closed.Add(grace - 100*time.Millisecond)))
	tracker.Connected(tab.id)
	tracker.Disconnected(tab.id)
	lastClose := time.Now()
	// The first close's grace period ends (its timer must do nothing), and the tab opens
	// again within the grace period of its last close: nothing is written.
	time.Sleep(time.Until(closed.Add(grace + 50*time.Millisecond)))
	tracker.Connected(tab.id)
	if took := time.Since(lastClose); took >= grace {
		t.Fatalf("the reopen came %s after the close, not within the grace period of %s", took, grace)
	}
	close(release)
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	presenceRequireRows(t, env, tab, store.Active)

	tracker.Disconnected(tab.id)
	tracker.Disconnected(other.id)
	presenceWaitRows(t, env, tab, 2, grace+3*time.Second)
	time.Sleep(grace)
	presenceRequireRows(t, env, tab, store.Active, store.Inactive)
	presenceRequireRows(t, env, other, store.Active, store.Inactive)
}

// presenceFlush waits until the tracker has written the rows of every change so far.
func presenceFlush(t *testing.T, env *testserver.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.Server.Presence.Flush(ctx); err != nil {
		t.Fatalf("presence rows not written: %v", err)
	}
}

// presenceProfile is a profile whose tabs a sequence opens.
type presenceProfile struct {
	name, token string
	id          uuid.UUID
}

func presenceNewProfile(t *testing.T, env *testserver.Env, name, department string) presenceProfile {
	t.Helper()
	p := presenceProfile{name: name, token: env.Token(t, name, "learner", department)}
	p.id = presenceProfileID(t, env, name)
	return p
}

func presenceProfileID(t *testing.T, env *testserver.Env, name string) uuid.UUID {
	t.Helper()
	p, err := env.Server.Store.Q().ProfileByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// presenceViewer calls system.activity; sees says whether the profiles of the sequences are
// in its scope.
type presenceViewer struct {
	name, token string
	sees        bool
}

// presenceRunSequence runs steps such as "A+ B+ A- B-" (tab A opens, B opens, A closes, B
// closes) for one profile and checks the server after each step and at the end.
func presenceRunSequence(t *testing.T, env *testserver.Env, tabs *presenceNode, p presenceProfile, seq string, viewers []presenceViewer) {
	open := map[string]bool{}
	var lastClose time.Time // when the step that closed the last tab began
	for _, step := range strings.Fields(seq) {
		tab, op := step[:len(step)-1], step[len(step)-1]
		if op == '+' {
			reopen := len(open) == 0 && !lastClose.IsZero()
			tabs.open(t, tab, p.token, presenceTransports[tab])
			open[tab] = true
			presenceWaitSockets(t, env, p.id, len(open))
			if reopen {
				if took := time.Since(lastClose); took >= presenceGrace {
					t.Fatalf("%s: the reopen took %s, not within the grace period of %s: this machine is too slow for the check",
						step, took.Round(time.Millisecond), presenceGrace)
				}
			}
		} else {
			if len(open) == 1 {
				lastClose = time.Now()
			}
			tabs.close(t, tab)
			delete(open, tab)
			presenceWaitSockets(t, env, p.id, len(open))
			if len(open) == 0 && time.Since(lastClose) > presenceGrace/2 {
				// Too late to tell "not yet" from "never": the rows are checked at the end.
				t.Logf("%s: the close took %s; the row check right after it is skipped", step, time.Since(lastClose))
				continue
			}
		}
		// Whatever came and went, one "active" row so far, and nothing else.
		presenceRequireRows(t, env, p, store.Active)
		presenceRequireSearch(t, env, p, store.Active, 1)
		for _, v := range viewers {
			profiles, sockets := 0, 0
			if v.sees && len(open) > 0 {
				profiles, sockets = 1, len(open)
			}
			presenceRequireActivity(t, env, fmt.Sprintf("%s after %s", v.name, step), v.token, profiles, sockets, nil)
		}
	}
	if len(open) > 0 {
		t.Fatalf("sequence %q leaves tabs open", seq)
	}

	// A grace period after the last tab closed, the profile is inactive.
	rows := presenceWaitRows(t, env, p, 2, presenceGrace+3*time.Second)
	if rows[1].State != store.Inactive {
		t.Fatalf("rows %v: the second is not inactive", presenceStates(rows))
	}
	if early := lastClose.Add(presenceGrace - 5*time.Millisecond); rows[1].CreatedAt.Before(early) {
		t.Errorf("inactive at %s, before the grace period after the last close (%s) ended",
			rows[1].CreatedAt.Format(time.StampMicro), lastClose.UTC().Format(time.StampMicro))
	}
	presenceRequireRows(t, env, p, store.Active, store.Inactive)
	presenceRequireSearch(t, env, p, store.Inactive, 0)
}

// presenceWaitSockets waits until the server counts want open sockets for the profile.
func presenceWaitSockets(t *testing.T, env *testserver.Env, profile uuid.UUID, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := env.Server.Presence.Online()[profile]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile %s: %d open sockets, want %d", profile, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// presenceRows returns the profile's activity rows, oldest first.
func presenceRows(t *testing.T, env *testserver.Env, profile uuid.UUID) []store.Activity {
	t.Helper()
	presenceFlush(t, env)
	rows, err := env.Server.Store.Q().ProfileActivity(context.Background(), profile, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	return rows
}

func presenceStates(rows []store.Activity) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%s(%d)", r.State, r.Sockets)
	}
	return out
}

// presenceRequireRows checks the profile's rows: exactly the states given, oldest first, an
// "active" row counting its first socket and an "inactive" one none.
func presenceRequireRows(t *testing.T, env *testserver.Env, p presenceProfile, states ...string) {
	t.Helper()
	rows := presenceRows(t, env, p.id)
	var want []string
	for _, s := range states {
		n := 1
		if s == store.Inactive {
			n = 0
		}
		want = append(want, fmt.Sprintf("%s(%d)", s, n))
	}
	if got := presenceStates(rows); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: activity rows %v, want %v", p.name, got, want)
	}
}

// presenceWaitRows waits until the profile has at least n rows.
func presenceWaitRows(t *testing.T, env *testserver.Env, p presenceProfile, n int, wait time.Duration) []store.Activity {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		rows := presenceRows(t, env, p.id)
		if len(rows) >= n {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: rows %v after %s, want %d", p.name, presenceStates(rows), wait, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// presenceRequireSearch checks what system.activity_search answers the admin about the
// profile: its latest change, and only that.
func presenceRequireSearch(t *testing.T, env *testserver.Env, p presenceProfile, state string, sockets int) {
	t.Helper()
	presenceFlush(t, env)
	res := env.Post(t, env.Admin, "/system/activity/search", map[string]any{"search": p.name})
	var out struct {
		Profiles []struct {
			ProfileID   uuid.UUID `json:"profile_id"`
			ProfileName string    `json:"profile_name"`
			Role        string    `json:"role"`
			State       string    `json:"state"`
			Sockets     int       `json:"sockets"`
		} `json:"profiles"`
		TotalCount int `json:"total_count"`
	}
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil {
		t.Fatalf("system.activity_search: %d %s", res.Status, res.Body)
	}
	if out.TotalCount != 1 || len(out.Profiles) != 1 {
		t.Fatalf("system.activity_search %q: %s", p.name, res.Body)
	}
	got := out.Profiles[0]
	if got.ProfileID != p.id || got.ProfileName != p.name || got.Role != "learner" || got.State != state || got.Sockets != sockets {
		t.Fatalf("system.activity_search %q: %s, want state %s with %d sockets", p.name, res.Body, state, sockets)
	}
}

// presenceRequireActivity checks system.activity's counts for a caller; scope, when given,
// holds the only profiles its "recent" list may show.
func presenceRequireActivity(t *testing.T, env *testserver.Env, who, token string, profiles, sockets int, scope map[uuid.UUID]bool) {
	t.Helper()
	presenceFlush(t, env)
	res := env.Post(t, token, "/system/activity", `{}`)
	var out struct {
		ActiveProfilesCount int `json:"active_profiles_count"`
		SocketsCount        int `json:"sockets_count"`
		Recent              []struct {
			ProfileID   uuid.UUID `json:"profile_id"`
			ProfileName string    `json:"profile_name"`
		} `json:"recent"`
	}
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil {
		t.Fatalf("%s: system.activity: %d %s", who, res.Status, res.Body)
	}
	if out.ActiveProfilesCount != profiles || out.SocketsCount != sockets {
		t.Fatalf("%s: system.activity counts %d profiles with %d sockets, want %d with %d\n%s",
			who, out.ActiveProfilesCount, out.SocketsCount, profiles, sockets, res.Body)
	}
	for _, r := range out.Recent {
		if scope != nil && !scope[r.ProfileID] {
			t.Fatalf("%s: system.activity's recent list shows %s, out of scope", who, r.ProfileName)
		}
	}
}

// presenceNode is a running node/presence-tabs.mjs, driven one step at a time.
type presenceNode struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan nodeCheck // the check lines, then the summary; closed at the end of stdout
	stderr *testserver.SyncBuffer
	steps  int
	done   bool
}

func presenceStartNode(t *testing.T, node, url string) *presenceNode {
	t.Helper()
	cmd := exec.Command(node, "presence-tabs.mjs")
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "GLOW_URL="+url)
	p := &presenceNode{cmd: cmd, lines: make(chan nodeCheck, 16), stderr: &testserver.SyncBuffer{}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var c nodeCheck
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				if err := json.Unmarshal(line, &c); err != nil {
					c = nodeCheck{Check: "script", Detail: json.RawMessage(fmt.Sprintf("%q", line))}
				}
				p.lines <- c
			}
		}
	}()
	t.Cleanup(func() {
		if !p.done {
			_ = p.stdin.Close()
			p.wait(5 * time.Second)
		}
	})
	return p
}

// wait waits for the process to end, killing it after d.
func (p *presenceNode) wait(d time.Duration) error {
	exited := make(chan error, 1)
	go func() {
		for range p.lines { // drain, so the script never blocks on its stdout
		}
		exited <- p.cmd.Wait()
	}()
	select {
	case err := <-exited:
		return err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("did not exit within %s", d)
	}
}

func (p *presenceNode) open(t *testing.T, tab, token string, transports []string) {
	t.Helper()
	step := map[string]any{"op": "open", "tab": tab, "token": token}
	if transports != nil {
		step["transports"] = transports
	}
	p.step(t, step)
}

func (p *presenceNode) close(t *testing.T, tab string) {
	t.Helper()
	p.step(t, map[string]any{"op": "close", "tab": tab})
}

// step sends one step and waits for its check line.
func (p *presenceNode) step(t *testing.T, step map[string]any) nodeCheck {
	t.Helper()
	p.steps++
	line, _ := json.Marshal(step)
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("step %s: %v\n%s", line, err, p.stderr)
	}
	select {
	case c, ok := <-p.lines:
		want := fmt.Sprintf("%d/%s %s", p.steps, step["op"], step["tab"])
		switch {
		case !ok:
			t.Fatalf("step %s: the script ended\n%s", line, p.stderr)
		case c.Check != want || !c.OK:
			t.Fatalf("step %s: %s ok=%t %s\n%s", line, c.Check, c.OK, c.Detail, p.stderr)
		}
		return c
	case <-time.After(15 * time.Second):
		t.Fatalf("step %s: no answer within 15s\n%s", line, p.stderr)
	}
	return nodeCheck{}
}

// finish ends the script and checks its summary.
func (p *presenceNode) finish(t *testing.T) {
	t.Helper()
	p.done = true
	_ = p.stdin.Close()
	var summary *nodeCheck
	for c := range p.lines {
		if c.Summary != nil {
			summary = &c
			break
		}
		t.Errorf("unexpected line after the last step: %s %s", c.Check, c.Detail)
	}
	if err := p.wait(10 * time.Second); err != nil {
		t.Errorf("presence-tabs.mjs: %v\n%s", err, p.stderr)
	}
	if summary == nil || summary.Summary.Checks != p.steps || summary.Summary.Failed != 0 {
		t.Errorf("presence-tabs.mjs summary %+v after %d steps\n%s", summary, p.steps, p.stderr)
	}
}
