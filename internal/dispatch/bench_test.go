package dispatch_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/handlers"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/presence"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// BenchmarkDispatch measures one in-process Dispatcher.Do of an operation with the real
// handlers on SQLite, for a caller resolved from a token as the transports do it: parse,
// authorize, validate, decode, call, encode, and publish the two lifecycle events to the
// event log, which stores them (its writer runs beside). No transport, no token lookup.
func BenchmarkDispatch(b *testing.B) {
	contract, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		b.Fatal(err)
	}
	st := testdb.Dialects(b)[0].Open(b)
	ctx := context.Background()
	var token string
	if err := st.Tx(ctx, func(q store.Q) error {
		issued, err := auth.Issue(ctx, q, "bench", "learner", "bench")
		token = issued.Token
		return err
	}); err != nil {
		b.Fatal(err)
	}
	id, err := auth.NewResolver(st, 0).Resolve(ctx, token) // 0: no cache
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	evs := events.New(st, log, events.Options{})
	evCtx, stop := context.WithCancel(ctx)
	defer stop()
	go evs.Run(evCtx)
	svc := handlers.New(st, jobs.New(st, evs, log, jobs.Options{}), evs, presence.New(st, log, 0), contract.Version(), handlers.Limits{})
	d := dispatch.New(contract, svc, st, evs, log, dispatch.Options{})
	callerCtx := auth.NewContext(ctx, id)

	for _, name := range []string{"profile.context", "system.health"} {
		o, ok := gen.OperationByID(name)
		if !ok {
			b.Fatalf("no operation %s", name)
		}
		body := []byte(`{}`)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := d.Do(callerCtx, o, body, dispatch.SocketIO); res.Status != http.StatusOK {
					b.Fatalf("%s: %d %s", name, res.Status, res.Body)
				}
			}
		})
	}
}
