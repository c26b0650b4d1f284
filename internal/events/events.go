// Package events carries the events glow pushes to clients (lifecycle events of every call,
// later progress frames) from where they happen to the transports that deliver them.
package events

import (
	"encoding/json"
	"sync"

	"github.com/google/uuid"
)

// Event is one pushed event.
type Event struct {
	Topic string          // who may see it, e.g. "profile/<id>"
	Name  string          // the socket.io event name, e.g. "persona.create.completed"
	Data  json.RawMessage // the payload
}

// ProfileTopic is the topic every socket of a profile receives.
func ProfileTopic(profileID uuid.UUID) string { return "profile/" + profileID.String() }

// Hub fans events out to its subscribers.
type Hub struct {
	mu   sync.RWMutex
	subs []func(Event)
}

// Subscribe adds a subscriber. It is called for every published event, in the publisher's
// goroutine, and must not block.
func (h *Hub) Subscribe(fn func(Event)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, fn)
}

// Publish delivers ev to every subscriber.
func (h *Hub) Publish(ev Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range h.subs {
		fn(ev)
	}
}
