package otpd

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The PostgreSQL writers' connections lost under them: the server's
// backends terminated (pg_terminate_backend, as an operator or a server
// restart does), or the database refusing connections for a while.

// pgAdmin is a connection pool to OTPD_TEST_POSTGRES_DSN for the tests'
// own statements (terminating backends, refusing connections).
func pgAdmin(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", os.Getenv("OTPD_TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// terminate ends the server processes pids (0s skipped) and waits until
// they are gone from pg_stat_activity.
func terminate(t *testing.T, db *sql.DB, pids []uint32) {
	t.Helper()
	var ids []int64
	for _, p := range pids {
		if p != 0 {
			ids = append(ids, int64(p))
		}
	}
	if len(ids) == 0 {
		t.Fatal("no backend to terminate")
	}
	for _, id := range ids {
		var ok bool
		if err := db.QueryRow(`SELECT pg_terminate_backend($1)`, id).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d): %v, %v", id, ok, err)
		}
	}
	waitGone(t, db, `pid = ANY($1)`, ids)
}

// waitGone waits until no backend of pg_stat_activity matches where.
func waitGone(t *testing.T, db *sql.DB, where string, arg any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE `+where, arg).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends still there 10 s after pg_terminate_backend", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connEvents records a store's writer connection events.
type connEvents struct {
	mu         sync.Mutex
	lost, back []WriterConnEvent
}

func recordConnEvents(st *Store) *connEvents {
	e := &connEvents{}
	st.OnWriterConn(func(ev WriterConnEvent) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if ev.Lost {
			e.lost = append(e.lost, ev)
		} else {
			e.back = append(e.back, ev)
		}
	})
	return e
}

func (e *connEvents) counts() (lost, back int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.lost), len(e.back)
}

// onEveryWriter runs one write on each writer at once: each write waits
// in its transaction until all have started, so each holds a writer of
// its own. fn is each write's statement; the writes' errors are returned.
func onEveryWriter(t *testing.T, st *Store, fn func(tx *Tx, i int) error) []error {
	t.Helper()
	n := len(st.w)
	errs := make([]error, n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		started := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Write(context.Background(), func(tx *Tx) error {
				once.Do(func() { close(started) })
				select {
				case <-release:
				case <-time.After(20 * time.Second):
					return errors.New("the other writes did not start: fewer writers than the store has?")
				}
				return fn(tx, i)
			})
			once.Do(func() { close(started) }) // failed before its transaction
		}()
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatalf("write %d did not start within 20 s", i)
		}
	}
	close(release)
	wg.Wait()
	return errs
}

// TestStoreWritersReconnect: when every writer's PostgreSQL backend is
// terminated, the next writes succeed, on new connections (the writes
// that met a dead connection before their COMMIT run again on a new one,
// the caller sees no error); each writer reports its loss and its
// reconnect once; the writers name themselves in pg_stat_activity; and
// it holds three times over, so the pool frees the lost connections'
// slots for the new ones.
func TestStoreWritersReconnect(t *testing.T) {
	st := mustOpen(t, func() (*Store, error) { return OpenPostgres(testPostgresURL(t)) })
	db := pgAdmin(t)
	ev := recordConnEvents(st)
	n := len(st.w)
	var ids atomic.Int64 // a key per run: a write may run again
	insert := func(tx *Tx, _ int) error { return insertKey(tx, fmt.Sprintf("k%d", ids.Add(1))) }

	for _, err := range onEveryWriter(t, st, insert) {
		if err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	rows, err := db.Query(`SELECT application_name FROM pg_stat_activity WHERE pid = ANY($1)`, pidArg(st.writerPIDs()))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		names = append(names, s)
	}
	rows.Close()
	if len(names) != n || strings.Count(strings.Join(names, ","), "otpd writer") != n {
		t.Fatalf("the writers' application_name: %q, want %d × otpd writer", names, n)
	}

	for round := 1; round <= 3; round++ {
		old := st.writerPIDs()
		terminate(t, db, old)
		// Each writer meets its dead connection at its next BEGIN.
		for i, err := range onEveryWriter(t, st, insert) {
			if err != nil {
				t.Fatalf("round %d: write %d after the writers' backends were terminated: %v", round, i, err)
			}
		}
		now := st.writerPIDs()
		for i := range now {
			if now[i] == 0 || now[i] == old[i] {
				t.Fatalf("round %d: writer %d's backend %d (was %d): want a new one", round, i, now[i], old[i])
			}
		}
		if lost, back := ev.counts(); lost != round*n || back != round*n {
			t.Fatalf("round %d: %d losses and %d reconnects reported, want %d each", round, lost, back, round*n)
		}
		if st.Failing() {
			t.Fatalf("round %d: the store says its writes fail", round)
		}
	}
	ev.mu.Lock()
	for _, e := range ev.lost {
		if e.Err == nil || e.PID == 0 {
			t.Errorf("a loss without its error or its backend: %+v", e)
		}
	}
	for _, e := range ev.back {
		if e.Tries != 1 || e.PID == 0 {
			t.Errorf("a reconnect with a server that is up took %d tries (backend %d), want 1", e.Tries, e.PID)
		}
	}
	ev.mu.Unlock()
	var got int
	if err := st.QueryRow(context.Background(), `SELECT COUNT(*) FROM api_keys`).Scan(&got); err != nil || got != int(ids.Load()) {
		t.Fatalf("%d keys in the store (%v), want the %d written, each once", got, err, int(ids.Load()))
	}
}

const testPassword = "hunter2-not-logged"

func pidArg(pids []uint32) []int64 {
	out := make([]int64, len(pids))
	for i, p := range pids {
		out[i] = int64(p)
	}
	return out
}

// TestStoreWriteLostBeforeCommit: a write whose connection dies under
// one of its statements runs again on a new connection, and the batch
// with it, each write committed once; one that loses it on every run
// fails, Unavailable, after a bounded number of runs. A write whose
// connection dies during its COMMIT may have been committed: it fails
// with ErrNotDurable and is not run again. The writers go on.
func TestStoreWriteLostBeforeCommit(t *testing.T) {
	st := mustOpen(t, func() (*Store, error) { return OpenPostgres(testPostgresURL(t)) })
	ev := recordConnEvents(st)
	ctx := context.Background()
	// The probe table's trigger ends its own session at COMMIT for the
	// row 'at-commit' (a constraint trigger deferred to the commit).
	write(t, st, func(tx *Tx) error {
		for _, q := range []string{
			`CREATE TABLE probe (id TEXT PRIMARY KEY)`,
			`CREATE FUNCTION probe_kill() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$`,
			`CREATE CONSTRAINT TRIGGER probe_at_commit AFTER INSERT ON probe DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW WHEN (NEW.id = 'at-commit') EXECUTE FUNCTION probe_kill()`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return err
			}
		}
		return nil
	})
	kill := func(tx *Tx) error {
		_, err := tx.Exec(`SELECT pg_terminate_backend(pg_backend_pid())`)
		return err
	}

	// Killed on its first run: runs again, and commits once.
	var runs atomic.Int32
	err := st.Write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`INSERT INTO probe (id) VALUES ('once')`); err != nil {
			return err
		}
		if runs.Add(1) == 1 {
			return kill(tx)
		}
		return nil
	})
	if err != nil || runs.Load() != 2 {
		t.Fatalf("a write whose connection died under its first run: %v after %d runs, want success after 2", err, runs.Load())
	}

	// In a batch: the batch runs again; every write commits once.
	var wg sync.WaitGroup
	var killed atomic.Bool
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Write(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(`INSERT INTO probe (id) VALUES (?)`, fmt.Sprintf("b%d", i)); err != nil {
					return err
				}
				if i == 7 && killed.CompareAndSwap(false, true) {
					return kill(tx)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d of the batches: %v", i, err)
		}
	}

	// Killed on every run: fails, after maxLostTries runs.
	runs.Store(0)
	err = st.Write(ctx, func(tx *Tx) error { runs.Add(1); return kill(tx) })
	if err == nil || !Unavailable(err) || runs.Load() != maxLostTries {
		t.Fatalf("a write that kills its connection each time: %v (unavailable %v) after %d runs, want an Unavailable error after %d", err, Unavailable(err), runs.Load(), maxLostTries)
	}

	// Killed at COMMIT: the outcome is unknown; not run again.
	runs.Store(0)
	err = st.Write(ctx, func(tx *Tx) error {
		runs.Add(1)
		_, err := tx.Exec(`INSERT INTO probe (id) VALUES ('at-commit')`)
		return err
	})
	if !errors.Is(err, ErrNotDurable) || !Unavailable(err) || runs.Load() != 1 {
		t.Fatalf("a write whose connection died in its COMMIT: %v after %d runs, want ErrNotDurable after 1", err, runs.Load())
	}

	// The writers go on, and nothing was committed twice (the keys would
	// have refused it) or lost.
	write(t, st, func(tx *Tx) error { _, err := tx.Exec(`INSERT INTO probe (id) VALUES ('after')`); return err })
	var n int
	if err := st.QueryRow(ctx, `SELECT COUNT(*) FROM probe WHERE id <> 'at-commit'`).Scan(&n); err != nil || n != 1+len(errs)+1 {
		t.Fatalf("%d probe rows (%v), want %d", n, err, 1+len(errs)+1)
	}
	if lost, back := ev.counts(); lost < 1+1+maxLostTries+1 || back < lost-1 {
		t.Fatalf("%d losses and %d reconnects reported", lost, back)
	}
}

// TestStoreWritersWaitForTheServer: while the database refuses
// connections, writes whose writer lost its connection fail fast with an
// Unavailable error (503 store_unavailable) and the store says it is
// failing; once it accepts them again, the writers reconnect within
// their backoff and the writes succeed.
func TestStoreWritersWaitForTheServer(t *testing.T) {
	dsn := os.Getenv("OTPD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("OTPD_TEST_POSTGRES_DSN is not set")
	}
	db := pgAdmin(t)
	// A database of its own, to refuse connections to without touching
	// the other tests'.
	b := make([]byte, 6)
	rand.Read(b)
	name := "otpd_test_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	i := strings.LastIndex(dsn, "/")
	url := dsn[:i+1] + name + dsn[i+1+strings.IndexAny(dsn[i+1:]+"?", "?"):]
	st := mustOpen(t, func() (*Store, error) { return OpenPostgres(url) })
	ev := recordConnEvents(st)
	ctx := context.Background()
	write(t, st, func(tx *Tx) error { return insertKey(tx, "before") })

	if _, err := db.Exec(`ALTER DATABASE ` + name + ` WITH ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	allowed := false
	allow := func() {
		if !allowed {
			allowed = true
			if _, err := db.Exec(`ALTER DATABASE ` + name + ` WITH ALLOW_CONNECTIONS true`); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer allow()
	terminate(t, db, st.writerPIDs())
	// Each writer meets its dead connection and cannot get another. The
	// writes that meet them fail fast, Unavailable.
	var failed int
	for i := range 10 {
		start := time.Now()
		err := st.Write(ctx, func(tx *Tx) error { return insertKey(tx, fmt.Sprintf("during%d", i)) })
		if err == nil {
			t.Fatalf("write %d succeeded on a database that refuses connections", i)
		}
		if !Unavailable(err) || !errors.Is(err, errConnLost) {
			t.Fatalf("write %d while the database refuses connections: %v, want errConnLost (Unavailable)", i, err)
		}
		if d := time.Since(start); d > reconnectTimeout+reconnectMax {
			t.Fatalf("write %d took %v to fail", i, d)
		}
		failed++
	}
	if !st.Failing() {
		t.Fatal("the store does not say it is failing after 10 failed writes")
	}
	if lost, back := ev.counts(); lost != len(st.w) || back != 0 {
		t.Fatalf("%d losses and %d reconnects reported while the database refuses connections, want %d and 0", lost, back, len(st.w))
	}

	allow()
	deadline := time.Now().Add(reconnectTimeout + 2*reconnectMax)
	for i := 0; ; i++ {
		err := st.Write(ctx, func(tx *Tx) error { return insertKey(tx, fmt.Sprintf("after%d", i)) })
		if err == nil {
			break
		}
		if !Unavailable(err) || time.Now().After(deadline) {
			t.Fatalf("write %d after the database accepts connections again: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every writer is back within its backoff, with no write to wake it.
	for time.Now().Before(deadline) {
		if _, back := ev.counts(); back == len(st.w) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lost, back := ev.counts(); lost != len(st.w) || back != len(st.w) {
		t.Fatalf("%d losses and %d reconnects reported, want %d each", lost, back, len(st.w))
	}
	for i, err := range onEveryWriter(t, st, func(tx *Tx, i int) error { return insertKey(tx, fmt.Sprintf("each%d", i)) }) {
		if err != nil {
			t.Fatalf("write %d on every writer: %v", i, err)
		}
	}
	if st.Failing() {
		t.Fatal("the store says it is failing after writes succeeded")
	}
}

// TestStoreLeasesRecover: the bind budget's lease statements run on the
// readers' pool, which drops connections that died: after the store's
// backends are all terminated, a renewal succeeds at the latest on its
// second try (the budget renews every L/3 and loses a permit only after
// L/2 without a renewal).
func TestStoreLeasesRecover(t *testing.T) {
	b := make([]byte, 6)
	rand.Read(b)
	app := "otpd_test_" + hex.EncodeToString(b)
	st := mustOpen(t, func() (*Store, error) {
		return OpenPostgres(testPostgresURL(t) + "&application_name=" + app)
	})
	db := pgAdmin(t)
	ctx := context.Background()
	slot, ok, err := st.claimBindSlot(ctx, "acct", "me/1", 0, 2, time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
		t.Fatal(err)
	}
	waitGone(t, db, `application_name = $1`, app)
	for try := 1; ; try++ {
		ok, err := st.renewBindSlot(ctx, "acct", "me/1", slot, time.Minute)
		if err == nil && ok {
			break
		}
		if try == 2 {
			t.Fatalf("renewal after the backends were terminated: %v %v", ok, err)
		}
	}
	write(t, st, func(tx *Tx) error { return insertKey(tx, "after") })
}

// TestDaemonWritesAfterWriterBackendsTerminated: a daemon on PostgreSQL
// whose writers' backends are terminated keeps taking POST /v1/otp (the
// first request may get 503 store_unavailable; then 201s), sends the
// codes, logs each writer's loss and reconnect, and counts the reconnects.
func TestDaemonWritesAfterWriterBackendsTerminated(t *testing.T) {
	// A password in the URL (the test server trusts, and ignores it),
	// which no log line may show.
	u, err := neturl.Parse(testPostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(u.User.Username(), testPassword)
	url := u.String()
	core, logs := observer.New(zap.InfoLevel)
	cfg := NewConfig()
	cfg.DataDir = t.TempDir()
	cfg.Database = url
	cfg.HTTP.Addr, cfg.Sim.HTTPAddr, cfg.Sim.DLRDelay = "127.0.0.1:0", "127.0.0.1:0", "10ms"
	cfg.Sender.RetryMin, cfg.Sender.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	d, err := Start(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	if strings.Contains(d.store.Where(), testPassword) {
		t.Fatalf("the store is shown as %s", d.store.Where())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Pool().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, d)
	db := pgAdmin(t)
	create(t, c, "+4915112347000")

	for round := range 2 {
		terminate(t, db, d.store.writerPIDs())
		deadline := time.Now().Add(10 * time.Second)
		created := 0
		for i := 0; created < 8; i++ {
			phone := fmt.Sprintf("+49151123471%d%d", round, i%10)
			start := time.Now()
			st, body, h := c.do("POST", "/v1/otp", map[string]any{"phone": phone})
			switch {
			case st == 201:
				created++
				smsCode(t, d, phone, start) // the sender's writes go on too
			case created == 0 && st == 503 && body["error"].(map[string]any)["code"] == "store_unavailable" && h.Get("Retry-After") != "":
				if time.Now().After(deadline) {
					t.Fatalf("round %d: still 503 after 10 s", round)
				}
			default:
				t.Fatalf("round %d: POST /v1/otp %d after the writers' backends were terminated (%d created): %d %v", round, i, created, st, body)
			}
		}
	}
	lost := logs.FilterMessageSnippet("store writer lost its PostgreSQL connection").All()
	back := logs.FilterMessageSnippet("store writer reconnected to PostgreSQL").All()
	if len(lost) == 0 || len(back) == 0 || len(back) > len(lost) {
		t.Fatalf("%d loss and %d reconnect log lines", len(lost), len(back))
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), testPassword) {
			t.Fatalf("a log line names the database's password: %s %v", e.Message, e.ContextMap())
		}
	}
	for _, e := range lost {
		if e.Level != zap.WarnLevel || e.ContextMap()["error"] == nil || e.ContextMap()["database"] != d.store.Where() {
			t.Errorf("loss logged as %v %v", e.Level, e.ContextMap())
		}
	}
	for _, e := range back {
		if e.Level != zap.InfoLevel {
			t.Errorf("reconnect logged at %v", e.Level)
		}
	}
	if n := counter(t, d, "otpd_store_reconnects_total", nil); int(n) != len(back) {
		t.Fatalf("otpd_store_reconnects_total %v, want the %d reconnects logged", n, len(back))
	}
}
