package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/glowhq/glow/store"
)

// Anchors are servers glow is compared with, measured by the same steps in the same run:
// the Node socket.io servers of bench/node/anchor.mjs and a plain Go net/http echo. Each is
// a separate process the load generator starts on a free port of 127.0.0.1 and stops, so
// that its CPU time and memory are read from /proc as glow's are.

// The anchors, as -anchors names them.
const (
	anchorNodeEcho     = "node-echo"     // (a) socket.io 4.8, every event acked with its argument
	anchorNodeContract = "node-contract" // (b) socket.io 4.8, glow's wire contract without storage
	anchorGoEcho       = "go-echo"       // (c) Go net/http, every POST answered with its body
)

// anchorTitles are the anchors' names in the report.
var anchorTitles = map[string]string{
	anchorNodeEcho:     "(a) Node socket.io, bare echo",
	anchorNodeContract: "(b) Node socket.io, glow's wire contract",
	anchorGoEcho:       "(c) Go net/http JSON echo",
}

// The modes of bench/node/anchor.mjs.
const (
	nodeModeEcho      = "echo"
	nodeModeContract  = "contract"
	nodeModeBroadcast = "broadcast"
)

// echoCommand is the hidden first argument that makes the load generator run the Go echo
// anchor instead (this binary re-executed, like the glow server).
const echoCommand = "echo-child"

// broadcastFrames is how many frames one message makes the broadcast anchor send: about
// the deltas of one of glow's chat replies (29 to 31 per reply in the measured runs).
const broadcastFrames = 30

// idleSettle is how long the memory measurement lets a server settle before reading its
// memory, and the sockets idle before reading it again.
const idleSettle = 3 * time.Second

// anchorStep is one step against an anchor.
type anchorStep struct {
	Anchor    string
	Mode      string // the anchor.mjs mode; "" for the Go echo
	Transport string
	Clients   int // clients, or watching sockets for the chat-fanout transport
}

// anchorSteps lists the anchor steps that follow glow's steps of a transport: each anchor
// runs the shapes the report compares, in the order -anchors names them.
func (c config) anchorSteps(transport string) []anchorStep {
	var out []anchorStep
	for _, a := range c.Anchors {
		s := anchorStep{Anchor: a, Transport: transport, Clients: c.AnchorClients}
		switch {
		case a == anchorGoEcho && transport == transportHTTP:
		case a == anchorNodeContract && (transport == transportSIO || transport == transportSIOShare):
			s.Mode = nodeModeContract
		case a == anchorNodeEcho && transport == transportSIO:
			s.Mode = nodeModeEcho
		case a == anchorNodeEcho && transport == transportChat:
			s.Mode, s.Clients = nodeModeBroadcast, c.AnchorWatchers
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// anchorToken is a token the node-contract anchor reads: the profile id, a dot, and a
// random part that makes each token unique.
func anchorToken(profile string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return profile + "." + hex.EncodeToString(b)
}

// anchorProfile is the profile a token names, by the node-contract anchor's rule (see
// bench/node/anchor.mjs): what comes before the token's first dot, or the whole token.
func anchorProfile(token string) string {
	if i := strings.IndexByte(token, '.'); i > 0 {
		return token[:i]
	}
	return token
}

// anchorInfo gives an anchor's clients their tokens as glow's are given out: each of
// clients its own profile, one more profile shared by all clients in fan-out steps, and a
// profile per watching socket. The admin token is the shared profile's.
func anchorInfo(url string, clients, watchers int) serverInfo {
	info := serverInfo{URL: url, Tokens: make([]string, clients), Watchers: make([]string, watchers)}
	for i := range info.Tokens {
		info.Tokens[i] = anchorToken(store.NewID().String())
	}
	for i := range info.Watchers {
		info.Watchers[i] = anchorToken(store.NewID().String())
	}
	info.Shared = anchorToken(store.NewID().String())
	info.Admin = info.Shared
	return info
}

// nodeSetup is the Node runtime the Node anchors run on.
type nodeSetup struct {
	node    string // the executable
	script  string // anchor.mjs
	version string // e.g. "Node v20.20.2, socket.io 4.8.4"
}

// findNode finds node on PATH and the anchors' npm packages in dir.
func findNode(dir string) (nodeSetup, error) {
	var s nodeSetup
	node, err := exec.LookPath("node")
	if err != nil {
		return s, errors.New("the Node anchors need node on PATH")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return s, fmt.Errorf("node --version: %v", err)
	}
	version := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if major < 18 {
		return s, fmt.Errorf("node %s is too old: anchor.mjs needs 18 or later", version)
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "socket.io", "package.json"))
	if err != nil {
		return s, fmt.Errorf("%s/node_modules has no socket.io: run `npm ci --prefix %s`", dir, dir)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return s, fmt.Errorf("%s/node_modules/socket.io/package.json: %v", dir, err)
	}
	s.node, s.script = node, filepath.Join(dir, "anchor.mjs")
	s.version = fmt.Sprintf("Node %s, socket.io %s", version, pkg.Version)
	return s, nil
}

// anchorOptions is what starting an anchor needs besides the step.
type anchorOptions struct {
	Node nodeSetup
	Body []byte // the node-contract anchor's answer: glow's answer to the same call
}

// startAnchor starts the anchor of a step with tokens for clients clients and watchers
// watching sockets.
func startAnchor(s anchorStep, opts anchorOptions, clients, watchers int) (*target, error) {
	var cmd *exec.Cmd
	mode := "Go net/http (this binary re-executed)"
	switch s.Mode {
	case "":
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self, echoCommand)
	case nodeModeContract:
		if len(opts.Body) == 0 {
			return nil, errors.New("the node-contract anchor needs glow's answer to answer with")
		}
		cmd = exec.Command(opts.Node.node, opts.Node.script, s.Mode, string(opts.Body))
		mode = opts.Node.version
	default:
		cmd = exec.Command(opts.Node.node, opts.Node.script, s.Mode)
		mode = opts.Node.version
	}
	if s.Mode != "" {
		passFileLimit()
	}
	p, err := startProcess(cmd, "the "+s.Anchor+" anchor", 30*time.Second)
	if err != nil {
		return nil, err
	}
	var out struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(p.line, &out); err != nil || out.URL == "" {
		_ = p.stop()
		return nil, fmt.Errorf("the %s anchor did not start (it printed %q)", s.Anchor, strings.TrimSpace(string(p.line)))
	}
	return &target{
		serverInfo: anchorInfo(out.URL, clients, watchers),
		Mode:       mode,
		serverCPU:  func() (time.Duration, error) { return procCPU(p.pid) },
		serverRSS:  func() (int64, error) { return procRSS(p.pid) },
		pid:        p.pid,
		stop:       p.stop,
	}, nil
}

// passFileLimit makes the processes this one starts inherit its limit on open files. Go
// raises its own soft limit to the hard one but starts other programs with the original
// soft limit, often 1024: too few for a Node anchor with thousands of sockets. Setting the
// limit explicitly keeps the raised one for them.
var passFileLimit = sync.OnceFunc(func() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
})

// echoMain runs the Go echo anchor for a parent load generator: it prints {"url": …} as
// one JSON line on stdout and serves until its stdin closes or it gets SIGTERM.
func echoMain() int {
	signal.Ignore(os.Interrupt)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen echo: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(echoHandler), ReadHeaderTimeout: 10 * time.Second}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{"url": "http://" + l.Addr().String()}); err != nil {
		return 1
	}
	go func() {
		<-ctx.Done()
		shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "loadgen echo: %v\n", err)
		return 1
	}
	return 0
}

// maxEchoBody is the largest body the Go echo answers (glow's default limit).
const maxEchoBody = 1 << 20

// echoHandler answers a POST carrying a bearer token with its own body, as JSON.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || token == "" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// anchorPreflight makes one call to a started anchor and checks its answer: the Go echo
// and the Node echo answer with the body; node-contract acks {status: 200} and pushes the
// call's .started and .completed to the token's profile topic.
func anchorPreflight(ctx context.Context, tgt *target, s anchorStep, cfg config, path string) error {
	token := tgt.Tokens[0]
	if s.Mode == "" {
		api := apiClient{base: tgt.URL, http: &http.Client{Timeout: cfg.Timeout}}
		var echoed json.RawMessage
		if err := api.call(ctx, token, path, json.RawMessage(cfg.Body), &echoed); err != nil {
			return err
		}
		if !sameJSON(echoed, []byte(cfg.Body)) {
			return fmt.Errorf("the Go echo answered %s to %s", truncate(echoed, 200), cfg.Body)
		}
		return nil
	}
	wsURL, err := socketURL(tgt.URL)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var topics []string
	c, err := dialSIOPush(ctx, wsURL, token, cfg.Timeout, func(args []byte, _ time.Time) {
		if _, topic, _, ok := parseFrame(args); ok {
			mu.Lock()
			topics = append(topics, string(topic))
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if s.Mode == nodeModeBroadcast {
		// One frame, on a topic of its own, reaches the broadcasting socket.
		args, err := c.Call(ctx, "broadcast", []byte(`{"topic":"preflight","frames":1,"run_id":"preflight"}`), cfg.Timeout)
		if err != nil {
			return err
		}
		if status, err := ackStatus(args); err != nil || status != http.StatusOK {
			return fmt.Errorf("the broadcast anchor acked %s", truncate(args, 200))
		}
		deadline := time.Now().Add(time.Second)
		for c.pushes.Load() < 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(topics) != 1 || topics[0] != "preflight" {
			return fmt.Errorf("the broadcast anchor sent frames of %q, want one of \"preflight\"", topics)
		}
		return nil
	}
	args, err := c.Call(ctx, cfg.Op, []byte(cfg.Body), cfg.Timeout)
	if err != nil {
		return err
	}
	if s.Mode == nodeModeEcho {
		if !sameJSON(args, echoArgs([]byte(cfg.Body))) {
			return fmt.Errorf("the Node echo acked %s to %s", truncate(args, 200), cfg.Body)
		}
		return nil
	}
	status, body, err := decodeAck(args)
	if err != nil {
		return err
	}
	if status != http.StatusOK || len(body) == 0 {
		return fmt.Errorf("node-contract acked %d %s", status, truncate(body, 200))
	}
	deadline := time.Now().Add(time.Second)
	for c.pushes.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "profile/" + anchorProfile(token)
	if len(topics) != 2 || topics[0] != want || topics[1] != want {
		return fmt.Errorf("node-contract pushed the call's events to %q, want .started and .completed on %q", topics, want)
	}
	return nil
}

// echoArgs is what the Node echo acks a call with body: its arguments, [body].
func echoArgs(body []byte) []byte {
	return append(append([]byte{'['}, body...), ']')
}

// sameJSON says whether a and b are the same JSON value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}

// runBroadcastStep measures the broadcast anchor as runChatStep measures glow's chat: one
// owner socket sends messages back to back, each making the server send broadcastFrames
// frames to every connected socket, and N watching sockets count them. The publish times
// come from the server's record of them ("published").
func runBroadcastStep(ctx context.Context, tgt *target, cfg chatStepConfig) (chatResult, error) {
	res := chatResult{chatStepConfig: cfg}
	topic := "attempt/" + store.NewID().String()
	message, _ := json.Marshal(map[string]any{"topic": topic, "frames": broadcastFrames, "run_id": store.NewID().String()})
	win := &window{}
	ref := newWatcher(topic, win, 0)
	wsURL, err := socketURL(tgt.URL)
	if err != nil {
		return res, err
	}
	sender, err := dialSIOPush(ctx, wsURL, tgt.Admin, cfg.Timeout, ref.push)
	if err != nil {
		return res, fmt.Errorf("connect the broadcasting socket: %w", err)
	}
	defer sender.Close()

	connectStart := time.Now()
	watchers, conns, _, err := dialWatchers(ctx, tgt, cfg, topic, win)
	if err != nil {
		return res, err
	}
	disconnect := sync.OnceFunc(func() { closeAll(conns) })
	defer disconnect()
	res.Connect = time.Since(connectStart)

	var lastEnd, sent atomic.Int64
	rec, err := fanoutWindow(ctx, tgt, cfg, win, &res, "the broadcasting socket", func(stop <-chan struct{}, rec *recorder) error {
		return sendBroadcasts(ctx, sender, message, stop, rec, &lastEnd, &sent, cfg.Timeout)
	})
	if err != nil {
		return res, err
	}
	published, last, err := fetchPublished(ctx, sender, topic, cfg.Timeout)
	if err != nil {
		return res, err
	}
	drainWatchers(ctx, &res, watchers, last, lastEnd.Load())
	disconnect()
	sender.Close()
	res.AllReplies = sent.Load()
	res.account(rec, ref, watchers, published, last, win)
	return res, nil
}

// sendBroadcasts sends message back to back until stop is closed: each after the server
// acked the previous one, i.e. after it sent the previous message's frames.
func sendBroadcasts(ctx context.Context, c *sioConn, message []byte, stop <-chan struct{},
	rec *recorder, lastEnd, sent *atomic.Int64, timeout time.Duration) error {
	for i := 1; ; i++ {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		t0 := time.Now()
		args, err := c.Call(ctx, "broadcast", message, timeout)
		if errors.Is(err, errClosed) || ctx.Err() != nil {
			return fmt.Errorf("broadcast %d: %w", i, err)
		}
		if err == nil {
			var status int
			if status, err = ackStatus(args); err == nil && status != http.StatusOK {
				err = statusError(status)
			}
		}
		end := time.Now()
		rec.done(t0, end, err)
		lastEnd.Store(end.UnixNano())
		if err == nil {
			sent.Add(1)
		}
	}
}

// maxPublished bounds the frames of one broadcast step the load generator accounts for.
const maxPublished = 1 << 26

// fetchPublished asks the broadcast anchor when it sent each frame of topic.
func fetchPublished(ctx context.Context, c *sioConn, topic string, timeout time.Duration) (*publishTimes, int64, error) {
	body, _ := json.Marshal(map[string]string{"topic": topic})
	args, err := c.Call(ctx, "published", body, timeout)
	if err != nil {
		return nil, 0, fmt.Errorf("published: %w", err)
	}
	status, b, err := decodeAck(args)
	if err != nil {
		return nil, 0, err
	}
	if status != http.StatusOK {
		return nil, 0, fmt.Errorf("published answered %d: %s", status, truncate(b, 200))
	}
	var p struct {
		Last  int64   `json:"last_seq"`
		Times []int64 `json:"times"` // Unix µs; Times[i] is frame i + 1's
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Last < 0 || p.Last > maxPublished {
		return nil, 0, fmt.Errorf("published answered %s", truncate(b, 200))
	}
	return publishedFrom(p.Last, p.Times), p.Last, nil
}

// publishedFrom turns the broadcast anchor's publish times of frames 1… (Unix µs) into
// publish times by number, every frame a delta.
func publishedFrom(last int64, micros []int64) *publishTimes {
	p := &publishTimes{at: make([]int64, last+1), deltas: make([]bool, last+1)}
	for i, t := range micros {
		seq := int64(i) + 1
		if seq > last {
			break
		}
		p.at[seq] = t * int64(time.Microsecond)
		p.deltas[seq] = true
	}
	return p
}

// idleResult is the memory idle sockets cost a server: its resident memory (VmRSS) before
// they connect and after.
type idleResult struct {
	Server        string // "glow" or an anchor's name
	Version       string // the anchor's runtime; "" for glow
	Sockets       int
	Before, After int64 // bytes
	Connect       time.Duration
}

// perSocket is the memory one idle socket costs, in bytes.
func (r idleResult) perSocket() float64 { return float64(r.After-r.Before) / float64(r.Sockets) }

// measureIdle lets the server settle, reads its VmRSS, connects n sockets of the server's
// clients (each its own profile), lets them idle as long and reads VmRSS again.
func measureIdle(ctx context.Context, tgt *target, server string, n int, settleFor, timeout time.Duration) (idleResult, error) {
	res := idleResult{Server: server, Sockets: n}
	if tgt.pid <= 0 {
		return res, errors.New("the server's process is not known")
	}
	settle := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settleFor):
			return nil
		}
	}
	if err := settle(); err != nil {
		return res, err
	}
	var err error
	if res.Before, err = procVmRSS(tgt.pid); err != nil {
		return res, err
	}
	tokens, _ := clientTokens(tgt, n, false)
	start := time.Now()
	conns, err := dialAll(ctx, tgt.URL, tokens, timeout)
	if err != nil {
		return res, err
	}
	defer closeAll(conns)
	res.Connect = time.Since(start)
	if err := settle(); err != nil {
		return res, err
	}
	res.After, err = procVmRSS(tgt.pid)
	return res, err
}

// procVmRSS reads a process's resident memory from the VmRSS line of /proc/<pid>/status.
func procVmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(b))
}

// parseVmRSS reads "VmRSS:  1234 kB" of a /proc/<pid>/status, in bytes.
func parseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			break
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS in /proc status")
}
