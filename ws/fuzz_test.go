package ws_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// FuzzSocketIOPacket sends any bytes as a socket.io packet (an Engine.IO message "4…") on a
// new websocket connected to a real server, then a probe: a system.health call with ack id
// 9999. Whatever the packet, no ack has status 500, and the server either answers the probe
// on that connection, closes the connection (a malformed packet ends it), or — when the
// packet left the connection unable to take calls (a DISCONNECT, a binary event waiting
// for attachments) — still answers the same probe on another connection: nothing wedges
// it. The corpus is in testdata/fuzz/FuzzSocketIOPacket; make test runs the target for a
// bounded time.
func FuzzSocketIOPacket(f *testing.F) {
	env := testserver.Start(f, testdb.Dialects(f)[0], nil)
	token := env.Token(f, "fuzz-socket", "editor", "fuzz")
	var other *websocket.Conn // the connection that checks the server is still well
	f.Cleanup(func() {
		if other != nil {
			other.Close()
		}
	})
	for _, p := range []string{
		`2["persona.search",{}]`, `21["profile.context",{}]`, `22["persona.create",{"personas":[{"name":"x","department_ids":[{}]}]}]`,
		`23["persona.search","{\"search\":\"\\u0000\"}"]`, `24["no.such.event"]`, `25["persona.search",1,2,3]`,
		`2`, `2[]`, `2[1]`, `26[null]`, `0/admin,{"token":"x"}`, `1`, `3`, `31[]`, `51-["persona.search",{"_placeholder":true,"num":0}]`,
		`4{}`, `2["system.subscribe",{"topics":[{"topic":"profile/../x"}]}]`, `27["persona.search",{"search":"` + strings.Repeat("[", 100) + `"}]`,
	} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		if len(packet) > 4096 {
			return
		}
		conn := fuzzDial(t, env, token)
		defer conn.Close()
		if conn.WriteMessage(websocket.TextMessage, append([]byte("4"), packet...)) != nil {
			return
		}
		switch fuzzProbe(t, conn, packet, 500*time.Millisecond) {
		case probeAnswered, probeClosed:
			return
		}
		// The other connection may have been closed since (an earlier packet may have
		// closed it): a closed one is opened again, a few times.
		for try := 1; ; try++ {
			if other == nil {
				other = fuzzDial(t, env, token)
			}
			switch fuzzProbe(t, other, packet, 10*time.Second) {
			case probeAnswered:
				return
			case probeUnanswered:
				t.Fatalf("packet %q: the server no longer answers a call on another connection", packet)
			}
			other.Close()
			other = nil
			if try == 3 {
				t.Fatalf("packet %q: the server closes every other connection it is called on", packet)
			}
		}
	})
}

type probeOutcome int

const (
	probeAnswered probeOutcome = iota
	probeClosed
	probeUnanswered
)

// fuzzProbe sends the probe call on conn and reads until its ack, failing the test on an
// ack with status 500 or more, or one that is not {status, body}.
func fuzzProbe(t *testing.T, conn *websocket.Conn, packet []byte, wait time.Duration) probeOutcome {
	t.Helper()
	if conn.WriteMessage(websocket.TextMessage, []byte(`429999["system.health",{}]`)) != nil {
		return probeClosed
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for {
		_, m, err := conn.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				return probeUnanswered
			}
			return probeClosed
		}
		msg := string(m)
		if msg == "2" {
			_ = conn.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		i := strings.IndexByte(msg, '[')
		if !strings.HasPrefix(msg, "43") || i < 0 {
			continue
		}
		var args []struct {
			Status int `json:"status"`
		}
		if err := json.Unmarshal([]byte(msg[i:]), &args); err != nil || len(args) != 1 {
			t.Fatalf("packet %q: an ack that is not {status, body}: %q", packet, msg)
		}
		if args[0].Status >= 500 {
			t.Fatalf("packet %q: ack %q", packet, msg)
		}
		if msg[2:i] == "9999" {
			return probeAnswered
		}
	}
}

// fuzzDial opens a websocket to socket.io and connects to the main namespace with a token.
func fuzzDial(t *testing.T, env *testserver.Env, token string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(env.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("the server accepts no connection: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(open), `0{`) {
		t.Fatalf("Engine.IO open: %q %v", open, err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`40{"token":"Bearer `+token+`"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		// The socket is in its profile's room as it connects: the profile's events may come
		// before the CONNECT's answer (the official client holds them until it is connected).
		_, m, err := conn.ReadMessage()
		switch {
		case err != nil:
			t.Fatalf("socket.io CONNECT: %v", err)
		case strings.HasPrefix(string(m), `40{"sid"`):
			return conn
		case !strings.HasPrefix(string(m), "42"):
			t.Fatalf("socket.io CONNECT: %q", m)
		}
	}
}
