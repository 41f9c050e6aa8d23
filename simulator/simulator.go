// Package simulator is an SMSC simulator built on smpp.Server, for tests and
// CI pipelines: accounts, a message store with decoded and reassembled
// text, delivery receipts after a delay with a configured outcome
// distribution, rules by destination number, fault injection, mobile-
// originated messages and an HTTP API (DESIGN.md, smscsim).
//
// Start one on a free port from a Go test:
//
//	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", Seed: 1})
//	...
//	defer sim.Close(context.Background())
//	// point the code under test at sim.Addr(), then, for each SMS:
//	f := simulator.Filter{To: "+4915112345678"}
//	if last, ok := sim.Latest(f); ok {
//		f.SinceID = last.ID // the cursor: only what completes after it
//	}
//	// ... make the code under test send ...
//	msg, err := sim.WaitForMessage(ctx, f) // never an older SMS; msg.Code is the OTP
//
// (simulatortest.New(t) does the starting, the cleanup and the cursor.)
//
// The submit path runs on each session's read loop and stores the raw user
// data (text is decoded when read); receipts come from one scheduler
// goroutine with a timer heap.
package simulator

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"golang.org/x/time/rate"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

// Simulator is a running SMSC simulator. Its methods are safe for
// concurrent use.
type Simulator struct {
	cfg Config
	log *zap.Logger
	ids idGen
	num atomic.Uint64 // the last message id number given

	srv    *smpp.Server
	ln     net.Listener // nil with SMPPAddr "off"
	tlsLn  net.Listener // nil without TLS
	hub    hub
	sessN  atomic.Uint64 // the last session id given
	httpLn net.Listener
	httpS  *http.Server
	mux    http.Handler
	routes []string // method and pattern of each HTTP route, for Routes

	st    *store
	sets  map[setKey]*message // incomplete concatenated messages (st.mu)
	reasm *coding.Reassembler

	faults   atomic.Pointer[faultState]
	rngMu    sync.Mutex
	rng      *rand.Rand
	accounts map[string]*account

	smu      sync.RWMutex
	sessions map[*smpp.Session]*sess
	rx       map[string][]*sess // receivers (rx, trx) by system_id

	sched   *scheduler
	metrics *metrics

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // Serve, HTTP, session cuts
	closeOnce sync.Once
	closeErr  error
}

type setKey struct {
	key string
	ref uint16
}

type account struct {
	Account
	limiter *rate.Limiter
	binds   int // guarded by Simulator.smu
}

// sess is the simulator's record of a bound session.
type sess struct {
	id       string
	s        *smpp.Session
	acct     *account
	systemID string
	bind     smpp.BindType
	boundAt  time.Time

	requests, submits, rcptSent, rcptAcked, moSent atomic.Uint64

	jobs       []*job            // scratch for ServeSMPP (one request at a time per session)
	submitResp smpp.SubmitSMResp // reused response (see handle)
}

type faultState struct {
	Faults
	hasRequest bool
	tps        *rate.Limiter
}

// Start listens on cfg.SMPPAddr (and cfg.HTTPAddr), serves, and returns.
func Start(cfg Config) (*Simulator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	idStart := uint64(0xA0000000)
	if seed == 0 {
		seed = rand.Int64()
		// Ids from the clock, so that a restarted simulator does not hand
		// out the ids of its previous run again.
		idStart = uint64(time.Now().Unix()) << 24
	}
	sim := &Simulator{
		cfg:      cfg,
		log:      cfg.Logger,
		rng:      rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9E3779B97F4A7C15)),
		sets:     map[setKey]*message{},
		reasm:    coding.NewReassembler(coding.ReassemblerConfig{Timeout: cfg.SegmentTimeout}),
		accounts: map[string]*account{},
		sessions: map[*smpp.Session]*sess{},
		rx:       map[string][]*sess{},
	}
	sim.ids = newIDGen(cfg.MessageIDFormat, sim.rng.Uint64())
	sim.num.Store(idStart)
	sim.st = newStore(cfg.Retention, &sim.ids)
	sim.ctx, sim.cancel = context.WithCancel(context.Background())
	for _, a := range cfg.Accounts {
		ac := &account{Account: a}
		if a.TPS > 0 {
			ac.limiter = rate.NewLimiter(rate.Limit(a.TPS), max(1, int(a.TPS)))
		}
		sim.accounts[a.SystemID] = ac
	}
	sim.metrics = newMetrics(sim)
	sim.st.onDrop = sim.metrics.dropped.Inc
	sim.SetFaults(cfg.Faults)
	sim.mux = sim.newHandler()

	closeAll := func() {
		for _, l := range []net.Listener{sim.ln, sim.tlsLn, sim.httpLn} {
			if l != nil {
				l.Close()
			}
		}
		sim.cancel()
	}
	if cfg.SMPPAddr != "off" {
		ln, err := net.Listen("tcp", cfg.SMPPAddr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("simulator: SMPP listener: %w", err)
		}
		sim.ln = ln
	}
	if cfg.TLS != nil {
		ln, err := net.Listen("tcp", cfg.SMPPTLSAddr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("simulator: SMPP over TLS listener: %w", err)
		}
		tc := cfg.TLS.Clone()
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		sim.tlsLn = tls.NewListener(ln, tc)
	}
	if cfg.HTTPAddr != "" {
		hl, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("simulator: HTTP listener: %w", err)
		}
		sim.httpLn = hl
		sim.httpS = &http.Server{Handler: sim.mux, ReadHeaderTimeout: 10 * time.Second}
	}
	sim.srv = &smpp.Server{
		Handler:      sim,
		Authenticate: sim.authenticate,
		OnBound:      sim.onBound,
		OnClosed:     sim.onClosed,
		SystemID:     cfg.SystemID,
		Session:      smpp.Config{Window: cfg.Window, ReuseRequests: true},
		Logger:       slog.New(zapslog.NewHandler(cfg.Logger.Core())),
	}
	sim.sched = newScheduler(sim)
	for _, ln := range []net.Listener{sim.ln, sim.tlsLn} {
		if ln == nil {
			continue
		}
		sim.wg.Add(1)
		go func() {
			defer sim.wg.Done()
			if err := sim.srv.Serve(ln); err != nil && !errors.Is(err, smpp.ErrServerClosed) {
				sim.log.Error("smscsim: SMPP listener failed", zap.String("addr", ln.Addr().String()), zap.Error(err))
			}
		}()
	}
	if sim.httpS != nil {
		sim.wg.Add(1)
		go func() {
			defer sim.wg.Done()
			if err := sim.httpS.Serve(sim.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				sim.log.Error("smscsim: HTTP listener failed", zap.Error(err))
			}
		}()
	}
	sim.log.Info("smscsim: started", zap.String("smpp", sim.plainAddr()), zap.String("smpp_tls", sim.TLSAddr()), zap.String("http", sim.HTTPAddr()),
		zap.String("dlr_mode", cfg.DLRMode), zap.String("dlr_route", cfg.DLRRoute),
		zap.Int("accounts", len(cfg.Accounts)), zap.Stringer("dlr_delay", cfg.DLRDelay),
		zap.Stringer("dlr_outcomes", cfg.DLROutcomes), zap.String("message_id_format", cfg.MessageIDFormat),
		zap.String("receipt_id_format", cfg.ReceiptIDFormat), zap.Int("retention", cfg.Retention), zap.Int("rules", len(cfg.Rules)))
	return sim, nil
}

// Addr is the plain SMPP listener's host:port, or the TLS listener's
// when there is no plain one.
func (sim *Simulator) Addr() string {
	if sim.ln == nil {
		return sim.TLSAddr()
	}
	return sim.ln.Addr().String()
}

func (sim *Simulator) plainAddr() string {
	if sim.ln == nil {
		return ""
	}
	return sim.ln.Addr().String()
}

// TLSAddr is the SMPP over TLS listener's host:port, "" without one.
func (sim *Simulator) TLSAddr() string {
	if sim.tlsLn == nil {
		return ""
	}
	return sim.tlsLn.Addr().String()
}

// HTTPAddr is the HTTP listener's host:port, "" without one.
func (sim *Simulator) HTTPAddr() string {
	if sim.httpLn == nil {
		return ""
	}
	return sim.httpLn.Addr().String()
}

// Handler is the HTTP API (DESIGN.md's smscsim table), to mount elsewhere.
func (sim *Simulator) Handler() http.Handler { return sim.mux }

// Close stops the simulator gracefully: no new connections, the scheduler
// stopped, every session unbound (bounded by ctx), the HTTP server shut
// down. Every goroutine of the simulator has ended when it returns.
func (sim *Simulator) Close(ctx context.Context) error {
	sim.closeOnce.Do(func() {
		sim.cancel()
		// First the waiters (a long poll on the HTTP API among them), so
		// that the HTTP server's shutdown does not wait for them.
		sim.st.mu.Lock()
		sim.st.closeLocked()
		sim.st.mu.Unlock()
		sim.closeHub()
		sim.sched.close()
		var errs []error
		if err := sim.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("SMPP: %w", err))
		}
		if sim.httpS != nil {
			if err := sim.httpS.Shutdown(ctx); err != nil {
				sim.httpS.Close()
				errs = append(errs, fmt.Errorf("HTTP: %w", err))
			}
		}
		sim.wg.Wait()
		sim.closeErr = errors.Join(errs...)
		sim.log.Info("smscsim: stopped")
	})
	return sim.closeErr
}

// Messages returns the stored messages matching f, newest first (by
// arrival); none for a Filter.SinceID that is no message id.
func (sim *Simulator) Messages(f Filter) []Message {
	snap, err := sim.st.snapshot(f, false)
	if err != nil {
		return nil
	}
	now := time.Now()
	out := make([]Message, len(snap))
	for i := range snap {
		out[i] = sim.export(&snap[i], now)
	}
	return out
}

func (sim *Simulator) export(m *message, now time.Time) Message {
	return m.export(&sim.ids, now, sim.cfg.codeRE)
}

// Message returns the message with the id (that of any of its segments).
func (sim *Simulator) Message(id string) (Message, bool) {
	sim.st.mu.Lock()
	m := sim.st.lookupLocked(id)
	if m == nil {
		sim.st.mu.Unlock()
		return Message{}, false
	}
	c := sim.st.copyLocked(m)
	sim.st.mu.Unlock()
	out := sim.export(&c, time.Now())
	if len(c.pdus) > 0 {
		out.PDUs = make([]string, len(c.pdus))
		for i, b := range c.pdus {
			out.PDUs[i] = hex.EncodeToString(b)
		}
	}
	return out, true
}

// Latest returns the complete message matching f that completed last
// (f.Limit is ignored), and false when there is none.
func (sim *Simulator) Latest(f Filter) (Message, bool) {
	st := sim.st
	st.mu.Lock()
	if st.resolveLocked(&f) != nil {
		st.mu.Unlock()
		return Message{}, false
	}
	m := st.latestLocked(&f)
	if m == nil {
		st.mu.Unlock()
		return Message{}, false
	}
	c := st.copyLocked(m)
	st.mu.Unlock()
	return sim.export(&c, time.Now()), true
}

// WaitForMessage returns the complete message matching f that completed
// last, waiting for one to arrive while there is none (f.Limit is
// ignored). Without f.SinceID or f.Since that is the newest message that
// already exists, however old: to read the message a test is about to
// cause, take the cursor first (Latest, before the send) and wait with
// SinceID set to its id. It returns ctx's error when ctx ends first.
func (sim *Simulator) WaitForMessage(ctx context.Context, f Filter) (Message, error) {
	st := sim.st
	for {
		st.mu.Lock()
		if err := st.resolveLocked(&f); err != nil {
			st.mu.Unlock()
			return Message{}, err
		}
		if found := st.latestLocked(&f); found != nil {
			c := st.copyLocked(found)
			st.mu.Unlock()
			return sim.export(&c, time.Now()), nil
		}
		if st.closed {
			st.mu.Unlock()
			return Message{}, errClosed
		}
		// Registered under the same lock as the look: no completion
		// between the two goes unseen.
		ch, done := st.waitLocked(f.To)
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		done()
		if ctx.Err() != nil {
			return Message{}, fmt.Errorf("simulator: waiting for a message to %q: %w", f.To, ctx.Err())
		}
	}
}

// ErrNotFound is the error for an id that names no stored message or no
// bound session.
var ErrNotFound = errors.New("simulator: not found")

// DeleteMessage forgets the message with the id (any of its segments'
// ids). Receipts already scheduled for it are still sent.
func (sim *Simulator) DeleteMessage(id string) error {
	st := sim.st
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.lookupLocked(id)
	if m == nil {
		return fmt.Errorf("%w: no message with id %q", ErrNotFound, id)
	}
	st.deleteLocked(m)
	for k, x := range sim.sets {
		if x == m {
			delete(sim.sets, k)
		}
	}
	return nil
}

// DeleteMessages forgets the messages matching f (every message for the
// zero Filter, as Reset) and returns how many.
func (sim *Simulator) DeleteMessages(f Filter) (int, error) {
	if f == (Filter{}) {
		n := sim.st.count()
		sim.Reset()
		return n, nil
	}
	st := sim.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.resolveLocked(&f); err != nil {
		return 0, err
	}
	var del []*message
	st.eachLocked(&f, false, func(m *message) bool { del = append(del, m); return true })
	for _, m := range del {
		st.deleteLocked(m)
		for k, x := range sim.sets {
			if x == m {
				delete(sim.sets, k)
			}
		}
	}
	return len(del), nil
}

// ReceiptRequest asks for a message's receipt: its stat word (default
// DELIVRD), err code (default DefaultErr of the stat) and delay from now
// (a fixed delay or a range).
type ReceiptRequest struct {
	Stat  string `json:"stat"`
	Err   string `json:"err"`
	Delay Delay  `json:"delay"`
}

// ErrInvalidReceipt is the error of a ReceiptRequest that cannot be sent.
var ErrInvalidReceipt = errors.New("simulator: invalid receipt")

// ScheduledReceipt is the answer of SendReceipt.
type ScheduledReceipt struct {
	Status  string    `json:"status"` // "scheduled"
	Stat    string    `json:"stat"`
	Err     string    `json:"err"`
	SendAt  time.Time `json:"send_at"`
	Message Message   `json:"message"` // as it is when scheduled
}

// SendReceipt schedules the receipt of the message with the id, one per
// segment received, whatever its registered_delivery asked for and
// whether or not a receipt was sent before: the message takes that
// outcome, and receipts it still owed from before are not sent.
func (sim *Simulator) SendReceipt(id string, r ReceiptRequest) (ScheduledReceipt, error) {
	if r.Stat == "" {
		r.Stat = "DELIVRD"
	}
	state, err := parseStat(r.Stat)
	if err != nil {
		return ScheduledReceipt{}, fmt.Errorf("%w: %w", ErrInvalidReceipt, err)
	}
	if r.Err == "" {
		r.Err = DefaultErr(state)
	} else if len(r.Err) > 3 {
		return ScheduledReceipt{}, fmt.Errorf("%w: err %q: want at most 3 characters", ErrInvalidReceipt, r.Err)
	}
	now := time.Now()
	at := now.Add(sim.drawDelay(r.Delay))
	st := sim.st
	st.mu.Lock()
	m := st.lookupLocked(id)
	if m == nil || m.deleted {
		st.mu.Unlock()
		return ScheduledReceipt{}, fmt.Errorf("%w: no message with id %q", ErrNotFound, id)
	}
	m.rcptGen++
	m.held, m.canceled, m.noReceipt = false, false, false
	m.outcome = Outcome{State: state, Err: r.Err, Weight: 1}
	m.doneAt = at
	m.rcptSentAt, m.rcptAttempts, m.rcptAcked = time.Time{}, 0, 0
	var jobs []*job
	add := func(num uint64, data []byte) {
		jobs = append(jobs, &job{at: at, m: m, num: num, data: data, doneAt: at, outcome: m.outcome, gen: m.rcptGen})
	}
	if m.segNums == nil {
		add(m.num, m.data)
	} else {
		for i, n := range m.segNums {
			if n == 0 {
				continue
			}
			var data []byte
			if i < len(m.parts) {
				data = m.parts[i]
			}
			add(n, data)
		}
	}
	m.rcptWanted = len(jobs)
	c := st.copyLocked(m)
	st.mu.Unlock()
	for _, j := range jobs {
		sim.sched.count(m.systemID, 1)
		sim.sched.add(j)
	}
	return ScheduledReceipt{Status: "scheduled", Stat: state.Stat(), Err: r.Err, SendAt: at, Message: sim.export(&c, now)}, nil
}

// Reset forgets all messages (receipts already scheduled are still sent).
func (sim *Simulator) Reset() {
	sim.st.reset()
	sim.st.mu.Lock()
	clear(sim.sets)
	sim.st.mu.Unlock()
}

// Faults returns the faults in force.
func (sim *Simulator) Faults() Faults { return sim.faults.Load().Faults }

// SetFaults replaces the faults in force. Invalid values (rates outside
// 0..1) are clamped; use Faults.Validate to check first.
func (sim *Simulator) SetFaults(f Faults) {
	clamp := func(v *float64) {
		if !(*v >= 0) {
			*v = 0
		}
		if *v > 1 {
			*v = 1
		}
	}
	for _, v := range []*float64{&f.ErrorRate, &f.ThrottleRate, &f.DropRate, &f.DelayRate, &f.DisconnectRate, &f.DuplicateReceiptRate} {
		clamp(v)
	}
	if f.ErrorStatus == 0 {
		f.ErrorStatus = Status(smpp.ESME_RSYSERR)
	}
	fs := &faultState{Faults: f, hasRequest: f.requestFaults()}
	if f.ThrottleTPS > 0 {
		fs.tps = rate.NewLimiter(rate.Limit(f.ThrottleTPS), max(1, int(f.ThrottleTPS)))
	}
	sim.faults.Store(fs)
	sim.log.Info("smscsim: faults set", zap.Any("faults", f))
}

// SessionInfo describes a bound session.
type SessionInfo struct {
	// ID names the session in DELETE /api/sessions/{id}.
	ID            string    `json:"id"`
	SystemID      string    `json:"system_id"`
	BindType      string    `json:"bind_type"`
	Peer          string    `json:"peer"`
	BoundAt       time.Time `json:"bound_at"`
	Requests      uint64    `json:"requests"`
	Submits       uint64    `json:"submits"`
	ReceiptsSent  uint64    `json:"receipts_sent"`
	ReceiptsAcked uint64    `json:"receipts_acked"`
	MOSent        uint64    `json:"mo_sent"`
	WindowInUse   int       `json:"window_in_use"`
}

// Sessions lists the bound sessions, oldest first.
func (sim *Simulator) Sessions() []SessionInfo {
	sim.smu.RLock()
	out := make([]SessionInfo, 0, len(sim.sessions))
	for _, ss := range sim.sessions {
		out = append(out, SessionInfo{
			ID: ss.id, SystemID: ss.systemID, BindType: bindName(ss.bind), Peer: ss.s.RemoteAddr().String(), BoundAt: ss.boundAt,
			Requests: ss.requests.Load(), Submits: ss.submits.Load(), ReceiptsSent: ss.rcptSent.Load(),
			ReceiptsAcked: ss.rcptAcked.Load(), MOSent: ss.moSent.Load(), WindowInUse: ss.s.Stats().WindowInUse,
		})
	}
	sim.smu.RUnlock()
	sortSessions(out)
	return out
}

// CloseSession ends the bound session with the id: with abrupt, the
// connection is cut at once; else the simulator sends unbind and waits
// for unbind_resp (bounded by ctx) before it closes the connection.
func (sim *Simulator) CloseSession(ctx context.Context, id string, abrupt bool) error {
	var target *sess
	sim.smu.RLock()
	for _, ss := range sim.sessions {
		if ss.id == id {
			target = ss
			break
		}
	}
	sim.smu.RUnlock()
	if target == nil {
		return fmt.Errorf("%w: no session with id %q", ErrNotFound, id)
	}
	sim.log.Info("smscsim: closing a session over the API", zap.String("system_id", target.systemID), zap.String("id", id), zap.Bool("abrupt", abrupt))
	if abrupt {
		target.s.Abort()
		return nil
	}
	err := target.s.Close(ctx)
	if err != nil {
		target.s.Abort()
	}
	return err
}

func sortSessions(out []SessionInfo) {
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].BoundAt.Before(out[j-1].BoundAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
}

func bindName(b smpp.BindType) string {
	switch b {
	case smpp.BindTransmitter:
		return "tx"
	case smpp.BindReceiver:
		return "rx"
	case smpp.BindTransceiver:
		return "trx"
	}
	return "none"
}

// authenticate checks a bind against the accounts.
func (sim *Simulator) authenticate(ctx context.Context, s *smpp.Session, b *smpp.Bind) smpp.CommandStatus {
	sim.smu.Lock()
	defer sim.smu.Unlock()
	if sim.ctx.Err() != nil {
		return smpp.ESME_RBINDFAIL
	}
	ss := &sess{s: s, systemID: b.SystemID, bind: b.Type, boundAt: time.Now(), id: strconv.FormatUint(sim.sessN.Add(1), 10)}
	refuse := func(st smpp.CommandStatus, reason string) smpp.CommandStatus {
		sim.log.Info("smscsim: bind refused: "+reason, zap.String("system_id", b.SystemID), zap.String("bind", bindName(b.Type)),
			zap.String("peer", s.RemoteAddr().String()), zap.String("status", st.Name()))
		sim.metrics.binds(st).Inc()
		return st
	}
	if len(sim.accounts) > 0 {
		a := sim.accounts[b.SystemID]
		switch {
		case a == nil:
			return refuse(smpp.ESME_RINVSYSID, "unknown system_id")
		case a.Password != b.Password:
			return refuse(smpp.ESME_RINVPASWD, "wrong password")
		case a.SystemType != "" && a.SystemType != b.SystemType:
			return refuse(smpp.ESME_RINVSYSTYP, fmt.Sprintf("system_type %q, the account wants %q", b.SystemType, a.SystemType))
		case len(a.BindTypes) > 0 && !bindAllowed(a.BindTypes, b.Type):
			return refuse(smpp.ESME_RBINDFAIL, "bind type not allowed for the account")
		case a.MaxBinds > 0 && a.binds >= a.MaxBinds:
			return refuse(smpp.ESME_RBINDFAIL, fmt.Sprintf("the account has its %d binds already", a.MaxBinds))
		}
		a.binds++
		ss.acct = a
	}
	sim.sessions[s] = ss
	if ss.bind.CanReceive() {
		// Listed before the bind_resp goes out, so that a receiver is
		// known to InjectMO as soon as its ESME is bound (the scheduler
		// and InjectMO skip sessions not Bound yet).
		sim.rx[ss.systemID] = append(sim.rx[ss.systemID], ss)
	}
	sim.metrics.binds(smpp.ESME_ROK).Inc()
	return smpp.ESME_ROK
}

func bindAllowed(list []smpp.BindType, b smpp.BindType) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

func (sim *Simulator) onBound(s *smpp.Session) {
	ss := sim.session(s)
	if ss == nil {
		return
	}
	sim.log.Info("smscsim: bound", zap.String("system_id", ss.systemID), zap.String("bind", bindName(ss.bind)), zap.String("peer", s.RemoteAddr().String()))
	if ss.bind.CanReceive() {
		sim.sched.rebind(ss.systemID)
	}
}

func (sim *Simulator) onClosed(s *smpp.Session) {
	sim.smu.Lock()
	ss := sim.sessions[s]
	if ss != nil {
		delete(sim.sessions, s)
		if ss.acct != nil {
			ss.acct.binds--
		}
		list := sim.rx[ss.systemID]
		for i, x := range list {
			if x == ss {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(sim.rx, ss.systemID)
		} else {
			sim.rx[ss.systemID] = list
		}
	}
	sim.smu.Unlock()
	if ss != nil {
		sim.log.Info("smscsim: session closed", zap.String("system_id", ss.systemID), zap.String("bind", bindName(ss.bind)),
			zap.Uint64("requests", ss.requests.Load()), zap.NamedError("reason", s.Err()))
	}
}

func (sim *Simulator) hasReceiver(systemID string) bool {
	sim.smu.RLock()
	defer sim.smu.RUnlock()
	return len(sim.rx[systemID]) > 0
}

func (sim *Simulator) session(s *smpp.Session) *sess {
	sim.smu.RLock()
	ss := sim.sessions[s]
	sim.smu.RUnlock()
	return ss
}

// chance draws true with probability p.
func (sim *Simulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	sim.rngMu.Lock()
	v := sim.rng.Float64()
	sim.rngMu.Unlock()
	return v < p
}

func (sim *Simulator) drawDelay(d Delay) time.Duration {
	if d.Max <= d.Min {
		return d.Min
	}
	sim.rngMu.Lock()
	v := sim.rng.Int64N(int64(d.Max-d.Min) + 1)
	sim.rngMu.Unlock()
	return d.Min + time.Duration(v)
}

var delivered = Outcome{State: dlr.Delivered, Err: "000", Weight: 1}

func (sim *Simulator) drawOutcome() Outcome {
	o := sim.cfg.DLROutcomes
	switch len(o) {
	case 0:
		return delivered
	case 1:
		return o[0]
	}
	total := 0.0
	for _, x := range o {
		total += x.Weight
	}
	sim.rngMu.Lock()
	v := sim.rng.Float64() * total
	sim.rngMu.Unlock()
	for _, x := range o {
		if v < x.Weight {
			return x
		}
		v -= x.Weight
	}
	return o[len(o)-1]
}

func (sim *Simulator) rule(dest string) *Rule {
	for i := range sim.cfg.Rules {
		if sim.cfg.Rules[i].matches(dest) {
			return &sim.cfg.Rules[i]
		}
	}
	return nil
}

// cut closes a session in its own goroutine (the caller may be its read
// loop).
func (sim *Simulator) cut(s *smpp.Session, why string) {
	sim.log.Info("smscsim: fault: cutting the connection", zap.String("system_id", s.SystemID()), zap.String("why", why))
	sim.wg.Add(1)
	go func() {
		defer sim.wg.Done()
		s.Abort()
	}()
}
