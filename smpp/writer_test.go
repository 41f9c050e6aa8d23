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
	if !s.TryGo(&SubmitSM{}, f) || !s.TryGo(&SubmitSM{}, f) {
		t.Fatal("TryGo refused with free slots")
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
// goroutine, ahead of what is queued after it: the peer gets every octet,
// in order.
func TestBatchEndRestKeepsOrder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peerc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(peerc)
			return
		}
		c.(*net.TCPConn).SetReadBuffer(4096)
		peerc <- c
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetWriteBuffer(1024)
	peer := <-peerc
	if peer == nil {
		t.Fatal("no peer")
	}
	defer peer.Close()
	s := newSession(conn, Config{EnquireLinkInterval: -1}, nil)
	s.start()
	defer s.Abort()
	if s.w.raw == nil {
		t.Skip("no inline writes on this platform")
	}
	const first, second = 150, 50 // 150 x 200 octets: more than the socket takes, below batchFlush
	text := make([]byte, 160)
	s.w.beginBatch()
	for i := 1; i <= first; i++ {
		if err := s.w.enqueue(&DeliverSM{Header: Header{Sequence: uint32(i)}, ShortMessage: text}); err != nil {
			t.Fatal(err)
		}
	}
	s.w.endBatch()
	for i := first + 1; i <= first+second; i++ { // queued while the rest waits
		if err := s.w.enqueue(&DeliverSM{Header: Header{Sequence: uint32(i)}, ShortMessage: text}); err != nil {
			t.Fatal(err)
		}
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := NewReader(peer)
	for i := 1; i <= first+second; i++ {
		p, err := r.ReadPDU()
		if err != nil {
			t.Fatalf("PDU %d: %v", i, err)
		}
		if seq := p.Head().Sequence; seq != uint32(i) {
			t.Fatalf("PDU %d has sequence %d: out of order", i, seq)
		}
	}
	if w := s.Stats().Writes; w < 2 {
		t.Fatalf("%d writes: the socket took the whole batch, so the rest was never handed on", w)
	}
}
