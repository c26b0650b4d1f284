// Package events is glow's event log. Everything glow pushes to clients — the lifecycle
// events of every call, the progress of generation runs, presence, metrics — is published
// here with a topic (profile/<id>, attempt/<id>, run/<id>, system/metrics), numbered within
// its topic, stored, and only then handed to the transports, in order. Because every event
// is stored before anyone sees it, a client can always ask for what it missed: Attach
// replays a topic from a sequence number and joins it to live delivery with no gap and no
// duplicate at the seam.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/store"
)

// Event is one pushed event.
type Event struct {
	Topic string          // the sequence it belongs to, e.g. "attempt/<id>"
	Name  string          // the socket.io event name, e.g. "attempt.generate.text.progress"
	Data  json.RawMessage // a JSON object
	Also  []string        // other topics whose audiences receive it live (not replayed there)
	Seq   int64           // its number within Topic, set when it is stored
	At    time.Time

	barrier chan struct{} // set on the markers Sync sends through the queue
}

// Payload is the JSON delivered to clients: Data with "topic" and "seq" added first.
func (ev Event) Payload() json.RawMessage { return payload(ev.Topic, ev.Seq, ev.Data) }

func payload(topic string, seq int64, data []byte) json.RawMessage {
	var b bytes.Buffer
	b.Grow(len(data) + len(topic) + 32)
	b.WriteString(`{"topic":`)
	t, _ := json.Marshal(topic)
	b.Write(t)
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
}

// Log stores and delivers events.
type Log struct {
	store *store.Store
	log   *slog.Logger
	opts  Options
	in    chan Event

	// mu is held while a batch is stored and delivered, and while Attach joins a
	// subscriber: so a joining subscriber sees either all of a batch or none of it live.
	mu        sync.Mutex
	sinks     []func([]Event)
	listeners map[string]map[*Listener]struct{}

	stored atomic.Int64
}

// Stored counts the events stored since start.
func (l *Log) Stored() int64 { return l.stored.Load() }

// New returns a log over st. Run must be running for published events to be stored.
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
	return &Log{store: st, log: log, opts: opts, in: make(chan Event, opts.Buffer), listeners: map[string]map[*Listener]struct{}{}}
}

// Publish queues an event. It blocks only when Buffer events are already waiting.
func (l *Log) Publish(ev Event) {
	if ev.At.IsZero() {
		ev.At = store.Now()
	}
	l.in <- ev
}

// Sync waits until every event published before the call has been stored and delivered.
func (l *Log) Sync() {
	done := make(chan struct{})
	l.in <- Event{barrier: done}
	<-done
}

// Subscribe adds a sink: it receives every stored batch, in order, under the log's lock,
// and must not block.
func (l *Log) Subscribe(sink func([]Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sinks = append(l.sinks, sink)
}

// Run stores and delivers published events until ctx ends, then drains what was queued.
func (l *Log) Run(ctx context.Context) {
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	for {
		select {
		case ev := <-l.in:
			l.flush(ctx, l.collect(ev))
		case <-purge.C:
			l.purge(ctx)
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

// flush stores a batch, retrying while the database fails (producers wait meanwhile), then
// delivers it and releases the Sync markers in it. Only when the log is stopping and the
// database still fails are the events given up, with an error in the log.
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
	if len(batch) == 0 {
		return
	}
	recs := make([]store.Event, len(batch))
	for i, ev := range batch {
		recs[i] = store.Event{Topic: ev.Topic, Name: ev.Name, Data: ev.Data, CreatedAt: ev.At}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt, wait := 1, 50*time.Millisecond; ; attempt, wait = attempt+1, min(2*wait, 5*time.Second) {
		err := l.store.Tx(context.Background(), func(q store.Q) error { return q.AppendEvents(context.Background(), recs) })
		if err == nil {
			break
		}
		if ctx.Err() != nil && attempt >= 3 {
			l.log.Error("the database refuses events while the server stops: they are lost", "events", len(recs), "err", err)
			return
		}
		l.log.Error("store events; retrying", "events", len(recs), "err", err, "retry_in", wait)
		time.Sleep(wait)
	}
	for i := range batch {
		batch[i].Seq = recs[i].Seq
	}
	l.stored.Add(int64(len(batch)))
	for _, sink := range l.sinks {
		sink(batch)
	}
	for _, ev := range batch {
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
	_, last, err := l.store.Q().TopicBounds(ctx, topic)
	return last, err
}

// After returns up to limit events of a topic numbered above since.
func (l *Log) After(ctx context.Context, topic string, since int64, limit int) ([]Event, error) {
	recs, err := l.store.Q().EventsAfter(ctx, topic, since, limit)
	evs := make([]Event, len(recs))
	for i, e := range recs {
		evs[i] = Event{Topic: e.Topic, Seq: e.Seq, Name: e.Name, Data: e.Data, At: e.CreatedAt}
	}
	return evs, err
}

// Bounds returns the first kept and the last number of a topic.
func (l *Log) Bounds(ctx context.Context, topic string) (first, last int64, err error) {
	return l.store.Q().TopicBounds(ctx, topic)
}

// replayPage bounds the events read per query while replaying.
const replayPage = 500

// Attach replays the events of topic numbered above since through emit, in order, then
// calls join — which must make live delivery reach the subscriber — at a moment when no
// batch is being delivered, after replaying the events stored until then. The subscriber
// thus gets every event once, in order, across the seam. emit and join run on the caller's
// goroutine; join runs under the log's lock, as do the last replayed emits.
func (l *Log) Attach(ctx context.Context, topic string, since int64, emit func(Event), join func(Replay)) (Replay, error) {
	r := Replay{Topic: topic, Since: since, Last: since}
	first, _, err := l.Bounds(ctx, topic)
	if err != nil {
		return r, err
	}
	r.Truncated = first > since+1
	replay := func() error {
		for {
			evs, err := l.After(ctx, topic, r.Last, replayPage)
			if err != nil {
				return err
			}
			for _, e := range evs {
				emit(e)
				r.Last = e.Seq
				r.Replayed++
			}
			if len(evs) < replayPage {
				return nil
			}
		}
	}
	if err := replay(); err != nil { // the bulk, without holding up delivery
		return r, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := replay(); err != nil { // what was stored meanwhile
		return r, err
	}
	join(r)
	return r, nil
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
	li := &Listener{topic: topic, C: make(chan Event, buf), Lost: make(chan struct{})}
	if l.listeners[topic] == nil {
		l.listeners[topic] = map[*Listener]struct{}{}
	}
	l.listeners[topic][li] = struct{}{}
	return li
}

// Unlisten removes a listener.
func (l *Log) Unlisten(li *Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.listeners[li.topic], li)
	if len(l.listeners[li.topic]) == 0 {
		delete(l.listeners, li.topic)
	}
}

// offer hands an event over without blocking; a full listener is cut off. l.mu is held.
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
