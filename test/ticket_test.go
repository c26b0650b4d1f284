package test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// ticketStream opens GET path?ticket=... with no Authorization header, as a browser's
// EventSource does, and returns its status (a stream that opened is closed at once).
func ticketStream(t *testing.T, env *testserver.Env, path, ticket string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+path+sep+"ticket="+ticket, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type %q, want text/event-stream", ct)
		}
	}
	return res.StatusCode
}

func newTicket(t *testing.T, env *testserver.Env, token string) string {
	t.Helper()
	res := env.Post(t, token, "/system/stream_ticket", `{}`)
	if res.Status != http.StatusOK {
		t.Fatalf("system.stream_ticket: %d %s", res.Status, res.Body)
	}
	ticket, _ := res.JSON(t)["ticket"].(string)
	return ticket
}

// A browser's EventSource authenticates with a stream ticket: good once, for a topic its
// token may follow, within its minute, while its token is not revoked; it is no token
// for calls, and the database keeps only its hash.
func TestStreamTicketsAuthenticateOneStream(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			token := env.Token(t, "browser", "learner")
			other := env.Token(t, "someone-else", "learner")
			otherProfile := env.Post(t, other, "/profile/context", `{}`).JSON(t)["profile"].(map[string]any)["id"].(string)

			ticket := newTicket(t, env, token)
			if got := ticketStream(t, env, "/profile/stream?since=0", ticket); got != http.StatusOK {
				t.Fatalf("a new ticket: %d, want 200", got)
			}
			if got := ticketStream(t, env, "/profile/stream?since=0", ticket); got != http.StatusUnauthorized {
				t.Errorf("the same ticket again: %d, want 401", got)
			}
			if got := ticketStream(t, env, "/profile/stream", "glst_nope"); got != http.StatusUnauthorized {
				t.Errorf("an unknown ticket: %d, want 401", got)
			}
			if got := ticketStream(t, env, "/profile/stream?topic=profile/"+otherProfile, newTicket(t, env, token)); got != http.StatusForbidden {
				t.Errorf("a ticket for another profile's topic: %d, want 403", got)
			}
			if res := env.Post(t, newTicket(t, env, token), "/profile/context", `{}`); res.Status != http.StatusUnauthorized {
				t.Errorf("a ticket as a bearer token: %d, want 401", res.Status)
			}

			ctx := context.Background()
			stored := newTicket(t, env, token)
			var hashes []string
			rows, err := env.Server.Store.Pool().QueryContext(ctx, "SELECT hash FROM stream_tickets")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var h string
				_ = rows.Scan(&h)
				hashes = append(hashes, h)
			}
			rows.Close()
			for _, h := range hashes {
				if strings.Contains(h, strings.TrimPrefix(stored, auth.TicketPrefix)) {
					t.Errorf("the database keeps a ticket as it is: %q", h)
				}
			}
			if !slices.Contains(hashes, auth.HashToken(stored)) {
				t.Errorf("the database does not keep the ticket's hash")
			}

			expired := newTicket(t, env, token)
			past := store.Now().Add(-time.Second)
			query := "UPDATE stream_tickets SET expires_at = ? WHERE hash = ?"
			if d.Name == store.Postgres {
				query = "UPDATE stream_tickets SET expires_at = $1 WHERE hash = $2"
			}
			if _, err := env.Server.Store.Pool().ExecContext(ctx, query, past, auth.HashToken(expired)); err != nil {
				t.Fatal(err)
			}
			if got := ticketStream(t, env, "/profile/stream", expired); got != http.StatusUnauthorized {
				t.Errorf("an expired ticket: %d, want 401", got)
			}

			revoked := newTicket(t, env, token)
			tok, err := env.Server.Store.Q().TokenByHash(ctx, auth.HashToken(token))
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := env.Server.Store.Q().RevokeToken(ctx, tok.ID); !ok || err != nil {
				t.Fatalf("revoke: %v %v", ok, err)
			}
			if got := ticketStream(t, env, "/profile/stream", revoked); got != http.StatusUnauthorized {
				t.Errorf("a ticket of a revoked token: %d, want 401", got)
			}
		})
	}
}
