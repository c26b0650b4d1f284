package test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// tokenDial opens a websocket to socket.io carrying the token as subprotocols or in the URL,
// sends a CONNECT with no auth, and says whether the socket connected, and as whom
// (profile.context's profile name); the handshake's error when it failed.
func tokenDial(t *testing.T, env *testserver.Env, protocols []string, query string, answered bool) (connected bool, profile string, err error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(env.URL, "http") + "/socket.io/?EIO=4&transport=websocket" + query
	dialer := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	c, res, err := dialer.Dial(u, nil)
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	if answered && c.Subprotocol() != "Bearer" {
		t.Errorf("the handshake picked the subprotocol %q, want Bearer (%v)", c.Subprotocol(), res.Header)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, open, err := c.ReadMessage(); err != nil || !bytes.HasPrefix(open, []byte("0{")) {
		t.Fatalf("engine.io OPEN: %q %v", open, err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("no CONNECT answer: %v", err)
		}
		switch {
		case bytes.HasPrefix(msg, []byte("44")):
			return false, "", nil
		case bytes.HasPrefix(msg, []byte("40")):
			if err := c.WriteMessage(websocket.TextMessage, []byte(`421["profile.context",{}]`)); err != nil {
				t.Fatal(err)
			}
		case bytes.HasPrefix(msg, []byte("431")):
			var ack []struct {
				Body struct {
					Profile struct{ Name string }
				}
			}
			if err := json.Unmarshal(msg[3:], &ack); err != nil || len(ack) != 1 {
				t.Fatalf("ack %q: %v", msg, err)
			}
			return true, ack[0].Body.Profile.Name, nil
		}
	}
}

// A websocket client that cannot send auth in its CONNECT may carry its token as its
// handshake's subprotocols ("Bearer, <token>", answered "Bearer") or as ?token=, each only
// where enabled; off (the default), the same CONNECT is refused as anonymous.
func TestSocketTokenCarriers(t *testing.T) {
	for _, on := range []bool{false, true} {
		env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{TokenProtocol: on, TokenQuery: on})
		token := env.Token(t, "carrier", "learner")
		for name, dial := range map[string]func() (bool, string, error){
			"subprotocols": func() (bool, string, error) { return tokenDial(t, env, []string{"Bearer", token}, "", on) },
			"query":        func() (bool, string, error) { return tokenDial(t, env, nil, "&token="+token, false) },
		} {
			connected, profile, err := dial()
			switch {
			case on && (err != nil || !connected || profile != "carrier"):
				t.Errorf("%s, enabled: connected %v as %q (%v), want connected as carrier", name, connected, profile, err)
			case !on && name == "query" && connected:
				t.Errorf("%s, disabled: the token in the URL was taken", name)
			case !on && name == "subprotocols" && connected:
				t.Errorf("%s, disabled: the token in the subprotocols was taken", name)
			}
		}
		if !on {
			continue
		}
		if connected, _, err := tokenDial(t, env, []string{"Bearer", "glow_wrong"}, "", true); err != nil || connected {
			t.Errorf("a wrong token in the subprotocols: connected %v (%v), want refused", connected, err)
		}
	}
}
