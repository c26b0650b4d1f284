package test

// The realtime features end to end, with the official Node socket.io-client and fetch: the
// reply to a chat message streamed to every socket of the profile and over server-sent
// events, following a topic across a lost connection and across a server restart, and
// pausing, resuming and stopping runs. The scripts are node/realtime-*.mjs; they print the
// JSON check lines of node/lib.mjs, and a script that needs the test to act (restart the
// server) prints {"await": "<what>"} and waits for a line on its stdin. A script's output is
// logged when a check fails, or always with GLOW_TEST_NODE_OUTPUT=1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// realtimeScriptTimeout bounds one script run; the scripts' own deadline is shorter.
const realtimeScriptTimeout = 40 * time.Second

// realtimeSetup is a server and the tokens the scripts use: two sessions of a learner in
// one department, another learner of that department, and the admin.
type realtimeSetup struct {
	env        *testserver.Env
	department string
	learner    [2]string
	other      string
}

func realtimeStart(t *testing.T, d testdb.Dialect, tokenDelay time.Duration) *realtimeSetup {
	t.Helper()
	env := testserver.Start(t, d, &server.Options{LocalTokenDelay: tokenDelay})
	s := &realtimeSetup{env: env, department: env.Department(t, "rt-sales").String()}
	for i := range s.learner {
		s.learner[i] = env.Token(t, "rt-learner", "learner", "rt-sales")
	}
	s.other = env.Token(t, "rt-other", "learner", "rt-sales")
	return s
}

// vars is the scripts' common environment.
func (s *realtimeSetup) vars(extra map[string]string) map[string]string {
	v := map[string]string{
		"GLOW_URL":           s.env.URL,
		"GLOW_ADMIN_TOKEN":   s.env.Admin,
		"GLOW_TOKEN":         s.learner[0],
		"GLOW_DEPARTMENT_ID": s.department,
	}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// TestRealtimeReplyStreamsToEverySocket: a chat message sent on one socket starts the
// persona's reply, and every socket of the learner — three, on two sessions, one of them on
// polling first — gets the attempt topic whole and in order: the learner's message, the
// reply's deltas (in seq order), completed, the stored reply; the deltas make completed's
// text, the stored message (chat_get, attempt.chat.message, run_get). A socket of another
// learner gets none of it, and may not follow the topic over SSE (403). The same topic read
// over GET /attempt/stream — live while the reply streams, replayed from the start, from the
// middle, and with Last-Event-ID — is frame for frame (id = seq, event = name, data =
// payload) what socket.io delivered. On every dialect.
func TestRealtimeReplyStreamsToEverySocket(t *testing.T) {
	node := nodeRequire(t)
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			s := realtimeStart(t, d, 5*time.Millisecond)
			res := realtimeRun(t, node, "realtime-stream.mjs", s.vars(map[string]string{
				"GLOW_TOKEN_2":     s.learner[1],
				"GLOW_TOKEN_OTHER": s.other,
			}), nil)
			var want []string
			for _, p := range []string{"socket1", "socket2", "socket3"} {
				for _, c := range []string{"every-topic-event-in-order", "many-deltas", "deltas-make-completed-text",
					"deltas-make-stored-reply", "completed.result.message-is-stored", "chat.message-event-is-stored-reply",
					"first-is-the-learner-message", "started", "started-deltas-completed-stored"} {
					want = append(want, p+"/"+c)
				}
			}
			want = append(want, "socket2/same-events-as-socket1", "socket3/same-events-as-socket1")
			want = append(want, "ack/reply_run_id", "chat_get-after/messages", "run_get/output-is-stored-reply",
				"other-profile/gets-nothing-of-it", "other-profile/gets-nothing-at-all", "other-profile/sse-forbidden",
				"sse-live/replay_done", "sse-live/frames-are-socket-events", "sse-replay/frames-are-socket-events",
				"sse-replay/replay_done", "sse-replay-from-middle/frames", "sse-last-event-id/frames")
			res.requireAllPassed(t, want...)
		})
	}
}

// TestRealtimeReconnectMidReply: a socket following an attempt's topic loses its connection
// in the middle of a reply (engine.close); a new socket subscribing with the last number the
// first one saw gets the replay, replay_done, then the live rest: every number of the topic
// once, in order, across both, and the deltas make the stored reply. chat_get in the middle
// of the next reply returns its text up to reply.last_seq (the log's deltas up to that
// number), and subscribing from last_seq completes that text exactly. The sockets are the
// learner's, so the topic's events also reach them through the profile's room: replaying a
// long attempt topic while a fast reply streams on it, none of those comes inside the
// replay or again after it; replaying the long profile topic meanwhile, none of the reply's
// events is lost.
func TestRealtimeReconnectMidReply(t *testing.T) {
	node := nodeRequire(t)
	s := realtimeStart(t, testdb.Dialects(t)[0], 30*time.Millisecond)
	res := realtimeRun(t, node, "realtime-reconnect.mjs", s.vars(map[string]string{
		"GLOW_WATCHER_TOKEN": s.learner[1],
	}), nil)
	res.requireAllPassed(t,
		"kill/first-socket-stopped-mid-reply", "kill/first-socket-in-order", "kill/second-subscribe-ack",
		"kill/second/replay_done", "kill/second/replay-then-live-in-order", "kill/second/replay_done.last_seq",
		"kill/second/pushed-before-are-replayed-copies", "kill/replay_done.equals-ack",
		"kill/second-replayed-the-missed-part", "kill/every-seq-once-across-both",
		"kill/deltas-make-completed-text", "kill/deltas-make-stored-reply", "kill/chat.message-event-is-stored-reply",
		"chat_get/reply-streaming", "chat_get/subscription/replay-then-live-in-order", "chat_get/text-was-partial",
		"chat_get/reply.text+deltas-make-completed-text", "chat_get/reply.text+deltas-make-stored-reply",
		"chat_get/reply.text-is-deltas-up-to-reply.last_seq", "log/seqs-are-1-to-n",
		"log/first-reply-as-the-sockets-saw-it",
		"busy/subscription/replay-then-live-in-order", "busy/subscription/pushed-before-are-replayed-copies",
		"busy/replay-was-long", "busy/deltas-make-completed-text",
		"own-profile/replay-was-long", "own-profile/reply-events-kept-coming", "own-profile/reply-events-in-order")
}

// TestRealtimePauseResumeStop: an editor's chat reply controlled over socket.io and persona
// draft controlled over HTTP (followed over SSE), both mid-run: run_pause answers "paused" and
// <artifact>.generate.paused follows, then no delta for a while and the text does not grow;
// run_resume answers "running", .resumed follows and deltas come again; run_stop answers
// "stopped", .stopped follows and nothing after it, the run keeps the text streamed, nothing
// is delivered (no reply message, no draft); stopping again answers 409 (as do resuming a
// running run and pausing a stopped one). The editor's socket hears of the HTTP pass too.
func TestRealtimePauseResumeStop(t *testing.T) {
	node := nodeRequire(t)
	s := realtimeStart(t, testdb.Dialects(t)[0], 30*time.Millisecond)
	editor := s.env.Token(t, "rt-editor", "editor", "rt-sales") // learners may not draft personas
	res := realtimeRun(t, node, "realtime-control.mjs", s.vars(map[string]string{"GLOW_TOKEN": editor}), nil)
	var want []string
	for _, p := range []string{"socketio", "http"} {
		for _, c := range []string{"pause.status", "pause.run.status", "no-deltas-while-paused", "run_get-while-paused.status",
			"resume.status", "resume.run.status", "stop.status", "stop.run.status", "paused-resumed-stopped-in-order",
			"nothing-while-paused", "deltas-before-pause", "deltas-after-resume", "nothing-after-stopped", "no-completed",
			"states", "in-seq-order", "second-stop-is-409", "run_get.status", "run_get.output-is-the-deltas"} {
			want = append(want, p+"/"+c)
		}
	}
	want = append(want, "socketio/resume-running-is-409", "socketio/pause-stopped-is-409", "socketio/no-reply-stored",
		"socketio/run_get-while-paused.output-unchanged", "http/frames-numbered-from-1", "http/no-draft-saved",
		"mixed/socket-got-persona.generate.paused", "mixed/socket-got-persona.generate.resumed",
		"mixed/socket-got-persona.generate.stopped")
	res.requireAllPassed(t, want...)
}

// TestRealtimeRestartMidReply: the server restarts (as on SIGTERM, then again on the same
// database and address) while a reply streams. The learner's socket reconnects to the same
// URL by itself and subscribes again with the last number it saw: it gets what it missed,
// replay_done and the rest, every number of the topic once and in order. With the embedded
// model the run resumes where its deltas stopped (started with resumed: true) and completes,
// and the deltas make the stored reply. With an OpenAI-compatible default model, which
// cannot be taken up again, the run fails with an error saying the server restarted, the
// model server is not asked again, and nothing is stored.
func TestRealtimeRestartMidReply(t *testing.T) {
	node := nodeRequire(t)
	t.Run("resume", func(t *testing.T) {
		s := realtimeStart(t, testdb.Dialects(t)[0], 30*time.Millisecond)
		restarts := 0
		res := realtimeRun(t, node, "realtime-restart.mjs", s.vars(map[string]string{"GLOW_MODE": "resume"}), func(what string) {
			if what != "restart" {
				t.Fatalf("the script awaits %q", what)
			}
			s.env.Restart(t)
			restarts++
		})
		if restarts != 1 {
			t.Errorf("the server restarted %d times", restarts)
		}
		res.requireAllPassed(t, "resume/disconnected-by-the-restart", "resume/reconnected-to-the-same-url",
			"resume/restarted-mid-reply", "resume/before-restart-in-order", "resume/subscribe-again.status",
			"resume/subscription/replay_done", "resume/subscription/replay-then-live-in-order",
			"resume/subscription/pushed-before-are-replayed-copies", "resume/every-seq-once", "resume/completed",
			"resume/started-then-resumed", "resume/resumed-after-the-last-delta-sent", "resume/deltas-after-resuming",
			"resume/deltas-make-completed-text", "resume/stored-reply", "resume/deltas-make-stored-reply",
			"resume/run_get", "resume/chat.message-event-is-stored-reply")
	})
	t.Run("fail", func(t *testing.T) {
		s := realtimeStart(t, testdb.Dialects(t)[0], 30*time.Millisecond)
		fake := realtimeFakeOpenAI(t)
		res := realtimeRun(t, node, "realtime-restart.mjs", s.vars(map[string]string{
			"GLOW_MODE":       "fail",
			"GLOW_OPENAI_URL": fake.url,
		}), func(what string) {
			if what != "restart" {
				t.Fatalf("the script awaits %q", what)
			}
			s.env.Restart(t)
		})
		res.requireAllPassed(t, "fail/model-is-default", "fail/disconnected-by-the-restart",
			"fail/reconnected-to-the-same-url", "fail/restarted-mid-reply", "fail/before-restart-in-order",
			"fail/subscription/replay_done", "fail/subscription/replay-then-live-in-order", "fail/every-seq-once",
			"fail/failed", "fail/error-says-the-server-restarted", "fail/run_get", "fail/no-completed",
			"fail/started-once", "fail/failed-is-the-last-run-event", "fail/nothing-stored", "fail/deltas-before-failing")
		if got := fake.models(); len(got) != 1 || got[0] != "fake-model" {
			t.Errorf("the model server was asked for %q; want one stream of fake-model, not retried after the restart", got)
		}
	})
}

// realtimeFake is an OpenAI-compatible server that streams "word0 word1 …" slowly.
type realtimeFake struct {
	url string

	mu    sync.Mutex
	asked []string // the model of each request
}

func (f *realtimeFake) models() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

// realtimeFakeOpenAI starts the fake on 127.0.0.1 until t ends. A stream goes on for some
// 10 s unless its client goes away first.
func realtimeFakeOpenAI(t *testing.T) *realtimeFake {
	t.Helper()
	f := &realtimeFake{}
	stop, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		var body struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.asked = append(f.asked, body.Model)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		flusher := w.(http.Flusher)
		for i := 0; i < 300; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-stop.Done():
				return
			case <-time.After(30 * time.Millisecond):
			}
			fmt.Fprint(w, realtimeChunk(fmt.Sprintf("word%d ", i), ""))
			flusher.Flush()
		}
		fmt.Fprint(w, realtimeChunk("", "stop"))
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(cancel) // runs first: no stream outlives the test
	f.url = srv.URL + "/v1"
	return f
}

// realtimeChunk is one chat.completion.chunk as a server-sent event.
func realtimeChunk(content, finish string) string {
	choice := map[string]any{"index": 0, "delta": map[string]any{"content": content}}
	if finish != "" {
		choice["finish_reason"] = finish
	}
	b, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
		"choices": []any{choice}})
	return "data: " + string(b) + "\n\n"
}

// realtimeRun runs a script like nodeRun does, and answers its {"await": what} lines: it
// calls act(what) (which may fail the test) and then writes a line to the script's stdin.
func realtimeRun(t *testing.T, node, script string, vars map[string]string, act func(what string)) *nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), realtimeScriptTimeout)
	defer cancel()
	cmd := nodeCommand(ctx, node, script, vars)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	var outMu sync.Mutex
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	dump := func() string {
		outMu.Lock()
		defer outMu.Unlock()
		return fmt.Sprintf("--- stdout\n%s--- stderr\n%s", stdout.String(), stderr.String())
	}

	r := &nodeResult{script: script, checks: map[string]nodeCheck{}}
	var summary *nodeCheck
	var broken error
	sc := bufio.NewScanner(stdoutPipe)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		outMu.Lock()
		stdout.Write(line)
		stdout.WriteByte('\n')
		outMu.Unlock()
		if len(line) == 0 || broken != nil {
			continue
		}
		var c struct {
			nodeCheck
			Await string `json:"await"`
		}
		if err := json.Unmarshal(line, &c); err != nil {
			broken = fmt.Errorf("%s printed a line that is not JSON: %q", script, line)
			continue
		}
		switch {
		case c.Await != "":
			t.Logf("%s awaits %q after %s", script, c.Await, time.Since(start).Round(time.Millisecond))
			if act == nil {
				broken = fmt.Errorf("%s awaits %q, which this test does not do", script, c.Await)
				continue
			}
			act(c.Await)
			if _, err := io.WriteString(stdin, "go "+c.Await+"\n"); err != nil {
				broken = fmt.Errorf("write to %s: %v", script, err)
			}
		case c.Summary != nil:
			summary = &c.nodeCheck
		case summary != nil:
			broken = fmt.Errorf("%s printed a check after its summary: %s", script, line)
		default:
			if _, dup := r.checks[c.Check]; dup {
				broken = fmt.Errorf("%s reported check %q twice", script, c.Check)
				continue
			}
			r.checks[c.Check] = c.nodeCheck
			r.total++
			if !c.OK {
				r.failed = append(r.failed, c.nodeCheck)
			}
		}
	}
	_ = stdin.Close()
	err = cmd.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s%s\n%s", script, realtimeScriptTimeout, r.failures(), dump())
	}
	if broken != nil {
		t.Fatalf("%v\n%s", broken, dump())
	}
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v\n%s", script, err, dump())
	}
	t.Logf("%s: %d checks, %d failed, exit %d, %s", script, r.total, len(r.failed), code, elapsed.Round(time.Millisecond))
	if code == 2 || summary == nil {
		t.Fatalf("%s broke (exit %d)%s\n%s", script, code, r.failures(), dump())
	}
	if summary.Summary.Checks != r.total || summary.Summary.Failed != len(r.failed) || (code == 0) != (len(r.failed) == 0) {
		t.Fatalf("%s: summary %+v and exit %d disagree with %d checks, %d failed\n%s",
			script, *summary.Summary, code, r.total, len(r.failed), dump())
	}
	if len(r.failed) > 0 || os.Getenv("GLOW_TEST_NODE_OUTPUT") == "1" {
		t.Log(dump())
	}
	return r
}

// TestRealtimeConnectionStateRecovery: socket.io's connection state recovery with the
// official client. A dropped connection that comes back within the window recovers its
// socket (same id, socket.recovered) and the events pushed meanwhile, once each; one that
// drops in the middle of a system.subscribe replay recovers and then gets its profile's
// live events again.
func TestRealtimeConnectionStateRecovery(t *testing.T) {
	node := nodeRequire(t)
	s := realtimeStart(t, testdb.Dialects(t)[0], 5*time.Millisecond)
	res := realtimeRun(t, node, "realtime-recovery.mjs", s.vars(nil), nil)
	res.requireAllPassed(t, "missed/recovered", "missed/same-id", "missed/every-event-once",
		"cut-replay/round-0/live-events-arrive", "cut-replay/round-1/live-events-arrive",
		"cut-replay/round-2/live-events-arrive", "cut-replay/recovered")
}
