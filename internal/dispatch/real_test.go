package dispatch_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/handlers"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/presence"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// realRig is a Dispatcher over the real handlers on a new SQLite database, its event log
// running, and the context of a caller with a role, resolved from a token as the transports
// do it.
type realRig struct {
	d      *dispatch.Dispatcher
	ctx    context.Context
	id     *auth.Identity
	events *events.Log
	runner *jobs.Runner
}

func newRealRig(tb testing.TB, role string) realRig {
	tb.Helper()
	contract, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		tb.Fatal(err)
	}
	st := testdb.Dialects(tb)[0].Open(tb)
	ctx := context.Background()
	var token string
	if err := st.Tx(ctx, func(q store.Q) error {
		issued, err := auth.Issue(ctx, q, "caller", role, "callers")
		token = issued.Token
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	id, err := auth.NewResolver(st, 0).Resolve(ctx, token) // 0: no cache
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	evs := events.New(st, log, events.Options{})
	evCtx, stop := context.WithCancel(ctx)
	tb.Cleanup(stop)
	go evs.Run(evCtx)
	runner := jobs.New(st, evs, log, jobs.Options{LocalDelay: -1})
	svc := handlers.New(st, runner, evs, presence.New(st, log, 0), contract, handlers.Limits{})
	return realRig{d: dispatch.New(contract, svc, st, evs, log, dispatch.Options{}), ctx: auth.NewContext(ctx, id),
		id: id, events: evs, runner: runner}
}
