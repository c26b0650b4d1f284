package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestMain lets the tests start the Go echo anchor and glow's server as the load generator
// does: this binary re-executed with a hidden first argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case childCommand:
			os.Exit(childMain(os.Args[2:]))
		case echoCommand:
			os.Exit(echoMain())
		}
	}
	os.Exit(m.Run())
}

func benchConfig() config {
	return config{
		Transports: []string{transportHTTP, transportSIO, transportSIOShare, transportChat},
		Clients:    []int{1, 100}, Shared: []int{100},
		Watch:   []watchSpec{{Watchers: 1000}, {Watchers: 1000, Pace: 20 * time.Millisecond}},
		Anchors: []string{anchorNodeEcho, anchorNodeContract, anchorGoEcho}, AnchorClients: 100, AnchorWatchers: 1000,
		InFlight: 1, Op: "profile.context", Body: "{}", Warmup: 2 * time.Second, Duration: 7 * time.Second, Timeout: 10 * time.Second,
	}
}

func TestAnchorSteps(t *testing.T) {
	cfg := benchConfig()
	for tr, want := range map[string][]anchorStep{
		transportHTTP:     {{anchorGoEcho, "", transportHTTP, 100}},
		transportSIO:      {{anchorNodeEcho, nodeModeEcho, transportSIO, 100}, {anchorNodeContract, nodeModeContract, transportSIO, 100}},
		transportSIOShare: {{anchorNodeContract, nodeModeContract, transportSIOShare, 100}},
		transportChat:     {{anchorNodeEcho, nodeModeBroadcast, transportChat, 1000}},
	} {
		if got := cfg.anchorSteps(tr); !slices.Equal(got, want) {
			t.Errorf("anchorSteps(%s) = %v, want %v", tr, got, want)
		}
	}
	if n := cfg.steps(); n != 2+1+2+2+1+1+2+1 {
		t.Errorf("steps = %d", n)
	}
	if err := cfg.checkAnchors(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*config){
		"glow has no step of the anchors' clients": func(c *config) { c.AnchorClients = 10 },
		"glow's shared steps lack them":            func(c *config) { c.Shared = []int{10} },
		"glow streams to 1000 only at a pace":      func(c *config) { c.Watch = c.Watch[1:] },
		"go-echo without http":                     func(c *config) { c.Transports = c.Transports[1:] },
		"too many clients":                         func(c *config) { c.AnchorClients = maxClients + 1 },
	} {
		c := benchConfig()
		change(&c)
		if err := c.checkAnchors(); err == nil {
			t.Errorf("%s: checkAnchors accepted it", name)
		}
	}
	// Without anchors, nothing to check and no anchor steps.
	c := benchConfig()
	c.Anchors = nil
	c.AnchorClients = 7
	if err := c.checkAnchors(); err != nil || len(c.anchorSteps(transportSIO)) != 0 {
		t.Fatalf("no anchors: %v, %v", err, c.anchorSteps(transportSIO))
	}
}

func TestParseAnchorFlags(t *testing.T) {
	// The flags of make bench.
	cfg, err := parseFlags(strings.Fields("-clients 1,10,100,500 -shared-clients 1,10,100 -watchers 1,10,100,500,1000,500@20ms "+
		"-transports http,socketio,socketio-shared,chat-fanout -duration 7s -anchors node-echo,node-contract,go-echo "+
		"-anchor-clients 100 -anchor-watchers 1000 -idle-sockets 5000 -cycles 16000 -memory-calls 1000000"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Anchors, []string{anchorNodeEcho, anchorNodeContract, anchorGoEcho}) || cfg.IdleSockets != 5000 ||
		cfg.Cycles != 16000 || cfg.MemoryCalls != 1000000 || cfg.NodeDir != "bench/node" || cfg.steps() != 22 || !cfg.needsNode() {
		t.Fatalf("parsed %+v (%d steps)", cfg, cfg.steps())
	}
	for _, bad := range []string{
		"-anchors node-echo,bogus",
		"-anchors go-echo,go-echo -transports http",
		"-anchors go-echo -transports socketio",
		"-anchors go-echo -transports http -clients 10",
		"-anchors go-echo -transports http -clients 100 -inprocess",
		"-idle-sockets 5000 -inprocess",
		"-idle-sockets 10001",
		"-idle-sockets 10 -url http://127.0.0.1:1 -token t",
		"-cycles 100",
		"-memory-calls 100",
		"-idle-sockets 10 -cycles -1",
		"-idle-sockets 10 -memory-calls 100000000",
	} {
		if _, err := parseFlags(strings.Fields(bad), io.Discard); err == nil {
			t.Errorf("parseFlags(%s) accepted it", bad)
		}
	}
}

func TestAnchorTokens(t *testing.T) {
	for token, want := range map[string]string{
		"0190a0c4-7ad2-7000-8000-000000000001.9f3c": "0190a0c4-7ad2-7000-8000-000000000001",
		"p.x.y": "p",
		"plain": "plain",
		".x":    ".x",
	} {
		if got := anchorProfile(token); got != want {
			t.Errorf("anchorProfile(%q) = %q, want %q", token, got, want)
		}
	}
	info := anchorInfo("http://127.0.0.1:1", 3, 2)
	profiles := map[string]bool{}
	for _, tok := range append(append([]string{info.Shared}, info.Tokens...), info.Watchers...) {
		p := anchorProfile(tok)
		if _, err := uuid.Parse(p); err != nil || profiles[p] {
			t.Fatalf("token %q: profile %q is not a new profile id", tok, p)
		}
		profiles[p] = true
	}
	if len(info.Tokens) != 3 || len(info.Watchers) != 2 || info.Admin != info.Shared {
		t.Fatalf("anchorInfo = %+v", info)
	}
	// Two tokens of one profile differ, and name the same profile.
	a, b := anchorToken("p1"), anchorToken("p1")
	if a == b || anchorProfile(a) != "p1" || anchorProfile(b) != "p1" {
		t.Fatalf("anchorToken: %q %q", a, b)
	}
	// The loadgen's two shapes: each client its own profile, or all one.
	tgt := &target{serverInfo: info}
	own, _ := clientTokens(tgt, 3, false)
	shared, isShared := clientTokens(tgt, 3, true)
	if !isShared || anchorProfile(own[0]) == anchorProfile(own[1]) {
		t.Fatalf("own %v, shared %v", own, shared)
	}
	for _, tok := range shared {
		if anchorProfile(tok) != anchorProfile(info.Shared) {
			t.Fatalf("shared tokens %v name different profiles", shared)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tglow\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nRssAnon:\t  100 kB\n"
	if n, err := parseVmRSS(status); err != nil || n != 123456*1024 {
		t.Fatalf("parseVmRSS = %d, %v", n, err)
	}
	for _, bad := range []string{"", "Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n", "VmRSS:\n"} {
		if n, err := parseVmRSS(bad); err == nil {
			t.Errorf("parseVmRSS(%q) = %d", bad, n)
		}
	}
	if n, err := procVmRSS(os.Getpid()); err != nil || n <= 0 {
		t.Fatalf("procVmRSS(self) = %d, %v", n, err)
	}
	r := idleResult{Sockets: 4, Before: 1000, After: 9000}
	if r.perSocket() != 2000 {
		t.Fatalf("perSocket = %v", r.perSocket())
	}
}

func TestPublishedFrom(t *testing.T) {
	p := publishedFrom(3, []int64{10, 20, 30, 40})
	if !slices.Equal(p.at, []int64{0, 10_000, 20_000, 30_000}) || !slices.Equal(p.deltas, []bool{false, true, true, true}) {
		t.Fatalf("publishedFrom = %v %v", p.at, p.deltas)
	}
	p = publishedFrom(3, []int64{10})
	if !slices.Equal(p.at, []int64{0, 10_000, 0, 0}) || p.deltas[2] {
		t.Fatalf("publishedFrom with missing times = %v %v", p.at, p.deltas)
	}
	if n := p.deltasIn(0, 10_001); n != 1 {
		t.Fatalf("deltasIn = %d", n)
	}
}

func TestEchoHandler(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echoHandler))
	defer srv.Close()
	post := func(auth, body string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/profile/context", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	if status, ct, body := post("Bearer x.y", `{"a":[1,2]}`); status != 200 || ct != "application/json" || body != `{"a":[1,2]}` {
		t.Fatalf("echo: %d %s %s", status, ct, body)
	}
	for _, auth := range []string{"", "Bearer ", "Basic x"} {
		if status, _, _ := post(auth, `{}`); status != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d", auth, status)
		}
	}
	if res, err := http.Get(srv.URL + "/x"); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", res, err)
	}
}

func TestEchoArgs(t *testing.T) {
	if !sameJSON(echoArgs([]byte(`{"a": 1}`)), []byte(`[{"a":1}]`)) || sameJSON([]byte(`[{}]`), []byte(`[{"a":1}]`)) || sameJSON([]byte(`x`), []byte(`x`)) {
		t.Fatal("echoArgs / sameJSON")
	}
}

// synthetic is a run with every compared shape, on glow and on the anchors.
func synthetic() measured {
	row := func(anchor, transport string, clients int, calls int64, p99 time.Duration) result {
		return result{stepConfig: stepConfig{Transport: transport, Clients: clients, InFlight: 1, Anchor: anchor},
			Window: time.Second, OK: calls, P99: p99, cpuUsage: cpuUsage{CPUKnown: true, ServerCPU: time.Duration(calls) * 100 * time.Microsecond}}
	}
	chat := func(anchor string, watchers int, pace time.Duration, frames int64, p99 time.Duration) chatResult {
		return chatResult{chatStepConfig: chatStepConfig{watchSpec: watchSpec{Watchers: watchers, Pace: pace}, Anchor: anchor},
			Window: time.Second, Delivered: frames, P99: p99}
	}
	return measured{
		Results: []result{
			row("", transportHTTP, 100, 17_486, 25*time.Millisecond),
			row(anchorGoEcho, transportHTTP, 100, 30_000, 10*time.Millisecond),
			row("", transportSIO, 10, 9_999, time.Millisecond), // not a compared shape
			row("", transportSIO, 100, 3_000, 10*time.Millisecond),
			row(anchorNodeEcho, transportSIO, 100, 10_000, 5*time.Millisecond),
			row(anchorNodeContract, transportSIO, 100, 2_000, 20*time.Millisecond),
			row("", transportSIOShare, 100, 161, time.Second),
			row(anchorNodeContract, transportSIOShare, 100, 1_000, 100*time.Millisecond),
		},
		Chats: []chatResult{
			chat("", 1000, 0, 50_000, 600*time.Millisecond),
			chat("", 1000, 20*time.Millisecond, 20_000, 200*time.Millisecond), // paced: not compared
			chat(anchorNodeEcho, 1000, 0, 100_000, 50*time.Millisecond),
		},
		Idle:  []idleResult{{Server: "glow", Sockets: 5000, Before: 60e6, After: 320e6}},
		Churn: []churnResult{{Cycles: 16000, Warm: 100e6, AfterCycles: 112e6, Calls: 1_000_000, AfterCalls: 410e6, AfterCallsSettled: 300e6}},
	}
}

func TestCompare(t *testing.T) {
	cfg := benchConfig()
	comps := compare(synthetic(), cfg)
	type row struct {
		anchor, unit string
		ratio        string
		met          bool
	}
	var got []row
	for _, c := range comps {
		got = append(got, row{c.Anchor, c.Unit, ratioText(c.Glow, c.Base), c.met()})
	}
	want := []row{
		{anchorNodeContract, "calls/s", "1.50×", true}, // and p99 10 ms ≤ 20 ms
		{anchorNodeEcho, "calls/s", "0.30×", false},
		{anchorNodeContract, "calls/s", "0.16×", false},
		{anchorGoEcho, "calls/s", "0.58×", true},
		{anchorNodeEcho, "frames/s", "0.50×", false},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("compare = %+v\nwant %+v", got, want)
	}
	if comps[0].targetText() != "≥ 1.0×, p99 ≤ the anchor's" || comps[1].targetText() != "≥ 0.5×" {
		t.Fatalf("targets %q %q", comps[0].targetText(), comps[1].targetText())
	}
	// The p99 target: a faster glow with a worse p99 misses it.
	c := comps[0]
	c.GlowP99 = c.BaseP99 + time.Millisecond
	if c.met() {
		t.Fatal("met with a worse p99")
	}
	if ratioText(1, 0) != "–" || (comparison{Glow: 5, Target: 0.5}).met() {
		t.Fatal("a missing anchor rate must not compare")
	}
	// Nothing to compare without the anchors' rows.
	m := synthetic()
	m.Results, m.Chats = glowResults(m.Results), glowChats(m.Chats)
	if comps := compare(m, cfg); len(comps) != 0 {
		t.Fatalf("compare without anchors = %+v", comps)
	}
}

func TestRenderComparison(t *testing.T) {
	cfg := benchConfig()
	cfg.IdleSockets = 5000
	md := string(renderMarkdown(report{Config: cfg, Command: "make bench", Date: time.Unix(1_800_000_000, 0), Mode: "a process",
		Machine: machine{Cores: 2}, measured: synthetic()}))
	for _, want := range []string{
		"## glow compared with the anchors",
		"| socket.io: 100 sockets × 1 in flight, each its own profile | (b) Node socket.io, glow's wire contract | 3,000 calls/s | 2,000 calls/s | 1.50× | ≥ 1.0×, p99 ≤ the anchor's | yes | 10.00 ms | 20.00 ms | 100 µs/call | 100 µs/call |",
		"| socket.io: 100 sockets × 1 in flight, all one profile | (b) Node socket.io, glow's wire contract | 161 calls/s | 1,000 calls/s | 0.16× | ≥ 1.0× | no | 1000 ms | 100 ms |",
		"| HTTP: 100 keep-alive connections, 1 call in flight each | (c) Go net/http JSON echo | 17,486 calls/s | 30,000 calls/s | 0.58× | ≥ 0.5× | yes |",
		"| fan-out to 1,000 sockets: glow's chat streamed to its watchers; the anchor's broadcast | (a) Node socket.io, bare echo | 50,000 frames/s | 100,000 frames/s | 0.50× | ≥ 1.0× | no | 600 ms | 50.00 ms | – | – |",
		"## Anchors",
		"| (a) Node socket.io, bare echo | 100 | 1 | 10,000 |",
		"#### The chat fan-out's counterpart: the broadcast of (a) Node socket.io, bare echo",
		"## Memory: idle sockets",
		"| glow | 5,000 | 60 MB | 320 MB | 52.0 kB |",
		"| RSS per idle socket, 5,000 open | 52.0 kB | ≤ 35 kB with 5,000 open | no |",
		"| RSS above the warm baseline after 16,000 connect/close cycles | 12.0 MB | ≤ 20 MB | yes |",
		"| RSS after 1,000,000 socket.io calls | 410 MB | < 400 MB | no |",
		"| 16,000 | 100 MB | 112 MB | 12.0 MB |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// glow's own tables hold glow's rows only.
	ops := md[strings.Index(md, "## Results"):strings.Index(md, "## Chat fan-out")]
	if strings.Contains(ops, "10,000") || strings.Contains(ops, "30,000") {
		t.Errorf("an anchor's row is in glow's tables:\n%s", ops)
	}
	if strings.Count(md, "| 1000 | 0 |") != 2 { // glow's chat row, and the broadcast's
		t.Errorf("chat rows: %d", strings.Count(md, "| 1000 | 0 |"))
	}
}

// nodeForTest finds node and the anchors' npm packages, or skips the test (fails it with
// GLOW_TEST_REQUIRE_NODE=1), as the Node tests in test/ do.
func nodeForTest(t *testing.T) nodeSetup {
	t.Helper()
	s, err := findNode(filepath.Join("..", "..", "bench", "node"))
	if err != nil {
		if os.Getenv("GLOW_TEST_REQUIRE_NODE") == "1" {
			t.Fatalf("GLOW_TEST_REQUIRE_NODE=1 but %v", err)
		}
		t.Skipf("skipping the Node anchors: %v (GLOW_TEST_REQUIRE_NODE=1 makes this a failure)", err)
	}
	return s
}

// TestAnchorsSmoke starts each anchor as make bench does, checks it with the preflight and
// measures it for a second.
func TestAnchorsSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the anchors")
	}
	ctx := context.Background()
	cfg := benchConfig()
	const path = "/profile/context"
	start := func(t *testing.T, s anchorStep, opts anchorOptions, clients, watchers int) *target {
		t.Helper()
		tgt, err := startAnchor(s, opts, clients, watchers)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := tgt.stop(); err != nil {
				t.Errorf("stop %s: %v", s.Anchor, err)
			}
		})
		if err := anchorPreflight(ctx, tgt, s, cfg, path); err != nil {
			t.Fatalf("preflight: %v", err)
		}
		return tgt
	}
	measure := func(t *testing.T, tgt *target, s anchorStep) result {
		t.Helper()
		res, err := runStep(ctx, tgt, stepConfig{Transport: s.Transport, Clients: s.Clients, InFlight: 1,
			Warmup: 200 * time.Millisecond, Duration: time.Second, Timeout: 10 * time.Second, Op: cfg.Op, Path: path,
			Body: []byte(cfg.Body), Anchor: s.Anchor, Echo: s.Mode == nodeModeEcho})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.0f calls/s, p99 %s, server CPU/call %s, pushes %d", s.Anchor, res.rate(), latency(res.P99), callCPU(res), res.Pushes)
		if res.OK == 0 || res.Errors != 0 || !res.CPUKnown || res.ServerRSS <= 0 {
			t.Fatalf("%d calls, %d errors (%v), CPU known %v, RSS %d", res.OK, res.Errors, res.ErrKinds, res.CPUKnown, res.ServerRSS)
		}
		return res
	}

	t.Run(anchorGoEcho, func(t *testing.T) {
		s := anchorStep{Anchor: anchorGoEcho, Transport: transportHTTP, Clients: 4}
		measure(t, start(t, s, anchorOptions{}, 4, 0), s)
	})
	t.Run(anchorNodeEcho, func(t *testing.T) {
		s := anchorStep{Anchor: anchorNodeEcho, Mode: nodeModeEcho, Transport: transportSIO, Clients: 4}
		if res := measure(t, start(t, s, anchorOptions{Node: nodeForTest(t)}, 4, 0), s); res.Pushes != 0 {
			t.Fatalf("the echo pushed %d events", res.Pushes)
		}
	})
	t.Run(anchorNodeContract, func(t *testing.T) {
		opts := anchorOptions{Node: nodeForTest(t), Body: []byte(`{"profile":{"id":"glow's","name":"loadgen-0001","created_at":"2026-12-01T00:00:00Z"},` +
			`"role":{"name":"learner","level":2},"permissions":[],"departments":[],"session_id":"glow's"}`)}
		s := anchorStep{Anchor: anchorNodeContract, Mode: nodeModeContract, Transport: transportSIO, Clients: 4}
		tgt := start(t, s, opts, 4, 0)
		// Pushes and calls are counted at the window's ends, which a call in progress straddles.
		if res := measure(t, tgt, s); res.Pushes < 2*res.OK*9/10 {
			t.Fatalf("%d pushes for %d calls: each call's .started and .completed go to its socket", res.Pushes, res.OK)
		}
		s.Transport = transportSIOShare
		if res := measure(t, tgt, s); res.Pushes < 4*2*res.OK*9/10 {
			t.Fatalf("%d pushes for %d calls on one profile's 4 sockets", res.Pushes, res.OK)
		}
		contractChecks(t, tgt)
		idle, err := measureIdle(ctx, tgt, anchorNodeContract, 4, 100*time.Millisecond, 10*time.Second)
		if err != nil || idle.Before <= 0 || idle.After <= 0 || idle.Connect <= 0 {
			t.Fatalf("measureIdle = %+v, %v", idle, err)
		}
	})
	t.Run("node-echo-broadcast", func(t *testing.T) {
		s := anchorStep{Anchor: anchorNodeEcho, Mode: nodeModeBroadcast, Transport: transportChat, Clients: 3}
		tgt := start(t, s, anchorOptions{Node: nodeForTest(t)}, 1, 3)
		res, err := runBroadcastStep(ctx, tgt, chatStepConfig{watchSpec: watchSpec{Watchers: 3},
			Warmup: 200 * time.Millisecond, Duration: time.Second, Timeout: 10 * time.Second, Anchor: s.Anchor})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("broadcast: %.0f frames/s, p99 %s, server CPU/frame %s", res.perSecond(res.Delivered), latency(res.P99), frameCPU(res))
		if res.Errors != 0 || res.Replies == 0 || res.Lost != 0 || res.Disorder != 0 || !res.Drained || !res.LatKnown || !res.CPUKnown {
			t.Fatalf("%+v", res)
		}
		if res.AllDeltas != broadcastFrames*res.AllReplies || res.Delivered < 2*res.Published || res.Delivered > 4*res.Published {
			t.Fatalf("%d frames for %d broadcasts; %d delivered of %d published to 3 watchers",
				res.AllDeltas, res.AllReplies, res.Delivered, res.Published)
		}
		if res.P50 <= 0 || res.P50 > res.P99 || res.Samples != int(res.Delivered) {
			t.Fatalf("latency p50 %s p99 %s, %d samples for %d delivered", res.P50, res.P99, res.Samples, res.Delivered)
		}
	})
	t.Run("glow-idle", func(t *testing.T) {
		tgt, err := startChild(t.TempDir(), serverConfig{Clients: 4, Role: "learner", MaxCalls: 16, LogLevel: "error"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := tgt.stop(); err != nil {
				t.Error(err)
			}
		}()
		idle, err := measureIdle(ctx, tgt, "glow", 4, 100*time.Millisecond, 10*time.Second)
		if err != nil || idle.Before <= 0 || idle.After <= 0 || idle.Sockets != 4 {
			t.Fatalf("measureIdle = %+v, %v", idle, err)
		}
	})
}

// contractChecks checks node-contract's handshake and rooms: no token is refused as glow
// refuses it; two tokens of one profile share its room; another profile hears nothing.
func contractChecks(t *testing.T, tgt *target) {
	t.Helper()
	ctx := context.Background()
	wsURL, err := socketURL(tgt.URL)
	if err != nil {
		t.Fatal(err)
	}
	var ce *connectError
	if _, err := dialSIO(ctx, wsURL, "", 5*time.Second); !errors.As(err, &ce) || ce.Message != "unauthorized" {
		t.Fatalf("no token: %v, want connect_error unauthorized", err)
	}
	profile := anchorProfile(tgt.Tokens[0])
	var mu sync.Mutex
	var frames [][]byte // what the caller's socket is pushed
	var conns []*sioConn
	for i, tok := range []string{anchorToken(profile), anchorToken(profile), tgt.Tokens[1]} {
		var push func([]byte, time.Time)
		if i == 0 {
			push = func(args []byte, _ time.Time) {
				mu.Lock()
				frames = append(frames, append([]byte(nil), args...))
				mu.Unlock()
			}
		}
		c, err := dialSIOPush(ctx, wsURL, tok, 5*time.Second, push)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	args, err := conns[0].Call(ctx, "persona.search", []byte(`{"page_size":5}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	status, body, err := decodeAck(args)
	var answer struct {
		Profile struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"profile"`
		SessionID string `json:"session_id"`
	}
	if err != nil || status != 200 || json.Unmarshal(body, &answer) != nil || answer.Profile.ID != profile ||
		answer.Profile.Name != "loadgen-0001" || answer.SessionID == "glow's" || answer.SessionID == "" {
		t.Fatalf("ack %s (%v): want status 200 and glow's body with the socket's profile and session", args, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for (conns[0].pushes.Load() < 2 || conns[1].pushes.Load() < 2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if a, b, other := conns[0].pushes.Load(), conns[1].pushes.Load(), conns[2].pushes.Load(); a != 2 || b != 2 || other != 0 {
		t.Fatalf("pushes: caller %d, same profile %d, other profile %d; want 2, 2, 0", a, b, other)
	}
	// The payloads glow gives its lifecycle events.
	mu.Lock()
	defer mu.Unlock()
	var started, completed struct {
		Topic     string          `json:"topic"`
		Seq       int64           `json:"seq"`
		CallID    string          `json:"call_id"`
		Operation string          `json:"operation"`
		Transport string          `json:"transport"`
		Request   json.RawMessage `json:"request"`
		Status    int             `json:"status"`
		Body      json.RawMessage `json:"body"`
	}
	for i, into := range []any{&started, &completed} {
		var ev [2]json.RawMessage
		if err := json.Unmarshal(frames[i], &ev); err != nil || json.Unmarshal(ev[1], into) != nil {
			t.Fatalf("push %s: %v", frames[i], err)
		}
	}
	topic := "profile/" + profile
	if !bytes.HasPrefix(frames[0], []byte(`["persona.search.started",{"topic":"`+topic+`","seq":`)) ||
		!bytes.HasPrefix(frames[1], []byte(`["persona.search.completed",{"topic":"`+topic+`","seq":`)) ||
		started.Seq+1 != completed.Seq || started.CallID == "" || started.CallID != completed.CallID ||
		started.Operation != "persona.search" || started.Transport != "socketio" || string(started.Request) != `{"page_size":5}` ||
		completed.Status != 200 || !sameJSON(completed.Body, body) {
		t.Fatalf("lifecycle events:\n%s\n%s", frames[0], frames[1])
	}
}
