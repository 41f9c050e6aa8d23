package otpd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the embedded store, no cgo
)

// Store errors.
var (
	ErrNotFound = errors.New("not found")
	ErrClosed   = errors.New("store closed")
)

// schema is the SQLite schema. Times are Unix milliseconds.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS challenges (
		id TEXT PRIMARY KEY,
		phone TEXT NOT NULL,
		code_hmac BLOB NOT NULL,
		status TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		max_attempts INTEGER NOT NULL,
		sends INTEGER NOT NULL DEFAULT 1,
		length INTEGER NOT NULL,
		locale TEXT NOT NULL DEFAULT '',
		key_id TEXT NOT NULL DEFAULT '',
		message_id TEXT NOT NULL DEFAULT '',
		template TEXT NOT NULL DEFAULT '',
		sender TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		last_sent_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS messages (
		id TEXT PRIMARY KEY,
		challenge_id TEXT NOT NULL DEFAULT '',
		phone TEXT NOT NULL,
		sender TEXT NOT NULL DEFAULT '',
		sealed BLOB,
		state TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		uncertain INTEGER NOT NULL DEFAULT 0,
		ref INTEGER NOT NULL DEFAULT 0,
		segments INTEGER NOT NULL DEFAULT 0,
		next_attempt_at INTEGER NOT NULL,
		deadline INTEGER NOT NULL,
		lease_until INTEGER NOT NULL DEFAULT 0,
		stat TEXT NOT NULL DEFAULT '',
		err TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL DEFAULT '',
		key_id TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS messages_due ON messages(state, next_attempt_at)`,
	`CREATE TABLE IF NOT EXISTS segments (
		message_id TEXT NOT NULL,
		seq INTEGER NOT NULL,
		smsc_id TEXT NOT NULL,
		smsc_key TEXT NOT NULL,
		state TEXT NOT NULL,
		stat TEXT NOT NULL DEFAULT '',
		err TEXT NOT NULL DEFAULT '',
		submitted_at INTEGER NOT NULL,
		done_at INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (message_id, seq)
	)`,
	`CREATE INDEX IF NOT EXISTS segments_key ON segments(smsc_key)`,
	`CREATE TABLE IF NOT EXISTS orphan_receipts (
		smsc_key TEXT NOT NULL,
		stat TEXT NOT NULL,
		err TEXT NOT NULL,
		state TEXT NOT NULL,
		done_at INTEGER NOT NULL,
		received_at INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS orphan_key ON orphan_receipts(smsc_key)`,
	`CREATE TABLE IF NOT EXISTS api_keys (
		id TEXT PRIMARY KEY,
		hash BLOB NOT NULL UNIQUE,
		name TEXT NOT NULL DEFAULT '',
		networks TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL
	)`,
}

// SchemaVersion is the version of the store schema this build writes.
const SchemaVersion = 1

// Store is the durable state: challenges, the outbox, segments and their
// receipts, API keys. Writes go through one goroutine that commits them in
// batches (group commit): each write is its own savepoint, so one failing
// write does not undo the others, and a caller returns only once its write
// is committed.
type Store struct {
	path string
	rdb  *sql.DB // readers
	wdb  *sql.DB // the single writer connection

	ops  chan *writeOp
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool

	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt
}

type writeOp struct {
	fn   func(tx *Tx) error
	done chan error
}

// Tx is a write transaction. (Its statements are not prepared: preparing
// needs a second connection to the database while the writer's holds the
// transaction, and with one, commits stalled for seconds now and then.)
type Tx struct {
	tx *sql.Tx
	s  *Store
}

// Exec runs a statement.
func (t *Tx) Exec(q string, args ...any) (sql.Result, error) { return t.tx.Exec(q, args...) }

// Query runs a query.
func (t *Tx) Query(q string, args ...any) (*sql.Rows, error) { return t.tx.Query(q, args...) }

// QueryRow runs a query for one row.
func (t *Tx) QueryRow(q string, args ...any) *sql.Row { return t.tx.QueryRow(q, args...) }

// prepared returns the statement for q on db, preparing it the first time.
func (s *Store) prepared(db *sql.DB, q string) (*sql.Stmt, error) {
	key := stmtKey{db, q}
	s.stmtMu.Lock()
	st := s.stmts[key]
	s.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := db.Prepare(q)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	if old := s.stmts[key]; old != nil {
		st.Close()
		st = old
	} else {
		s.stmts[key] = st
	}
	s.stmtMu.Unlock()
	return st, nil
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// QueryRow runs a read query for one row on the readers (prepared once).
func (s *Store) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.prepared(s.rdb, q)
	if err != nil {
		return s.rdb.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Query runs a read query on the readers.
func (s *Store) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(s.rdb, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// OpenSQLite opens (creating) the SQLite store in dir.
func OpenSQLite(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, "otpd.db")
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1) // one writer goroutine, one transaction at a time
	if err := wdb.Ping(); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(4)
	s := &Store{path: path, rdb: rdb, wdb: wdb, ops: make(chan *writeOp, 1024), stop: make(chan struct{}), stmts: map[stmtKey]*sql.Stmt{}}
	if err := s.migrate(); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

func (s *Store) migrate() error {
	for _, q := range schema {
		if _, err := s.wdb.Exec(q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	var n int
	if err := s.wdb.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&n); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if n == 0 {
		_, err := s.wdb.Exec(`INSERT INTO schema_version(version) VALUES (?)`, SchemaVersion)
		return err
	}
	return nil
}

// Write runs fn in a write transaction (batched with others) and returns
// once it is committed. fn must not keep tx.
func (s *Store) Write(ctx context.Context, fn func(tx *Tx) error) error {
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- op:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the write happens: wait for it even if ctx ends, so the
	// caller knows whether it committed.
	return <-op.done
}

const maxBatch = 256

func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]*writeOp, 0, maxBatch)
	for {
		var first *writeOp
		select {
		case first = <-s.ops:
		case <-s.stop:
			// Drain what was queued before stopping.
			for {
				select {
				case op := <-s.ops:
					s.commit([]*writeOp{op})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*writeOp) {
	errs := make([]error, len(batch))
	sqlTx, err := s.wdb.Begin()
	if err != nil {
		for _, op := range batch {
			op.done <- fmt.Errorf("store: begin: %w", err)
		}
		return
	}
	tx := &Tx{tx: sqlTx, s: s}
	if len(batch) == 1 {
		// Alone in its transaction: no savepoint needed.
		if err := batch[0].fn(tx); err != nil {
			sqlTx.Rollback()
			batch[0].done <- err
			return
		}
	} else {
		for i, op := range batch {
			if _, err := tx.Exec(`SAVEPOINT w`); err != nil {
				errs[i] = err
				continue
			}
			if err := op.fn(tx); err != nil {
				errs[i] = err
				tx.Exec(`ROLLBACK TO w`)
			}
			tx.Exec(`RELEASE w`)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		for _, op := range batch {
			op.done <- fmt.Errorf("store: commit: %w", err)
		}
		return
	}
	for i, op := range batch {
		op.done <- errs[i]
	}
}

// Close stops the writer after the queued writes and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[stmtKey]*sql.Stmt{}
	s.stmtMu.Unlock()
	s.wdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
