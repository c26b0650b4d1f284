// Package testserver starts a real glow server for tests: a fresh database, the full
// handler stack, and a listener on a free port of 127.0.0.1. Tests talk to it the way users
// do, over HTTP and socket.io.
package testserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

// Env is a running server.
type Env struct {
	URL    string // http://127.0.0.1:<port>
	Server *server.Server
	Admin  string // the bootstrap admin's token

	opts server.Options
	log  *slog.Logger
	logs *SyncBuffer // everything the server logged, at debug level
	addr string
	stop func() // stops the server and waits for it
}

// Start runs a server on a new database of dialect d until t ends. opts may be nil; its
// address and database settings are replaced. GLOW_TEST_LOG=1 shows the server's log.
func Start(t testing.TB, d testdb.Dialect, opts *server.Options) *Env {
	t.Helper()
	o := server.Options{}
	if opts != nil {
		o = *opts
	}
	cfg := d.Config(t)
	o.DataDir, o.DatabaseURL = cfg.DataDir, cfg.DatabaseURL
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 30 * time.Second
	}
	if o.SocketMaxCalls == 0 {
		o.SocketMaxCalls = 16
	}
	if o.RevocationPoll == 0 {
		o.RevocationPoll = 200 * time.Millisecond
	}
	if o.LocalTokenDelay == 0 {
		o.LocalTokenDelay = time.Millisecond
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("GLOW_TEST_LOG") == "1" {
		logOut = os.Stderr
	}
	logs := &SyncBuffer{}
	e := &Env{opts: o, logs: logs, addr: "127.0.0.1:0",
		log: slog.New(slog.NewTextHandler(io.MultiWriter(logOut, logs), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	e.serve(t)
	e.Admin = e.Server.AdminToken
	t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
		}
	})
	return e
}

// serve starts a server on the env's database and address.
func (e *Env) serve(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, e.opts, e.log)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	var l net.Listener
	for try := 0; ; try++ { // a restarted server takes its port back, which may take a moment
		if l, err = net.Listen("tcp", e.addr); err == nil || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	e.URL, e.Server = "http://"+e.addr, srv
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	e.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not shut down within 30s")
		}
	}
}

// Restart shuts the server down as SIGTERM does and starts a new one on the same database
// and address: clients reconnect to the same URL.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	e.stop()
	e.stop = nil
	e.serve(t)
}

// Token creates a profile (if needed) with a role and departments (created if needed) and
// returns a new token for it.
func (e *Env) Token(t testing.TB, profile, role string, departments ...string) string {
	t.Helper()
	ctx := context.Background()
	var issued auth.Issued
	err := e.Server.Store.Tx(ctx, func(q store.Q) (err error) {
		issued, err = auth.Issue(ctx, q, profile, role, "test", departments...)
		return err
	})
	if err != nil {
		t.Fatalf("create token for %s: %v", profile, err)
	}
	return issued.Token
}

// Department returns the id of a department, creating it if needed.
func (e *Env) Department(t testing.TB, name string) uuid.UUID {
	t.Helper()
	var d store.Department
	err := e.Server.Store.Tx(context.Background(), func(q store.Q) error {
		admin, err := q.ProfileByName(context.Background(), "admin")
		if err == nil {
			d, err = q.EnsureDepartment(context.Background(), name, admin.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Post calls POST url+path with a JSON body (a string or []byte is sent as is) and the token
// (none when empty).
func (e *Env) Post(t testing.TB, token, path string, body any) Response {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: out}
}

// Logs returns everything the server has logged so far, at debug level.
func (e *Env) Logs() string { return e.logs.String() }

// Options are the settings the server runs with (its database's among them).
func (e *Env) Options() server.Options { return e.opts }

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers (a server's log, a
// child process's output).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RedisURL is the test Redis (GLOW_TEST_REDIS_URL, which scripts/with-redis.sh sets, as
// `make test` does). Without it t is skipped, or fails under GLOW_TEST_REQUIRE_REDIS=1.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("GLOW_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("GLOW_TEST_REQUIRE_REDIS") == "1" {
			t.Fatal("GLOW_TEST_REQUIRE_REDIS=1 but GLOW_TEST_REDIS_URL is empty: run the tests through scripts/with-redis.sh")
		}
		t.Skip("GLOW_TEST_REDIS_URL is not set: the cluster tests are skipped (make test starts a Redis)")
	}
	return u
}

// StartCluster runs n nodes on one new PostgreSQL database and the test Redis, under a
// Redis prefix of the test's own, until t ends. The first node bootstrapped the database:
// its Admin is the admin's token. opts may be nil, as for Start.
func StartCluster(t testing.TB, n int, opts *server.Options) []*Env {
	t.Helper()
	redis := RedisURL(t)
	var pg *testdb.Dialect
	for _, d := range testdb.Dialects(t) {
		if d.Name == store.Postgres {
			pg = &d
		}
	}
	if pg == nil {
		t.Skip("a cluster needs PostgreSQL: GLOW_TEST_POSTGRES_URL is not set")
	}
	o := server.Options{}
	if opts != nil {
		o = *opts
	}
	o.RedisURL, o.RedisPrefix = redis, "glow-test-"+uuid.NewString()+":"
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	o.SecretKey = hex.EncodeToString(key) // the nodes seal and open each other's secrets
	cfg := pg.Config(t)
	shared := testdb.Dialect{Name: store.Postgres, Config: func(t testing.TB) store.Config {
		return store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: t.TempDir()}
	}}
	nodes := make([]*Env, n)
	for i := range nodes {
		nodes[i] = Start(t, shared, &o)
	}
	return nodes
}
