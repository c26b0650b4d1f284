package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The transports a step can use.
const (
	transportHTTP     = "http"
	transportSIO      = "socketio"
	transportSIOShare = "socketio-shared"
)

var transportTitles = map[string]string{
	transportHTTP:     "HTTP (net/http client, keep-alive)",
	transportSIO:      "socket.io (websocket, one profile per client)",
	transportSIOShare: "socket.io fan-out (websocket, every client on one profile)",
	transportChat:     "Chat fan-out: one chat streamed to N watching sockets",
}

// stepConfig is one measured step.
type stepConfig struct {
	Transport string
	Clients   int
	InFlight  int
	Warmup    time.Duration
	Duration  time.Duration
	Timeout   time.Duration // per call
	Op        string        // the socket.io event
	Path      string        // the HTTP path
	Body      []byte
	Anchor    string // the anchor measured (anchor.go); "" for glow
	Echo      bool   // the server acks a call with its own argument, not {status, body}
}

// label names the step's transport, and the anchor measured if any.
func (c stepConfig) label() string {
	if c.Anchor == "" {
		return c.Transport
	}
	return c.Transport + "@" + c.Anchor
}

// result is what a step measured over its window.
type result struct {
	stepConfig
	Window   time.Duration
	OK       int64
	Errors   int64
	ErrKinds map[string]int64
	P50, P90 time.Duration
	P99, Max time.Duration
	Pushes   int64 // events the server pushed to the clients (socket.io)
	cpuUsage
	ServerRSS int64         // at the end of the window; 0 when unknown
	Shared    bool          // the clients shared one profile
	Connect   time.Duration // how long connecting the clients took (socket.io)
}

// cpuUsage is the CPU time spent in a measured window.
type cpuUsage struct {
	ServerCPU time.Duration
	SelfCPU   time.Duration
	CPUKnown  bool
	// OtherCPU is the machine's busy time in the window outside the server and the load
	// generator: other processes competing for the cores.
	OtherCPU   time.Duration
	OtherKnown bool
}

// cpuSnap is the CPU counters at one end of a window.
type cpuSnap struct {
	server, self, machine time.Duration
	ok, machineOK         bool
}

func takeCPU(tgt *target) cpuSnap {
	var s cpuSnap
	var err error
	s.machine, err = machineBusy()
	s.machineOK = err == nil
	if tgt.serverCPU != nil {
		var err1, err2 error
		s.server, err1 = tgt.serverCPU()
		s.self, err2 = selfCPU()
		s.ok = err1 == nil && err2 == nil
	}
	return s
}

// cpuBetween is the CPU time spent between two snapshots.
func cpuBetween(tgt *target, s0, s1 cpuSnap) cpuUsage {
	var u cpuUsage
	u.CPUKnown = s0.ok && s1.ok
	u.ServerCPU, u.SelfCPU = s1.server-s0.server, s1.self-s0.self
	if u.CPUKnown && s0.machineOK && s1.machineOK {
		u.OtherKnown = true
		u.OtherCPU = s1.machine - s0.machine - u.SelfCPU
		if !tgt.inProcess {
			u.OtherCPU -= u.ServerCPU
		}
		u.OtherCPU = max(u.OtherCPU, 0)
	}
	return u
}

func (r result) Calls() int64 { return r.OK + r.Errors }

// recorder is one worker's tally; workers never share one.
type recorder struct {
	lat    []time.Duration
	errs   int64
	kinds  map[string]int64
	window [2]time.Time
}

func (r *recorder) done(start, end time.Time, err error) {
	if end.Before(r.window[0]) || end.After(r.window[1]) {
		return
	}
	if err != nil {
		r.errs++
		if r.kinds == nil {
			r.kinds = map[string]int64{}
		}
		r.kinds[errorKind(err)]++
		return
	}
	r.lat = append(r.lat, end.Sub(start))
}

// statusError is an answer other than 200.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("status %d", int(e)) }

func errorKind(err error) string {
	var se statusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.Is(err, errTimeout), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, errClosed):
		return "connection closed"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

// caller makes one call; workers call it in a loop.
type caller func(ctx context.Context) error

// runStep connects the clients, runs them through the warm-up and the measured window, and
// disconnects them.
func runStep(ctx context.Context, tgt *target, cfg stepConfig) (result, error) {
	res := result{stepConfig: cfg}
	var callers []caller // one per client
	var pushes func() int64
	cleanup := func() {}
	connectStart := time.Now()
	switch cfg.Transport {
	case transportHTTP:
		tokens, shared := clientTokens(tgt, cfg.Clients, false)
		res.Shared = shared
		clients := make([]*http.Client, cfg.Clients)
		for i := range clients {
			clients[i] = newHTTPClient(cfg.InFlight, cfg.Timeout)
			callers = append(callers, httpCaller(clients[i], tgt.URL+cfg.Path, tokens[i], cfg.Body))
		}
		cleanup = func() {
			for _, c := range clients {
				c.CloseIdleConnections()
			}
		}
	case transportSIO, transportSIOShare:
		tokens, shared := clientTokens(tgt, cfg.Clients, cfg.Transport == transportSIOShare)
		res.Shared = shared
		conns, err := dialAll(ctx, tgt.URL, tokens, cfg.Timeout)
		if err != nil {
			return res, err
		}
		for _, c := range conns {
			if cfg.Echo {
				callers = append(callers, echoCaller(c, cfg.Op, cfg.Body, cfg.Timeout))
			} else {
				callers = append(callers, sioCaller(c, cfg.Op, cfg.Body, cfg.Timeout))
			}
		}
		pushes = func() int64 {
			var n int64
			for _, c := range conns {
				n += c.pushes.Load()
			}
			return n
		}
		cleanup = func() { closeAll(conns) }
	default:
		return res, fmt.Errorf("unknown transport %q", cfg.Transport)
	}
	// Disconnecting also ends calls stuck on a connection, so it comes before waiting for
	// the workers.
	disconnect := sync.OnceFunc(cleanup)
	defer disconnect()
	res.Connect = time.Since(connectStart)

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	measureTo := measureFrom.Add(cfg.Duration)
	runCtx, stop := context.WithDeadline(ctx, measureTo)
	defer stop()

	recs := make([]*recorder, 0, len(callers)*cfg.InFlight)
	var wg sync.WaitGroup
	for _, call := range callers {
		for range cfg.InFlight {
			rec := &recorder{window: [2]time.Time{measureFrom, measureTo}}
			recs = append(recs, rec)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil {
					t0 := time.Now()
					err := call(runCtx)
					rec.done(t0, time.Now(), err)
					if err != nil && runCtx.Err() == nil && !errors.As(err, new(statusError)) {
						// A broken connection fails at once: do not spin on it.
						select {
						case <-runCtx.Done():
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
			}()
		}
	}

	// Snapshot the counters at both ends of the window.
	type snap struct {
		cpu    cpuSnap
		pushes int64
	}
	take := func() snap {
		s := snap{cpu: takeCPU(tgt)}
		if pushes != nil {
			s.pushes = pushes()
		}
		return s
	}
	interrupted := func(at time.Time) bool {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
			return false
		}
	}
	finish := func() {
		stop()
		disconnect()
		wg.Wait()
	}
	if interrupted(measureFrom) {
		finish()
		return res, ctx.Err()
	}
	s0 := take()
	if interrupted(measureTo) {
		finish()
		return res, ctx.Err()
	}
	s1 := take()
	if tgt.serverRSS != nil {
		res.ServerRSS, _ = tgt.serverRSS()
	}
	finish()

	res.Window = measureTo.Sub(measureFrom)
	res.cpuUsage = cpuBetween(tgt, s0.cpu, s1.cpu)
	res.Pushes = s1.pushes - s0.pushes
	var all []time.Duration
	for _, r := range recs {
		all = append(all, r.lat...)
		res.Errors += r.errs
		for k, n := range r.kinds {
			if res.ErrKinds == nil {
				res.ErrKinds = map[string]int64{}
			}
			res.ErrKinds[k] += n
		}
	}
	res.OK = int64(len(all))
	res.P50, res.P90, res.P99, res.Max = percentiles(all)
	return res, nil
}

// percentiles sorts lat and returns its 50th, 90th and 99th percentiles and maximum
// (nearest rank).
func percentiles(lat []time.Duration) (p50, p90, p99, max time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(lat))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		return lat[min(i, len(lat)-1)]
	}
	return rank(0.50), rank(0.90), rank(0.99), lat[len(lat)-1]
}

// clientTokens gives each client its own profile's token, or every client the shared one
// when asked to or when no per-client tokens exist.
func clientTokens(tgt *target, n int, share bool) ([]string, bool) {
	return pickTokens(tgt.Tokens, tgt.Shared, n, share)
}

// pickTokens gives each of n clients its own token of own, or every client fallback when
// asked to or when own has too few. It says whether the clients share fallback.
func pickTokens(own []string, fallback string, n int, share bool) ([]string, bool) {
	out := make([]string, n)
	shared := share || len(own) < n
	for i := range out {
		if shared {
			out[i] = fallback
		} else {
			out[i] = own[i]
		}
	}
	return out, shared
}

// newHTTPClient is one virtual client: its own transport, so its connections are its own,
// and as many keep-alive connections as it has calls in flight (HTTP/1.1 runs one request
// per connection at a time).
func newHTTPClient(inFlight int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        inFlight,
		MaxIdleConnsPerHost: inFlight,
		MaxConnsPerHost:     inFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func httpCaller(c *http.Client, url, token string, body []byte) caller {
	auth := "Bearer " + token
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = http.Header{"Content-Type": {"application/json"}, "Authorization": {auth}}
		res, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return statusError(res.StatusCode)
		}
		return nil
	}
}

func sioCaller(c *sioConn, event string, body []byte, timeout time.Duration) caller {
	return func(ctx context.Context) error {
		args, err := c.Call(ctx, event, body, timeout)
		if err != nil {
			return err
		}
		status, err := ackStatus(args)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return statusError(status)
		}
		return nil
	}
}

// echoCaller calls a server that acks each call with its own argument.
func echoCaller(c *sioConn, event string, body []byte, timeout time.Duration) caller {
	var compact bytes.Buffer
	want := echoArgs(body)
	if json.Compact(&compact, body) == nil {
		want = echoArgs(compact.Bytes())
	}
	return func(ctx context.Context) error {
		args, err := c.Call(ctx, event, body, timeout)
		if err != nil {
			return err
		}
		if !bytes.Equal(args, want) && !sameJSON(args, want) {
			return errNotEcho
		}
		return nil
	}
}

var errNotEcho = errors.New("the ack is not the call's argument")

// dialConcurrency bounds the handshakes in progress, so that connecting many clients does
// not overflow the listen backlog.
const dialConcurrency = 32

// dialAll connects one socket.io client per token, or none if any fails.
func dialAll(ctx context.Context, baseURL string, tokens []string, timeout time.Duration) ([]*sioConn, error) {
	return dialAllPush(ctx, baseURL, tokens, timeout, nil)
}

// dialAllPush is dialAll with, when onPush is not nil, onPush(i) called for every event
// pushed to the i-th client (see sioConn.onPush).
func dialAllPush(ctx context.Context, baseURL string, tokens []string, timeout time.Duration,
	onPush func(i int) func(args []byte, at time.Time)) ([]*sioConn, error) {
	wsURL, err := socketURL(baseURL)
	if err != nil {
		return nil, err
	}
	conns := make([]*sioConn, len(tokens))
	errs := make([]error, len(tokens))
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var push func([]byte, time.Time)
			if onPush != nil {
				push = onPush(i)
			}
			conns[i], errs[i] = dialSIOPush(ctx, wsURL, tok, timeout, push)
		}()
	}
	wg.Wait()
	var connected []*sioConn
	var first error
	n := 0
	for i, c := range conns {
		if errs[i] != nil {
			n++
			if first == nil {
				first = errs[i]
			}
			continue
		}
		connected = append(connected, c)
	}
	if first != nil {
		closeAll(connected)
		return nil, fmt.Errorf("%d of %d socket.io connections failed; first: %w", n, len(tokens), first)
	}
	return conns, nil
}

func closeAll(conns []*sioConn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
}
