package events_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// collector is a sink that keeps what it is given.
type collector struct {
	mu  sync.Mutex
	evs []events.Event
}

func (c *collector) sink(batch []events.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, batch...)
	c.mu.Unlock()
}

func (c *collector) seqs() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []int64
	for _, e := range c.evs {
		s = append(s, e.Seq)
	}
	return s
}

// outboxLog is a log over a new database, not running (staged events need no writer), with
// a sink that keeps what it is given.
func outboxLog(t *testing.T, d testdb.Dialect) (*store.Store, *events.Log, *collector) {
	st := d.Open(t)
	l := events.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), events.Options{})
	got := &collector{}
	l.Subscribe(got.sink)
	return st, l, got
}

// TestStagedEventsComeWithTheirChange: an event staged in a transaction that rolls back is
// neither stored nor delivered, and its number goes to the next event; one staged in a
// transaction that commits is stored and delivered once it has committed.
func TestStagedEventsComeWithTheirChange(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			st, l, got := outboxLog(t, d)
			ctx := context.Background()
			const topic = "attempt/0198a2d4-0000-7000-8000-000000000001"

			refused := errors.New("the change is refused")
			err := st.Tx(ctx, func(q store.Q) error {
				if err := l.Stage(ctx, q, ev(topic, 1)); err != nil {
					return err
				}
				return refused
			})
			if !errors.Is(err, refused) {
				t.Fatal(err)
			}
			if last, _ := l.LastSeq(ctx, topic); last != 0 || len(got.seqs()) != 0 {
				t.Fatalf("a rolled-back event is stored (last %d) or delivered (%v)", last, got.seqs())
			}

			err = st.Tx(ctx, func(q store.Q) error {
				if err := l.Stage(ctx, q, ev(topic, 2), ev(topic, 3)); err != nil {
					return err
				}
				if n := len(got.seqs()); n != 0 {
					t.Errorf("%d events delivered before their transaction committed", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if s := got.seqs(); len(s) != 2 || s[0] != 1 || s[1] != 2 {
				t.Fatalf("delivered %v after the commit, want [1 2]", s)
			}
			if err := l.Stage(ctx, st.Q(), ev(topic, 4)); err == nil {
				t.Fatal("Stage outside a transaction was accepted")
			}
		})
	}
}

// TestStagedEventsAreDeliveredInOrder: transaction A takes number 1 of a topic and commits,
// but is slow to hand its event over; transaction B takes number 2 and commits meanwhile.
// Number 2 waits for number 1: subscribers get 1 then 2. A subscriber that attaches while 1
// is held back replays both from the database and gets neither again live.
func TestStagedEventsAreDeliveredInOrder(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			st, l, got := outboxLog(t, d)
			ctx := context.Background()
			const topic = "attempt/0198a2d4-0000-7000-8000-000000000002"

			release := make(chan struct{})
			aDone := make(chan error, 1)
			go func() {
				aDone <- st.Tx(ctx, func(q store.Q) error {
					q.OnEnd(func(bool) { <-release }) // runs before the log hears of the commit
					return l.Stage(ctx, q, ev(topic, 1))
				})
			}()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if last, _ := l.LastSeq(ctx, topic); last == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("transaction A did not commit")
				}
			}
			if err := st.Tx(ctx, func(q store.Q) error { return l.Stage(ctx, q, ev(topic, 2)) }); err != nil {
				t.Fatal(err)
			}
			if s := got.seqs(); len(s) != 0 {
				t.Fatalf("delivered %v while number 1 was not", s)
			}

			var replayed []int64
			var live *events.Listener
			attached := make(chan error, 1)
			go func() {
				_, err := l.Attach(ctx, topic, 0, func(e events.Event) { replayed = append(replayed, e.Seq) },
					func(events.Replay) { live = l.Listen(topic, 16) })
				attached <- err
			}()
			select {
			case err := <-attached:
				t.Fatalf("Attach joined while number 1 was not delivered (err %v)", err)
			case <-time.After(200 * time.Millisecond):
			}

			close(release)
			if err := <-aDone; err != nil {
				t.Fatal(err)
			}
			if err := <-attached; err != nil {
				t.Fatal(err)
			}
			defer l.Unlisten(live)
			if s := got.seqs(); len(s) != 2 || s[0] != 1 || s[1] != 2 {
				t.Fatalf("delivered %v, want [1 2]", s)
			}
			if len(replayed) != 2 || replayed[0] != 1 || replayed[1] != 2 {
				t.Fatalf("replayed %v, want [1 2]", replayed)
			}
			if err := st.Tx(ctx, func(q store.Q) error { return l.Stage(ctx, q, ev(topic, 3)) }); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-live.C:
				if e.Seq != 3 {
					t.Fatalf("live after the replay: #%d, want #3", e.Seq)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("number 3 was not delivered live")
			}
			select {
			case e := <-live.C:
				t.Fatalf("a second live event #%d", e.Seq)
			default:
			}
		})
	}
}
