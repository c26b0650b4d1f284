package ws_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

func TestHandshakeRefusesBadTokens(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	for name, token := range map[string]string{"no token": "", "unknown token": "glow_nope", "not a glow token": "abc"} {
		if _, err := env.DialErr(t, token); err == nil || err.Error() != "unauthorized" {
			t.Errorf("%s: connect error = %v, want unauthorized", name, err)
		}
	}
}

func TestUnknownEventIsAnswered404AtOnce(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	c := env.Dial(t, env.Admin)
	start := time.Now()
	status, body, err := c.CallErr("persona.nope", map[string]any{}, time.Second)
	if err != nil {
		t.Fatalf("unknown event: %v", err)
	}
	if status != http.StatusNotFound || time.Since(start) > time.Second {
		t.Fatalf("unknown event: status %d after %s: %s", status, time.Since(start), body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["status"] != float64(404) || p["title"] != "Not Found" {
		t.Fatalf("unknown event body is not a 404 problem: %s", body)
	}
}

// TestRevokedTokenIsDisconnected revokes a token the way glow token revoke does (a write to
// the database, which the server polls) and expects its sockets gone within 2 seconds.
func TestRevokedTokenIsDisconnected(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			token := env.Token(t, "leaver", "learner")
			keeper := env.Dial(t, env.Token(t, "leaver", "learner")) // another session of the same profile
			socks := []*testserver.Client{env.Dial(t, token), env.Dial(t, token)}

			ctx := context.Background()
			q := env.Server.Store.Q()
			tok, err := q.TokenByHash(ctx, auth.HashToken(token))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if ok, err := q.RevokeToken(ctx, tok.ID); !ok || err != nil {
				t.Fatalf("revoke: %v %v", ok, err)
			}
			for i, s := range socks {
				select {
				case <-s.Disconnected():
				case <-time.After(2*time.Second - time.Since(start)):
					t.Fatalf("socket %d still connected 2s after the revocation", i)
				}
			}
			t.Logf("sockets disconnected %s after the revocation", time.Since(start))
			if res := env.Post(t, token, "/profile/context", `{}`); res.Status != http.StatusUnauthorized {
				t.Errorf("HTTP with the revoked token: %d", res.Status)
			}
			if _, err := env.DialErr(t, token); err == nil || err.Error() != "unauthorized" {
				t.Errorf("reconnecting with the revoked token: %v", err)
			}
			if status, _ := keeper.Call(t, "profile.context", map[string]any{}); status != http.StatusOK {
				t.Errorf("the profile's other session was affected: %d", status)
			}
		})
	}
}
