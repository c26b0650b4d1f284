package events

import "sync"

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
