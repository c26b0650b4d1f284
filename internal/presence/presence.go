// Package presence tracks who is online. A profile's first open socket writes an "active"
// activity row and its last closing socket an "inactive" one, after a short grace period,
// so a page reload or a flapping network does not write a pair of rows each time.
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
}

// New returns a tracker writing to st; grace is how long a profile without sockets stays
// active (default 3 seconds).
func New(st *store.Store, log *slog.Logger, grace time.Duration) *Tracker {
	if grace <= 0 {
		grace = 3 * time.Second
	}
	return &Tracker{store: st, log: log, grace: grace, sockets: map[uuid.UUID]int{},
		leaving: map[uuid.UUID]*time.Timer{}, active: map[uuid.UUID]bool{}}
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

// write records a presence change; t.mu is held, which keeps a profile's rows in order.
func (t *Tracker) write(profileID uuid.UUID, state string, sockets int) {
	a := store.Activity{ID: store.NewID(), ProfileID: profileID, State: state, Sockets: sockets, CreatedAt: store.Now()}
	if err := t.store.Q().InsertActivity(context.Background(), a); err != nil {
		t.log.Warn("record presence", "profile", profileID, "state", state, "err", err)
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

// Close writes "inactive" for every profile still active, as the server stops.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, timer := range t.leaving {
		timer.Stop()
		delete(t.leaving, id)
	}
	for id := range t.active {
		t.write(id, store.Inactive, 0)
		delete(t.active, id)
	}
	clear(t.sockets)
}
