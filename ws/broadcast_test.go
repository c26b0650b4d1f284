package ws_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// A batch of durable events whose rooms change from one event to the next — runs of the same
// rooms, which go out as one broadcast each, between others — reaches every socket with
// exactly the events of its rooms, each once, in the order they were published.
func TestDeliveryOfMixedBatchesKeepsOrderAndAudience(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	p, q := env.Token(t, "watcher-p", "learner"), env.Token(t, "watcher-q", "learner")
	socksP := []*testserver.Client{env.Dial(t, p), env.Dial(t, p)}
	sockQ := env.Dial(t, q)
	profileOf := func(c *testserver.Client) string {
		status, body := c.Call(t, "profile.context", map[string]any{})
		var ctx struct {
			Profile struct{ ID string } `json:"profile"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &ctx) != nil {
			t.Fatalf("profile.context: %d %s", status, body)
		}
		return events.ProfileTopic(uuid.MustParse(ctx.Profile.ID))
	}
	topicP, topicQ := profileOf(socksP[0]), profileOf(sockQ)

	runA, runB := events.RunTopic(uuid.New()), events.RunTopic(uuid.New())
	plan := []struct {
		topic string
		also  []string
	}{
		{runA, []string{topicP}}, {runA, []string{topicP}}, {runA, []string{topicP}},
		{runB, []string{topicP}},
		{runA, []string{topicP, topicQ}},
		{runA, []string{topicP}}, {runA, []string{topicP}},
		{runB, []string{topicQ}}, {runB, []string{topicQ}},
		{runA, []string{topicP}},
	}
	var wantP, wantQ []string
	for round := range 20 { // enough for the log to gather several into one batch
		for i, step := range plan {
			n := fmt.Sprintf("%d.%d", round, i)
			env.Server.Events.Publish(events.Event{Topic: step.topic, Name: "test.delivery", Also: step.also,
				Data: json.RawMessage(`{"n":"` + n + `"}`)})
			if slices.Contains(step.also, topicP) {
				wantP = append(wantP, n)
			}
			if slices.Contains(step.also, topicQ) {
				wantQ = append(wantQ, n)
			}
		}
	}
	env.Server.Events.Sync()

	delivered := func(c *testserver.Client) []string {
		var ns []string
		for _, ev := range c.Events() {
			if ev.Name != "test.delivery" {
				continue
			}
			var d struct{ N string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatalf("event %s: %v", ev.Data, err)
			}
			ns = append(ns, d.N)
		}
		return ns
	}
	got := func(c *testserver.Client, want int) []string {
		for deadline := time.Now().Add(5 * time.Second); len(delivered(c)) < want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // room for a duplicate to show
		return delivered(c)
	}
	for i, c := range socksP {
		if ns := got(c, len(wantP)); !slices.Equal(ns, wantP) {
			t.Errorf("socket %d of P got %d events %v, want %d %v", i, len(ns), ns, len(wantP), wantP)
		}
	}
	if ns := got(sockQ, len(wantQ)); !slices.Equal(ns, wantQ) {
		t.Errorf("the socket of Q got %v, want %v", ns, wantQ)
	}
}
