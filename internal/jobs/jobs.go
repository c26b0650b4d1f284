// Package jobs runs generation runs: durable jobs that stream a model's text as events. A
// run is a row (queued, running, paused, interrupted, completed, failed, stopped) that a
// bounded pool of workers executes; its text goes out delta by delta as
// <artifact>.generate.text.progress events on the run's topic, and its result is stored
// before <artifact>.generate.completed. Runs can be paused, resumed, stopped, and can park
// with a question until answered. After a restart, a run the server was generating is
// resumed (when its model is deterministic, continuing after the last delta sent) or failed
// with the reason; none is left "running" forever.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/llm"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// Kind is what a kind of run does around the model: build its request, and deliver its
// text. Kinds are registered by the handlers, which own the domain.
type Kind interface {
	// Prepare builds the model request for a run. A non-empty question instead parks the
	// run in interrupted until it is answered (run.Answer then holds the answer).
	Prepare(ctx context.Context, q store.Q, run store.Run) (req llm.Request, question string, err error)
	// Deliver stores what the run produced, inside the transaction that completes the run,
	// and returns the run's result.
	Deliver(ctx context.Context, q store.Q, run store.Run, text string) (result map[string]any, err error)
}

// Announcer is a Kind that tells what it delivered: its events are stored with the run's
// completion, after the run's own.
type Announcer interface {
	Announce(run store.Run, result map[string]any) []events.Event
}

// Options tunes a Runner.
type Options struct {
	Workers    int           // runs generating at once (default 8)
	LocalDelay time.Duration // the pace of local models that set none (default 30ms)
}

// Runner executes runs.
type Runner struct {
	store  *store.Store
	events *events.Log
	log    *slog.Logger
	opts   Options
	kinds  map[string]Kind
	slots  chan struct{}

	ctx    context.Context // the runner's life; every run's context derives from it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool                      // Close was called: no run starts any more
	live    map[uuid.UUID]*job        // runs this node is executing (waiting, running, paused)
	subject map[uuid.UUID][]uuid.UUID // subject → its runs in order; the first one runs, so a chat gets one reply at a time
	changed chan struct{}             // closed and replaced at every state change (Watch)

	tokens atomic.Int64
}

// New returns a runner. Register the kinds, then Start it.
func New(st *store.Store, ev *events.Log, log *slog.Logger, opts Options) *Runner {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.LocalDelay < 0 {
		opts.LocalDelay = 0
	} else if opts.LocalDelay == 0 {
		opts.LocalDelay = 30 * time.Millisecond
	}
	r := &Runner{store: st, events: ev, log: log, opts: opts, kinds: map[string]Kind{},
		slots: make(chan struct{}, opts.Workers), live: map[uuid.UUID]*job{}, subject: map[uuid.UUID][]uuid.UUID{},
		changed: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Register adds a kind of run.
func (r *Runner) Register(name string, k Kind) { r.kinds[name] = k }

// job is a run this node executes.
type job struct {
	id      uuid.UUID
	subject *uuid.UUID
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when its goroutine ends

	holding bool // holds a worker slot (touched by the job's goroutine only)

	mu      sync.Mutex
	paused  bool
	resume  chan struct{} // closed when a pause ends
	stopped bool
	// text is what the model generated so far, once it streams: written under mu by the
	// stream, read under mu or by the job's goroutine.
	text *strings.Builder
}

func (j *job) wasStopped() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stopped
}

// Tokens counts the completion tokens generated since start.
func (r *Runner) Tokens() int64 { return r.tokens.Load() }

// Changed returns a channel closed at the next change of any run's state on this node.
func (r *Runner) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *Runner) notify() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Start recovers the runs a previous process left unfinished, then accepts new ones:
// queued runs are executed; runs that were running are resumed when their model is
// deterministic and failed otherwise.
func (r *Runner) Start(ctx context.Context) error {
	runs, err := r.store.Q().RunsWithStatus(ctx, store.RunQueued, store.RunRunning)
	if err != nil {
		return fmt.Errorf("recover runs: %w", err)
	}
	for _, run := range runs {
		if run.Status == store.RunRunning {
			gen, _, err := r.generator(ctx, run.ModelID)
			if d, ok := gen.(interface{ Deterministic() bool }); err != nil || !ok || !d.Deterministic() {
				r.fail(ctx, nil, run, "the server restarted while the model was generating; start a new generation")
				continue
			}
		}
		r.execute(run)
	}
	return nil
}

// Close cancels every run in progress (they stay "running" in the database, to be recovered
// by the next Start) and waits for their goroutines.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// Submit stores a new queued run and starts executing it.
func (r *Runner) Submit(ctx context.Context, q store.Q, run store.Run) (store.Run, error) {
	if _, ok := r.kinds[run.Kind]; !ok {
		return run, fmt.Errorf("no kind of run %q", run.Kind)
	}
	now := store.Now()
	run.ID, run.Status, run.CreatedAt, run.UpdatedAt = store.NewID(), store.RunQueued, now, now
	if run.Topic == "" {
		run.Topic = events.RunTopic(run.ID)
	}
	if err := q.InsertRun(ctx, run); err != nil {
		return run, err
	}
	return run, nil
}

// Execute starts executing a stored queued run: call it once the transaction that
// submitted it has committed. Runs on one subject execute one at a time, in the order they
// were given to Execute.
func (r *Runner) Execute(run store.Run) { r.execute(run) }

func (r *Runner) execute(run store.Run) {
	id := run.ID
	j := &job{id: id, subject: run.SubjectID, done: make(chan struct{})}
	j.ctx, j.cancel = context.WithCancel(r.ctx)
	r.mu.Lock()
	if _, ok := r.live[id]; ok || r.closed {
		r.mu.Unlock()
		return
	}
	r.live[id] = j
	if j.subject != nil {
		r.subject[*j.subject] = append(r.subject[*j.subject], id)
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer close(j.done)
		defer func() {
			r.mu.Lock()
			delete(r.live, id)
			if j.subject != nil {
				queue := r.subject[*j.subject]
				for i, other := range queue {
					if other == id {
						queue = append(queue[:i:i], queue[i+1:]...)
						break
					}
				}
				if len(queue) == 0 {
					delete(r.subject, *j.subject)
				} else {
					r.subject[*j.subject] = queue
				}
			}
			r.mu.Unlock()
			j.cancel()
			r.notify()
		}()
		err := r.runSafely(j)
		if err != nil && j.wasStopped() {
			// Stopped while the run was being read or written: it still ends stopped.
			err = r.stopLeftover(id)
		}
		if err != nil && r.ctx.Err() == nil {
			r.log.Error("run failed to execute", "run", id, "err", err)
		}
	}()
}

// acquire waits for the run's turn on its subject and for a worker slot.
func (r *Runner) acquire(j *job) error {
	if j.holding {
		return nil
	}
	for {
		if j.subject != nil {
			r.mu.Lock()
			first := r.subject[*j.subject][0] == j.id
			ch := r.changed
			r.mu.Unlock()
			if !first {
				select {
				case <-ch:
					continue
				case <-j.ctx.Done():
					return j.ctx.Err()
				}
			}
		}
		select {
		case r.slots <- struct{}{}:
			j.holding = true
			return nil
		case <-j.ctx.Done():
			return j.ctx.Err()
		}
	}
}

func (r *Runner) release(j *job) {
	if j.holding {
		<-r.slots
		j.holding = false
	}
}

// waitIfPaused blocks while the run is paused, giving its worker slot back meanwhile. It
// returns the job's context error when the run is stopped (or the runner closes).
func (r *Runner) waitIfPaused(j *job) error {
	j.mu.Lock()
	paused, resume := j.paused, j.resume
	j.mu.Unlock()
	if !paused {
		return j.ctx.Err()
	}
	r.release(j)
	select {
	case <-resume:
	case <-j.ctx.Done():
		return j.ctx.Err()
	}
	return r.acquire(j)
}

// runSafely runs j, turning a panic of its kind (or of the runner) into the run's failure,
// with the cause logged: the server lives on.
func (r *Runner) runSafely(j *job) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		r.log.Error("run panicked", "run", j.id, "panic", p, "stack", string(debug.Stack()))
		run, rerr := r.store.Q().RunByID(context.Background(), j.id)
		if rerr != nil {
			err = rerr
			return
		}
		if !store.RunFinished(run.Status) {
			r.fail(context.Background(), j, run, "the run failed unexpectedly; the cause has been logged")
		}
		err = nil
	}()
	return r.run(j)
}

// run executes one run to its end (or until it parks).
func (r *Runner) run(j *job) error {
	ctx := j.ctx
	run, err := r.store.Q().RunByID(ctx, j.id)
	if err != nil {
		return err
	}
	if store.RunFinished(run.Status) || run.Status == store.RunInterrupted {
		return nil
	}
	if run.Status == store.RunPaused {
		j.mu.Lock()
		j.paused, j.resume = true, make(chan struct{})
		j.mu.Unlock()
	}
	defer r.release(j)
	if err := r.acquire(j); err != nil {
		return r.cancelled(j, run)
	}
	if err := r.waitIfPaused(j); err != nil {
		return r.cancelled(j, run)
	}
	// Reload: the run may have changed while it waited.
	if run, err = r.store.Q().RunByID(ctx, j.id); err != nil {
		return err
	}
	if store.RunFinished(run.Status) {
		return nil
	}
	kind := r.kinds[run.Kind]
	if kind == nil {
		r.fail(ctx, j, run, fmt.Sprintf("this server cannot run %q runs", run.Kind))
		return nil
	}

	req, question, err := kind.Prepare(ctx, r.store.Q(), run)
	if err != nil {
		return r.failed(j, run, err)
	}
	if question != "" {
		run.Status, run.Question, run.UpdatedAt = store.RunInterrupted, &question, store.Now()
		if err := r.save(ctx, j, &run, func(run store.Run) []events.Event { return r.stateEvents(run, "interrupted") }); err != nil {
			return err
		}
		r.notify()
		return nil
	}
	gen, model, err := r.generator(ctx, run.ModelID)
	if err != nil {
		return r.failed(j, run, err)
	}
	req.Model = model.Name

	// What a previous process already sent of this run's text (after a restart).
	sent, err := r.sentText(ctx, run)
	if err != nil {
		return err
	}
	resumed := run.Status == store.RunRunning
	now := store.Now()
	run.Status, run.ModelID, run.UpdatedAt = store.RunRunning, &model.ID, now
	if run.StartedAt == nil {
		run.StartedAt = &now
	}
	started := map[string]any{"run_id": run.ID, "artifact": run.Artifact, "kind": run.Kind}
	if run.SubjectID != nil {
		started["subject_id"] = run.SubjectID
	}
	if resumed {
		started["resumed"] = true
	}
	if err := r.save(ctx, j, &run, func(run store.Run) []events.Event {
		return []events.Event{r.event(run, "generate.started", started)}
	}); err != nil {
		return err
	}
	run.Status = store.RunRunning // what the events and the rest of the run go by
	r.notify()

	var text strings.Builder
	expected := max(req.MaxTokens, 120)
	tokens, lastPct := 0, 0
	if sent != "" {
		if d, ok := gen.(interface{ Deterministic() bool }); !ok || !d.Deterministic() {
			r.fail(ctx, j, run, "the server restarted while the model was generating; start a new generation")
			return nil
		}
	}
	j.mu.Lock()
	j.text = &text
	j.mu.Unlock()
	usage, err := gen.Stream(ctx, req, func(delta string) error {
		// The delta goes out under the job's lock, so that it is sent either before a
		// pause's event or after the resume's, never between.
		for {
			j.mu.Lock()
			if !j.paused {
				break
			}
			j.mu.Unlock()
			if err := r.waitIfPaused(j); err != nil {
				return err
			}
		}
		defer j.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		tokens++
		if at := text.Len(); at < len(sent) {
			// Regenerating what was sent before the restart: it must be the same text, or
			// the watchers' text and the stored one would differ.
			same := min(len(delta), len(sent)-at)
			if delta[:same] != sent[at:at+same] {
				return errDiverged
			}
			text.WriteString(delta)
			if delta = delta[same:]; delta == "" {
				return nil
			}
		} else {
			text.WriteString(delta)
		}
		r.tokens.Add(1)
		r.publish(run, "generate.text.progress", map[string]any{"run_id": run.ID, "delta": delta})
		if pct := min(99, tokens*100/expected); pct/10 > lastPct/10 {
			lastPct = pct
			// Each tenth of the way, the text so far is checkpointed in the run's row.
			run.Progress = pct
			progress := r.event(run, "generate.progress", map[string]any{"run_id": run.ID, "percentage": pct})
			err := r.commit(ctx, func(q store.Q) error {
				if err := r.record(ctx, q, j, &run, progress); err != nil {
					return err
				}
				return q.CheckpointRun(ctx, run)
			})
			if err != nil && ctx.Err() == nil {
				// The stream goes on: the next checkpoint, or the run's end, stores the text.
				r.log.Warn("checkpoint run", "run", run.ID, "err", err)
			}
		}
		return nil
	})
	run.PromptTokens, run.CompletionTokens = usage.PromptTokens, usage.CompletionTokens
	switch {
	case err != nil && ctx.Err() != nil:
		return r.cancelled(j, run)
	case err != nil:
		r.fail(ctx, j, run, reason(err)) // what was streamed before the failure stays readable
		return nil
	}
	return r.complete(j, kind, run, text.String())
}

// cancelled ends a run whose context ended: stopped by its owner, or the runner closing
// (the run then stays as it is, for the next Start).
func (r *Runner) cancelled(j *job, run store.Run) error {
	if !j.wasStopped() {
		return nil
	}
	return r.finishStopped(j, run)
}

// failed ends a run on err, unless the run's context ended meanwhile (the error is then
// most likely that): a stopped run ends stopped, and a run of a closing runner stays as it
// is, for the next Start.
func (r *Runner) failed(j *job, run store.Run, err error) error {
	if j.ctx.Err() != nil {
		return r.cancelled(j, run)
	}
	r.fail(j.ctx, j, run, reason(err))
	return nil
}

// stopLeftover ends a stopped run whose job could not (it failed to read or write the run).
func (r *Runner) stopLeftover(id uuid.UUID) error {
	run, err := r.store.Q().RunByID(context.Background(), id)
	if err != nil || store.RunFinished(run.Status) {
		return err
	}
	return r.finishStopped(nil, run)
}

func (r *Runner) complete(j *job, kind Kind, run store.Run, text string) error {
	ctx := j.ctx
	final := run
	err := r.commit(ctx, func(q store.Q) error {
		result, err := kind.Deliver(ctx, q, final, text)
		if err != nil {
			return err
		}
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		now := store.Now()
		final.Status, final.Progress, final.Result, final.UpdatedAt, final.FinishedAt = store.RunCompleted, 100, b, now, &now
		evs := []events.Event{
			r.event(final, "generate.progress", map[string]any{"run_id": run.ID, "percentage": 100}),
			r.event(final, "generate.completed", map[string]any{"run_id": run.ID, "text": text, "result": result,
				"usage": map[string]int{"prompt_tokens": run.PromptTokens, "completion_tokens": run.CompletionTokens}}),
		}
		if a, ok := kind.(Announcer); ok {
			evs = append(evs, a.Announce(final, result)...)
		}
		if err := r.record(ctx, q, j, &final, evs...); err != nil {
			return err
		}
		return q.UpdateRun(ctx, final)
	})
	if err != nil {
		return r.failed(j, run, err)
	}
	r.notify()
	return nil
}

// commit runs write in a transaction, after the events the run published before (its
// deltas) are stored, so that the events write stages are numbered after them.
func (r *Runner) commit(ctx context.Context, write func(q store.Q) error) error {
	if err := r.events.Synced(ctx); err != nil {
		r.log.Warn("the run's earlier events are not stored yet", "err", err)
	}
	return r.store.Tx(ctx, write)
}

// record stages the events announcing a change of the run in q's transaction, and, when
// the run's job has generated text, sets the run's output to it: the row then holds the
// text of every delta numbered below its output_seq, the number of the last of evs (on the
// run's topic), so that the text outlives the events' retention.
func (r *Runner) record(ctx context.Context, q store.Q, j *job, run *store.Run, evs ...events.Event) error {
	if err := r.events.Stage(ctx, q, evs...); err != nil {
		return err
	}
	if j == nil || j.text == nil {
		return nil
	}
	for _, ev := range slices.Backward(evs) {
		if ev.Topic == run.Topic {
			run.Output, run.OutputSeq = j.text.String(), ev.Seq
			break
		}
	}
	return nil
}

// update writes a run with the events announcing its new state.
func (r *Runner) update(ctx context.Context, j *job, run store.Run, evs ...events.Event) error {
	return r.commit(ctx, func(q store.Q) error {
		if err := r.record(ctx, q, j, &run, evs...); err != nil {
			return err
		}
		return q.UpdateRun(ctx, run)
	})
}

// fail marks a run failed with a reason the caller may read; j is its job, if it has one.
func (r *Runner) fail(ctx context.Context, j *job, run store.Run, why string) {
	now := store.Now()
	run.Status, run.Error, run.UpdatedAt, run.FinishedAt = store.RunFailed, &why, now, &now
	failed := r.event(run, "generate.failed", map[string]any{"run_id": run.ID, "error": why})
	if err := r.update(context.WithoutCancel(ctx), j, run, failed); err != nil {
		r.log.Error("mark run failed", "run", run.ID, "err", err)
		return
	}
	r.notify()
}

// finishStopped ends a run stopped; j is its job, if it has one.
func (r *Runner) finishStopped(j *job, run store.Run) error {
	ctx := context.Background()
	from := run.Status
	now := store.Now()
	run.Status, run.UpdatedAt, run.FinishedAt = store.RunStopped, now, &now
	err := r.commit(ctx, func(q store.Q) error {
		if err := r.record(ctx, q, j, &run, r.stateEvents(run, "stopped")...); err != nil {
			return err
		}
		// Only from the state read: whoever ends the run first ends it, once.
		switch ok, err := q.UpdateRunFrom(ctx, run, from); {
		case err != nil:
			return err
		case !ok:
			return errAlreadyChanged
		}
		return nil
	})
	if errors.Is(err, errAlreadyChanged) {
		return nil
	}
	if err != nil {
		return err
	}
	r.notify()
	return nil
}

// errAlreadyChanged rolls back a write of a run that changed since it was read.
var errAlreadyChanged = errors.New("the run changed since it was read")

// errDiverged is why a run resumed after a restart fails when its model does not produce
// the text it had sent again.
var errDiverged = problem.Conflict("the server restarted while the model was generating, and the model did not produce the same text again; start a new generation")

// reason turns an error into what a run's caller is told: problems and model errors as
// they are (they are written for users), anything else as a generic sentence.
func reason(err error) string {
	var p *problem.Problem
	switch {
	case errors.As(err, &p):
		return p.Detail
	case errors.Is(err, llm.ErrIncomplete), strings.HasPrefix(err.Error(), "model "):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "the model took too long"
	}
	return "the generation failed: " + err.Error()
}

// event builds one of a run's events: on its topic, and to its owner's sockets.
func (r *Runner) event(run store.Run, suffix string, payload map[string]any) events.Event {
	data, err := json.Marshal(payload)
	if err != nil { // the payloads are plain values: this is a programming error
		panic(fmt.Sprintf("jobs: encode %s event of run %s: %v", suffix, run.ID, err))
	}
	return events.Event{Topic: run.Topic, Name: run.Artifact + "." + suffix, Data: data,
		Also: []string{events.ProfileTopic(run.ProfileID)}}
}

// publish sends one of a run's events that announces no stored change (deltas, progress).
func (r *Runner) publish(run store.Run, suffix string, payload map[string]any) {
	r.events.Publish(r.event(run, suffix, payload))
}

// stateEvents is the event announcing a run's new state ("" announces none).
func (r *Runner) stateEvents(run store.Run, state string) []events.Event {
	if state == "" {
		return nil
	}
	payload := map[string]any{"run_id": run.ID, "status": run.Status}
	if run.Question != nil && run.Status == store.RunInterrupted {
		payload["question"] = *run.Question
	}
	return []events.Event{r.event(run, "generate."+state, payload)}
}

// sentText is the text of the run's deltas already published (by a process that stopped
// while the run was running).
func (r *Runner) sentText(ctx context.Context, run store.Run) (string, error) {
	if run.Status != store.RunRunning || run.StartedAt == nil {
		return "", nil
	}
	return RunText(ctx, r.store.Q(), run)
}

// RunText is the text a run has sent: its row's checkpoint, then the deltas published after
// it.
func RunText(ctx context.Context, q store.Q, run store.Run) (string, error) {
	text, _, err := RunTextSeq(ctx, q, run, -1)
	return text, err
}

// RunTextSeq is RunText up to the event numbered upTo (all events, when negative), with the
// number the text goes up to: the last delta included, or the checkpoint's.
func RunTextSeq(ctx context.Context, q store.Q, run store.Run, upTo int64) (string, int64, error) {
	if run.StartedAt == nil {
		return "", 0, nil
	}
	name := run.Artifact + ".generate.text.progress"
	id := run.ID.String()
	var b strings.Builder
	var after, last int64
	if run.OutputSeq > 0 && (upTo < 0 || run.OutputSeq <= upTo) {
		// The row holds the text of every delta numbered below output_seq.
		b.WriteString(run.Output)
		after, last = run.OutputSeq, run.OutputSeq
	}
	for {
		evs, err := q.EventsFrom(ctx, run.Topic, *run.StartedAt, after, 500)
		if err != nil {
			return "", 0, err
		}
		for _, ev := range evs {
			after = ev.Seq
			if upTo >= 0 && ev.Seq > upTo {
				return b.String(), last, nil
			}
			if ev.Name != name {
				continue
			}
			var d struct {
				RunID string `json:"run_id"`
				Delta string `json:"delta"`
			}
			if json.Unmarshal(ev.Data, &d) == nil && d.RunID == id {
				b.WriteString(d.Delta)
				last = ev.Seq
			}
		}
		if len(evs) < 500 {
			return b.String(), last, nil
		}
	}
}
