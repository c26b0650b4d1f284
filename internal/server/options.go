package server

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/glowhq/glow/store"
)

// Options configures a server. Every field has a flag and a GLOW_* environment variable;
// a flag given on the command line wins over the variable.
type Options struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	// SecretKey seals secrets at rest; it comes from GLOW_SECRET_KEY alone (no flag, so
	// that it never shows in a process list). Empty: the data directory's key file.
	SecretKey       string
	LogLevel        string
	MaxBodyBytes    int64
	CallTimeout     time.Duration
	PingInterval    time.Duration
	PingTimeout     time.Duration
	WriteTimeout    time.Duration // longest a write to a socket.io or SSE client may wait
	SocketMaxCalls  int
	ShutdownTimeout time.Duration
	RevocationPoll  time.Duration
	TokenCacheTTL   time.Duration // how long a resolved token is trusted without the database
	EventRetention  time.Duration
	Workers         int           // generation runs at once
	ChatReplies     int           // replies of one chat waiting or generating at once
	ProfileRuns     int           // runs of one profile queued, running or paused at once
	LocalTokenDelay time.Duration // the pace of the local model's stream
	MetricsInterval time.Duration // how often the metrics snapshot is pushed
	PresenceGrace   time.Duration // how long a profile without sockets stays active
	StreamKeepAlive time.Duration // SSE keep-alive comment interval
	RecoveryWindow  time.Duration // socket.io connection state recovery (negative: off)
	RecoveryBytes   int64         // the broadcast packets kept for recovery, at most
	BodyTimeout     time.Duration // longest an HTTP request body may take to arrive
	DebugAddr       string        // where net/http/pprof is served; empty: nowhere
	CORSOrigins     string        // the other origins whose pages may call glow: a list, or "*"; empty: none
	TokenProtocol   bool          // a socket.io websocket may carry its token as "Sec-WebSocket-Protocol: Bearer, <token>"
	TokenQuery      bool          // a socket.io connection may carry its token as ?token=
	// RedisURL joins the node to the other glow nodes on the same PostgreSQL database
	// through this Redis (redis://host:port); empty: glow runs as one node.
	RedisURL    string
	RedisPrefix string // the prefix of glow's Redis channels and keys (default "glow:")

	envErrs []string // GLOW_* variables that could not be parsed
}

func (o *Options) defaults() {
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.RevocationPoll <= 0 {
		o.RevocationPoll = 500 * time.Millisecond
	}
	if o.TokenCacheTTL <= 0 {
		o.TokenCacheTTL = 10 * time.Second
	}
	if o.MetricsInterval <= 0 {
		o.MetricsInterval = 10 * time.Second
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.RedisPrefix == "" {
		o.RedisPrefix = "glow:"
	}
}

// Defaults are the settings of glow serve when no flag or GLOW_* variable says otherwise.
func Defaults() Options {
	return Options{
		Addr:            "127.0.0.1:8080",
		DataDir:         "./data",
		LogLevel:        "info",
		MaxBodyBytes:    1 << 20,
		CallTimeout:     time.Minute,
		PingInterval:    25 * time.Second,
		PingTimeout:     20 * time.Second,
		WriteTimeout:    10 * time.Second,
		SocketMaxCalls:  16,
		RecoveryWindow:  30 * time.Second,
		RecoveryBytes:   16 << 20,
		Workers:         8,
		ChatReplies:     3,
		ProfileRuns:     16,
		LocalTokenDelay: 30 * time.Millisecond,
		EventRetention:  7 * 24 * time.Hour,
		ShutdownTimeout: 10 * time.Second,
		BodyTimeout:     10 * time.Second,
	}
}

// StoreFlags registers the flags that select the database (shared by serve and the token
// commands).
func (o *Options) StoreFlags(fs *flag.FlagSet) {
	def := Defaults()
	fs.StringVar(&o.DataDir, "data-dir", env("GLOW_DATA_DIR", def.DataDir), "directory of the embedded SQLite database (GLOW_DATA_DIR)")
	fs.StringVar(&o.DatabaseURL, "database-url", env("GLOW_DATABASE_URL", ""), "postgres://… to use PostgreSQL instead of SQLite (GLOW_DATABASE_URL)")
	o.SecretKey = os.Getenv("GLOW_SECRET_KEY")
}

// StoreConfig is the database the options select.
func (o Options) StoreConfig() store.Config {
	return store.Config{DataDir: o.DataDir, DatabaseURL: o.DatabaseURL, SecretKey: o.SecretKey}
}

// ServeFlags registers every flag of glow serve. Invalid values in the environment are
// reported by Validate.
func (o *Options) ServeFlags(fs *flag.FlagSet) {
	o.StoreFlags(fs)
	def := Defaults()
	fs.StringVar(&o.Addr, "addr", env("GLOW_ADDR", def.Addr), "address to listen on (GLOW_ADDR)")
	fs.StringVar(&o.LogLevel, "log-level", env("GLOW_LOG_LEVEL", def.LogLevel), "debug, info, warn or error (GLOW_LOG_LEVEL)")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.envInt("GLOW_MAX_BODY_BYTES", def.MaxBodyBytes), "largest HTTP body or socket.io message (GLOW_MAX_BODY_BYTES)")
	fs.DurationVar(&o.CallTimeout, "call-timeout", o.envDuration("GLOW_CALL_TIMEOUT", def.CallTimeout), "longest an operation may run (GLOW_CALL_TIMEOUT)")
	fs.DurationVar(&o.PingInterval, "ping-interval", o.envDuration("GLOW_PING_INTERVAL", def.PingInterval), "socket.io heartbeat interval (GLOW_PING_INTERVAL)")
	fs.DurationVar(&o.PingTimeout, "ping-timeout", o.envDuration("GLOW_PING_TIMEOUT", def.PingTimeout), "how long a socket.io client may take to answer a ping (GLOW_PING_TIMEOUT)")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", o.envDuration("GLOW_WRITE_TIMEOUT", def.WriteTimeout), "longest a write to a socket.io or SSE client may wait before the client is disconnected (GLOW_WRITE_TIMEOUT)")
	fs.IntVar(&o.SocketMaxCalls, "socket-max-calls", int(o.envInt("GLOW_SOCKET_MAX_CALLS", int64(def.SocketMaxCalls))), "calls one socket may have running at once (GLOW_SOCKET_MAX_CALLS)")
	fs.DurationVar(&o.RecoveryWindow, "recovery-window", o.envDuration("GLOW_RECOVERY_WINDOW", def.RecoveryWindow), "how long a dropped socket.io connection may recover its rooms and missed packets; negative turns it off (GLOW_RECOVERY_WINDOW)")
	fs.Int64Var(&o.RecoveryBytes, "recovery-bytes", o.envInt("GLOW_RECOVERY_BYTES", def.RecoveryBytes), "bytes of broadcast packets kept for connection state recovery; past it the oldest are forgotten (GLOW_RECOVERY_BYTES)")
	fs.IntVar(&o.Workers, "workers", int(o.envInt("GLOW_WORKERS", int64(def.Workers))), "generation runs executed at once (GLOW_WORKERS)")
	fs.IntVar(&o.ChatReplies, "chat-replies", int(o.envInt("GLOW_CHAT_REPLIES", int64(def.ChatReplies))), "replies of one chat waiting or being generated at once; a message beyond gets 429 (GLOW_CHAT_REPLIES)")
	fs.IntVar(&o.ProfileRuns, "profile-runs", int(o.envInt("GLOW_PROFILE_RUNS", int64(def.ProfileRuns))), "runs of one profile queued, running or paused at once; a run beyond gets 429 (GLOW_PROFILE_RUNS)")
	fs.DurationVar(&o.LocalTokenDelay, "local-token-delay", o.envDuration("GLOW_LOCAL_TOKEN_DELAY", def.LocalTokenDelay), "pause between the words the local model streams (GLOW_LOCAL_TOKEN_DELAY)")
	fs.DurationVar(&o.EventRetention, "event-retention", o.envDuration("GLOW_EVENT_RETENTION", def.EventRetention), "how long pushed events are kept for replay (GLOW_EVENT_RETENTION)")
	fs.DurationVar(&o.BodyTimeout, "body-timeout", o.envDuration("GLOW_BODY_TIMEOUT", def.BodyTimeout), "longest an HTTP request body may take to arrive; a slower one gets 408 (GLOW_BODY_TIMEOUT)")
	fs.StringVar(&o.CORSOrigins, "cors-origins", env("GLOW_CORS_ORIGINS", ""), "origins of other sites whose pages may call glow from a browser, comma-separated (https://app.example.com), or *; empty: only glow's own origin (GLOW_CORS_ORIGINS)")
	fs.BoolVar(&o.TokenProtocol, "socket-token-protocol", o.envBool("GLOW_SOCKET_TOKEN_PROTOCOL"), "let a socket.io websocket client with no auth.token carry it as \"Sec-WebSocket-Protocol: Bearer, <token>\" (GLOW_SOCKET_TOKEN_PROTOCOL)")
	fs.BoolVar(&o.TokenQuery, "socket-token-query", o.envBool("GLOW_SOCKET_TOKEN_QUERY"), "let a socket.io client with no auth.token carry it as ?token= in the handshake URL, which proxies may log (GLOW_SOCKET_TOKEN_QUERY)")
	fs.StringVar(&o.RedisURL, "redis-url", env("GLOW_REDIS_URL", ""), "redis://host:port joining this node to the other glow nodes on the same PostgreSQL database; empty: one node (GLOW_REDIS_URL)")
	fs.StringVar(&o.RedisPrefix, "redis-prefix", env("GLOW_REDIS_PREFIX", "glow:"), "prefix of glow's Redis channels and keys, to share one Redis between clusters (GLOW_REDIS_PREFIX)")
	fs.StringVar(&o.DebugAddr, "debug-addr", env("GLOW_DEBUG_ADDR", ""), "address to serve net/http/pprof on, e.g. 127.0.0.1:6060; empty: off (GLOW_DEBUG_ADDR)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.envDuration("GLOW_SHUTDOWN_TIMEOUT", def.ShutdownTimeout), "how long shutdown waits for running requests (GLOW_SHUTDOWN_TIMEOUT)")
}

// Validate reports settings that cannot work, including unparsable environment variables.
func (o *Options) Validate() error {
	if len(o.envErrs) > 0 {
		return fmt.Errorf("%s", strings.Join(o.envErrs, "; "))
	}
	if _, err := ParseLevel(o.LogLevel); err != nil {
		return err
	}
	if _, err := parseCORSOrigins(o.CORSOrigins); err != nil {
		return err
	}
	if o.MaxBodyBytes < 1024 {
		return fmt.Errorf("max body bytes must be at least 1024 (got %d)", o.MaxBodyBytes)
	}
	if o.SocketMaxCalls < 1 {
		return fmt.Errorf("socket max calls must be at least 1 (got %d)", o.SocketMaxCalls)
	}
	if o.Workers < 1 {
		return fmt.Errorf("workers must be at least 1 (got %d)", o.Workers)
	}
	if o.RecoveryBytes < 64<<10 {
		return fmt.Errorf("recovery bytes must be at least 65536 (got %d)", o.RecoveryBytes)
	}
	if o.ChatReplies < 1 || o.ProfileRuns < 1 {
		return fmt.Errorf("chat replies and profile runs must be at least 1 (got %d and %d)", o.ChatReplies, o.ProfileRuns)
	}
	if o.LocalTokenDelay < 0 || o.EventRetention <= 0 {
		return fmt.Errorf("local token delay must not be negative and event retention must be positive")
	}
	for name, d := range map[string]time.Duration{"call timeout": o.CallTimeout, "ping interval": o.PingInterval, "ping timeout": o.PingTimeout, "write timeout": o.WriteTimeout, "body timeout": o.BodyTimeout} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive (got %s)", name, d)
		}
	}
	return nil
}

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level must be debug, info, warn or error (got %q)", s)
	}
	return l, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func (o *Options) envInt(name string, def int64) int64 {
	v := env(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Sprintf("%s=%q is not a whole number", name, v))
		return def
	}
	return n
}

// envBool reads a GLOW_* switch: true, 1, false or 0; unset is false.
func (o *Options) envBool(name string) bool {
	v := env(name, "")
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Sprintf("%s=%q is not true or false", name, v))
		return false
	}
	return b
}

func (o *Options) envDuration(name string, def time.Duration) time.Duration {
	v := env(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Sprintf("%s=%q is not a duration such as 30s or 2m", name, v))
		return def
	}
	return d
}
