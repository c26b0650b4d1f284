// Package store keeps glow's records in SQLite (embedded, the default) or PostgreSQL, with the
// same repository code for both. Migrations are embedded per dialect and run on Open.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The two dialects glow runs on.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned when a write breaks a uniqueness rule.
var ErrDuplicate = errors.New("duplicate")

//go:embed migrations
var migrations embed.FS

func init() {
	// modernc's driver is registered as "sqlite", a name sqlx does not know: tell it
	// that SQLite takes ? placeholders. PostgreSQL's $n come from Rebind.
	sqlx.BindDriver(SQLite, sqlx.QUESTION)
	// SQLite's lower() folds ASCII letters only; PostgreSQL's (in a UTF-8 database) folds
	// every letter. The searches lower both sides: on SQLite, lower() is Go's, so that both
	// databases give the same answer.
	sqlite.MustRegisterDeterministicScalarFunction("lower", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		}
		return args[0], nil // NULL, and the other values as they are
	})
}

// Config selects the database. An empty DatabaseURL selects SQLite under DataDir.
type Config struct {
	DataDir     string // directory of the embedded SQLite database, created if missing
	DatabaseURL string // postgres://… selects PostgreSQL
	// SecretKey seals secrets at rest (GLOW_SECRET_KEY: 32 bytes as hex or base64). Empty:
	// the key in DataDir's secret.key, created on first start. Nodes sharing a database
	// must share the key.
	SecretKey string
}

// Store is an open database with its migrations applied.
type Store struct {
	db      *sqlx.DB
	dialect string
	box     *sealer
}

// Pool is the database's connection pool, for its statistics.
func (s *Store) Pool() *sql.DB { return s.db.DB }

// Open connects to the database the config selects and applies pending migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s := &Store{}
	switch {
	case cfg.DatabaseURL == "":
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		s.dialect = SQLite
		db, err := sqlx.Open("sqlite", sqliteDSN(filepath.Join(cfg.DataDir, "glow.db")))
		if err != nil {
			return nil, err
		}
		// SQLite takes one writer at a time; a handful of connections serve concurrent
		// readers while busy_timeout queues the writers.
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8) // reopening a connection re-runs the pragmas and rereads the schema
		s.db = db
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		s.dialect = Postgres
		db, err := sqlx.Open("postgres", cfg.DatabaseURL)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		s.db = db
	default:
		return nil, fmt.Errorf("database URL must start with postgres:// (got %q)", redact(cfg.DatabaseURL))
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	key, err := secretKey(cfg)
	if err == nil {
		s.box, err = newSealer(key)
	}
	if err == nil {
		err = s.checkSecrets(ctx)
	}
	if err == nil {
		err = s.adoptProviders(ctx)
	}
	if err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN opens the file in WAL mode with foreign keys on. Write transactions take the
// write lock when they begin (_txlock=immediate), so two writers queue on busy_timeout
// instead of failing half-way; times are stored as sortable UTC text. Reads go through a
// memory map of up to 256 MiB shared by the connections (mmap_size): a search over 100 000
// records then takes half the time it takes reading pages one by one (docs/BENCHMARKS.md).
func sqliteDSN(path string) string {
	// The DSN is a URI: a path with %, ? or # must escape them.
	path = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	return "file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_pragma=mmap_size(268435456)&_txlock=immediate&_time_format=sqlite"
}

func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Several processes (servers, the CLI) may start at once: one migrates at a time.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db.DB, dir, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", s.dialect, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is SQLite or Postgres.
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Q runs queries outside a transaction.
func (s *Store) Q() Q { return Q{x: s.db, box: s.box} }

// Tx runs fn in a transaction, committed when fn returns nil and rolled back on every other
// way out: an error, or a panic (which goes on up). The functions given to the
// transaction's OnEnd run once it has ended, told whether it committed.
func (s *Store) Tx(ctx context.Context, fn func(q Q) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	t := &txn{}
	ended := false
	defer func() {
		if !ended {
			_ = tx.Rollback()
			t.end(false)
		}
	}()
	if err := fn(Q{x: tx, tx: t, box: s.box}); err != nil {
		return err
	}
	ended = true // a failed commit has ended the transaction too
	if err := tx.Commit(); err != nil {
		t.end(false)
		return err
	}
	t.end(true)
	return nil
}

// txn is what a transaction's Q carries besides its connection.
type txn struct {
	onEnd []func(committed bool)
}

func (t *txn) end(committed bool) {
	for _, fn := range t.onEnd {
		fn(committed)
	}
}

// Q holds the repository methods. It runs on the database or inside a transaction.
type Q struct {
	x   sqlx.ExtContext
	tx  *txn    // nil outside a transaction
	box *sealer // seals and opens secrets
}

// InTx says whether q runs inside a transaction.
func (q Q) InTx() bool { return q.tx != nil }

// OnEnd registers fn to run when q's transaction has ended, told whether it committed.
// Outside a transaction (where every statement commits by itself) it runs fn(true) at once.
func (q Q) OnEnd(fn func(committed bool)) {
	if q.tx == nil {
		fn(true)
		return
	}
	q.tx.onEnd = append(q.tx.onEnd, fn)
}

func (q Q) get(ctx context.Context, dest any, query string, args ...any) error {
	err := sqlx.GetContext(ctx, q.x, dest, q.x.Rebind(query), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// page reads one page of the rows of from (a table, with its alias if any) matching where,
// in order, into dest, and returns how many rows match in all.
func (q Q) page(ctx context.Context, dest any, columns, from, where, order string, args []any, limit, offset int) (int, error) {
	var total int
	if err := q.get(ctx, &total, `SELECT COUNT(*) FROM `+from+` WHERE `+where, args...); err != nil {
		return 0, err
	}
	return total, q.sel(ctx, dest, `SELECT `+columns+` FROM `+from+` WHERE `+where+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
}

// createdBetween adds the conditions of a created_at range; either end may be open.
func createdBetween(conds []string, args []any, from, to *time.Time) ([]string, []any) {
	if from != nil {
		conds, args = append(conds, "created_at >= ?"), append(args, from.UTC())
	}
	if to != nil {
		conds, args = append(conds, "created_at <= ?"), append(args, to.UTC())
	}
	return conds, args
}

func (q Q) sel(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, q.x, dest, q.x.Rebind(query), args...)
}

func (q Q) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.x.ExecContext(ctx, q.x.Rebind(query), args...)
	if err != nil {
		if isUniqueViolation(err) {
			return 0, fmt.Errorf("%w: %v", ErrDuplicate, err)
		}
		return 0, err
	}
	return res.RowsAffected()
}

// in expands the slice arguments of an IN (?) query.
func in(query string, args ...any) (string, []any) {
	q, a, err := sqlx.In(query, args...)
	if err != nil {
		// sqlx.In fails only on an empty slice or a miscounted query: callers never pass
		// either, so this is a programming error.
		panic(fmt.Sprintf("store: sqlx.In(%q): %v", query, err))
	}
	return q, a
}

func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return pqErr.Code == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Now is the store's clock: UTC at microsecond precision, which both databases keep exactly.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// NewID returns a new time-ordered id.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// likePattern turns free text into a case-insensitive LIKE pattern (used with ESCAPE '\').
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(text)) + "%"
}

// redact hides the password of a database URL.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at > 0 {
		if scheme := strings.Index(url, "://"); scheme > 0 && scheme < at {
			return url[:scheme+3] + "…@" + url[at+1:]
		}
	}
	return url
}
