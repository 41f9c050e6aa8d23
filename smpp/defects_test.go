package smpp

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A request blocked on a full window when Close begins never goes out
// after the unbind: it fails with ErrClosed, which is certain (never
// sent), so a caller does not resubmit a message that may have arrived.
func TestCloseWindowWaiterFailsCertain(t *testing.T) {
	release := make(chan struct{})
	var submits atomic.Int64
	_, addr := testServer(t, HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		if _, ok := req.(*SubmitSM); ok {
			if submits.Add(1) == 1 {
				<-release
			}
			return &SubmitSMResp{MessageID: "1"}
		}
		return Reply(req, ESME_RINVCMDID)
	}), func(s *Server) { s.Session.HandlerConcurrency = 4 })
	s := dial(t, addr, Config{Window: 1})
	first := s.Go(context.Background(), &SubmitSM{DestinationAddr: "1"}, nil)

	waiting := make(chan struct{})
	hook := func() { close(waiting) }
	testHookWindowWait.Store(&hook)
	defer testHookWindowWait.Store(nil)
	second := make(chan error, 1)
	go func() {
		_, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "2"})
		second <- err
	}()
	<-waiting
	testHookWindowWait.Store(nil)

	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	waitFor(t, func() bool { return !s.Bound() }) // Close has begun
	close(release)
	if c := <-first.Done; c.Err != nil {
		t.Fatalf("first submit: %v", c.Err)
	}
	err := <-second
	if !errors.Is(err, ErrClosed) || IsUncertain(err) {
		t.Fatalf("submit blocked on the window during Close: %v; want ErrClosed, certain", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := submits.Load(); n != 1 {
		t.Fatalf("the SMSC got %d submits; want 1", n)
	}
}

func TestNextSeqWrapsSkippingOutstanding(t *testing.T) {
	s := &Session{pending: map[uint32]*Call{1: {}, 3: {}}}
	s.seq = 0x7FFFFFFD
	var got []uint32
	for range 5 {
		got = append(got, s.nextSeq())
	}
	want := []uint32{0x7FFFFFFE, 0x7FFFFFFF, 2, 4, 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sequence numbers %x, want %x", got, want)
		}
	}
	// Many times around: never 0, never above 0x7FFFFFFF.
	s.pending = map[uint32]*Call{}
	s.seq = 0x7FFFFFFF - 2
	for range 10 {
		if v := s.nextSeq(); v == 0 || v > 0x7FFFFFFF {
			t.Fatalf("sequence number %x", v)
		}
	}
}

// Go refuses an unbuffered Done channel (as net/rpc does), and a channel
// shared by several calls gets every result, none dropped.
func TestCallResultsNeverDropped(t *testing.T) {
	_, addr := testServer(t, submitOK(), nil)
	s := dial(t, addr, Config{})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Go accepted an unbuffered Done channel")
			}
		}()
		s.Go(context.Background(), &SubmitSM{DestinationAddr: "1"}, make(chan *Call))
	}()
	done := make(chan *Call, 1)
	const n = 5
	for range n {
		s.Go(context.Background(), &SubmitSM{DestinationAddr: "1"}, done)
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for i := range n {
		select {
		case c := <-done:
			if c.Err != nil {
				t.Fatal(c.Err)
			}
		case <-timeout.C:
			t.Fatalf("%d of %d results came", i, n)
		}
	}
}

// The outbind's system_id and password are the SMSC's, checked against
// OutbindSystemID/OutbindPassword; the bind that follows carries the
// ESME's own.
func TestOutbindOwnCredentials(t *testing.T) {
	run := func(obID, obPW string) (*Session, *Bind, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		got := make(chan *Bind, 1)
		go func() {
			defer close(got)
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			b, err := Marshal(&Outbind{Header: Header{Sequence: 1}, SystemID: obID, Password: obPW})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Write(b); err != nil {
				t.Error(err)
				return
			}
			r := NewReader(c)
			p, err := r.ReadPDU()
			if err != nil {
				return // refused: the ESME closed
			}
			bind, _ := p.(*Bind)
			got <- bind
			if bind == nil {
				return
			}
			b, _ = Marshal(&BindResp{Header: Header{Sequence: bind.Sequence}, Type: bind.Type, SystemID: "SMSC"})
			if _, err := c.Write(b); err != nil {
				t.Error(err)
				return
			}
			r.ReadPDU() // unbind or close
		}()
		conn, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s, err := AcceptOutbind(context.Background(), conn, Config{SystemID: "esme", Password: "esmepw",
			OutbindSystemID: "smsc-7", OutbindPassword: "smscpw"})
		bind := <-got
		return s, bind, err
	}
	s, bind, err := run("smsc-7", "smscpw")
	if err != nil {
		t.Fatalf("outbind with the SMSC's own credentials refused: %v", err)
	}
	if bind == nil || bind.SystemID != "esme" || bind.Password != "esmepw" || bind.Type != BindReceiver {
		t.Fatalf("bind after outbind: %+v", bind)
	}
	s.Abort()
	if _, _, err := run("esme", "esmepw"); err == nil {
		t.Fatal("outbind with the ESME's credentials (not the SMSC's) accepted")
	}
}

// flakyListener returns the errors queued in errs before it accepts.
type flakyListener struct {
	net.Listener
	errs   chan error
	failed chan struct{} // one value per error returned
}

func (l *flakyListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		select {
		case l.failed <- struct{}{}:
		default:
		}
		return nil, err
	default:
	}
	return l.Listener.Accept()
}

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
}

func newFlaky(t *testing.T, n int) *flakyListener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l, errs: make(chan error, n), failed: make(chan struct{}, n)}
	for range n {
		fl.errs <- emfile()
	}
	return fl
}

// Serve waits out temporary Accept errors (EMFILE) and serves on.
func TestServeRetriesTemporaryAcceptErrors(t *testing.T) {
	fl := newFlaky(t, 3)
	srv := &Server{Handler: submitOK()}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(fl) }()
	s := dial(t, fl.Addr().String(), Config{})
	if _, err := s.Submit(context.Background(), &SubmitSM{DestinationAddr: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// A Shutdown while Serve backs off from an Accept error ends it.
func TestShutdownDuringAcceptBackoff(t *testing.T) {
	fl := newFlaky(t, 1000)
	srv := &Server{}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(fl) }()
	<-fl.failed
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-timeout.C:
		t.Fatal("Shutdown hangs while Serve backs off")
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// alert_notification reaches the Handler only on a receiver or
// transceiver bind; unknown requests reach it as an UnknownPDU, and are
// answered with generic_nack ESME_RINVCMDID unless it answers itself.
func TestAlertNotificationAndUnknownPDU(t *testing.T) {
	sessions := make(chan *Session, 2)
	_, addr := testServer(t, submitOK(), func(s *Server) { s.OnBound = func(ss *Session) { sessions <- ss } })
	var mu sync.Mutex
	var seen []PDU
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		if u, ok := req.(*UnknownPDU); ok && u.Command == 0x00010001 {
			return &UnknownPDU{Header: Header{Command: u.Command | 0x80000000}, Body: []byte("ok")}
		}
		return nil
	})
	dial(t, addr, Config{Bind: BindTransmitter, Handler: h})
	txSrv := <-sessions
	dial(t, addr, Config{Bind: BindTransceiver, Handler: h})
	trxSrv := <-sessions
	// An SMSC session may not send alert_notification to a transmitter;
	// the library refuses, so it is written raw here.
	raw, err := Marshal(&AlertNotification{Header: Header{Sequence: 7}, SourceAddr: "1", ESMEAddr: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := txSrv.w.enqueue(&UnknownPDU{Header: Header{Command: AlertNotificationID, Sequence: 7}, Body: raw[HeaderLen:]}); err != nil {
		t.Fatal(err)
	}
	if err := txSrv.EnquireLink(context.Background()); err != nil { // the ESME has read the alert
		t.Fatal(err)
	}
	// alert_notification takes no response: Send returns once it is out.
	if resp, err := trxSrv.Send(context.Background(), &AlertNotification{SourceAddr: "1", ESMEAddr: "2"}); err != nil || resp != nil {
		t.Fatalf("alert_notification: %v, %v", resp, err)
	}
	// Vendor requests from the SMSC side.
	resp, err := trxSrv.Send(context.Background(), &UnknownPDU{Header: Header{Command: 0x00010001}, Body: []byte("hi")})
	if err != nil {
		t.Fatalf("vendor request: %v", err)
	}
	if u, ok := resp.(*UnknownPDU); !ok || string(u.Body) != "ok" {
		t.Fatalf("vendor response %#v", resp)
	}
	_, err = trxSrv.Send(context.Background(), &UnknownPDU{Header: Header{Command: 0x00010002}})
	var re *ResponseError
	if !errors.As(err, &re) || !re.Nack || re.Status != ESME_RINVCMDID {
		t.Fatalf("unanswered vendor request: %v; want generic_nack ESME_RINVCMDID", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var alerts, unknown int
	for _, p := range seen {
		switch p.(type) {
		case *AlertNotification:
			alerts++
		case *UnknownPDU:
			unknown++
		}
	}
	if alerts != 1 || unknown != 2 {
		t.Fatalf("handler saw %d alert_notification (want 1, the transceiver's) and %d unknown PDUs (want 2)", alerts, unknown)
	}
}
