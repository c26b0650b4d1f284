// Package events is glow's event log. Everything glow pushes to clients — the lifecycle
// events of every call, the progress of generation runs, chat messages, metrics — is
// published here with a topic (profile/<id>, attempt/<id>, run/<id>, system/metrics) and
// numbered within its topic. The spec's x-glow-topics (gen.Topics) says which topics are
// durable: their events are stored before anyone sees them and are replayable across
// restarts. The others are live: their events are delivered at once and kept in a bounded
// in-memory history per topic, and cost nothing when the topic has no audience. Either way a
// client can ask for what it missed: Attach replays a topic from a sequence number and joins
// it to live delivery with no gap and no duplicate at the seam.
package events

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/store"
)

// Event is one pushed event.
type Event struct {
	Topic string          // the sequence it belongs to, e.g. "attempt/<id>"
	Name  string          // the socket.io event name, e.g. "attempt.generate.text.progress"
	Data  json.RawMessage // a JSON object
	Also  []string        // other topics whose audiences receive it live (not replayed there)
	Seq   int64           // its number within Topic, set when it is stored (or, live, published)
	At    time.Time

	barrier chan struct{} // set on the markers Sync sends through the queue
	staged  uint64        // the order in which durable events were stored (the outbox's)
}

// Payload is the JSON delivered to clients: Data with "topic" and "seq" added first.
func (ev Event) Payload() json.RawMessage { return payload(ev.Topic, ev.Seq, ev.Data) }

func payload(topic string, seq int64, data []byte) json.RawMessage {
	var b bytes.Buffer
	b.Grow(len(data) + len(topic) + 32)
	b.WriteString(`{"topic":`)
	if plain(topic) {
		b.WriteByte('"')
		b.WriteString(topic)
		b.WriteByte('"')
	} else {
		t, _ := json.Marshal(topic)
		b.Write(t)
	}
	b.WriteString(`,"seq":`)
	b.WriteString(strconv.FormatInt(seq, 10))
	data = bytes.TrimSpace(data)
	if len(data) > 2 && data[0] == '{' {
		b.WriteByte(',')
		b.Write(data[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// plain says whether s is its own JSON string body (topics are "<kind>/<uuid>").
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Durable says whether a topic's events are stored (x-glow-topics in the spec).
func Durable(topic string) bool { return gen.TopicDurable(topic) }

// Topics.
func ProfileTopic(id uuid.UUID) string { return "profile/" + id.String() }
func AttemptTopic(id uuid.UUID) string { return "attempt/" + id.String() }
func RunTopic(id uuid.UUID) string     { return "run/" + id.String() }

// MetricsTopic carries the periodic metrics snapshot.
const MetricsTopic = "system/metrics"

// Options tunes a Log.
type Options struct {
	Buffer    int           // events waiting to be stored before Publish blocks (default 8192)
	BatchSize int           // events stored per transaction at most (default 512)
	Retention time.Duration // how long events are kept (default 7 days)
	// History bounds what a live topic keeps in memory for subscribers that come back: its
	// last HistoryEvents events (default 1024), none older than HistoryAge (default 2 minutes).
	HistoryEvents int
	HistoryAge    time.Duration
	// HistoryBytes bounds what all live topics keep together (default 32 MiB): past it, the
	// topics that keep the most give up their oldest events first.
	HistoryBytes int
}

// stuckAfter is how long durable events may fail to be stored before Stuck reports it.
const stuckAfter = 5 * time.Second

// Log stores and delivers events.
type Log struct {
	store *store.Store
	log   *slog.Logger
	opts  Options
	in    chan Event

	// sinks receive every event, in order per topic; they are set up before publishing starts.
	sinks []func([]Event)

	// mu is held while a batch of durable events is delivered, and while a subscriber joins a
	// durable topic: so a joining subscriber sees either all of a batch or none of it live.
	// It is never held across database I/O.
	mu        sync.Mutex
	listeners map[string]map[*Listener]struct{} // of durable topics

	// The outbox, guarded by mu. A durable event is numbered and stored in the transaction
	// of its change, and delivered once that has committed. open lists, per topic, the
	// transactions not yet ended that hold numbers of it; ready holds, per topic and in
	// order, committed events waiting for a lower number still open. settled is signalled
	// whenever a transaction ends.
	open    map[string][]*staged
	ready   map[string][]Event
	settled *sync.Cond
	staging uint64 // the last Event.staged given

	live [liveShards]liveShard

	// In a cluster: the other nodes, and (guarded by mu) the durable topics with an
	// audience here, whose events are delivered strictly by number (cluster.go).
	relay   Relay
	tracked map[string]*track

	stored     atomic.Int64
	liveCount  atomic.Int64
	failingFor atomic.Int64 // unix nanoseconds since storing has failed, or 0
}

// Stored counts the durable events stored since start.
func (l *Log) Stored() int64 { return l.stored.Load() }

// Published counts the events stored or delivered live since start.
func (l *Log) Published() int64 { return l.stored.Load() + l.liveCount.Load() }

// Stuck reports since when durable events have failed to be stored, once that has lasted
// more than 5 seconds.
func (l *Log) Stuck() (since time.Time, stuck bool) {
	ns := l.failingFor.Load()
	if ns == 0 || time.Since(time.Unix(0, ns)) < stuckAfter {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// New returns a log over st. Run must be running for published durable events to be stored.
func New(st *store.Store, log *slog.Logger, opts Options) *Log {
	if opts.Buffer <= 0 {
		opts.Buffer = 8192
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.HistoryEvents <= 0 {
		opts.HistoryEvents = 1024
	}
	if opts.HistoryAge <= 0 {
		opts.HistoryAge = 2 * time.Minute
	}
	if opts.HistoryBytes <= 0 {
		opts.HistoryBytes = 32 << 20
	}
	l := &Log{store: st, log: log, opts: opts, in: make(chan Event, opts.Buffer), listeners: map[string]map[*Listener]struct{}{},
		open: map[string][]*staged{}, ready: map[string][]Event{}}
	l.settled = sync.NewCond(&l.mu)
	for i := range l.live {
		l.live[i].topics = map[string]*history{}
	}
	return l
}

// Publish delivers an event of a live topic at once, or queues an event of a durable topic
// to be stored and then delivered; that blocks only when Buffer events are already waiting.
// An event that announces a change is staged in the change's transaction instead (Stage).
func (l *Log) Publish(ev Event) {
	if ev.At.IsZero() {
		ev.At = store.Now()
	}
	if !Durable(ev.Topic) {
		l.publishLive(ev)
		return
	}
	l.in <- ev
}

// Sync waits until every durable event published before the call has been stored and
// delivered (unless a lower number of its topic is still in a transaction: it is delivered
// once that ends). Live events are delivered before Publish returns.
func (l *Log) Sync() {
	done := make(chan struct{})
	l.in <- Event{barrier: done}
	<-done
}

// Synced is Sync bounded by ctx.
func (l *Log) Synced(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case l.in <- Event{barrier: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe adds a sink: it receives every event, in order per topic, and must not block.
// Durable events come in stored batches, live ones one at a time from the publisher's
// goroutine. Call it before anything is published.
func (l *Log) Subscribe(sink func([]Event)) {
	l.sinks = append(l.sinks, sink)
}

// Run stores and delivers published durable events until ctx ends, then drains what was
// queued. It also forgets expired events: stored ones after the retention, live ones after
// their history's age.
func (l *Log) Run(ctx context.Context) {
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	sweep := time.NewTicker(max(l.opts.HistoryAge/4, time.Second))
	defer sweep.Stop()
	for {
		select {
		case ev := <-l.in:
			l.flush(ctx, l.collect(ev))
		case <-purge.C:
			l.purge(ctx)
		case <-sweep.C:
			l.sweepLive()
		case <-ctx.Done():
			for {
				select {
				case ev := <-l.in:
					l.flush(ctx, l.collect(ev))
				default:
					return
				}
			}
		}
	}
}

// collect takes what is queued behind first, up to a batch.
func (l *Log) collect(first Event) []Event {
	batch := []Event{first}
	for len(batch) < l.opts.BatchSize {
		select {
		case ev := <-l.in:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// flush stores a batch, which delivers it, and releases the Sync markers in it. While the
// database is down it retries (producers wait meanwhile); an event the database refuses
// while it answers is logged and dropped, so that it cannot hold up the others. Only when
// the log is stopping and the database still fails are the events given up.
func (l *Log) flush(ctx context.Context, all []Event) {
	batch := all[:0:0]
	var barriers []chan struct{}
	for _, ev := range all {
		if ev.barrier != nil {
			barriers = append(barriers, ev.barrier)
		} else {
			batch = append(batch, ev)
		}
	}
	defer func() {
		for _, b := range barriers {
			close(b)
		}
	}()
	if len(batch) > 0 {
		l.storeBatch(ctx, batch)
	}
}

// storeBatch stores a batch in one transaction, holding no lock; its commit delivers it.
func (l *Log) storeBatch(ctx context.Context, batch []Event) {
	bg := context.Background()
	for attempt, wait := 1, 50*time.Millisecond; ; attempt, wait = attempt+1, min(2*wait, 5*time.Second) {
		err := l.store.Tx(bg, func(q store.Q) error { return l.Stage(bg, q, batch...) })
		if err == nil {
			l.failingFor.Store(0)
			return
		}
		l.failingFor.CompareAndSwap(0, time.Now().UnixNano())
		if l.store.Ping(bg) == nil {
			// The database answers, yet refused the batch: some event of it is refused.
			if batch = l.storeEach(bg, batch); batch == nil {
				l.failingFor.Store(0)
				return
			}
		}
		if ctx.Err() != nil && attempt >= 3 {
			l.log.Error("the database refuses events while the server stops: they are lost", "events", len(batch), "err", err)
			return
		}
		l.log.Error("store events; retrying", "events", len(batch), "err", err, "retry_in", wait)
		time.Sleep(wait)
	}
}

// storeEach stores events one at a time and drops those the database refuses while it
// answers. It stops when the database stops answering, returning the events not stored yet.
func (l *Log) storeEach(ctx context.Context, batch []Event) (rest []Event) {
	for i, ev := range batch {
		if err := l.store.Tx(ctx, func(q store.Q) error { return l.Stage(ctx, q, ev) }); err != nil {
			if l.store.Ping(ctx) != nil {
				return batch[i:]
			}
			l.log.Error("the database refuses an event: it is dropped", "topic", ev.Topic, "event", ev.Name, "err", err)
		}
	}
	return nil
}

// Stage publishes events as part of q's transaction — the transaction of the change they
// announce. Durable events are numbered (their Seq in evs is set) and stored in it, and
// delivered once it commits, in order per topic; live ones are delivered once it commits.
// If it rolls back, none of them was ever published.
func (l *Log) Stage(ctx context.Context, q store.Q, evs ...Event) error {
	if !q.InTx() {
		return errors.New("events: Stage needs the transaction of the change")
	}
	var durable, live []Event
	var at []int // where each durable event is in evs
	for i, ev := range evs {
		if ev.At.IsZero() {
			ev.At = store.Now()
		}
		if Durable(ev.Topic) {
			durable, at = append(durable, ev), append(at, i)
		} else {
			live = append(live, ev)
		}
	}
	if len(durable) > 0 {
		st, err := l.append(ctx, q, durable)
		if err != nil {
			return err
		}
		for i, ev := range durable {
			evs[at[i]].Seq = ev.Seq
		}
		q.OnEnd(func(committed bool) { l.settle(st, committed) })
	}
	if len(live) > 0 {
		q.OnEnd(func(committed bool) {
			if committed {
				for _, ev := range live {
					l.publishLive(ev)
				}
			}
		})
	}
	return nil
}

// staged is the durable events of one transaction, numbered, with the first number it
// holds of each topic.
type staged struct {
	evs   []Event
	first map[string]int64
}

// append numbers and stores events in q's transaction, and records them as open. Numbering
// locks each topic's row until the transaction ends, so the numbers of a topic are handed
// out in the order their transactions end, and none is open below a committed one but for
// the moment between a commit and its settle.
func (l *Log) append(ctx context.Context, q store.Q, evs []Event) (*staged, error) {
	recs := make([]store.Event, len(evs))
	for i, ev := range evs {
		recs[i] = store.Event{Topic: ev.Topic, Name: ev.Name, Data: ev.Data, CreatedAt: ev.At}
	}
	if err := q.AppendEvents(ctx, recs); err != nil {
		return nil, err
	}
	st := &staged{evs: evs, first: map[string]int64{}}
	for i := range evs {
		evs[i].Seq = recs[i].Seq
		if _, ok := st.first[evs[i].Topic]; !ok {
			st.first[evs[i].Topic] = evs[i].Seq
		}
	}
	l.mu.Lock()
	for i := range evs {
		l.staging++
		evs[i].staged = l.staging
	}
	for topic := range st.first {
		l.open[topic] = append(l.open[topic], st)
	}
	l.mu.Unlock()
	return st, nil
}

// settle ends a staged transaction: its events become ready if it committed, and every
// ready event of its topics below the lowest number still open is delivered.
func (l *Log) settle(st *staged, committed bool) {
	if committed && l.relay != nil {
		l.relay.Send(st.evs)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.settled.Broadcast()
	for topic := range st.first {
		open := slices.DeleteFunc(l.open[topic], func(o *staged) bool { return o == st })
		if len(open) == 0 {
			delete(l.open, topic)
		} else {
			l.open[topic] = open
		}
	}
	if committed {
		l.stored.Add(int64(len(st.evs)))
		for _, ev := range st.evs {
			l.ready[ev.Topic] = append(l.ready[ev.Topic], ev)
		}
	}
	var out []Event
	for topic := range st.first {
		ready := l.ready[topic]
		if len(ready) == 0 {
			continue
		}
		// Events of one transaction come in order; another's may have ended first.
		slices.SortStableFunc(ready, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
		n := len(ready)
		if low, ok := l.lowestOpenLocked(topic); ok {
			n, _ = slices.BinarySearchFunc(ready, low, func(e Event, seq int64) int { return cmp.Compare(e.Seq, seq) })
		}
		out = append(out, ready[:n]...)
		if n == len(ready) {
			delete(l.ready, topic)
		} else {
			l.ready[topic] = ready[n:]
		}
	}
	// In the order they were stored: within a topic that is their numbers' order.
	slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.staged, b.staged) })
	l.deliverLocked(out)
}

// lowestOpenLocked returns the lowest number of topic held by a transaction not yet ended.
func (l *Log) lowestOpenLocked(topic string) (int64, bool) {
	open := l.open[topic]
	if len(open) == 0 {
		return 0, false
	}
	low := open[0].first[topic]
	for _, o := range open[1:] {
		low = min(low, o.first[topic])
	}
	return low, true
}

// undeliveredLocked returns the lowest number of topic stored or being stored but not
// delivered yet.
func (l *Log) undeliveredLocked(topic string) (int64, bool) {
	low, ok := l.lowestOpenLocked(topic)
	if ready := l.ready[topic]; len(ready) > 0 && (!ok || ready[0].Seq < low) {
		return ready[0].Seq, true
	}
	return low, ok
}

// deliverLocked hands stored events to the sinks and listeners — in a cluster, those that
// are next in their topic (sequenceLocked); l.mu is held.
func (l *Log) deliverLocked(evs []Event) {
	if l.relay != nil {
		evs = l.sequenceLocked(evs)
	}
	l.handOutLocked(evs)
}

// handOutLocked hands events to the sinks and listeners; l.mu is held.
func (l *Log) handOutLocked(evs []Event) {
	if len(evs) == 0 {
		return
	}
	for _, sink := range l.sinks {
		sink(evs)
	}
	for _, ev := range evs {
		for li := range l.listeners[ev.Topic] {
			li.offer(ev)
		}
	}
}

func (l *Log) purge(ctx context.Context) {
	n, err := l.store.Q().PurgeEvents(ctx, store.Now().Add(-l.opts.Retention))
	if err != nil {
		l.log.Warn("purge events", "err", err)
	} else if n > 0 {
		l.log.Debug("purged events", "count", n)
	}
}

// Replay is what Attach replayed.
type Replay struct {
	Topic     string `json:"topic"`
	Since     int64  `json:"since"`     // the number the subscriber had
	Last      int64  `json:"last_seq"`  // the last number replayed (or Since, when none was)
	Replayed  int    `json:"replayed"`  // how many events were replayed
	Truncated bool   `json:"truncated"` // events after Since had expired: the replay has a gap
}

// LastSeq is the number of a topic's last event (0 for none).
func (l *Log) LastSeq(ctx context.Context, topic string) (int64, error) {
	_, last, err := l.Bounds(ctx, topic)
	return last, err
}

// After returns up to limit events of a topic numbered above since.
func (l *Log) After(ctx context.Context, topic string, since int64, limit int) ([]Event, error) {
	if !Durable(topic) {
		return l.liveAfter(topic, since, limit), nil
	}
	recs, err := l.store.Q().EventsAfter(ctx, topic, since, limit)
	evs := make([]Event, len(recs))
	for i, e := range recs {
		evs[i] = Event{Topic: e.Topic, Seq: e.Seq, Name: e.Name, Data: e.Data, At: e.CreatedAt}
	}
	return evs, err
}

// Bounds returns the first kept and the last number of a topic.
func (l *Log) Bounds(ctx context.Context, topic string) (first, last int64, err error) {
	if !Durable(topic) {
		first, last = l.liveBounds(topic)
		return first, last, nil
	}
	return l.store.Q().TopicBounds(ctx, topic)
}

// replayPage bounds the events read per query while replaying.
const replayPage = 500

// Attach replays the events of topic numbered above since through emit, in order, then
// calls join — which must make live delivery reach the subscriber — at a moment when no
// event of the topic is being delivered. The subscriber thus gets every event once, in
// order, across the seam. emit and join run on the caller's goroutine; join runs under the
// log's lock (no I/O is done under it), as do the last emits: the events delivered while
// the bulk of the replay was read, which are buffered meanwhile.
func (l *Log) Attach(ctx context.Context, topic string, since int64, emit func(Event), join func(Replay)) (Replay, error) {
	if !Durable(topic) {
		return l.attachLive(topic, since, emit, join), nil
	}
	r := Replay{Topic: topic, Since: since, Last: since}
	first, _, err := l.Bounds(ctx, topic)
	if err != nil {
		return r, err
	}
	r.Truncated = first > since+1
	reread := false
	for {
		// What is delivered from now on is buffered while the stored events are read.
		l.mu.Lock()
		buf := l.listenLocked(topic, 4*replayPage)
		l.mu.Unlock()
		for {
			evs, err := l.After(ctx, topic, r.Last, replayPage)
			if err != nil {
				l.Unlisten(buf)
				return r, err
			}
			for _, e := range evs {
				emit(e)
				r.Last = e.Seq
				r.Replayed++
			}
			if len(evs) < replayPage {
				break
			}
		}
		l.mu.Lock()
		for {
			if buf.lost { // the topic outran the buffer: read the rest from the database again
				break
			}
			l.drainLocked(buf, emit, &r)
			// The replay may have read events committed but not delivered yet: they will
			// come through the buffer, which must stay until they have.
			if low, ok := l.undeliveredLocked(topic); ok && low <= r.Last {
				l.settled.Wait()
				continue
			}
			now, again := l.seamLocked(topic, &r, reread)
			if again {
				reread = true
				break
			}
			if !now {
				continue
			}
			l.unlistenLocked(buf)
			defer l.mu.Unlock()
			join(r)
			return r, nil
		}
		l.unlistenLocked(buf)
		l.mu.Unlock()
	}
}

// drainLocked emits what buf holds above the replay's last number; l.mu is held.
func (l *Log) drainLocked(buf *Listener, emit func(Event), r *Replay) {
	for {
		select {
		case e := <-buf.C:
			if e.Seq > r.Last {
				emit(e)
				r.Last = e.Seq
				r.Replayed++
			}
		default:
			return
		}
	}
}

// Follower is what a socket.io connection offers the handlers: following topics on it.
type Follower interface {
	// Follow replays topic after since (nil: from now), then delivers its live events.
	Follow(ctx context.Context, topic string, since *int64) (Replay, error)
	// Unfollow stops the live delivery of topic.
	Unfollow(topic string)
}

type followerKey struct{}

// WithFollower returns ctx carrying f.
func WithFollower(ctx context.Context, f Follower) context.Context {
	return context.WithValue(ctx, followerKey{}, f)
}

// FollowerFrom returns the follower in ctx, or nil (over HTTP).
func FollowerFrom(ctx context.Context) Follower {
	f, _ := ctx.Value(followerKey{}).(Follower)
	return f
}

// Listener receives the live events of one topic in-process (SSE streams, watchers).
type Listener struct {
	topic string
	C     chan Event
	// Lost is closed when the listener fell behind by more than its buffer and was cut
	// off; it must resume from the last event it handled.
	Lost chan struct{}
	lost bool
}

// Listen makes a listener for topic with room for buf events. Call it from Attach's join.
// The caller must call Unlisten.
func (l *Log) Listen(topic string, buf int) *Listener {
	if !Durable(topic) {
		return l.listenLive(topic, buf)
	}
	return l.listenLocked(topic, buf)
}

// listenLocked adds a listener to a durable topic; l.mu is held.
func (l *Log) listenLocked(topic string, buf int) *Listener {
	li := &Listener{topic: topic, C: make(chan Event, buf), Lost: make(chan struct{})}
	if l.listeners[topic] == nil {
		l.listeners[topic] = map[*Listener]struct{}{}
	}
	l.listeners[topic][li] = struct{}{}
	l.trackLocked(topic, 1)
	return li
}

// Unlisten removes a listener.
func (l *Log) Unlisten(li *Listener) {
	if !Durable(li.topic) {
		l.unlistenLive(li)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unlistenLocked(li)
}

func (l *Log) unlistenLocked(li *Listener) {
	if _, ok := l.listeners[li.topic][li]; ok {
		l.trackLocked(li.topic, -1)
	}
	delete(l.listeners[li.topic], li)
	if len(l.listeners[li.topic]) == 0 {
		delete(l.listeners, li.topic)
	}
}

// offer hands an event over without blocking; a full listener is cut off. The lock of the
// listener's topic is held.
func (li *Listener) offer(ev Event) {
	if li.lost {
		return
	}
	select {
	case li.C <- ev:
	default:
		li.lost = true
		close(li.Lost)
	}
}
