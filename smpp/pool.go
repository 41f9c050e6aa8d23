package smpp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"log/slog"
)

// ErrNoBind is returned by a Pool when no session to the SMSC is bound.
var ErrNoBind = errors.New("smpp: no SMSC bind is up")

// BindMode says how a Pool binds.
type BindMode string

// Bind modes.
const (
	ModeTransceiver BindMode = "trx"   // N transceivers
	ModeTxRx        BindMode = "tx+rx" // N transmitters and N receivers
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Addr is the SMSC's host:port.
	Addr string
	// Session is each bind's configuration: credentials, window, timers,
	// TLS, the Handler for deliver_sm. Its Bind field is set by Mode.
	Session Config
	// Mode is ModeTransceiver (default) or ModeTxRx.
	Mode BindMode
	// Binds is how many transceivers (or transmitter+receiver pairs);
	// default 1.
	Binds int
	// TPS limits submits per second over the whole pool; 0 is no limit.
	TPS float64
	// BindTPS limits submits per second on each transmitting bind (the
	// SMSC contract's TPS per bind); 0 is no limit.
	BindTPS float64
	// ThrottlePause is how long a bind takes no work after an
	// ESME_RTHROTTLED or ESME_RMSGQFUL; default 1s.
	ThrottlePause time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// attempts to bind: after a failed attempt and after any lost bind the
	// bind waits the backoff plus a random part of up to half as much
	// again, and the backoff doubles; default 500ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// StableAfter is how long a bind must stay up before its loss resets
	// the backoff to ReconnectMin; default 30s. An SMSC that drops every
	// link right after bind_resp so sees binds at a falling rate, not a
	// storm (real SMSCs block a source that rebinds in a tight loop).
	StableAfter time.Duration
	// Logger receives the pool's logs; nil logs nothing.
	Logger *slog.Logger
	// Permits, when set, gates every session on a permit, for a limit on
	// sessions that other processes share: each bind asks for one before
	// it dials (ctx ends when the pool closes), and gives it back once its
	// session has ended or its attempt failed. When a permit is lost, the
	// pool unbinds that session gracefully (no new requests; those in
	// flight keep their answers), gives the permit back and, after the
	// backoff, asks again. Permits is called from every bind at once; an
	// error (other than the pool closing) is waited out with the backoff.
	// Nil binds without asking.
	Permits func(ctx context.Context, bt BindType) (Permit, error)
}

// Permit is the right to hold one session (see PoolConfig.Permits).
type Permit interface {
	// Lost is closed when the permit is withdrawn.
	Lost() <-chan struct{}
	// Release gives the permit back; the pool calls it once.
	Release()
}

// PoolStats is a snapshot of a Pool's state, for readiness and metrics.
type PoolStats struct {
	BindsUp, BindsDown  int
	WindowInUse, Window int
	Sent                uint64                   // requests sent
	Responses           map[CommandStatus]uint64 // responses by status
	// ResponsesOther counts responses whose status is neither in the SMPP
	// 3.4 table nor in its vendor range (0x400-0x4FF), so that Responses
	// stays bounded whatever a peer sends.
	ResponsesOther uint64
	Uncertain      uint64 // requests with unknown outcome (timeout, link lost)
	Received       uint64 // deliver_sm and data_sm received
	Binds          uint64 // binds established, the first ones included
	BindFailures   uint64 // attempts to bind that failed (connect, refusal, timeout)
	Losses         uint64 // binds lost after they were up (not those given up with their permit)
	Reconnects     uint64 // binds established after the first
	Throttled      uint64 // throttling responses
}

// Pool keeps N binds to one SMSC account up and spreads requests over them.
// Each bind reconnects on its own with capped exponential backoff and
// jitter. Safe for concurrent use.
type Pool struct {
	cfg   PoolConfig
	log   *slog.Logger
	limit *rate.Limiter
	binds []*poolBind

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a bind comes up
	stats   struct {
		responses map[CommandStatus]uint64
	}
	sent, uncertain, received, reconnects, throttled atomic.Uint64
	bindsMade, bindFailures, losses, otherResponses  atomic.Uint64
	okResponses                                      atomic.Uint64 // ESME_ROK, outside stats.responses
	next                                             atomic.Uint32

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type poolBind struct {
	idx    int
	bt     BindType
	limit  *rate.Limiter
	mu     sync.Mutex
	s      *Session
	paused atomic.Int64 // unix nanos until which the bind takes no work
	bound  atomic.Bool
	// refused: the SMSC answered ESME_RINVBNDSTS and no ESME_ROK since;
	// dropping: the session being closed for it (once per session).
	refused  atomic.Bool
	dropping atomic.Pointer[Session]
	drop     chan struct{} // to keep: close the dropping session, bind again
	everUp   bool
	lastErr  error
	permit   Permit // held for s, or for the attempt to bind
}

// NewPool starts binding at once and returns; WaitReady waits for a bind.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Mode == "" {
		cfg.Mode = ModeTransceiver
	}
	if cfg.Binds <= 0 {
		cfg.Binds = 1
	}
	if cfg.ThrottlePause <= 0 {
		cfg.ThrottlePause = time.Second
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 30 * time.Second
	}
	cfg.ReconnectMax = max(cfg.ReconnectMax, cfg.ReconnectMin)
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, log: cfg.Logger.With(slog.String("smsc", cfg.Addr)), changed: make(chan struct{})}
	p.stats.responses = map[CommandStatus]uint64{}
	if cfg.TPS > 0 {
		p.limit = rate.NewLimiter(rate.Limit(cfg.TPS), max(1, int(cfg.TPS/10)))
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	add := func(bt BindType) {
		b := &poolBind{idx: len(p.binds), bt: bt, drop: make(chan struct{}, 1)}
		if cfg.BindTPS > 0 && bt.CanSend() {
			b.limit = rate.NewLimiter(rate.Limit(cfg.BindTPS), max(1, int(cfg.BindTPS/10)))
		}
		p.binds = append(p.binds, b)
	}
	for i := 0; i < cfg.Binds; i++ {
		if cfg.Mode == ModeTxRx {
			add(BindTransmitter)
			add(BindReceiver)
		} else {
			add(BindTransceiver)
		}
	}
	for _, b := range p.binds {
		p.wg.Add(1)
		go p.keep(b)
	}
	return p
}

// backoff is the wait between attempts to bind: it doubles from min to
// max, each wait with up to half as much again at random, so that binds
// lost together do not come back together.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	d := max(b.cur, b.min)
	b.cur = min(2*d, b.max)
	return d + rand.N(d/2+1)
}

func (b *backoff) reset() { b.cur = b.min }

// keep holds one bind up until the pool closes. After a failed attempt and
// after any lost bind it waits the backoff; only a bind that stayed up for
// StableAfter (and was not refused with ESME_RINVBNDSTS) resets it. With
// Permits, it holds a permit from before each attempt until the session
// has ended.
func (p *Pool) keep(b *poolBind) {
	defer p.wg.Done()
	bo := backoff{min: p.cfg.ReconnectMin, max: p.cfg.ReconnectMax}
	log := p.log.With(slog.Int("bind", b.idx), slog.String("type", b.bt.String()))
	for p.ctx.Err() == nil {
		var lost <-chan struct{}
		if p.cfg.Permits != nil {
			pm, err := p.cfg.Permits(p.ctx, b.bt)
			if err != nil {
				if p.ctx.Err() != nil {
					return
				}
				wait := bo.next()
				log.Warn("smpp: no permit to bind; waiting before asking again", slog.Any("error", err), slog.Duration("in", wait))
				if !p.sleep(wait) {
					return
				}
				continue
			}
			b.mu.Lock()
			b.permit = pm
			b.mu.Unlock()
			lost = pm.Lost()
		}
		cfg := p.cfg.Session
		cfg.Bind = b.bt
		cfg.Logger = p.cfg.Logger
		cfg.Handler = p.countingHandler(cfg.Handler)
		cfg.observe = func(c *Call) {
			if c.windowed { // not bind, unbind, enquire_link
				p.account(b, c)
			}
		}
		s, err := Dial(p.ctx, p.cfg.Addr, cfg)
		if err != nil {
			p.release(b)
			if p.ctx.Err() != nil {
				return
			}
			p.bindFailures.Add(1)
			b.mu.Lock()
			b.lastErr = err
			b.mu.Unlock()
			wait := bo.next()
			log.Warn("smpp: bind failed; waiting before the next attempt", slog.Any("error", err), slog.Duration("in", wait))
			if !p.sleep(wait) {
				return
			}
			continue
		}
		upAt := time.Now()
		p.bindsMade.Add(1)
		b.mu.Lock()
		b.s = s
		if b.everUp {
			p.reconnects.Add(1)
		}
		b.everUp = true
		b.lastErr = nil
		b.mu.Unlock()
		b.bound.Store(true)
		p.signal()
		withdrawn, open := p.hold(b, s, lost)
		b.bound.Store(false)
		if !open {
			return // Close closes the session and releases its permit
		}
		up := time.Since(upAt)
		b.mu.Lock()
		b.lastErr = s.Err()
		b.s = nil
		b.mu.Unlock()
		p.release(b)
		if withdrawn {
			// Not the SMSC's doing, so no loss; the backoff still keeps a
			// permit source that grants and withdraws at once from
			// rebinding in a tight loop.
			if up >= p.cfg.StableAfter {
				bo.reset()
			}
			wait := bo.next()
			log.Info("smpp: bind given up with its permit; waiting for another", slog.Duration("up_for", up), slog.Duration("after", wait))
			if !p.sleep(wait) {
				return
			}
			continue
		}
		p.losses.Add(1)
		var why string
		switch {
		case b.refused.Load():
			why = "the SMSC answered ESME_RINVBNDSTS on this bind: backoff kept"
		case up < p.cfg.StableAfter:
			why = fmt.Sprintf("the bind stayed up %v, less than the %v that resets the backoff", up.Round(time.Millisecond), p.cfg.StableAfter)
		default:
			bo.reset()
			why = "the bind was stable: backoff reset"
		}
		wait := bo.next()
		log.Warn("smpp: bind lost; waiting before binding again", slog.Any("error", s.Err()),
			slog.Duration("up_for", up), slog.Duration("in", wait), slog.String("why", why))
		if !p.sleep(wait) {
			return
		}
	}
}

// release gives back the permit b holds, if any.
func (p *Pool) release(b *poolBind) {
	b.mu.Lock()
	pm := b.permit
	b.permit = nil
	b.mu.Unlock()
	if pm != nil {
		pm.Release()
	}
}

// hold waits while s is up, closing it when account asks to or its permit
// is lost (withdrawn then); open is false when the pool closes first.
func (p *Pool) hold(b *poolBind, s *Session, lost <-chan struct{}) (withdrawn, open bool) {
	// Gracefully: no new requests, and those in flight keep their
	// answers, so none turns uncertain.
	closeGracefully := func() {
		ctx, cancel := context.WithTimeout(p.ctx, s.cfg.ResponseTimeout)
		s.Close(ctx)
		cancel()
	}
	for {
		select {
		case <-s.Done():
			return withdrawn, true
		case <-b.drop:
			if b.dropping.Load() == s {
				closeGracefully()
			}
		case <-lost:
			p.log.Warn("smpp: the permit of this bind is lost; unbinding", slog.Int("bind", b.idx), slog.String("type", b.bt.String()))
			withdrawn, lost = true, nil
			closeGracefully()
		case <-p.ctx.Done():
			return withdrawn, false
		}
	}
}

// sleep waits d; false when the pool closes first.
func (p *Pool) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

func (p *Pool) countingHandler(h Handler) Handler {
	return HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		switch req.CommandID() {
		case DeliverSMID, DataSMID:
			p.received.Add(1)
		}
		if h == nil {
			switch req.CommandID() {
			case DeliverSMID, DataSMID:
				return Reply(req, ESME_ROK)
			case AlertNotificationID:
				return nil
			}
			return Reply(req, ESME_RINVCMDID)
		}
		return h.ServeSMPP(ctx, s, req)
	})
}

func (p *Pool) signal() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// pick chooses a bound, unpaused bind that can send, the one with the most
// free window slots (round robin among equals).
func (p *Pool) pick() (*poolBind, *Session) {
	var now int64 // read only when a bind is paused
	var best *poolBind
	var bestS *Session
	bestFree := -1
	n := len(p.binds)
	start := int(p.next.Add(1))
	for i := 0; i < n; i++ {
		b := p.binds[(start+i)%n]
		if !b.bt.CanSend() || !b.bound.Load() {
			continue
		}
		if until := b.paused.Load(); until != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			if until > now {
				continue
			}
		}
		b.mu.Lock()
		s := b.s
		b.mu.Unlock()
		if s == nil || !s.Bound() {
			continue
		}
		if free := cap(s.window) - len(s.window); free > bestFree {
			best, bestS, bestFree = b, s, free
		}
	}
	return best, bestS
}

// Ready reports whether a bind that can send is up.
func (p *Pool) Ready() bool {
	for _, b := range p.binds {
		if b.bt.CanSend() && b.bound.Load() {
			return true
		}
	}
	return false
}

// WaitReady waits until a bind that can send is up.
func (p *Pool) WaitReady(ctx context.Context) error {
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if p.Ready() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoBind, ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		}
	}
}

// Send sends req over a bound session, waiting under ctx for a bind, for
// the rate limits and for a window slot. Throttling answers pause the bind
// that got them for ThrottlePause and come back to the caller as a
// *ResponseError (errors.Is(err, ESME_RTHROTTLED)).
func (p *Pool) Send(ctx context.Context, req PDU) (PDU, error) {
	for {
		c := p.Go(ctx, req, make(chan *Call, 1))
		select {
		case <-c.Done:
		case <-ctx.Done():
			select {
			case <-c.Done:
			default:
				return nil, fmt.Errorf("%w: %w", errAbandoned, ctx.Err())
			}
		}
		if c.notSent() && p.ctx.Err() == nil && ctx.Err() == nil && !errors.Is(c.Err, errNotSent) {
			continue // the bind went down before the request went out: try another
		}
		return c.Resp, c.Err
	}
}

// errNotSent marks a Pool.Go that failed before choosing a bind.
var errNotSent = errors.New("smpp: not sent")

// Go sends req over a bound session without waiting for the response: it
// waits under ctx for a bind, for the rate limits and for a window slot,
// then returns the Call, which is sent on done when it ends (see
// Session.Go). For pipelined senders that keep a window full from one
// goroutine.
func (p *Pool) Go(ctx context.Context, req PDU, done chan *Call) *Call {
	if done == nil {
		done = make(chan *Call, 1)
	}
	return p.goCall(ctx, req, done, nil)
}

// GoFunc is Go with a function in place of the channel, as Session.GoFunc:
// f runs once when the call ends, for a response on the read loop of the
// bind that carried it, and must not block; it may send the next request
// with TryGo.
func (p *Pool) GoFunc(ctx context.Context, req PDU, f func(*Call)) *Call {
	return p.goCall(ctx, req, nil, f)
}

// TryGo sends req, as GoFunc, if it can go out at once: a bind is up with
// a free window slot and the rate limits have a token now. Otherwise it
// sends nothing, never calls f, and reports false.
func (p *Pool) TryGo(req PDU, f func(*Call)) bool {
	if p.ctx.Err() != nil {
		return false
	}
	b, s := p.pick()
	if s == nil || cap(s.window) == len(s.window) {
		return false
	}
	now := time.Now()
	var rs []*rate.Reservation
	giveBack := func() {
		for _, r := range rs {
			r.CancelAt(now) // at the time reserved, so the token comes back
		}
	}
	for _, l := range []*rate.Limiter{p.limit, b.limit} {
		if l == nil {
			continue
		}
		r := l.ReserveN(now, 1)
		rs = append(rs, r)
		if !r.OK() || r.DelayFrom(now) > 0 {
			giveBack()
			return false
		}
	}
	if !s.TryGo(req, f) {
		giveBack()
		return false
	}
	return true
}

func (p *Pool) goCall(ctx context.Context, req PDU, done chan *Call, f func(*Call)) *Call {
	fail := func(err error) *Call {
		c := &Call{Req: req, Done: done, fn: f}
		c.finish(nil, fmt.Errorf("%w: %w", errNotSent, err))
		return c
	}
	if p.ctx.Err() != nil {
		return fail(ErrClosed)
	}
	if p.limit != nil {
		if err := p.limit.Wait(ctx); err != nil {
			return fail(fmt.Errorf("smpp: waiting for the pool's TPS limit: %w", err))
		}
	}
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		b, s := p.pick()
		if s == nil {
			var pauseWait <-chan time.Time
			if p.Ready() { // all up binds are paused: wait for the first to resume
				pauseWait = time.After(p.nextResume())
			}
			select {
			case <-ch:
			case <-pauseWait:
			case <-ctx.Done():
				return fail(fmt.Errorf("%w: %w", ErrNoBind, ctx.Err()))
			case <-p.ctx.Done():
				return fail(ErrClosed)
			}
			continue
		}
		if b.limit != nil {
			if err := b.limit.Wait(ctx); err != nil {
				return fail(fmt.Errorf("smpp: waiting for the bind's TPS limit: %w", err))
			}
		}
		if f != nil {
			return s.GoFunc(ctx, req, f)
		}
		return s.Go(ctx, req, done)
	}
}

func (p *Pool) nextResume() time.Duration {
	now := time.Now().UnixNano()
	next := int64(p.cfg.ThrottlePause)
	for _, b := range p.binds {
		if u := b.paused.Load() - now; u > 0 && u < next {
			next = u
		}
	}
	return time.Duration(next)
}

func (p *Pool) account(b *poolBind, c *Call) {
	if c.notSent() {
		return
	}
	p.sent.Add(1)
	if IsUncertain(c.Err) {
		p.uncertain.Add(1)
		return
	}
	if c.Resp == nil {
		return
	}
	st := c.Resp.Head().Status
	if st == ESME_ROK {
		p.okResponses.Add(1)
		if b.refused.Load() {
			b.refused.Store(false)
		}
		return
	}
	if st.Known() || (st >= 0x400 && st <= 0x4FF) {
		p.mu.Lock()
		p.stats.responses[st]++
		p.mu.Unlock()
	} else {
		p.otherResponses.Add(1)
	}
	if st == ESME_RINVBNDSTS {
		// The SMSC does not count this bind as bound: every request on it
		// would get the same. Close it gracefully (no new requests; those
		// in flight keep their answers, so none turns uncertain) and bind
		// again, after the reconnect backoff (keep).
		b.refused.Store(true)
		if s := c.sess; s != nil && s.Bound() && b.dropping.Swap(s) != s {
			p.log.Warn("smpp: SMSC says the bind is not bound (ESME_RINVBNDSTS); binding again", slog.Int("bind", b.idx))
			select {
			case b.drop <- struct{}{}:
			default:
			}
		}
	}
	if st.Throttling() {
		p.throttled.Add(1)
		b.paused.Store(time.Now().Add(p.cfg.ThrottlePause).UnixNano())
		p.log.Info("smpp: SMSC throttles; pausing the bind", slog.Int("bind", b.idx), slog.String("status", st.Name()), slog.Duration("for", p.cfg.ThrottlePause))
	}
}

// Submit sends a submit_sm through the pool.
func (p *Pool) Submit(ctx context.Context, sm *SubmitSM) (*SubmitSMResp, error) {
	resp, err := p.Send(ctx, sm)
	r, _ := resp.(*SubmitSMResp)
	return r, err
}

// Stats returns a snapshot of the pool's state.
func (p *Pool) Stats() PoolStats {
	st := PoolStats{Sent: p.sent.Load(), Uncertain: p.uncertain.Load(), Received: p.received.Load(),
		Reconnects: p.reconnects.Load(), Throttled: p.throttled.Load(), Responses: map[CommandStatus]uint64{},
		ResponsesOther: p.otherResponses.Load(), Binds: p.bindsMade.Load(), BindFailures: p.bindFailures.Load(), Losses: p.losses.Load()}
	for _, b := range p.binds {
		b.mu.Lock()
		s := b.s
		b.mu.Unlock()
		if s != nil && b.bound.Load() {
			st.BindsUp++
			ss := s.Stats()
			st.WindowInUse += ss.WindowInUse
			st.Window += ss.Window
		} else {
			st.BindsDown++
		}
	}
	p.mu.Lock()
	maps.Copy(st.Responses, p.stats.responses)
	p.mu.Unlock()
	if n := p.okResponses.Load(); n > 0 {
		st.Responses[ESME_ROK] = n
	}
	return st
}

// LastErrors gives, per bind that is down, why its last attempt failed.
func (p *Pool) LastErrors() []error {
	var out []error
	for _, b := range p.binds {
		b.mu.Lock()
		if b.lastErr != nil && b.s == nil {
			out = append(out, fmt.Errorf("bind %d (%s): %w", b.idx, b.bt, b.lastErr))
		}
		b.mu.Unlock()
	}
	return out
}

// Close stops reconnecting and closes every session gracefully (window
// drained, unbind), bounded by ctx, and gives back the permits; every
// goroutine has ended when it returns.
func (p *Pool) Close(ctx context.Context) error {
	p.cancel()
	p.wg.Wait()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, b := range p.binds {
		b.mu.Lock()
		s, pm := b.s, b.permit
		b.s, b.permit = nil, nil
		b.mu.Unlock()
		if s == nil {
			if pm != nil {
				pm.Release()
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A permit lost meanwhile leaves the unbind its response
			// timeout, as in hold.
			var lost <-chan struct{}
			if pm != nil {
				lost = pm.Lost()
			}
			cctx, cancel := context.WithCancel(ctx)
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				select {
				case <-lost:
					t := time.NewTimer(s.cfg.ResponseTimeout)
					defer t.Stop()
					select {
					case <-t.C:
						cancel()
					case <-cctx.Done():
					}
				case <-cctx.Done():
				}
			}()
			err := s.Close(cctx)
			cancel()
			<-watched
			if pm != nil {
				pm.Release()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
