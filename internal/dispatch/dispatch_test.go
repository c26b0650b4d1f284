package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// fakeHandlers answers the operations a test overrides; the others are never called.
type fakeHandlers struct {
	gen.Handlers
	search  func(context.Context, *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error)
	problem func(context.Context, *gen.PersonaProblemRequest) (*gen.PersonaProblemResponse, error)
}

func (f *fakeHandlers) PersonaSearch(ctx context.Context, in *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
	return f.search(ctx, in)
}

func (f *fakeHandlers) PersonaProblem(ctx context.Context, in *gen.PersonaProblemRequest) (*gen.PersonaProblemResponse, error) {
	return f.problem(ctx, in)
}

type rig struct {
	d        *dispatch.Dispatcher
	eventLog *events.Log
	log      *bytes.Buffer
	events   chan events.Event
	ctx      context.Context // carries an admin identity
}

func newRig(t *testing.T, h gen.Handlers) *rig {
	t.Helper()
	c, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	st := testdb.Dialects(t)[0].Open(t)
	p, err := st.Q().CreateProfile(context.Background(), "admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{log: &bytes.Buffer{}, events: make(chan events.Event, 100)}
	logger := slog.New(slog.NewTextHandler(r.log, nil))
	r.eventLog = events.New(st, logger, events.Options{})
	r.eventLog.Subscribe(func(batch []events.Event) {
		for _, ev := range batch {
			r.events <- ev
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.eventLog.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	r.d = dispatch.New(c, h, st, r.eventLog, logger, dispatch.Options{CallTimeout: time.Second})
	// The profile's topic is live: it has an audience, as when the profile has a socket open.
	r.eventLog.Join(events.ProfileTopic(p.ID))
	r.ctx = auth.NewContext(context.Background(), &auth.Identity{
		ProfileID: p.ID, ProfileName: "admin", Role: "admin",
		Permissions: []store.Permission{{Artifact: "*", Operation: "*"}},
	})
	return r
}

func op(t *testing.T, id string) *gen.Operation {
	o, ok := gen.OperationByID(id)
	if !ok {
		t.Fatalf("no operation %s", id)
	}
	return o
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	return m
}

func TestUnexpectedErrorsArePlain500s(t *testing.T) {
	calls := 0
	r := newRig(t, &fakeHandlers{search: func(context.Context, *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("pq: password authentication failed for user glow")
		}
		panic("index out of range")
	}})
	for _, cause := range []string{"password authentication failed", "index out of range"} {
		res := r.d.Do(r.ctx, op(t, "persona.search"), []byte(`{}`), dispatch.HTTP)
		if res.Status != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500: %s", res.Status, res.Body)
		}
		if strings.Contains(string(res.Body), cause) {
			t.Errorf("the 500 leaks its cause: %s", res.Body)
		}
		if p := decode(t, res.Body); p["instance"] != "urn:uuid:"+res.CallID.String() {
			t.Errorf("the 500 does not name its call: %s", res.Body)
		}
		if !strings.Contains(r.log.String(), cause) || !strings.Contains(r.log.String(), res.CallID.String()) {
			t.Errorf("the cause %q is not logged with the call id:\n%s", cause, r.log)
		}
	}
}

func TestProblemsPassThroughAndDefaultsApply(t *testing.T) {
	var got *gen.PersonaSearchRequest
	r := newRig(t, &fakeHandlers{search: func(_ context.Context, in *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
		got = in
		return nil, problem.Conflict("busy %d", 7)
	}})
	res := r.d.Do(r.ctx, op(t, "persona.search"), []byte(`{"search":"x"}`), dispatch.SocketIO)
	if res.Status != http.StatusConflict || decode(t, res.Body)["detail"] != "busy 7" {
		t.Fatalf("problem: %d %s", res.Status, res.Body)
	}
	if got == nil || got.PageSize == nil || *got.PageSize != 12 || got.PageOffset == nil || *got.PageOffset != 0 || *got.Search != "x" {
		t.Fatalf("the spec's defaults were not applied: %+v", got)
	}
}

func TestLifecycleEvents(t *testing.T) {
	r := newRig(t, &fakeHandlers{search: func(context.Context, *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
		return &gen.PersonaSearchResponse{Personas: []gen.PersonaRow{}, DepartmentFilter: gen.FacetFilter{Options: []gen.FacetOption{}, SelectedIds: nil}}, nil
	}})
	id := auth.FromContext(r.ctx)
	for _, tc := range []struct {
		body, last string
		status     int
	}{
		{`{"search":"a"}`, "persona.search.completed", 200},
		{`{"page_size":0}`, "persona.search.failed", 422},
		{`not json`, "persona.search.failed", 400},
	} {
		res := r.d.Do(r.ctx, op(t, "persona.search"), []byte(tc.body), dispatch.SocketIO)
		started, finished := <-r.events, <-r.events
		if started.Name != "persona.search.started" || finished.Name != tc.last {
			t.Fatalf("events %s, %s; want persona.search.started, %s", started.Name, finished.Name, tc.last)
		}
		for _, ev := range []events.Event{started, finished} {
			if ev.Topic != events.ProfileTopic(id.ProfileID) {
				t.Errorf("%s went to %s", ev.Name, ev.Topic)
			}
			if m := decode(t, ev.Data); m["call_id"] != res.CallID.String() || m["transport"] != "socketio" || m["operation"] != "persona.search" {
				t.Errorf("%s payload: %s", ev.Name, ev.Data)
			}
		}
		m := decode(t, finished.Data)
		if m["status"] != float64(tc.status) || !bytes.Equal(mustJSON(t, m["body"]), mustJSON(t, decode(t, res.Body))) {
			t.Errorf("%s carries %v, want the call's answer %d %s", finished.Name, m, res.Status, res.Body)
		}
	}
	// Without an identity there is nobody to tell: a public call emits nothing.
	r.d.Do(context.Background(), op(t, "system.health"), []byte(`{}`), dispatch.HTTP)
	r.eventLog.Sync()
	select {
	case ev := <-r.events:
		t.Fatalf("anonymous call emitted %s", ev.Name)
	default:
	}
}

func TestIdempotencyKeyWhileTheFirstCallRuns(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	calls.Add(1)
	r := newRig(t, &fakeHandlers{problem: func(context.Context, *gen.PersonaProblemRequest) (*gen.PersonaProblemResponse, error) {
		calls.Done()
		<-release
		return &gen.PersonaProblemResponse{Success: true, Message: "ok"}, nil
	}})
	body := []byte(`{"type":"bug","message":"m","idempotency_key":"k"}`)
	first := make(chan dispatch.Result)
	go func() { first <- r.d.Do(r.ctx, op(t, "persona.problem"), body, dispatch.HTTP) }()
	calls.Wait()
	if res := r.d.Do(r.ctx, op(t, "persona.problem"), body, dispatch.HTTP); res.Status != http.StatusConflict ||
		!strings.Contains(string(res.Body), "still running") {
		t.Fatalf("second call while the first runs: %d %s", res.Status, res.Body)
	}
	close(release)
	want := <-first
	again := r.d.Do(r.ctx, op(t, "persona.problem"), body, dispatch.HTTP)
	if again.Status != want.Status || !bytes.Equal(again.Body, want.Body) {
		t.Fatalf("replay: %d %s, want %d %s", again.Status, again.Body, want.Status, want.Body)
	}
}

func TestCallTimeout(t *testing.T) {
	r := newRig(t, &fakeHandlers{search: func(ctx context.Context, _ *gen.PersonaSearchRequest) (*gen.PersonaSearchResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	start := time.Now()
	res := r.d.Do(r.ctx, op(t, "persona.search"), []byte(`{}`), dispatch.HTTP)
	if res.Status != http.StatusGatewayTimeout || time.Since(start) > 3*time.Second {
		t.Fatalf("a handler past the call timeout: %d after %s", res.Status, time.Since(start))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
