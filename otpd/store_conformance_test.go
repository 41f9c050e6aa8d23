package otpd

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The store's conformance suite: the same statements against SQLite and
// PostgreSQL (OTPD_TEST_POSTGRES_DSN). The rest of the package's tests
// run on PostgreSQL too with OTPD_TEST_STORE=postgres (make test does).

type storeKind struct {
	name string
	open func(t *testing.T) (open func() *Store)
}

// storeKinds gives, per engine, a function that opens one more store on
// the same data (several instances of otpd on one database).
func storeKinds() []storeKind {
	return []storeKind{
		{"sqlite", func(t *testing.T) func() *Store {
			dir := t.TempDir()
			return func() *Store { return mustOpen(t, func() (*Store, error) { return OpenSQLite(dir) }) }
		}},
		{"postgres", func(t *testing.T) func() *Store {
			url := testPostgresURL(t)
			return func() *Store { return mustOpen(t, func() (*Store, error) { return OpenPostgres(url) }) }
		}},
	}
}

func mustOpen(t *testing.T, open func() (*Store, error)) *Store {
	t.Helper()
	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func eachStore(t *testing.T, fn func(t *testing.T, open func() *Store)) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) { fn(t, k.open(t)) })
	}
}

func testMessage(id string, now time.Time) *Message {
	return &Message{ID: id, Phone: "+4915112345678", Sealed: []byte{1, 2, 3}, State: StateQueued, Ref: 7,
		NextAttemptAt: now, Deadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
}

func write(t *testing.T, st *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := st.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// TestStoreConformance runs a message's whole life through the statements:
// a challenge and its message, the claim, a receipt that beats its
// segment, the segment, the receipt applied, the read of both.
func TestStoreConformance(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *Store) {
		st := open()
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		if have, want := st.SchemaVersions(); have != want || have == 0 {
			t.Fatalf("schema version %d, want %d", have, want)
		}
		c := &Challenge{ID: "ch_1", Phone: "+4915112345678", CodeHMAC: []byte("mac"), Status: StatusPending, MaxAttempts: 3, Sends: 1, Length: 6,
			MessageID: "msg_1", CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute), LastSentAt: now, UpdatedAt: now}
		write(t, st, func(tx *Tx) error {
			if err := insertChallenge(tx, c); err != nil {
				return err
			}
			return insertMessage(tx, testMessage("msg_1", now))
		})
		got, err := st.Challenge(ctx, "ch_1")
		if err != nil || got.Phone != c.Phone || string(got.CodeHMAC) != "mac" || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Fatalf("challenge read back: %+v, %v", got, err)
		}
		if _, err := st.Challenge(ctx, "ch_none"); err != ErrNotFound {
			t.Fatalf("missing challenge: %v", err)
		}
		var claimed []*Message
		write(t, st, func(tx *Tx) (err error) {
			claimed, err = claimDue(tx, ms(now), ms(now.Add(time.Minute)), 10)
			return err
		})
		if len(claimed) != 1 || claimed[0].State != StateSending || claimed[0].Attempts != 1 || string(claimed[0].Sealed) != "\x01\x02\x03" {
			t.Fatalf("claimed %+v", claimed)
		}
		// The receipt comes before the segment is recorded: kept, then
		// applied with it.
		write(t, st, func(tx *Tx) error {
			return insertOrphan(tx, "abc", orphanReceipt{stat: "DELIVRD", state: StateDelivered, done: ms(now), id: "ABC"}, ms(now))
		})
		if n, err := st.countOrphans(ctx); err != nil || n != 1 {
			t.Fatalf("orphans: %d, %v", n, err)
		}
		write(t, st, func(tx *Tx) error {
			if err := putSegment(tx, "msg_1", 1, "ABC", "abc", ms(now)); err != nil {
				return err
			}
			if err := markSubmitted(tx, claimed[0], 1, ms(now)); err != nil {
				return err
			}
			os, err := orphansFor(tx, "abc")
			if err != nil || len(os) != 1 {
				return fmt.Errorf("orphans for abc: %v, %v", os, err)
			}
			hits, err := segmentsByKey(tx, []string{"abc", "x"})
			if err != nil || len(hits) != 1 || hits[0].segments != 1 {
				return fmt.Errorf("segments by key: %+v, %v", hits, err)
			}
			if err := setSegmentState(tx, "msg_1", 1, StateDelivered, "DELIVRD", "000", ms(now)); err != nil {
				return err
			}
			if err := settleMessage(tx, "msg_1", StateDelivered, "DELIVRD", "000", ms(now)); err != nil {
				return err
			}
			n, err := dropOrphans(tx, "abc", "")
			if err == nil && n != 1 {
				err = fmt.Errorf("dropped %d orphans", n)
			}
			return err
		})
		m, err := st.Message(ctx, "msg_1")
		if err != nil || m.State != StateDelivered || m.Sealed != nil || len(m.Parts) != 1 || m.Parts[0].SMSCID != "ABC" || m.Parts[0].Stat != "DELIVRD" {
			t.Fatalf("message read back: %+v, %v", m, err)
		}
		// The same segment again (a resubmit) replaces its receipt's state.
		write(t, st, func(tx *Tx) error { return putSegment(tx, "msg_1", 1, "DEF", "def", ms(now)) })
		if m, _ := st.Message(ctx, "msg_1"); m.Parts[0].SMSCID != "DEF" || m.Parts[0].Stat != "" || m.Parts[0].State != StateSubmitted {
			t.Fatalf("segment replaced: %+v", m.Parts)
		}
		// Upserts and the sweep's row ids.
		write(t, st, func(tx *Tx) error {
			for _, n := range []int{1, 2} {
				if err := setPhoneFailures(tx, "+4915112345678", n, ms(now)); err != nil {
					return err
				}
			}
			return insertOrphan(tx, "old", orphanReceipt{stat: "DELIVRD", state: StateDelivered}, ms(now.Add(-time.Hour)))
		})
		if n, _, err := st.phoneFailures(ctx, "+4915112345678"); err != nil || n != 2 {
			t.Fatalf("phone failures %d, %v", n, err)
		}
		var swept int64
		write(t, st, func(tx *Tx) (err error) { swept, err = sweepOrphans(tx, ms(now.Add(-time.Minute)), 10); return err })
		if swept != 1 {
			t.Fatalf("swept %d orphans", swept)
		}
		if err := st.SetMeta(ctx, "k", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := st.SetMeta(ctx, "k", "v2"); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := st.Meta(ctx, "k"); v != "v2" || !ok || err != nil {
			t.Fatalf("meta %q %v %v", v, ok, err)
		}
	})
}

// TestStoreInstancesShareTheOutbox has two stores on one database claim
// the same outbox at once: every message is claimed once (SKIP LOCKED on
// PostgreSQL, the one writer on SQLite).
func TestStoreInstancesShareTheOutbox(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *Store) {
		a, b := open(), open()
		now := time.Now().UTC()
		const n = 300
		write(t, a, func(tx *Tx) error {
			for i := range n {
				if err := insertMessage(tx, testMessage(fmt.Sprintf("msg_%03d", i), now)); err != nil {
					return err
				}
			}
			return nil
		})
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for _, st := range []*Store{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					var got []*Message
					if err := st.Write(context.Background(), func(tx *Tx) (err error) {
						got, err = claimDue(tx, ms(now), ms(now.Add(time.Minute)), 7)
						return err
					}); err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, m := range got {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("%d of %d messages claimed", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Fatalf("%s claimed %d times", id, k)
			}
		}
	})
}

// TestStoreInstancesCountAttempts has two stores verify one challenge at
// once: the read for update makes every attempt count (no lost update
// would let a guesser past max attempts by racing two instances).
func TestStoreInstancesCountAttempts(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *Store) {
		a, b := open(), open()
		now := time.Now().UTC()
		write(t, a, func(tx *Tx) error {
			return insertChallenge(tx, &Challenge{ID: "ch_1", Phone: "+4915112345678", CodeHMAC: []byte("x"), Status: StatusPending, MaxAttempts: 1000,
				Length: 6, CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSentAt: now, UpdatedAt: now})
		})
		const per = 40
		var wg sync.WaitGroup
		for _, st := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range per {
					if err := st.Write(context.Background(), func(tx *Tx) error {
						c, err := txChallenge(tx, "ch_1")
						if err != nil {
							return err
						}
						return recordAttempt(tx, c.ID, c.Attempts+1, StatusPending, ms(now))
					}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		c, err := a.Challenge(context.Background(), "ch_1")
		if err != nil || c.Attempts != 2*per {
			t.Fatalf("attempts %d, want %d (%v)", c.Attempts, 2*per, err)
		}
	})
}

// TestStoreMigrationsRace opens four stores on a new database at once:
// the schema is made once (the advisory lock on PostgreSQL), and
// migrate --status reads it.
func TestStoreMigrationsRace(t *testing.T) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			var dir, url string
			if k.name == "sqlite" {
				dir = t.TempDir()
			} else {
				url = testPostgresURL(t)
			}
			before, err := ReadSchemaStatus(dir, url)
			if err != nil || !strings.Contains(before, "creates it") {
				t.Fatalf("status before: %q, %v", before, err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := OpenStore(dir, url)
					if err == nil {
						st.Close()
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			after, err := ReadSchemaStatus(dir, url)
			if err != nil || !strings.Contains(after, "up to date") {
				t.Fatalf("status after: %q, %v", after, err)
			}
		})
	}
}

func TestPostgresRewrite(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT a FROM t WHERE x = ? AND y = ?`:                      `SELECT a FROM t WHERE x = $1 AND y = $2`,
		`UPDATE t SET a = ?2 WHERE id = ?1 AND b = ?2`:               `UPDATE t SET a = $2 WHERE id = $1 AND b = $2`,
		`SELECT '?' FROM t WHERE a = ? AND b = 'it''s ?'`:            `SELECT '?' FROM t WHERE a = $1 AND b = 'it''s ?'`,
		`DELETE FROM o WHERE rowid IN (SELECT rowid FROM o LIMIT ?)`: `DELETE FROM o WHERE ctid IN (SELECT ctid FROM o LIMIT $1)`,
	} {
		if got := (postgresDialect{}).rewrite(in); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (sqliteDialect{}).rewrite(`SELECT id FROM m LIMIT ? FOR UPDATE SKIP LOCKED`); got != `SELECT id FROM m LIMIT ?` {
		t.Errorf("sqlite rewrite: %q", got)
	}
	if got := redactURL("postgres://otpd:s3cret@db:5432/otpd"); strings.Contains(got, "s3cret") {
		t.Errorf("redactURL kept the password: %s", got)
	}
}

// TestStoreBindSlots: the bind budget's leases. Two instances claim
// distinct slots up to the budget, renew only their own, release them; an
// expired lease is taken over by another instance, and its old holder's
// renewal no longer returns it (nor an expired one nobody took).
func TestStoreBindSlots(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *Store) {
		a, b := open(), open()
		ctx := context.Background()
		const acct, hour = "otp@smsc:2775", time.Hour
		claim := func(st *Store, holder string, lo, hi int, lease time.Duration) int {
			t.Helper()
			slot, ok, err := st.claimBindSlot(ctx, acct, holder, lo, hi, lease)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return -1
			}
			return slot
		}
		renew := func(st *Store, holder string, slot int, lease time.Duration) bool {
			t.Helper()
			ok, err := st.renewBindSlot(ctx, acct, holder, slot, lease)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		for i, want := range []struct {
			st     *Store
			holder string
			slot   int
		}{{a, "A", 0}, {a, "A", 1}, {b, "B", 2}, {b, "B", -1}, {a, "A", -1}} {
			if got := claim(want.st, want.holder, 0, 3, hour); got != want.slot {
				t.Fatalf("claim %d by %s: slot %d, want %d", i+1, want.holder, got, want.slot)
			}
		}
		if slot, ok, err := b.claimBindSlot(ctx, "otp@other:2775", "B", 0, 3, hour); err != nil || !ok || slot != 0 {
			t.Fatalf("another account's first claim: %d %v %v", slot, ok, err)
		}
		if got := claim(b, "B", 2, 3, hour); got != -1 {
			t.Fatalf("claim in [2, 3) with 2 held: %d", got)
		}
		if !renew(a, "A", 0, hour) || !renew(a, "A", 1, hour) || renew(a, "A", 2, hour) {
			t.Fatal("A renews slots 0 and 1, not B's 2")
		}
		if err := a.releaseBindSlot(ctx, acct, "A", 1); err != nil {
			t.Fatal(err)
		}
		if err := b.releaseBindSlot(ctx, acct, "B", 0); err != nil { // not B's: nothing happens
			t.Fatal(err)
		}
		if got := claim(b, "B2", 0, 3, hour); got != 1 {
			t.Fatalf("claim after A released slot 1: %d", got)
		}
		if renew(a, "A", 1, hour) {
			t.Fatal("A renews the slot it released")
		}
		// A's lease of slot 0 runs out; B takes the slot over.
		if !renew(a, "A", 0, time.Millisecond) {
			t.Fatal("A cannot renew slot 0")
		}
		time.Sleep(20 * time.Millisecond)
		if got := claim(b, "B3", 0, 3, hour); got != 0 {
			t.Fatalf("claim of the expired slot 0: %d", got)
		}
		if renew(a, "A", 0, hour) {
			t.Fatal("A renews slot 0 after B took it over")
		}
		if !renew(b, "B3", 0, hour) || !renew(b, "B2", 1, hour) || !renew(b, "B", 2, hour) {
			t.Fatal("B cannot renew its slots")
		}
		slots, err := a.BindSlots(ctx, acct)
		if err != nil || len(slots) != 3 || slots[0].Holder != "B3" || slots[2].Slot != 2 || time.Until(slots[0].ExpiresAt) < 50*time.Minute {
			t.Fatalf("slots %+v, %v", slots, err)
		}
		// An expired lease nobody took is not renewed either.
		if ok, err := b.renewBindSlot(ctx, "otp@other:2775", "B", 0, time.Millisecond); err != nil || !ok {
			t.Fatalf("renewal of the other account's slot: %v %v", ok, err)
		}
		time.Sleep(20 * time.Millisecond)
		if ok, err := b.renewBindSlot(ctx, "otp@other:2775", "B", 0, hour); err != nil || ok {
			t.Fatalf("renewal of an expired lease: %v %v", ok, err)
		}
	})
}

// TestPostgresLimitsCommitAsync: the rate limits' buckets commit without
// waiting for the WAL flush (their rows are the hottest of the store),
// and nothing else does.
func TestPostgresLimitsCommitAsync(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *Store) {
		st := open()
		if st.Dialect() != "postgres" {
			t.Skip("PostgreSQL's synchronous_commit")
		}
		ctx := context.Background()
		for db, want := range map[*sql.DB]string{st.limitsDB(): "off", st.rdb: "on"} {
			var got string
			if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&got); err != nil || got != want {
				t.Errorf("synchronous_commit %q, %v; want %q", got, err, want)
			}
		}
		var got string
		write(t, st, func(tx *Tx) error { return tx.QueryRow(`SHOW synchronous_commit`).Scan(&got) })
		if got != "on" {
			t.Errorf("the writers' synchronous_commit is %q", got)
		}
	})
}
