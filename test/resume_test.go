package test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// TestAResumedReplyIsTheTextStreamed: the server restarts while a reply streams, and the
// learner has sent another message meanwhile. The reply resumes after a restart answering
// the message it was asked for — not the later one — so that the text its watchers got
// (the deltas of both processes, in order) is exactly the reply stored, parented to that
// message; and the later message gets a reply of its own.
func TestAResumedReplyIsTheTextStreamed(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, &server.Options{LocalTokenDelay: 20 * time.Millisecond})
			dep := env.Department(t, "resume-sales")
			learner := env.Token(t, "resume-learner", "learner", "resume-sales")
			created := env.Post(t, env.Admin, "/persona/create", map[string]any{"personas": []map[string]any{
				{"name": "Rae", "description": "a buyer who wants it all by Friday", "department_ids": []uuid.UUID{dep}}}}).JSON(t)
			personaID := pathValue(created, "results.0.persona_id")
			started := env.Post(t, learner, "/attempt/start", map[string]any{"persona_id": personaID}).JSON(t)
			chatID, attemptID := started["chat_id"].(string), uuid.MustParse(started["attempt_id"].(string))
			topic := events.AttemptTopic(attemptID)

			first := env.Post(t, learner, "/attempt/chat/message", map[string]any{"chat_id": chatID, "text": "first question, about prices"}).JSON(t)
			firstID, runID := pathValue(first, "message.id").(string), uuid.MustParse(first["reply_run_id"].(string))
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, text := resumeDeltas(t, env, topic, runID); len(strings.Fields(text)) >= 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the reply streamed nothing")
				}
			}
			second := env.Post(t, learner, "/attempt/chat/message", map[string]any{"chat_id": chatID, "text": "second question, about delivery"}).JSON(t)
			secondID := pathValue(second, "message.id").(string)
			env.Restart(t)

			run := resumeWaitEnded(t, env, runID)
			other := resumeWaitEnded(t, env, uuid.MustParse(second["reply_run_id"].(string)))
			if run.Status != store.RunCompleted || other.Status != store.RunCompleted {
				t.Fatalf("after the restart the replies are %s and %s", run.Status, other.Status)
			}
			n, streamed := resumeDeltas(t, env, topic, runID)
			chat := env.Post(t, learner, "/attempt/chat/get", map[string]any{"chat_id": chatID}).JSON(t)
			replies := map[string]string{} // parent message → reply text
			for _, m := range chat["messages"].([]any) {
				m := m.(map[string]any)
				if m["role"] == "assistant" {
					replies[m["parent_message_id"].(string)] = m["text"].(string)
				}
			}
			if replies[firstID] != streamed || run.Output != streamed {
				t.Fatalf("the reply to the first message, streamed in %d deltas:\n%q\nstored:\n%q\nrun output:\n%q",
					n, streamed, replies[firstID], run.Output)
			}
			if replies[secondID] == "" || len(replies) != 2 {
				t.Fatalf("replies by the message they answer: %v", replies)
			}
		})
	}
}

// resumeDeltas returns how many text deltas a run has published on topic, and their text.
func resumeDeltas(t *testing.T, env *testserver.Env, topic string, runID uuid.UUID) (int, string) {
	t.Helper()
	evs, err := env.Server.Events.After(context.Background(), topic, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var b strings.Builder
	for _, ev := range evs {
		var d struct {
			RunID uuid.UUID `json:"run_id"`
			Delta string    `json:"delta"`
		}
		if ev.Name == "attempt.generate.text.progress" && json.Unmarshal(ev.Data, &d) == nil && d.RunID == runID {
			n++
			b.WriteString(d.Delta)
		}
	}
	return n, b.String()
}

func resumeWaitEnded(t *testing.T, env *testserver.Env, id uuid.UUID) store.Run {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		run, err := env.Server.Store.Q().RunByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if store.RunFinished(run.Status) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is still %s", id, run.Status)
		}
	}
}
