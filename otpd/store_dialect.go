package otpd

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also database/sql's driver "pgx"
)

// dialect is what differs between the two databases the store runs on.
// The statements are written once (store_sql.go), in the SQL both read,
// with PostgreSQL's row locks (FOR UPDATE, FOR UPDATE SKIP LOCKED) where
// several instances may take the same rows; SQLite, whose one writer
// holds the whole database, drops them.
type dialect interface {
	// Name is "sqlite" or "postgres".
	Name() string
	// rewrite gives a statement in the database's own form.
	rewrite(q string) string
	// begin starts a write transaction.
	begin() string
}

type sqliteDialect struct{}

func (sqliteDialect) Name() string  { return "sqlite" }
func (sqliteDialect) begin() string { return `BEGIN IMMEDIATE` }
func (sqliteDialect) rewrite(q string) string {
	return strings.NewReplacer(" FOR UPDATE SKIP LOCKED", "", " FOR UPDATE", "",
		"now_ms()", `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`).Replace(q)
}

type postgresDialect struct{}

func (postgresDialect) Name() string  { return "postgres" }
func (postgresDialect) begin() string { return `BEGIN` }

var rowidWord = regexp.MustCompile(`\browid\b`)

// rewrite numbers the placeholders as PostgreSQL asks ($1, $2, ...): a
// bare ? takes the number after the largest so far, ?N is $N, as SQLite
// reads them; none inside a quoted string. SQLite's rowid is PostgreSQL's
// ctid (both name a row where a table has no key of its own). now_ms() is
// the database's clock in Unix milliseconds, in either (the statement's
// start), for leases that instances with clocks of their own compare.
func (postgresDialect) rewrite(q string) string {
	q = strings.ReplaceAll(q, "now_ms()", "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)")
	var b strings.Builder
	b.Grow(len(q) + 16)
	quoted := false
	top := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n := top + 1
			if j > i+1 {
				n, _ = strconv.Atoi(q[i+1 : j])
			}
			top = max(top, n)
			b.WriteString("$" + strconv.Itoa(n))
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return rowidWord.ReplaceAllString(b.String(), "ctid")
}

// rewritten caches each statement's rewritten form: the store's statements
// are a fixed set, and a hot one is rewritten once.
var rewritten sync.Map // [2]any{dialect, q} -> string

func (s *Store) sql(q string) string {
	key := [2]any{s.d, q}
	if v, ok := rewritten.Load(key); ok {
		return v.(string)
	}
	r := s.d.rewrite(q)
	rewritten.Store(key, r)
	return r
}

// Dialect names the database the store runs on: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.Name() }

// pgUnavailable says whether a PostgreSQL error is the server's state
// rather than the write's: out of disk or memory, a lost connection, a
// server shutting down, a deadlock or serialization failure that another
// try resolves.
func pgUnavailable(err error) bool {
	if connLost(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "53"), // insufficient resources (53100 disk full)
			strings.HasPrefix(pe.Code, "57P"),      // operator intervention: shutdown, cannot connect now
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "55P03": // lock not available
			return true
		}
	}
	return false
}

// connLost says whether err is a PostgreSQL connection's end rather than
// a statement's failure: a connection exception (08xxx), the server
// ending the session (57P01 admin shutdown, as pg_terminate_backend does;
// 57P02 crash shutdown; 57P03 cannot connect now), a connect or network
// error, or database/sql's word that the connection is gone.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn)
}

// pgClosed says whether a writer's connection is gone: closed by
// database/sql, or by pgx, which closes its connection on any error that
// leaves it unusable (an EOF from a cut connection, which connLost does
// not name, included).
func pgClosed(c *sql.Conn) bool {
	return c.Raw(func(dc any) error {
		if pc, ok := dc.(*stdlib.Conn); ok && pc.Conn().IsClosed() {
			return errPgClosed
		}
		return nil
	}) != nil
}

var errPgClosed = errors.New("the connection is closed")

// pgDiscard ends a writer's connection for good: the pgx connection is
// closed first (bounded: on a cut link a goodbye must not wait), so that
// closing its prepared statements after it makes no round trips, and
// database/sql, told it is bad, drops it from the pool, freeing its slot
// of SetMaxOpenConns for the new one.
func pgDiscard(c *sql.Conn) {
	c.Raw(func(dc any) error {
		if pc, ok := dc.(*stdlib.Conn); ok {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			pc.Conn().Close(ctx)
			cancel()
		}
		return driver.ErrBadConn
	})
	c.Close()
}

// pgConnPID is the server process of a writer's connection
// (pg_stat_activity.pid), 0 when it is not PostgreSQL's.
func pgConnPID(c *sql.Conn) uint32 {
	var pid uint32
	c.Raw(func(dc any) error {
		if pc, ok := dc.(*stdlib.Conn); ok {
			pid = pc.Conn().PgConn().PID()
		}
		return nil
	})
	return pid
}

// conflict says whether err is PostgreSQL's rolling a transaction back
// for another's sake (deadlock, serialization failure): the same write
// succeeds when run again.
func conflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// IsPostgresURL says whether a database setting names PostgreSQL.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// OpenStore opens the store the settings name: PostgreSQL at database when
// it is set, else SQLite in dir.
func OpenStore(dir, database string) (*Store, error) {
	if database == "" {
		return OpenSQLite(dir)
	}
	return OpenPostgres(database)
}

// dialTimeout bounds the first connection to PostgreSQL.
const dialTimeout = 15 * time.Second

// OpenPostgres opens (creating or upgrading its schema) the store on the
// PostgreSQL server at url (postgres://user@host:port/db?...).
func OpenPostgres(url string) (*Store, error) {
	if !IsPostgresURL(url) {
		return nil, fmt.Errorf("database %q: a PostgreSQL URL starts with postgres:// or postgresql://", redactURL(url))
	}
	if _, err := pgconn.ParseConfig(url); err != nil {
		return nil, fmt.Errorf("database %s: %w", redactURL(url), err)
	}
	// The writers' and the readers' connections name themselves in
	// pg_stat_activity (application_name) unless the URL names them.
	wdb, err := openPgDB(url, "otpd writer")
	if err != nil {
		return nil, err
	}
	// The writers' connections (migrate's before them). A writer that
	// lost its connection discards it (pgDiscard) before it takes another,
	// so the pool always has room for the new one.
	wdb.SetMaxOpenConns(pgWriters)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", redactURL(url), err)
	}
	rdb, err := openPgDB(url, "otpd reader")
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)
	bdb, err := openPgDB(url, "otpd limits", "synchronous_commit", "off")
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, err
	}
	bdb.SetMaxOpenConns(8)
	bdb.SetMaxIdleConns(8)
	s := newStore(postgresDialect{}, redactURL(url), rdb, wdb)
	s.url, s.bdb = url, bdb
	if err := s.migrate(); err != nil {
		rdb.Close()
		wdb.Close()
		bdb.Close()
		return nil, err
	}
	if err := s.openWriters(pgWriters); err != nil {
		rdb.Close()
		wdb.Close()
		bdb.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", redactURL(url), err)
	}
	// A commit on PostgreSQL is durable when it returns (synchronous_commit):
	// the syncer has nothing to sync and only hands batches on.
	s.syncWAL = func() error { return nil }
	s.start()
	return s, nil
}

// openPgDB opens a pool of connections to url that name themselves
// app (application_name) unless the URL names them, with the settings of
// params (name, value, ...).
func openPgDB(url, app string, params ...string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", redactURL(url), err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = app
	}
	for i := 0; i+1 < len(params); i += 2 {
		cfg.RuntimeParams[params[i]] = params[i+1]
	}
	return stdlib.OpenDB(*cfg), nil
}

// pgWriters is how many writers a PostgreSQL store runs: one keeps the
// server and otpd waiting for each other's round trips (about 620 OTPs/s
// on the 2-core VM), two to eight all took it to 1,100-1,400/s, where the
// two cores are busy; four leave room on a larger machine.
const pgWriters = 4

// pgLock is the advisory lock that migrations hold, so that instances
// starting together upgrade the schema once, one after the other.
const pgLock = 0x6f747064 // "otpd"

// pgSchema is the SQLite schema in PostgreSQL's types: times and counters
// BIGINT (INTEGER is 32 bits there), bytes BYTEA, the queue's id a
// BIGSERIAL; every table has a key, so none needs WITHOUT ROWID.
func pgSchema() []string {
	r := strings.NewReplacer(
		"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY",
		"INTEGER", "BIGINT", "BLOB", "BYTEA", "REAL", "DOUBLE PRECISION", ") WITHOUT ROWID", ")")
	out := make([]string, len(schema))
	for i, q := range schema {
		out[i] = r.Replace(q)
	}
	return out
}

// pgMigrations[v-1] takes a PostgreSQL store to version v. Version 1 is
// the schema as SQLite's version 4 has it (and the tables this build's
// SQLite schema added since, each made again, IF NOT EXISTS, by its own
// version); later versions append here.
var pgMigrations = [][]string{
	pgSchema(),
	// Version 2: the rate limits' buckets, shared by the instances.
	{`CREATE TABLE IF NOT EXISTS rate_buckets (
		name TEXT NOT NULL,
		key TEXT NOT NULL,
		tokens DOUBLE PRECISION NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (name, key)
	)`, `CREATE INDEX IF NOT EXISTS rate_buckets_updated ON rate_buckets(updated_at)`},
	// Version 3: the bind budget's leases (in version 1 too for a new
	// store: pgSchema is this build's SQLite schema).
	{`CREATE TABLE IF NOT EXISTS bind_slots (
		account TEXT NOT NULL,
		slot BIGINT NOT NULL,
		holder TEXT NOT NULL,
		expires_at BIGINT NOT NULL,
		PRIMARY KEY (account, slot)
	)`},
}

// PostgresSchemaVersion is the version of the PostgreSQL schema this
// build writes.
var PostgresSchemaVersion = len(pgMigrations)

// migratePostgres applies the versions the store lacks, in one
// transaction, under the advisory lock.
func (s *Store) migratePostgres() error {
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock($1)`, pgLock); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	v := 0
	err = tx.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
	fresh := errors.Is(err, sql.ErrNoRows)
	switch {
	case err != nil && !fresh:
		return fmt.Errorf("migrate: %w", err)
	case v > PostgresSchemaVersion:
		return fmt.Errorf("migrate: the store is at schema version %d, newer than this otpd's %d: run the otpd that wrote it", v, PostgresSchemaVersion)
	case v == PostgresSchemaVersion:
		return nil
	}
	for ; v < PostgresSchemaVersion; v++ {
		for _, q := range pgMigrations[v] {
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
		}
	}
	if fresh {
		_, err = tx.Exec(`INSERT INTO schema_version (version) VALUES ($1)`, v)
	} else {
		_, err = tx.Exec(`UPDATE schema_version SET version = $1`, v)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return tx.Commit()
}

// leaseQuery runs one statement on the bind budget's leases and gives the
// slots it returns. On PostgreSQL it runs at once on a connection of its
// own, bounded by ctx, so that a renewal never waits behind the writer's
// batches nor past its deadline; SQLite's one writer takes it as any
// write.
func (s *Store) leaseQuery(ctx context.Context, q string, args ...any) ([]int, error) {
	if s.d.Name() == "postgres" {
		rows, err := s.Query(ctx, q, args...)
		return collect(rows, err, scanOne[int])
	}
	var out []int
	err := s.Write(ctx, func(tx *Tx) error {
		rows, err := tx.Query(q, args...)
		out, err = collect(rows, err, scanOne[int])
		return err
	})
	return out, err
}

// Where says where the store is: its file, or its URL without the password.
func (s *Store) Where() string { return s.path }

// SchemaVersions gives the store's schema version and this build's.
func (s *Store) SchemaVersions() (have, want int) {
	want = SchemaVersion
	if s.d.Name() == "postgres" {
		want = PostgresSchemaVersion
	}
	if err := s.QueryRow(context.Background(), `SELECT version FROM schema_version`).Scan(&have); err != nil {
		return 0, want
	}
	return have, want
}

// ReadSchemaStatus says which schema version the store the settings name
// is at and what this build would apply to it, changing nothing.
func ReadSchemaStatus(dir, database string) (string, error) {
	var db *sql.DB
	var where, name string
	want := SchemaVersion
	if database != "" {
		if !IsPostgresURL(database) {
			return "", fmt.Errorf("database %q: a PostgreSQL URL starts with postgres:// or postgresql://", redactURL(database))
		}
		var err error
		if db, err = sql.Open("pgx", database); err != nil {
			return "", err
		}
		where, name, want = redactURL(database), "postgres", PostgresSchemaVersion
	} else {
		where, name = filepath.Join(dir, "otpd.db"), "sqlite"
		if _, err := os.Stat(where); err != nil {
			return fmt.Sprintf("sqlite store at %s: none yet; serve or migrate creates it at schema version %d", where, want), nil
		}
		var err error
		if db, err = sql.Open("sqlite", "file:"+where+"?mode=ro&_pragma=busy_timeout(10000)"); err != nil {
			return "", err
		}
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	var have int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&have)
	switch {
	case err != nil && (errors.Is(err, sql.ErrNoRows) || strings.Contains(err.Error(), "schema_version")):
		return fmt.Sprintf("%s store at %s: no schema yet; serve or migrate creates it at schema version %d", name, where, want), nil
	case err != nil:
		return "", fmt.Errorf("%s store at %s: %w", name, where, err)
	case have == want:
		return fmt.Sprintf("%s store at %s: schema version %d, up to date", name, where, have), nil
	case have > want:
		return fmt.Sprintf("%s store at %s: schema version %d, newer than this build's %d: run the otpd that wrote it", name, where, have, want), nil
	default:
		return fmt.Sprintf("%s store at %s: schema version %d; this build writes %d: serve or migrate applies %d version(s)", name, where, have, want, want-have), nil
	}
}
