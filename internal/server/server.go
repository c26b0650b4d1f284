// Package server assembles glow — storage, handlers, the dispatcher, the HTTP and socket.io
// transports on one listener — and runs it until its context ends, then shuts down in
// order: stop accepting, close sockets, drain HTTP, close the database.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/google/uuid"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/api"
	"github.com/glowhq/glow/handlers"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/cluster"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/mcptools"
	"github.com/glowhq/glow/internal/metrics"
	"github.com/glowhq/glow/internal/node"
	"github.com/glowhq/glow/internal/presence"
	"github.com/glowhq/glow/store"
	"github.com/glowhq/glow/ws"
)

// Server is an assembled glow.
type Server struct {
	Store    *store.Store
	Events   *events.Log
	Runner   *jobs.Runner
	Presence *presence.Tracker
	Dispatch *dispatch.Dispatcher
	Metrics  *metrics.Metrics // served at GET /metrics
	Bus      *cluster.Bus     // the other nodes, when Options.RedisURL is set
	API      *api.API
	WS       *ws.Server

	// AdminToken is set when New found an empty database and created the first admin.
	AdminToken string

	handler  http.Handler
	resolver *auth.Resolver
	log      *slog.Logger
	opts     Options
}

// New opens the database (migrating it) and assembles the server. On an empty database it
// creates an admin profile and a token for it (AdminToken).
func New(ctx context.Context, opts Options, log *slog.Logger) (*Server, error) {
	opts.defaults()
	contract, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		return nil, err
	}
	cors, err := parseCORSOrigins(opts.CORSOrigins)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, opts.StoreConfig())
	if err != nil {
		return nil, err
	}
	s := &Server{Store: st, log: log, opts: opts}
	if s.AdminToken, err = bootstrap(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	s.Events = events.New(st, log, events.Options{Retention: opts.EventRetention})
	if opts.RedisURL != "" {
		if opts.DatabaseURL == "" {
			st.Close()
			return nil, errors.New("a cluster (redis url) needs the nodes' shared PostgreSQL database (database url)")
		}
		if s.Bus, err = cluster.Open(ctx, opts.RedisURL, opts.RedisPrefix, node.Self(), log); err != nil {
			st.Close()
			return nil, err
		}
		s.Bus.Attach(s.Events)
	}
	s.Runner = jobs.New(st, s.Events, log, jobs.Options{Workers: opts.Workers, LocalDelay: opts.LocalTokenDelay})
	s.Presence = presence.New(st, log, opts.PresenceGrace)
	svc := handlers.New(st, s.Runner, s.Events, s.Presence, contract,
		handlers.Limits{ChatReplies: opts.ChatReplies, ProfileRuns: opts.ProfileRuns})
	s.Metrics = metrics.New(metrics.Sources{Node: node.Self(),
		Sockets: func() int { return s.WS.Sockets() }, Published: s.Events.Published, Stored: s.Events.Stored,
		Delivered: func() int64 { return s.WS.Delivered() }, Runs: st.Q().CountRunsByStatus, Pool: st.Pool(),
	})
	s.Dispatch = dispatch.New(contract, svc, st, s.Events, log, dispatch.Options{CallTimeout: opts.CallTimeout, Observer: s.Metrics})
	s.resolver = auth.NewResolver(st, opts.TokenCacheTTL)
	mux := http.NewServeMux()
	s.API = api.Mount(mux, s.Dispatch, s.resolver, log, api.Options{MaxBodyBytes: opts.MaxBodyBytes,
		Events: s.Events, AuthorizeTopic: svc.AuthorizeTopic, KeepAlive: opts.StreamKeepAlive, WriteTimeout: opts.WriteTimeout,
		BodyTimeout: opts.BodyTimeout})
	s.WS = ws.New(s.Dispatch, s.resolver, s.Events, s.Presence, log, ws.Options{
		PingInterval: opts.PingInterval, PingTimeout: opts.PingTimeout, WriteTimeout: opts.WriteTimeout,
		MaxMessageBytes: opts.MaxBodyBytes, MaxCalls: opts.SocketMaxCalls, RecoveryWindow: opts.RecoveryWindow,
		RecoveryBytes: int(opts.RecoveryBytes), TokenProtocol: opts.TokenProtocol, TokenQuery: opts.TokenQuery,
	})
	mux.Handle("/socket.io/", s.WS.Handler())
	s.serveHealth(mux)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	spec, err := json.Marshal(contract.Doc)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("encode the spec: %w", err)
	}
	tools, err := mcptools.NewServer(spec, contract.Version(), mcptools.Dispatch(s.Dispatch))
	if err != nil {
		st.Close()
		return nil, err
	}
	// A tool call's arguments are a request body, in a JSON-RPC message.
	mux.Handle("/mcp", http.MaxBytesHandler(mcptools.Handler(tools, mcptools.Verifier(s.resolver)), opts.MaxBodyBytes+64<<10))
	s.handler = cors.wrap(mux)
	return s, nil
}

// bootstrap creates the first admin and returns its token, when there is no profile yet.
func bootstrap(ctx context.Context, st *store.Store) (string, error) {
	var token string
	err := st.Tx(ctx, func(q store.Q) error {
		n, err := q.CountProfiles(ctx)
		if err != nil || n > 0 {
			return err
		}
		issued, err := auth.Issue(ctx, q, "admin", "admin", "created by the first glow serve")
		token = issued.Token
		return err
	})
	if errors.Is(err, store.ErrDuplicate) { // another server bootstrapped first
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("create the first admin: %w", err)
	}
	return token, nil
}

// Handler serves the HTTP API, the spec and socket.io.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on l until ctx ends, then shuts down gracefully and closes the database.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	defer s.Store.Close()
	// The event log outlives the transports: what is published while they drain is stored.
	logCtx, stopLog := context.WithCancel(context.Background())
	logDone := make(chan struct{})
	go func() { s.Events.Run(logCtx); close(logDone) }()
	// The other nodes hear of this one's events until its log has stored the last.
	busCtx, stopBus := context.WithCancel(context.Background())
	busDone := make(chan struct{})
	if s.Bus != nil {
		go func() { s.Bus.Run(busCtx); close(busDone) }()
	} else {
		close(busDone)
	}
	defer func() {
		stopLog()
		<-logDone
		stopBus()
		<-busDone
		if s.Bus != nil {
			_ = s.Bus.Close()
		}
	}()
	// Generation runs stop with the transports (the runs in progress stay "running", for the
	// next start to resume), before the log.
	if err := s.Runner.Start(ctx); err != nil {
		return err
	}
	defer s.Runner.Close()
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return streams },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	background, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go s.watchRevocations(background)
	go s.purgeIdempotencyKeys(background)
	go s.pushMetrics(background)

	if s.opts.DebugAddr != "" {
		stopDebug, err := serveDebug(s.opts.DebugAddr, s.log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	s.log.Info("shutting down")
	stopBackground()
	drainCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- hs.Shutdown(drainCtx) }() // stops accepting at once, then drains
	s.WS.Close()
	s.Presence.Close()
	endStreams()
	if err := <-drained; err != nil {
		s.log.Warn("requests still running after the shutdown timeout; closing them", "timeout", s.opts.ShutdownTimeout)
		_ = hs.Close()
	}
	return nil
}

// watchRevocations forgets the cached identities of revoked tokens and disconnects their
// sockets and SSE streams; and when a profile's role or departments change, it forgets the
// profile's cached identities, has its sockets reconnect (their handshakes resolve their
// tokens again) and ends its SSE streams (which reconnect and are authorized again).
// Tokens and profiles may be changed by another process (glow token), so the database is
// polled; revocations are idempotent, and a profile change is followed once.
func (s *Server) watchRevocations(ctx context.Context) {
	t := time.NewTicker(s.opts.RevocationPoll)
	defer t.Stop()
	handled := map[uuid.UUID]time.Time{} // the profile changes followed, within the overlap
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for id, at := range handled {
			if time.Since(at) > 2*time.Minute {
				delete(handled, id)
			}
		}
		// A minute of overlap covers clock differences between the processes.
		ids, err := s.Store.Q().TokensRevokedSince(ctx, store.Now().Add(-time.Minute))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("poll revoked tokens", "err", err)
			}
			continue
		}
		for _, id := range ids {
			s.resolver.Forget(id)
			if n := s.WS.Revoke(id); n > 0 {
				s.log.Info("disconnected the sockets of a revoked token", "session", id, "sockets", n)
			}
			if n := s.API.EndStreams(func(i *auth.Identity) bool { return i.SessionID == id }); n > 0 {
				s.log.Info("ended the SSE streams of a revoked token", "session", id, "streams", n)
			}
		}
		changed, err := s.Store.Q().ProfilesChangedSince(ctx, store.Now().Add(-time.Minute))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("poll changed profiles", "err", err)
			}
			continue
		}
		for _, c := range changed {
			if !c.UpdatedAt.After(handled[c.ID]) {
				continue // this change was followed on an earlier poll
			}
			now, err := auth.ProfileIdentity(ctx, s.Store.Q(), c.ID)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("read a changed profile", "profile", c.ID, "err", err)
				}
				continue
			}
			handled[c.ID] = c.UpdatedAt
			id := c.ID
			s.resolver.ForgetProfile(id)
			// What was opened with the rights the profile has now stays as it is.
			stale := func(i *auth.Identity) bool { return i.ProfileID == id && !i.SameRights(now) }
			sockets, streams := s.WS.Reauthenticate(stale), s.API.EndStreams(stale)
			if sockets+streams > 0 {
				s.log.Info("a profile's role or departments changed: its sockets reconnect and its streams end",
					"profile", id, "sockets", sockets, "streams", streams)
			}
		}
	}
}

// purgeIdempotencyKeys forgets idempotency receipts after a day.
func (s *Server) purgeIdempotencyKeys(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.Store.Q().PurgeIdempotencyKeys(ctx, store.Now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			s.log.Warn("purge idempotency keys", "err", err)
		} else if n > 0 {
			s.log.Debug("purged idempotency keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Version is the version of the API glow serves: the spec's info.version.
func Version() (string, error) {
	c, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		return "", err
	}
	return c.Version(), nil
}

// serveDebug serves net/http/pprof on its own listener (GLOW_DEBUG_ADDR), so that the
// profiles are never reachable through the API's address. It returns what stops it.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	log.Info("serving profiles", "url", "http://"+l.Addr().String()+"/debug/pprof/")
	return func() { _ = hs.Close() }, nil
}
