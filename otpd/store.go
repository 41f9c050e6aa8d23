package otpd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the embedded store, no cgo
)

// Store errors.
var (
	ErrNotFound = errors.New("not found")
	ErrClosed   = errors.New("store closed")
	// ErrNotDurable: the write was committed but the sync to disk after
	// it failed, so it may or may not survive a power loss; what other
	// readers saw of it stays.
	ErrNotDurable = errors.New("store: outcome unknown")

	// errTxLost is what a write gets when its transaction was rolled back
	// under it, though it reported no error of its own.
	errTxLost = errors.New("store: the transaction was rolled back during this write")

	// errBroken is what writes get once a sync failed.
	errBroken = errors.New("store: an earlier sync of the database to disk failed; no further writes are accepted")
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
	) WITHOUT ROWID`,
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
	) WITHOUT ROWID`,
	// Only the queued messages are indexed by due time: a message leaves
	// this index once, when it is claimed (one handed to the sender when
	// created never enters it), and its later state changes touch no
	// index page.
	`CREATE INDEX IF NOT EXISTS messages_due ON messages(next_attempt_at) WHERE state = 'queued'`,
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
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS segments_key ON segments(smsc_key)`,
	`CREATE TABLE IF NOT EXISTS orphan_receipts (
		smsc_key TEXT NOT NULL,
		stat TEXT NOT NULL,
		err TEXT NOT NULL,
		state TEXT NOT NULL,
		done_at INTEGER NOT NULL,
		received_at INTEGER NOT NULL,
		receipt_id TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX IF NOT EXISTS orphan_key ON orphan_receipts(smsc_key)`,
	`CREATE TABLE IF NOT EXISTS api_keys (
		id TEXT PRIMARY KEY,
		hash BLOB NOT NULL UNIQUE,
		name TEXT NOT NULL DEFAULT '',
		networks TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		scopes TEXT NOT NULL DEFAULT 'otp,messages,events',
		senders TEXT NOT NULL DEFAULT '',
		revoked_at INTEGER NOT NULL DEFAULT 0,
		expires_at INTEGER NOT NULL DEFAULT 0,
		last_used_at INTEGER NOT NULL DEFAULT 0
	)`,
	// The front doors' own rows (IF NOT EXISTS: a store of an older build
	// gets them without a version step). door_messages lists what a key
	// sent through the Twilio-shaped doors; verify_challenges ties a
	// Twilio Verify service and number to otpd's challenges; callbacks
	// holds where a message's delivery reports go (the Twilio auth token
	// sealed, to sign them); callback_queue is the durable queue of
	// reports still to post.
	`CREATE TABLE IF NOT EXISTS door_messages (
		message_id TEXT PRIMARY KEY,
		key_id TEXT NOT NULL,
		account_sid TEXT NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS door_messages_list ON door_messages(key_id, account_sid, created_at)`,
	`CREATE TABLE IF NOT EXISTS verify_challenges (
		challenge_id TEXT PRIMARY KEY,
		service_sid TEXT NOT NULL,
		key_id TEXT NOT NULL,
		phone TEXT NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS verify_by_phone ON verify_challenges(service_sid, phone, created_at)`,
	`CREATE TABLE IF NOT EXISTS callbacks (
		message_id TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		url TEXT NOT NULL,
		secret BLOB,
		account_sid TEXT NOT NULL DEFAULT '',
		key_id TEXT NOT NULL DEFAULT ''
	) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS callback_queue (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		message_id TEXT NOT NULL,
		status TEXT NOT NULL,
		kind TEXT NOT NULL,
		url TEXT NOT NULL,
		content_type TEXT NOT NULL,
		body BLOB NOT NULL,
		signature TEXT NOT NULL DEFAULT '',
		key_id TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		next_attempt_at INTEGER NOT NULL,
		last_error TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		UNIQUE (message_id, status)
	)`,
	`CREATE INDEX IF NOT EXISTS callback_due ON callback_queue(next_attempt_at) WHERE state = 'pending'`,
	`CREATE TABLE IF NOT EXISTS smpp_accounts (
		system_id TEXT PRIMARY KEY,
		password_hash BLOB NOT NULL,
		key_id TEXT NOT NULL,
		tps REAL NOT NULL DEFAULT 0
	) WITHOUT ROWID`,
	// The segments of an SMPP application's long message until the last
	// one comes (texts sealed, as in the outbox).
	`CREATE TABLE IF NOT EXISTS smpp_parts (
		system_id TEXT NOT NULL,
		part_key TEXT NOT NULL,
		seq INTEGER NOT NULL,
		total INTEGER NOT NULL,
		part_id TEXT NOT NULL,
		sealed BLOB NOT NULL,
		receipts INTEGER NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (system_id, part_key, seq)
	) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS key_settings (
		key_id TEXT PRIMARY KEY,
		settings TEXT NOT NULL
	) WITHOUT ROWID`,
	// What the retention sweep and the hot paths filter on (see
	// TestQueryPlans): the sweep finds old rows by created_at and a
	// challenge's messages by challenge_id; a new challenge finds the
	// pending ones of its phone; the lease reclaim finds expired leases.
	`CREATE INDEX IF NOT EXISTS messages_challenge ON messages(challenge_id)`,
	`CREATE INDEX IF NOT EXISTS messages_created ON messages(created_at)`,
	`CREATE INDEX IF NOT EXISTS messages_lease ON messages(lease_until) WHERE state = 'sending'`,
	`CREATE INDEX IF NOT EXISTS challenges_created ON challenges(created_at)`,
	`CREATE INDEX IF NOT EXISTS challenges_pending ON challenges(phone) WHERE status = 'pending'`,
	`CREATE INDEX IF NOT EXISTS orphan_received ON orphan_receipts(received_at)`,
	// Failed verifications per phone across its challenges.
	`CREATE TABLE IF NOT EXISTS phone_failures (
		phone TEXT PRIMARY KEY,
		failures INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS phone_failures_updated ON phone_failures(updated_at)`,
	// Facts about the data directory: the id of the secret key the data
	// was written with, whether a real SMSC was ever served.
	`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID`,
}

// SchemaVersion is the version of the store schema this build writes.
const SchemaVersion = 4

// Store is the durable state: challenges, the outbox, segments and their
// receipts, API keys. Writes go through one goroutine that commits them in
// batches (group commit): one failing write does not undo the others, and
// a caller returns only once its write is committed.
type Store struct {
	path  string
	rdb   *sql.DB   // readers
	wdb   *sql.DB   // the single writer connection
	wconn *sql.Conn // that connection, held by the writer goroutine

	ops  chan *writeOp
	stop chan struct{}
	wg   sync.WaitGroup

	// The WAL file, synced by the syncer before a committed batch is
	// acknowledged; synced carries the batches from the writer to it.
	wal     *os.File
	syncWAL func() error // fdatasync of wal; tests replace it
	synced  chan committed
	syncErr error // the syncer's own
	broken  atomic.Bool

	mu     sync.RWMutex // held for reading while a write is queued, so Close waits for it
	closed bool

	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt // the readers' prepared statements

	// The writer's prepared statements, on wconn; only the writer
	// goroutine touches them.
	wstmts map[string]*sql.Stmt

	// failing counts the writes in a row that failed for the storage (a
	// full disk, busy, a failed sync); a write that commits resets it.
	failing atomic.Int32
	// inject, when set, fails whole batches before they run, as a disk
	// that filled up does (tests).
	inject atomic.Pointer[func() error]
	// seen records the statements run, when set (TestQueryPlans).
	seen atomic.Pointer[sync.Map]
}

type writeOp struct {
	fn   func(tx *Tx) error
	done chan error
}

// Tx is a write transaction: BEGIN IMMEDIATE ... COMMIT on the writer's
// one connection, which the writer goroutine holds as a *sql.Conn for the
// store's life. Not a *sql.Tx: that binds each prepared statement to the
// transaction anew, and gives every query a goroutine that watches the
// transaction's context; on a held connection a statement is prepared
// once, in or out of a transaction, and a query is only a query.
type Tx struct {
	s *Store
	// The results of Query, closed when the transaction ends: a write
	// that forgets one would otherwise keep a statement running on the
	// connection, and Close would wait for it for ever. (A *sql.Row
	// closes itself when scanned; QueryRow's callers always scan.)
	rows []*sql.Rows
	// err is the first error a statement of the running write met. The
	// write fails with it whatever the write returns, and its later
	// statements are refused with it: some errors roll back the whole
	// transaction, and a statement after one would run on its own and
	// commit at once. first is where the write's results start in rows.
	err   error
	first int
}

// run runs one write in the transaction and returns its error, or else
// the first error its statements met (reading rows included), which the
// write may have passed over.
func (t *Tx) run(fn func(tx *Tx) error) error {
	t.err, t.first = nil, len(t.rows)
	err := fn(t)
	if err == nil {
		err = t.err
	}
	for _, r := range t.rows[t.first:] {
		if err == nil {
			err = r.Err()
		}
	}
	return err
}

// failed records err as the running write's first error, and returns it.
func (t *Tx) failed(err error) error {
	if err != nil && t.err == nil {
		t.err = err
	}
	return err
}

// exec runs a statement on the writer's connection, prepared once. The
// store's own (BEGIN, SAVEPOINT, ...) run through it directly: their
// errors are the caller's to judge, not a write's.
func (s *Store) exec(q string, args ...any) (sql.Result, error) {
	if st := s.stmt(q); st != nil {
		return st.Exec(args...)
	}
	return s.wconn.ExecContext(context.Background(), q, args...)
}

// stmt returns the prepared form of q, preparing it the first time; nil
// when preparing fails (the statement then runs unprepared and reports its
// own error) or when the writer keeps enough already.
func (s *Store) stmt(q string) *sql.Stmt {
	if m := s.seen.Load(); m != nil {
		m.Store(q, true)
	}
	if st := s.wstmts[q]; st != nil {
		return st
	}
	if len(s.wstmts) >= maxWriteStmts {
		return nil // ad hoc statements, not worth keeping
	}
	st, err := s.wconn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil
	}
	s.wstmts[q] = st
	return st
}

// Exec runs a statement.
func (t *Tx) Exec(q string, args ...any) (sql.Result, error) {
	if t.err != nil {
		return nil, t.err
	}
	res, err := t.s.exec(q, args...)
	return res, t.failed(err)
}

// Query runs a query.
func (t *Tx) Query(q string, args ...any) (*sql.Rows, error) {
	if t.err != nil {
		return nil, t.err
	}
	var rows *sql.Rows
	var err error
	if st := t.s.stmt(q); st != nil {
		rows, err = st.Query(args...)
	} else {
		rows, err = t.s.wconn.QueryContext(context.Background(), q, args...)
	}
	if err != nil {
		return nil, t.failed(err)
	}
	t.rows = append(t.rows, rows)
	return rows, nil
}

// QueryRow runs a query for one row.
func (t *Tx) QueryRow(q string, args ...any) *Row {
	if t.err != nil {
		return &Row{t: t}
	}
	if st := t.s.stmt(q); st != nil {
		return &Row{t: t, row: st.QueryRow(args...)}
	}
	return &Row{t: t, row: t.s.wconn.QueryRowContext(context.Background(), q, args...)}
}

// Row is the result of Tx.QueryRow.
type Row struct {
	t   *Tx
	row *sql.Row // nil: refused, for an earlier error of the write
}

// Scan is sql.Row's Scan; an error other than sql.ErrNoRows is the
// write's error too.
func (r *Row) Scan(dest ...any) error {
	if r.row == nil {
		return r.t.err
	}
	err := r.row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return r.t.failed(err)
}

// begin starts a write transaction; end commits it, or rolls it back when
// commit is false or the commit fails (which leaves it open in SQLite).
func (s *Store) begin() (*Tx, error) {
	_, err := s.exec(`BEGIN IMMEDIATE`)
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		// A transaction left open by a commit and a rollback that both
		// failed would refuse every later one: end it, and try once more.
		// (Not for other errors: a BEGIN that waited busy_timeout for
		// another process's write has waited enough.)
		s.exec(`ROLLBACK`)
		_, err = s.exec(`BEGIN IMMEDIATE`)
	}
	if err != nil {
		return nil, err
	}
	return &Tx{s: s}, nil
}

func (t *Tx) end(commit bool) error {
	for _, r := range t.rows {
		r.Close()
	}
	t.rows = nil
	if commit {
		_, err := t.s.exec(`COMMIT`)
		if err == nil {
			return nil
		}
		t.s.exec(`ROLLBACK`)
		return err
	}
	_, err := t.s.exec(`ROLLBACK`)
	return err
}

// maxWriteStmts bounds the writer's prepared statements.
const maxWriteStmts = 128

// prepared returns the statement for q on db, preparing it the first time.
func (s *Store) prepared(db *sql.DB, q string) (*sql.Stmt, error) {
	if m := s.seen.Load(); m != nil {
		m.Store(q, true)
	}
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
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
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
	rdb.SetMaxIdleConns(4) // keep them: opening and closing SQLite connections is not free
	s := &Store{path: path, rdb: rdb, wdb: wdb, ops: make(chan *writeOp, 1024), stop: make(chan struct{}),
		stmts: map[stmtKey]*sql.Stmt{}, wstmts: map[string]*sql.Stmt{}}
	if err := s.migrate(); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	// The writer's connection, from here on the only user of wdb.
	if s.wconn, err = wdb.Conn(context.Background()); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// The WAL exists once migrate has written.
	if s.wal, err = os.OpenFile(path+"-wal", os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		s.wconn.Close()
		s.rdb.Close()
		s.wdb.Close()
		return nil, fmt.Errorf("open the write-ahead log: %w", err)
	}
	s.syncWAL = func() error { return syscall.Fdatasync(int(s.wal.Fd())) }
	// Unbuffered: the writer hands over batch N+1 only once the syncer has
	// synced batch N, and the writes that arrive meanwhile make the next
	// batch bigger instead of adding commits.
	s.synced = make(chan committed)
	s.wg.Add(2)
	go s.writer()
	go s.syncer()
	return s, nil
}

func (s *Store) migrate() error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	for _, q := range schema {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	var v int
	err = tx.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows): // a new store, made by the schema above
		if _, err := tx.Exec(`INSERT INTO schema_version(version) VALUES (?)`, SchemaVersion); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("migrate: %w", err)
	case v > SchemaVersion:
		return fmt.Errorf("migrate: the store is at schema version %d, newer than this otpd's %d: run the otpd that wrote it", v, SchemaVersion)
	default:
		for ; v < SchemaVersion; v++ {
			up, ok := upgrades[v]
			if !ok {
				return fmt.Errorf("migrate: no way from schema version %d: the store is damaged or not otpd's", v)
			}
			if err := up(tx); err != nil {
				return fmt.Errorf("migrate from schema version %d: %w", v, err)
			}
		}
		if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, SchemaVersion); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return tx.Commit()
}

// upgrades[v] takes a store from schema version v to v+1. (Version 2 made
// challenges, messages and segments WITHOUT ROWID tables for new stores;
// tables of older stores keep their rowids, which changes no query.
// Version 3 keeps each orphan receipt's id, so that matching one of its id
// forms drops the others.)
var upgrades = map[int]func(tx *sql.Tx) error{
	1: execAll(
		`DROP INDEX IF EXISTS messages_due`,
		`CREATE INDEX messages_due ON messages(next_attempt_at) WHERE state = 'queued'`,
	),
	2: addColumn("orphan_receipts", "receipt_id", `TEXT NOT NULL DEFAULT ''`),
	// Version 4: key life cycle (scopes, senders, revocation, rotation);
	// its indexes and tables are in the schema, made for old stores too.
	3: func(tx *sql.Tx) error {
		for _, c := range [][2]string{
			{"scopes", `TEXT NOT NULL DEFAULT 'otp,messages,events'`}, {"senders", `TEXT NOT NULL DEFAULT ''`},
			{"revoked_at", `INTEGER NOT NULL DEFAULT 0`}, {"expires_at", `INTEGER NOT NULL DEFAULT 0`}, {"last_used_at", `INTEGER NOT NULL DEFAULT 0`},
		} {
			if err := addColumn("api_keys", c[0], c[1])(tx); err != nil {
				return err
			}
		}
		return nil
	},
}

func execAll(qs ...string) func(tx *sql.Tx) error {
	return func(tx *sql.Tx) error {
		for _, q := range qs {
			if _, err := tx.Exec(q); err != nil {
				return err
			}
		}
		return nil
	}
}

// addColumn adds a column unless the table has it (made by this build's
// schema when the table did not exist).
func addColumn(table, col, def string) func(tx *sql.Tx) error {
	return func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, col).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := tx.Exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + col + ` ` + def)
		return err
	}
}

// Write runs fn in a write transaction (batched with others) and returns
// once it is committed. fn must not keep tx, and may be run more than once
// (when another write of its batch fails, the batch runs again): it must
// set its results afresh each time. A refusal that changed nothing is
// better returned in a variable than as an error, which costs the re-run.
func (s *Store) Write(ctx context.Context, fn func(tx *Tx) error) error {
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.ops <- op:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the write happens: wait for it even if ctx ends, so the
	// caller knows whether it committed.
	return <-op.done
}

// answer gives a write its outcome, counting storage failures. A commit
// resets the count (in done, on the writer goroutine: a batch committed
// before the failures but synced after them must not reset it).
func (s *Store) answer(op *writeOp, err error) {
	if err != nil && Unavailable(err) {
		s.failing.Add(1)
	}
	op.done <- err
}

// ErrFull is the error of a write the storage refused (a full disk).
var ErrFull = errors.New("store: database or disk is full")

// Unavailable reports whether err is the storage's rather than the
// write's: a full disk, a database busy or locked by another process, an
// I/O error, a failed sync. The same write may succeed later.
func Unavailable(err error) bool {
	if errors.Is(err, ErrFull) || errors.Is(err, ErrNotDurable) || errors.Is(err, errBroken) {
		return true
	}
	var se interface{ Code() int }
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6, 10, 13: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL
			return true
		}
	}
	return false
}

// Failing reports whether the last writes (three or more in a row)
// failed for the storage.
func (s *Store) Failing() bool { return s.failing.Load() >= 3 || s.broken.Load() }

// InjectWriteErrors makes every batch fail with f's error while f returns
// one, as a disk that fills and frees; nil ends it. For tests.
func (s *Store) InjectWriteErrors(f func() error) {
	if f == nil {
		s.inject.Store(nil)
		return
	}
	s.inject.Store(&f)
}

const maxBatch = 256

func (s *Store) writer() {
	defer s.wg.Done()
	defer close(s.synced) // the syncer acknowledges what is left, and ends
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

// committed is a batch SQLite has committed and the syncer has still to
// make durable before its writers hear of it.
type committed struct {
	ops  []*writeOp
	errs []error // per op: nil, or why its savepoint was rolled back
}

// syncer makes committed batches durable and then answers their writers.
// SQLite commits without syncing (synchronous=NORMAL: what it wrote is in
// the operating system, safe from a crash of this process); one fdatasync
// of the WAL file here then covers every batch committed before it. So the
// writer runs the next batch while the disk syncs the last ones, and no
// write is acknowledged before it is on disk. Unlike synchronous=FULL, a
// batch is visible to reads (and to the next batch) from its commit, a
// sync before it is durable: a power loss in that moment can take back
// what a reader saw, never what a writer was told.
func (s *Store) syncer() {
	defer s.wg.Done()
	var pending []committed
	for c := range s.synced {
		pending = append(pending[:0], c)
	more:
		for {
			select {
			case c, ok := <-s.synced:
				if !ok {
					break more
				}
				pending = append(pending, c)
			default:
				break more
			}
		}
		err := s.syncErr
		if err == nil {
			for err = s.syncWAL(); errors.Is(err, syscall.EINTR); err = s.syncWAL() {
				// Interrupted (by a signal, on network file systems): the
				// sync did not finish; nothing was lost. Again.
			}
			if err != nil {
				// The kernel may have dropped the pages it failed to write:
				// nothing written since can be called durable any more.
				err = fmt.Errorf("%w: syncing %s failed, no further writes are accepted: %v", ErrNotDurable, s.wal.Name(), err)
				s.syncErr = err
				s.broken.Store(true)
			}
		}
		for _, c := range pending {
			for i, op := range c.ops {
				if err != nil {
					s.answer(op, err)
				} else {
					s.answer(op, c.errs[i])
				}
			}
		}
	}
}

// done hands a committed batch to the syncer.
func (s *Store) done(ops []*writeOp, errs []error) {
	s.failing.Store(0)
	s.synced <- committed{ops: slices.Clone(ops), errs: errs}
}

func (s *Store) commit(batch []*writeOp) {
	if f := s.inject.Load(); f != nil {
		if err := (*f)(); err != nil {
			for _, op := range batch {
				s.answer(op, err)
			}
			return
		}
	}
	if s.broken.Load() {
		for _, op := range batch {
			s.answer(op, errBroken)
		}
		return
	}
	if len(batch) > 1 {
		// Optimistically, all in one transaction with no savepoints: a
		// write fails only on a broken database or a bug, and then the
		// batch is rolled back and run again with a savepoint each.
		if s.commitAll(batch) {
			return
		}
	}
	s.commitEach(batch)
}

// Broken says whether a sync failed: the store refuses writes from then on.
func (s *Store) Broken() bool { return s.broken.Load() }

// commitAll runs the batch in one transaction and commits it; false, with
// everything rolled back, when a write fails.
func (s *Store) commitAll(batch []*writeOp) bool {
	tx, err := s.begin()
	if err != nil {
		// Not again in commitEach: a BEGIN that waited busy_timeout for
		// another process's write has waited enough.
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: begin: %w", err))
		}
		return true
	}
	for _, op := range batch {
		if err := tx.run(op.fn); err != nil {
			tx.end(false)
			return false
		}
	}
	if err := tx.end(true); err != nil {
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: commit: %w", err))
		}
		return true
	}
	s.done(batch, make([]error, len(batch)))
	return true
}

// commitEach runs each write of the batch under its own savepoint, so that
// one failing write does not undo the others, and commits them together.
func (s *Store) commitEach(batch []*writeOp) {
	errs := make([]error, len(batch))
	tx, err := s.begin()
	if err != nil {
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: begin: %w", err))
		}
		return
	}
	if len(batch) == 1 {
		// Alone in its transaction: no savepoint needed.
		if err := tx.run(batch[0].fn); err != nil {
			tx.end(false)
			s.answer(batch[0], err)
			return
		}
	} else {
		for i, op := range batch {
			if _, err := s.exec(`SAVEPOINT w`); err != nil {
				errs[i] = err
				continue
			}
			lost := false
			if errs[i] = tx.run(op.fn); errs[i] != nil {
				_, err := s.exec(`ROLLBACK TO w`)
				lost = err != nil
			}
			if _, err := s.exec(`RELEASE w`); err != nil {
				lost = true
			}
			if lost {
				// No savepoint to go back to: the write's error rolled
				// back the whole transaction (SQLite does for some
				// errors), with the writes before it. Carrying on would
				// run the rest outside any transaction. The write fails
				// alone, and the others run again in a new transaction.
				tx.end(false)
				if errs[i] == nil {
					errs[i] = errTxLost
				}
				s.answer(op, errs[i])
				if rest := append(slices.Clone(batch[:i]), batch[i+1:]...); len(rest) > 0 {
					s.commitEach(rest)
				}
				return
			}
		}
	}
	if err := tx.end(true); err != nil {
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: commit: %w", err))
		}
		return
	}
	s.done(batch, errs)
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
	s.wal.Close()
	for _, st := range s.wstmts {
		st.Close()
	}
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[stmtKey]*sql.Stmt{}
	s.stmtMu.Unlock()
	s.wconn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
	s.wconn.Close()
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

// The front doors' statements (door_*.go and webhooks.go hold no SQL).

func insertDoorMessage(tx *Tx, messageID, keyID, accountSid string, created time.Time) error {
	_, err := tx.Exec(`INSERT INTO door_messages (message_id, key_id, account_sid, created_at) VALUES (?,?,?,?)`,
		messageID, keyID, accountSid, ms(created))
	return err
}

// listDoorMessages gives the ids of the messages a key sent for an account
// through the Twilio-shaped doors, newest first.
func (s *Store) listDoorMessages(ctx context.Context, keyID, accountSid string, limit, offset int) ([]string, error) {
	return s.queryIDs(ctx, `SELECT message_id FROM door_messages WHERE key_id = ? AND account_sid = ? ORDER BY created_at DESC, message_id DESC LIMIT ? OFFSET ?`,
		keyID, accountSid, limit, offset)
}

// doorMessageAccount is the account a door message was sent for; "" when
// it was not sent through a Twilio-shaped door.
func (s *Store) doorMessageAccount(ctx context.Context, messageID string) (string, error) {
	var acc string
	err := s.QueryRow(ctx, `SELECT account_sid FROM door_messages WHERE message_id = ?`, messageID).Scan(&acc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return acc, err
}

func insertVerifyChallenge(tx *Tx, challengeID, serviceSid, keyID, phone string, created time.Time) error {
	_, err := tx.Exec(`INSERT INTO verify_challenges (challenge_id, service_sid, key_id, phone, created_at) VALUES (?,?,?,?,?)`,
		challengeID, serviceSid, keyID, phone, ms(created))
	return err
}

// verifyChallengeService is the Verify service a challenge was made for;
// "" when it was not made through the Verify door.
func (s *Store) verifyChallengeService(ctx context.Context, challengeID string) (string, error) {
	var svc string
	err := s.QueryRow(ctx, `SELECT service_sid FROM verify_challenges WHERE challenge_id = ?`, challengeID).Scan(&svc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return svc, err
}

// latestVerifyChallenge is the newest challenge of a Verify service for a
// number and key; "" when there is none.
func (s *Store) latestVerifyChallenge(ctx context.Context, serviceSid, keyID, phone string) (string, error) {
	var id string
	err := s.QueryRow(ctx, `SELECT challenge_id FROM verify_challenges WHERE service_sid = ? AND phone = ? AND key_id = ? ORDER BY created_at DESC, challenge_id DESC LIMIT 1`,
		serviceSid, phone, keyID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

func insertCallback(tx *Tx, messageID, kind, url string, secret []byte, accountSid, keyID string) error {
	_, err := tx.Exec(`INSERT INTO callbacks (message_id, kind, url, secret, account_sid, key_id) VALUES (?,?,?,?,?,?)`,
		messageID, kind, url, secret, accountSid, keyID)
	return err
}

// callbackTarget is a message's callback with what a report on it says.
type callbackTarget struct {
	Kind, URL, AccountSid, KeyID string
	Secret                       []byte
	Phone, Sender, State         string
	Stat, Err, ChallengeID       string
	CreatedAt, UpdatedAt         time.Time
}

// callbackFor reads a message's callback and its current state; nil when
// it has none.
func callbackFor(tx *Tx, messageID string) (*callbackTarget, error) {
	var c callbackTarget
	var created, updated int64
	err := tx.QueryRow(`SELECT c.kind, c.url, c.secret, c.account_sid, c.key_id, m.phone, m.sender, m.state, m.stat, m.err, m.challenge_id, m.created_at, m.updated_at
		FROM callbacks c JOIN messages m ON m.id = c.message_id WHERE c.message_id = ?`, messageID).
		Scan(&c.Kind, &c.URL, &c.Secret, &c.AccountSid, &c.KeyID, &c.Phone, &c.Sender, &c.State, &c.Stat, &c.Err, &c.ChallengeID, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return &c, nil
}

// queuedCallback is one report in the durable queue.
type queuedCallback struct {
	ID                   int64
	MessageID, Status    string
	Kind, URL            string
	ContentType          string
	Body                 []byte
	Signature, KeyID     string
	State                string
	Attempts             int
	NextAttemptAt        time.Time
	LastError            string
	CreatedAt, UpdatedAt time.Time
}

// enqueueCallback queues a report once per message and status.
func enqueueCallback(tx *Tx, q *queuedCallback) error {
	_, err := tx.Exec(`INSERT INTO callback_queue (message_id, status, kind, url, content_type, body, signature, key_id, state, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?,?,?,?,?,?,?,?,?,0,?,?,?) ON CONFLICT (message_id, status) DO NOTHING`,
		q.MessageID, q.Status, q.Kind, q.URL, q.ContentType, q.Body, q.Signature, q.KeyID, callbackPending, ms(q.NextAttemptAt), ms(q.CreatedAt), ms(q.CreatedAt))
	return err
}

const callbackCols = `id, message_id, status, kind, url, content_type, body, signature, key_id, state, attempts, next_attempt_at, last_error, created_at, updated_at`

func scanCallback(r scanner) (*queuedCallback, error) {
	var q queuedCallback
	var next, created, updated int64
	if err := r.Scan(&q.ID, &q.MessageID, &q.Status, &q.Kind, &q.URL, &q.ContentType, &q.Body, &q.Signature, &q.KeyID, &q.State, &q.Attempts,
		&next, &q.LastError, &created, &updated); err != nil {
		return nil, err
	}
	q.NextAttemptAt, q.CreatedAt, q.UpdatedAt = fromMS(next), fromMS(created), fromMS(updated)
	return &q, nil
}

// claimCallbacks takes up to n due reports, leasing them until lease (a
// report whose post outlives the lease, or whose instance died, is due
// again then). The state is inline so that the partial index
// callback_due serves the query.
func claimCallbacks(tx *Tx, now, lease time.Time, n int) ([]*queuedCallback, error) {
	rows, err := tx.Query(`SELECT `+callbackCols+` FROM callback_queue WHERE state = '`+callbackPending+`' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
		ms(now), n)
	if err != nil {
		return nil, err
	}
	var out []*queuedCallback
	for rows.Next() {
		q, err := scanCallback(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, q)
	}
	rows.Close()
	for _, q := range out {
		if _, err := tx.Exec(`UPDATE callback_queue SET next_attempt_at = ? WHERE id = ?`, ms(lease), q.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// finishCallback records the outcome of one post.
func finishCallback(tx *Tx, id int64, state string, attempts int, next time.Time, lastErr string, now time.Time) error {
	_, err := tx.Exec(`UPDATE callback_queue SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		state, attempts, ms(next), lastErr, ms(now), id)
	return err
}

// ListCallbacks gives the queued reports, newest first: only those that
// failed at least once unless all is set.
func (s *Store) ListCallbacks(ctx context.Context, all bool, limit int) ([]*queuedCallback, error) {
	q := `SELECT ` + callbackCols + ` FROM callback_queue WHERE state = 'failed' OR (state = 'pending' AND attempts > 0) ORDER BY id DESC LIMIT ?`
	if all {
		q = `SELECT ` + callbackCols + ` FROM callback_queue ORDER BY id DESC LIMIT ?`
	}
	rows, err := s.Query(ctx, q, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*queuedCallback
	for rows.Next() {
		c, err := scanCallback(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CountCallbacks counts the queued reports by state.
func (s *Store) CountCallbacks(ctx context.Context) (map[string]int, error) {
	rows, err := s.Query(ctx, `SELECT state, COUNT(*) FROM callback_queue GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// RetryCallbacks makes failed reports due again now; it returns how many.
func (s *Store) RetryCallbacks(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE callback_queue SET state = ?, next_attempt_at = ?, updated_at = ? WHERE state = ?`,
			callbackPending, ms(now), ms(now), callbackFailed)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// keySettings reads a key's door settings (JSON); "" when it has none.
func (s *Store) keySettings(ctx context.Context, keyID string) (string, error) {
	var v string
	err := s.QueryRow(ctx, `SELECT settings FROM key_settings WHERE key_id = ?`, keyID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// setKeySettings stores a key's door settings; the key must exist.
func (s *Store) setKeySettings(ctx context.Context, keyID, settings string) error {
	return s.Write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE id = ?`, keyID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no API key %q", keyID)
		}
		_, err := tx.Exec(`INSERT INTO key_settings (key_id, settings) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET settings = excluded.settings`, keyID, settings)
		return err
	})
}

// openCallbacks gives the messages with a callback and no final report
// queued yet.
func (s *Store) openCallbacks(ctx context.Context) ([]string, error) {
	return s.queryIDs(ctx, `SELECT c.message_id FROM callbacks c
		WHERE NOT EXISTS (SELECT 1 FROM callback_queue q WHERE q.message_id = c.message_id)`)
}

func (s *Store) insertSMPPAccount(ctx context.Context, systemID string, hash []byte, keyID string, tps float64) error {
	return s.Write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE id = ?`, keyID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no API key %q", keyID)
		}
		if err := tx.QueryRow(`SELECT COUNT(*) FROM smpp_accounts WHERE system_id = ?`, systemID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("smpp system_id %q is taken", systemID)
		}
		_, err := tx.Exec(`INSERT INTO smpp_accounts (system_id, password_hash, key_id, tps) VALUES (?,?,?,?)`, systemID, hash, keyID, tps)
		return err
	})
}

// smppAccount reads an SMPP account; nil when unknown.
func (s *Store) smppAccount(ctx context.Context, systemID string) (*SMPPAccount, error) {
	a := SMPPAccount{SystemID: systemID}
	err := s.QueryRow(ctx, `SELECT password_hash, key_id, tps FROM smpp_accounts WHERE system_id = ?`, systemID).Scan(&a.hash, &a.KeyID, &a.TPS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// copyCallback registers message from's callback for message to as well
// (callbacks without a sealed secret: a secret is bound to its message).
func copyCallback(tx *Tx, from, to string) (int64, error) {
	res, err := tx.Exec(`INSERT INTO callbacks (message_id, kind, url, secret, account_sid, key_id)
		SELECT ?, kind, url, secret, account_sid, key_id FROM callbacks WHERE message_id = ? AND secret IS NULL`, to, from)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// keyNetworks reads the networks an API key may be used from.
func (s *Store) keyNetworks(ctx context.Context, keyID string) ([]netip.Prefix, error) {
	var nets string
	if err := s.QueryRow(ctx, `SELECT networks FROM api_keys WHERE id = ?`, keyID).Scan(&nets); err != nil {
		return nil, err
	}
	return ParseNetworks(nets)
}

// smppPart is one stored segment of an SMPP application's long message.
type smppPart struct {
	Seq, Total int
	PartID     string
	Sealed     []byte
	Receipts   bool
}

// storeSMPPPart keeps a segment (again, when an application resends it)
// and returns all the segments of its message once every one is there.
func storeSMPPPart(tx *Tx, systemID, key string, p smppPart, now time.Time) ([]smppPart, error) {
	if _, err := tx.Exec(`INSERT INTO smpp_parts (system_id, part_key, seq, total, part_id, sealed, receipts, created_at) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (system_id, part_key, seq) DO UPDATE SET part_id = excluded.part_id, sealed = excluded.sealed, receipts = excluded.receipts`,
		systemID, key, p.Seq, p.Total, p.PartID, p.Sealed, p.Receipts, ms(now)); err != nil {
		return nil, err
	}
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM smpp_parts WHERE system_id = ? AND part_key = ?`, systemID, key).Scan(&n); err != nil {
		return nil, err
	}
	if n < p.Total {
		return nil, nil
	}
	rows, err := tx.Query(`SELECT seq, total, part_id, sealed, receipts FROM smpp_parts WHERE system_id = ? AND part_key = ? ORDER BY seq`, systemID, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []smppPart
	for rows.Next() {
		var q smppPart
		if err := rows.Scan(&q.Seq, &q.Total, &q.PartID, &q.Sealed, &q.Receipts); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// dropSMPPParts deletes a long message's segments once it is queued; false
// when they were gone (queued by another submit already).
func dropSMPPParts(tx *Tx, systemID, key string) (bool, error) {
	res, err := tx.Exec(`DELETE FROM smpp_parts WHERE system_id = ? AND part_key = ?`, systemID, key)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// dueHeldReceipts makes the receipts held for an SMPP application due now.
func dueHeldReceipts(tx *Tx, systemID string, now time.Time) error {
	_, err := tx.Exec(`UPDATE callback_queue SET next_attempt_at = ? WHERE kind = 'smpp' AND url = ? AND state = 'pending' AND next_attempt_at > ?`,
		ms(now), systemID, ms(now))
	return err
}

// smppSet is a long message whose segments all came.
type smppSet struct {
	SystemID, Key string
	Parts         []smppPart
}

// completeSMPPSets reads the long messages whose segments all came.
func (s *Store) completeSMPPSets(ctx context.Context) ([]smppSet, error) {
	rows, err := s.Query(ctx, `SELECT system_id, part_key, seq, total, part_id, sealed, receipts FROM smpp_parts ORDER BY system_id, part_key, seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []smppSet
	for rows.Next() {
		var sys, key string
		var p smppPart
		if err := rows.Scan(&sys, &key, &p.Seq, &p.Total, &p.PartID, &p.Sealed, &p.Receipts); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].SystemID != sys || out[n-1].Key != key {
			out = append(out, smppSet{SystemID: sys, Key: key})
		}
		out[len(out)-1].Parts = append(out[len(out)-1].Parts, p)
	}
	complete := out[:0]
	for _, set := range out {
		if len(set.Parts) == set.Parts[0].Total {
			complete = append(complete, set)
		}
	}
	return complete, rows.Err()
}

// dropStaleSMPPParts deletes segments stored before t.
func dropStaleSMPPParts(tx *Tx, before time.Time) error {
	_, err := tx.Exec(`DELETE FROM smpp_parts WHERE created_at < ?`, ms(before))
	return err
}

// The statements of the service, the sender and the key commands that are
// not inline in their callers. Every one is covered by TestQueryPlans.

// sweepBatch is how many rows one retention write deletes: small enough
// that the writes queued behind it wait milliseconds, not seconds.
const sweepBatch = 500

// sweepOrphans deletes up to n receipts that never found their message,
// received before cut; it returns how many.
func sweepOrphans(tx *Tx, cut int64, n int) (int64, error) {
	res, err := tx.Exec(`DELETE FROM orphan_receipts WHERE rowid IN (SELECT rowid FROM orphan_receipts WHERE received_at < ? LIMIT ?)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepMessages deletes up to n finished messages created before cut, with
// their segments.
func sweepMessages(tx *Tx, cut int64, n int) (int64, error) {
	const old = `SELECT id FROM messages WHERE created_at < ?1 AND state <> '` + StateQueued + `' AND state <> '` + StateSending + `' LIMIT ?2`
	// A message's rows in other tables go with it: its segments, and what
	// the front doors keep of it (its callback, its queued reports, its
	// entry in a Twilio account's list).
	for _, table := range []string{"segments", "callbacks", "callback_queue", "door_messages"} {
		if _, err := tx.Exec(`DELETE FROM `+table+` WHERE message_id IN (`+old+`)`, cut, n); err != nil {
			return 0, err
		}
	}
	res, err := tx.Exec(`DELETE FROM messages WHERE id IN (`+old+`)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepChallenges deletes up to n challenges created before cut that no
// message refers to any more.
func sweepChallenges(tx *Tx, cut int64, n int) (int64, error) {
	const old = `SELECT c.id FROM challenges c WHERE c.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.challenge_id = c.id) LIMIT ?2`
	if _, err := tx.Exec(`DELETE FROM verify_challenges WHERE challenge_id IN (`+old+`)`, cut, n); err != nil {
		return 0, err
	}
	res, err := tx.Exec(`DELETE FROM challenges WHERE id IN (`+old+`)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepPhoneFailures forgets failure counts last raised before cut.
func sweepPhoneFailures(tx *Tx, cut int64, n int) (int64, error) {
	res, err := tx.Exec(`DELETE FROM phone_failures WHERE phone IN (SELECT phone FROM phone_failures WHERE updated_at < ? LIMIT ?)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// phoneFailures is the count of failed verifications in a row for phone,
// and when the last one was.
func (s *Store) phoneFailures(ctx context.Context, phone string) (n int, at int64, err error) {
	err = s.QueryRow(ctx, `SELECT failures, updated_at FROM phone_failures WHERE phone = ?`, phone).Scan(&n, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return n, at, err
}

func txPhoneFailures(tx *Tx, phone string) (n int, at int64, err error) {
	err = tx.QueryRow(`SELECT failures, updated_at FROM phone_failures WHERE phone = ?`, phone).Scan(&n, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return n, at, err
}

// setPhoneFailures records the failures in a row for phone; 0 forgets them.
func setPhoneFailures(tx *Tx, phone string, n int, now int64) error {
	if n == 0 {
		_, err := tx.Exec(`DELETE FROM phone_failures WHERE phone = ?`, phone)
		return err
	}
	_, err := tx.Exec(`INSERT INTO phone_failures (phone, failures, updated_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (phone) DO UPDATE SET failures = ?2, updated_at = ?3`, phone, n, now)
	return err
}

// supersedePending cancels the pending challenges of phone made by keyID
// and withdraws their SMS not sent yet; it returns how many it canceled.
func supersedePending(tx *Tx, phone, keyID string, now int64) (int64, error) {
	if _, err := tx.Exec(`UPDATE messages SET state = '`+StateFailed+`', sealed = NULL, reason = 'superseded by a newer challenge before it was sent', updated_at = ?3
		WHERE id IN (SELECT message_id FROM challenges WHERE phone = ?1 AND status = '`+StatusPending+`' AND key_id = ?2) AND state = '`+StateQueued+`'`,
		phone, keyID, now); err != nil {
		return 0, err
	}
	res, err := tx.Exec(`UPDATE challenges SET status = '`+StatusCanceled+`', updated_at = ?3 WHERE phone = ?1 AND status = '`+StatusPending+`' AND key_id = ?2`,
		phone, keyID, now)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryIDs runs a query of one text column and gives its values.
func (s *Store) queryIDs(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// expiredLeases lists up to n messages being sent whose lease ended
// before now.
func (s *Store) expiredLeases(ctx context.Context, now int64, n int) ([]string, error) {
	return s.queryIDs(ctx, `SELECT id FROM messages WHERE state = '`+StateSending+`' AND lease_until < ? LIMIT ?`, now, n)
}

// reclaim puts a message whose lease ended back into the outbox, counted
// uncertain (its last submit may have reached the SMSC); false when it is
// not being sent under an expired lease any more.
func reclaim(tx *Tx, id string, now int64) (bool, error) {
	res, err := tx.Exec(`UPDATE messages SET state = '`+StateQueued+`', uncertain = uncertain + 1, next_attempt_at = ?2, lease_until = 0, updated_at = ?2
		WHERE id = ?1 AND state = '`+StateSending+`' AND lease_until < ?2`, id, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Meta reads a fact about the data directory; ok is false when unset.
func (s *Store) Meta(ctx context.Context, k string) (v string, ok bool, err error) {
	err = s.QueryRow(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

// SetMeta records a fact about the data directory.
func (s *Store) SetMeta(ctx context.Context, k, v string) error {
	return s.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = ?2`, k, v)
		return err
	})
}

// hasData reports whether the store holds any challenge or message.
func (s *Store) hasData(ctx context.Context) (bool, error) {
	var n int
	err := s.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM challenges LIMIT 1)) + (SELECT COUNT(*) FROM (SELECT 1 FROM messages LIMIT 1))`).Scan(&n)
	return n > 0, err
}

const keyCols = `id, name, networks, scopes, senders, created_at, revoked_at, expires_at, last_used_at`

func scanKey(r scanner) (*APIKey, error) {
	var k APIKey
	var nets, scopes, senders string
	var created, revoked, expires, used int64
	if err := r.Scan(&k.ID, &k.Name, &nets, &scopes, &senders, &created, &revoked, &expires, &used); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	var err error
	if k.Networks, err = ParseNetworks(nets); err != nil {
		return nil, err
	}
	k.Scopes, k.Senders = splitList(scopes), splitList(senders)
	k.CreatedAt, k.RevokedAt, k.ExpiresAt, k.LastUsedAt = fromMS(created), fromMS(revoked), fromMS(expires), fromMS(used)
	return &k, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func storeKey(tx *Tx, k *APIKey, hash []byte) error {
	var nets []string
	for _, n := range k.Networks {
		nets = append(nets, n.String())
	}
	_, err := tx.Exec(`INSERT INTO api_keys (id, hash, name, networks, scopes, senders, created_at, revoked_at, expires_at, last_used_at) VALUES (?,?,?,?,?,?,?,0,?,0)`,
		k.ID, hash, k.Name, strings.Join(nets, ","), strings.Join(k.Scopes, ","), strings.Join(k.Senders, ","), ms(k.CreatedAt), ms(k.ExpiresAt))
	return err
}

// keyByHash finds a key by the hash of its secret.
func (s *Store) keyByHash(ctx context.Context, hash []byte) (*APIKey, error) {
	return scanKey(s.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE hash = ?`, hash))
}

// KeyByID finds a key by its id.
func (s *Store) KeyByID(ctx context.Context, id string) (*APIKey, error) {
	return scanKey(s.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = ?`, id))
}

// Keys lists every key, oldest first.
func (s *Store) Keys(ctx context.Context) ([]*APIKey, error) {
	rows, err := s.Query(ctx, `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// endKey revokes a key (now) or lets it expire at a time (rotation);
// false when there is no such key still in force.
func endKey(tx *Tx, id string, revokedAt, expiresAt int64) (bool, error) {
	res, err := tx.Exec(`UPDATE api_keys SET revoked_at = CASE WHEN ?2 > 0 THEN ?2 ELSE revoked_at END,
		expires_at = CASE WHEN ?3 > 0 AND (expires_at = 0 OR expires_at > ?3) THEN ?3 ELSE expires_at END
		WHERE id = ?1 AND revoked_at = 0`, id, revokedAt, expiresAt)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// touchKey records when a key was last used.
func touchKey(tx *Tx, id string, at int64) error {
	_, err := tx.Exec(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`, at, id)
	return err
}
