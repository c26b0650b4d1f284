// Command loadgen measures glow under load: the same operation over HTTP and over
// socket.io, with N concurrent clients each keeping K calls in flight, for a fixed time
// per step after a warm-up. It reports calls per second, latency percentiles, errors and
// the server's CPU time per call, and can write the results as Markdown. The chat-fanout
// transport measures something else: one chat's reply stream delivered to N watching
// sockets (frames per second and publish-to-receipt latency; see chat.go).
//
// By default it starts its own server on a new SQLite database in a temporary directory,
// listening on a free port of 127.0.0.1, as a separate process (this binary re-executed),
// so that the server's CPU time is read from /proc/<pid>/stat apart from the load
// generator's. -inprocess runs the server in this process instead; -url and -token target
// a running server.
//
// -anchors also measures servers glow is compared with (anchor.go), with the same steps in
// the same run, and the report shows glow's numbers as ratios of theirs; -idle-sockets
// measures the memory an idle socket costs.
//
//	go run ./tools/loadgen -clients 1,10,100 -duration 10s -out docs/BENCHMARKS.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/glowhq/glow/gen"
)

// Bounds on the flags, so that no run is unbounded by accident.
const (
	maxClients  = 1000
	maxInFlight = 64
	maxSteps    = 30
	maxDuration = 5 * time.Minute
	maxWarmup   = time.Minute
	maxIdle     = 10000 // -idle-sockets
)

type config struct {
	Clients    []int
	Shared     []int       // client counts of the socketio-shared steps
	Watch      []watchSpec // the chat-fanout steps
	TokenDelay time.Duration
	InFlight   int
	Duration   time.Duration
	Warmup     time.Duration
	Timeout    time.Duration
	Op         string
	Body       string
	Transports []string
	Role       string
	Out        string
	InProcess  bool
	ServerLog  string
	Profile    string

	URL, Token           string
	DataDir, DatabaseURL string
	PID                  int

	Anchors        []string // the anchors measured beside glow (anchor.go)
	AnchorClients  int      // clients of the anchors' http and socket.io steps
	AnchorWatchers int      // sockets of the anchors' broadcast step
	NodeDir        string   // bench/node: anchor.mjs and its npm packages
	IdleSockets    int      // sockets of the memory measurement; 0: none
	Cycles         int      // connect/close cycles after it (churn.go); 0: none
	MemoryCalls    int64    // socket.io calls after those (churn.go); 0: none
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(childMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == echoCommand {
		os.Exit(echoMain())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once

	// The code measured is the binary's, built from the tree as it is now: what changes while
	// the run goes on is not in it.
	code := codeVersion(cfg.Out)
	started := time.Now()
	got, env, err := bench(ctx, cfg, stdout, stderr)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "loadgen: interrupted; no report written")
		printAll(stdout, got, cfg)
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	printAll(stdout, got, cfg)
	if cfg.Out != "" {
		md := renderMarkdown(report{Machine: env.machine, Mode: env.mode, Code: code, Command: commandLine(args),
			Date: started, Config: cfg, measured: got})
		if err := os.WriteFile(cfg.Out, md, 0o644); err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "loadgen: wrote %s\n", cfg.Out)
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clients := fs.String("clients", "1,10,100", fmt.Sprintf("concurrent clients per step, comma-separated (each 1–%d)", maxClients))
	shared := fs.String("shared-clients", "", "client counts of the socketio-shared steps (default: those of -clients)")
	watch := fs.String("watchers", "1,10,100", "chat-fanout steps: watching sockets per step, comma-separated, each N or N@<pace> (the model's pause between words, whole ms; default 0)")
	fs.DurationVar(&cfg.TokenDelay, "local-token-delay", time.Millisecond, "LocalTokenDelay of the started server (the chat-fanout steps set their pace on the model, which wins)")
	fs.IntVar(&cfg.InFlight, "inflight", 1, fmt.Sprintf("calls each client keeps in flight (1–%d)", maxInFlight))
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per step")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each step's window")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "longest a call (or a connect) may take before it counts as an error")
	fs.StringVar(&cfg.Op, "op", "profile.context", "operation to call: its operationId (socket.io event); HTTP posts to its path")
	fs.StringVar(&cfg.Body, "body", "{}", "JSON request body")
	transports := fs.String("transports", "http,socketio", "transports to measure, in order: http, socketio, socketio-shared (every client on one profile: the push fan-out), chat-fanout (one chat streamed to -watchers sockets; creates a persona and sets the default model's token_delay_ms)")
	fs.StringVar(&cfg.Role, "role", "learner", "role of the clients' profiles")
	fs.StringVar(&cfg.Out, "out", "", "write a Markdown report to this file (replacing it)")
	fs.BoolVar(&cfg.InProcess, "inprocess", false, "run the server in this process (CPU figures then count both)")
	fs.StringVar(&cfg.ServerLog, "server-log", "warn", "log level of the started server")
	fs.StringVar(&cfg.Profile, "cpuprofile", "", "write a CPU profile of the started server, over the whole run, to this file (go tool pprof)")
	fs.StringVar(&cfg.URL, "url", "", "target a running server at this base URL (http://host:port) instead of starting one")
	fs.StringVar(&cfg.Token, "token", "", "with -url: a token of the running server")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "with -url: the server's SQLite directory, to give each client its own profile and token")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "with -url: the server's PostgreSQL URL, for the same")
	fs.IntVar(&cfg.PID, "pid", 0, "with -url: the server's process id, to measure its CPU time")
	anchorList := fs.String("anchors", "", "servers to compare glow with, comma-separated: node-echo (socket.io 4.8 acking every event with its argument; also its broadcast to -anchor-watchers sockets), node-contract (socket.io 4.8 doing glow's wire contract without storage), go-echo (Go net/http JSON echo). Each runs the compared shapes after glow's steps of the same transport")
	fs.IntVar(&cfg.AnchorClients, "anchor-clients", 100, "clients of the anchors' http, socketio and socketio-shared steps: one of glow's client counts")
	fs.IntVar(&cfg.AnchorWatchers, "anchor-watchers", 1000, "sockets node-echo broadcasts to: one of glow's -watchers, at pace 0")
	fs.StringVar(&cfg.NodeDir, "node-dir", "bench/node", "the Node anchors' anchor.mjs and npm packages (npm ci --prefix <dir>)")
	fs.IntVar(&cfg.IdleSockets, "idle-sockets", 0, fmt.Sprintf("memory: idle sockets (each its own profile) to open on a new glow server, and on node-contract with -anchors (0–%d; 0: none)", maxIdle))
	fs.IntVar(&cfg.Cycles, "cycles", 0, fmt.Sprintf("memory: connect/close cycles, in rounds of %d sockets, on the -idle-sockets server after its sockets close; RSS after the first round and after the last (0–%d; 0: none)", cycleRound, maxCycles))
	fs.Int64Var(&cfg.MemoryCalls, "memory-calls", 0, fmt.Sprintf("memory: socket.io calls from %d sockets on the same server after the cycles; RSS after the last (0–%d; 0: none)", churnCalls, maxMemCalls))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./tools/loadgen [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Clients, err = parseCounts(*clients); err != nil {
		return cfg, fmt.Errorf("-clients: %w", err)
	}
	cfg.Shared = cfg.Clients
	if *shared != "" {
		if cfg.Shared, err = parseCounts(*shared); err != nil {
			return cfg, fmt.Errorf("-shared-clients: %w", err)
		}
	}
	if cfg.Watch, err = parseWatchSpecs(*watch); err != nil {
		return cfg, fmt.Errorf("-watchers: %w", err)
	}
	for _, s := range strings.Split(*transports, ",") {
		s = strings.TrimSpace(s)
		if _, ok := transportTitles[s]; !ok {
			return cfg, fmt.Errorf("-transports: unknown transport %q (http, socketio, socketio-shared, chat-fanout)", s)
		}
		cfg.Transports = append(cfg.Transports, s)
	}
	switch {
	case cfg.InFlight < 1 || cfg.InFlight > maxInFlight:
		return cfg, fmt.Errorf("-inflight must be from 1 to %d", maxInFlight)
	case cfg.Duration < time.Second || cfg.Duration > maxDuration:
		return cfg, fmt.Errorf("-duration must be from 1s to %s", maxDuration)
	case cfg.Warmup < 0 || cfg.Warmup > maxWarmup:
		return cfg, fmt.Errorf("-warmup must be from 0 to %s", maxWarmup)
	case cfg.Timeout < 100*time.Millisecond || cfg.Timeout > time.Minute:
		return cfg, errors.New("-timeout must be from 100ms to 1m")
	case cfg.TokenDelay < 0 || cfg.TokenDelay > maxPace:
		return cfg, fmt.Errorf("-local-token-delay must be from 0 to %s", maxPace)
	case !json.Valid([]byte(cfg.Body)):
		return cfg, errors.New("-body is not valid JSON")
	case cfg.URL == "" && (cfg.Token != "" || cfg.DataDir != "" || cfg.DatabaseURL != "" || cfg.PID != 0):
		return cfg, errors.New("-token, -data-dir, -database-url and -pid go with -url")
	case cfg.URL != "" && cfg.Token == "":
		return cfg, errors.New("-url needs -token")
	case cfg.URL != "" && cfg.Profile != "":
		return cfg, errors.New("-cpuprofile profiles a server loadgen starts, not one at -url")
	case cfg.URL != "" && cfg.InProcess:
		return cfg, errors.New("-inprocess starts a server; -url targets one: pick one")
	}
	if _, ok := gen.OperationByID(cfg.Op); !ok {
		return cfg, fmt.Errorf("-op: no operation %q in openapi.yaml", cfg.Op)
	}
	if *anchorList != "" {
		for _, a := range strings.Split(*anchorList, ",") {
			a = strings.TrimSpace(a)
			if _, ok := anchorTitles[a]; !ok {
				return cfg, fmt.Errorf("-anchors: unknown anchor %q (node-echo, node-contract, go-echo)", a)
			}
			if slices.Contains(cfg.Anchors, a) {
				return cfg, fmt.Errorf("-anchors: %s twice", a)
			}
			cfg.Anchors = append(cfg.Anchors, a)
		}
	}
	if len(cfg.Anchors) > 0 && cfg.InProcess {
		return cfg, errors.New("-anchors compares glow's server process with the anchors' processes: not with -inprocess")
	}
	if err := cfg.checkAnchors(); err != nil {
		return cfg, err
	}
	if cfg.steps() > maxSteps {
		return cfg, fmt.Errorf("at most %d steps (clients × transports, and the anchors')", maxSteps)
	}
	switch {
	case cfg.IdleSockets < 0 || cfg.IdleSockets > maxIdle:
		return cfg, fmt.Errorf("-idle-sockets must be from 0 to %d", maxIdle)
	case cfg.IdleSockets > 0 && (cfg.URL != "" || cfg.InProcess):
		return cfg, errors.New("-idle-sockets measures a server process loadgen starts: not with -url or -inprocess")
	case cfg.Cycles < 0 || cfg.Cycles > maxCycles:
		return cfg, fmt.Errorf("-cycles must be from 0 to %d", maxCycles)
	case cfg.MemoryCalls < 0 || cfg.MemoryCalls > maxMemCalls:
		return cfg, fmt.Errorf("-memory-calls must be from 0 to %d", maxMemCalls)
	case (cfg.Cycles > 0 || cfg.MemoryCalls > 0) && cfg.IdleSockets == 0:
		return cfg, errors.New("-cycles and -memory-calls run on the -idle-sockets server: give -idle-sockets too")
	}
	return cfg, nil
}

// checkAnchors checks that every anchor has a step to run and that glow runs each anchor
// step's shape too, so that the report can compare them.
func (c config) checkAnchors() error {
	if c.AnchorClients < 1 || c.AnchorClients > maxClients || c.AnchorWatchers < 1 || c.AnchorWatchers > maxClients {
		return fmt.Errorf("-anchor-clients and -anchor-watchers must be from 1 to %d", maxClients)
	}
	ran := map[string]bool{}
	for _, tr := range c.Transports {
		for _, s := range c.anchorSteps(tr) {
			ran[s.Anchor] = true
			switch {
			case tr == transportChat && !slices.Contains(c.Watch, watchSpec{Watchers: s.Clients}):
				return fmt.Errorf("-anchor-watchers %d: glow's -watchers must include %d (at pace 0) to compare with", s.Clients, s.Clients)
			case tr != transportChat && !slices.Contains(c.clientsOf(tr), s.Clients):
				return fmt.Errorf("-anchor-clients %d: glow's %s steps must include %d clients to compare with", s.Clients, tr, s.Clients)
			}
		}
	}
	for _, a := range c.Anchors {
		if !ran[a] {
			return fmt.Errorf("-anchors %s: none of its steps is in -transports", a)
		}
	}
	return nil
}

// needsNode says whether a run starts a Node anchor.
func (c config) needsNode() bool {
	return slices.Contains(c.Anchors, anchorNodeEcho) || slices.Contains(c.Anchors, anchorNodeContract)
}

// runEnv is where a run happened.
type runEnv struct {
	machine machine
	mode    string // how the server ran
}

func parseCounts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxClients {
			return nil, fmt.Errorf("%q is not a number of clients from 1 to %d", s, maxClients)
		}
		out = append(out, n)
	}
	return out, nil
}

// clientsOf lists the client counts of a transport's steps (none for chat-fanout, whose
// steps are its watcher counts).
func (c config) clientsOf(transport string) []int {
	switch transport {
	case transportSIOShare:
		return c.Shared
	case transportChat:
		return nil
	}
	return c.Clients
}

// steps counts the steps of a run, the anchors' included.
func (c config) steps() int {
	n := 0
	for _, tr := range c.Transports {
		if tr == transportChat {
			n += len(c.Watch)
		}
		n += len(c.clientsOf(tr)) + len(c.anchorSteps(tr))
	}
	return n
}

// maxWatchers is the most watchers of a chat-fanout step (0 without one).
func (c config) maxWatchers() int {
	n := 0
	if slices.Contains(c.Transports, transportChat) {
		for _, w := range c.Watch {
			n = max(n, w.Watchers)
		}
	}
	return n
}

// measured is everything a run measured.
type measured struct {
	Results []result      // glow's steps, then each transport's anchor steps after glow's
	Chats   []chatResult  // the same for the chat fan-out
	Idle    []idleResult  // the memory of idle sockets
	Churn   []churnResult // and of the cycles and calls after them (glow's)
	Node    string        // the Node anchors' runtime, when they ran
}

// bench starts or finds the server, checks both transports once, and runs every step, each
// transport's anchor steps after glow's; then the memory measurement.
func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) (measured, runEnv, error) {
	var got measured
	m := runEnv{machine: describeMachine()}
	maxN := 0
	for _, tr := range cfg.Transports {
		for _, n := range cfg.clientsOf(tr) {
			maxN = max(maxN, n)
		}
	}
	steps := cfg.steps()
	estimate := time.Duration(steps) * (cfg.Warmup + cfg.Duration + time.Second)
	if cfg.IdleSockets > 0 {
		estimate += 4 * idleSettle
		estimate += time.Duration(cfg.Cycles/cycleRound+3)*(2*time.Second) + time.Duration(cfg.MemoryCalls/5000)*time.Second
		if slices.Contains(cfg.Anchors, anchorNodeContract) {
			estimate += 4 * idleSettle
		}
	}
	fmt.Fprintf(stderr, "loadgen: %d steps of %s warm-up + %s, about %s in all\n", steps, cfg.Warmup, cfg.Duration, estimate)

	var opts anchorOptions
	if cfg.needsNode() {
		var err error
		if opts.Node, err = findNode(cfg.NodeDir); err != nil {
			return got, m, err
		}
		got.Node = opts.Node.version
	}
	tgt, err := startTarget(ctx, cfg, maxN, cfg.maxWatchers())
	if err != nil {
		return got, m, err
	}
	defer func() { // tgt may be replaced below
		if tgt == nil {
			return
		}
		if err := tgt.stop(); err != nil {
			fmt.Fprintf(stderr, "loadgen: stop the server: %v\n", err)
		}
	}()
	m.mode = tgt.Mode
	fmt.Fprintf(stderr, "loadgen: server %s, %s\n", tgt.URL, tgt.Mode)
	if tgt.pid > 0 {
		fmt.Fprintf(stderr, "loadgen: server pid %d\n", tgt.pid)
	}
	op, _ := gen.OperationByID(cfg.Op)
	if err := preflight(ctx, tgt, cfg, op.Path, stderr); err != nil {
		return got, m, fmt.Errorf("preflight: %w", err)
	}

	pause := func() error {
		// Let the server finish closing the step's connections before the next one.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	}
	// contractBody fetches, once, glow's answer to the operation: node-contract answers with it.
	contractBody := func() error {
		if opts.Body != nil || !slices.Contains(cfg.Anchors, anchorNodeContract) {
			return nil
		}
		tokens, _ := clientTokens(tgt, 1, false)
		var body json.RawMessage
		api := apiClient{base: tgt.URL, http: &http.Client{Timeout: cfg.Timeout}}
		if err := api.call(ctx, tokens[0], op.Path, json.RawMessage(cfg.Body), &body); err != nil {
			return fmt.Errorf("glow's answer for node-contract: %w", err)
		}
		opts.Body = body
		return nil
	}
	for _, tr := range cfg.Transports {
		if tr == transportChat {
			if cfg.URL == "" && len(got.Results) > 0 {
				// The chat gets a server of its own, on a new database: the steps before leave
				// a large heap, an event log of millions of events and socket.io's recovery
				// buffers behind them.
				err := tgt.stop()
				tgt = nil
				if err != nil {
					return got, m, fmt.Errorf("stop the server: %w", err)
				}
				if tgt, err = startTarget(ctx, cfg, 1, cfg.maxWatchers()); err != nil {
					return got, m, err
				}
				fmt.Fprintf(stderr, "loadgen: chat-fanout server %s, pid %d\n", tgt.URL, tgt.pid)
			}
			env, err := setupChat(ctx, tgt, cfg.Timeout)
			if err != nil {
				return got, m, fmt.Errorf("chat-fanout setup: %w", err)
			}
			for _, w := range cfg.Watch {
				res, err := runChatStep(ctx, tgt, env, chatStepConfig{watchSpec: w, Warmup: cfg.Warmup, Duration: cfg.Duration, Timeout: cfg.Timeout})
				if ctx.Err() != nil {
					return got, m, ctx.Err()
				}
				if err != nil {
					return got, m, fmt.Errorf("chat-fanout with %s watchers: %w", w.label(), err)
				}
				got.Chats = append(got.Chats, res)
				printChatStep(stdout, res)
				if err := pause(); err != nil {
					return got, m, err
				}
			}
		} else {
			for _, n := range cfg.clientsOf(tr) {
				step := stepConfig{Transport: tr, Clients: n, InFlight: cfg.InFlight, Warmup: cfg.Warmup,
					Duration: cfg.Duration, Timeout: cfg.Timeout, Op: cfg.Op, Path: op.Path, Body: []byte(cfg.Body)}
				res, err := runStep(ctx, tgt, step)
				if ctx.Err() != nil {
					return got, m, ctx.Err()
				}
				if err != nil {
					return got, m, fmt.Errorf("%s with %d clients: %w", tr, n, err)
				}
				got.Results = append(got.Results, res)
				printStep(stdout, res, tgt.inProcess)
				if err := pause(); err != nil {
					return got, m, err
				}
			}
		}
		for _, s := range cfg.anchorSteps(tr) {
			if s.Mode == nodeModeContract {
				if err := contractBody(); err != nil {
					return got, m, err
				}
			}
			err := runAnchorStep(ctx, s, cfg, opts, op.Path, &got, stdout, stderr)
			if ctx.Err() != nil {
				return got, m, ctx.Err()
			}
			if err != nil {
				return got, m, fmt.Errorf("%s with %d clients against %s: %w", tr, s.Clients, s.Anchor, err)
			}
			if err := pause(); err != nil {
				return got, m, err
			}
		}
	}
	if cfg.IdleSockets == 0 {
		return got, m, nil
	}

	// Memory: a new glow server, with nothing before; then node-contract.
	err = tgt.stop()
	tgt = nil
	if err != nil {
		return got, m, fmt.Errorf("stop the server: %w", err)
	}
	if tgt, err = startTarget(ctx, cfg, max(cfg.IdleSockets, min(cfg.Cycles, cycleRound), churnCalls), 0); err != nil {
		return got, m, err
	}
	fmt.Fprintf(stderr, "loadgen: memory server %s, pid %d\n", tgt.URL, tgt.pid)
	idle, err := measureIdle(ctx, tgt, "glow", cfg.IdleSockets, idleSettle, cfg.Timeout)
	if err != nil {
		return got, m, fmt.Errorf("glow's memory with %d idle sockets: %w", cfg.IdleSockets, err)
	}
	got.Idle = append(got.Idle, idle)
	printIdle(stdout, idle)
	if cfg.Cycles > 0 || cfg.MemoryCalls > 0 {
		churn, err := measureChurn(ctx, tgt, cfg.Cycles, cfg.MemoryCalls, cfg.Op, []byte(cfg.Body), idleSettle, cfg.Timeout)
		if err != nil {
			return got, m, fmt.Errorf("glow's memory under churn: %w", err)
		}
		got.Churn = append(got.Churn, churn)
		printChurn(stdout, churn)
	}
	if !slices.Contains(cfg.Anchors, anchorNodeContract) {
		return got, m, nil
	}
	if err := contractBody(); err != nil {
		return got, m, err
	}
	anchor, err := startAnchor(anchorStep{Anchor: anchorNodeContract, Mode: nodeModeContract}, opts, cfg.IdleSockets, 0)
	if err != nil {
		return got, m, err
	}
	idle, err = measureIdle(ctx, anchor, anchorNodeContract, cfg.IdleSockets, idleSettle, cfg.Timeout)
	if stopErr := anchor.stop(); stopErr != nil {
		fmt.Fprintf(stderr, "loadgen: stop the %s anchor: %v\n", anchorNodeContract, stopErr)
	}
	if err != nil {
		return got, m, fmt.Errorf("%s's memory with %d idle sockets: %w", anchorNodeContract, cfg.IdleSockets, err)
	}
	idle.Version = opts.Node.version
	got.Idle = append(got.Idle, idle)
	printIdle(stdout, idle)
	return got, m, nil
}

// runAnchorStep starts the anchor of step s, checks it with one call, measures the step
// as glow's is measured, and stops the anchor.
func runAnchorStep(ctx context.Context, s anchorStep, cfg config, opts anchorOptions, path string, got *measured,
	stdout, stderr io.Writer) error {
	clients, watchers := s.Clients, 0
	if s.Transport == transportChat {
		clients, watchers = 1, s.Clients
	}
	tgt, err := startAnchor(s, opts, clients, watchers)
	if err != nil {
		return err
	}
	defer func() {
		if err := tgt.stop(); err != nil {
			fmt.Fprintf(stderr, "loadgen: stop the %s anchor: %v\n", s.Anchor, err)
		}
	}()
	fmt.Fprintf(stderr, "loadgen: anchor %s (%s) %s, pid %d\n", s.Anchor, tgt.Mode, tgt.URL, tgt.pid)
	if err := anchorPreflight(ctx, tgt, s, cfg, path); err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	if s.Transport == transportChat {
		res, err := runBroadcastStep(ctx, tgt, chatStepConfig{watchSpec: watchSpec{Watchers: s.Clients},
			Warmup: cfg.Warmup, Duration: cfg.Duration, Timeout: cfg.Timeout, Anchor: s.Anchor})
		if err != nil {
			return err
		}
		got.Chats = append(got.Chats, res)
		printChatStep(stdout, res)
		return nil
	}
	step := stepConfig{Transport: s.Transport, Clients: s.Clients, InFlight: cfg.InFlight, Warmup: cfg.Warmup,
		Duration: cfg.Duration, Timeout: cfg.Timeout, Op: cfg.Op, Path: path, Body: []byte(cfg.Body),
		Anchor: s.Anchor, Echo: s.Mode == nodeModeEcho}
	res, err := runStep(ctx, tgt, step)
	if err != nil {
		return err
	}
	got.Results = append(got.Results, res)
	printStep(stdout, res, false)
	return nil
}

// startTarget starts glow's server (or describes the one at -url) with tokens for clients
// clients and watchers watching sockets.
func startTarget(ctx context.Context, cfg config, clients, watchers int) (*target, error) {
	if cfg.URL != "" {
		return external(ctx, cfg.URL, cfg.Token, cfg.DataDir, cfg.DatabaseURL, cfg.PID, clients, watchers, cfg.Role)
	}
	dir, err := os.MkdirTemp("", "glow-loadgen-")
	if err != nil {
		return nil, err
	}
	scfg := serverConfig{Clients: clients, Role: cfg.Role, MaxCalls: max(16, cfg.InFlight), LogLevel: cfg.ServerLog,
		Watchers: watchers, TokenDelay: cfg.TokenDelay}
	if cfg.Profile != "" {
		if scfg.Profile, err = filepath.Abs(cfg.Profile); err != nil {
			return nil, err
		}
	}
	var tgt *target
	if cfg.InProcess {
		tgt, err = startInProcess(dir, scfg)
	} else {
		tgt, err = startChild(dir, scfg)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := tgt.stop
	tgt.stop = func() error {
		defer os.RemoveAll(dir)
		return stop()
	}
	return tgt, nil
}

// preflight makes one call per transport and checks that both answer 200 with the same
// body, and that socket.io pushes the call's lifecycle events.
func preflight(ctx context.Context, tgt *target, cfg config, path string, stderr io.Writer) error {
	tokens, _ := clientTokens(tgt, 1, false)
	var httpBody, sioBody json.RawMessage
	for _, tr := range cfg.Transports {
		switch tr {
		case transportHTTP:
			if httpBody != nil {
				continue
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, tgt.URL+path, bytes.NewReader([]byte(cfg.Body)))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens[0])
			res, err := (&http.Client{Timeout: cfg.Timeout}).Do(req)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return err
			}
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("POST %s answered %d: %s", path, res.StatusCode, truncate(body, 300))
			}
			httpBody = body
		case transportSIO, transportSIOShare:
			if sioBody != nil {
				continue
			}
			wsURL, err := socketURL(tgt.URL)
			if err != nil {
				return err
			}
			c, err := dialSIO(ctx, wsURL, tokens[0], cfg.Timeout)
			if err != nil {
				return err
			}
			args, err := c.Call(ctx, cfg.Op, []byte(cfg.Body), cfg.Timeout)
			if err != nil {
				c.Close()
				return err
			}
			status, body, err := decodeAck(args)
			if err != nil {
				c.Close()
				return err
			}
			if status != http.StatusOK {
				c.Close()
				return fmt.Errorf("%s answered %d: %s", cfg.Op, status, truncate(body, 300))
			}
			sioBody = body
			deadline := time.Now().Add(time.Second)
			for c.pushes.Load() < 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			fmt.Fprintf(stderr, "loadgen: socket.io call acked 200; %d pushed events for it (lifecycle .started/.completed)\n", c.pushes.Load())
			c.Close()
		}
	}
	if httpBody != nil && sioBody != nil {
		var a, b any
		_ = json.Unmarshal(httpBody, &a)
		_ = json.Unmarshal(sioBody, &b)
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("HTTP and socket.io answered different bodies:\n%s\n%s", httpBody, sioBody)
		}
		fmt.Fprintf(stderr, "loadgen: HTTP and socket.io answer %s with the same body (%d bytes)\n", cfg.Op, len(httpBody))
	}
	return nil
}

// commandLine is the command that reproduces this run.
func commandLine(args []string) string {
	parts := []string{"go", "run", "./tools/loadgen"}
	redact := false
	for _, a := range args {
		switch {
		case redact:
			a, redact = "<token>", false
		case a == "-token" || a == "--token":
			redact = true
		case strings.HasPrefix(a, "-token=") || strings.HasPrefix(a, "--token="):
			a = a[:strings.IndexByte(a, '=')+1] + "<token>"
		}
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,=:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
