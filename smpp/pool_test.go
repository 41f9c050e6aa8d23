package smpp

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func fastPool(addr string, mod func(*PoolConfig)) *Pool {
	cfg := PoolConfig{Addr: addr, Session: Config{SystemID: "otp", Password: "pw", ResponseTimeout: 2 * time.Second, BindTimeout: time.Second},
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	return NewPool(cfg)
}

// readyPool starts a pool (closed with the test) and waits for a bind;
// the context bounds the test's requests.
func readyPool(t *testing.T, addr string, mod func(*PoolConfig)) (*Pool, context.Context) {
	t.Helper()
	p := fastPool(addr, mod)
	t.Cleanup(func() { closePool(t, p) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return p, ctx
}

func closePool(t testing.TB, p *Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("pool close: %v", err)
	}
}

func TestPoolSubmitAndStats(t *testing.T) {
	srv, addr := testServer(t, submitOK(), nil)
	p := fastPool(addr, func(c *PoolConfig) { c.Binds = 3 })
	defer closePool(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "4915112345678"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { return p.Stats().BindsUp == 3 })
	st := p.Stats()
	if st.Sent != 50 || st.Responses[ESME_ROK] != 50 || st.BindsDown != 0 || st.Window != 30 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(srv.Sessions()); n != 3 {
		t.Fatalf("%d sessions at the server", n)
	}
}

func TestPoolNoBind(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens
	p := fastPool(addr, nil)
	defer closePool(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"})
	if !errors.Is(err, ErrNoBind) || p.Ready() {
		t.Fatalf("no SMSC: %v", err)
	}
	if errs := p.LastErrors(); len(errs) != 1 {
		t.Fatalf("last errors %v", errs)
	}
}

func TestPoolThrottlePausesOneBind(t *testing.T) {
	var throttledSession atomic.Pointer[Session]
	var perSession sync.Map
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		n, _ := perSession.LoadOrStore(s, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if throttledSession.CompareAndSwap(nil, s) {
			return Reply(req, ESME_RTHROTTLED)
		}
		return &SubmitSMResp{MessageID: "ok"}
	})
	_, addr := testServer(t, h, nil)
	p := fastPool(addr, func(c *PoolConfig) { c.Binds = 2; c.ThrottlePause = time.Hour })
	defer closePool(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, func() bool { return p.Stats().BindsUp == 2 })
	if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); !errors.Is(err, ESME_RTHROTTLED) {
		t.Fatalf("first submit: %v", err)
	}
	for i := 0; i < 20; i++ {
		if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := perSession.Load(throttledSession.Load())
	if got := n.(*atomic.Int32).Load(); got != 1 {
		t.Fatalf("the throttled bind took %d more submits during its pause", got-1)
	}
	if st := p.Stats(); st.Throttled != 1 || st.Responses[ESME_RTHROTTLED] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPoolRateLimit(t *testing.T) {
	_, addr := testServer(t, submitOK(), nil)
	p := fastPool(addr, func(c *PoolConfig) { c.TPS = 100 })
	defer closePool(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.WaitReady(ctx)
	start := time.Now()
	for i := 0; i < 30; i++ {
		if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	// 30 at 100/s with a burst of 10 cannot take less than 200ms.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("30 submits at 100 TPS took only %v", d)
	}
}

func TestPoolReconnects(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	srv := &Server{Handler: submitOK()}
	go srv.Serve(l)
	p := fastPool(addr, nil)
	defer closePool(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the SMSC dies
	waitFor(t, func() bool { return !p.Ready() })
	restartServer(t, addr)
	// A send made while the bind is down waits for it.
	if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Reconnects != 1 || st.BindsUp != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPoolTxRxReceives(t *testing.T) {
	bound := make(chan *Session, 4)
	_, addr := testServer(t, submitOK(), func(s *Server) { s.OnBound = func(ss *Session) { bound <- ss } })
	got := make(chan string, 1)
	p := fastPool(addr, func(c *PoolConfig) {
		c.Mode = ModeTxRx
		c.Session.Handler = HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
			got <- string(req.(*DeliverSM).ShortMessage)
			return Reply(req, ESME_ROK)
		})
	})
	defer closePool(t, p)
	var rx *Session
	for i := 0; i < 2; i++ {
		s := <-bound
		if s.BindType() == BindReceiver {
			rx = s
		}
	}
	if rx == nil {
		t.Fatal("no receiver bound")
	}
	if _, err := rx.Deliver(context.Background(), &DeliverSM{ShortMessage: []byte("receipt")}); err != nil {
		t.Fatal(err)
	}
	if <-got != "receipt" || p.Stats().Received != 1 {
		t.Fatal("receipt not handled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); err != nil {
		t.Fatal(err)
	}
}

// An SMSC that answers ESME_RINVBNDSTS no longer counts the bind as bound:
// the status is temporary, and the pool drops that bind and binds again.
func TestPoolRebindsOnInvalidBindStatus(t *testing.T) {
	var first atomic.Bool
	_, addr := testServer(t, HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		if first.CompareAndSwap(false, true) {
			return Reply(req, ESME_RINVBNDSTS)
		}
		return &SubmitSMResp{MessageID: "1"}
	}), nil)
	p, ctx := readyPool(t, addr, nil)
	_, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"})
	var re *ResponseError
	if !errors.As(err, &re) || re.Status != ESME_RINVBNDSTS || !re.Status.Temporary() {
		t.Fatalf("first submit: %v; want a temporary ESME_RINVBNDSTS", err)
	}
	waitFor(t, func() bool { return p.Stats().Reconnects >= 1 && p.Ready() })
	if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); err != nil {
		t.Fatalf("after the rebind: %v", err)
	}
}

// The bind an SMSC refuses with ESME_RINVBNDSTS is closed gracefully: the
// requests in flight on it keep their answers instead of turning
// uncertain.
func TestPoolInvalidBindStatusKeepsAnswersInFlight(t *testing.T) {
	var n atomic.Int64
	_, addr := testServer(t, HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		if n.Add(1) == 1 {
			return Reply(req, ESME_RINVBNDSTS)
		}
		time.Sleep(20 * time.Millisecond)
		return &SubmitSMResp{MessageID: "1"}
	}), func(s *Server) { s.Session.HandlerConcurrency = 32 })
	p, ctx := readyPool(t, addr, func(c *PoolConfig) { c.Session.Window = 20 })
	done := make(chan *Call, 20)
	for i := 0; i < 20; i++ {
		p.Go(ctx, &SubmitSM{DestinationAddr: "1"}, done)
	}
	var ok, refused, other int
	for i := 0; i < 20; i++ {
		c := <-done
		var re *ResponseError
		switch {
		case c.Err == nil:
			ok++
		case errors.As(c.Err, &re) && re.Status == ESME_RINVBNDSTS:
			refused++
		default:
			other++
			t.Logf("call %d: %v", i, c.Err)
		}
	}
	if ok != 19 || refused != 1 || other != 0 {
		t.Fatalf("%d ok, %d ESME_RINVBNDSTS, %d other; want 19, 1, 0", ok, refused, other)
	}
}

// An SMSC that answers every submit ESME_RINVBNDSTS is rebound with the
// reconnect backoff, not in a tight loop.
func TestPoolInvalidBindStatusBacksOff(t *testing.T) {
	var binds atomic.Int64
	_, addr := testServer(t, HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		return Reply(req, ESME_RINVBNDSTS)
	}), func(s *Server) { s.OnBound = func(*Session) { binds.Add(1) } })
	p := fastPool(addr, nil) // backoff 20 ms, doubling to 100 ms
	defer closePool(t, p)
	end := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		p.Submit(ctx, &SubmitSM{DestinationAddr: "1"})
		cancel()
	}
	if b := binds.Load(); b < 2 || b > 20 {
		t.Fatalf("%d binds in 600 ms; want a few (rebinds, with backoff)", b)
	}
}

// dropAfterBind is an SMSC that accepts every bind and closes the link
// right after its bind_resp. It counts the binds.
func dropAfterBind(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var binds atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				p, err := NewReader(c).ReadPDU()
				if err != nil {
					return
				}
				b, ok := p.(*Bind)
				if !ok {
					return
				}
				out, err := Marshal(&BindResp{Header: Header{Sequence: b.Sequence}, Type: b.Type, SystemID: "FLAKY"})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Write(out); err == nil {
					binds.Add(1)
				}
			}()
		}
	}()
	return l.Addr().String(), &binds
}

// Against an SMSC that drops every link right after bind_resp, the pool
// waits after each loss with a growing backoff: a few binds in two
// seconds, not thousands.
func TestPoolLossAfterBindBacksOff(t *testing.T) {
	addr, binds := dropAfterBind(t)
	p := fastPool(addr, func(c *PoolConfig) { c.ReconnectMin, c.ReconnectMax = 50*time.Millisecond, time.Second })
	// 50, 100, 200, 400, 800 ms (each up to half as much again) fit in 2 s.
	timer := time.NewTimer(2 * time.Second)
	<-timer.C
	closePool(t, p)
	n := binds.Load()
	if n < 2 || n > 7 {
		t.Fatalf("%d binds in 2s against a peer dropping after bind_resp; want 2 to 7", n)
	}
	st := p.Stats()
	if st.Binds < uint64(n)-1 || st.Binds > uint64(n) || st.Losses < st.Binds-1 || st.Reconnects != st.Binds-1 {
		t.Fatalf("peer saw %d binds; stats %+v", n, st)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	for i, base := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		base *= time.Millisecond
		if d := b.next(); d < base || d > base+base/2 {
			t.Fatalf("wait %d: %v, want %v to %v", i, d, base, base+base/2)
		}
	}
	b.reset()
	if d := b.next(); d < 100*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
}

// testPermits grants up to its capacity of permits at once; revoke takes
// one back (the capacity shrinks with it), add gives more.
type testPermits struct {
	tokens   chan struct{}
	mu       sync.Mutex
	held     []*testPermit
	released int
}

type testPermit struct {
	src     *testPermits
	lost    chan struct{}
	revoked bool
}

func newTestPermits(n int) *testPermits {
	src := &testPermits{tokens: make(chan struct{}, 64)}
	src.add(n)
	return src
}

func (src *testPermits) add(n int) {
	for range n {
		src.tokens <- struct{}{}
	}
}

func (src *testPermits) acquire(ctx context.Context, _ BindType) (Permit, error) {
	select {
	case <-src.tokens:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	pm := &testPermit{src: src, lost: make(chan struct{})}
	src.mu.Lock()
	src.held = append(src.held, pm)
	src.mu.Unlock()
	return pm, nil
}

// revoke withdraws the oldest permit held.
func (src *testPermits) revoke() {
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, pm := range src.held {
		if !pm.revoked {
			pm.revoked = true
			close(pm.lost)
			return
		}
	}
}

// counts says how many permits are held, and how many were released.
func (src *testPermits) counts() (held, released int) {
	src.mu.Lock()
	defer src.mu.Unlock()
	return len(src.held), src.released
}

func (pm *testPermit) Lost() <-chan struct{} { return pm.lost }

func (pm *testPermit) Release() {
	src := pm.src
	src.mu.Lock()
	defer src.mu.Unlock()
	i := slices.Index(src.held, pm)
	if i < 0 {
		panic("permit released twice")
	}
	src.held = slices.Delete(src.held, i, i+1)
	src.released++
	if !pm.revoked {
		src.tokens <- struct{}{}
	}
}

// boundCounter counts the sessions a Server has bound now, the most at
// once, and those that ended without an unbind.
type boundCounter struct {
	mu                sync.Mutex
	now, most, abrupt int
}

func (c *boundCounter) server(s *Server) {
	s.OnBound = func(*Session) {
		c.mu.Lock()
		c.now++
		c.most = max(c.most, c.now)
		c.mu.Unlock()
	}
	s.OnClosed = func(ss *Session) {
		c.mu.Lock()
		c.now--
		if !errors.Is(ss.Err(), ErrClosed) {
			c.abrupt++
		}
		c.mu.Unlock()
	}
}

func (c *boundCounter) get() (now, most, abrupt int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now, c.most, c.abrupt
}

// With Permits, a pool of 3 binds holds as many sessions as it has
// permits, never more as the SMSC sees them; a bind whose permit is lost
// unbinds and waits for another; Close gives every permit back.
func TestPoolPermits(t *testing.T) {
	var c boundCounter
	_, addr := testServer(t, submitOK(), c.server)
	src := newTestPermits(2)
	p := fastPool(addr, func(c *PoolConfig) { c.Binds = 3; c.Permits = src.acquire })
	waitFor(t, func() bool { now, _, _ := c.get(); return now == 2 })
	time.Sleep(200 * time.Millisecond) // a few reconnect backoffs: a third bind would be up
	if now, most, _ := c.get(); now != 2 || most != 2 || p.Stats().BindsUp != 2 {
		t.Fatalf("2 permits: %d sessions bound, %d at most, pool %+v", now, most, p.Stats())
	}
	src.revoke()
	waitFor(t, func() bool { now, _, _ := c.get(); _, rel := src.counts(); return now == 1 && rel == 1 })
	if _, _, abrupt := c.get(); abrupt != 0 {
		t.Fatal("the bind whose permit was lost did not unbind")
	}
	if st := p.Stats(); st.BindsUp != 1 || st.Losses != 0 {
		t.Fatalf("after the loss of a permit: %+v", st)
	}
	src.add(1)
	waitFor(t, func() bool { now, _, _ := c.get(); return now == 2 })
	closePool(t, p)
	waitFor(t, func() bool { now, _, _ := c.get(); return now == 0 })
	held, rel := src.counts()
	if _, most, abrupt := c.get(); most != 2 || abrupt != 0 || held != 0 || rel != 3 {
		t.Fatalf("after close: %d at most, %d without unbind, %d permits held, %d released", most, abrupt, held, rel)
	}
}

// A bind whose permit is lost unbinds gracefully: the request in flight
// on it keeps its answer, and the permit goes back once the session ended.
func TestPoolPermitLostKeepsAnswerInFlight(t *testing.T) {
	got, answer := make(chan struct{}), make(chan struct{})
	var once sync.Once
	reply := func() { once.Do(func() { close(answer) }) }
	_, addr := testServer(t, HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		close(got)
		<-answer
		return &SubmitSMResp{MessageID: "1"}
	}), nil)
	t.Cleanup(reply) // before the server's shutdown, which waits for the handler
	src := newTestPermits(1)
	p, ctx := readyPool(t, addr, func(c *PoolConfig) { c.Permits = src.acquire })
	call := p.Go(ctx, &SubmitSM{DestinationAddr: "1"}, nil)
	<-got
	src.revoke()
	waitFor(t, func() bool { // unbinding: it takes no new requests
		b := p.binds[0]
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.s != nil && !b.s.Bound()
	})
	if _, rel := src.counts(); rel != 0 {
		t.Fatal("permit released while a request was in flight")
	}
	reply()
	<-call.Done
	if call.Err != nil {
		t.Fatalf("the request in flight: %v", call.Err)
	}
	waitFor(t, func() bool { held, rel := src.counts(); return held == 0 && rel == 1 })
}
