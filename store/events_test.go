package store_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

func TestEventLogNumbersPerTopic(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			s := d.Open(t)
			old := store.Now().Add(-time.Hour)
			evs := []store.Event{
				{Topic: "a", Name: "x", Data: []byte(`{"n":1}`), CreatedAt: old},
				{Topic: "b", Name: "x", Data: []byte(`{"n":2}`), CreatedAt: old},
				{Topic: "a", Name: "y", Data: []byte(`{"n":3}`), CreatedAt: store.Now()},
			}
			if err := s.Tx(ctx, func(q store.Q) error { return q.AppendEvents(ctx, evs) }); err != nil {
				t.Fatal(err)
			}
			if evs[0].Seq != 1 || evs[1].Seq != 1 || evs[2].Seq != 2 {
				t.Fatalf("numbers: %d %d %d", evs[0].Seq, evs[1].Seq, evs[2].Seq)
			}
			got, err := s.Q().EventsAfter(ctx, "a", 0, 10)
			if err != nil || len(got) != 2 || got[1].Name != "y" || string(got[1].Data) != `{"n":3}` {
				t.Fatalf("EventsAfter: %+v %v", got, err)
			}
			if got, _ := s.Q().EventsAfter(ctx, "a", 1, 10); len(got) != 1 || got[0].Seq != 2 {
				t.Fatalf("EventsAfter(1): %+v", got)
			}
			if first, last, err := s.Q().TopicBounds(ctx, "a"); first != 1 || last != 2 || err != nil {
				t.Fatalf("bounds: %d %d %v", first, last, err)
			}
			if n, err := s.Q().PurgeEvents(ctx, store.Now().Add(-time.Minute)); n != 2 || err != nil {
				t.Fatalf("purge: %d %v", n, err)
			}
			if first, last, _ := s.Q().TopicBounds(ctx, "a"); first != 2 || last != 2 {
				t.Fatalf("bounds after purge: %d %d", first, last)
			}
			if first, last, _ := s.Q().TopicBounds(ctx, "b"); first != 2 || last != 1 {
				t.Fatalf("bounds of an emptied topic: %d %d", first, last)
			}
			if first, last, _ := s.Q().TopicBounds(ctx, "never"); first != 0 || last != 0 {
				t.Fatalf("bounds of an unknown topic: %d %d", first, last)
			}

			// Concurrent writers of one topic get distinct, gapless numbers.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var seqs []int64
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 10 {
						batch := []store.Event{{Topic: "c", Name: "x", Data: []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)), CreatedAt: store.Now()}}
						if err := s.Tx(ctx, func(q store.Q) error { return q.AppendEvents(ctx, batch) }); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						seqs = append(seqs, batch[0].Seq)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
			for i, seq := range seqs {
				if seq != int64(i+1) {
					t.Fatalf("concurrent numbers: %v", seqs)
				}
			}
		})
	}
}
