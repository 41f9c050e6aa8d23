package smpp

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"log/slog"
)

// Errors of a Session. ErrLinkLost and ErrResponseTimeout mean the request
// may or may not have reached the peer: IsUncertain reports them.
var (
	// ErrClosed: the session is closed or closing and takes no new request.
	ErrClosed = errors.New("smpp: session closed")
	// ErrLinkLost: the connection ended while the request was outstanding.
	ErrLinkLost = errors.New("smpp: link lost with the request outstanding; it may or may not have reached the peer")
	// ErrResponseTimeout: no response came within the response timeout.
	ErrResponseTimeout = errors.New("smpp: no response within the response timeout; the request may or may not have reached the peer")
	// ErrLinkDead: enquire_link went unanswered, so the link was closed.
	ErrLinkDead = errors.New("smpp: enquire_link unanswered; link declared dead")
	// ErrNotBound: the session's bind does not allow this request.
	ErrNotBound = errors.New("smpp: session not bound for this request")
)

// IsUncertain reports whether err leaves it open whether the peer got the
// request: the link was lost, the response timed out, or the caller's
// context ended while the request was in flight.
func IsUncertain(err error) bool {
	return errors.Is(err, ErrLinkLost) || errors.Is(err, ErrResponseTimeout) || errors.Is(err, errAbandoned)
}

var errAbandoned = errors.New("smpp: caller stopped waiting with the request in flight; it may or may not have reached the peer")

// ResponseError is a response that carries an error status, or a
// generic_nack that answered the request.
type ResponseError struct {
	Command CommandID // the request's command
	Status  CommandStatus
	Nack    bool // the peer answered with generic_nack
}

func (e *ResponseError) Error() string {
	if e.Nack {
		return fmt.Sprintf("smpp: %s answered with generic_nack: %v", e.Command, e.Status)
	}
	return fmt.Sprintf("smpp: %s failed: %v", e.Command, e.Status)
}

// Unwrap gives the status, so errors.Is(err, ESME_RTHROTTLED) works.
func (e *ResponseError) Unwrap() error { return e.Status }

// Handler answers the requests a peer sends: deliver_sm, data_sm and
// alert_notification on an ESME session; submit_sm, data_sm, query_sm,
// cancel_sm, replace_sm and submit_multi on an SMSC (Server) session. The
// session answers enquire_link, unbind, bind and generic_nack itself.
//
// ServeSMPP returns the response to send. Returning nil sends nothing: the
// handler may answer later with Session.Respond, or never (a simulator
// dropping responses). alert_notification takes no response. The response
// is encoded before ServeSMPP returns to the session (and Respond encodes
// before it returns), so with HandlerConcurrency 0 a handler may reuse one
// response struct for every request of a session.
type Handler interface {
	ServeSMPP(ctx context.Context, s *Session, req PDU) PDU
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Session, req PDU) PDU

// ServeSMPP calls f.
func (f HandlerFunc) ServeSMPP(ctx context.Context, s *Session, req PDU) PDU { return f(ctx, s, req) }

// Reply builds the response to req with the given status: its command id
// and sequence number set, the body empty. It returns nil for requests
// that take no response (outbind, alert_notification).
func Reply(req PDU, st CommandStatus) PDU {
	c := req.CommandID()
	if !c.HasResponse() {
		return nil
	}
	resp := New(c.Response())
	if resp == nil {
		resp = &GenericNack{}
	}
	h := resp.Head()
	h.Status = st
	h.Sequence = req.Head().Sequence
	return resp
}

// Config configures a Session. The zero value of each field takes the
// default in its comment.
type Config struct {
	// Bind is the bind type (Dial); default BindTransceiver.
	Bind             BindType
	SystemID         string
	Password         string
	SystemType       string
	AddrTON, AddrNPI byte
	AddressRange     string
	// InterfaceVersion sent in the bind; default 0x34.
	InterfaceVersion byte

	// TLS, when set, wraps the connection in TLS (SMPP over TLS).
	TLS *tls.Config

	// Window is the most requests outstanding at once; default 10.
	Window int
	// ResponseTimeout bounds the wait for each response; default 10s.
	ResponseTimeout time.Duration
	// BindTimeout bounds connect and bind; default 10s.
	BindTimeout time.Duration
	// EnquireLinkInterval is the time between enquire_link requests;
	// default 30s, negative disables. An enquire_link unanswered within
	// ResponseTimeout closes the link (ErrLinkDead).
	EnquireLinkInterval time.Duration
	// WriteTimeout bounds one write to the socket; default 10s.
	WriteTimeout time.Duration
	// MaxPDULength is the largest PDU accepted; default 64 KiB.
	MaxPDULength int
	// ReadPoll is how long the read loop of a busy TCP link polls it
	// before it waits for data; zero or negative (the default) never
	// polls. Polling saves the park and wake-up of a wait, but burns CPU
	// that an OTP's HTTP and store work need: measured alternated on a
	// 2-core box it gained nothing end to end (otpd bench otp) and nothing
	// consistent in the SMPP micro-benchmark, so it is opt-in. The link
	// counts as busy while data comes within ReadPoll (of the last wait
	// starting, or by polling).
	ReadPoll time.Duration

	// Handler answers inbound requests. Nil answers deliver_sm and data_sm
	// with ESME_ROK and everything else with ESME_RINVCMDID.
	Handler Handler
	// HandlerConcurrency is how many inbound requests are handled at once,
	// each in its own goroutine; when that many are in progress the session
	// stops reading. 0 calls the handler on the read loop, one at a time
	// (the right choice for handlers that return at once, and only for
	// them: while it runs the session reads nothing, and what it sends
	// waits for the handler to return). Default 0.
	HandlerConcurrency int

	// ReuseRequests, with HandlerConcurrency 0, hands the Handler the same
	// struct for every request of a command (see Reader.Reuse): the handler
	// must copy the byte slices it keeps (ShortMessage, Options values);
	// strings may be kept. Saves allocations on a busy SMSC side.
	ReuseRequests bool

	// OutbindSystemID and OutbindPassword are what AcceptOutbind expects
	// in an outbind: they identify the SMSC (SMPP 3.4 section 4.1.7), not
	// the ESME, so they are not SystemID and Password. An empty
	// OutbindSystemID accepts any outbind.
	OutbindSystemID, OutbindPassword string

	// Logger receives the session's logs; nil logs nothing.
	Logger *slog.Logger

	observe func(*Call) // set by a Pool: sees every finished call
}

func (c *Config) setDefaults() {
	if c.Bind == 0 {
		c.Bind = BindTransceiver
	}
	if c.InterfaceVersion == 0 {
		c.InterfaceVersion = InterfaceVersion
	}
	if c.Window <= 0 {
		c.Window = 10
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = 10 * time.Second
	}
	if c.BindTimeout <= 0 {
		c.BindTimeout = 10 * time.Second
	}
	if c.EnquireLinkInterval == 0 {
		c.EnquireLinkInterval = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// session states
const (
	stateOpen      int32 = iota // connected, not bound
	stateBound                  // bound; see Session.bindType
	stateUnbinding              // Close in progress: no new requests
	stateClosed
)

// Call is one request in flight (see Session.Go).
type Call struct {
	Req  PDU
	Resp PDU   // the response, when one came
	Err  error // nil, a *ResponseError, ErrLinkLost, ErrResponseTimeout, ...
	Done chan *Call

	seq      uint32
	deadline time.Time
	windowed bool
	observe  func(*Call) // the Pool's accounting, before Done
	fn       func(*Call) // GoFunc's function, in place of Done
	sess     *Session    // the session it went out on
}

// notSent reports a call that ended before its request went out: its
// session had closed (which is never uncertain).
func (c *Call) notSent() bool {
	return c.Resp == nil && errors.Is(c.Err, ErrClosed) && !IsUncertain(c.Err)
}

func (c *Call) finish(resp PDU, err error) {
	c.Resp, c.Err = resp, err
	if c.observe != nil {
		c.observe(c)
	}
	if c.fn != nil {
		c.fn(c)
		return
	}
	// Never dropped: a Done channel shared by several calls needs room for
	// all of them, or this waits (on the read loop, for a response) until
	// the caller takes one. Go refuses an unbuffered channel.
	c.Done <- c
}

// checkDone refuses a Done channel without a buffer, as net/rpc does: the
// result is sent from the session's goroutines, which must not wait for
// the caller.
func checkDone(done chan *Call) {
	if done != nil && cap(done) == 0 {
		panic("smpp: Done channel is unbuffered")
	}
}

// Session is one SMPP connection: an ESME's bind to an SMSC (Dial), or an
// SMSC's side of an ESME's bind (Server). It is safe for concurrent use.
type Session struct {
	conn   net.Conn
	cfg    Config
	logp   atomic.Pointer[slog.Logger]
	server *Server // set on the SMSC side

	state    atomic.Int32
	bindType atomic.Uint32 // BindType once bound
	systemID atomic.Value  // string: the bound system_id (SMSC side: the ESME's)

	window chan struct{}

	mu      sync.Mutex
	seq     uint32 // the last sequence number given out
	pending map[uint32]*Call
	drained chan struct{} // closed when pending empties during Close
	err     error         // why the session ended

	w writer

	handlerSem chan struct{}
	ctx        context.Context // ends when the session ends; handlers get it
	cancel     context.CancelFunc
	done       chan struct{} // closed when the session has ended
	wg         sync.WaitGroup
	unbindResp chan struct{}

	// counters
	sent, received, late, writes atomic.Uint64
}

func newSession(conn net.Conn, cfg Config, srv *Server) *Session {
	cfg.setDefaults()
	s := &Session{
		conn:       conn,
		cfg:        cfg,
		server:     srv,
		window:     make(chan struct{}, cfg.Window),
		pending:    make(map[uint32]*Call, cfg.Window),
		done:       make(chan struct{}),
		unbindResp: make(chan struct{}, 1),
	}
	s.logp.Store(cfg.Logger.With(slog.String("peer", conn.RemoteAddr().String())))
	s.systemID.Store("")
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.HandlerConcurrency > 0 {
		s.handlerSem = make(chan struct{}, cfg.HandlerConcurrency)
	}
	s.w.init(s)
	return s
}

// start runs the session's goroutines.
func (s *Session) start() {
	s.wg.Add(3)
	go s.readLoop()
	go s.w.loop()
	go s.timerLoop()
}

// Dial connects to an SMSC and binds as cfg says. A refused bind returns an
// error wrapping the SMSC's command_status (errors.Is(err,
// ESME_RINVPASWD)); a bind that takes longer than BindTimeout (or ctx)
// says so.
func Dial(ctx context.Context, addr string, cfg Config) (*Session, error) {
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.BindTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smpp: connect to %s: %w", addr, err)
	}
	if cfg.TLS != nil {
		tc := cfg.TLS
		if tc.ServerName == "" && !tc.InsecureSkipVerify {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tconn := tls.Client(conn, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("smpp: TLS handshake with %s: %w", addr, err)
		}
		conn = tconn
	}
	return BindConn(ctx, conn, cfg)
}

// BindConn binds over an open connection (for example one that received an
// outbind) and returns the bound session. The connection is closed if the
// bind fails.
func BindConn(ctx context.Context, conn net.Conn, cfg Config) (*Session, error) {
	s := newSession(conn, cfg, nil)
	s.start()
	if err := s.bind(ctx); err != nil {
		s.abort(err)
		s.wg.Wait()
		return nil, err
	}
	return s, nil
}

func (s *Session) bind(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.BindTimeout)
		defer cancel()
	}
	req := &Bind{Type: s.cfg.Bind, SystemID: s.cfg.SystemID, Password: s.cfg.Password, SystemType: s.cfg.SystemType,
		InterfaceVersion: s.cfg.InterfaceVersion, AddrTON: s.cfg.AddrTON, AddrNPI: s.cfg.AddrNPI, AddressRange: s.cfg.AddressRange}
	resp, err := s.Send(ctx, req)
	if err != nil {
		var re *ResponseError
		switch {
		case errors.As(err, &re):
			return fmt.Errorf("smpp: %s as %q refused: %w", req.CommandID(), s.cfg.SystemID, re.Status)
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errAbandoned):
			return fmt.Errorf("smpp: %s as %q: no bind response in time: %w", req.CommandID(), s.cfg.SystemID, context.DeadlineExceeded)
		}
		return fmt.Errorf("smpp: %s as %q: %w", req.CommandID(), s.cfg.SystemID, err)
	}
	br := resp.(*BindResp)
	s.logp.Store(s.log().With(slog.String("system_id", s.cfg.SystemID), slog.String("bind", s.cfg.Bind.String())))
	s.log().Info("smpp bound", slog.String("smsc_system_id", br.SystemID))
	return nil
}

// AcceptOutbind reads an outbind from conn (an SMSC that connected to us),
// checks its system_id and password against cfg.OutbindSystemID and
// cfg.OutbindPassword when OutbindSystemID is set, and binds over the same
// connection with cfg's own credentials, as a receiver (or a transceiver
// when cfg.Bind says so).
func AcceptOutbind(ctx context.Context, conn net.Conn, cfg Config) (*Session, error) {
	if cfg.Bind != BindTransceiver {
		cfg.Bind = BindReceiver
	}
	cfg.setDefaults()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	} else {
		conn.SetReadDeadline(time.Now().Add(cfg.BindTimeout))
	}
	r := NewReader(conn)
	p, err := r.ReadPDU()
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("smpp: waiting for outbind: %w", err)
	}
	ob, ok := p.(*Outbind)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("smpp: expected outbind, got %s", p.CommandID())
	}
	if cfg.OutbindSystemID != "" && (subtle.ConstantTimeCompare([]byte(ob.SystemID), []byte(cfg.OutbindSystemID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(ob.Password), []byte(cfg.OutbindPassword)) != 1) {
		conn.Close()
		return nil, fmt.Errorf("smpp: outbind from %q refused: not the expected SMSC system_id and password", ob.SystemID)
	}
	return BindConn(ctx, &prefixConn{Conn: conn, r: r}, cfg)
}

// prefixConn reads first what a Reader already buffered.
type prefixConn struct {
	net.Conn
	r *Reader
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if c.r != nil {
		if n := c.r.br.Buffered(); n > 0 {
			return c.r.br.Read(b)
		}
		c.r = nil
	}
	return c.Conn.Read(b)
}

func (s *Session) log() *slog.Logger { return s.logp.Load() }

// BindType is the session's bind, zero before it is bound.
func (s *Session) BindType() BindType { return BindType(s.bindType.Load()) }

// SystemID is, on an ESME session, the SMSC's system_id from bind_resp; on
// an SMSC session, the system_id the ESME bound with.
func (s *Session) SystemID() string { return s.systemID.Load().(string) }

// RemoteAddr is the peer's address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// LocalAddr is the local address.
func (s *Session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// Bound reports whether the session is bound and takes requests.
func (s *Session) Bound() bool { return s.state.Load() == stateBound }

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil while it runs, ErrClosed after Close).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats are a session's counters.
type Stats struct {
	Sent, Received, LateResponses uint64
	// Writes is the number of socket writes: below the number of PDUs sent
	// and answered when writes are coalesced under load.
	Writes              uint64
	WindowInUse, Window int
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Received: s.received.Load(), LateResponses: s.late.Load(), Writes: s.writes.Load(), WindowInUse: len(s.window), Window: cap(s.window)}
}

// nextSeq gives the next sequence number: 1 to 0x7FFFFFFF (SMPP 3.4
// section 5.1.4), then 1 again, skipping those still outstanding. The
// caller holds s.mu.
func (s *Session) nextSeq() uint32 {
	for {
		s.seq++
		if s.seq > 0x7FFFFFFF {
			s.seq = 1
		}
		if _, busy := s.pending[s.seq]; !busy {
			return s.seq
		}
	}
}

// Go sends req and returns at once with its Call; the Call is sent on done
// (a buffered channel with room for every call sent on it, or nil for a new
// one of capacity 1) when the response, an error or the timeout comes; an
// unbuffered channel panics, and a full one holds up the session until the
// caller receives. ctx bounds only the wait for a
// free window slot. The request's sequence number is assigned here.
func (s *Session) Go(ctx context.Context, req PDU, done chan *Call) *Call {
	checkDone(done)
	if done == nil {
		done = make(chan *Call, 1)
	}
	c := &Call{Req: req, Done: done, observe: s.cfg.observe}
	s.startCall(ctx, c, true)
	return c
}

// GoFunc is Go with a function in place of the channel: f runs once, when
// the call ends, on the goroutine that ends it (Call.Done is nil). For a
// response that is the session's read loop, which reads nothing more until
// f returns: f must not block. It may start the next request with TryGo.
// A call that fails before it is sent runs f at once, on the caller's
// goroutine, before GoFunc returns (so the caller must not hold a lock f
// takes). Pipelined senders that keep a window full use it to avoid a
// goroutine hand-off per response.
func (s *Session) GoFunc(ctx context.Context, req PDU, f func(*Call)) *Call {
	c := &Call{Req: req, fn: f, observe: s.cfg.observe}
	s.startCall(ctx, c, true)
	return c
}

// TryGo is GoFunc that never waits: when the request cannot go out at once
// (no free window slot, the session not bound for it or closing, the send
// buffer full) it sends nothing, never calls f, and reports false.
func (s *Session) TryGo(req PDU, f func(*Call)) bool {
	return s.startCall(context.Background(), &Call{Req: req, fn: f, observe: s.cfg.observe}, false)
}

// testHookWindowWait, when set, runs as a request starts to wait for a
// window slot.
var testHookWindowWait atomic.Pointer[func()]

// startCall sends c's request, waiting under ctx for a window slot if wait is
// set; without wait it reports false, having done nothing, when the
// request cannot go out at once.
func (s *Session) startCall(ctx context.Context, c *Call, wait bool) bool {
	req := c.Req
	c.windowed = windowed(req.CommandID())
	if err := s.admit(req.CommandID()); err != nil {
		if !wait {
			return false
		}
		c.finish(nil, err)
		return true
	}
	if !req.CommandID().HasResponse() {
		return s.sendUnanswered(c, wait)
	}
	if c.windowed {
		if !wait {
			select {
			case s.window <- struct{}{}:
			default:
				return false
			}
		} else {
			select {
			case s.window <- struct{}{}:
			default:
				if h := testHookWindowWait.Load(); h != nil {
					(*h)()
				}
				select {
				case s.window <- struct{}{}:
				case <-ctx.Done():
					c.finish(nil, fmt.Errorf("smpp: waiting for a window slot: %w", ctx.Err()))
					return true
				case <-s.done:
					c.finish(nil, s.endErr())
					return true
				}
			}
		}
	}
	h := req.Head()
	s.mu.Lock()
	if s.pending == nil { // ended meanwhile
		s.mu.Unlock()
		s.release(c)
		if !wait {
			return false
		}
		c.finish(nil, s.endErr())
		return true
	}
	// Checked again under s.mu, after the wait for a window slot: a Close
	// that began meanwhile has sent, or is about to send, its unbind, and a
	// request behind it would be lost with the link (an uncertain error
	// for one that never left). Close's check of the outstanding requests
	// takes s.mu after its state change, so a request either counts as
	// outstanding there or fails here, certainly not sent.
	if st := s.state.Load(); st != stateBound && !(st == stateUnbinding && req.CommandID() == UnbindID) && !(st == stateOpen && s.server == nil) {
		s.mu.Unlock()
		s.release(c)
		if !wait {
			return false
		}
		c.finish(nil, ErrClosed)
		return true
	}
	c.seq = s.nextSeq()
	c.sess = s
	h.Sequence = c.seq
	h.Status = ESME_ROK
	c.deadline = time.Now().Add(s.cfg.ResponseTimeout)
	// Record the call before writing it, so a fast response always finds it.
	s.pending[c.seq] = c
	s.mu.Unlock()
	var err error
	if wait {
		err = s.w.enqueue(req)
	} else {
		var queued bool
		if queued, err = s.w.tryEnqueue(req); !queued || err != nil {
			// Not sent: take the call back unless the session's end has
			// taken it (and finishes it).
			if s.take(c.seq) != c {
				return true
			}
			s.release(c)
			return false
		}
	}
	if err != nil {
		if s.take(c.seq) == c {
			s.release(c)
			c.finish(nil, err)
		}
		return true
	}
	s.sent.Add(1)
	return true
}

// sendUnanswered sends a request that takes no response (alert_notification,
// outbind): it ends once written to the send buffer, with no window slot
// and nothing outstanding.
func (s *Session) sendUnanswered(c *Call, wait bool) bool {
	s.mu.Lock()
	if s.pending == nil {
		s.mu.Unlock()
		if wait {
			c.finish(nil, s.endErr())
		}
		return wait
	}
	c.seq = s.nextSeq()
	c.sess = s
	h := c.Req.Head()
	h.Sequence, h.Status = c.seq, ESME_ROK
	s.mu.Unlock()
	var err error
	if wait {
		err = s.w.enqueue(c.Req)
	} else if queued, qerr := s.w.tryEnqueue(c.Req); !queued {
		return false
	} else {
		err = qerr
	}
	if err == nil {
		s.sent.Add(1)
	}
	c.finish(nil, err)
	return true
}

// Send sends req and waits for its response. A response with an error
// status returns it together with a *ResponseError. If ctx ends first the
// error says the request may or may not have reached the peer (IsUncertain);
// its window slot stays taken until the response or the response timeout.
func (s *Session) Send(ctx context.Context, req PDU) (PDU, error) {
	c := s.Go(ctx, req, make(chan *Call, 1))
	select {
	case <-c.Done:
		return c.Resp, c.Err
	case <-ctx.Done():
		select {
		case <-c.Done: // finished meanwhile (or never went out)
			return c.Resp, c.Err
		default:
		}
		return nil, fmt.Errorf("%w: %w", errAbandoned, ctx.Err())
	}
}

// Submit sends a submit_sm and returns its response.
func (s *Session) Submit(ctx context.Context, p *SubmitSM) (*SubmitSMResp, error) {
	resp, err := s.Send(ctx, p)
	r, _ := resp.(*SubmitSMResp)
	return r, err
}

// Deliver sends a deliver_sm (SMSC side) and returns its response.
func (s *Session) Deliver(ctx context.Context, p *DeliverSM) (*DeliverSMResp, error) {
	resp, err := s.Send(ctx, p)
	r, _ := resp.(*DeliverSMResp)
	return r, err
}

// EnquireLink sends an enquire_link and waits for its response.
func (s *Session) EnquireLink(ctx context.Context) error {
	_, err := s.Send(ctx, &EnquireLink{})
	return err
}

// Respond sends resp, the answer to an inbound request whose handler
// returned nil. resp's sequence number must be the request's (Reply sets
// it).
func (s *Session) Respond(resp PDU) error {
	if s.state.Load() == stateClosed {
		return ErrClosed
	}
	return s.w.enqueue(resp)
}

// windowed reports whether a request takes a window slot. Session
// management (bind, unbind, enquire_link) does not, so that a full window
// never stops the link from being tested or closed.
func windowed(c CommandID) bool {
	switch c {
	case BindTransmitterID, BindReceiverID, BindTransceiverID, UnbindID, EnquireLinkID:
		return false
	}
	return true
}

// admit checks that the session's state and bind allow sending a request.
func (s *Session) admit(c CommandID) error {
	st := s.state.Load()
	switch {
	case st == stateClosed:
		return s.endErr()
	case st == stateUnbinding && c != UnbindID:
		return ErrClosed
	case st == stateOpen:
		// SMPP 3.4 table 2-1: only a bind (ESME) before the bind; unbind
		// and enquire_link need a bound session.
		if _, isBind := BindTypeOf(c); isBind && s.server == nil {
			return nil
		}
		return ErrNotBound
	case c == EnquireLinkID || c == UnbindID:
		return nil
	case !c.Known() && !c.IsResponse():
		return nil // a vendor's request (UnknownPDU): the peer's business
	}
	bt := s.BindType()
	if s.server == nil { // ESME
		switch c {
		case SubmitSMID, SubmitMultiID, DataSMID, QuerySMID, CancelSMID, ReplaceSMID:
			if !bt.CanSend() {
				return fmt.Errorf("%w: %s on a %s bind", ErrNotBound, c, bt)
			}
			return nil
		}
		return fmt.Errorf("%w: an ESME does not send %s", ErrNotBound, c)
	}
	switch c { // SMSC
	case DeliverSMID, DataSMID, AlertNotificationID:
		if !bt.CanReceive() {
			return fmt.Errorf("%w: %s to a %s bind", ErrNotBound, c, bt)
		}
		return nil
	}
	return fmt.Errorf("%w: an SMSC does not send %s", ErrNotBound, c)
}

func (s *Session) release(c *Call) {
	if c.windowed {
		<-s.window
	}
}

// take removes and returns the pending call with this sequence number.
func (s *Session) take(seq uint32) *Call {
	s.mu.Lock()
	c := s.pending[seq]
	if c != nil {
		delete(s.pending, seq)
		if len(s.pending) == 0 && s.drained != nil {
			close(s.drained)
			s.drained = nil
		}
	}
	s.mu.Unlock()
	return c
}

// endErr is the error of a request that was not sent because the session
// has ended: ErrClosed, naming why it ended. It is never uncertain.
func (s *Session) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil && !errors.Is(s.err, ErrClosed) {
		return fmt.Errorf("%w (%v); the request was not sent", ErrClosed, s.err)
	}
	return ErrClosed
}

// readLoop reads PDUs until the connection ends.
func (s *Session) readLoop() {
	defer s.wg.Done()
	var src io.Reader = s.conn
	if sr, ok := newPollReader(s.conn, s.cfg.ReadPoll); ok {
		src = sr
	}
	r := NewReader(src)
	r.MaxLength = s.cfg.MaxPDULength
	r.Reuse = s.cfg.ReuseRequests && s.handlerSem == nil
	// A batch is the PDUs read without waiting for the connection; what
	// they queue goes out at its end (see writer).
	defer s.w.endBatch()
	batch := false
	handled := 0 // PDUs handled since the read loop last wrote
	for {
		if batch {
			if !r.Buffered() {
				s.w.endBatch()
				batch, handled = false, 0
			} else if s.w.midBatch(handled >= partPDUs) {
				handled = 0
			}
		}
		p, err := r.ReadPDU()
		batch = true
		s.w.hold()
		more := s.handleRead(p, err)
		s.w.unhold()
		handled++
		if !more {
			return
		}
	}
}

// handleRead handles what one read gave: a PDU, a PDU that could not be
// decoded, or the end of the stream (false: the read loop ends).
func (s *Session) handleRead(p PDU, err error) bool {
	if err != nil {
		var pe *PDUError
		if errors.As(err, &pe) {
			s.log().Warn("smpp: bad PDU", slog.Any("error", err))
			s.answerBad(pe)
			return true
		}
		var fe *FramingError
		if errors.As(err, &fe) {
			// Tell the peer why before closing, as far as it listens.
			s.log().Warn("smpp: framing lost; closing", slog.Any("error", err))
			s.w.enqueue(&GenericNack{Header: Header{Status: ESME_RINVCMDLEN, Sequence: fe.Sequence}})
			s.finishAfterFlush(linkErr(err))
			return false
		}
		if s.state.Load() == stateUnbinding || s.state.Load() == stateClosed {
			err = ErrClosed
		}
		s.abort(linkErr(err))
		return false
	}
	s.received.Add(1)
	if p.Head().Command.IsResponse() {
		s.complete(p)
		return true
	}
	return s.dispatch(p)
}

func linkErr(err error) error {
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrLinkLost, err)
}

// answerBad answers a PDU that could not be decoded: with the request's
// response carrying the status when the command is a known request, else
// with generic_nack.
func (s *Session) answerBad(pe *PDUError) {
	h := pe.Header
	if h.Command.IsResponse() {
		// A malformed response still answers its request.
		if c := s.take(h.Sequence); c != nil {
			s.release(c)
			c.finish(nil, fmt.Errorf("smpp: malformed %s: %w", h.Command, pe))
		}
		s.w.enqueue(&GenericNack{Header: Header{Status: pe.Status, Sequence: h.Sequence}})
		return
	}
	// SMPP 3.4: generic_nack for an unknown command_id or a wrong
	// command_length; the request's own response with the status for an
	// invalid field.
	if h.Command.Known() && h.Command.HasResponse() && pe.Status != ESME_RINVCMDID && pe.Status != ESME_RINVCMDLEN {
		if resp := New(h.Command.Response()); resp != nil {
			rh := resp.Head()
			rh.Status, rh.Sequence = pe.Status, h.Sequence
			s.w.enqueue(resp)
			return
		}
	}
	if h.Command == OutbindID || h.Command == AlertNotificationID {
		return
	}
	s.w.enqueue(&GenericNack{Header: Header{Status: pe.Status, Sequence: h.Sequence}})
}

// complete matches a response to its call.
func (s *Session) complete(p PDU) {
	h := p.Head()
	c := s.take(h.Sequence)
	if c == nil {
		s.late.Add(1)
		s.log().Debug("smpp: response without a request in flight (late or unknown); dropped",
			slog.String("command", h.Command.String()), slog.Uint64("seq", uint64(h.Sequence)))
		return
	}
	s.release(c)
	if h.Command == GenericNackID {
		st := h.Status
		if st == ESME_ROK {
			st = ESME_RUNKNOWNERR
		}
		c.finish(p, &ResponseError{Command: c.Req.CommandID(), Status: st, Nack: true})
		return
	}
	if h.Command != c.Req.CommandID().Response() {
		c.finish(p, &ResponseError{Command: c.Req.CommandID(), Status: ESME_RINVCMDID})
		s.log().Warn("smpp: response of the wrong command", slog.String("got", h.Command.String()), slog.String("want", c.Req.CommandID().Response().String()))
		return
	}
	if h.Status != ESME_ROK {
		c.finish(p, &ResponseError{Command: c.Req.CommandID(), Status: h.Status})
		return
	}
	if br, ok := p.(*BindResp); ok {
		// Bound from here on, before the next PDU is read: an SMSC may
		// send deliver_sm right behind its bind_resp.
		s.systemID.Store(br.SystemID)
		s.bindType.Store(uint32(br.Type))
		s.state.CompareAndSwap(stateOpen, stateBound)
	}
	if h.Command == UnbindRespID {
		select {
		case s.unbindResp <- struct{}{}:
		default:
		}
	}
	c.finish(p, nil)
}

// dispatch handles an inbound request; false ends the read loop.
func (s *Session) dispatch(p PDU) bool {
	h := p.Head()
	switch req := p.(type) {
	case *EnquireLink:
		// SMPP 3.4 table 2-1: enquire_link and unbind take a bound session
		// (BOUND_TX, BOUND_RX, BOUND_TRX); before the bind they are answered
		// ESME_RINVBNDSTS, and the bind timeout still closes the link.
		s.w.enqueue(&EnquireLinkResp{Header: Header{Sequence: h.Sequence, Status: s.boundStatus()}})
		return true
	case *Unbind:
		if st := s.boundStatus(); st != ESME_ROK {
			s.w.enqueue(&UnbindResp{Header: Header{Sequence: h.Sequence, Status: st}})
			return true
		}
		s.w.enqueue(&UnbindResp{Header: Header{Sequence: h.Sequence}})
		s.log().Info("smpp: peer unbound")
		s.finishAfterFlush(ErrClosed)
		return false
	case *Bind:
		if s.server == nil {
			s.w.enqueue(Reply(req, ESME_RINVCMDID))
			return true
		}
		s.server.handleBind(s, req)
		return true
	case *Outbind:
		s.log().Warn("smpp: outbind on an open session ignored")
		return true
	}
	if s.state.Load() == stateClosed {
		// Ending (Abort, a cut link): no answer, and nothing more read.
		// Told ESME_RINVBNDSTS, the peer would take a session it saw bound
		// to be wrong; it sees the link lost instead.
		return false
	}
	if st := s.inboundAllowed(h.Command); st != ESME_ROK {
		if resp := Reply(p, st); resp != nil {
			s.w.enqueue(resp)
		} else {
			// alert_notification takes no response, not even a refusal.
			s.log().Warn("smpp: request not allowed on this session; ignored", slog.String("command", h.Command.String()), slog.String("status", st.Name()))
		}
		return true
	}
	if s.handlerSem == nil {
		s.serve(p)
		return true
	}
	select {
	case s.handlerSem <- struct{}{}:
	default:
		// Every handler slot is taken: what the batch queued goes out
		// before the read loop waits for one.
		s.w.endBatch()
		select {
		case s.handlerSem <- struct{}{}:
			s.w.hold()
		case <-s.done:
			return false
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.handlerSem }()
		s.serve(p)
	}()
	return true
}

// boundStatus is ESME_ROK on a bound session (or one unbinding), else
// ESME_RINVBNDSTS.
func (s *Session) boundStatus() CommandStatus {
	if st := s.state.Load(); st != stateBound && st != stateUnbinding {
		return ESME_RINVBNDSTS
	}
	return ESME_ROK
}

// inboundAllowed checks an inbound request against the bind state.
func (s *Session) inboundAllowed(c CommandID) CommandStatus {
	if !c.Known() {
		if s.boundStatus() != ESME_ROK || s.cfg.Handler == nil {
			return ESME_RINVCMDID
		}
		return ESME_ROK // to the Handler as an UnknownPDU
	}
	if st := s.boundStatus(); st != ESME_ROK {
		return st
	}
	bt := s.BindType()
	if s.server != nil { // SMSC: requests from the ESME
		switch c {
		case SubmitSMID, SubmitMultiID, DataSMID, QuerySMID, CancelSMID, ReplaceSMID:
			if !bt.CanSend() {
				return ESME_RINVBNDSTS
			}
			return ESME_ROK
		}
		return ESME_RINVCMDID
	}
	switch c { // ESME: requests from the SMSC
	case DeliverSMID, DataSMID:
		if !bt.CanReceive() {
			return ESME_RINVBNDSTS
		}
		return ESME_ROK
	case AlertNotificationID:
		// SMPP 3.4 section 4.12: sent to a receiver or transceiver.
		if !bt.CanReceive() {
			return ESME_RINVBNDSTS
		}
		return ESME_ROK
	}
	return ESME_RINVCMDID
}

func (s *Session) serve(p PDU) {
	var resp PDU
	if s.cfg.Handler != nil {
		resp = s.cfg.Handler.ServeSMPP(s.ctx, s, p)
	} else {
		switch p.CommandID() {
		case DeliverSMID, DataSMID:
			resp = Reply(p, ESME_ROK)
		default:
			resp = Reply(p, ESME_RINVCMDID)
		}
	}
	if _, unknown := p.(*UnknownPDU); unknown && resp == nil {
		resp = Reply(p, ESME_RINVCMDID) // generic_nack
	}
	if resp == nil || !p.CommandID().HasResponse() {
		return
	}
	resp.Head().Sequence = p.Head().Sequence
	if err := s.w.enqueue(resp); err != nil {
		s.log().Debug("smpp: response not sent", slog.Any("error", err))
	}
}

// timerLoop expires requests past their response timeout and sends
// enquire_link at its interval.
func (s *Session) timerLoop() {
	defer s.wg.Done()
	tick := s.cfg.ResponseTimeout / 10
	if tick > 100*time.Millisecond {
		tick = 100 * time.Millisecond
	}
	if tick < time.Millisecond {
		tick = time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	nextEL := time.Now().Add(s.cfg.EnquireLinkInterval)
	var el *Call
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.expire(now)
			if el != nil {
				select {
				case <-el.Done:
					if el.Err != nil && !errors.Is(el.Err, ErrClosed) {
						var re *ResponseError
						if !errors.As(el.Err, &re) { // any answer, even an error status, proves the link
							s.log().Warn("smpp: enquire_link unanswered; closing the link", slog.Any("error", el.Err))
							s.abort(ErrLinkDead)
							return
						}
					}
					el = nil
				default:
				}
			}
			if s.cfg.EnquireLinkInterval > 0 && el == nil && now.After(nextEL) {
				nextEL = now.Add(s.cfg.EnquireLinkInterval)
				if s.state.Load() == stateBound {
					el = s.Go(context.Background(), &EnquireLink{}, make(chan *Call, 1))
				}
			}
		}
	}
}

// expire fails every call past its deadline.
func (s *Session) expire(now time.Time) {
	var out []*Call
	s.mu.Lock()
	for seq, c := range s.pending {
		if now.After(c.deadline) {
			delete(s.pending, seq)
			out = append(out, c)
		}
	}
	if len(s.pending) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	s.mu.Unlock()
	for _, c := range out {
		s.release(c)
		s.log().Warn("smpp: response timeout", slog.String("command", c.Req.CommandID().String()), slog.Uint64("seq", uint64(c.seq)))
		c.finish(nil, ErrResponseTimeout)
	}
}

// abort ends the session at once: the connection is closed and every
// outstanding request fails with err (wrapped in ErrLinkLost unless it is
// ErrClosed already).
func (s *Session) abort(err error) {
	s.mu.Lock()
	if s.state.Load() == stateClosed && s.pending == nil {
		s.mu.Unlock()
		return
	}
	if s.err == nil {
		s.err = err
	}
	s.state.Store(stateClosed)
	calls := s.pending
	s.pending = nil
	if s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	s.mu.Unlock()
	s.cancel()
	s.conn.Close()
	s.w.close()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	callErr := err
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrLinkDead) {
		callErr = fmt.Errorf("%w: %w", ErrLinkLost, err)
	}
	for _, c := range calls {
		s.release(c)
		c.finish(nil, callErr)
	}
	if s.server != nil {
		s.server.forget(s)
	}
}

// finishAfterFlush ends the session once what is queued has been written.
func (s *Session) finishAfterFlush(err error) {
	s.w.flushThen(func() { s.abort(err) })
}

// Close ends the session gracefully: no new requests, wait for the window
// to drain (bounded by ctx), unbind and wait for unbind_resp, close. Every
// goroutine of the session has ended when it returns.
func (s *Session) Close(ctx context.Context) error {
	if !s.state.CompareAndSwap(stateBound, stateUnbinding) {
		// Not bound (or closing already): SMPP 3.4 has no unbind before a
		// bind, so the link just closes.
		s.abort(ErrClosed)
		s.wg.Wait()
		return nil
	}
	var err error
	// Wait for the outstanding requests.
	s.mu.Lock()
	var drained chan struct{}
	if len(s.pending) > 0 {
		drained = make(chan struct{})
		s.drained = drained
	}
	s.mu.Unlock()
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = fmt.Errorf("smpp: close: window not drained: %w", ctx.Err())
		case <-s.done:
		}
	}
	// Unbind, bounded by ctx and the response timeout.
	uctx, cancel := context.WithTimeout(ctx, s.cfg.ResponseTimeout)
	if _, uerr := s.Send(uctx, &Unbind{}); uerr != nil && err == nil && !errors.Is(uerr, ErrLinkLost) && !errors.Is(uerr, ErrClosed) {
		err = fmt.Errorf("smpp: close: unbind: %w", uerr)
	}
	cancel()
	s.abort(ErrClosed)
	s.wg.Wait()
	return err
}

// Abort closes the connection at once, failing every outstanding request.
// It does not wait for the session's goroutines (so a Handler may call it);
// Done is closed, and Close waits for them.
func (s *Session) Abort() { s.abort(ErrClosed) }
