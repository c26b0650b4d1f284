package events

import (
	"context"
	"slices"
	"time"
)

// In a cluster (several nodes on one database, joined by a Relay) a durable topic's events
// reach a node from two sides: its own commits, and the other nodes' through Receive — in
// any order, since each node sends when its own transactions settle, and the relay may lose
// some. For every durable topic with an audience on this node, the log therefore delivers
// strictly by number: an event above the next expected number waits, and a missing number
// is read from the database, which holds every committed event (the numbers of a topic are
// handed out in commit order, so a committed number means every lower one is committed or
// still being settled by this node). Each subscriber thus gets every event once, in order,
// whichever node published it.

// Relay carries events between the nodes of a cluster (cluster.Bus).
type Relay interface {
	// Send hands the others the events this node published: every durable event it
	// committed, and the live events another node wants. It must not block.
	Send(evs []Event)
	// Wanted says whether another node has an audience for a live topic.
	Wanted(topic string) bool
	// Want tells the other nodes this node has a new audience for a live topic.
	Want(topic string)
}

// SetRelay joins the log to a cluster. Call it before anything is published.
func (l *Log) SetRelay(r Relay) {
	l.relay = r
	l.tracked = map[string]*track{}
}

// track orders the events of one durable topic with an audience on this node.
type track struct {
	audience int     // sockets joined (Join) and listeners
	mark     int64   // the last number delivered; -1 until the first replay or event
	pending  []Event // numbers above mark+1, in order, each once
	filling  bool    // a fill is reading the database
}

// maxPending bounds the events a track holds while a number is missing; the rest is read
// from the database once the gap is filled.
const maxPending = 4 * replayPage

// add takes an event in, unless it was delivered already or is already waiting.
func (tr *track) add(ev Event) {
	if tr.mark >= 0 && ev.Seq <= tr.mark {
		return
	}
	i, found := slices.BinarySearchFunc(tr.pending, ev.Seq, func(e Event, seq int64) int {
		switch {
		case e.Seq < seq:
			return -1
		case e.Seq > seq:
			return 1
		}
		return 0
	})
	if found {
		return
	}
	tr.pending = slices.Insert(tr.pending, i, ev)
	if len(tr.pending) > maxPending {
		clear(tr.pending[maxPending:])
		tr.pending = tr.pending[:maxPending]
	}
}

// track is trackLocked for a subscriber that is not a listener (a socket in the room). A
// single node tracks nothing and takes no lock.
func (l *Log) track(topic string, delta int) {
	if l.relay == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trackLocked(topic, delta)
}

// trackLocked counts a subscriber of a durable topic in (delta 1) or out (-1); l.mu is held.
func (l *Log) trackLocked(topic string, delta int) {
	if l.relay == nil {
		return
	}
	tr := l.tracked[topic]
	if tr == nil {
		if delta <= 0 {
			return
		}
		tr = &track{mark: -1}
		l.tracked[topic] = tr
	}
	tr.audience += delta
	if tr.audience <= 0 {
		delete(l.tracked, topic)
	}
}

// sequenceLocked returns, of evs, what is to be delivered now, in order: the events of
// topics without an audience here as they are, and for the others what follows the last
// delivered number without a gap. l.mu is held.
func (l *Log) sequenceLocked(evs []Event) []Event {
	out := evs[:0:0]
	var touched []string
	for _, ev := range evs {
		tr := l.tracked[ev.Topic]
		if tr == nil {
			out = append(out, ev)
			continue
		}
		tr.add(ev)
		if !slices.Contains(touched, ev.Topic) {
			touched = append(touched, ev.Topic)
		}
	}
	for _, topic := range touched {
		out = l.pumpLocked(topic, l.tracked[topic], out)
	}
	return out
}

// pumpLocked appends to out what tr can deliver, and starts a fill when a number is
// missing that no transaction of this node holds. l.mu is held.
func (l *Log) pumpLocked(topic string, tr *track, out []Event) []Event {
	if tr.mark < 0 { // joined without a replay (a recovered socket): from the first event on
		if len(tr.pending) == 0 {
			return out
		}
		tr.mark = tr.pending[0].Seq - 1
	}
	n := 0
	for n < len(tr.pending) && tr.pending[n].Seq == tr.mark+1 {
		out = append(out, tr.pending[n])
		tr.mark++
		n++
	}
	tr.pending = slices.Delete(tr.pending, 0, n)
	if len(tr.pending) > 0 && !l.holdsLocked(topic, tr.mark+1) {
		l.fillLocked(topic, tr)
	}
	return out
}

// holdsLocked says whether a transaction of this node holds number seq of topic, or
// lower: it comes through settle.
func (l *Log) holdsLocked(topic string, seq int64) bool {
	low, ok := l.undeliveredLocked(topic)
	return ok && low <= seq
}

// fillLocked starts reading topic's events after its last delivered number from the
// database, unless that is under way. l.mu is held.
func (l *Log) fillLocked(topic string, tr *track) {
	if tr.filling || tr.mark < 0 {
		return
	}
	tr.filling = true
	go l.fill(topic, tr)
}

// fill reads the events of a track's topic after its last delivered number and delivers
// them, until the track has no gap left or is gone.
func (l *Log) fill(topic string, tr *track) {
	ctx := context.Background()
	wait := 50 * time.Millisecond
	for {
		l.mu.Lock()
		if l.tracked[topic] != tr {
			l.mu.Unlock()
			return
		}
		from := tr.mark
		l.mu.Unlock()
		evs, err := l.After(ctx, topic, from, replayPage)
		l.mu.Lock()
		if l.tracked[topic] != tr {
			l.mu.Unlock()
			return
		}
		if err != nil {
			l.mu.Unlock()
			l.log.Warn("read a topic's missing events; retrying", "topic", topic, "err", err, "retry_in", wait)
			time.Sleep(wait)
			wait = min(2*wait, 5*time.Second)
			continue
		}
		for _, ev := range evs {
			tr.add(ev)
		}
		if len(evs) == 0 && len(tr.pending) > 0 && !l.holdsLocked(topic, tr.mark+1) {
			// The numbers in between are no longer stored (the retention): go on after them.
			l.log.Warn("a topic's events expired before they were delivered", "topic", topic,
				"from", tr.mark+1, "to", tr.pending[0].Seq-1)
			tr.mark = tr.pending[0].Seq - 1
		}
		tr.filling = false
		l.handOutLocked(l.pumpLocked(topic, tr, nil))
		l.settled.Broadcast()
		more := len(evs) == replayPage && !tr.filling
		if more {
			tr.filling = true
		}
		l.mu.Unlock()
		if !more {
			return
		}
	}
}

// Receive delivers the events another node published.
func (l *Log) Receive(evs []Event) {
	var durable []Event
	for _, ev := range evs {
		if Durable(ev.Topic) {
			durable = append(durable, ev)
		} else {
			l.deliverLive(ev)
		}
	}
	if len(durable) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliverLocked(durable)
	l.settled.Broadcast()
}

// Resync reads from the database what every durable topic with an audience here may have
// missed: the relay lost messages.
func (l *Log) Resync() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, tr := range l.tracked {
		l.fillLocked(topic, tr)
	}
}

// seamLocked is Attach's last step in a cluster: the replay read up to r.Last, and the
// subscriber joins at the topic's last delivered number. It reports whether the subscriber
// may join now, and whether the replay must be read again (delivered events it missed).
// l.mu is held.
func (l *Log) seamLocked(topic string, r *Replay, reread bool) (join, again bool) {
	tr := l.tracked[topic]
	if tr == nil {
		return true, false
	}
	switch {
	case tr.mark < 0: // nothing delivered yet: delivery goes on from what it read
		tr.mark = r.Last
		return true, false
	case tr.mark < r.Last: // the replay read events not delivered here yet: deliver them first
		l.fillLocked(topic, tr)
		l.settled.Wait()
		return false, false
	case tr.mark > r.Last:
		if reread { // what it missed is no longer stored
			r.Last, r.Truncated = tr.mark, true
			return true, false
		}
		return false, true
	}
	return true, false
}

// LiveAudience lists the live topics with an audience on this node.
func (l *Log) LiveAudience() []string {
	topics := []string{}
	for i := range l.live {
		sh := &l.live[i]
		sh.mu.Lock()
		for topic, h := range sh.topics {
			if h.audience > 0 || len(h.listeners) > 0 {
				topics = append(topics, topic)
			}
		}
		sh.mu.Unlock()
	}
	return topics
}
