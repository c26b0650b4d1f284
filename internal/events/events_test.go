package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

func startLog(t *testing.T, d testdb.Dialect) *events.Log {
	t.Helper()
	l := events.New(d.Open(t), slog.New(slog.NewTextHandler(io.Discard, nil)), events.Options{BatchSize: 16})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func ev(topic string, n int) events.Event {
	return events.Event{Topic: topic, Name: "test.tick", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

func TestPublishNumbersStoresAndDeliversInOrder(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			l := startLog(t, d)
			var mu sync.Mutex
			var got []events.Event
			l.Subscribe(func(batch []events.Event) {
				mu.Lock()
				got = append(got, batch...)
				mu.Unlock()
			})
			for i := 1; i <= 40; i++ {
				l.Publish(ev([]string{"a", "b"}[i%2], i))
			}
			l.Sync()
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 40 {
				t.Fatalf("delivered %d events, want 40", len(got))
			}
			next := map[string]int64{"a": 1, "b": 1}
			for i, e := range got {
				if e.Seq != next[e.Topic] || string(e.Data) != fmt.Sprintf(`{"n":%d}`, i+1) {
					t.Fatalf("event %d: %s #%d %s", i, e.Topic, e.Seq, e.Data)
				}
				next[e.Topic]++
			}
			var p map[string]any
			if err := json.Unmarshal(got[0].Payload(), &p); err != nil || p["topic"] != "b" || p["seq"] != float64(1) || p["n"] != float64(1) {
				t.Fatalf("payload %s: %v", got[0].Payload(), err)
			}
		})
	}
}

// TestAttachHasNoGapAndNoDuplicate replays a topic from a number while another goroutine
// keeps publishing to it, and checks that replay plus live delivery is exactly the rest of
// the topic, in order.
func TestAttachHasNoGapAndNoDuplicate(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			l := startLog(t, d)
			for i := 1; i <= 50; i++ {
				l.Publish(ev("t", i))
			}
			l.Sync()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			published := 50
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					published++
					l.Publish(ev("t", published))
					time.Sleep(100 * time.Microsecond)
				}
			}()
			time.Sleep(20 * time.Millisecond)

			var seen []int64
			var li *events.Listener
			r, err := l.Attach(context.Background(), "t", 20,
				func(e events.Event) { seen = append(seen, e.Seq) },
				func(events.Replay) { li = l.Listen("t", 100000) })
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlisten(li)
			time.Sleep(20 * time.Millisecond)
			close(stop)
			wg.Wait()
			l.Sync()
			if r.Since != 20 || r.Replayed != len(seen) || r.Last != seen[len(seen)-1] || r.Truncated {
				t.Fatalf("replay report %+v after %d events", r, len(seen))
			}
			for drained := false; !drained; {
				select {
				case e := <-li.C:
					seen = append(seen, e.Seq)
				default:
					drained = true
				}
			}
			if len(seen) != published-20 {
				t.Fatalf("saw %d events, want %d (%d published)", len(seen), published-20, published)
			}
			for i, seq := range seen {
				if seq != int64(21+i) {
					t.Fatalf("position %d has #%d: gap or duplicate at the seam (replayed %d)", i, seq, r.Replayed)
				}
			}
		})
	}
}

func TestSlowListenerIsCutOff(t *testing.T) {
	l := startLog(t, testdb.Dialects(t)[0])
	var li *events.Listener
	if _, err := l.Attach(context.Background(), "slow", 0, func(events.Event) {}, func(events.Replay) { li = l.Listen("slow", 2) }); err != nil {
		t.Fatal(err)
	}
	defer l.Unlisten(li)
	for i := 1; i <= 5; i++ {
		l.Publish(ev("slow", i))
	}
	l.Sync()
	select {
	case <-li.Lost:
	default:
		t.Fatal("a listener 3 events behind a buffer of 2 was not cut off")
	}
	if len(li.C) != 2 {
		t.Fatalf("buffered %d events", len(li.C))
	}
}

// TestAnEventTheDatabaseRefusesDoesNotBlockTheOthers: on PostgreSQL, text that is not UTF-8
// is refused; that event is dropped (and logged), the events around it are stored and
// delivered, and the log does not report itself stuck.
func TestAnEventTheDatabaseRefusesDoesNotBlockTheOthers(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		if d.Name != store.Postgres {
			continue
		}
		t.Run(d.Name, func(t *testing.T) {
			l := startLog(t, d)
			var mu sync.Mutex
			var got []string
			l.Subscribe(func(batch []events.Event) {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range batch {
					got = append(got, string(e.Data))
				}
			})
			l.Publish(ev("a", 1))
			l.Publish(events.Event{Topic: "a", Name: "test.bad", Data: json.RawMessage("{\"n\":\"\xff\xfe\"}")})
			l.Publish(ev("a", 3))
			done := make(chan struct{})
			go func() { l.Sync(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the log is wedged on the refused event")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 2 || got[0] != `{"n":1}` || got[1] != `{"n":3}` {
				t.Fatalf("delivered %q, want the two good events", got)
			}
			if _, stuck := l.Stuck(); stuck {
				t.Fatal("the log says it is stuck")
			}
		})
	}
}

// TestLiveTopics: a live topic's events are numbered and delivered at once, never stored,
// kept in a bounded history only while someone listens (or did, within the history's age),
// and replayed from that history with no gap at the seam; a since older than the history
// is reported truncated.
func TestLiveTopics(t *testing.T) {
	d := testdb.Dialects(t)[0]
	st := d.Open(t)
	l := events.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), events.Options{HistoryEvents: 5})
	var mu sync.Mutex
	var delivered []events.Event
	l.Subscribe(func(batch []events.Event) {
		mu.Lock()
		defer mu.Unlock()
		delivered = append(delivered, batch...)
	})
	topic := "profile/" + store.NewID().String()
	if events.Durable(topic) || !events.Durable("attempt/x") {
		t.Fatal("x-glow-topics: profile topics must be live, attempt topics durable")
	}
	l.Publish(ev(topic, 0))
	if l.Wants(topic) || len(delivered) != 0 {
		t.Fatal("a live topic nobody listens to kept or delivered an event")
	}
	l.Join(topic)
	for i := 1; i <= 8; i++ {
		l.Publish(ev(topic, i))
	}
	if len(delivered) != 8 || l.Stored() != 0 {
		t.Fatalf("delivered %d, stored %d; want 8 delivered at once, none stored", len(delivered), l.Stored())
	}
	first := delivered[0].Seq
	for i, e := range delivered {
		if e.Seq != first+int64(i) {
			t.Fatalf("event %d numbered %d after %d", i, e.Seq, first)
		}
	}
	if first < time.Now().Add(-time.Minute).UnixMicro() {
		t.Fatalf("numbers start at %d, not at the time in microseconds", first)
	}
	// The history keeps the last 5: a replay from the third event has lost some.
	var replayed []int64
	r, err := l.Attach(context.Background(), topic, first+1, func(e events.Event) { replayed = append(replayed, e.Seq) }, func(events.Replay) {})
	if err != nil || !r.Truncated || r.Replayed != 5 || replayed[0] != first+3 || r.Last != first+7 {
		t.Fatalf("replay %+v %v of %v", r, err, replayed)
	}
	r, _ = l.Attach(context.Background(), topic, first+4, func(events.Event) {}, func(events.Replay) {})
	if r.Truncated || r.Replayed != 3 {
		t.Fatalf("replay within the history: %+v", r)
	}
	// A subscriber that left is still kept for: its events wait in the history.
	l.Leave(topic)
	if !l.Wants(topic) {
		t.Fatal("the topic forgot its history as soon as its audience left")
	}
}

// TestLiveHistoryIsBoundedByBytes: however much one topic publishes, its history stays
// within its share of HistoryBytes, keeps its newest events, and reports older ones lost.
func TestLiveHistoryIsBoundedByBytes(t *testing.T) {
	st := testdb.Dialects(t)[0].Open(t)
	const budget = 64 * 4096 // 4 KiB for each of the 64 shards
	l := events.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), events.Options{HistoryBytes: budget})
	topic := "profile/" + store.NewID().String()
	l.Join(topic)
	big := strings.Repeat("x", 500)
	var last int64
	l.Subscribe(func(batch []events.Event) { last = batch[len(batch)-1].Seq })
	for i := range 1000 {
		e := ev(topic, i)
		e.Data = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, big))
		l.Publish(e)
	}
	var kept []int64
	r, err := l.Attach(context.Background(), topic, 0, func(e events.Event) { kept = append(kept, e.Seq) }, func(events.Replay) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) == 0 || len(kept) > 4096/500 || kept[len(kept)-1] != last || !r.Truncated {
		t.Fatalf("kept %d events (%v), the last %d of %d, truncated %v; want the newest few within 4 KiB",
			len(kept), kept, kept[len(kept)-1], last, r.Truncated)
	}
	for i := 1; i < len(kept); i++ {
		if kept[i] != kept[i-1]+1 {
			t.Fatalf("the kept events have a gap: %v", kept)
		}
	}
}
