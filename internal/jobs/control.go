package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/llm"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// The control operations. Each answers the run as it is after the change, or a 409 problem
// when the run's state does not allow it. They work on runs this node executes and on runs
// that rest in the database (paused or interrupted after a restart) alike.

// Pause holds a queued or running run until Resume.
func (r *Runner) Pause(ctx context.Context, id uuid.UUID) (store.Run, error) {
	return r.control(ctx, id, func(run *store.Run, j *job) (string, error) {
		switch run.Status {
		case store.RunPaused:
			return "", nil
		case store.RunQueued, store.RunRunning:
		default:
			return "", notNow(*run, "paused")
		}
		if j != nil && !j.paused {
			j.paused, j.resume = true, make(chan struct{})
		}
		run.Status = store.RunPaused
		return "paused", nil
	})
}

// Resume continues a paused run.
func (r *Runner) Resume(ctx context.Context, id uuid.UUID) (store.Run, error) {
	var execute bool
	var stored store.Run
	run, err := r.control(ctx, id, func(run *store.Run, j *job) (string, error) {
		stored = *run
		if run.Status != store.RunPaused {
			return "", notNow(*run, "resumed")
		}
		run.Status = store.RunQueued
		if run.StartedAt != nil {
			run.Status = store.RunRunning
		}
		switch {
		case j == nil:
			execute = true
		case j.paused:
			j.paused = false
			close(j.resume)
		}
		return "resumed", nil
	})
	if execute && err == nil {
		r.execute(stored)
	}
	return run, err
}

// Answer gives an interrupted run its answer and executes it again.
func (r *Runner) Answer(ctx context.Context, id uuid.UUID, answer string) (store.Run, error) {
	var parked *job
	run, err := r.control(ctx, id, func(run *store.Run, j *job) (string, error) {
		if run.Status != store.RunInterrupted {
			return "", notNow(*run, "answered: it asked nothing")
		}
		run.Status, run.Answer = store.RunQueued, &answer
		parked = j
		return "", nil
	})
	if err != nil {
		return run, err
	}
	if parked != nil { // the job that asked is still ending: execute after it
		select {
		case <-parked.done:
		case <-ctx.Done():
			return run, ctx.Err()
		}
	}
	r.execute(run)
	return run, nil
}

// Stop cancels a run that has not ended; its events end with <artifact>.generate.stopped.
func (r *Runner) Stop(ctx context.Context, id uuid.UUID) (store.Run, error) {
	var running *job
	run, err := r.control(ctx, id, func(run *store.Run, j *job) (string, error) {
		if store.RunFinished(run.Status) {
			return "", notNow(*run, "stopped")
		}
		if j != nil {
			// The job's goroutine writes the stopped state, with the text it has.
			j.stopped = true
			j.cancel()
			running = j
			return "", nil
		}
		now := store.Now()
		run.Status, run.FinishedAt = store.RunStopped, &now
		return "stopped", nil
	})
	if err != nil || running == nil {
		return run, err
	}
	select {
	case <-running.done:
	case <-ctx.Done():
		return run, ctx.Err()
	}
	if run, err = r.store.Q().RunByID(ctx, id); err != nil || store.RunFinished(run.Status) {
		return run, err
	}
	// The job ended without seeing the stop (it parked with a question just then).
	if err := r.finishStopped(nil, run); err != nil {
		return run, err
	}
	return r.store.Q().RunByID(ctx, id)
}

// control applies change to a run under the lock of its job (if this node executes it),
// writes the run, and publishes the state event change names ("" for none).
func (r *Runner) control(ctx context.Context, id uuid.UUID, change func(*store.Run, *job) (string, error)) (store.Run, error) {
	r.mu.Lock()
	j := r.live[id]
	r.mu.Unlock()
	if j != nil {
		j.mu.Lock()
		defer j.mu.Unlock()
	}
	run, err := r.store.Q().RunByID(ctx, id)
	if err != nil {
		return run, err
	}
	before := run.Status
	state, err := change(&run, j)
	if err != nil || run.Status == before {
		return run, err
	}
	run.UpdatedAt = store.Now()
	// Written only if the status is still the one read: the run's own job (or another node)
	// may have ended it meanwhile, and that must not be undone.
	err = r.commit(ctx, func(q store.Q) error {
		// A pause checkpoints the text generated so far with its event.
		if err := r.record(ctx, q, j, &run, r.stateEvents(run, state)...); err != nil {
			return err
		}
		switch ok, err := q.UpdateRunFrom(ctx, run, before); {
		case err != nil:
			return err
		case !ok:
			return problem.Conflict("run %s changed while it was being changed; read it again", run.ID)
		}
		return nil
	})
	if err != nil {
		return run, err
	}
	r.notify()
	return run, nil
}

func notNow(run store.Run, what string) error {
	return problem.Conflict("run %s is %s and cannot be %s", run.ID, run.Status, what)
}

// save writes a run from its job's goroutine, with the events announcing it. A pause
// requested meanwhile wins over the job's "running".
func (r *Runner) save(ctx context.Context, j *job, run *store.Run, announce func(store.Run) []events.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.paused && run.Status == store.RunRunning {
		run.Status = store.RunPaused
	}
	return r.update(ctx, j, *run, announce(*run)...)
}

// generator returns the generator of a model (the default model when id is nil).
func (r *Runner) generator(ctx context.Context, id *uuid.UUID) (llm.Generator, store.Model, error) {
	q := r.store.Q()
	var m store.Model
	var err error
	if id != nil {
		m, err = q.ModelByID(ctx, *id)
	} else {
		m, err = q.DefaultModel(ctx)
	}
	if err != nil {
		return nil, m, fmt.Errorf("model: %w", err)
	}
	p, err := q.ProviderByID(ctx, m.ProviderID)
	if err != nil {
		return nil, m, fmt.Errorf("provider of model %s: %w", m.ID, err)
	}
	switch p.Kind {
	case store.ProviderLocal:
		delay := r.opts.LocalDelay
		if m.TokenDelayMS != nil {
			delay = time.Duration(*m.TokenDelayMS) * time.Millisecond
		}
		return llm.Local{Delay: delay}, m, nil
	case store.ProviderOpenAI:
		return llm.NewOpenAI(llm.OpenAIConfig{BaseURL: p.BaseURL, APIKey: p.APIKey}), m, nil
	}
	return nil, m, fmt.Errorf("provider %s has unknown kind %q", p.ID, p.Kind)
}
