package otpd

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
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
	// ErrNotDurable: the write's outcome is unknown. On SQLite it was
	// committed but the sync to disk after it failed, so it may or may not
	// survive a power loss; what other readers saw of it stays. On
	// PostgreSQL the connection was lost while its COMMIT was under way,
	// so it may or may not have been committed.
	ErrNotDurable = errors.New("store: outcome unknown")

	// errTxLost is what a write gets when its transaction was rolled back
	// under it, though it reported no error of its own.
	errTxLost = errors.New("store: the transaction was rolled back during this write")

	// errBroken is what writes get once a sync failed.
	errBroken = errors.New("store: an earlier sync of the database to disk failed; no further writes are accepted")

	// errConnLost is what writes get from a PostgreSQL writer that lost
	// its connection and has not got another yet, or lost it under the
	// write every time it ran.
	errConnLost = errors.New("store: the connection to PostgreSQL was lost")
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
	// The bind budget's leases: a row per slot of an SMSC account's
	// sessions that an instance holds until expires_at (the database's
	// clock). A missing or expired row is a free slot.
	`CREATE TABLE IF NOT EXISTS bind_slots (
		account TEXT NOT NULL,
		slot INTEGER NOT NULL,
		holder TEXT NOT NULL,
		expires_at INTEGER NOT NULL,
		PRIMARY KEY (account, slot)
	) WITHOUT ROWID`,
}

// SchemaVersion is the version of the store schema this build writes.
const SchemaVersion = 5

// Store is the durable state: challenges, the outbox, segments and their
// receipts, API keys. Writes go through the writers (one goroutine each,
// one on SQLite), which commit them in batches (group commit): one
// failing write does not undo the others, and a caller returns only once
// its write is committed.
type Store struct {
	d    dialect
	path string  // where it is, for messages: a file, or a URL without its password
	rdb  *sql.DB // readers
	wdb  *sql.DB // the writers' connections
	// bdb, on PostgreSQL, runs the rate limits' bucket statements with
	// synchronous_commit off: every send updates the same few rows (the
	// global bucket, its country's), and each update holds its row until
	// its commit; waiting for the WAL flush there made the hottest row a
	// queue of flushes. A server crash may forget the last moment's
	// tokens, which lets a few more sends through, and loses nothing else.
	bdb *sql.DB
	// w are the writers: one on SQLite, which takes one write
	// transaction at a time; several on PostgreSQL, where a batch's
	// statements are round trips to the server and one connection would
	// leave it, and this process, waiting on each other.
	w []*writerConn

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

	// failing counts the writes in a row that failed for the storage (a
	// full disk, busy, a failed sync); a write that commits resets it.
	failing atomic.Int32
	// inject, when set, fails whole batches before they run, as a disk
	// that filled up does (tests).
	inject atomic.Pointer[func() error]
	// seen records the statements run, when set (TestQueryPlans).
	seen atomic.Pointer[sync.Map]
	// url is PostgreSQL's URL, password and all, for the event feed's own
	// connections; "" on SQLite. Never logged: path is what to show.
	url string

	// connected counts the PostgreSQL writers that hold a connection;
	// onConn hears of each lost and each regained (OnWriterConn).
	connected atomic.Int32
	onConn    atomic.Pointer[func(WriterConnEvent)]
}

type writeOp struct {
	fn   func(tx *Tx) error
	done chan error
}

// writerConn is one writer's connection, held by its goroutine, and the
// statements prepared on it, which only that goroutine touches. On SQLite
// the connection lasts the store's life; on PostgreSQL a writer whose
// connection was lost (a server restart, pg_terminate_backend, a cut
// link) discards it and takes a new one from wdb.
type writerConn struct {
	n     int // which writer, for the logs
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	pid   atomic.Uint32 // the server process of conn on PostgreSQL; 0 without one

	// Without a connection (conn nil): why it was lost (then the last
	// reconnect's error), since when, when to try again, and the wait
	// after that try if it fails.
	lostErr error
	lostAt  time.Time
	retryAt time.Time
	backoff time.Duration
	tries   int
}

// WriterConnEvent is a PostgreSQL writer's connection lost, or regained.
type WriterConnEvent struct {
	Writer int    // which of the store's writers
	PID    uint32 // the lost connection's server process (pg_stat_activity.pid), or the new one's
	Lost   bool
	Err    error         // when lost: why
	Down   time.Duration // when regained: for how long it was lost
	Tries  int           // when regained: the connects it took
}

// OnWriterConn makes f hear of each writer's connection lost and
// regained (on PostgreSQL; the service logs them). f runs on the writer's
// goroutine: it must be quick.
func (s *Store) OnWriterConn(f func(WriterConnEvent)) { s.onConn.Store(&f) }

func (s *Store) connEvent(ev WriterConnEvent) {
	if f := s.onConn.Load(); f != nil {
		(*f)(ev)
	}
}

// Reconnecting a writer: the first try comes at once, the later ones
// after a wait that doubles from reconnectMin up to reconnectMax; each
// connect is bounded by reconnectTimeout.
const (
	reconnectMin     = 50 * time.Millisecond
	reconnectMax     = 2 * time.Second
	reconnectTimeout = 5 * time.Second
	// maxLostTries bounds the runs of a batch whose connection is lost
	// under it, each on a new connection.
	maxLostTries = 3
)

// lost says whether the writer's connection is gone after err: on
// PostgreSQL only (SQLite's connection is a local file's, kept for the
// store's life).
func (s *Store) lost(w *writerConn, err error) bool {
	return s.d.Name() == "postgres" && (connLost(err) || pgClosed(w.conn))
}

// drop discards the writer's lost connection and its prepared
// statements; the next try to reconnect comes at once.
func (s *Store) drop(w *writerConn, err error) {
	pgDiscard(w.conn)
	for _, st := range w.stmts {
		st.Close()
	}
	clear(w.stmts)
	w.conn = nil
	s.connected.Add(-1)
	now := time.Now()
	w.lostErr, w.lostAt, w.retryAt, w.backoff, w.tries = err, now, now, reconnectMin, 0
	s.connEvent(WriterConnEvent{Writer: w.n, PID: w.pid.Swap(0), Lost: true, Err: err})
}

// reconnect gives the writer a new connection from wdb, unless the wait
// after its last failed try is not over; the error says why it has none.
func (s *Store) reconnect(w *writerConn) error {
	if w.conn != nil {
		return nil
	}
	if time.Now().Before(w.retryAt) {
		return fmt.Errorf("%w, and is not back yet: %w", errConnLost, w.lostErr)
	}
	w.tries++
	ctx, cancel := context.WithTimeout(context.Background(), reconnectTimeout)
	c, err := s.wdb.Conn(ctx)
	cancel()
	if err != nil {
		w.lostErr, w.retryAt = err, time.Now().Add(w.backoff)
		w.backoff = min(2*w.backoff, reconnectMax)
		return fmt.Errorf("%w, and is not back yet: %w", errConnLost, err)
	}
	w.conn, w.lostErr = c, nil
	w.pid.Store(pgConnPID(c))
	s.connected.Add(1)
	s.connEvent(WriterConnEvent{Writer: w.n, PID: w.pid.Load(), Down: time.Since(w.lostAt), Tries: w.tries})
	return nil
}

// writerPIDs gives the server processes of the writers' connections
// (0 for one that has none), for tests that cut them.
func (s *Store) writerPIDs() []uint32 {
	out := make([]uint32, len(s.w))
	for i, w := range s.w {
		out[i] = w.pid.Load()
	}
	return out
}

// Tx is a write transaction: BEGIN ... COMMIT on a writer's connection,
// which its goroutine holds as a *sql.Conn (writerConn). Not a *sql.Tx: that binds each prepared statement to the
// transaction anew, and gives every query a goroutine that watches the
// transaction's context; on a held connection a statement is prepared
// once, in or out of a transaction, and a query is only a query.
type Tx struct {
	s *Store
	w *writerConn
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
func (s *Store) exec(w *writerConn, q string, args ...any) (sql.Result, error) {
	if st := s.stmt(w, q); st != nil {
		return st.Exec(args...)
	}
	return w.conn.ExecContext(context.Background(), s.sql(q), args...)
}

// stmt returns the prepared form of q, preparing it the first time; nil
// when preparing fails (the statement then runs unprepared and reports its
// own error) or when the writer keeps enough already.
func (s *Store) stmt(w *writerConn, q string) *sql.Stmt {
	if m := s.seen.Load(); m != nil {
		m.Store(s.sql(q), true)
	}
	if st := w.stmts[q]; st != nil {
		return st
	}
	if len(w.stmts) >= maxWriteStmts {
		return nil // ad hoc statements, not worth keeping
	}
	st, err := w.conn.PrepareContext(context.Background(), s.sql(q))
	if err != nil {
		return nil
	}
	w.stmts[q] = st
	return st
}

// Exec runs a statement.
func (t *Tx) Exec(q string, args ...any) (sql.Result, error) {
	if t.err != nil {
		return nil, t.err
	}
	res, err := t.s.exec(t.w, q, args...)
	return res, t.failed(err)
}

// Query runs a query.
func (t *Tx) Query(q string, args ...any) (*sql.Rows, error) {
	if t.err != nil {
		return nil, t.err
	}
	var rows *sql.Rows
	var err error
	if st := t.s.stmt(t.w, q); st != nil {
		rows, err = st.Query(args...)
	} else {
		rows, err = t.w.conn.QueryContext(context.Background(), t.s.sql(q), args...)
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
	if st := t.s.stmt(t.w, q); st != nil {
		return &Row{t: t, row: st.QueryRow(args...)}
	}
	return &Row{t: t, row: t.w.conn.QueryRowContext(context.Background(), t.s.sql(q), args...)}
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
func (s *Store) begin(w *writerConn) (*Tx, error) {
	_, err := s.exec(w, s.d.begin())
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		// A transaction left open by a commit and a rollback that both
		// failed would refuse every later one: end it, and try once more.
		// (Not for other errors: a BEGIN that waited busy_timeout for
		// another process's write has waited enough.)
		s.exec(w, `ROLLBACK`)
		_, err = s.exec(w, s.d.begin())
	}
	if err != nil {
		return nil, err
	}
	return &Tx{s: s, w: w}, nil
}

func (t *Tx) end(commit bool) error {
	for _, r := range t.rows {
		r.Close()
	}
	t.rows = nil
	if commit {
		_, err := t.s.exec(t.w, `COMMIT`)
		if err == nil {
			return nil
		}
		t.s.exec(t.w, `ROLLBACK`)
		return err
	}
	_, err := t.s.exec(t.w, `ROLLBACK`)
	return err
}

// maxWriteStmts bounds the writer's prepared statements.
const maxWriteStmts = 128

// prepared returns the statement for q on db, preparing it the first time.
func (s *Store) prepared(db *sql.DB, q string) (*sql.Stmt, error) {
	if m := s.seen.Load(); m != nil {
		m.Store(s.sql(q), true)
	}
	key := stmtKey{db, q}
	s.stmtMu.Lock()
	st := s.stmts[key]
	s.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := db.Prepare(s.sql(q))
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
	return s.queryRowOn(ctx, s.rdb, q, args...)
}

func (s *Store) queryRowOn(ctx context.Context, db *sql.DB, q string, args ...any) *sql.Row {
	st, err := s.prepared(db, q)
	if err != nil {
		return db.QueryRowContext(ctx, s.sql(q), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// limitsDB is where the rate limits' buckets are counted.
func (s *Store) limitsDB() *sql.DB {
	if s.bdb != nil {
		return s.bdb
	}
	return s.rdb
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
	// busy_timeout first: the pragmas run in order, and switching to WAL
	// waits for another process opening the same file (serve and a keys
	// command starting together) only once it is set.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
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
	s := newStore(sqliteDialect{}, path, rdb, wdb)
	if err := s.migrate(); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	// The writer's connection, from here on the only user of wdb.
	if err := s.openWriters(1); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// The WAL exists once migrate has written.
	if s.wal, err = os.OpenFile(path+"-wal", os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		s.w[0].conn.Close()
		s.rdb.Close()
		s.wdb.Close()
		return nil, fmt.Errorf("open the write-ahead log: %w", err)
	}
	s.syncWAL = func() error { return syscall.Fdatasync(int(s.wal.Fd())) }
	s.start()
	return s, nil
}

func newStore(d dialect, path string, rdb, wdb *sql.DB) *Store {
	return &Store{d: d, path: path, rdb: rdb, wdb: wdb, ops: make(chan *writeOp, 1024), stop: make(chan struct{}),
		stmts: map[stmtKey]*sql.Stmt{}}
}

// openWriters takes n connections of wdb for the writers.
func (s *Store) openWriters(n int) error {
	for range n {
		c, err := s.wdb.Conn(context.Background())
		if err != nil {
			for _, w := range s.w {
				w.conn.Close()
			}
			s.w = nil
			return err
		}
		w := &writerConn{n: len(s.w), conn: c, stmts: map[string]*sql.Stmt{}}
		w.pid.Store(pgConnPID(c))
		s.w = append(s.w, w)
	}
	s.connected.Store(int32(n))
	return nil
}

// start runs the writers and the syncer.
func (s *Store) start() {
	// Unbuffered: a writer hands over batch N+1 only once the syncer has
	// synced batch N, and the writes that arrive meanwhile make the next
	// batch bigger instead of adding commits.
	s.synced = make(chan committed)
	var writers sync.WaitGroup
	writers.Add(len(s.w))
	for _, w := range s.w {
		go s.writer(w, &writers)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		writers.Wait()
		close(s.synced) // the syncer acknowledges what is left, and ends
	}()
	go s.syncer()
}

func (s *Store) migrate() error {
	if s.d.Name() == "postgres" {
		return s.migratePostgres()
	}
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
	// Version 5: the bind budget's leases (bind_slots), a table of the
	// schema, made for old stores too.
	4: execAll(),
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
// (when another write of its batch fails, the batch runs again; on
// PostgreSQL also when the connection was lost before the commit, on a
// new one): it must set its results afresh each time. A refusal that
// changed nothing is better returned in a variable than as an error,
// which costs the re-run.
func (s *Store) Write(ctx context.Context, fn func(tx *Tx) error) error {
	for try := 1; ; try++ {
		err := s.write(ctx, fn)
		if try == maxConflictTries || !conflict(err) {
			return err
		}
		// Rolled back in a deadlock or a serialization failure with a
		// concurrent transaction (another writer's batch, another
		// instance's): the write runs again, now that the other went on.
	}
}

// maxConflictTries bounds the runs of a write that keeps conflicting.
const maxConflictTries = 5

func (s *Store) write(ctx context.Context, fn func(tx *Tx) error) error {
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
	if errors.Is(err, ErrFull) || errors.Is(err, ErrNotDurable) || errors.Is(err, errBroken) || errors.Is(err, errConnLost) || pgUnavailable(err) {
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

func (s *Store) writer(w *writerConn, done *sync.WaitGroup) {
	defer done.Done()
	batch := make([]*writeOp, 0, maxBatch)
	for {
		if w.conn == nil {
			s.awaitConn(w) // at a stop, commit answers what is left
		}
		var first *writeOp
		select {
		case first = <-s.ops:
		case <-s.stop:
			// Drain what was queued before stopping.
			for {
				select {
				case op := <-s.ops:
					s.commit(w, []*writeOp{op})
				default:
					return
				}
			}
		}
		s.commit(w, s.fill(append(batch[:0], first)))
	}
}

// fill adds to batch the writes queued behind its first, up to maxBatch.
func (s *Store) fill(batch []*writeOp) []*writeOp {
	for len(batch) < maxBatch {
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
}

// awaitConn is a PostgreSQL writer without a connection: it tries again
// when its wait is over, and meanwhile leaves the writes to the writers
// that have one; while none has, it takes them and answers them with the
// error (Unavailable: 503 with Retry-After, and the sender's persist
// tries again), so that no write waits on a server that is down. It
// returns once it has a connection, or when the store stops.
func (s *Store) awaitConn(w *writerConn) {
	for w.conn == nil {
		wait := time.Until(w.retryAt)
		if wait <= 0 {
			s.reconnect(w)
			continue
		}
		// Another writer may lose its connection meanwhile: look again
		// at least every reconnectMin.
		t := time.NewTimer(min(wait, reconnectMin))
		var ops chan *writeOp
		if s.connected.Load() == 0 {
			ops = s.ops
		}
		select {
		case op := <-ops:
			t.Stop()
			s.commit(w, s.fill([]*writeOp{op}))
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
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
				err = fmt.Errorf("%w: syncing %s failed, no further writes are accepted: %v", ErrNotDurable, s.path, err)
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

func (s *Store) commit(w *writerConn, batch []*writeOp) {
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
	s.runLost(w, batch, s.commitBatch)
}

// runLost runs the batch with run (commitBatch, commitEach) on the
// writer's connection, and on a new one when the connection was lost
// before the batch's COMMIT went out.
func (s *Store) runLost(w *writerConn, batch []*writeOp, run func(*writerConn, []*writeOp) error) {
	for try := 1; ; try++ {
		if err := s.reconnect(w); err != nil {
			for _, op := range batch {
				s.answer(op, err)
			}
			return
		}
		lost := run(w, batch)
		if lost == nil {
			return
		}
		// The connection was lost before the batch's COMMIT went out: the
		// server rolled back what the batch ran, and nothing of it was
		// answered. It runs again on a new connection.
		s.drop(w, lost)
		if try == maxLostTries {
			for _, op := range batch {
				s.answer(op, fmt.Errorf("%w during the write, %d times: %w", errConnLost, try, lost))
			}
			return
		}
	}
}

// commitBatch runs the batch and answers its writes; or else returns the
// error that lost the connection before the COMMIT was sent, with nothing
// committed and nothing answered.
func (s *Store) commitBatch(w *writerConn, batch []*writeOp) error {
	if len(batch) > 1 {
		// Optimistically, all in one transaction with no savepoints: a
		// write fails only on a broken database or a bug, and then the
		// batch is rolled back and run again with a savepoint each.
		if done, lost := s.commitAll(w, batch); done || lost != nil {
			return lost
		}
	}
	return s.commitEach(w, batch)
}

// Broken says whether a sync failed: the store refuses writes from then on.
func (s *Store) Broken() bool { return s.broken.Load() }

// commitAll runs the batch in one transaction and commits it; false, with
// everything rolled back, when a write fails. lost is commitBatch's.
func (s *Store) commitAll(w *writerConn, batch []*writeOp) (done bool, lost error) {
	tx, err := s.begin(w)
	if err != nil {
		if s.lost(w, err) {
			return false, err
		}
		// Not again in commitEach: a BEGIN that waited busy_timeout for
		// another process's write has waited enough.
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: begin: %w", err))
		}
		return true, nil
	}
	for _, op := range batch {
		if err := tx.run(op.fn); err != nil {
			tx.end(false)
			if s.lost(w, err) {
				return false, err
			}
			return false, nil
		}
	}
	if lost := s.end(w, tx, batch); lost != nil {
		return false, lost
	}
	return true, nil
}

// end commits the batch's transaction and answers its writes, each with
// errs[i] (nil: all committed) when the commit succeeds. It returns the
// error when the connection was lost before the COMMIT was sent, with
// nothing answered. A COMMIT sent on a connection lost before its answer
// came may have happened: those writes get ErrNotDurable, and run no
// more.
func (s *Store) end(w *writerConn, tx *Tx, batch []*writeOp, errs ...error) error {
	err := tx.end(true)
	if err == nil {
		if errs == nil {
			errs = make([]error, len(batch))
		}
		s.done(batch, errs)
		return nil
	}
	if s.lost(w, err) {
		// pgx says ErrBadConn only of a statement it has not sent, and
		// database/sql ErrConnDone of a connection it had closed before.
		if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
			return err
		}
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: commit: %w: the connection to PostgreSQL was lost while the commit was under way, which may or may not have happened: %w", ErrNotDurable, err))
		}
		s.drop(w, err)
		return nil
	}
	for _, op := range batch {
		s.answer(op, fmt.Errorf("store: commit: %w", err))
	}
	return nil
}

// commitEach runs each write of the batch under its own savepoint, so that
// one failing write does not undo the others, and commits them together.
// Its error is commitBatch's.
func (s *Store) commitEach(w *writerConn, batch []*writeOp) error {
	errs := make([]error, len(batch))
	tx, err := s.begin(w)
	if err != nil {
		if s.lost(w, err) {
			return err
		}
		for _, op := range batch {
			s.answer(op, fmt.Errorf("store: begin: %w", err))
		}
		return nil
	}
	if len(batch) == 1 {
		// Alone in its transaction: no savepoint needed.
		if err := tx.run(batch[0].fn); err != nil {
			tx.end(false)
			if s.lost(w, err) {
				return err
			}
			s.answer(batch[0], err)
			return nil
		}
	} else {
		for i, op := range batch {
			if _, err := s.exec(w, `SAVEPOINT w`); err != nil {
				if s.lost(w, err) {
					tx.end(false)
					return err
				}
				errs[i] = err
				continue
			}
			lost := false
			if errs[i] = tx.run(op.fn); errs[i] != nil {
				if s.lost(w, errs[i]) {
					tx.end(false)
					return errs[i]
				}
				_, err := s.exec(w, `ROLLBACK TO w`)
				lost = err != nil
			}
			if _, err := s.exec(w, `RELEASE w`); err != nil {
				lost = true
			}
			if lost {
				tx.end(false)
				if s.lost(w, nil) {
					return errConnLost // the savepoint went with the connection
				}
				// No savepoint to go back to: the write's error rolled
				// back the whole transaction (SQLite does for some
				// errors), with the writes before it. Carrying on would
				// run the rest outside any transaction. The write fails
				// alone, and the others run again in a new transaction.
				if errs[i] == nil {
					errs[i] = errTxLost
				}
				s.answer(op, errs[i])
				if rest := append(slices.Clone(batch[:i]), batch[i+1:]...); len(rest) > 0 {
					s.runLost(w, rest, s.commitEach)
				}
				return nil
			}
		}
	}
	return s.end(w, tx, batch, errs...)
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
	if s.wal != nil {
		s.wal.Close()
	}
	for _, w := range s.w {
		for _, st := range w.stmts {
			st.Close()
		}
	}
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[stmtKey]*sql.Stmt{}
	s.stmtMu.Unlock()
	if s.wal != nil {
		s.w[0].conn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	for _, w := range s.w {
		if w.conn != nil {
			w.conn.Close()
		}
	}
	var berr error
	if s.bdb != nil {
		berr = s.bdb.Close()
	}
	return errors.Join(s.rdb.Close(), s.wdb.Close(), berr)
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
