package otpd

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
)

// budgetSim is a simulator whose account "otp" refuses a bind beyond
// maxBinds at once, and the most sessions of that account it has had
// bound at once (sampled every 2 ms).
func budgetSim(t *testing.T, maxBinds int) (*simulator.Simulator, func() int) {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0",
		Accounts: []simulator.Account{{SystemID: "otp", Password: "secret", MaxBinds: maxBinds}}})
	if err != nil {
		t.Fatal(err)
	}
	var most atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			n := int64(0)
			for _, s := range sim.Sessions() {
				if s.SystemID == "otp" {
					n++
				}
			}
			if n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait(); sim.Close(context.Background()) }) // after the daemons'
	return sim, func() int { return int(most.Load()) }
}

// TestBindBudgetInstances: two instances on one PostgreSQL store, 2 binds
// each, share an account's budget of 3 sessions: together they hold 3,
// and the SMSC (which refuses a 4th) never sees more. An instance whose
// database becomes unreachable drops its binds before its leases run out,
// and the other takes the slots over once they have; an instance that
// shuts down gives its slots back at once.
func TestBindBudgetInstances(t *testing.T) {
	url := testPostgresURL(t)
	sim, most := budgetSim(t, 3)
	key := filepath.Join(t.TempDir(), "secret.key")
	shared := func(c *Config) {
		c.Database, c.OTP.HMACKeyFile = url, key
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.Password = sim.Addr(), "otp", "secret"
		c.SMSC.Binds, c.SMSC.BindBudget = 2, 3
		c.SMSC.BindLease, c.SMSC.ResponseTimeout = 3*time.Second, time.Second // renewed every 1s, dropped 1.5s after the last renewal
		c.SMSC.ReconnectMin, c.SMSC.ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
	}
	a, b := testDaemon(t, shared), testDaemon(t, shared)
	up := func(d *Daemon) int { return d.Pool().Stats().BindsUp }
	account := func() int {
		n := 0
		for _, s := range sim.Sessions() {
			if s.SystemID == "otp" {
				n++
			}
		}
		return n
	}
	eventually(t, "3 sessions over both instances", func() bool {
		return account() == 3 && up(a)+up(b) == 3 && a.budget.heldCount()+b.budget.heldCount() == 3
	})
	time.Sleep(2500 * time.Millisecond) // two renewals and more: the leases hold
	if account() != 3 || up(a)+up(b) != 3 {
		t.Fatalf("after renewals: %d sessions at the SMSC, %d + %d binds up", account(), up(a), up(b))
	}
	more, less := a, b
	if up(b) == 2 {
		more, less = b, a
	}
	if up(more) != 2 || up(less) != 1 {
		t.Fatalf("binds up %d and %d, want 2 and 1", up(more), up(less))
	}

	// more's database goes away: it unbinds both, and less takes them
	// over only once their leases ran out.
	cut := time.Now()
	more.budget.unreachable.Store(true)
	eventually(t, "the instance without its database unbinds", func() bool { return up(more) == 0 && account() == 1 })
	if d := time.Since(cut); d >= 3*time.Second {
		t.Errorf("binds dropped %v after the database went away: not before the leases could run out (3s)", d)
	}
	eventually(t, "the other instance takes the slots over", func() bool { return up(less) == 2 && account() == 2 })
	if d := time.Since(cut); d < 2*time.Second {
		t.Errorf("slots taken over %v after the database went away: before the leases (3s from the last renewal) ran out", d)
	}

	// Back: more takes the one free slot; less shuts down, and more takes
	// its slot at once (released, not left to expire).
	more.budget.unreachable.Store(false)
	eventually(t, "the instance whose database is back binds the free slot", func() bool { return up(more) == 1 && account() == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := less.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	eventually(t, "the remaining instance takes a released slot", func() bool { return up(more) == 2 && account() == 2 })
	if d := time.Since(closed); d >= 2*time.Second {
		t.Errorf("a released slot taken %v after the shutdown: left to expire (2s at the earliest), not released?", d)
	}
	if more.budget.heldCount() != 2 {
		t.Errorf("slots held: %d, want 2", more.budget.heldCount())
	}
	slots, err := more.store.BindSlots(ctx, "otp@"+sim.Addr())
	if err != nil || len(slots) != 2 || !strings.HasPrefix(slots[0].Holder, more.budget.instance+"/") || !strings.HasPrefix(slots[1].Holder, more.budget.instance+"/") {
		t.Errorf("leases %+v, %v; want 2, both of the remaining instance", slots, err)
	}
	if m := most(); m > 3 {
		t.Errorf("the SMSC saw %d sessions of the account at once; the budget is 3", m)
	}
	for _, d := range []*Daemon{a, b} {
		if st := d.Pool().Stats(); st.BindFailures != 0 {
			t.Errorf("%d binds refused by the SMSC (over its limit of 3)", st.BindFailures)
		}
	}
}

// TestBindBudgetCapsBindsOnSQLite: on SQLite (one instance) the budget
// cuts smsc.binds: 3 transceivers within a budget of 2 bind 2; tx+rx pairs
// within a budget of 3 bind one pair; a budget of 1 cannot hold a pair.
// And the configuration refuses a lease too short for its response timeout.
func TestBindBudgetCapsBindsOnSQLite(t *testing.T) {
	sim, most := budgetSim(t, 0)
	real := func(binds, budget int, mode string) func(*Config) {
		return func(c *Config) {
			c.Database = "" // SQLite, whatever OTPD_TEST_STORE says
			c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.Password = sim.Addr(), "otp", "secret"
			c.SMSC.Binds, c.SMSC.BindBudget, c.SMSC.BindMode = binds, budget, mode
		}
	}
	d := testDaemon(t, real(3, 2, "trx"))
	eventually(t, "2 binds up", func() bool { return d.Pool().Stats().BindsUp == 2 })
	time.Sleep(300 * time.Millisecond)
	if st := d.Pool().Stats(); st.BindsUp+st.BindsDown != 2 || most() != 2 {
		t.Fatalf("3 binds in a budget of 2: pool %+v, %d at the SMSC at most", st, most())
	}
	if d.budget != nil {
		t.Fatal("leases on SQLite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	d = testDaemon(t, real(2, 3, "tx+rx"))
	eventually(t, "a pair up", func() bool { return d.Pool().Stats().BindsUp == 2 })
	if st := d.Pool().Stats(); st.BindsUp+st.BindsDown != 2 {
		t.Fatalf("2 pairs in a budget of 3: pool %+v", st)
	}
	cfg := NewConfig()
	real(1, 1, "tx+rx")(&cfg)
	cfg.Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "smsc.bind_budget") {
		t.Fatalf("tx+rx in a budget of 1: %v", err)
	}
	// On PostgreSQL the lease must leave room for the drop and the unbind.
	cfg = NewConfig()
	cfg.Database = "postgres://db/otpd"
	cfg.SMSC.BindBudget, cfg.SMSC.BindLease = 4, 20*time.Second
	cfg.Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "smsc.bind_lease") {
		t.Fatalf("a lease of 20s with a response timeout of 10s: %v", err)
	}
}
