// Package presence tracks who is online. A profile's first open socket writes an "active"
// activity row and its last closing socket an "inactive" one, after a short grace period,
// so a page reload or a flapping network does not write a pair of rows each time. The rows
// are written in order by a goroutine of their own: opening or closing a socket never waits
// for the database.
package presence

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/store"
)

// Tracker counts the open sockets of each profile on this server.
type Tracker struct {
	store *store.Store
	log   *slog.Logger
	grace time.Duration

	mu      sync.Mutex
	sockets map[uuid.UUID]int         // open sockets per profile
	leaving map[uuid.UUID]*time.Timer // profiles whose last socket closed, within the grace period
	active  map[uuid.UUID]bool        // profiles whose latest row is "active"
	queue   []write                   // rows not written yet, in order
	dropped int                       // rows dropped since the last warning, the queue being full
	wake    chan struct{}             // tells the writer the queue has something
	stop    chan struct{}             // closed by Close, after the last rows are queued
	closing sync.Once
	stopped chan struct{} // closed when the writer has ended
}

// write is a row to write, or (done set) a marker the writer closes once it reaches it.
type write struct {
	row  store.Activity
	done chan struct{}
}

// maxQueue bounds the rows waiting while the database is slow or down; beyond it new rows
// are dropped, and that is logged.
const maxQueue = 10000

// New returns a tracker writing to st; grace is how long a profile without sockets stays
// active (default 3 seconds). Close stops it.
func New(st *store.Store, log *slog.Logger, grace time.Duration) *Tracker {
	if grace <= 0 {
		grace = 3 * time.Second
	}
	t := &Tracker{store: st, log: log, grace: grace, sockets: map[uuid.UUID]int{},
		leaving: map[uuid.UUID]*time.Timer{}, active: map[uuid.UUID]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go t.writer()
	return t
}

// Connected counts a new socket of a profile; the profile's first one makes it active.
func (t *Tracker) Connected(profileID uuid.UUID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sockets[profileID]++
	if timer := t.leaving[profileID]; timer != nil {
		timer.Stop()
		delete(t.leaving, profileID)
	}
	if !t.active[profileID] {
		t.active[profileID] = true
		t.write(profileID, store.Active, t.sockets[profileID])
	}
}

// Disconnected uncounts a socket; once a profile has none for the grace period, it is
// inactive.
func (t *Tracker) Disconnected(profileID uuid.UUID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sockets[profileID] == 0 {
		return
	}
	t.sockets[profileID]--
	if t.sockets[profileID] > 0 {
		return
	}
	delete(t.sockets, profileID)
	var timer *time.Timer
	timer = time.AfterFunc(t.grace, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		// A timer that fired while a socket opened (Stop came too late), perhaps followed by
		// a newer close with a timer of its own, is no longer the profile's: it does nothing.
		if t.sockets[profileID] > 0 || t.leaving[profileID] != timer {
			return
		}
		delete(t.leaving, profileID)
		delete(t.active, profileID)
		t.write(profileID, store.Inactive, 0)
	})
	t.leaving[profileID] = timer
}

// write queues a presence change for the writer; t.mu is held, which keeps the rows in order.
func (t *Tracker) write(profileID uuid.UUID, state string, sockets int) {
	if len(t.queue) >= maxQueue {
		t.dropped++
		return
	}
	a := store.Activity{ID: store.NewID(), ProfileID: profileID, State: state, Sockets: sockets, CreatedAt: store.Now()}
	t.enqueue(write{row: a})
}

func (t *Tracker) enqueue(w write) {
	t.queue = append(t.queue, w)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// writer writes the queued rows in order until Close, then what is left.
func (t *Tracker) writer() {
	defer close(t.stopped)
	for {
		select {
		case <-t.wake:
		case <-t.stop:
			t.writeQueued()
			return
		}
		t.writeQueued()
	}
}

func (t *Tracker) writeQueued() {
	t.mu.Lock()
	batch, dropped := t.queue, t.dropped
	t.queue, t.dropped = nil, 0
	t.mu.Unlock()
	if dropped > 0 {
		t.log.Warn("presence rows dropped: the database is too slow for them", "rows", dropped)
	}
	for _, w := range batch {
		if w.done != nil {
			close(w.done)
			continue
		}
		if err := t.store.Q().InsertActivity(context.Background(), w.row); err != nil {
			t.log.Warn("record presence", "profile", w.row.ProfileID, "state", w.row.State, "err", err)
		}
	}
}

// Flush waits until the rows of every change made before it are written (or ctx ends).
func (t *Tracker) Flush(ctx context.Context) error {
	done := make(chan struct{})
	t.mu.Lock()
	t.enqueue(write{done: done})
	t.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-t.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Online returns the open sockets of every profile with at least one.
func (t *Tracker) Online() map[uuid.UUID]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uuid.UUID]int, len(t.sockets))
	for id, n := range t.sockets {
		out[id] = n
	}
	return out
}

// Close writes "inactive" for every profile still active, as the server stops, and waits
// for the rows to be written (at most closeWait).
func (t *Tracker) Close() {
	t.mu.Lock()
	for id, timer := range t.leaving {
		timer.Stop()
		delete(t.leaving, id)
	}
	for id := range t.active {
		t.write(id, store.Inactive, 0)
		delete(t.active, id)
	}
	clear(t.sockets)
	t.mu.Unlock()
	t.closing.Do(func() { close(t.stop) })
	select {
	case <-t.stopped:
	case <-time.After(closeWait):
		t.log.Warn("presence rows still being written as the server stops")
	}
}

// closeWait bounds how long Close waits for the last rows.
const closeWait = 10 * time.Second
