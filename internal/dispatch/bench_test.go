package dispatch_test

import (
	"net/http"
	"testing"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/dispatch"
)

// BenchmarkDispatch measures one in-process Dispatcher.Do of an operation with the real
// handlers on SQLite, for a caller resolved from a token as the transports do it: parse,
// authorize, validate, decode, call, encode. The caller has no socket, so no lifecycle event
// is built (see TestLifecycleEventsNeedAnAudience). No transport, no token lookup.
func BenchmarkDispatch(b *testing.B) {
	r := newRealRig(b, "learner")
	for _, name := range []string{"profile.context", "system.health"} {
		o, ok := gen.OperationByID(name)
		if !ok {
			b.Fatalf("no operation %s", name)
		}
		body := []byte(`{}`)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := r.d.Do(r.ctx, o, body, dispatch.SocketIO); res.Status != http.StatusOK {
					b.Fatalf("%s: %d %s", name, res.Status, res.Body)
				}
			}
		})
	}
}
