package otpd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// openTestStore opens a store in a temporary directory, closed at cleanup.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// insertKey inserts an API key row with this id in tx.
func insertKey(tx *Tx, id string) error {
	_, err := tx.Exec(`INSERT INTO api_keys (id, hash, name, created_at) VALUES (?,?,?,?)`, id, []byte(id), "", 0)
	return err
}

// writeBatch runs n writes, fn(tx, i) the i-th, as one batch: it holds
// the writer while they queue, in order, each before the next starts, and
// returns what each was told.
func writeBatch(t *testing.T, st *Store, n int, fn func(tx *Tx, i int) error) []error {
	t.Helper()
	ctx := context.Background()
	hold, release := make(chan struct{}), make(chan struct{})
	go st.Write(ctx, func(tx *Tx) error { close(hold); <-release; return nil })
	<-hold
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Write(ctx, func(tx *Tx) error { return fn(tx, i) })
		}()
		for deadline := time.Now().Add(10 * time.Second); len(st.ops) < i+1; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("write %d did not queue", i)
			}
		}
	}
	close(release)
	wg.Wait()
	return errs
}

// TestStoreBatchOneWriteFails: writes queued together commit together; one
// that fails is undone alone, and the others (run again after the failed
// optimistic attempt) are committed once, with their results set afresh.
func TestStoreBatchOneWriteFails(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	boom := errors.New("boom")
	const n = 20
	runs := make([]int, n)
	errs := writeBatch(t, st, n, func(tx *Tx, i int) error {
		runs[i]++
		if err := insertKey(tx, fmt.Sprint("k", i)); err != nil {
			return err
		}
		if i == 7 {
			return boom // after its insert: the insert must be undone
		}
		return nil
	})

	for i, err := range errs {
		if i == 7 {
			if !errors.Is(err, boom) {
				t.Errorf("write 7: got %v, want boom", err)
			}
		} else if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if runs[0] < 2 {
		t.Errorf("write 0 ran %d times; the batch should have been run again after write 7 failed", runs[0])
	}
	var count int
	if err := st.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != n-1 {
		t.Errorf("%d rows committed, want %d (all but the failed write's)", count, n-1)
	}
	var k7 int
	st.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE id = 'k7'`).Scan(&k7)
	if k7 != 0 {
		t.Errorf("the failed write's insert was committed")
	}
}

// TestStoreWriteAfterAStrayTransaction: a transaction left open on the
// writer's connection (by a commit and a rollback that both failed) does
// not refuse the writes after it: the next begin ends it and starts anew.
func TestStoreWriteAfterAStrayTransaction(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	if err := st.Write(ctx, func(tx *Tx) error { return insertKey(tx, "before") }); err != nil {
		t.Fatal(err)
	}
	// The writer is idle between writes; leave a transaction open on its
	// connection, with a row in it that must not survive.
	if _, err := st.w[0].conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.w[0].conn.ExecContext(ctx, `INSERT INTO api_keys (id, hash, created_at) VALUES ('stray', x'00', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, func(tx *Tx) error { return insertKey(tx, "after") }); err != nil {
		t.Fatalf("write after a stray transaction: %v", err)
	}
	for id, want := range map[string]int{"before": 1, "after": 1, "stray": 0} {
		var n int
		if err := st.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE id = ?`, id).Scan(&n); err != nil || n != want {
			t.Errorf("key %q: %d rows (%v), want %d", id, n, err, want)
		}
	}
}

// TestStoreWriteThatLosesItsTransaction: a write whose error rolls back
// the whole transaction (as RAISE(ROLLBACK) does, and SQLite itself on
// some errors) fails alone, also when it passes over the error and goes
// on (what it writes after is refused, not committed on its own); the
// writes of its batch before and after it are committed, once each, and
// told so.
func TestStoreWriteThatLosesItsTransaction(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	if err := st.Write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`CREATE TABLE doomed (x INTEGER)`); err != nil {
			return err
		}
		_, err := tx.Exec(`CREATE TRIGGER doom BEFORE INSERT ON doomed BEGIN SELECT RAISE(ROLLBACK, 'doomed'); END`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	doomed := func(i int) bool { return i == 2 || i == 3 }
	errs := writeBatch(t, st, 6, func(tx *Tx, i int) error {
		if err := insertKey(tx, fmt.Sprint("k", i)); err != nil {
			return err
		}
		switch i {
		case 2:
			_, err := tx.Exec(`INSERT INTO doomed VALUES (1)`)
			return err
		case 3:
			tx.Exec(`INSERT INTO doomed VALUES (1)`) // the error passed over
			insertKey(tx, "k3-after")
		}
		return nil
	})
	for i, err := range errs {
		if (err != nil) != doomed(i) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for i := range 6 {
		for _, id := range []string{fmt.Sprint("k", i), fmt.Sprint("k", i, "-after")} {
			var c int
			if err := st.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE id = ?`, id).Scan(&c); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 0, false: 1}[doomed(i) || id != fmt.Sprint("k", i)]; c != want {
				t.Errorf("key %s: %d rows committed, want %d", id, c, want)
			}
		}
	}
	if err := st.Write(ctx, func(tx *Tx) error { return insertKey(tx, "later") }); err != nil {
		t.Errorf("a write after: %v", err)
	}
}

// TestStoreCloseAfterALeakedQuery: a write that never closes its query's
// rows does not keep Close waiting: the rows close with the transaction.
func TestStoreCloseAfterALeakedQuery(t *testing.T) {
	st, err := OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Write(ctx, func(tx *Tx) error {
		if err := insertKey(tx, "a"); err != nil {
			return err
		}
		_, err := tx.Query(`SELECT id FROM api_keys`) // never closed
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, func(tx *Tx) error { return insertKey(tx, "b") }); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting 10 s after a write left its rows open")
	}
}

// TestStoreAcksAfterSync: a write is acknowledged only once the WAL is
// synced, and a failed sync fails the writes it covered and every write
// after it (their durability can no longer be promised).
func TestStoreAcksAfterSync(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	gate := make(chan error)
	st.syncWAL = func() error { return <-gate }

	insert := func(id string) error {
		return st.Write(ctx, func(tx *Tx) error { return insertKey(tx, id) })
	}
	res := make(chan error, 1)
	go func() { res <- insert("a") }()
	select {
	case err := <-res:
		t.Fatalf("write acknowledged (%v) before its sync", err)
	case <-time.After(100 * time.Millisecond):
	}
	gate <- nil
	if err := <-res; err != nil {
		t.Fatalf("write after a good sync: %v", err)
	}

	go func() { res <- insert("b") }()
	gate <- errors.New("EIO")
	if err := <-res; !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("write covered by a failed sync: got %v, want the sync's error", err)
	}
	if err := insert("c"); err == nil {
		t.Fatal("write after a failed sync was accepted")
	}
}

// TestStoreSyncInterrupted: a sync interrupted by a signal (EINTR) is
// tried again, not taken for a failed disk.
func TestStoreSyncInterrupted(t *testing.T) {
	st := openTestStore(t)
	calls := 0
	real := st.syncWAL
	st.syncWAL = func() error {
		calls++
		if calls <= 2 {
			return syscall.EINTR
		}
		return real()
	}
	err := st.Write(context.Background(), func(tx *Tx) error { return insertKey(tx, "k") })
	if err != nil || st.Broken() || calls != 3 {
		t.Fatalf("write: %v, broken %v, %d syncs; want it to succeed on the third", err, st.Broken(), calls)
	}
}

// TestStoreMigratesVersion1: a store of schema version 1 gets the partial
// messages_due index, the orphan receipts' receipt_id column, and the
// current version; a store newer than this build is refused with a clear
// error.
func TestStoreMigratesVersion1(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "otpd.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		`INSERT INTO schema_version VALUES (1)`,
		`CREATE TABLE messages (id TEXT PRIMARY KEY, challenge_id TEXT NOT NULL DEFAULT '', phone TEXT NOT NULL, sender TEXT NOT NULL DEFAULT '', sealed BLOB,
			state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, uncertain INTEGER NOT NULL DEFAULT 0, ref INTEGER NOT NULL DEFAULT 0,
			segments INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, deadline INTEGER NOT NULL, lease_until INTEGER NOT NULL DEFAULT 0,
			stat TEXT NOT NULL DEFAULT '', err TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', key_id TEXT NOT NULL DEFAULT '',
			created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
		`CREATE INDEX messages_due ON messages(state, next_attempt_at)`,
		`CREATE TABLE orphan_receipts (smsc_key TEXT NOT NULL, stat TEXT NOT NULL, err TEXT NOT NULL, state TEXT NOT NULL,
			done_at INTEGER NOT NULL, received_at INTEGER NOT NULL)`,
		`INSERT INTO orphan_receipts VALUES ('42', 'DELIVRD', '000', 'delivered', 0, 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	st, err := OpenSQLite(dir)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var idx, rid string
	st.QueryRow(context.Background(), `SELECT version FROM schema_version`).Scan(&v)
	st.QueryRow(context.Background(), `SELECT sql FROM sqlite_master WHERE name = 'messages_due'`).Scan(&idx)
	ridErr := st.QueryRow(context.Background(), `SELECT receipt_id FROM orphan_receipts WHERE smsc_key = '42'`).Scan(&rid)
	st.Close()
	if v != SchemaVersion || !strings.Contains(idx, "WHERE state = 'queued'") {
		t.Errorf("after migration: version %d, messages_due %q", v, idx)
	}
	if ridErr != nil || rid != "" {
		t.Errorf("after migration: the orphan row's receipt_id %q, %v; want it kept, with an empty id", rid, ridErr)
	}

	db, _ = sql.Open("sqlite", "file:"+filepath.Join(dir, "otpd.db"))
	db.Exec(`UPDATE schema_version SET version = 99`)
	db.Close()
	if _, err := OpenSQLite(dir); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("a store from a newer otpd: got %v", err)
	}
	db, _ = sql.Open("sqlite", "file:"+filepath.Join(dir, "otpd.db"))
	db.Exec(`UPDATE schema_version SET version = 0`)
	db.Close()
	if _, err := OpenSQLite(dir); err == nil || !strings.Contains(err.Error(), "no way from schema version 0") {
		t.Errorf("a store at a version with no upgrade: got %v", err)
	}
}

// BenchmarkUpdateRows: what one row costs in this SQLite when updated by
// key, 64 to a transaction, one statement a row or one statement for all
// 64: the figure behind the README's word that batching rows would not
// halve the store's writer.
//
//	go test ./otpd -run '^$' -bench UpdateRows
func BenchmarkUpdateRows(b *testing.B) {
	for _, per := range []int{1, 64} {
		b.Run("rows_per_statement="+strconv.Itoa(per), func(b *testing.B) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "b.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			const rows = 100000
			key := func(i int) string { return fmt.Sprintf("k%07d", i%rows) }
			if _, err := db.Exec(`CREATE TABLE segs (k TEXT PRIMARY KEY, state TEXT, stat TEXT, done INTEGER) WITHOUT ROWID`); err != nil {
				b.Fatal(err)
			}
			tx, _ := db.Begin()
			for i := 0; i < rows; i++ {
				tx.Exec(`INSERT INTO segs VALUES (?, 'submitted', '', 0)`, key(i))
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			st, err := db.Prepare(`UPDATE segs SET state = ?, stat = ?, done = ? WHERE k IN (?` + strings.Repeat(",?", per-1) + `)`)
			if err != nil {
				b.Fatal(err)
			}
			args := make([]any, 3+per)
			b.ResetTimer()
			for i := 0; i < b.N; i += 64 {
				tx, _ := db.Begin()
				s := tx.Stmt(st)
				for j := 0; j < 64; j += per {
					args[0], args[1], args[2] = "delivered", "DELIVRD", i
					for k := 0; k < per; k++ {
						args[3+k] = key(i + j + k)
					}
					if _, err := s.Exec(args...); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStoreMigratesBindSlots: a store from before the bind budget (SQLite
// version 4, PostgreSQL version 2) gets its table and the current version.
func TestStoreMigratesBindSlots(t *testing.T) {
	for _, k := range []struct {
		name, driver, dsn string
		before            int
		open              func() (*Store, error)
	}{
		{name: "sqlite", before: 4},
		{name: "postgres", before: 2},
	} {
		t.Run(k.name, func(t *testing.T) {
			if k.name == "sqlite" {
				dir := t.TempDir()
				k.driver, k.dsn, k.open = "sqlite", "file:"+filepath.Join(dir, "otpd.db"), func() (*Store, error) { return OpenSQLite(dir) }
			} else {
				url := testPostgresURL(t)
				k.driver, k.dsn, k.open = "pgx", url, func() (*Store, error) { return OpenPostgres(url) }
			}
			st, err := k.open()
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			db, err := sql.Open(k.driver, k.dsn)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`DROP TABLE bind_slots`, fmt.Sprintf(`UPDATE schema_version SET version = %d`, k.before)} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			st, err = k.open()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if have, want := st.SchemaVersions(); have != want {
				t.Fatalf("after migration: version %d, want %d", have, want)
			}
			if _, ok, err := st.claimBindSlot(context.Background(), "a", "h", 0, 1, time.Minute); err != nil || !ok {
				t.Fatalf("claim after migration: %v %v", ok, err)
			}
		})
	}
}
