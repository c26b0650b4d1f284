package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/llm"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// echoKind asks the local model to chat about the run's input; with "ask" as input it asks
// a question first and chats about the answer.
type echoKind struct{ delivered chan string }

func (echoKind) Prepare(_ context.Context, _ store.Q, run store.Run) (llm.Request, string, error) {
	var in struct{ Text string }
	_ = json.Unmarshal(run.Input, &in)
	switch {
	case in.Text == "fail":
		return llm.Request{}, "", errors.New("cannot prepare")
	case in.Text == "panic":
		panic("a bug in a kind")
	case in.Text == "ask" && run.Answer == nil:
		return llm.Request{}, "What should I talk about?", nil
	case in.Text == "ask":
		in.Text = *run.Answer
	}
	return llm.Request{Messages: []llm.Message{
		{Role: llm.System, Content: llm.CharacterPrompt(llm.Character{Name: "Sue", About: "a tough buyer"})},
		{Role: llm.User, Content: in.Text},
	}}, "", nil
}

func (k echoKind) Deliver(_ context.Context, _ store.Q, _ store.Run, text string) (map[string]any, error) {
	if k.delivered != nil {
		k.delivered <- text
	}
	return map[string]any{"length": len(text)}, nil
}

// rig is a runner on a fresh database with an event log, recording every event.
type rig struct {
	st      *store.Store
	log     *events.Log
	runner  *jobs.Runner
	profile uuid.UUID
	mu      sync.Mutex
	events  []events.Event
	kind    echoKind
}

func newRig(t *testing.T, st *store.Store, delay time.Duration) *rig {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &rig{st: st, log: events.New(st, discard, events.Options{}), kind: echoKind{delivered: make(chan string, 10)}}
	r.log.Subscribe(func(batch []events.Event) {
		r.mu.Lock()
		r.events = append(r.events, batch...)
		r.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	logDone := make(chan struct{})
	go func() { r.log.Run(ctx); close(logDone) }()
	r.runner = jobs.New(st, r.log, discard, jobs.Options{Workers: 2, LocalDelay: delay})
	r.runner.Register("echo", r.kind)
	if err := r.runner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.runner.Close()
		cancel()
		<-logDone
	})
	p, err := st.Q().ProfileByName(context.Background(), "owner")
	if err != nil {
		p, err = st.Q().CreateProfile(context.Background(), "owner", "admin")
		if err != nil {
			t.Fatal(err)
		}
	}
	r.profile = p.ID
	return r
}

func (r *rig) submit(t *testing.T, text string, subject *uuid.UUID) store.Run {
	t.Helper()
	input, _ := json.Marshal(map[string]string{"Text": text})
	run, err := r.runner.Submit(context.Background(), r.st.Q(), store.Run{Artifact: "test", Kind: "echo",
		ProfileID: r.profile, SubjectID: subject, Input: input})
	if err != nil {
		t.Fatal(err)
	}
	r.runner.Execute(run)
	return run
}

// wait polls the run until cond holds.
func (r *rig) wait(t *testing.T, id uuid.UUID, what string, cond func(store.Run) bool) store.Run {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		run, err := r.st.Q().RunByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run never got %s: %+v", what, run)
		}
		select {
		case <-r.runner.Changed():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ended(run store.Run) bool { return store.RunFinished(run.Status) }

// runEvents returns the names of a run's events and the text of its deltas.
func (r *rig) runEvents(id uuid.UUID) ([]string, string) {
	r.log.Sync()
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	var text strings.Builder
	for _, ev := range r.events {
		var p struct {
			RunID string `json:"run_id"`
			Delta string `json:"delta"`
		}
		_ = json.Unmarshal(ev.Data, &p)
		if p.RunID != id.String() {
			continue
		}
		if strings.HasSuffix(ev.Name, ".generate.progress") {
			continue
		}
		if strings.HasSuffix(ev.Name, ".text.progress") {
			text.WriteString(p.Delta)
			if len(names) > 0 && names[len(names)-1] == "delta" {
				continue
			}
			names = append(names, "delta")
			continue
		}
		names = append(names, strings.TrimPrefix(ev.Name, "test.generate."))
	}
	return names, text.String()
}

func TestRunStreamsAndDelivers(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			r := newRig(t, d.Open(t), 0)
			run := r.submit(t, "Tell me about your delivery times", nil)
			done := r.wait(t, run.ID, "completed", ended)
			if done.Status != store.RunCompleted || !strings.Contains(done.Output, "delivery") || done.CompletionTokens == 0 ||
				string(done.Result) != `{"length":`+itoa(len(done.Output))+`}` {
				t.Fatalf("run: %+v", done)
			}
			names, text := r.runEvents(run.ID)
			if text != done.Output {
				t.Fatalf("deltas %q != output %q", text, done.Output)
			}
			if names[0] != "started" || names[1] != "delta" || names[len(names)-1] != "completed" {
				t.Fatalf("events: %v", names)
			}
			if got := <-r.kind.delivered; got != done.Output {
				t.Fatalf("delivered %q", got)
			}
			if rebuilt, err := jobs.RunText(context.Background(), r.st.Q(), done); err != nil || rebuilt != done.Output {
				t.Fatalf("RunText = %q, %v", rebuilt, err)
			}
		})
	}
}

func TestPauseResumeStop(t *testing.T) {
	r := newRig(t, testdb.Dialects(t)[0].Open(t), 15*time.Millisecond)
	ctx := context.Background()
	run := r.submit(t, "We can deliver everything by Friday at the latest, guaranteed", nil)
	r.wait(t, run.ID, "running", func(r store.Run) bool { return r.Status == store.RunRunning })
	time.Sleep(60 * time.Millisecond)
	if _, err := r.runner.Pause(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	_, before := r.runEvents(run.ID)
	time.Sleep(200 * time.Millisecond)
	if _, during := r.runEvents(run.ID); during != before {
		t.Fatalf("text went on while paused: %q → %q", before, during)
	}
	if p, _ := r.st.Q().RunByID(ctx, run.ID); p.Status != store.RunPaused {
		t.Fatalf("status while paused: %s", p.Status)
	}
	if _, err := r.runner.Pause(ctx, run.ID); err != nil {
		t.Fatalf("pausing twice: %v", err)
	}
	if _, err := r.runner.Resume(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	done := r.wait(t, run.ID, "completed", ended)
	names, text := r.runEvents(run.ID)
	if done.Status != store.RunCompleted || text != done.Output {
		t.Fatalf("after resume: %s, deltas %q, output %q", done.Status, text, done.Output)
	}
	want := []string{"started", "delta", "paused", "resumed", "delta", "completed"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", names, want)
	}
	if _, err := r.runner.Resume(ctx, run.ID); err == nil {
		t.Fatal("resumed a completed run")
	}

	stopped := r.submit(t, "A long story about procurement schedules and the many ways they fail", nil)
	r.wait(t, stopped.ID, "running", func(r store.Run) bool { return r.Status == store.RunRunning })
	time.Sleep(50 * time.Millisecond)
	got, err := r.runner.Stop(ctx, stopped.ID)
	if err != nil || got.Status != store.RunStopped || got.FinishedAt == nil {
		t.Fatalf("stop: %+v %v", got, err)
	}
	names, text = r.runEvents(stopped.ID)
	if names[len(names)-1] != "stopped" || text == "" || text != got.Output {
		t.Fatalf("stopped run: events %v, text %q, output %q", names, text, got.Output)
	}
	if _, err := r.runner.Stop(ctx, stopped.ID); err == nil {
		t.Fatal("stopped a stopped run")
	}
}

func TestInterruptedRunContinuesWhenAnswered(t *testing.T) {
	r := newRig(t, testdb.Dialects(t)[0].Open(t), 0)
	ctx := context.Background()
	run := r.submit(t, "ask", nil)
	parked := r.wait(t, run.ID, "interrupted", func(r store.Run) bool { return r.Status == store.RunInterrupted })
	if parked.Question == nil || *parked.Question != "What should I talk about?" {
		t.Fatalf("question: %+v", parked)
	}
	if _, err := r.runner.Pause(ctx, run.ID); err == nil {
		t.Fatal("paused a run waiting for an answer")
	}
	if _, err := r.runner.Answer(ctx, run.ID, "pricing for bulk orders"); err != nil {
		t.Fatal(err)
	}
	done := r.wait(t, run.ID, "completed", ended)
	if done.Status != store.RunCompleted || !strings.Contains(done.Output, "pricing") {
		t.Fatalf("answered run: %+v", done)
	}
	if names, _ := r.runEvents(run.ID); names[0] != "interrupted" || names[1] != "started" {
		t.Fatalf("events: %v", names)
	}
	if _, err := r.runner.Answer(ctx, run.ID, "again"); err == nil {
		t.Fatal("answered a run that asked nothing")
	}

	failed := r.submit(t, "fail", nil)
	if got := r.wait(t, failed.ID, "failed", ended); got.Status != store.RunFailed || got.Error == nil || !strings.Contains(*got.Error, "cannot prepare") {
		t.Fatalf("failed run: %+v", got)
	}
}

// TestRestartResumesDeterministicRuns closes a runner mid-run, as a server stopping does,
// and starts another on the same database: the run goes on after the last delta sent,
// so that all its deltas, from both, make its text exactly once.
func TestRestartResumesDeterministicRuns(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			first := newRig(t, st, 15*time.Millisecond)
			run := first.submit(t, "Our warehouse ships within two days across the whole country", nil)
			first.wait(t, run.ID, "running", func(r store.Run) bool { return r.Status == store.RunRunning })
			time.Sleep(80 * time.Millisecond)
			first.runner.Close()
			_, partial := first.runEvents(run.ID)
			if partial == "" {
				t.Fatal("nothing was sent before the restart")
			}
			if mid, _ := st.Q().RunByID(context.Background(), run.ID); mid.Status != store.RunRunning {
				t.Fatalf("after close the run is %s, want running", mid.Status)
			}

			second := newRig(t, st, 0)
			done := second.wait(t, run.ID, "completed", ended)
			names, rest := second.runEvents(run.ID)
			if done.Status != store.RunCompleted || partial+rest != done.Output || rest == "" {
				t.Fatalf("resumed: %s\nbefore %q\nafter  %q\nfull   %q", done.Status, partial, rest, done.Output)
			}
			if rebuilt, _ := jobs.RunText(context.Background(), st.Q(), done); rebuilt != done.Output {
				t.Fatalf("all deltas %q != %q", rebuilt, done.Output)
			}
			if names[0] != "started" {
				t.Fatalf("events after restart: %v", names)
			}
		})
	}
}

func TestRestartFailsRunsOfOtherModels(t *testing.T) {
	st := testdb.Dialects(t)[0].Open(t)
	ctx := context.Background()
	now := store.Now()
	prov := store.Provider{ID: store.NewID(), Name: "remote", Kind: store.ProviderOpenAI, BaseURL: "http://127.0.0.1:1/v1", CreatedAt: now, UpdatedAt: now}
	model := store.Model{ID: store.NewID(), ProviderID: prov.ID, Name: "m", Label: "m", CreatedAt: now, UpdatedAt: now}
	p, _ := st.Q().CreateProfile(ctx, "owner", "admin")
	run := store.Run{ID: store.NewID(), Artifact: "test", Kind: "echo", Topic: "run/x", ProfileID: p.ID, ModelID: &model.ID,
		Status: store.RunRunning, Input: []byte(`{}`), CreatedAt: now, UpdatedAt: now, StartedAt: &now}
	for _, err := range []error{st.Q().SaveProvider(ctx, prov), st.Q().SaveModel(ctx, model), st.Q().InsertRun(ctx, run)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := newRig(t, st, 0)
	got := r.wait(t, run.ID, "failed", ended)
	if got.Status != store.RunFailed || got.Error == nil || !strings.Contains(*got.Error, "restarted") {
		t.Fatalf("run of a remote model after a restart: %+v", got)
	}
}

func TestOneRunPerSubjectAtATime(t *testing.T) {
	r := newRig(t, testdb.Dialects(t)[0].Open(t), 5*time.Millisecond)
	subject := store.NewID()
	a := r.submit(t, "first question about logistics", &subject)
	b := r.submit(t, "second question about pricing", &subject)
	da := r.wait(t, a.ID, "completed", ended)
	db := r.wait(t, b.ID, "completed", ended)
	if db.StartedAt.Before(*da.FinishedAt) {
		t.Fatalf("the second run of a subject started at %s, before the first finished at %s", db.StartedAt, da.FinishedAt)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestAPanickingRunFailsAndTheServerLives: a kind that panics fails its run with a reason;
// the runner goes on running the next ones.
func TestAPanickingRunFailsAndTheServerLives(t *testing.T) {
	r := newRig(t, testdb.Dialects(t)[0].Open(t), time.Millisecond)
	bad := r.wait(t, r.submit(t, "panic", nil).ID, "an end", ended)
	if bad.Status != store.RunFailed || bad.Error == nil || !strings.Contains(*bad.Error, "unexpectedly") {
		t.Fatalf("the panicking run: %s %v", bad.Status, bad.Error)
	}
	if good := r.wait(t, r.submit(t, "hello", nil).ID, "an end", ended); good.Status != store.RunCompleted {
		t.Fatalf("the next run: %s", good.Status)
	}
}

// TestAPausedRunKeepsItsTextPastRetention: a run's progress and text are checkpointed in its
// row, each tenth of the way and when it is paused, so that once every event of its topic has
// expired the row still gives its text; after a restart the resumed run goes on after that
// text, and its deltas from both processes make its output exactly once.
func TestAPausedRunKeepsItsTextPastRetention(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			ctx := context.Background()
			first := newRig(t, st, 10*time.Millisecond)
			run := first.submit(t, "Tell me everything about the delivery schedules of the northern warehouses", nil)
			mid := first.wait(t, run.ID, "checkpointed", func(r store.Run) bool { return r.Progress >= 10 })
			if mid.Status != store.RunRunning || mid.Output == "" || mid.OutputSeq == 0 {
				t.Fatalf("the row after the first tenth: %s, progress %d, output %q, output_seq %d",
					mid.Status, mid.Progress, mid.Output, mid.OutputSeq)
			}
			if _, err := first.runner.Pause(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			_, sent := first.runEvents(run.ID)
			paused, err := st.Q().RunByID(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if paused.Status != store.RunPaused || paused.Output != sent {
				t.Fatalf("the paused row: %s, output %q; the deltas sent: %q", paused.Status, paused.Output, sent)
			}
			first.runner.Close()

			// Every event of the run expires.
			if _, err := st.Q().PurgeEvents(ctx, store.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if text, err := jobs.RunText(ctx, st.Q(), paused); err != nil || text != sent {
				t.Fatalf("the text after the events expired: %q, %v; want %q", text, err, sent)
			}

			second := newRig(t, st, 0)
			if _, err := second.runner.Resume(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			done := second.wait(t, run.ID, "completed", ended)
			_, rest := second.runEvents(run.ID)
			if done.Status != store.RunCompleted || sent+rest != done.Output || rest == "" {
				t.Fatalf("resumed: %s\nbefore %q\nafter  %q\nfull   %q", done.Status, sent, rest, done.Output)
			}
		})
	}
}
