package otpd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStoreBatchOneWriteFails: writes queued together commit together; one
// that fails is undone alone, and the others (run again after the failed
// optimistic attempt) are committed once, with their results set afresh.
func TestStoreBatchOneWriteFails(t *testing.T) {
	st, err := OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	boom := errors.New("boom")

	// Hold the writer so that the writes below queue into one batch.
	hold, release := make(chan struct{}), make(chan struct{})
	go st.Write(ctx, func(tx *Tx) error { close(hold); <-release; return nil })
	<-hold

	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	runs := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Write(ctx, func(tx *Tx) error {
				runs[i]++
				if _, err := tx.Exec(`INSERT INTO api_keys (id, hash, name, created_at) VALUES (?,?,?,?)`,
					fmt.Sprint("k", i), []byte(fmt.Sprint("h", i)), "", 0); err != nil {
					return err
				}
				if i == 7 {
					return boom // after its insert: the insert must be undone
				}
				return nil
			})
		}()
	}
	// Let every write queue up behind the held one.
	for deadline := time.Now().Add(10 * time.Second); len(st.ops) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes queued", len(st.ops), n)
		}
	}
	close(release)
	wg.Wait()

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

// TestStoreAcksAfterSync: a write is acknowledged only once the WAL is
// synced, and a failed sync fails the writes it covered and every write
// after it (their durability can no longer be promised).
func TestStoreAcksAfterSync(t *testing.T) {
	st, err := OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	gate := make(chan error)
	st.sync = func() error { return <-gate }

	insert := func(id string) error {
		return st.Write(ctx, func(tx *Tx) error {
			_, err := tx.Exec(`INSERT INTO api_keys (id, hash, name, created_at) VALUES (?,?,?,?)`, id, []byte(id), "", 0)
			return err
		})
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
	if err := <-res; err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("write covered by a failed sync: got %v, want the sync's error", err)
	}
	if err := insert("c"); err == nil {
		t.Fatal("write after a failed sync was accepted")
	}
}
