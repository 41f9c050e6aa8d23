package smpp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Completions that send the next request from the read loop keep a window
// full with no other goroutine; TryGo never waits and never calls f when
// it cannot send.
func TestGoFuncChainsFromReadLoop(t *testing.T) {
	srv, addr := testServer(t, submitOK(), nil)
	s := dial(t, addr, Config{Window: 10})
	const n = 3000
	var started, ok, failed atomic.Int64
	finished := make(chan struct{})
	var fn func(*Call)
	fn = func(c *Call) {
		if c.Err != nil || c.Resp.(*SubmitSMResp).MessageID == "" {
			failed.Add(1)
		} else {
			ok.Add(1)
		}
		if ok.Load()+failed.Load() == n {
			close(finished)
			return
		}
		if started.Add(1) <= n && !s.TryGo(&SubmitSM{DestinationAddr: "1"}, fn) {
			t.Error("TryGo refused with the slot just freed")
		}
	}
	for i := 0; i < 10; i++ {
		started.Add(1)
		if !s.TryGo(&SubmitSM{DestinationAddr: "1"}, fn) {
			t.Fatalf("TryGo %d refused on a window of 10", i)
		}
	}
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatalf("%d of %d answered", ok.Load()+failed.Load(), n)
	}
	if failed.Load() != 0 || ok.Load() != n {
		t.Fatalf("%d ok, %d failed of %d", ok.Load(), failed.Load(), n)
	}
	// The SMSC's read loop wrote its responses itself, in batches.
	var st Stats
	for _, ss := range srv.Sessions() {
		st = ss.Stats()
	}
	if st.Received < n || st.Writes >= st.Received {
		t.Fatalf("server: %d writes for %d responses: not coalesced", st.Writes, st.Received)
	}
}

func TestTryGoRefusesWithoutCallingF(t *testing.T) {
	block := make(chan struct{})
	_, addr := testServer(t, HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		<-block
		return &SubmitSMResp{MessageID: "1"}
	}), func(s *Server) { s.Session.HandlerConcurrency = 4 })
	s := dial(t, addr, Config{Window: 2})
	var calls atomic.Int64
	f := func(*Call) { calls.Add(1) }
	for i := 0; i < 2; i++ {
		if !s.TryGo(&SubmitSM{}, f) {
			t.Fatalf("TryGo %d refused with a free slot", i)
		}
	}
	if s.TryGo(&SubmitSM{}, f) {
		t.Fatal("TryGo sent on a full window")
	}
	close(block)
	waitFor(t, func() bool { return calls.Load() == 2 })
	s.Close(context.Background())
	if s.TryGo(&SubmitSM{}, f) {
		t.Fatal("TryGo sent on a closed session")
	}
	if p := NewPool(PoolConfig{Addr: "127.0.0.1:1"}); p.TryGo(&SubmitSM{}, f) {
		t.Fatal("Pool.TryGo sent with no bind up")
	} else {
		p.Close(context.Background())
	}
	time.Sleep(20 * time.Millisecond)
	if c := calls.Load(); c != 2 {
		t.Fatalf("f called %d times, want 2", c)
	}
}

// What the socket does not take at a batch's end goes to the writer
// goroutine, ahead of what was queued during the write: the peer gets
// every octet, in order.
func TestBatchEndRestKeepsOrder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peerc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		peerc <- c
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-peerc
	if peer == nil {
		t.Fatal("no peer")
	}
	defer peer.Close()
	s := newSession(conn, Config{EnquireLinkInterval: -1}, nil)
	if s.w.raw == nil {
		t.Skip("no inline writes on this platform")
	}
	const first, during = 50, 20
	text := make([]byte, 160)
	pdu := func(seq int) PDU { return &DeliverSM{Header: Header{Sequence: uint32(seq)}, ShortMessage: text} }
	// The socket takes a third of the batch; while it does, more is queued.
	var took, rest int
	s.w.try = func(fd uintptr) bool {
		for i := first + 1; i <= first+during; i++ {
			if err := s.w.enqueue(pdu(i)); err != nil {
				t.Error(err)
			}
		}
		took = len(s.w.out) / 3
		rest = len(s.w.out) - took
		s.w.outN = writeNonBlocking(fd, s.w.out[:took])
		return true
	}
	s.start()
	defer s.Abort()
	s.w.hold()
	for i := 1; i <= first; i++ {
		if err := s.w.enqueue(pdu(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.w.endBatch()
	if took == 0 || rest == 0 {
		t.Fatalf("the batch end wrote %d octets of %d inline", took, took+rest)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := NewReader(peer)
	for i := 1; i <= first+during; i++ {
		p, err := r.ReadPDU()
		if err != nil {
			t.Fatalf("PDU %d: %v", i, err)
		}
		if seq := p.Head().Sequence; seq != uint32(i) {
			t.Fatalf("PDU %d has sequence %d: out of order", i, seq)
		}
	}
}
