package ws_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// TestARecoveredSessionStaysWithItsProfile: a socket of profile A drops (its connection
// closes with no DISCONNECT) and misses an event of its profile. Within the recovery window,
// a CONNECT naming A's session (its pid and last offset) with a token of profile B starts a
// fresh socket and gets none of A's events; one with a bad token is refused and gets none
// either; one with another token of profile A recovers the session: same socket id, the
// missed event.
func TestARecoveredSessionStaysWithItsProfile(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			tokenA := env.Token(t, "owner-a", "learner", "owners")
			tokenA2 := env.Token(t, "owner-a", "learner", "owners")
			tokenB := env.Token(t, "owner-b", "learner", "owners")

			first, offset := ownerDrop(t, env, tokenA)
			// An event of profile A while its socket is away.
			if res := env.Post(t, tokenA, "/profile/context", `{}`); res.Status != http.StatusOK {
				t.Fatalf("call while away: %d", res.Status)
			}
			// The events of A's call while away, before the CONNECT's answer and after it.
			missed := func(c *websocket.Conn, early [][]byte) int {
				n := 0
				count := func(msg []byte) {
					if bytes.HasPrefix(msg, []byte("42")) && bytes.Contains(msg, []byte("profile.context.")) {
						n++
					}
				}
				for _, msg := range early {
					count(msg)
				}
				_ = c.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
				for {
					_, msg, err := c.ReadMessage()
					if err != nil {
						return n
					}
					count(msg)
				}
			}
			resume := func(token string) map[string]any {
				return map[string]any{"token": "Bearer " + token, "pid": first["pid"], "offset": offset}
			}

			b, got, early := ownerDial(t, env, resume(tokenB))
			if got["sid"] == first["sid"] || got["pid"] == first["pid"] {
				t.Fatalf("profile B took over profile A's session: %v", got)
			}
			if n := missed(b, early); n != 0 {
				t.Fatalf("profile B got %d of profile A's events", n)
			}
			b.Close()

			bad := ownerConnect(t, env, resume("glow_not_a_token"))
			for {
				_, msg, err := bad.ReadMessage()
				if err != nil {
					t.Fatalf("a bad token with A's session: %v", err)
				}
				if bytes.HasPrefix(msg, []byte("42")) {
					t.Fatalf("a bad token with A's session got an event: %s", msg)
				}
				if bytes.HasPrefix(msg, []byte("44")) {
					break
				}
			}
			bad.Close()

			a2, again, early := ownerDial(t, env, resume(tokenA2))
			defer a2.Close()
			if again["sid"] != first["sid"] {
				t.Fatalf("another token of profile A did not recover its session: %v, was %v", again, first)
			}
			if n := missed(a2, early); n == 0 {
				t.Fatal("the recovered socket did not get the event it missed")
			}
		})
	}
}

// ownerDrop connects a socket with token, makes a call (its lifecycle events carry the
// offsets a client recovers from), and drops the connection without a DISCONNECT; it
// returns the CONNECT's answer and the last offset.
func ownerDrop(t *testing.T, env *testserver.Env, token string) (map[string]string, string) {
	t.Helper()
	c, first, _ := ownerDial(t, env, map[string]any{"token": "Bearer " + token})
	offset, err := ownerCall(c)
	c.Close() // dropped: no DISCONNECT
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); env.Server.WS.Sockets() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dropped socket is still connected")
		}
	}
	return first, offset
}

// ownerCall calls profile.context on a connected socket and returns the offset of the last
// event the call brought (lifecycle events carry the offsets a client recovers from).
func ownerCall(c *websocket.Conn) (offset string, err error) {
	if err := c.WriteMessage(websocket.TextMessage, []byte(`420["profile.context",{}]`)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for acked := false; !acked || offset == ""; {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return "", err
		}
		switch {
		case string(msg) == "2":
			_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
		case bytes.HasPrefix(msg, []byte("430")):
			acked = true
		case bytes.HasPrefix(msg, []byte("42")):
			var args []any
			if json.Unmarshal(msg[2:], &args) == nil && len(args) > 0 {
				offset, _ = args[len(args)-1].(string)
			}
		}
	}
	return offset, nil
}

// ownerConnect opens a websocket to socket.io and sends a CONNECT with auth.
func ownerConnect(t *testing.T, env *testserver.Env, auth map[string]any) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(env.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, open, err := c.ReadMessage(); err != nil || !bytes.HasPrefix(open, []byte("0{")) {
		t.Fatalf("Engine.IO open: %q %v", open, err)
	}
	hello, _ := json.Marshal(auth)
	if err := c.WriteMessage(websocket.TextMessage, append([]byte("40"), hello...)); err != nil {
		t.Fatal(err)
	}
	return c
}

// ownerDial connects and returns the CONNECT's answer ({sid, pid}) and the events that
// came before it (a recovered session's missed events do).
func ownerDial(t *testing.T, env *testserver.Env, auth map[string]any) (*websocket.Conn, map[string]string, [][]byte) {
	t.Helper()
	c := ownerConnect(t, env, auth)
	var early [][]byte
	for {
		msg := ownerRead(t, c)
		if bytes.HasPrefix(msg, []byte("40")) {
			var ack map[string]string
			if err := json.Unmarshal(msg[2:], &ack); err != nil {
				t.Fatalf("CONNECT answer %q: %v", msg, err)
			}
			return c, ack, early
		}
		if !bytes.HasPrefix(msg, []byte("42")) {
			t.Fatalf("CONNECT answered %q", msg)
		}
		early = append(early, msg)
	}
}

func ownerRead(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(msg) == "2" {
			_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		return msg
	}
}

// TestRecoveryKeepsBoundedBytes: the packets kept for connection state recovery weigh at
// most GLOW_RECOVERY_BYTES (here 64 KiB). A socket away while its profile's events go past
// that starts fresh when it comes back (it then subscribes with since); one away for a few
// events recovers with each of them, once and in order.
func TestRecoveryKeepsBoundedBytes(t *testing.T) {
	const budget = 64 << 10
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{RecoveryBytes: budget})
	token := env.Token(t, "bounded", "learner", "owners")
	away := func(calls int) (first map[string]string, offset string) {
		t.Helper()
		first, offset = ownerDrop(t, env, token)
		for i := range calls {
			if res := env.Post(t, token, "/profile/context", `{}`); res.Status != http.StatusOK {
				t.Fatalf("call %d while away: %d", i, res.Status)
			}
		}
		return first, offset
	}
	back := func(first map[string]string, offset string) (bool, []string) {
		t.Helper()
		c, again, early := ownerDial(t, env, map[string]any{"token": "Bearer " + token, "pid": first["pid"], "offset": offset})
		defer c.Close()
		var names []string
		for _, msg := range early {
			var args []any
			if json.Unmarshal(msg[2:], &args) == nil && len(args) > 0 {
				name, _ := args[0].(string)
				names = append(names, name)
			}
		}
		return again["sid"] == first["sid"], names
	}

	first, offset := away(400) // some 800 lifecycle events: far more than 64 KiB
	if kept := env.Server.WS.RecoveryBytes(); kept > budget+4<<10 {
		t.Fatalf("%d bytes kept for recovery, want at most about %d", kept, budget)
	}
	if recovered, missed := back(first, offset); recovered || len(missed) != 0 {
		t.Fatalf("a socket whose missed packets were forgotten recovered (%v) with %d of them", recovered, len(missed))
	}

	first, offset = away(3)
	recovered, missed := back(first, offset)
	want := strings.Repeat("profile.context.started profile.context.completed ", 3)
	if !recovered || strings.Join(missed, " ")+" " != want {
		t.Fatalf("a socket away for 3 calls: recovered %v, missed %v", recovered, missed)
	}
}
