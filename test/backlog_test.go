package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// TestWorkPerChatAndProfileIsBounded, over HTTP and socket.io: a chat takes messages while
// fewer than 3 of its replies wait or generate; the next message is refused with 429 and a
// retry_after (and, over HTTP, Retry-After), and is not stored. A profile may have 5 runs in
// progress here (GLOW_PROFILE_RUNS): a message to another chat beyond them is refused the
// same way. A refused call with an idempotency key runs when retried with the same key, and
// chat_get pages through the chat.
func TestWorkPerChatAndProfileIsBounded(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		for _, transport := range []string{"http", "socketio"} {
			t.Run(d.Name+"/"+transport, func(t *testing.T) {
				env := testserver.Start(t, d, &server.Options{LocalTokenDelay: 200 * time.Millisecond, ProfileRuns: 5})
				dep := env.Department(t, "backlog-sales")
				token := env.Token(t, "backlog-learner", "learner", "backlog-sales")
				var sock *testserver.Client
				if transport == "socketio" {
					sock = env.Dial(t, token)
				}
				call := func(op string, body map[string]any) (int, map[string]any, string) {
					t.Helper()
					var status int
					var raw []byte
					var retry string
					if sock != nil {
						status, raw = sock.Call(t, op, body)
					} else {
						o, _ := gen.OperationByID(op)
						res := env.Post(t, token, o.Path, body)
						status, raw, retry = res.Status, res.Body, res.Header.Get("Retry-After")
					}
					var m map[string]any
					if err := json.Unmarshal(raw, &m); err != nil {
						t.Fatalf("%s: %v: %s", op, err, raw)
					}
					return status, m, retry
				}
				refused := func(what string, status int, body map[string]any, retry string) {
					t.Helper()
					if status != http.StatusTooManyRequests || body["retry_after"] == nil {
						t.Fatalf("%s: %d %v, want 429 with retry_after", what, status, body)
					}
					if sock == nil && retry != strconv.Itoa(int(body["retry_after"].(float64))) {
						t.Fatalf("%s: Retry-After %q, retry_after %v", what, retry, body["retry_after"])
					}
				}

				created := env.Post(t, env.Admin, "/persona/create", map[string]any{"personas": []map[string]any{
					{"name": "Bo", "description": "a buyer", "department_ids": []uuid.UUID{dep}}}}).JSON(t)
				persona := pathValue(created, "results.0.persona_id")
				chat := func() string {
					_, m, _ := call("attempt.start", map[string]any{"persona_id": persona})
					return m["chat_id"].(string)
				}
				first, second, third := chat(), chat(), chat()

				var runs []string
				send := func(chat, text string, key string) (int, map[string]any, string) {
					body := map[string]any{"chat_id": chat, "text": text}
					if key != "" {
						body["idempotency_key"] = key
					}
					status, m, retry := call("attempt.chat_message", body)
					if status == http.StatusOK {
						runs = append(runs, m["reply_run_id"].(string))
					}
					return status, m, retry
				}
				asked := map[string]bool{} // the ids of the messages stored
				for i := range 3 {
					status, m, _ := send(first, fmt.Sprintf("question %d", i), "")
					if status != http.StatusOK {
						t.Fatalf("message %d: %d %v", i, status, m)
					}
					asked[pathValue(m, "message.id").(string)] = true
				}
				status, m, retry := send(first, "one too many", "")
				refused("a fourth reply in the chat", status, m, retry)

				for i := range 2 {
					if status, m, _ := send(second, fmt.Sprintf("elsewhere %d", i), ""); status != http.StatusOK {
						t.Fatalf("message %d to another chat: %d %v", i, status, m)
					} else {
						asked[pathValue(m, "message.id").(string)] = true
					}
				}
				status, m, retry = send(third, "a sixth run", "sixth")
				refused("a sixth run of the profile", status, m, retry)

				// The profile's runs end (stopped); the refused call runs when retried.
				for _, run := range runs {
					if status, m, _ := call("system.run_stop", map[string]any{"run_id": run}); status != http.StatusOK && status != http.StatusConflict {
						t.Fatalf("stop %s: %d %v", run, status, m)
					}
				}
				status, m, _ = send(third, "a sixth run", "sixth")
				if status != http.StatusOK {
					t.Fatalf("the refused call retried with its key: %d %v", status, m)
				}
				call("system.run_stop", map[string]any{"run_id": m["reply_run_id"]})

				// Only the accepted messages are stored; chat_get pages back through them.
				status, page, _ := call("attempt.chat_get", map[string]any{"chat_id": first, "limit": 2})
				msgs := page["messages"].([]any)
				if status != http.StatusOK || len(msgs) != 2 || page["has_more"] != true {
					t.Fatalf("the latest page: %d, %d messages, has_more %v", status, len(msgs), page["has_more"])
				}
				before := msgs[0].(map[string]any)["seq"]
				_, older, _ := call("attempt.chat_get", map[string]any{"chat_id": first, "limit": 2, "before_seq": before})
				all := append(older["messages"].([]any), msgs...)
				if older["has_more"] != false || len(all) != 3 {
					t.Fatalf("the chat in pages: %d messages, has_more %v", len(all), older["has_more"])
				}
				for i, x := range all {
					m := x.(map[string]any)
					if !asked[m["id"].(string)] || m["seq"] != float64(i+1) || m["text"] != fmt.Sprintf("question %d", i) {
						t.Fatalf("message %d of the chat: %v", i, m)
					}
				}
				if status, m, _ := call("attempt.chat_get", map[string]any{"chat_id": first, "limit": 501}); status != http.StatusUnprocessableEntity {
					t.Fatalf("limit 501: %d %v", status, m)
				}
			})
		}
	}
}
