package events

import (
	"hash/maphash"
	"sync"
	"time"
	"unsafe"
)

// Live topics (durable: false in x-glow-topics) are never stored. Each keeps a bounded
// history in memory — its last Options.HistoryEvents events, none older than
// Options.HistoryAge — for a subscriber that dropped for a moment, and only while it has an
// audience or had one within the age: events of a topic nobody listens to are neither
// encoded nor kept (Wants).
//
// A live topic's numbers start, whenever its history is (re)created, at the current time in
// microseconds. They thus keep growing across restarts and across a history that was
// forgotten, and a subscriber's since from before is always below them: the replay is
// reported truncated instead of silently missing events.

const liveShards = 64

// liveShard holds the histories of the live topics that hash to it. Publishing to a topic,
// replaying it and joining it take its shard's lock, which orders the topic's events.
//
// Each shard keeps at most its share of Options.HistoryBytes: past it, the history that
// keeps the most bytes gives up its older half, until the shard is within its share. A
// topic that publishes a lot thus cannot make memory grow with traffic, however many topics
// do so at once, and a quiet topic keeps what it has.
type liveShard struct {
	mu     sync.Mutex
	topics map[string]*history
	bytes  int // kept by all its histories
}

// history is what a live topic keeps. Its fields are guarded by its shard's lock.
type history struct {
	last      int64   // the number of the last event
	evs       []Event // the kept events, oldest first
	bytes     int     // what evs holds (keptBytes)
	audience  int     // subscribers joined (sockets in its room)
	left      time.Time
	listeners map[*Listener]struct{}
}

// keptBytes is about what keeping an event costs: the event and what it refers to.
func keptBytes(ev Event) int {
	n := int(unsafe.Sizeof(ev)) + len(ev.Topic) + len(ev.Name) + len(ev.Data)
	for _, t := range ev.Also {
		n += len(t) + int(unsafe.Sizeof(t))
	}
	return n
}

var shardSeed = maphash.MakeSeed()

func (l *Log) shard(topic string) *liveShard {
	return &l.live[maphash.String(shardSeed, topic)%liveShards]
}

// get returns the topic's history, creating it when create is set. The shard's lock is held.
func (sh *liveShard) get(topic string, create bool) *history {
	h := sh.topics[topic]
	if h == nil && create {
		h = &history{last: time.Now().UnixMicro()}
		sh.topics[topic] = h
	}
	return h
}

// wanted says whether the topic's events are to be kept: someone listens, or did within age.
func (h *history) wanted(now time.Time, age time.Duration) bool {
	return h.audience > 0 || len(h.listeners) > 0 || now.Sub(h.left) < age
}

// trim forgets the events beyond the history's bounds: more than max, or older than age.
func (sh *liveShard) trim(h *history, now time.Time, max int, age time.Duration) {
	drop := len(h.evs) - max
	if drop < 0 {
		drop = 0
	}
	for drop < len(h.evs) && now.Sub(h.evs[drop].At) > age {
		drop++
	}
	sh.drop(h, drop)
}

// drop forgets the history's n oldest events.
func (sh *liveShard) drop(h *history, n int) {
	if n <= 0 {
		return
	}
	freed := 0
	for _, ev := range h.evs[:n] {
		freed += keptBytes(ev)
	}
	h.bytes -= freed
	sh.bytes -= freed
	clear(h.evs[:n]) // the array outlives them until append moves it: let go of their data
	h.evs = h.evs[n:]
}

// shed makes the shard keep no more than budget bytes, taking from the histories that keep
// the most. The newest event of a topic is always kept.
func (sh *liveShard) shed(budget int) {
	for sh.bytes > budget {
		var most *history
		for _, h := range sh.topics {
			if len(h.evs) > 1 && (most == nil || h.bytes > most.bytes) {
				most = h
			}
		}
		if most == nil {
			return
		}
		sh.drop(most, max(len(most.evs)/2, 1))
	}
}

// Wants says whether an event published to topic now would reach anyone or be kept for
// someone: always for a durable topic; for a live one, while it has an audience on this
// server or had one within the history's age. A publisher may skip building an event it
// does not want.
func (l *Log) Wants(topic string) bool {
	if Durable(topic) || (l.relay != nil && l.relay.Wanted(topic)) {
		return true
	}
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(topic, false)
	return h != nil && h.wanted(time.Now(), l.opts.HistoryAge)
}

// Join counts a subscriber of a topic (a socket in its room); Leave uncounts it. A live
// topic keeps a history while it has subscribers; in a cluster, a durable topic's events
// are put in order while it has some, and the other nodes hear of a live topic's first.
func (l *Log) Join(topic string) {
	if Durable(topic) {
		l.track(topic, 1)
		return
	}
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(topic, true)
	h.audience++
	if h.audience == 1 && l.relay != nil {
		l.relay.Want(topic)
	}
}

// Leave undoes Join. The topic goes on keeping its events for the history's age, for the
// subscriber to come back.
func (l *Log) Leave(topic string) {
	if Durable(topic) {
		l.track(topic, -1)
		return
	}
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if h := sh.get(topic, false); h != nil && h.audience > 0 {
		h.audience--
		if h.audience == 0 {
			h.left = time.Now()
		}
	}
}

// publishLive numbers, keeps and delivers an event of a live topic, and hands it to the
// other nodes that want it. An event nobody wants is dropped.
func (l *Log) publishLive(ev Event) {
	if l.relay != nil && l.relay.Wanted(ev.Topic) {
		l.relay.Send([]Event{ev})
	}
	l.deliverLive(ev)
}

// deliverLive numbers, keeps and delivers an event of a live topic on this node, under its
// shard's lock. An event nobody here wants is dropped.
func (l *Log) deliverLive(ev Event) {
	sh := l.shard(ev.Topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	h := sh.get(ev.Topic, false)
	if h == nil || !h.wanted(now, l.opts.HistoryAge) {
		return
	}
	h.last++
	ev.Seq = h.last
	h.evs = append(h.evs, ev)
	n := keptBytes(ev)
	h.bytes += n
	sh.bytes += n
	sh.trim(h, now, l.opts.HistoryEvents, l.opts.HistoryAge)
	sh.shed(l.opts.HistoryBytes / liveShards)
	l.liveCount.Add(1)
	one := []Event{ev}
	for _, sink := range l.sinks {
		sink(one)
	}
	for li := range h.listeners {
		li.offer(ev)
	}
}

// liveAfter returns up to limit kept events of a live topic numbered above since.
func (l *Log) liveAfter(topic string, since int64, limit int) []Event {
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(topic, false)
	if h == nil {
		return nil
	}
	var out []Event
	for _, ev := range h.evs {
		if ev.Seq > since && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out
}

// liveBounds returns the first kept and the last number of a live topic: (0, 0) for a topic
// with no history, (last+1, last) for one that keeps no event.
func (l *Log) liveBounds(topic string) (first, last int64) {
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(topic, false)
	if h == nil {
		return 0, 0
	}
	return h.first(), h.last
}

func (h *history) first() int64 {
	if len(h.evs) == 0 {
		return h.last + 1
	}
	return h.evs[0].Seq
}

// attachLive replays a live topic's history after since and joins, under the shard's lock.
func (l *Log) attachLive(topic string, since int64, emit func(Event), join func(Replay)) Replay {
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(topic, true)
	sh.trim(h, time.Now(), l.opts.HistoryEvents, l.opts.HistoryAge)
	r := Replay{Topic: topic, Since: since, Last: since, Truncated: since < h.last && h.first() > since+1}
	for _, ev := range h.evs {
		if ev.Seq > since {
			emit(ev)
			r.Last = ev.Seq
			r.Replayed++
		}
	}
	join(r)
	return r
}

// listenLive adds a listener to a live topic; its shard's lock is held (by attachLive).
func (l *Log) listenLive(topic string, buf int) *Listener {
	li := &Listener{topic: topic, C: make(chan Event, buf), Lost: make(chan struct{})}
	h := l.shard(topic).get(topic, true)
	if h.listeners == nil {
		h.listeners = map[*Listener]struct{}{}
	}
	h.listeners[li] = struct{}{}
	return li
}

func (l *Log) unlistenLive(li *Listener) {
	sh := l.shard(li.topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if h := sh.get(li.topic, false); h != nil {
		delete(h.listeners, li)
		if len(h.listeners) == 0 && h.audience == 0 {
			h.left = time.Now()
		}
	}
}

// sweepLive trims every live history and forgets those nobody wants any more.
func (l *Log) sweepLive() {
	now := time.Now()
	for i := range l.live {
		sh := &l.live[i]
		sh.mu.Lock()
		for topic, h := range sh.topics {
			sh.trim(h, now, l.opts.HistoryEvents, l.opts.HistoryAge)
			if !h.wanted(now, l.opts.HistoryAge) {
				sh.bytes -= h.bytes
				delete(sh.topics, topic)
			}
		}
		sh.mu.Unlock()
	}
}
