package ws_test

// The tests of contain.go, and of the library's faults (see docs/SOCKETIO.md): one or more
// per fault that glow contains on socket.io v3.0.6 (C, E, H here; I and M in guard_test.go),
// each failing if its fault comes back, with a negative control that shows the fault still happens without the containment
// (switched off through ws.SetContainment, a test hook, or the library driven directly) and
// fails once the library fixes it; and regression tests for the faults of v3.0.2 that v3.0.6
// fixed (A1, A2, B, D1, F, G), which fail if one comes back.
//
// The leak tests measure this process, which hosts the server, while a separate Node process
// (test/node/cycles.mjs, the official socket.io-client) makes the connections, so that no
// client goroutine, socket or allocation is counted. They need node on PATH and
// `npm ci --prefix test/node` (they skip without, unless GLOW_TEST_REQUIRE_NODE=1, as in CI).
//
// Under -race (or -short) the cycle counts are cut (see scaled); the full-size runs are the
// plain `go test ./ws/`.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/handlers"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/presence"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
	"github.com/glowhq/glow/ws"
)

// ---------------------------------------------------------------------------------------
// A1, A2, D1 (and F, G): no growth across connect/close cycles

// TestContainA1A2WebsocketCycles2000 is the acceptance test of the leak fix: "no goroutine or
// heap growth after 2 000 socket connect/close cycles". Exactly 2 000 websocket connections
// are opened and closed by the client, after a warm-up; the server must then hold no more
// goroutines, sockets or heap than before, within the bounds of cycleBounds.
func TestContainA1A2WebsocketCycles2000(t *testing.T) {
	node := needNode(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], cycleServer())
	r := measureCycles(t, env.Server.WS, func(n int) cyclesResult {
		return node.cycles(t, env.URL, env.Admin, "websocket", n, nil)
	}, scaled(2000, 300))
	r.assertNoFailures(t)
	r.assertBounds(t, cycleBounds(r.cycles, r.timersLeft()))
}

// TestContainA1A2CyclesAcrossTransports runs the same measurement for every other way a
// connection ends: long-polling, polling upgraded to websocket, server-side kicks (Revoke of
// the session; a connection the server closes at once, which also meets fault E's race now
// and then) and refused handshakes. After every run the server must hold no connection, no
// socket and no session (waitIdle). Every upgrade must succeed (v3.0.2 lost a probe in about
// 1 in 2 500: fault F), and under -race the library must not race with itself when a client
// drops a poll request (fault G of v3.0.2, on the kick-revoke-polling cycles).
func TestContainA1A2CyclesAcrossTransports(t *testing.T) {
	node := needNode(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], cycleServer())
	srv := env.Server.WS
	session := sessionOf(t, env.Server.Store, env.Admin)
	revoke := func() { srv.Revoke(session) }
	closeConns := func() { srv.CloseConnections() }

	for _, tc := range []struct {
		name, mode string
		cycles     int
		kick       func()
	}{
		{"polling", "polling", 2000, nil},
		{"upgrade", "upgrade", 1000, nil},
		{"kick-revoke-websocket", "kick", 1000, revoke},
		{"kick-revoke-polling", "kick-polling", 500, revoke},
		{"kick-close-websocket", "kick", 1000, closeConns},
		{"refused", "refused", 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := measureCycles(t, srv, func(n int) cyclesResult {
				return node.cycles(t, env.URL, env.Admin, tc.mode, n, tc.kick)
			}, scaled(tc.cycles, 150))
			r.assertNoFailures(t)
			r.assertBounds(t, cycleBounds(r.cycles, r.timersLeft()))
		})
	}
}

// TestContainD1PollingServerCloses guards against fault D1 of v3.0.2: when the server closed a
// long-polling connection (here: a disconnect that closes the connection), the library's
// utils.Timer.Stop sometimes missed its goroutine, which then waited forever (2.5–3.8 % of
// the connections; ~50 % under -race). The goroutines of the library's timers are counted
// apart: after the cycles there may be a few, within the bound below, and they must all end
// within the longest timeout they can be waiting for; everything else must not grow at all.
func TestContainD1PollingServerCloses(t *testing.T) {
	node := needNode(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], cycleServer())
	srv := env.Server.WS
	r := measureCycles(t, srv, func(n int) cyclesResult {
		return node.cycles(t, env.URL, env.Admin, "kick-polling", n, func() { srv.DisconnectAll(true) })
	}, scaled(1000, 150))
	// The library's Disconnect(true) closes a polling connection before what it queued (the
	// CONNECT ack, the DISCONNECT) is written, and may leave the pending poll unanswered: the
	// client then learns nothing until its ping timeout (fault D). glow never uses it; here
	// it is only the way to make D1 measurable. On v3.0.2 about 2 % of the cycles failed so,
	// 4 % in an unlucky run of 150 under -race; on v3.0.6 0–1 in 1 000: 5 % is allowed.
	r.allowFailures(t, "timeout (", r.cycles/20+1, "a client never told of the immediate close (fault D, Disconnect(true))")
	r.assertNoFailures(t)

	// v3.0.6 still leaves a timer running after 0–0.7 % of these closes (up to 1.3 % of a run
	// of 150 under -race): judging by when they end (26–30 s after the cycles), a polling
	// transport's 30 s close timeout (DoClose waiting for the client's next poll), not stopped
	// when the connection ended another way first. It ends by itself; D1's goroutines never
	// did. 3 + 2 % of the cycles is well above the first; the wait below tells the two apart.
	b := cycleBounds(r.cycles, r.timersLeft())
	b.timers = 3 + r.cycles/50
	r.assertBounds(t, b)
	t.Logf("%d of %d polling connections closed by the server left a library timer running (%.1f %%)",
		r.timersLeft(), r.cycles, 100*float64(r.timersLeft())/float64(r.cycles))

	// The longest timer a connection starts is that close timeout (30 s; the ping interval is
	// 25 s): 35 s from now, every timer the cycles left must have ended.
	if r.timersLeft() > 0 {
		start := time.Now()
		left := r.timersLeft()
		for left > 0 && time.Since(start) < 35*time.Second {
			time.Sleep(250 * time.Millisecond)
			left = sample(false).timers - r.base.timers
		}
		if left > 0 {
			t.Errorf("%d of the %d library timer goroutines the cycles left still run %s later, want none: fault D1 (a stopped timer's goroutine waiting forever) is back",
				left, r.timersLeft(), time.Since(start).Round(time.Second))
		} else {
			t.Logf("every timer goroutine the cycles left (%d) had ended %s later", r.timersLeft(), time.Since(start).Round(100*time.Millisecond))
		}
	}
}

// ---------------------------------------------------------------------------------------
// B: the first CONNECT is never lost

// TestContainBNodeDialsNeverLoseConnect dials the real server thousands of times with the
// official client (websocket, no reconnection, 2 s per dial) and counts the dials whose
// engine.io connection opened but whose CONNECT was never answered: there must be none. It
// then does the same with a faster client (the test's own, which answers OPEN within
// microseconds). v3.0.2 lost a few such CONNECTs (fault B); v3.0.6 starts a websocket
// transport's reader only once the engine's "connection" listeners have run.
func TestContainBNodeDialsNeverLoseConnect(t *testing.T) {
	node := needNode(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], cycleServer())
	n := scaled(3000, 400)

	r := node.dials(t, env.URL, env.Admin, n)
	if r.Failed > 0 {
		t.Errorf("%d of %d Node dials failed: %v", r.Failed, r.Dials, r.Failures)
	}
	t.Logf("Node: %d dials, %d failed (%v) in %d ms", r.Dials, r.Failed, r.Failures, r.MS)

	fast := rawDials(t, env.URL, env.Admin, n, 20, time.Second)
	if fast.lost > 0 || fast.other > 0 {
		t.Errorf("fast client: %d of %d CONNECTs lost, %d other failures", fast.lost, n, fast.other)
	}
	t.Logf("fast client: %d dials, %d lost", n, fast.lost)
}

// TestContainBSlowOpenNeverLosesConnect widens the race of fault B on purpose: the transport
// sleeps right after sending OPEN, before the engine tells socket.io about the new
// connection, so a client answering OPEN at once would find nobody listening if it could
// already be heard. On v3.0.2, without glow's gate, 40 of 40 websocket CONNECTs were lost so;
// none may be, over websocket or long-polling.
func TestContainBSlowOpenNeverLosesConnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctor engine.TransportCtor
		dial func(t *testing.T, baseURL, token string, n, workers int, wait time.Duration) rawResult
	}{
		{"websocket", engine.WebSocket, rawDials},
		{"polling", engine.Polling, rawPollingDials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := bareServer(t, []engine.TransportCtor{
				&slowOpen{TransportCtor: tc.ctor, delay: 20 * time.Millisecond},
			}, func(_ *socket.Socket, next func(*socket.ExtendedError)) { next(nil) })
			n := 200
			r := tc.dial(t, url, "unused", n, 20, 500*time.Millisecond)
			if r.lost > 0 || r.other > 0 || r.ok != n {
				t.Errorf("%d of %d CONNECTs lost, %d dials failed for another reason, want all %d answered", r.lost, n, r.other, n)
			}
			t.Logf("%s, OPEN sent 20 ms before socket.io listens: %d of %d CONNECTs lost", tc.name, r.lost, n)
		})
	}
}

// slowOpen wraps a transport constructor: its transports sleep after sending OPEN.
type slowOpen struct {
	engine.TransportCtor
	delay time.Duration
}

func (s *slowOpen) New(ctx *types.HttpContext) transports.Transport {
	return &slowOpenTransport{Transport: s.TransportCtor.New(ctx), delay: s.delay}
}

type slowOpenTransport struct {
	transports.Transport
	delay time.Duration
}

func (t *slowOpenTransport) Send(packets []*packet.Packet) {
	t.Transport.Send(packets)
	if len(packets) > 0 && packets[0].Type == packet.OPEN {
		time.Sleep(t.delay)
	}
}

// ---------------------------------------------------------------------------------------
// E: a connection closing while its socket connects

// TestContainEConnectionClosedWhileConnecting closes connections at the two moments fault E
// is about, on purpose, on a server whose middleware keeps books the way glow's does (an entry
// per socket, dropped on "disconnect"):
//
//   - ack: the transport closes as it sends the CONNECT ack, i.e. after the library marked the
//     socket connected and before it registered it with the connection. Uncontained, every
//     such socket stays connected in its namespace forever.
//   - middleware: the connection closes while the middleware runs. Uncontained, the library
//     drops the socket without a "disconnect" event, so the books keep it forever.
//
// The real server meets the same race, rarely, when a connection is closed right as its
// socket connects (TestContainA1A2CyclesAcrossTransports/kick-close-websocket).
func TestContainEConnectionClosedWhileConnecting(t *testing.T) {
	for _, when := range []string{"ack", "middleware"} {
		for _, contained := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/contained=%v", when, contained), func(t *testing.T) {
				defer ws.SetContainment("E", contained)()
				var mu sync.Mutex
				books := map[*socket.Socket]bool{}
				forget := func(s *socket.Socket) {
					mu.Lock()
					delete(books, s)
					mu.Unlock()
				}
				url, sio := bareServer(t, []engine.TransportCtor{
					&closeOnAck{TransportCtor: engine.WebSocket, on: when == "ack"},
				}, func(s *socket.Socket, next func(*socket.ExtendedError)) {
					_ = s.On("disconnect", func(...any) { forget(s) })
					mu.Lock()
					books[s] = true
					mu.Unlock()
					ws.WatchConn(s, func() { forget(s) })
					if when == "middleware" {
						s.Conn().Close(true)
					}
					next(nil)
				})
				n := 30
				rawDials(t, url, "unused", n, 10, 300*time.Millisecond)

				// Let the library and the containment finish with every connection (contained,
				// that takes a few milliseconds; uncontained, nothing changes after that).
				wait := time.Second
				if contained {
					wait = 3 * time.Second
				}
				deadline := time.Now().Add(wait)
				var ghosts, kept int
				for {
					ghosts = sio.Of("/", nil).Sockets().Len()
					mu.Lock()
					kept = len(books)
					mu.Unlock()
					if (ghosts == 0 && kept == 0) || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				t.Logf("%s, E contained=%v: %d connections closed; %d sockets still connected, %d still in the books", when, contained, n, ghosts, kept)
				switch {
				case contained && (ghosts > 0 || kept > 0):
					t.Errorf("E contained: %d sockets still connected and %d in the books, want none", ghosts, kept)
				case !contained && when == "ack" && ghosts < n*9/10:
					t.Errorf("E off: %d of %d sockets left connected, want nearly all: the test no longer reproduces fault E", ghosts, n)
				case !contained && when == "middleware" && kept < n*9/10:
					t.Errorf("E off: %d of %d sockets left in the books, want nearly all: the test no longer reproduces fault E", kept, n)
				}
			})
		}
	}
}

// closeOnAck wraps a transport constructor: with on, its transports close themselves while
// sending their first socket.io packet (the CONNECT ack), as a client going away at that
// moment would make them.
type closeOnAck struct {
	engine.TransportCtor
	on bool
}

func (c *closeOnAck) New(ctx *types.HttpContext) transports.Transport {
	t := c.TransportCtor.New(ctx)
	if !c.on {
		return t
	}
	return &closeOnAckTransport{Transport: t}
}

type closeOnAckTransport struct {
	transports.Transport
	once sync.Once
}

func (t *closeOnAckTransport) Send(packets []*packet.Packet) {
	t.Transport.Send(packets)
	for _, p := range packets {
		if p.Type == packet.MESSAGE {
			t.once.Do(func() {
				closed := make(chan struct{})
				_ = t.Once("close", func(...any) { close(closed) })
				go t.Close()
				<-closed // the connection is closed before the library registers the socket
			})
		}
	}
}

// ---------------------------------------------------------------------------------------
// H: a client that disconnects leaves no session behind

// TestContainHClientDisconnectKeepsNoSession disconnects sockets the way the official client
// does — DISCONNECT, and the close of the connection right after it — and then asks to
// recover each one's session (its pid and the offset of the last event it got, as a client
// reconnecting after a drop would). A socket whose client disconnected on purpose must have
// left no session: none may be recovered. Uncontained (the negative control), the library
// often handles the close before the DISCONNECT it has queued, takes the close for a dropped
// connection, and keeps the session for the recovery window: many are recovered.
func TestContainHClientDisconnectKeepsNoSession(t *testing.T) {
	e := serveWS(t, nil, events.Options{}, ws.Options{RecoveryWindow: 30 * time.Second})
	token := e.token(t, "goodbye")
	for _, contained := range []bool{false, true} {
		t.Run(fmt.Sprintf("contained=%v", contained), func(t *testing.T) {
			defer ws.SetContainment("H", contained)()
			n := 100
			recovered, skipped := 0, 0
			for range n {
				switch ok, err := goodbyeThenRecover(t, e, token); {
				case err != nil:
					skipped++
					t.Logf("skipped: %v", err)
				case ok:
					recovered++
				}
			}
			if skipped > n/10 {
				t.Fatalf("%d of %d cycles could not be run", skipped, n)
			}
			t.Logf("H contained=%v: %d of %d sockets whose client disconnected recovered their session", contained, recovered, n-skipped)
			switch {
			case contained && recovered > 0:
				t.Errorf("H contained: %d sockets whose client disconnected kept their session, want none", recovered)
			case !contained && recovered < (n-skipped)/5:
				t.Errorf("H off: %d of %d sockets kept their session, want many: the test no longer reproduces fault H "+
					"(does the library handle a DISCONNECT before the close that follows it now? Then the containment may go)", recovered, n-skipped)
			}
		})
	}
}

// goodbyeThenRecover connects over a bare websocket, calls profile.context (whose lifecycle
// events carry the offsets a client recovers from), disconnects as the official client does
// (DISCONNECT, then the close at once), waits until the server has let the socket go, then
// connects again with the session's pid and the last offset, and reports whether the server
// recovered the session. An error means the cycle could not be run as described.
func goodbyeThenRecover(t *testing.T, e wsEnv, token string) (bool, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	auth := map[string]any{"token": "Bearer " + token}
	dial := func() (*websocket.Conn, map[string]string, error) {
		c, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			return nil, nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		connect, _ := json.Marshal(auth)
		var ack map[string]string
		if _, msg, err := c.ReadMessage(); err != nil || len(msg) == 0 || msg[0] != '0' {
			c.Close()
			return nil, nil, fmt.Errorf("no OPEN: %v", err)
		}
		if err := c.WriteMessage(websocket.TextMessage, append([]byte("40"), connect...)); err != nil {
			c.Close()
			return nil, nil, err
		}
		for ack == nil {
			_, msg, err := c.ReadMessage()
			if err != nil {
				c.Close()
				return nil, nil, fmt.Errorf("no CONNECT ack: %v", err)
			}
			if bytes.HasPrefix(msg, []byte("40")) {
				if err := json.Unmarshal(msg[2:], &ack); err != nil {
					c.Close()
					return nil, nil, fmt.Errorf("CONNECT ack %q: %v", msg, err)
				}
			}
		}
		return c, ack, nil
	}
	goodbye := func(c *websocket.Conn) {
		_ = c.WriteMessage(websocket.TextMessage, []byte("41"))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.Close()
	}
	gone := func() error {
		for deadline := time.Now().Add(5 * time.Second); e.srv.Sockets() > 0 || e.srv.Sessions() > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return errors.New("the server still holds the socket 5 s after its client left")
			}
		}
		return nil
	}

	c, first, err := dial()
	if err != nil {
		return false, err
	}
	offset, err := ownerCall(c)
	if err != nil {
		c.Close()
		return false, err
	}
	goodbye(c)
	if err := gone(); err != nil {
		return false, err
	}

	auth["pid"], auth["offset"] = first["pid"], offset
	c, again, err := dial()
	if err != nil {
		return false, err
	}
	goodbye(c)
	return again["sid"] == first["sid"], gone()
}

// ---------------------------------------------------------------------------------------
// C: a socket's calls run concurrently, and boundedly

// TestContainCLibraryRunsASocketsEventsOneAtATime is C's negative control: it shows that the
// library still runs one socket's event handlers one at a time (on the socket's task queue),
// so that Server.onEvent's own goroutines are still needed. A bare server's handler sleeps
// 100 ms; five events sent at once on one socket must then be handled one after the other.
// If this fails, the library runs them concurrently now, and the containment of C may go.
func TestContainCLibraryRunsASocketsEventsOneAtATime(t *testing.T) {
	const events, delay = 5, 100 * time.Millisecond
	var running, peak atomic.Int64
	url, _ := bareServer(t, []engine.TransportCtor{engine.WebSocket}, func(s *socket.Socket, next func(*socket.ExtendedError)) {
		s.OnAny(func(args ...any) {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(delay)
			running.Add(-1)
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack([]any{"done"}, nil)
			}
		})
		next(nil)
	})

	// Events sent right after the CONNECT ack may reach the library before it has registered
	// the socket with its connection, which it then closes (fault I, docs/SOCKETIO.md): such
	// an attempt starts again.
	attempt := func() (time.Duration, error) {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		read := func(prefix string) error {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return fmt.Errorf("waiting for %q: %w", prefix, err)
				}
				if strings.HasPrefix(string(msg), prefix) {
					return nil
				}
			}
		}
		if err := read("0"); err != nil {
			return 0, err
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			return 0, err
		}
		if err := read("40"); err != nil {
			return 0, err
		}
		start := time.Now()
		for i := range events {
			if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `42%d["slow"]`, i)); err != nil {
				return 0, err
			}
		}
		for range events {
			if err := read("43"); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	var took time.Duration
	for try := 1; ; try++ {
		peak.Store(0)
		var err error
		if took, err = attempt(); err == nil {
			break
		}
		if try == 5 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v (fault I); again", try, err)
		for deadline := time.Now().Add(5 * time.Second); running.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("%d events of %s each on one socket, straight to the library: done in %s, at most %d at once", events, delay, took.Round(time.Millisecond), peak.Load())
	if peak.Load() != 1 || took < events*delay*9/10 {
		t.Errorf("the library ran %d of a socket's handlers at once (%d events of %s done in %s), want one at a time: "+
			"has it fixed fault C? Then Server.onEvent need not run calls on goroutines of its own", peak.Load(), events, delay, took)
	}
}

// TestContainCSlowCallsDoNotBlockTheSocket runs a server whose system.health sleeps 200 ms.
// On one socket, 20 parallel slow calls must all succeed in far less than the 4 s they would
// take one at a time, and a fast call made meanwhile must not wait for them. Beyond
// Options.MaxCalls the socket's calls are refused at once with 429, while another socket is
// unaffected, and the slots come back when calls end.
func TestContainCSlowCallsDoNotBlockTheSocket(t *testing.T) {
	node := needNode(t)
	const maxCalls, delay = 24, 200 * time.Millisecond
	h, url, token, logs := slowServer(t, delay, maxCalls)

	out := node.run(t, "dials-calls.mjs", map[string]string{
		"GLOW_URL": url, "GLOW_TOKEN": token,
		"CALLS_SLOW": "system.health", "CALLS_FAST": "profile.context",
		"CALLS_PARALLEL": "20", "CALLS_OVER": "30", "CALLS_SEQUENCE": "0",
		"CALLS_PHASES": "parallel,over,after",
	}, time.Minute)
	var rep callsReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("dials-calls.mjs: %v\n%s", err, out)
	}
	t.Logf("report: %s", bytes.TrimSpace(out))

	// Timing bounds are loose, for slow CI machines and -race; the fault they catch is a
	// factor of 20 (4 s) or blocks the fast call for the slow calls' 200 ms at least.
	slowest, fastest := 2*time.Second, 150*time.Millisecond
	if raceEnabled() {
		slowest, fastest = 3*time.Second, 400*time.Millisecond
	}
	p := rep.Parallel
	if p.Slow["200"] != 20 {
		t.Errorf("20 parallel slow calls: statuses %v, want 20 × 200", p.Slow)
	}
	if ms(p.AllMS) > slowest {
		t.Errorf("20 parallel 200 ms calls took %d ms, want < %s (one at a time: 4 s)", p.AllMS, slowest)
	}
	if !p.Fast.is(200) || ms(p.Fast.MS) > fastest {
		t.Errorf("fast call during the slow ones: status %s after %d ms, want 200 within %s", p.Fast.Status, p.Fast.MS, fastest)
	}

	o := rep.Over
	if o.Slow["200"] != maxCalls || o.Slow["429"] != 30-maxCalls {
		t.Errorf("30 parallel slow calls with MaxCalls %d: statuses %v, want %d × 200 and %d × 429", maxCalls, o.Slow, maxCalls, 30-maxCalls)
	}
	if ms(o.RefusedMS) > fastest {
		t.Errorf("calls beyond the limit were refused after %d ms, want at once (< %s)", o.RefusedMS, fastest)
	}
	if !o.FastA.is(429) {
		t.Errorf("a call on the full socket: status %s, want 429", o.FastA.Status)
	}
	if !o.FastB.is(200) || ms(o.FastB.MS) > fastest {
		t.Errorf("a call on another socket meanwhile: status %s after %d ms, want 200 within %s", o.FastB.Status, o.FastB.MS, fastest)
	}
	if !rep.After.is(200) {
		t.Errorf("a call once the others ended: status %s, want 200 (slots not given back?)", rep.After.Status)
	}
	if peak := h.peak.Load(); peak != maxCalls {
		t.Errorf("at most %d slow handlers ran at once, want exactly MaxCalls = %d", peak, maxCalls)
	}
	if s := logs.String(); strings.Contains(s, "socket.io containment") {
		t.Errorf("the server logged a containment error:\n%s", s)
	}
}

// TestContainCAckedCallFreesItsSlot checks the promise of the 429 answer ("wait for their
// acks"): a client that keeps exactly MaxCalls calls running, sending the next one as soon as
// an ack arrives, is never refused.
func TestContainCAckedCallFreesItsSlot(t *testing.T) {
	node := needNode(t)
	_, url, token, _ := slowServer(t, 0, 1)
	n := scaled(2000, 300)
	out := node.run(t, "dials-calls.mjs", map[string]string{
		"GLOW_URL": url, "GLOW_TOKEN": token,
		"CALLS_SLOW": "system.health", "CALLS_FAST": "profile.context",
		"CALLS_PARALLEL": "0", "CALLS_OVER": "0", "CALLS_SEQUENCE": strconv.Itoa(n),
		"CALLS_PHASES": "sequence",
	}, time.Minute)
	var rep callsReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("dials-calls.mjs: %v\n%s", err, out)
	}
	if got := rep.Sequence.Statuses["200"]; got != n {
		t.Errorf("%d calls one after the other with MaxCalls 1: statuses %v, want %d × 200", n, rep.Sequence.Statuses, n)
	}
}

type callsReport struct {
	Parallel struct {
		Slow  map[string]int `json:"slow"`
		AllMS int            `json:"allMs"`
		Fast  callResult     `json:"fast"`
	} `json:"parallel"`
	Over struct {
		Slow      map[string]int `json:"slow"`
		RefusedMS int            `json:"refusedMaxMs"`
		FastA     callResult     `json:"fastA"`
		FastB     callResult     `json:"fastB"`
	} `json:"over"`
	After    callResult `json:"after"`
	Sequence struct {
		Statuses map[string]int `json:"statuses"`
	} `json:"sequence"`
}

type callResult struct {
	Status json.RawMessage `json:"status"` // a number, or "timeout"
	MS     int             `json:"ms"`
}

func (c callResult) is(status int) bool { return string(c.Status) == strconv.Itoa(status) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// slowHandlers is the real service, but system.health sleeps first; it records how many
// run at once.
type slowHandlers struct {
	*handlers.Service
	delay         time.Duration
	running, peak atomic.Int64
}

func (h *slowHandlers) SystemHealth(ctx context.Context, in *gen.SystemHealthRequest) (*gen.SystemHealthResponse, error) {
	n := h.running.Add(1)
	defer h.running.Add(-1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	select {
	case <-time.After(h.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.Service.SystemHealth(ctx, in)
}

// slowServer serves socket.io with the real dispatcher over slowHandlers on a free port of
// 127.0.0.1, and returns an admin token and the server's log.
func slowServer(t *testing.T, delay time.Duration, maxCalls int) (*slowHandlers, string, string, *testserver.SyncBuffer) {
	t.Helper()
	var h *slowHandlers
	e := serveWS(t, func(svc *handlers.Service) gen.Handlers {
		h = &slowHandlers{Service: svc, delay: delay}
		return h
	}, events.Options{}, ws.Options{MaxCalls: maxCalls})
	return h, e.url, e.token(t, "slow"), e.logs
}

// wsEnv is a socket.io server built by serveWS.
type wsEnv struct {
	srv  *ws.Server
	url  string
	st   *store.Store
	logs *testserver.SyncBuffer // what the server logged, from level info
}

// serveWS serves socket.io alone, with the real dispatcher and event log over the real
// service (or what wrap makes of it), on a free port of 127.0.0.1, until t ends.
func serveWS(t *testing.T, wrap func(*handlers.Service) gen.Handlers, evOpts events.Options, opts ws.Options) wsEnv {
	t.Helper()
	st := testdb.Dialects(t)[0].Open(t)
	contract, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testserver.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	evs := events.New(st, log, evOpts)
	evCtx, stopEvents := context.WithCancel(context.Background())
	evDone := make(chan struct{})
	go func() { evs.Run(evCtx); close(evDone) }()
	tracker := presence.New(st, log, 0)
	var h gen.Handlers = handlers.New(st, jobs.New(st, evs, log, jobs.Options{}), evs, tracker, contract, handlers.Limits{})
	if wrap != nil {
		h = wrap(h.(*handlers.Service))
	}
	d := dispatch.New(contract, h, st, evs, log, dispatch.Options{CallTimeout: 30 * time.Second})
	srv := ws.New(d, auth.NewResolver(st, 0), evs, tracker, log, opts)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ts.CloseClientConnections()
		ts.Close()
		stopEvents()
		<-evDone
	})
	return wsEnv{srv: srv, url: ts.URL, st: st, logs: logs}
}

// token creates an admin profile named after name and returns a token of it.
func (e wsEnv) token(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	p, err := e.st.Q().CreateProfile(ctx, name+"-"+uuid.NewString()[:8], "admin")
	if err != nil {
		t.Fatal(err)
	}
	token, hash := auth.NewToken()
	if _, err := e.st.Q().CreateToken(ctx, p.ID, hash, "test"); err != nil {
		t.Fatal(err)
	}
	return token
}

// ---------------------------------------------------------------------------------------
// Measuring the server process

// procSample is what the leak tests measure in this process, which hosts the server.
type procSample struct {
	goroutines int            // all goroutines, from a full stack dump
	timers     int            // those running a timer of the library (utils.SetTimeout/SetInterval)
	groups     map[string]int // goroutines by what they run and who started them, for messages
	socketFDs  int            // open sockets (/proc/self/fd), counted before any forced collection
	heapAlloc  uint64         // runtime.MemStats after two runtime.GC, when collected
	heapInuse  uint64
}

// other counts the goroutines that are not the library's timers (counted apart: see
// cycleBounds).
func (s procSample) other() int { return s.goroutines - s.timers }

var stackBuf []byte

// sample measures the process. With collect it first runs the garbage collector twice (for
// the heap figures); the sockets are counted before that either way.
func sample(collect bool) procSample {
	s := procSample{socketFDs: countSocketFDs(), groups: map[string]int{}}
	for {
		if len(stackBuf) == 0 {
			stackBuf = make([]byte, 4<<20)
		}
		n := runtime.Stack(stackBuf, true)
		if n < len(stackBuf) {
			// The first goroutine is the caller's own, whose stack differs from call to call.
			for _, g := range strings.Split(string(stackBuf[:n]), "\n\n")[1:] {
				s.goroutines++
				if strings.Contains(g, "/pkg/utils.SetTimeout.func") || strings.Contains(g, "/pkg/utils.SetInterval.func") {
					s.timers++
				}
				s.groups[goroutineGroup(g)]++
			}
			break
		}
		stackBuf = make([]byte, 2*len(stackBuf))
	}
	if collect {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		s.heapAlloc, s.heapInuse = m.HeapAlloc, m.HeapInuse
	}
	return s
}

// goroutineGroup names a goroutine by its function frames (without arguments) and creator.
func goroutineGroup(stack string) string {
	var frames []string
	creator := ""
	for _, line := range strings.Split(stack, "\n")[1:] {
		switch {
		case strings.HasPrefix(line, "created by "):
			creator, _, _ = strings.Cut(strings.TrimPrefix(line, "created by "), " in goroutine")
		case line != "" && !strings.HasPrefix(line, "\t"):
			fn, _, _ := strings.Cut(line, "(0x")
			fn = strings.TrimSuffix(strings.TrimSuffix(fn, "(...)"), "()")
			if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "sync.") && !strings.HasPrefix(fn, "internal/") {
				frames = append(frames, fn)
			}
		}
	}
	if len(frames) > 2 {
		frames = frames[:2]
	}
	return strings.Join(frames, " ← ") + " (started by " + creator + ")"
}

// countSocketFDs counts this process's open sockets; -1 where /proc is not there.
func countSocketFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// bounds are the growths a leak test tolerates.
type bounds struct {
	other     int   // goroutines that are not library timers
	timers    int   // library timer goroutines
	socketFDs int   // open sockets
	heapAlloc int64 // bytes
	heapInuse int64 // bytes
}

// cycleBounds are the tolerances of n connect/close cycles after which timers library timer
// goroutines are still running (counted apart), and why:
//
//   - other goroutines: 2. After the clients are gone and the server has forgotten every
//     connection, nothing a connection started may remain; the slack covers a goroutine of
//     the test's own bookkeeping. A1 (v3.0.2) left one per connection (n).
//   - timer goroutines: 3 + 0.5 % of n. A timer that is still to fire keeps its goroutine;
//     on v3.0.6 that is a polling close timeout now and then (see
//     TestContainD1PollingServerCloses), which ends within 30 s, and none in the other
//     modes. D1 (v3.0.2: utils.Timer.Stop missing its goroutine, which then waited forever)
//     left 2.5–3.8 % of server-closed polling connections, ~50 % under -race.
//   - sockets: 0. Every socket the cycles opened is closed once the clients are gone; A1
//     kept one per websocket connection until the collector finalized it.
//   - heap (HeapAlloc after GC): 512 B per cycle (at least 512 KB) plus 64 KB per timer
//     goroutine (which keeps its connection's objects until it fires). Measured: up to
//     ~120 KB per 1 000 cycles. A2 (v3.0.2) kept ~19 KB per connection, A1 ~10 KB: 20–40
//     times the bound.
//   - HeapInuse, which moves by whole spans: 2 KB per cycle (at least 2 MB) plus 160 KB per
//     timer goroutine. Measured: up to ~1.5 MB per 2 000 cycles, and ~110 KB per timer
//     goroutine (v3.0.2).
func cycleBounds(n, timers int) bounds {
	return bounds{
		other:     2,
		timers:    3 + n/200,
		socketFDs: 0,
		heapAlloc: max(512<<10, int64(n)*512) + int64(timers)*64<<10,
		heapInuse: max(2<<20, int64(n)*2<<10) + int64(timers)*160<<10,
	}
}

// cycleRun is one measured run of cycles.
type cycleRun struct {
	cycles      int
	base, after procSample
	result      cyclesResult
	tolerated   int // failures allowFailures accepted
}

// timersLeft counts the library timer goroutines the cycles left running.
func (r cycleRun) timersLeft() int   { return max(0, r.after.timers-r.base.timers) }
func (r cycleRun) heapGrowth() int64 { return int64(r.after.heapAlloc) - int64(r.base.heapAlloc) }

// allowFailures drops up to limit failures whose reason starts with prefix from the
// result, logging them with why they are tolerated.
func (r *cycleRun) allowFailures(t *testing.T, prefix string, limit int, why string) {
	t.Helper()
	for reason, n := range r.result.Failures {
		if strings.HasPrefix(reason, prefix) {
			if n > limit {
				t.Errorf("%d cycles failed with %q, want at most %d (%s)", n, reason, limit, why)
			}
			t.Logf("tolerated: %d of %d cycles failed with %q: %s", n, r.cycles, reason, why)
			delete(r.result.Failures, reason)
			r.result.Failed -= n
			r.tolerated += n
		}
	}
}

func (r cycleRun) assertNoFailures(t *testing.T) {
	t.Helper()
	if r.result.Failed > 0 || r.result.OK+r.result.Failed+r.tolerated != r.cycles {
		t.Errorf("%d of %d %s cycles failed: %v", r.result.Failed, r.cycles, r.result.Mode, r.result.Failures)
	}
}

func (r cycleRun) assertBounds(t *testing.T, b bounds) {
	t.Helper()
	grew := func(what string, got int64, limit int64, unit string) {
		if got > limit {
			t.Errorf("after %d %s cycles: %s grew by %d%s, want at most %d%s", r.cycles, r.result.Mode, what, got, unit, limit, unit)
		}
	}
	grew("goroutines (other than library timers)", int64(r.after.other()-r.base.other()), int64(b.other), "")
	grew("library timer goroutines", int64(r.after.timers-r.base.timers), int64(b.timers), "")
	if r.base.socketFDs >= 0 {
		grew("open sockets", int64(r.after.socketFDs-r.base.socketFDs), int64(b.socketFDs), "")
	}
	grew("HeapAlloc", r.heapGrowth(), b.heapAlloc, " B")
	grew("HeapInuse", int64(r.after.heapInuse)-int64(r.base.heapInuse), b.heapInuse, " B")
	if t.Failed() {
		t.Logf("goroutines that appeared:\n%s", groupGrowth(r.base, r.after))
	}
}

// groupGrowth lists the goroutine groups that grew, largest first.
func groupGrowth(base, after procSample) string {
	var lines []string
	for g, n := range after.groups {
		if d := n - base.groups[g]; d > 0 {
			lines = append(lines, fmt.Sprintf("%6d  %s", d, g))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(lines)))
	if len(lines) > 15 {
		lines = lines[:15]
	}
	return strings.Join(lines, "\n")
}

// measureCycles warms the server up with a tenth of the cycles (pools, maps and caches
// reach their working size), measures it, runs n cycles, waits for the server to let go of
// every connection, and measures again.
// recoveryWindow is the connection state recovery window of the servers the leak tests
// measure: socket.io keeps every dropped socket's session (and the room packets it missed)
// that long, by design; the measurements are taken once such sessions have expired.
const recoveryWindow = 300 * time.Millisecond

// cycleServer is the configuration of the servers the leak tests measure.
func cycleServer() *server.Options { return &server.Options{RecoveryWindow: recoveryWindow} }

// waitRecoveryExpiry waits until the sessions kept for recovery have expired and been swept
// (every half window).
func waitRecoveryExpiry() { time.Sleep(2*recoveryWindow + 100*time.Millisecond) }

func measureCycles(t *testing.T, srv *ws.Server, drive func(n int) cyclesResult, n int) cycleRun {
	t.Helper()
	if w := drive(max(n/10, 20)); w.Failed > w.OK/10 {
		t.Fatalf("warm-up failed: %+v", w)
	}
	waitIdle(t, srv)
	waitRecoveryExpiry()
	// Sockets are counted before each collection; collect once first, so that sockets only a
	// finalizer closes (A1 off) are gone from the baseline.
	sample(true)
	time.Sleep(50 * time.Millisecond)
	base := sample(true)
	start := time.Now()
	r := cycleRun{cycles: n, base: base, result: drive(n)}
	elapsed := time.Since(start)
	waitIdle(t, srv)
	waitRecoveryExpiry()
	r.after = settle(base, cycleBounds(n, 0), 5*time.Second)
	t.Logf("%d %s cycles in %s (client: %d ms): goroutines %+d (library timers %+d), sockets %+d, HeapAlloc %+d KB, HeapInuse %+d KB",
		n, r.result.Mode, elapsed.Round(time.Millisecond), r.result.MS,
		r.after.goroutines-base.goroutines, r.after.timers-base.timers, r.after.socketFDs-base.socketFDs,
		r.heapGrowth()/1024, (int64(r.after.heapInuse)-int64(base.heapInuse))/1024)
	return r
}

// waitIdle waits until the server holds no connection, no socket and no session.
func waitIdle(t *testing.T, srv *ws.Server) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for srv.EngineClients() > 0 || srv.Sockets() > 0 || srv.Sessions() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the clients left, the server still holds %d engine.io connections, %d sockets and sockets of %d sessions",
				srv.EngineClients(), srv.Sockets(), srv.Sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until the goroutines other than timers and the sockets are back within b of
// base — connections end asynchronously — or have not moved for a second (a leak), at most
// wait, and returns a full sample. Sockets are counted without forcing a collection, so that
// a socket only a finalizer would close still counts.
func settle(base procSample, b bounds, wait time.Duration) procSample {
	deadline := time.Now().Add(wait)
	last, since := sample(false), time.Now()
	for time.Now().Before(deadline) {
		if last.other()-base.other() <= b.other && last.socketFDs-base.socketFDs <= b.socketFDs {
			break
		}
		time.Sleep(50 * time.Millisecond)
		s := sample(false)
		if s.other() != last.other() || s.socketFDs != last.socketFDs {
			since = time.Now()
		} else if time.Since(since) > time.Second {
			break
		}
		last = s
	}
	return sample(true)
}

// ---------------------------------------------------------------------------------------
// Clients

// nodeRunner runs the scripts of test/node.
type nodeRunner struct{ node, dir string }

// needNode finds node and the installed socket.io-client. Like the other Node suites it
// skips without them, unless GLOW_TEST_REQUIRE_NODE=1 (CI), which makes that a failure.
func needNode(t *testing.T) nodeRunner {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "test", "node"))
	if err != nil {
		t.Fatal(err)
	}
	node, missing := exec.LookPath("node")
	if missing == nil {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client", "package.json")); err != nil {
			missing = errors.New("test/node/node_modules is missing: run `npm ci --prefix test/node`")
		}
	}
	if missing != nil {
		if os.Getenv("GLOW_TEST_REQUIRE_NODE") == "1" {
			t.Fatalf("GLOW_TEST_REQUIRE_NODE=1 but %v", missing)
		}
		t.Skipf("skipping: these tests drive the server with the Node socket.io-client: %v (GLOW_TEST_REQUIRE_NODE=1 makes this a failure)", missing)
	}
	return nodeRunner{node: node, dir: dir}
}

// run runs a script with environment variables and returns its stdout; a script that
// breaks (exit status 2, or killed at the timeout) fails the test.
func (nr nodeRunner) run(t *testing.T, script string, env map[string]string, timeout time.Duration) []byte {
	t.Helper()
	out, code := nr.exec(t, script, env, timeout, nil)
	if code != 0 {
		t.Fatalf("%s: exit status %d\n%s", script, code, out)
	}
	return out
}

// exec runs a script (killed after timeout); while it runs, during (if set) is called every
// 2 ms. It starts no goroutine that outlives it, so that the leak tests count none.
func (nr nodeRunner) exec(t *testing.T, script string, env map[string]string, timeout time.Duration, during func()) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(nr.node, filepath.Join(nr.dir, script))
	cmd.Dir = nr.dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	var killed atomic.Bool
	kill := time.AfterFunc(timeout, func() {
		killed.Store(true)
		_ = cmd.Process.Kill()
	})
	done := make(chan struct{})
	var wg sync.WaitGroup
	if during != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					during()
				}
			}
		}()
	}
	err := cmd.Wait()
	kill.Stop()
	close(done)
	wg.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), 0
	case errors.As(err, &exit) && !killed.Load():
		if stderr.Len() > 0 {
			t.Logf("%s stderr:\n%s", script, stderr.String())
		}
		return stdout.Bytes(), exit.ExitCode()
	default:
		t.Fatalf("%s: %v (killed after %s: %v)\nstdout:\n%s\nstderr:\n%s", script, err, timeout, killed.Load(), stdout.String(), stderr.String())
		return nil, -1
	}
}

// cyclesResult is the summary test/node/cycles.mjs prints.
type cyclesResult struct {
	Mode     string         `json:"mode"`
	Cycles   int            `json:"cycles"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures"`
	MS       int            `json:"ms"`
}

// cycles runs n connect/close cycles of a mode of test/node/cycles.mjs; kick, when set, is
// called every 2 ms while the script runs (the kick modes wait for it).
func (nr nodeRunner) cycles(t *testing.T, url, token, mode string, n int, kick func()) cyclesResult {
	t.Helper()
	return nr.runCycles(t, map[string]string{
		"GLOW_URL": url, "GLOW_TOKEN": token, "CYCLES_MODE": mode, "CYCLES_COUNT": strconv.Itoa(n),
	}, kick)
}

// runCycles runs test/node/cycles.mjs with its environment (see the script); kick is as for
// cycles.
func (nr nodeRunner) runCycles(t *testing.T, env map[string]string, kick func()) cyclesResult {
	t.Helper()
	out, code := nr.exec(t, "cycles.mjs", env, 3*time.Minute, kick)
	var r cyclesResult
	if err := json.Unmarshal(lastLine(out), &r); err != nil || code > 1 {
		t.Fatalf("cycles.mjs %s: exit status %d, %v\n%s", env["CYCLES_MODE"], code, err, out)
	}
	return r
}

// dialsResult is the summary test/node/dials.mjs prints.
type dialsResult struct {
	Dials    int            `json:"dials"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures"`
	MS       int            `json:"ms"`
}

func (nr nodeRunner) dials(t *testing.T, url, token string, n int) dialsResult {
	t.Helper()
	out, code := nr.exec(t, "dials.mjs", map[string]string{
		"GLOW_URL": url, "GLOW_TOKEN": token, "DIALS_COUNT": strconv.Itoa(n),
		"DIALS_WORKERS": "20", "DIALS_TIMEOUT_MS": "2000",
	}, 3*time.Minute, nil)
	var r dialsResult
	if err := json.Unmarshal(lastLine(out), &r); err != nil || code > 1 {
		t.Fatalf("dials.mjs: exit status %d, %v\n%s", code, err, out)
	}
	return r
}

func lastLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

// rawResult counts the outcomes of rawDials.
type rawResult struct{ ok, lost, other int }

// rawDials makes n socket.io connections over a bare websocket, workers at a time: each reads
// OPEN, answers CONNECT at once (far faster than the Node client, which widens fault B's
// window) and waits up to wait for the CONNECT ack; none is "lost".
func rawDials(t *testing.T, baseURL, token string, n, workers int, wait time.Duration) rawResult {
	t.Helper()
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	connect := []byte(`40{"token":"Bearer ` + token + `"}`)
	var ok, lost, other, next atomic.Int64
	dial := func() {
		c, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			other.Add(1)
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || len(msg) == 0 || msg[0] != '0' {
			other.Add(1)
			return
		}
		if err := c.WriteMessage(websocket.TextMessage, connect); err != nil {
			other.Add(1)
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		for {
			_, msg, err := c.ReadMessage()
			switch {
			case err != nil:
				lost.Add(1)
				return
			case bytes.HasPrefix(msg, []byte("40")):
				ok.Add(1)
				return
			case bytes.HasPrefix(msg, []byte("44")):
				other.Add(1)
				return
			}
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				dial()
			}
		}()
	}
	wg.Wait()
	return rawResult{ok: int(ok.Load()), lost: int(lost.Load()), other: int(other.Load())}
}

// rawPollingDials makes n socket.io connections over long-polling, workers at a time: each
// reads OPEN from the handshake, posts CONNECT at once, and polls up to wait for the CONNECT
// ack; none is "lost".
func rawPollingDials(t *testing.T, baseURL, token string, n, workers int, wait time.Duration) rawResult {
	t.Helper()
	u := baseURL + "/socket.io/?EIO=4&transport=polling"
	connect := `40{"token":"Bearer ` + token + `"}`
	var ok, lost, other, next atomic.Int64
	dial := func() {
		client := &http.Client{Timeout: 5 * time.Second}
		res, err := client.Get(u)
		if err != nil {
			other.Add(1)
			return
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		var open struct {
			Sid string `json:"sid"`
		}
		if err != nil || res.StatusCode != http.StatusOK || len(body) == 0 || body[0] != '0' || json.Unmarshal(body[1:], &open) != nil {
			other.Add(1)
			return
		}
		su := u + "&sid=" + open.Sid
		res, err = client.Post(su, "text/plain;charset=UTF-8", strings.NewReader(connect))
		if err != nil {
			other.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			other.Add(1)
			return
		}
		client.Timeout = wait
		for {
			res, err := client.Get(su)
			if err != nil {
				lost.Add(1)
				return
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				other.Add(1)
				return
			}
			for _, p := range bytes.Split(body, []byte{0x1e}) {
				switch {
				case bytes.HasPrefix(p, []byte("40")):
					ok.Add(1)
					return
				case bytes.HasPrefix(p, []byte("44")), bytes.HasPrefix(p, []byte("1")):
					other.Add(1)
					return
				}
			}
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				dial()
			}
		}()
	}
	wg.Wait()
	return rawResult{ok: int(ok.Load()), lost: int(lost.Load()), other: int(other.Load())}
}

// ---------------------------------------------------------------------------------------
// Helpers

// bareServer serves a socket.io server with the given transports and one namespace
// middleware, on a free port of 127.0.0.1.
func bareServer(t *testing.T, ctors []engine.TransportCtor, mw socket.NamespaceMiddleware) (string, *socket.Server) {
	t.Helper()
	so := socket.DefaultServerOptions()
	so.SetServeClient(false)
	so.SetConnectTimeout(2 * time.Second)
	so.SetTransports(types.NewSet(ctors...))
	sio := socket.NewServer(nil, so)
	h := sio.ServeHandler(nil)
	sio.Of("/", nil).Use(mw)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", h)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		sio.Close(nil)
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL, sio
}

// sessionOf returns the session (token row) id of a token.
func sessionOf(t *testing.T, st *store.Store, token string) uuid.UUID {
	t.Helper()
	tok, err := st.Q().TokenByHash(context.Background(), auth.HashToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

// scaled is n, or short when the race detector is on or -short is set: the race detector
// makes every cycle several times slower.
func scaled(n, short int) int {
	if raceEnabled() || testing.Short() {
		return min(n, short)
	}
	return n
}

var raceEnabled = sync.OnceValue(func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
})
