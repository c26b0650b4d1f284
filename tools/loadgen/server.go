package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/store"
)

// childCommand is the hidden first argument that makes the load generator run the server
// instead: the parent re-executes its own binary with it, so the server is a separate
// process whose CPU time can be read from /proc without counting the load generator's.
const childCommand = "serve-child"

// serverInfo is what a started server tells the load generator.
type serverInfo struct {
	URL    string   `json:"url"`
	Admin  string   `json:"admin"`  // the bootstrap admin's token
	Tokens []string `json:"tokens"` // one token per virtual client, each of its own profile
	Shared string   `json:"shared"` // the token of one more profile, shared by all clients in fan-out steps
	// Watchers are the tokens of the chat fan-out's watching sockets, each of its own
	// profile with role admin (level 0, which may follow any attempt's topic).
	Watchers []string `json:"watchers"`
}

// target is the server under load.
type target struct {
	serverInfo
	Mode string // how the server runs, for the report

	// serverCPU returns the server's CPU time so far (user + system); nil when unknown.
	serverCPU func() (time.Duration, error)
	// serverRSS returns the server's resident memory in bytes; nil when unknown.
	serverRSS func() (int64, error)
	// inProcess means serverCPU also counts the load generator.
	inProcess bool
	pid       int // the server's process, when known
	stop      func() error

	// The server's database, when known: the chat fan-out reads the stored events' times.
	dataDir, databaseURL string
}

// serverConfig is how to start a server.
type serverConfig struct {
	Clients  int    // tokens to create: one per virtual client
	Role     string // role of the clients' profiles
	MaxCalls int    // socket.io calls one socket may run at once
	LogLevel string
	Profile  string // write a CPU profile of the server to this file

	Watchers   int           // tokens to create for the chat fan-out's watchers
	TokenDelay time.Duration // the server's LocalTokenDelay (0: the server's default)
}

// startServer assembles a glow server on a new SQLite database in dir, listens on a free
// port of 127.0.0.1 and creates the clients' profiles and tokens. The caller serves l.
func startServer(ctx context.Context, dir string, cfg serverConfig, logOut io.Writer) (*server.Server, net.Listener, serverInfo, error) {
	level, err := server.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, nil, serverInfo{}, err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	opts := server.Defaults() // as glow serve runs, but for:
	opts.DataDir, opts.LogLevel, opts.SocketMaxCalls = dir, cfg.LogLevel, cfg.MaxCalls
	opts.ShutdownTimeout = 5 * time.Second
	if cfg.TokenDelay > 0 {
		opts.LocalTokenDelay = cfg.TokenDelay
	}
	if err := opts.Validate(); err != nil {
		return nil, nil, serverInfo{}, err
	}
	srv, err := server.New(ctx, opts, log)
	if err != nil {
		return nil, nil, serverInfo{}, err
	}
	info := serverInfo{Admin: srv.AdminToken}
	if info.Tokens, info.Shared, err = provision(ctx, srv.Store, cfg.Clients, cfg.Role); err != nil {
		srv.Store.Close()
		return nil, nil, serverInfo{}, err
	}
	if info.Watchers, err = provisionWatchers(ctx, srv.Store, cfg.Watchers); err != nil {
		srv.Store.Close()
		return nil, nil, serverInfo{}, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Store.Close()
		return nil, nil, serverInfo{}, err
	}
	info.URL = "http://" + l.Addr().String()
	return srv, l, info, nil
}

// provision creates (or reuses) the profiles loadgen-0001… and loadgen-shared with a role
// and returns a new token for each.
func provision(ctx context.Context, st *store.Store, n int, role string) (tokens []string, shared string, err error) {
	names := make([]string, 0, n+1)
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("loadgen-%04d", i))
	}
	names = append(names, "loadgen-shared")
	out := make([]string, 0, len(names))
	err = st.Tx(ctx, func(q store.Q) error {
		for _, name := range names {
			issued, err := auth.Issue(ctx, q, name, role, "loadgen")
			if err != nil {
				return fmt.Errorf("profile %s: %w", name, err)
			}
			out = append(out, issued.Token)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("create the clients' tokens: %w", err)
	}
	return out[:n], out[n], nil
}

// provisionWatchers creates (or reuses) the profiles loadgen-watch-0001… with role admin
// and returns a new token for each.
func provisionWatchers(ctx context.Context, st *store.Store, n int) ([]string, error) {
	out := make([]string, 0, n)
	err := st.Tx(ctx, func(q store.Q) error {
		for i := 1; i <= n; i++ {
			name := fmt.Sprintf("loadgen-watch-%04d", i)
			issued, err := auth.Issue(ctx, q, name, "admin", "loadgen")
			if err != nil {
				return fmt.Errorf("profile %s: %w", name, err)
			}
			out = append(out, issued.Token)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create the watchers' tokens: %w", err)
	}
	return out, nil
}

// childMain runs the server for a parent load generator: it prints the serverInfo as one
// JSON line on stdout and serves until its stdin closes (the parent is done or gone) or it
// gets SIGTERM. Ctrl-C is left to the parent, which stops its clients first.
func childMain(args []string) int {
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	dir := fs.String("data-dir", "", "database directory")
	var cfg serverConfig
	fs.IntVar(&cfg.Clients, "clients", 1, "tokens to create")
	fs.StringVar(&cfg.Role, "role", "learner", "role of the clients' profiles")
	fs.IntVar(&cfg.MaxCalls, "max-calls", 16, "socket.io calls per socket")
	fs.StringVar(&cfg.LogLevel, "log-level", "warn", "server log level")
	fs.StringVar(&cfg.Profile, "cpuprofile", "", "CPU profile file")
	fs.IntVar(&cfg.Watchers, "watchers", 0, "watcher tokens to create")
	fs.DurationVar(&cfg.TokenDelay, "local-token-delay", 0, "the server's LocalTokenDelay")
	if err := fs.Parse(args); err != nil || *dir == "" {
		fmt.Fprintln(os.Stderr, "loadgen serve-child: bad arguments")
		return 2
	}
	signal.Ignore(os.Interrupt)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	// The directory was made for this server alone: remove it even if the parent is gone.
	defer os.RemoveAll(*dir)
	srv, l, info, err := startServer(ctx, *dir, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen server: %v\n", err)
		return 1
	}
	if cfg.Profile != "" {
		stopProfile, err := startProfile(cfg.Profile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen server: %v\n", err)
			srv.Store.Close()
			return 1
		}
		defer stopProfile()
	}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		srv.Store.Close()
		return 1
	}
	if err := srv.Serve(ctx, l); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen server: %v\n", err)
		return 1
	}
	return 0
}

// startChild runs the server as a child process of this binary.
func startChild(dir string, cfg serverConfig) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, childCommand, "-data-dir", dir, "-clients", strconv.Itoa(cfg.Clients),
		"-role", cfg.Role, "-max-calls", strconv.Itoa(cfg.MaxCalls), "-log-level", cfg.LogLevel,
		"-cpuprofile", cfg.Profile, "-watchers", strconv.Itoa(cfg.Watchers), "-local-token-delay", cfg.TokenDelay.String())
	p, err := startProcess(cmd, "the server", 2*time.Minute)
	if err != nil {
		return nil, err
	}
	var info serverInfo
	if err := json.Unmarshal(p.line, &info); err != nil || info.URL == "" {
		_ = p.stop()
		return nil, fmt.Errorf("the server did not start (it printed %q)", strings.TrimSpace(string(p.line)))
	}
	return &target{
		serverInfo: info,
		Mode:       "a separate process (the load generator's binary re-executed, running server.New and Serve as glow serve does)",
		serverCPU:  func() (time.Duration, error) { return procCPU(p.pid) },
		serverRSS:  func() (int64, error) { return procRSS(p.pid) },
		pid:        p.pid,
		stop:       p.stop,
		dataDir:    dir,
	}, nil
}

// process is a server process the load generator started: it printed line first on its
// stdout, and runs until its stdin closes.
type process struct {
	pid  int
	line []byte
	stop func() error // close its stdin and wait for it to exit (kill it after 15 s)
}

// startProcess starts cmd, with its stderr on ours, and waits up to wait for the first line
// it prints.
func startProcess(cmd *exec.Cmd, what string, wait time.Duration) (*process, error) {
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	stop := sync.OnceValue(func() error {
		stdin.Close()
		select {
		case err := <-exited:
			return err
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop within 15s; killed it", what)
		}
	})
	lines := make(chan []byte, 1)
	go func() {
		r := bufio.NewReaderSize(stdout, 1<<20)
		line, _ := r.ReadBytes('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
		exited <- cmd.Wait()
	}()
	select {
	case line := <-lines:
		return &process{pid: cmd.Process.Pid, line: line, stop: stop}, nil
	case <-time.After(wait):
		_ = stop()
		return nil, fmt.Errorf("%s did not start within %s", what, wait)
	}
}

// startInProcess runs the server in this process.
func startInProcess(dir string, cfg serverConfig) (*target, error) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, l, info, err := startServer(ctx, dir, cfg, os.Stderr)
	if err != nil {
		cancel()
		return nil, err
	}
	stopProfile := func() {}
	if cfg.Profile != "" {
		if stopProfile, err = startProfile(cfg.Profile); err != nil {
			cancel()
			srv.Store.Close()
			return nil, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l); stopProfile() }()
	return &target{
		serverInfo: info,
		Mode:       "in the load generator's process (CPU figures count server and load generator together)",
		serverCPU:  selfCPU,
		serverRSS:  func() (int64, error) { return procRSS(os.Getpid()) },
		inProcess:  true,
		dataDir:    dir,
		stop: func() error {
			cancel()
			return <-done
		},
	}, nil
}

// external describes a server someone else runs. With a database to write to, the
// clients get their own profiles; otherwise they all share the given token's profile.
func external(ctx context.Context, url, token, dataDir, databaseURL string, pid, clients, watchers int, role string) (*target, error) {
	t := &target{serverInfo: serverInfo{URL: strings.TrimRight(url, "/"), Admin: token, Shared: token},
		Mode: "external server at " + url, stop: func() error { return nil }, dataDir: dataDir, databaseURL: databaseURL}
	if dataDir != "" || databaseURL != "" {
		st, err := store.Open(ctx, store.Config{DataDir: dataDir, DatabaseURL: databaseURL})
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if t.Tokens, t.Shared, err = provision(ctx, st, clients, role); err != nil {
			return nil, err
		}
		if t.Watchers, err = provisionWatchers(ctx, st, watchers); err != nil {
			return nil, err
		}
	}
	if pid > 0 {
		if _, err := procCPU(pid); err != nil {
			return nil, fmt.Errorf("-pid %d: %w", pid, err)
		}
		t.Mode += fmt.Sprintf(" (pid %d)", pid)
		t.serverCPU = func() (time.Duration, error) { return procCPU(pid) }
		t.serverRSS = func() (int64, error) { return procRSS(pid) }
		t.pid = pid
	}
	return t, nil
}

// startProfile starts a CPU profile written to path when the returned function is called.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, which Linux fixes
// at 100 for user space on every common architecture.
const clockTick = 10 * time.Millisecond

// procCPU reads a process's user + system CPU time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/<pid>/stat. The command
// name (field 2) may hold spaces and parentheses, so fields are counted from its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable utime/stime in /proc stat")
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// procRSS reads a process's resident set size from /proc/<pid>/statm.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, errors.New("short /proc statm")
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}

// selfCPU is this process's user + system CPU time.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// machineBusy is the CPU time all cores spent on anything but idling and waiting for I/O
// (user, nice, system, irq, softirq), from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachineBusy(line)
}

func parseMachineBusy(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("unreadable /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system _idle _iowait irq softirq
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, errors.New("unreadable /proc/stat")
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}
