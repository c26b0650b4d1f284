package dispatch_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/store"
)

// TestLifecycleEventsNeedAnAudience: a profile with no socket (nobody in its topic's
// audience, now or within the history's age) gets no lifecycle events built or kept.
func TestLifecycleEventsNeedAnAudience(t *testing.T) {
	r := newRig(t, &fakeHandlers{problem: func(context.Context, *gen.PersonaProblemRequest) (*gen.PersonaProblemResponse, error) {
		return &gen.PersonaProblemResponse{Success: true, Message: "ok"}, nil
	}})
	alone := &auth.Identity{ProfileID: store.NewID(), Role: "admin", Permissions: []store.Permission{{Artifact: "*", Operation: "*"}}}
	ctx := auth.NewContext(context.Background(), alone)
	topic := events.ProfileTopic(alone.ProfileID)
	if res := r.d.Do(ctx, op(t, "persona.problem"), []byte(`{"type":"bug","message":"m"}`), dispatch.HTTP); res.Status != http.StatusOK {
		t.Fatalf("call: %d %s", res.Status, res.Body)
	}
	r.eventLog.Sync()
	select {
	case ev := <-r.events:
		t.Fatalf("a call with no audience published %s", ev.Name)
	default:
	}
	if evs, _ := r.eventLog.After(ctx, topic, 0, 10); len(evs) != 0 || r.eventLog.Published() != 0 {
		t.Fatalf("kept %d events, published %d", len(evs), r.eventLog.Published())
	}
	r.eventLog.Join(topic)
	r.d.Do(ctx, op(t, "persona.problem"), []byte(`{"type":"bug","message":"m"}`), dispatch.HTTP)
	for _, want := range []string{"persona.problem.started", "persona.problem.completed"} {
		if ev := <-r.events; ev.Name != want || ev.Topic != topic {
			t.Fatalf("got %s on %s, want %s", ev.Name, ev.Topic, want)
		}
	}
}

// TestTheDoorRefusesWhatNoSchemaAccepts: bodies that broke the event log, the validator or
// the clients are refused with a problem naming the cause, and the handler never runs.
func TestTheDoorRefusesWhatNoSchemaAccepts(t *testing.T) {
	r := newRig(t, &fakeHandlers{search: func(context.Context, *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
		t.Error("the handler ran")
		return nil, nil
	}})
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	okDepth := `{"search":"x","unknown":` + strings.Repeat("[", dispatch.MaxDepth-1) + strings.Repeat("]", dispatch.MaxDepth-1) + `}`
	for _, tc := range []struct {
		name, op, body string
		status         int
		detail, at     string
	}{
		{"invalid UTF-8", "persona.search", "{\"search\":\"\xff\xfe\"}", 400, "not valid UTF-8", ""},
		{"deep nesting", "persona.search", deep, 400, "deeper than 32 levels", ""},
		{"nesting within the limit", "persona.search", okDepth, 422, "validation failed", "body.unknown"},
		{"brackets in strings do not nest", "persona.search", `{"search":"` + strings.Repeat(`[\"`, 100) + `","x":1}`, 422, "validation failed", "body.x"},
		{"NUL in a value", "persona.search", `{"search":"a\u0000b"}`, 422, "validation failed", "body.search"},
		{"NUL in a key", "persona.search", `{"a\u0000b":1}`, 422, "validation failed", "body"},
		{"an object where unique items are asked", "persona.create", `{"personas":[{"name":"x","department_ids":[{}]}]}`, 422, "validation failed", "body.personas[0].department_ids[0]"},
		{"an array where unique items are asked", "persona.create", `{"personas":[{"name":"x","department_ids":[[1]]}]}`, 422, "validation failed", "body.personas[0].department_ids[0]"},
		{"an empty array where unique items are asked", "persona.create", `{"personas":[{"name":"x","department_ids":[[]]}]}`, 422, "validation failed", "body.personas[0].department_ids[0]"},
		{"repeated items", "persona.create", `{"personas":[{"name":"x","department_ids":["` + store.NewID().String() + `","` + "00000000-0000-7000-8000-000000000001" + `","00000000-0000-7000-8000-000000000001"]}]}`, 422, "validation failed", "body.personas[0].department_ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.d.Do(r.ctx, op(t, tc.op), []byte(tc.body), dispatch.HTTP)
			p := decode(t, res.Body)
			if res.Status != tc.status || !strings.Contains(fmt.Sprint(p["detail"]), tc.detail) {
				t.Fatalf("%d %s, want %d %q", res.Status, res.Body, tc.status, tc.detail)
			}
			if tc.at != "" && !strings.Contains(string(res.Body), `"location":"`+tc.at+`"`) {
				t.Fatalf("no error at %s: %s", tc.at, res.Body)
			}
		})
	}
}

// TestManyUnknownKeysAreJudgedQuickly: validation is linear in the body, and reports at most
// MaxErrors errors and how many more there were.
func TestManyUnknownKeysAreJudgedQuickly(t *testing.T) {
	r := newRig(t, &fakeHandlers{})
	var b strings.Builder
	b.WriteString(`{"search":"x"`)
	const keys = 40000 // ~600 KB
	for i := range keys {
		fmt.Fprintf(&b, `,"k%05d":%d`, i, i)
	}
	b.WriteString("}")
	start := time.Now()
	res := r.d.Do(r.ctx, op(t, "persona.search"), []byte(b.String()), dispatch.HTTP)
	took := time.Since(start)
	p := decode(t, res.Body)
	errs, _ := p["errors"].([]any)
	if res.Status != http.StatusUnprocessableEntity || len(errs) != dispatch.MaxErrors+1 {
		t.Fatalf("%d with %d errors, want 422 with %d", res.Status, len(errs), dispatch.MaxErrors+1)
	}
	if last := fmt.Sprint(errs[dispatch.MaxErrors]); !strings.Contains(last, fmt.Sprintf("%d more errors", keys-dispatch.MaxErrors)) {
		t.Fatalf("the last error does not count the others: %s", last)
	}
	t.Logf("%d unknown keys (%d KB) judged in %s", keys, b.Len()/1024, took)
}
