package test

import (
	"bufio"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// followWithin is how soon a revocation or a role change must reach what was opened before
// it; the server polls the database every 500 ms.
const followWithin = 2 * time.Second

// TestRevocationEndsSSEStreams: an SSE stream opened before its token is revoked (as glow
// token revoke does, by a write to the database) ends; reconnecting is refused.
func TestRevocationEndsSSEStreams(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			token := env.Token(t, "sse-leaver", "learner")
			other := env.Token(t, "sse-leaver", "learner") // another session of the profile
			ended := revocationStream(t, env, token)
			kept := revocationStream(t, env, other)

			ctx := context.Background()
			tok, err := env.Server.Store.Q().TokenByHash(ctx, auth.HashToken(token))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if ok, err := env.Server.Store.Q().RevokeToken(ctx, tok.ID); !ok || err != nil {
				t.Fatalf("revoke: %v %v", ok, err)
			}
			select {
			case <-ended:
				t.Logf("the stream ended %s after the revocation", time.Since(start))
			case <-time.After(followWithin):
				t.Fatalf("the stream of the revoked token still runs %s after the revocation", followWithin)
			}
			select {
			case <-kept:
				t.Fatal("the stream of the profile's other session ended too")
			case <-time.After(700 * time.Millisecond):
			}
			req, _ := http.NewRequest(http.MethodGet, env.URL+"/profile/stream", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("reconnecting the stream with the revoked token: %d", res.StatusCode)
			}
		})
	}
}

// TestARoleChangeReachesOpenSocketsAndStreams: a profile is demoted from editor to learner
// (as glow token create --role does) while it has a socket, an SSE stream and a cached HTTP
// identity. The socket's connection is closed (a client reconnects by itself and its
// handshake resolves the token again), the stream ends, and HTTP follows the new role; all
// within 2 seconds. A reconnected socket has the new role's rights.
func TestARoleChangeReachesOpenSocketsAndStreams(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			token := env.Token(t, "demoted", "editor", "demoted-sales")
			create := map[string]any{"personas": []map[string]any{{"name": "Before"}}}
			if res := env.Post(t, token, "/persona/create", create); res.Status != http.StatusOK {
				t.Fatalf("as editor: %d %s", res.Status, res.Body)
			}
			sock := env.Dial(t, token)
			if status, body := sock.Call(t, "persona.create", create); status != http.StatusOK {
				t.Fatalf("as editor over socket.io: %d %s", status, body)
			}
			stream := revocationStream(t, env, token)

			ctx := context.Background()
			p, err := env.Server.Store.Q().ProfileByName(ctx, "demoted")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := env.Server.Store.Q().SetProfileRole(ctx, p.ID, "learner"); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(followWithin)
			for _, gone := range []<-chan struct{}{sock.Disconnected(), stream} {
				select {
				case <-gone:
				case <-deadline:
					t.Fatalf("the socket or the stream opened as editor still runs %s after the role change", followWithin)
				}
			}
			for res := env.Post(t, token, "/persona/create", create); res.Status != http.StatusForbidden; res = env.Post(t, token, "/persona/create", create) {
				if time.Since(start) > followWithin {
					t.Fatalf("HTTP still acts as editor %s after the role change: %d", followWithin, res.Status)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("the role change was followed within %s", time.Since(start))
			again := env.Dial(t, token)
			if status, body := again.Call(t, "persona.create", create); status != http.StatusForbidden {
				t.Fatalf("a reconnected socket creates personas as a learner: %d %s", status, body)
			}
		})
	}
}

// revocationStream opens the profile's SSE stream with token and returns a channel closed
// when the stream ends.
func revocationStream(t *testing.T, env *testserver.Env, token string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/profile/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
		}
	}()
	return ended
}
