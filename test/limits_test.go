package test

// Limits and keep-alive: oversized and malformed socket.io traffic ends the offending
// connection and nothing else; HTTP bodies over the limit get 413; the SSE stream keeps
// itself alive, resumes after Last-Event-ID without a gap or a duplicate and refuses other
// profiles' topics; the metrics snapshot reaches the level 0 sockets that follow it, and no
// one else.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// limitsMaxBytes is the servers' MaxBodyBytes: the largest HTTP body and socket.io message.
const limitsMaxBytes = 8 << 10

// TestLimitsOversizedSocketMessage: over websocket, long-polling, and polling upgraded to
// websocket, a message under MaxBodyBytes is answered and one over it closes the sender's
// connection. The client sees "transport close" with the websocket close code 1009 (Message
// Too Big, no reason text), or "transport error" on long-polling, whose POST gets 413. The
// server drops the sender's socket (its profile turns inactive), another profile's socket
// keeps getting answers, the sender can connect again, and HTTP still answers.
func TestLimitsOversizedSocketMessage(t *testing.T) {
	node := nodeRequire(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{
		MaxBodyBytes: limitsMaxBytes, PresenceGrace: 100 * time.Millisecond})
	senders := map[string]map[string]string{}
	for _, mode := range []string{"websocket", "polling", "upgrade"} {
		name := "limits-sender-" + mode
		senders[mode] = map[string]string{"name": name, "token": env.Token(t, name, "learner", "limits")}
	}
	sendersJSON, _ := json.Marshal(senders)
	res := nodeRun(t, node, "limits-oversize.mjs", map[string]string{
		"GLOW_URL":             env.URL,
		"GLOW_MAX_BODY_BYTES":  strconv.Itoa(limitsMaxBytes),
		"GLOW_TOKEN_ADMIN":     env.Admin,
		"GLOW_TOKEN_BYSTANDER": env.Token(t, "limits-bystander", "learner", "limits"),
		"GLOW_SENDERS":         string(sendersJSON),
	})
	var want []string
	for _, mode := range []string{"websocket", "polling", "upgrade"} {
		for _, c := range []string{"engine-transport", "sender-active", "under-limit/answered", "under-limit/still-connected",
			"over-limit/not-answered", "over-limit/closed", "over-limit/sender-disconnected", "server-dropped-sender",
			"bystander/system.health", "bystander/still-connected", "sender-reconnects"} {
			want = append(want, mode+"/"+c)
		}
	}
	res.requireAllPassed(t, append(want, "bystander/one-connection")...)
	for _, mode := range []string{"websocket", "polling"} {
		t.Logf("%s: the client saw %s", mode, res.checks[mode+"/over-limit/closed"].Detail)
	}

	limitsRequireHealthy(t, env)
	limitsWaitSockets(t, env, 0)
}

// TestLimitsMalformedPackets: raw Engine.IO over a websocket (gorilla/websocket), after a
// proper handshake and CONNECT, sends packets a socket.io client never would. Those the
// parser cannot read (broken JSON, unknown Engine.IO or socket.io packet types, an event
// that is not an array, an empty message, binary garbage, a binary event whose attachment
// never comes, …) end that connection: the server closes it without a close frame (the
// client reads 1006). A second CONNECT is ignored: the connection keeps its one socket
// (fault M, docs/SOCKETIO.md). Those it can read but that are no operation are answered as
// such: an event whose name is not a string gets the 404 "unknown event" ack,
// an argument nested thousands deep a 422. Over long-polling, a broken packet ends the
// session at once when a poll is waiting (as a real client's is), otherwise at the ping
// timeout. Throughout, a socket.io client of another profile keeps getting answers, HTTP
// answers, and no socket is left behind.
func TestLimitsMalformedPackets(t *testing.T) {
	const ignored = "no ack to the malformed call" // and the call after it answered 200
	// Pings every 300 ms, so the raw connections answer some; a pong may take its time (a
	// busy machine delays the healthy client's), since a lost pong is not what this tests.
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{
		MaxBodyBytes: limitsMaxBytes, PingInterval: 300 * time.Millisecond, PingTimeout: 2 * time.Second})
	healthy := env.Dial(t, env.Token(t, "limits-healthy", "learner", "limits"))
	token := env.Token(t, "limits-raw", "learner", "limits")
	limitsWaitSockets(t, env, 1)

	cases := []struct {
		name   string
		frames []any  // string: a text message; []byte: a binary one
		want   string // "closed", ignored, or the status of the ack to the malformed call (id 1)
	}{
		{"broken JSON", []any{`42["x"`}, "closed"},
		{"broken JSON with an ack id", []any{`421["system.health",{}`}, "closed"},
		{"unknown Engine.IO packet type", []any{`9hello`}, "closed"},
		{"unknown socket.io packet type", []any{`47["system.health"]`}, "closed"},
		{"event that is not an array", []any{`42{"event":"system.health"}`}, "closed"},
		{"event with no name", []any{`421[]`}, "closed"},
		{"socket.io packet with no type", []any{`4`}, "closed"},
		{"empty message", []any{``}, "closed"},
		{"binary garbage", []any{[]byte{0xff, 0x00, 0x42}}, "closed"},
		{"attachment announced, text sent", []any{`451-["system.health",{"_placeholder":true,"num":0}]`, `421["system.health",{}]`}, "closed"},
		{"event to an unknown namespace", []any{`42/nope,["system.health",{}]`}, "closed"},
		{"second CONNECT", []any{`40`}, ignored},
		{"ack id out of range", []any{`4299999999999999999999999["system.health",{}]`}, "closed"},
		{"not JSON: NaN", []any{`42["system.health",NaN]`}, "closed"},
		{"event name not a string", []any{`421[1,2]`}, "404"},
		{"argument nested 3000 deep", []any{`421["system.health",` + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + `]`}, "400"}, // refused at the door: deeper than dispatch.MaxDepth
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			conn := limitsRawSocket(t, env, token)
			defer conn.Close()
			for _, f := range c.frames {
				var err error
				switch v := f.(type) {
				case string:
					err = conn.WriteMessage(websocket.TextMessage, []byte(v))
				case []byte:
					err = conn.WriteMessage(websocket.BinaryMessage, v)
				}
				if err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			// Then a proper call, with ack id 7: answered 200 if the connection survived.
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`427["system.health",{}]`))
			got := limitsReadOutcome(t, conn)
			if got != c.want {
				t.Fatalf("after %s: %s, want %s", limitsShort(fmt.Sprintf("%q", c.frames)), got, c.want)
			}
			conn.Close()
			limitsRequireHealthy(t, env)
			if status, _ := healthy.Call(t, "system.health", map[string]any{}); status != http.StatusOK {
				t.Fatalf("the healthy socket's system.health: %d", status)
			}
			limitsWaitSockets(t, env, 1)
		})
	}

	if status, _ := healthy.Call(t, "system.health", map[string]any{}); status != http.StatusOK {
		t.Fatalf("the healthy socket's system.health: %d", status)
	}
}

// TestLimitsMalformedPolling: over long-polling (Engine.IO driven by hand), a broken
// socket.io packet ends the session; the POST that carried it gets 429. With a poll waiting,
// as a real client always has, the socket is dropped at once; with none, the library waits for a poll
// to carry its CLOSE packet and drops the socket at the ping timeout (or its 30 s close
// timeout, whichever comes first). Either way HTTP keeps answering and another profile's
// socket keeps working.
func TestLimitsMalformedPolling(t *testing.T) {
	for _, waiting := range []bool{true, false} {
		t.Run(fmt.Sprintf("poll_waiting_%t", waiting), func(t *testing.T) {
			opts := &server.Options{MaxBodyBytes: limitsMaxBytes}
			if !waiting {
				// Short pings bound how long the closing session lingers. (With them, a
				// waiting poll would be answered by the next ping, hence two servers.)
				opts.PingInterval, opts.PingTimeout = 300*time.Millisecond, 300*time.Millisecond
			}
			env := testserver.Start(t, testdb.Dialects(t)[0], opts)
			healthy := env.Dial(t, env.Token(t, "limits-healthy", "learner", "limits"))
			p := limitsPollingSession(t, env, env.Token(t, "limits-polling", "learner", "limits"))
			limitsWaitSockets(t, env, 2)
			var polled chan string
			if waiting {
				polled = make(chan string, 1)
				go func() { polled <- p.get() }()
				time.Sleep(100 * time.Millisecond) // the poll is waiting
			}
			start := time.Now()
			status := p.post(`42["x"`)
			if status != http.StatusTooManyRequests {
				t.Errorf("the POST carrying the broken packet got %d, want 429", status)
			}
			limitsWaitSockets(t, env, 1)
			took := time.Since(start)
			t.Logf("the socket was dropped after %s", took.Round(time.Millisecond))
			if waiting {
				if took > time.Second {
					t.Errorf("with a poll waiting, the socket was dropped only after %s", took)
				}
				// The waiting poll is told: the library sends it CLOSE. (v3.0.2 sent that CLOSE
				// to a write queue it had just closed, and left the poll to the client's own
				// timeout; see "D" in docs/SOCKETIO.md.)
				if got := <-polled; got != `200 "1"` {
					t.Errorf("the waiting poll got %s, want 200 \"1\" (CLOSE)", got)
				}
			}
			limitsRequireHealthy(t, env)
			if status, _ := healthy.Call(t, "system.health", map[string]any{}); status != http.StatusOK {
				t.Fatalf("the healthy socket's system.health: %d", status)
			}
		})
	}
}

// TestLimitsHTTPBody: a body of exactly MaxBodyBytes is served, one byte more is refused
// with a 413 problem document naming the limit. (The limit itself is tested in api/; this
// pins the boundary with the size the socket.io tests use.)
func TestLimitsHTTPBody(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{MaxBodyBytes: limitsMaxBytes})
	body := func(n int) string {
		b := `{"search":"limits"}`
		return b + strings.Repeat(" ", n-len(b)) // trailing whitespace keeps it JSON
	}
	if res := env.Post(t, env.Admin, "/persona/search", body(limitsMaxBytes)); res.Status != http.StatusOK {
		t.Fatalf("a body of exactly %d bytes: %d %s", limitsMaxBytes, res.Status, res.Body)
	}
	res := env.Post(t, env.Admin, "/persona/search", body(limitsMaxBytes+1))
	p := map[string]any{}
	_ = json.Unmarshal(res.Body, &p)
	if res.Status != http.StatusRequestEntityTooLarge || res.Header.Get("Content-Type") != "application/problem+json" ||
		p["status"] != float64(http.StatusRequestEntityTooLarge) || !strings.Contains(fmt.Sprint(p["detail"]), strconv.Itoa(limitsMaxBytes)) {
		t.Fatalf("a body of %d bytes: %d %s %s", limitsMaxBytes+1, res.Status, res.Header.Get("Content-Type"), res.Body)
	}
}

// TestLimitsStream: GET /system/stream follows the caller's profile topic: it starts with
// replay_done, then sends a ": keep-alive" comment every StreamKeepAlive and the topic's
// system.* events live (id = seq; the persona.* events of the same topic are left out). A
// client that reconnects with Last-Event-ID gets exactly the system.* events it missed, in
// order, then replay_done, then live ones: no gap, no duplicate, checked against the event
// log. Another profile's topic and system/metrics are refused with 403 (a level 0 caller
// may follow any profile), an unknown topic with 422.
func TestLimitsStream(t *testing.T) {
	keepAlive := 150 * time.Millisecond
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{StreamKeepAlive: keepAlive})
	learner := env.Token(t, "limits-stream", "learner", "limits")
	other := env.Token(t, "limits-stream-other", "learner", "limits")
	learnerID := presenceProfileID(t, env, "limits-stream")
	otherID := presenceProfileID(t, env, "limits-stream-other")
	topic := events.ProfileTopic(learnerID)
	call := func(path string) {
		t.Helper()
		if res := env.Post(t, learner, path, map[string]any{}); res.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}

	// Live, with keep-alives.
	s := limitsOpenStream(t, env, learner, "", "")
	done := s.next(t, 5*time.Second)
	if done.event != "replay_done" || done.data["topic"] != topic || done.data["replayed"] != float64(0) {
		t.Fatalf("first frame: %+v", done)
	}
	var pings []time.Time
	for len(pings) < 3 {
		f := s.next(t, 2*time.Second)
		if f.comment != " keep-alive" {
			t.Fatalf("an idle stream sent %+v", f)
		}
		pings = append(pings, f.at)
	}
	for i := 1; i < len(pings); i++ {
		if gap := pings[i].Sub(pings[i-1]); gap < keepAlive/2 || gap > 4*keepAlive {
			t.Errorf("keep-alive comments %s apart, want about %s", gap, keepAlive)
		}
	}
	call("/system/session")
	call("/persona/search")
	call("/system/session")
	var seen []int64
	for len(seen) < 4 { // started and completed of both system.session calls
		if f := s.next(t, 5*time.Second); f.comment == "" {
			seen = append(seen, limitsRequireEvent(t, f, topic))
		}
	}
	lastID := seen[len(seen)-1]
	s.close()

	// Missed while away: three calls, with a persona call between.
	call("/system/session")
	call("/persona/search")
	call("/system/session")
	call("/system/session")
	env.Server.Events.Sync() // a call's completed event may be stored just after its answer

	// Back with Last-Event-ID: the missed system.* events, replay_done, then live ones.
	s = limitsOpenStream(t, env, learner, "", strconv.FormatInt(lastID, 10))
	var replayed []int64
	for {
		f := s.next(t, 5*time.Second)
		if f.comment != "" {
			continue
		}
		if f.event == "replay_done" {
			if f.data["since"] != float64(lastID) || f.data["truncated"] != false {
				t.Fatalf("replay_done: %+v", f.data)
			}
			break
		}
		replayed = append(replayed, limitsRequireEvent(t, f, topic))
	}
	call("/system/session")
	live := replayed
	for len(live) < len(replayed)+2 {
		if f := s.next(t, 5*time.Second); f.comment == "" {
			live = append(live, limitsRequireEvent(t, f, topic))
		}
	}
	s.close()
	want := limitsLoggedSeqs(t, env, topic, lastID, "system.")
	if len(replayed) != 6 || fmt.Sprint(live) != fmt.Sprint(want) {
		t.Fatalf("after Last-Event-ID %d: replayed %v then live %v; the log's system.* events after it are %v",
			lastID, replayed, live[len(replayed):], want)
	}
	all := append(seen, live...)
	for i := 1; i < len(all); i++ {
		if all[i] <= all[i-1] {
			t.Fatalf("ids not increasing (a duplicate or a step back): %v", all)
		}
	}

	// Topics the caller may not follow.
	for _, tc := range []struct {
		name, token, topic string
		status             int
	}{
		{"another profile's topic", learner, events.ProfileTopic(otherID), http.StatusForbidden},
		{"the metrics topic", learner, events.MetricsTopic, http.StatusForbidden},
		{"the other profile on the learner's topic", other, topic, http.StatusForbidden},
		{"an unknown topic", learner, "nonsense/" + learnerID.String(), http.StatusUnprocessableEntity},
		{"level 0 on any profile's topic", env.Admin, topic, http.StatusOK},
	} {
		status, ctype, body := limitsStreamStatus(t, env, tc.token, tc.topic)
		if status != tc.status {
			t.Errorf("%s: %d %s %s, want %d", tc.name, status, ctype, body, tc.status)
		} else if status >= 400 && (ctype != "application/problem+json" || !strings.Contains(body, fmt.Sprintf(`"status":%d`, status))) {
			t.Errorf("%s: %d %s %s: not a problem document", tc.name, status, ctype, body)
		}
	}
}

// TestLimitsMetrics: an admin socket that subscribes to system/metrics gets a system.metrics
// event every MetricsInterval, each valid against MetricsSnapshot, numbered one after the
// other, counting the sockets and profiles online; an admin socket that did not subscribe
// gets none, and none come after system.unsubscribe. An editor's and a learner's subscribe
// are refused with 403 and bring them nothing.
func TestLimitsMetrics(t *testing.T) {
	interval := 200 * time.Millisecond
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{MetricsInterval: interval})
	contract := env.Server.Dispatch.Contract()
	admin := env.Dial(t, env.Admin)
	idle := env.Dial(t, env.Admin)
	editor := env.Dial(t, env.Token(t, "limits-editor", "editor", "limits"))
	learner := env.Dial(t, env.Token(t, "limits-learner", "learner", "limits"))
	subscribe := map[string]any{"topics": []any{map[string]any{"topic": events.MetricsTopic}}}

	status, body := admin.Call(t, "system.subscribe", subscribe)
	if status != http.StatusOK || !strings.Contains(string(body), `"topic":"system/metrics"`) {
		t.Fatalf("admin system.subscribe: %d %s", status, body)
	}
	for who, sock := range map[string]*testserver.Client{"editor": editor, "learner": learner} {
		status, body := sock.Call(t, "system.subscribe", subscribe)
		if status != http.StatusForbidden || !strings.Contains(string(body), `"status":403`) {
			t.Errorf("%s system.subscribe to %s: %d %s, want 403", who, events.MetricsTopic, status, body)
		}
	}

	var snaps []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for len(snaps) < 4 && time.Now().Before(deadline) {
		snaps = snaps[:0]
		for _, ev := range admin.Events() {
			if ev.Name == "system.metrics" {
				snaps = append(snaps, providerValidate(t, contract, "MetricsSnapshot", ev.Data))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(snaps) < 4 {
		t.Fatalf("%d system.metrics events within 5s, want 4 or more at one every %s", len(snaps), interval)
	}
	var prevAt time.Time
	for i, s := range snaps {
		at, err := time.Parse(time.RFC3339Nano, s["at"].(string))
		if err != nil {
			t.Fatalf("snapshot %d: at %v", i, s["at"])
		}
		if s["topic"] != events.MetricsTopic || s["node"] == "" || s["sockets"].(float64) < 4 || s["profiles_online"].(float64) < 3 {
			t.Errorf("snapshot %d: %v (4 sockets of 3 profiles are open)", i, s)
		}
		if i > 0 {
			if s["seq"] != snaps[i-1]["seq"].(float64)+1 {
				t.Errorf("snapshot %d: seq %v after %v", i, s["seq"], snaps[i-1]["seq"])
			}
			if gap := at.Sub(prevAt); gap < interval/2 || gap > 5*interval {
				t.Errorf("snapshots %s apart, want about %s", gap, interval)
			}
		}
		prevAt = at
	}

	status, body = admin.Call(t, "system.unsubscribe", map[string]any{"topics": []string{events.MetricsTopic}})
	if status != http.StatusOK {
		t.Fatalf("system.unsubscribe: %d %s", status, body)
	}
	count := func(c *testserver.Client) int {
		n := 0
		for _, ev := range c.Events() {
			if ev.Name == "system.metrics" {
				n++
			}
		}
		return n
	}
	before := count(admin)
	time.Sleep(3 * interval)
	if after := count(admin); after != before {
		t.Errorf("%d system.metrics events after system.unsubscribe", after-before)
	}
	for who, sock := range map[string]*testserver.Client{"admin that did not subscribe": idle, "editor": editor, "learner": learner} {
		if n := count(sock); n > 0 {
			t.Errorf("the %s got %d system.metrics events", who, n)
		}
	}
}

// TestLimitsWriteTimeout: a client that stops reading is disconnected once a write to it has
// waited WriteTimeout — a websocket and an SSE stream of a learner whose calls push more
// than the connections can hold — while a socket of the same learner that reads gets every
// event, and HTTP keeps answering. The stalled SSE stream ends (its client, reading at last,
// finds the end of the stream after the part that was on its way) rather than waiting for
// its reader.
func TestLimitsWriteTimeout(t *testing.T) {
	const calls, bodyBytes = 40, 256 << 10 // each call pushes its body twice over: ~20 MB per client
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{WriteTimeout: 300 * time.Millisecond})
	token := env.Token(t, "limits-stall", "learner", "limits")
	healthy := env.Dial(t, token)

	// Both stalled clients read through a small receive buffer and then not at all.
	dial := limitsSmallBufferDial()
	stalled := limitsRawSocketWith(t, &websocket.Dialer{NetDialContext: dial}, env, token)
	defer stalled.Close()
	sse := &http.Client{Transport: &http.Transport{DialContext: dial}}
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/profile/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := sse.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /profile/stream: %v %v", res, err)
	}
	defer res.Body.Close()
	limitsWaitSockets(t, env, 2)

	body := bytes.Repeat([]byte("x"), bodyBytes) // not JSON: 400, with the body in the started event
	for range calls {
		if r := env.Post(t, token, "/profile/context", body); r.Status != http.StatusBadRequest {
			t.Fatalf("profile.context: %d %s", r.Status, limitsShort(string(r.Body)))
		}
	}
	limitsWaitSockets(t, env, 1)
	failed := func() (n int) {
		for _, ev := range healthy.Events() {
			if ev.Name == "profile.context.failed" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for failed() < calls {
		if time.Now().After(deadline) {
			t.Fatalf("the reading socket got %d of %d profile.context.failed", failed(), calls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	limitsRequireHealthy(t, env)

	// The SSE stream: what was under way arrives, then the end, well before all was sent.
	frames, ended := 0, make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 4*bodyBytes)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: profile.context.") {
				frames++
			}
		}
		ended <- sc.Err()
	}()
	select {
	case <-ended:
		if frames >= 2*calls {
			t.Fatalf("the stalled stream got all %d events: its writes did not time out", frames)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled stream did not end")
	}
}

// limitsSmallBufferDial dials TCP with a 4 KiB receive buffer, so that a client that does not
// read soon makes the server's writes wait.
func limitsSmallBufferDial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	return d.DialContext
}

// limitsRequireHealthy checks that HTTP still answers.
func limitsRequireHealthy(t *testing.T, env *testserver.Env) {
	t.Helper()
	if res := env.Post(t, "", "/system/health", `{}`); res.Status != http.StatusOK {
		t.Fatalf("system.health over HTTP: %d %s", res.Status, res.Body)
	}
}

// limitsWaitSockets waits until the server has n sockets.
func limitsWaitSockets(t *testing.T, env *testserver.Env, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for env.Server.WS.Sockets() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets on the server, want %d", env.Server.WS.Sockets(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// limitsRawSocket opens a websocket to socket.io and does the handshake by hand: the
// Engine.IO OPEN packet, then a socket.io CONNECT with the token and its acceptance.
func limitsRawSocket(t *testing.T, env *testserver.Env, token string) *websocket.Conn {
	t.Helper()
	return limitsRawSocketWith(t, websocket.DefaultDialer, env, token)
}

func limitsRawSocketWith(t *testing.T, dialer *websocket.Dialer, env *testserver.Env, token string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(env.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := dialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, open, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(open), `0{`) || !strings.Contains(string(open), `"sid"`) {
		t.Fatalf("Engine.IO open: %q %v", open, err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`40{"token":"Bearer `+token+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, ack, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(ack), `40{"sid"`) {
		t.Fatalf("socket.io CONNECT: %q %v", ack, err)
	}
	return conn
}

// limitsReadOutcome reads until the acks of the malformed call (id 1) and of the health
// call (id 7), or the end of the connection. It returns "closed", or, when the health call
// was answered 200, the status of the ack to the malformed call. The two calls run at once,
// so their acks may come in either order. Engine.IO pings are answered; events are skipped.
func limitsReadOutcome(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	ackStatus := func(msg string) string {
		var args []struct {
			Status int `json:"status"`
		}
		if err := json.Unmarshal([]byte(msg[3:]), &args); err != nil || len(args) != 1 {
			return "unreadable ack " + limitsShort(msg)
		}
		return strconv.Itoa(args[0].Status)
	}
	first, health := "", ""
	for first == "" || health == "" {
		_, m, err := conn.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				if health == "" {
					return "no answer, connection open"
				}
				break
			}
			t.Logf("the connection ended: %v", err)
			return "closed"
		}
		msg := string(m)
		switch {
		case msg == "2":
			_ = conn.WriteMessage(websocket.TextMessage, []byte("3"))
		case strings.HasPrefix(msg, "431["):
			first = ackStatus(msg)
		case strings.HasPrefix(msg, "437["):
			health = ackStatus(msg)
		}
	}
	switch {
	case health != "200":
		return "the health call was answered " + health
	case first == "":
		return "no ack to the malformed call"
	}
	return first
}

// limitsShort cuts a long text for a message.
func limitsShort(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// limitsPolling is a long-polling Engine.IO session, driven by hand.
type limitsPolling struct {
	t   *testing.T
	url string
}

func limitsPollingSession(t *testing.T, env *testserver.Env, token string) *limitsPolling {
	t.Helper()
	base := env.URL + "/socket.io/?EIO=4&transport=polling"
	res, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var open struct {
		Sid string `json:"sid"`
	}
	if len(b) < 2 || b[0] != '0' || json.Unmarshal(b[1:], &open) != nil || open.Sid == "" {
		t.Fatalf("polling handshake: %s", b)
	}
	p := &limitsPolling{t: t, url: base + "&sid=" + url.QueryEscape(open.Sid)}
	if status := p.post(`40{"token":"Bearer ` + token + `"}`); status != http.StatusOK {
		t.Fatalf("polling CONNECT: %d", status)
	}
	if got := p.get(); !strings.HasPrefix(got, `200 "40{`) {
		t.Fatalf("polling CONNECT ack: %s", got)
	}
	return p
}

func (p *limitsPolling) post(payload string) int {
	res, err := http.Post(p.url, "text/plain;charset=UTF-8", strings.NewReader(payload))
	if err != nil {
		p.t.Errorf("polling POST: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func (p *limitsPolling) get() string {
	res, err := (&http.Client{Timeout: 2 * time.Second}).Get(p.url)
	if err != nil {
		return err.Error()
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return fmt.Sprintf("%d %q", res.StatusCode, b)
}

// limitsFrame is one server-sent event, or a comment.
type limitsFrame struct {
	comment   string // the text after ":", for a comment line
	id, event string
	data      map[string]any
	at        time.Time
}

// limitsStream is an open GET /system/stream.
type limitsStream struct {
	frames chan limitsFrame
	cancel context.CancelFunc
}

func limitsOpenStream(t *testing.T, env *testserver.Env, token, topic, lastEventID string) *limitsStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := env.URL + "/system/stream"
	if topic != "" {
		u += "?topic=" + url.QueryEscape(topic)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("GET /system/stream: %d %s", res.StatusCode, b)
	}
	s := &limitsStream{frames: make(chan limitsFrame, 256), cancel: cancel}
	t.Cleanup(s.close)
	go func() {
		defer res.Body.Close()
		defer close(s.frames)
		sc := bufio.NewScanner(res.Body)
		var f limitsFrame
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if f.event != "" || data != "" {
					_ = json.Unmarshal([]byte(data), &f.data)
					f.at = time.Now()
					s.frames <- f
				}
				f, data = limitsFrame{}, ""
			case strings.HasPrefix(line, ":"):
				s.frames <- limitsFrame{comment: line[1:], at: time.Now()}
			case strings.HasPrefix(line, "id: "):
				f.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				f.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data += line[6:]
			}
		}
	}()
	return s
}

func (s *limitsStream) next(t *testing.T, wait time.Duration) limitsFrame {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatal("the stream ended")
		}
		return f
	case <-time.After(wait):
		t.Fatalf("nothing on the stream within %s", wait)
	}
	return limitsFrame{}
}

func (s *limitsStream) close() { s.cancel() }

// limitsRequireEvent checks an event frame of the topic (id = seq, a system.* name) and
// returns its id.
func limitsRequireEvent(t *testing.T, f limitsFrame, topic string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(f.id, 10, 64)
	if err != nil || !strings.HasPrefix(f.event, "system.") || f.data["topic"] != topic || f.data["seq"] != float64(id) {
		t.Fatalf("event frame: %+v", f)
	}
	return id
}

// limitsLoggedSeqs lists the numbers of the topic's events after since whose names start
// with prefix, from the event log.
func limitsLoggedSeqs(t *testing.T, env *testserver.Env, topic string, since int64, prefix string) []int64 {
	t.Helper()
	evs, err := env.Server.Events.After(context.Background(), topic, since, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, ev := range evs {
		if strings.HasPrefix(ev.Name, prefix) {
			out = append(out, ev.Seq)
		}
	}
	return out
}

// limitsStreamStatus opens GET /system/stream?topic= and returns its status; a stream that
// opens is closed at once.
func limitsStreamStatus(t *testing.T, env *testserver.Env, token, topic string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/system/stream?topic="+url.QueryEscape(topic), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body []byte
	if res.StatusCode != http.StatusOK {
		body, _ = io.ReadAll(res.Body)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(body)
}
