package otpd

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpd/otpd/smpp"
	"go.uber.org/zap"
)

// bindBudget shares an SMSC account's sessions among the instances on one
// PostgreSQL store: each session holds a slot of the budget, leased in
// bind_slots, so that all instances together never bind more than the
// account allows. It is the pool's smpp.PoolConfig.Permits.
//
// From the lease L: leases are renewed every L/3; a permit whose lease was
// not renewed for L/2 (the database unreachable) is lost, and the pool
// unbinds, within the response timeout (at most L/3, Validate), before the
// lease can run out and another instance take the slot; a bind without a
// slot asks again every L/10. Times of the leases are the database's, so
// the instances' clocks do not matter; each deadline here runs on this
// process's monotonic clock from before the statement that set it.
type bindBudget struct {
	store    *Store
	account  string
	instance string // this process; each lease's holder is instance/N
	budget   int
	mode     smpp.BindMode
	lease    time.Duration
	log      *zap.Logger
	// unreachable, in tests, fails every statement on the leases as an
	// unreachable database would.
	unreachable atomic.Bool

	claims atomic.Uint64
	mu     sync.Mutex
	held   map[*slotPermit]bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// slotPermit is one session's slot.
type slotPermit struct {
	b      *bindBudget
	slot   int
	holder string
	lost   chan struct{}
	once   sync.Once
	timer  *time.Timer // loses the permit when its lease was not renewed in time
}

// errUnreachable is what the lease statements get while a test makes the
// database unreachable for them.
var errUnreachable = errors.New("the database is unreachable (test)")

// bindAccount names an SMSC account in bind_slots: several accounts may
// share one database.
func bindAccount(s SMSCConfig) string { return s.SystemID + "@" + s.Addr }

func newBindBudget(store *Store, s SMSCConfig, log *zap.Logger) *bindBudget {
	host, _ := os.Hostname()
	r := make([]byte, 4)
	crand.Read(r)
	mode := smpp.ModeTransceiver
	if s.BindMode == "tx+rx" {
		mode = smpp.ModeTxRx
	}
	b := &bindBudget{store: store, account: bindAccount(s), instance: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(r)),
		budget: s.BindBudget, mode: mode, lease: s.BindLease, log: log, held: map[*slotPermit]bool{}, stop: make(chan struct{})}
	b.wg.Add(1)
	go b.renewing()
	return b
}

// slots is the range of slots a bind type takes: in tx+rx mode the
// transmitters take the first half of the budget (rounded up) and the
// receivers the rest, so that the instances together always hold both.
func (b *bindBudget) slots(bt smpp.BindType) (lo, hi int) {
	if b.mode != smpp.ModeTxRx {
		return 0, b.budget
	}
	half := (b.budget + 1) / 2
	if bt == smpp.BindReceiver {
		return half, b.budget
	}
	return 0, half
}

// timeout bounds each statement on the leases.
func (b *bindBudget) timeout() time.Duration { return b.lease / 6 }

// acquire waits for a free slot for a session of type bt, asking every
// L/10 (with jitter); an error only when ctx ends.
func (b *bindBudget) acquire(ctx context.Context, bt smpp.BindType) (smpp.Permit, error) {
	lo, hi := b.slots(bt)
	waiting, failing := false, false
	for {
		pm, err := b.claim(ctx, lo, hi)
		switch {
		case pm != nil:
			b.log.Info("bind budget: slot leased", zap.Int("slot", pm.slot), zap.String("bind", bt.String()), zap.Int("held", b.heldCount()))
			return pm, nil
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			b.log.Warn("bind budget: cannot claim a slot; no bind until the database answers", zap.Error(err))
		case err == nil && !waiting:
			waiting, failing = true, false
			b.log.Info("bind budget: every slot is held (by this instance or others); asking again", zap.String("bind", bt.String()),
				zap.Int("slots", hi-lo), zap.Duration("every", b.lease/10))
		}
		d := b.lease / 10
		t := time.NewTimer(d + rand.N(d/2+1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// claim leases one slot of [lo, hi); nil when none is free.
func (b *bindBudget) claim(ctx context.Context, lo, hi int) (*slotPermit, error) {
	holder := fmt.Sprintf("%s/%d", b.instance, b.claims.Add(1))
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	slot, ok, err := 0, false, errUnreachable
	if !b.unreachable.Load() {
		slot, ok, err = b.store.claimBindSlot(cctx, b.account, holder, lo, hi, b.lease)
	}
	if err != nil || !ok {
		return nil, err // a claim whose answer was lost runs out by itself
	}
	pm := &slotPermit{b: b, slot: slot, holder: holder, lost: make(chan struct{})}
	pm.timer = time.AfterFunc(time.Until(start.Add(b.lease/2)), func() {
		pm.lose("its lease could not be renewed in time (is the database reachable?)")
	})
	b.mu.Lock()
	b.held[pm] = true
	b.mu.Unlock()
	return pm, nil
}

// renewing renews the leases every L/3, again after L/10 when a renewal
// failed, until close.
func (b *bindBudget) renewing() {
	defer b.wg.Done()
	every := b.lease / 3
	for {
		t := time.NewTimer(every)
		select {
		case <-t.C:
		case <-b.stop:
			t.Stop()
			return
		}
		every = b.lease / 3
		if !b.renew() {
			every = b.lease / 10
		}
	}
}

// renew extends each lease this instance holds by L, and its permit's
// deadline by L/2; a permit whose lease another instance took over (it had
// expired) is lost at once. False when a renewal failed.
func (b *bindBudget) renew() bool {
	b.mu.Lock()
	var pms []*slotPermit
	for pm := range b.held {
		if !pm.isLost() {
			pms = append(pms, pm)
		}
	}
	b.mu.Unlock()
	allOK := true
	for _, pm := range pms {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout())
		ok, err := false, errUnreachable
		if !b.unreachable.Load() {
			ok, err = b.store.renewBindSlot(ctx, b.account, pm.holder, pm.slot, b.lease)
		}
		cancel()
		switch {
		case err != nil:
			allOK = false
			b.log.Warn("bind budget: cannot renew a lease; its bind is dropped unless a renewal succeeds in time", zap.Int("slot", pm.slot), zap.Error(err))
		case !ok:
			pm.lose("its lease had expired, and another instance may hold the slot")
		default:
			b.mu.Lock()
			if b.held[pm] && !pm.isLost() {
				pm.timer.Reset(time.Until(start.Add(b.lease / 2)))
			}
			b.mu.Unlock()
		}
	}
	return allOK
}

func (b *bindBudget) heldCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

// close stops renewing; the pool has given back its permits before.
func (b *bindBudget) close() {
	close(b.stop)
	b.wg.Wait()
}

func (pm *slotPermit) Lost() <-chan struct{} { return pm.lost }

func (pm *slotPermit) isLost() bool {
	select {
	case <-pm.lost:
		return true
	default:
		return false
	}
}

func (pm *slotPermit) lose(why string) {
	pm.once.Do(func() {
		pm.b.log.Warn("bind budget: slot lost; its bind unbinds", zap.Int("slot", pm.slot), zap.String("why", why))
		close(pm.lost)
	})
}

// Release ends the lease, once the session has ended; a lease that cannot
// be ended runs out by itself.
func (pm *slotPermit) Release() {
	b := pm.b
	pm.timer.Stop()
	b.mu.Lock()
	delete(b.held, pm)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout())
	defer cancel()
	err := errUnreachable
	if !b.unreachable.Load() {
		err = b.store.releaseBindSlot(ctx, b.account, pm.holder, pm.slot)
	}
	if err != nil {
		b.log.Warn("bind budget: cannot give back a slot; its lease runs out by itself", zap.Int("slot", pm.slot), zap.Error(err))
	}
}
