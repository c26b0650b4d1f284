package ws

import "time"

// workers runs socket calls on goroutines that outlive them. A call runs deep (the
// dispatcher, a handler, the database driver): on a new goroutine, whose stack starts small,
// every call paid for growing that stack several times over, copying it each time — 7 % of
// the server's CPU under load. A worker keeps its grown stack for the next call.
//
// run never makes a call wait for another: it hands fn to an idle worker if there is one and
// starts a new worker otherwise. So there are never more workers than calls running at once
// (which the sockets' call slots bound), and a worker that finds nothing to do for idleFor
// ends: under load a worker is handed its next call within microseconds, and at a few calls
// a second a new goroutine per call costs nothing worth keeping one for.
type workers struct {
	jobs    chan func() // unbuffered: a send succeeds only when a worker is waiting
	idleFor time.Duration
}

// callWorkerIdle is how long a call worker waits for another call before it ends.
const callWorkerIdle = 250 * time.Millisecond

func newWorkers(idleFor time.Duration) *workers {
	return &workers{jobs: make(chan func()), idleFor: idleFor}
}

// run runs fn on a worker.
func (w *workers) run(fn func()) {
	select {
	case w.jobs <- fn:
	default:
		go w.work(fn)
	}
}

// work runs fn, then what it is handed, until it has waited idleFor with nothing.
func (w *workers) work(fn func()) {
	idle := time.NewTimer(w.idleFor)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(w.idleFor)
		select {
		case fn = <-w.jobs:
		case <-idle.C:
			return
		}
	}
}
