package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/dispatch"
)

func testMetrics() *Metrics {
	return New(Sources{
		Sockets: func() int { return 0 }, Published: func() int64 { return 0 }, Stored: func() int64 { return 0 },
		Delivered: func() int64 { return 0 },
		Runs:      func(context.Context) (map[string]int, error) { return nil, nil },
		Pool:      &sql.DB{},
	})
}

// Counting a call allocates nothing once its series exists: it runs on every call.
func TestObserveCallDoesNotAllocate(t *testing.T) {
	m := testMetrics()
	m.ObserveCall("profile.context", dispatch.SocketIO, http.StatusOK, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveCall("profile.context", dispatch.SocketIO, http.StatusOK, time.Millisecond)
	}); n != 0 {
		t.Errorf("ObserveCall allocates %v times a call, want 0", n)
	}
}

func BenchmarkObserveCall(b *testing.B) {
	m := testMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveCall("profile.context", dispatch.SocketIO, http.StatusOK, time.Millisecond)
		}
	})
}
