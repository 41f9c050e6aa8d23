package smpp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer starts a Server on a loopback port; it is shut down with the
// test.
func testServer(t testing.TB, h Handler, mod func(*Server)) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: h, Session: Config{ResponseTimeout: 2 * time.Second, BindTimeout: 2 * time.Second}}
	if mod != nil {
		mod(srv)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// submitOK answers submit_sm with message ids 1, 2, 3, ...
func submitOK() Handler {
	var n atomic.Uint64
	return HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		switch req.(type) {
		case *SubmitSM:
			return &SubmitSMResp{MessageID: strconv.FormatUint(n.Add(1), 10)}
		}
		return Reply(req, ESME_RINVCMDID)
	})
}

func dial(t testing.TB, addr string, cfg Config) *Session {
	t.Helper()
	if cfg.SystemID == "" {
		cfg.SystemID = "otp"
	}
	s, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestBindSubmitClose(t *testing.T) {
	srv, addr := testServer(t, submitOK(), func(s *Server) { s.SystemID = "SIM" })
	s := dial(t, addr, Config{Bind: BindTransceiver, Password: "pw"})
	if s.SystemID() != "SIM" || s.BindType() != BindTransceiver || !s.Bound() {
		t.Fatalf("bound as %q %v", s.SystemID(), s.BindType())
	}
	resp, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "4915112345678", ShortMessage: []byte("hi")})
	if err != nil || resp.MessageID != "1" {
		t.Fatalf("submit: %v %v", resp, err)
	}
	if err := s.EnquireLink(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ss := srv.Sessions(); len(ss) != 1 || ss[0].SystemID() != "otp" {
		t.Fatalf("server sessions %v", ss)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(context.Background(), &SubmitSM{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	waitFor(t, func() bool { return len(srv.Sessions()) == 0 })
}

func waitFor(t testing.TB, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBindRefused(t *testing.T) {
	_, addr := testServer(t, submitOK(), func(s *Server) {
		s.Authenticate = func(ctx context.Context, _ *Session, b *Bind) CommandStatus {
			switch {
			case b.SystemID != "otp":
				return ESME_RINVSYSID
			case b.Password != "secret":
				return ESME_RINVPASWD
			}
			return ESME_ROK
		}
	})
	for _, tt := range []struct {
		id, pw string
		want   CommandStatus
	}{{"otp", "wrong", ESME_RINVPASWD}, {"nobody", "secret", ESME_RINVSYSID}} {
		_, err := Dial(context.Background(), addr, Config{SystemID: tt.id, Password: tt.pw})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s/%s: %v, want %s", tt.id, tt.pw, err, tt.want.Name())
		}
	}
	s := dial(t, addr, Config{Password: "secret"})
	if !s.Bound() {
		t.Fatal("not bound")
	}
}

func TestBindTimeout(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	start := time.Now()
	_, err := Dial(context.Background(), l.Addr().String(), Config{SystemID: "x", BindTimeout: 200 * time.Millisecond})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("bind to a silent peer: %v after %v", err, time.Since(start))
	}
}

// TestWindow: a full window makes the next send wait; responses free it.
func TestWindow(t *testing.T) {
	release := make(chan struct{})
	var inflight atomic.Int32
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		inflight.Add(1)
		go func() {
			<-release
			resp := Reply(req, ESME_ROK).(*SubmitSMResp)
			resp.MessageID = "x"
			s.Respond(resp)
		}()
		return nil
	})
	_, addr := testServer(t, h, nil)
	s := dial(t, addr, Config{Window: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"})
			errs <- err
		}()
	}
	waitFor(t, func() bool { return inflight.Load() == 3 })
	if st := s.Stats(); st.WindowInUse != 3 {
		t.Fatalf("window in use %d", st.WindowInUse)
	}
	// The fourth waits, and gives up under its context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := s.Submit(ctx, &SubmitSM{DestinationAddr: "1"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || IsUncertain(err) {
		t.Fatalf("send on a full window: %v", err)
	}
	if inflight.Load() != 3 {
		t.Fatal("a request went out past the window")
	}
	// A fifth waits and goes once the responses free the window.
	waiting := make(chan struct{})
	hook := func() { close(waiting) }
	testHookWindowWait.Store(&hook)
	defer testHookWindowWait.Store(nil)
	go func() {
		_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"})
		errs <- err
	}()
	<-waiting // it waits for a slot, not sent past the window
	testHookWindowWait.Store(nil)
	close(release)
	wg.Wait()
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats().WindowInUse != 0 {
		t.Fatal("window not freed")
	}
}

func TestResponseTimeoutAndLateResponse(t *testing.T) {
	late := make(chan func(), 1)
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		late <- func() { s.Respond(&SubmitSMResp{Header: Header{Sequence: req.Head().Sequence}, MessageID: "late"}) }
		return nil
	})
	_, addr := testServer(t, h, nil)
	s := dial(t, addr, Config{Window: 1, ResponseTimeout: 150 * time.Millisecond})
	_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"})
	if !errors.Is(err, ErrResponseTimeout) || !IsUncertain(err) {
		t.Fatalf("got %v", err)
	}
	if s.Stats().WindowInUse != 0 {
		t.Fatal("timed-out request kept its slot")
	}
	(<-late)()
	waitFor(t, func() bool { return s.Stats().LateResponses == 1 })
	// The session goes on.
	if err := s.EnquireLink(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestThrottledAndGenericNack(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		sm := req.(*SubmitSM)
		switch sm.DestinationAddr {
		case "throttle":
			return Reply(req, ESME_RTHROTTLED)
		case "nack":
			return &GenericNack{Header: Header{Status: ESME_RINVCMDLEN}}
		}
		return &SubmitSMResp{MessageID: "ok"}
	})
	_, addr := testServer(t, h, nil)
	s := dial(t, addr, Config{ResponseTimeout: 5 * time.Second})
	_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "throttle"})
	var re *ResponseError
	if !errors.As(err, &re) || re.Status != ESME_RTHROTTLED || !errors.Is(err, ESME_RTHROTTLED) || IsUncertain(err) {
		t.Fatalf("throttled: %v", err)
	}
	start := time.Now()
	_, err = s.Submit(context.Background(), &SubmitSM{DestinationAddr: "nack"})
	if !errors.As(err, &re) || !re.Nack || re.Status != ESME_RINVCMDLEN || time.Since(start) > time.Second {
		t.Fatalf("generic_nack: %v after %v", err, time.Since(start))
	}
}

// TestPeerClosesMidWindow: every outstanding send gets an error, none hangs.
func TestPeerClosesMidWindow(t *testing.T) {
	got := make(chan *Session, 10)
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		got <- s
		return nil
	})
	_, addr := testServer(t, h, nil)
	s := dial(t, addr, Config{Window: 10, ResponseTimeout: time.Minute})
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"})
			errs <- err
		}()
	}
	var peer *Session
	for i := 0; i < 10; i++ {
		peer = <-got
	}
	peer.Abort()
	for i := 0; i < 10; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrLinkLost) || !IsUncertain(err) {
				t.Fatalf("outstanding send: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an outstanding send hangs")
		}
	}
	<-s.Done()
	if !errors.Is(s.Err(), ErrLinkLost) {
		t.Fatalf("session error %v", s.Err())
	}
}

func TestEnquireLinkLoss(t *testing.T) {
	// A peer that binds but never answers anything after.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := NewReader(c)
		p, _ := r.ReadPDU()
		b, _ := Marshal(&BindResp{Header: Header{Sequence: p.Head().Sequence}, Type: BindTransceiver, SystemID: "mute"})
		c.Write(b)
		for {
			if _, err := r.ReadPDU(); IsFatal(err) {
				return
			}
		}
	}()
	s, err := Dial(context.Background(), l.Addr().String(), Config{SystemID: "x", EnquireLinkInterval: 50 * time.Millisecond, ResponseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("dead link not detected")
	}
	if !errors.Is(s.Err(), ErrLinkDead) {
		t.Fatalf("err %v", s.Err())
	}
}

func TestServerBindState(t *testing.T) {
	_, addr := testServer(t, submitOK(), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := NewReader(c)
	send := func(p PDU) PDU {
		t.Helper()
		b, err := Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		resp, err := r.ReadPDU()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Head().Sequence != p.Head().Sequence {
			t.Fatalf("response seq %d to %d", resp.Head().Sequence, p.Head().Sequence)
		}
		return resp
	}
	// Before bind (SMPP 3.4 table 2-1): submit_sm, enquire_link and unbind
	// get ESME_RINVBNDSTS, and the session stays open for a bind.
	if resp := send(&SubmitSM{Header: Header{Sequence: 1}, DestinationAddr: "1"}); resp.Head().Status != ESME_RINVBNDSTS {
		t.Fatalf("submit before bind: %s", resp.Head().Status.Name())
	}
	if resp := send(&EnquireLink{Header: Header{Sequence: 2}}); resp.CommandID() != EnquireLinkRespID || resp.Head().Status != ESME_RINVBNDSTS {
		t.Fatalf("enquire_link before bind: %v %s", resp.CommandID(), resp.Head().Status.Name())
	}
	if resp := send(&Unbind{Header: Header{Sequence: 2}}); resp.CommandID() != UnbindRespID || resp.Head().Status != ESME_RINVBNDSTS {
		t.Fatalf("unbind before bind: %v %s", resp.CommandID(), resp.Head().Status.Name())
	}
	// Bound as receiver: may not submit; a second bind is refused.
	if resp := send(&Bind{Header: Header{Sequence: 3}, Type: BindReceiver, SystemID: "rx", InterfaceVersion: 0x34}); resp.Head().Status != ESME_ROK {
		t.Fatalf("bind: %s", resp.Head().Status.Name())
	}
	if resp := send(&SubmitSM{Header: Header{Sequence: 4}, DestinationAddr: "1"}); resp.Head().Status != ESME_RINVBNDSTS {
		t.Fatalf("receiver submit: %s", resp.Head().Status.Name())
	}
	if resp := send(&Bind{Header: Header{Sequence: 5}, Type: BindTransmitter, SystemID: "rx"}); resp.Head().Status != ESME_RALYBND {
		t.Fatalf("second bind: %s", resp.Head().Status.Name())
	}
	// Malformed and unknown PDUs get answers and the session goes on.
	c.Write([]byte{0, 0, 0, 16, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 6})
	if resp, _ := r.ReadPDU(); resp.CommandID() != GenericNackID || resp.Head().Status != ESME_RINVCMDID || resp.Head().Sequence != 6 {
		t.Fatalf("unknown command answered with %v", resp)
	}
	c.Write([]byte{0, 0, 0, 18, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0})
	if resp, _ := r.ReadPDU(); resp.CommandID() != GenericNackID || resp.Head().Status != ESME_RINVCMDLEN || resp.Head().Sequence != 7 {
		t.Fatalf("bad enquire_link answered with %v", resp)
	}
	// An invalid field gets the request's response with the status.
	bad := []byte{0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 1}
	bad = append(bad, []byte("123456789012345678901\x00")...) // source_addr of 21 characters
	bad = append(bad, 1, 1, '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	bad[3] = byte(len(bad))
	c.Write(bad)
	if resp, _ := r.ReadPDU(); resp.CommandID() != SubmitSMRespID || resp.Head().Status != ESME_RINVSRCADR || resp.Head().Sequence != 9 {
		t.Fatalf("bad source_addr answered with %v", resp)
	}
	if resp := send(&Unbind{Header: Header{Sequence: 8}}); resp.CommandID() != UnbindRespID {
		t.Fatal("unbind")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadPDU(); err == nil {
		t.Fatal("connection still open after unbind")
	}
}

// TestDeliverToReceiver: the server pushes deliver_sm to a bound receiver
// and gets its deliver_sm_resp with the status the handler chose.
func TestDeliverToReceiver(t *testing.T) {
	bound := make(chan *Session, 1)
	_, addr := testServer(t, submitOK(), func(s *Server) { s.OnBound = func(ss *Session) { bound <- ss } })
	got := make(chan string, 2)
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		d := req.(*DeliverSM)
		got <- string(d.ShortMessage)
		if string(d.ShortMessage) == "fail" {
			return Reply(req, ESME_RX_T_APPN)
		}
		return Reply(req, ESME_ROK)
	})
	s := dial(t, addr, Config{Bind: BindReceiver, Handler: h, HandlerConcurrency: 4})
	peer := <-bound
	if _, err := peer.Deliver(context.Background(), &DeliverSM{ShortMessage: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Deliver(context.Background(), &DeliverSM{ShortMessage: []byte("fail")}); !errors.Is(err, ESME_RX_T_APPN) {
		t.Fatalf("handler status: %v", err)
	}
	if a, b := <-got, <-got; a != "hello" || b != "fail" {
		t.Fatal(a, b)
	}
	// A receiver may not submit: refused locally.
	if _, err := s.Submit(context.Background(), &SubmitSM{}); !errors.Is(err, ErrNotBound) {
		t.Fatalf("receiver submit: %v", err)
	}
}

func TestRebindAfterServerRestart(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	srv := &Server{Handler: submitOK()}
	go srv.Serve(l)
	s := dial(t, addr, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	<-s.Done()
	if s.Err() == nil {
		t.Fatal("no error after the server unbound")
	}
	// Restart on the same address and bind again.
	restartServer(t, addr)
	s2 := dial(t, addr, Config{})
	if _, err := s2.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"}); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDrainsWindow(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		go func() {
			time.Sleep(100 * time.Millisecond)
			s.Respond(&SubmitSMResp{Header: Header{Sequence: req.Head().Sequence}, MessageID: "m"})
		}()
		return nil
	})
	_, addr := testServer(t, h, nil)
	s := dial(t, addr, Config{Window: 5})
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		go func() {
			_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"})
			errs <- err
		}()
	}
	waitFor(t, func() bool { return s.Stats().WindowInUse == 5 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("request outstanding at Close: %v", err)
		}
	}
}

func TestOutbind(t *testing.T) {
	// The "SMSC" connects out and sends outbind; we bind as receiver on it.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	srvDone := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			srvDone <- err
			return
		}
		defer c.Close()
		b, _ := Marshal(&Outbind{Header: Header{Sequence: 1}, SystemID: "otp", Password: "pw"})
		c.Write(b)
		r := NewReader(c)
		p, err := r.ReadPDU()
		if err != nil {
			srvDone <- err
			return
		}
		bind, ok := p.(*Bind)
		if !ok || bind.Type != BindReceiver {
			srvDone <- fmt.Errorf("got %v after outbind", p.CommandID())
			return
		}
		b, _ = Marshal(&BindResp{Header: Header{Sequence: bind.Sequence}, Type: BindReceiver, SystemID: "SMSC"})
		c.Write(b)
		srvDone <- nil
		r.ReadPDU() // unbind
	}()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s, err := AcceptOutbind(context.Background(), conn, Config{SystemID: "otp", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	if s.BindType() != BindReceiver || s.SystemID() != "SMSC" {
		t.Fatalf("bound %v %q", s.BindType(), s.SystemID())
	}
	s.Abort()
}

func TestSequenceWraps(t *testing.T) {
	_, addr := testServer(t, submitOK(), nil)
	s := dial(t, addr, Config{})
	s.mu.Lock()
	s.seq = 0x7FFFFFFE
	s.mu.Unlock()
	var seqs []uint32
	for i := 0; i < 3; i++ {
		req := &SubmitSM{DestinationAddr: "1"}
		if _, err := s.Submit(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, req.Sequence)
	}
	if seqs[0] != 0x7FFFFFFF || seqs[1] != 1 || seqs[2] != 2 {
		t.Fatalf("sequence numbers %x", seqs)
	}
}

func TestWritesCoalesce(t *testing.T) {
	_, addr := testServer(t, submitOK(), nil)
	s := dial(t, addr, Config{Window: 100})
	done := make(chan *Call, 100)
	for i := 0; i < 100; i++ {
		s.Go(context.Background(), &SubmitSM{DestinationAddr: "1"}, done)
	}
	for i := 0; i < 100; i++ {
		if c := <-done; c.Err != nil {
			t.Fatal(c.Err)
		}
	}
	if st := s.Stats(); st.Writes >= st.Sent {
		t.Fatalf("%d writes for %d PDUs: not coalesced", st.Writes, st.Sent)
	}
}

func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv := &Server{Handler: submitOK()}
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		go srv.Serve(l)
		p := NewPool(PoolConfig{Addr: l.Addr().String(), Binds: 2, Mode: ModeTxRx, Session: Config{SystemID: "x", EnquireLinkInterval: 10 * time.Millisecond}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := p.Submit(ctx, &SubmitSM{DestinationAddr: "1"}); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left running:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	_, addr := testServer(t, submitOK(), func(s *Server) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} })
	// Verified against the CA: works.
	s := dial(t, addr, Config{TLS: &tls.Config{RootCAs: pool}})
	if _, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"}); err != nil {
		t.Fatal(err)
	}
	// Unknown CA: refused, unless the config says not to verify.
	if _, err := Dial(context.Background(), addr, Config{SystemID: "x", TLS: &tls.Config{}}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("unverified certificate accepted: %v", err)
	}
	s2 := dial(t, addr, Config{TLS: &tls.Config{InsecureSkipVerify: true}})
	if !s2.Bound() {
		t.Fatal("not bound")
	}
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smsc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestAbortFromHandler: a handler may cut its own connection.
func TestAbortFromHandler(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		s.Abort()
		return nil
	})
	_, addr := testServer(t, h, nil)
	s := dial(t, addr, Config{ResponseTimeout: 5 * time.Second})
	_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"})
	if !errors.Is(err, ErrLinkLost) {
		t.Fatalf("submit on a connection the server cut: %v", err)
	}
}

// restartServer starts a new Server on addr, once the old one has let the
// port go; it is closed with the test.
func restartServer(t *testing.T, addr string) *Server {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: submitOK()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return srv
}
