package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"log/slog"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("smpp: server closed")

// Server is the SMSC side of SMPP: it accepts ESME connections, checks
// their binds, enforces the bind state of each session (SMPP 3.4 section
// 2.3: nothing but bind before bind, a receiver may not submit, one bind per
// session), answers enquire_link and unbind itself, and passes submit_sm,
// data_sm, query_sm, cancel_sm, replace_sm and submit_multi to Handler.
// Shaped like net/http's Server.
type Server struct {
	// Addr is the TCP address ListenAndServe listens on; default
	// "127.0.0.1:2775".
	Addr string
	// Handler answers the ESMEs' requests (see Handler).
	Handler Handler
	// Authenticate decides a bind: ESME_ROK accepts, any other status is
	// sent back in the bind_resp (ESME_RINVPASWD, ESME_RINVSYSID,
	// ESME_RBINDFAIL, ...). Nil accepts every bind.
	Authenticate func(ctx context.Context, s *Session, b *Bind) CommandStatus
	// OnBound is called after a session has bound; OnClosed after a
	// session has ended. Either may be nil.
	OnBound  func(s *Session)
	OnClosed func(s *Session)
	// TLSConfig, when set, makes the server speak SMPP over TLS.
	TLSConfig *tls.Config
	// SystemID is the system_id in bind responses; default "otpd".
	SystemID string
	// Session configures each accepted session: Window (outstanding
	// deliver_sm), ResponseTimeout, EnquireLinkInterval, WriteTimeout,
	// MaxPDULength, HandlerConcurrency, ReuseRequests. Its bind and Handler
	// fields are not used. BindTimeout is how long a connection may stay unbound.
	Session Config
	// Logger receives the server's logs; nil logs nothing.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{}
	closed    bool
	done      chan struct{} // closed with closed set (see closing)
	wg        sync.WaitGroup
}

func (srv *Server) logger() *slog.Logger {
	if srv.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return srv.Logger
}

// ListenAndServe listens on Addr and serves until Shutdown or Close.
func (srv *Server) ListenAndServe() error {
	addr := srv.Addr
	if addr == "" {
		addr = "127.0.0.1:2775"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return srv.Serve(l)
}

// Serve accepts connections on l until Shutdown or Close; it closes l.
func (srv *Server) Serve(l net.Listener) error {
	if srv.TLSConfig != nil {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if srv.listeners == nil {
		srv.listeners = map[net.Listener]struct{}{}
		srv.sessions = map[*Session]struct{}{}
	}
	srv.listeners[l] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	defer srv.wg.Done()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			srv.mu.Lock()
			closed := srv.closed
			srv.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if !temporary(err) {
				srv.mu.Lock()
				delete(srv.listeners, l)
				srv.mu.Unlock()
				l.Close()
				return err
			}
			// As net/http: a temporary error (EMFILE, ENFILE, a timeout)
			// is waited out with a back-off, not fatal. The listener stays
			// in the map, so that Shutdown closes it and ends the wait.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.logger().Warn("smpp: accept failed; retrying", slog.Any("error", err), slog.Duration("in", backoff))
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-srv.closing():
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		srv.serveConn(conn)
	}
}

// temporary reports an Accept error that may pass: a timeout, or an error
// that says it is temporary (EMFILE and ENFILE do, as syscall.Errno).
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// closing is closed once Shutdown or Close has begun.
func (srv *Server) closing() <-chan struct{} {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.done == nil {
		srv.done = make(chan struct{})
		if srv.closed {
			close(srv.done)
		}
	}
	return srv.done
}

func (srv *Server) serveConn(conn net.Conn) {
	cfg := srv.Session
	cfg.Handler = srv.Handler
	cfg.Logger = srv.logger()
	s := newSession(conn, cfg, srv)
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		conn.Close()
		return
	}
	srv.sessions[s] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	s.log().Debug("smpp: connection accepted")
	s.start()
	go func() {
		defer srv.wg.Done()
		// A connection that does not bind in time is closed.
		t := time.NewTimer(s.cfg.BindTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			if s.state.Load() == stateOpen {
				s.log().Info("smpp: no bind within the bind timeout; closing")
				s.abort(ErrClosed)
			}
		case <-s.done:
		}
		<-s.done
		s.wg.Wait()
		if srv.OnClosed != nil && s.BindType() != 0 {
			srv.OnClosed(s)
		}
	}()
}

// handleBind answers a bind on an SMSC session.
func (srv *Server) handleBind(s *Session, b *Bind) {
	resp := &BindResp{Header: Header{Sequence: b.Sequence}, Type: b.Type, SystemID: srv.SystemID}
	if resp.SystemID == "" {
		resp.SystemID = "otpd"
	}
	if s.state.Load() != stateOpen {
		resp.Status = ESME_RALYBND
		s.w.enqueue(resp)
		return
	}
	st := ESME_ROK
	if srv.Authenticate != nil {
		s.w.endBatch() // it may take its time: nothing waits on it
		st = srv.Authenticate(s.ctx, s, b)
		s.w.hold()
	}
	if st != ESME_ROK {
		s.log().Info("smpp: bind refused", slog.String("system_id", b.SystemID), slog.String("bind", b.Type.String()), slog.String("status", st.Name()))
		resp.Status = st
		s.w.enqueue(resp)
		return
	}
	s.systemID.Store(b.SystemID)
	s.bindType.Store(uint32(b.Type))
	s.state.CompareAndSwap(stateOpen, stateBound)
	if b.InterfaceVersion >= InterfaceVersion {
		resp.Options.SetUint(TagScInterfaceVersion, InterfaceVersion)
	}
	s.logp.Store(s.log().With(slog.String("system_id", b.SystemID), slog.String("bind", b.Type.String())))
	s.log().Info("smpp: bound")
	s.w.enqueue(resp)
	if srv.OnBound != nil {
		s.w.endBatch()
		srv.OnBound(s)
		s.w.hold()
	}
}

func (srv *Server) forget(s *Session) {
	srv.mu.Lock()
	delete(srv.sessions, s)
	srv.mu.Unlock()
}

// Sessions returns the sessions now open (bound or not).
func (srv *Server) Sessions() []*Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return slices.Collect(maps.Keys(srv.sessions))
}

func (srv *Server) stopListening() []*Session {
	srv.mu.Lock()
	srv.closed = true
	if srv.done != nil {
		select {
		case <-srv.done:
		default:
			close(srv.done)
		}
	}
	for l := range srv.listeners {
		l.Close()
	}
	out := make([]*Session, 0, len(srv.sessions))
	for s := range srv.sessions {
		out = append(out, s)
	}
	srv.mu.Unlock()
	return out
}

// Shutdown stops accepting, unbinds every session (waiting for its
// outstanding deliver_sm and its unbind_resp, bounded by ctx), closes them
// and waits for every goroutine of the server.
func (srv *Server) Shutdown(ctx context.Context) error {
	sessions := srv.stopListening()
	var wg sync.WaitGroup
	errs := make([]error, len(sessions))
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Close(ctx)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, s := range srv.Sessions() {
			s.Abort()
		}
		<-done
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// Close stops accepting and closes every session at once.
func (srv *Server) Close() error {
	for _, s := range srv.stopListening() {
		s.Abort()
	}
	srv.wg.Wait()
	return nil
}
