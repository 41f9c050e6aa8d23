package otpd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"golang.org/x/time/rate"
)

// The SMPP door: applications that speak only SMPP (privacyIDEA's SMPP
// provider, Kannel, legacy ESMEs) bind to otpd with a system_id and
// password of an API key; their submit_sm goes through the durable outbox
// and the pooled binds, their receipts come back as deliver_sm.

const callbackSMPP = "smpp" // a receipt to an application's receiver bind; url is its system_id

// errNoReceiver holds a receipt while the application has no receiver up.
var errNoReceiver = errors.New("no receiver bind of the application is up")

// SMPPAccount is an API key's SMPP credentials.
type SMPPAccount struct {
	SystemID string
	KeyID    string
	TPS      float64 // submits a second, 0 for none
	hash     []byte
}

func hashSMPPPassword(systemID, pw string) []byte {
	h := sha256.Sum256([]byte("otpd smpp password v1\x00" + systemID + "\x00" + pw))
	return h[:]
}

// NewSMPPPassword draws an 8-character password (SMPP allows at most 8).
func NewSMPPPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// CreateSMPPAccount gives an API key SMPP credentials; only a hash of the
// password is stored.
func CreateSMPPAccount(ctx context.Context, st *Store, keyID, systemID, password string, tps float64) error {
	switch {
	case systemID == "" || len(systemID) > smpp.MaxSystemID-1:
		return fmt.Errorf("smpp system_id must be 1 to %d characters", smpp.MaxSystemID-1)
	case password == "" || len(password) > smpp.MaxPassword-1:
		return fmt.Errorf("smpp password must be 1 to %d characters, as SMPP 3.4 allows", smpp.MaxPassword-1)
	case tps < 0:
		return fmt.Errorf("smpp tps must not be negative")
	}
	return st.insertSMPPAccount(ctx, systemID, hashSMPPPassword(systemID, password), keyID, tps)
}

// SMPPDoor is otpd's own SMPP listener.
type SMPPDoor struct {
	svc   *Service
	hooks *Dispatcher
	srv   *smpp.Server
	ln    net.Listener
	done  chan struct{}

	mu       sync.Mutex
	accounts map[*smpp.Session]*SMPPAccount
	rx       map[string][]*smpp.Session // receiver binds by system_id
	limiters map[string]*rate.Limiter
}

// StartSMPPDoor listens on addr (SMPP over TLS when tlsConfig is set).
// Start it before the dispatcher, which then delivers its receipts.
func StartSMPPDoor(svc *Service, hooks *Dispatcher, addr string, tlsConfig *tls.Config) (*SMPPDoor, error) {
	d := &SMPPDoor{svc: svc, hooks: hooks, done: make(chan struct{}), accounts: map[*smpp.Session]*SMPPAccount{},
		rx: map[string][]*smpp.Session{}, limiters: map[string]*rate.Limiter{}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smpp door: %w", err)
	}
	d.ln = ln
	d.srv = &smpp.Server{Handler: d, Authenticate: d.authenticate, OnBound: d.onBound, OnClosed: d.onClosed,
		SystemID: "otpd", Logger: slog.New(zapslog.NewHandler(svc.log.Core(), zapslog.WithName("smpp-door"))), Session: smpp.Config{Window: 10}, TLSConfig: tlsConfig}
	hooks.smpp = d
	d.recoverParts()
	go func() {
		defer close(d.done)
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, smpp.ErrServerClosed) {
			svc.log.Error("the SMPP door stopped", zap.Error(err))
		}
	}()
	return d, nil
}

// Addr is the listener's address.
func (d *SMPPDoor) Addr() string { return d.ln.Addr().String() }

// Shutdown unbinds the applications and stops listening.
func (d *SMPPDoor) Shutdown(ctx context.Context) error {
	err := d.srv.Shutdown(ctx)
	<-d.done
	return err
}

func (d *SMPPDoor) authenticate(ctx context.Context, s *smpp.Session, b *smpp.Bind) smpp.CommandStatus {
	acc, err := d.svc.store.smppAccount(ctx, b.SystemID)
	if err != nil {
		d.svc.log.Warn("reading an SMPP account failed", zap.Error(err))
		return smpp.ESME_RBINDFAIL
	}
	if acc == nil {
		// The same work as for a known account, so timing does not tell.
		subtle.ConstantTimeCompare(hashSMPPPassword(b.SystemID, b.Password), make([]byte, 32))
		return smpp.ESME_RINVSYSID
	}
	if subtle.ConstantTimeCompare(hashSMPPPassword(b.SystemID, b.Password), acc.hash) != 1 {
		return smpp.ESME_RINVPASWD
	}
	if _, err := d.svc.access(ctx, acc.KeyID, ScopeMessages); err != nil {
		return smpp.ESME_RBINDFAIL // revoked, expired, or without the messages scope
	}
	if nets, err := d.svc.store.keyNetworks(ctx, acc.KeyID); err != nil {
		return smpp.ESME_RBINDFAIL
	} else if k := (&APIKey{Networks: nets}); !k.Allows(clientAddr(s.RemoteAddr().String())) {
		return smpp.ESME_RBINDFAIL // the key's networks hold for its SMPP binds too
	}
	d.mu.Lock()
	d.accounts[s] = acc
	if b.Type.CanReceive() {
		d.rx[acc.SystemID] = append(d.rx[acc.SystemID], s)
	}
	if _, ok := d.limiters[acc.SystemID]; !ok && acc.TPS > 0 {
		d.limiters[acc.SystemID] = rate.NewLimiter(rate.Limit(acc.TPS), max(1, int(acc.TPS)))
	}
	d.mu.Unlock()
	return smpp.ESME_ROK
}

func (d *SMPPDoor) onBound(s *smpp.Session) {
	if !s.BindType().CanReceive() {
		return
	}
	d.mu.Lock()
	acc := d.accounts[s]
	d.mu.Unlock()
	if acc == nil {
		return
	}
	// The receipts held for this application go out now.
	now := d.svc.now().UTC()
	if err := d.svc.store.Write(context.Background(), func(tx *Tx) error { return dueHeldReceipts(tx, acc.SystemID, now) }); err != nil {
		d.svc.log.Warn("releasing held receipts failed; they go out at their next look", zap.Error(err))
	}
	d.hooks.wakeUp()
}

func (d *SMPPDoor) onClosed(s *smpp.Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	acc := d.accounts[s]
	delete(d.accounts, s)
	if acc == nil {
		return
	}
	list := d.rx[acc.SystemID]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(d.rx, acc.SystemID)
	} else {
		d.rx[acc.SystemID] = list
	}
}

// smppStatus maps the service's refusals onto command_status.
func smppStatus(err error) smpp.CommandStatus {
	var e *APIError
	if !errors.As(err, &e) {
		return smpp.ESME_RSYSERR
	}
	switch e.Code {
	case "invalid_phone", "country_not_allowed":
		return smpp.ESME_RINVDSTADR
	case "invalid_sender", "sender_not_allowed":
		return smpp.ESME_RINVSRCADR
	case "number_type_not_allowed", "phone_blocked":
		return smpp.ESME_RINVDSTADR
	case "invalid_text", "text_too_long":
		return smpp.ESME_RINVMSGLEN
	case "rate_limited":
		return smpp.ESME_RTHROTTLED
	}
	return smpp.ESME_RSYSERR
}

// ServeSMPP answers an application's requests: submit_sm is queued
// durably before its submit_sm_resp carries otpd's message id.
func (d *SMPPDoor) ServeSMPP(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
	p, ok := req.(*smpp.SubmitSM)
	if !ok {
		return smpp.Reply(req, smpp.ESME_RINVCMDID)
	}
	d.mu.Lock()
	acc := d.accounts[s]
	var lim *rate.Limiter
	if acc != nil {
		lim = d.limiters[acc.SystemID]
	}
	d.mu.Unlock()
	if acc == nil {
		return smpp.Reply(req, smpp.ESME_RINVBNDSTS)
	}
	if lim != nil && !lim.Allow() {
		return smpp.Reply(req, smpp.ESME_RTHROTTLED)
	}
	part, isPart, err := smpp.MessagePart(p.ESMClass, p.ShortMessage, p.Options)
	if err != nil {
		return smpp.Reply(req, smpp.ESME_RINVESMCLASS)
	}
	text, err := coding.Decode(part.Data, coding.DataCoding(p.DataCoding))
	if err != nil {
		return smpp.Reply(req, smpp.ESME_RINVMSGLEN)
	}
	to := p.DestinationAddr
	if p.DestAddrTON == 1 && !strings.HasPrefix(to, "+") {
		to = "+" + to
	} else {
		to = d.svc.gatewayPhone(to)
	}
	if isPart {
		return d.submitPart(ctx, p, acc, part, to, text)
	}
	mr := MessageRequest{To: to, Text: text, From: p.SourceAddr}
	if p.RegisteredDelivery&0x03 != 0 {
		d.svc.registerCallback(&mr.after, callbackSMPP, acc.SystemID, "", "", acc.KeyID)
	}
	m, err := d.svc.SendMessage(ctx, mr, acc.KeyID)
	if err != nil {
		return smpp.Reply(req, smppStatus(err))
	}
	resp := smpp.Reply(req, smpp.ESME_ROK).(*smpp.SubmitSMResp)
	resp.MessageID = m.ID
	return resp
}

// smppReceipt is what the queue keeps of a receipt for an application.
type smppReceipt struct {
	ID        string    `json:"id"`
	IDs       []string  `json:"ids,omitempty"` // a long message's: one receipt for each segment's id
	State     string    `json:"state"`
	Stat      string    `json:"stat"`
	Err       string    `json:"err"`
	Phone     string    `json:"phone"`
	Sender    string    `json:"sender"`
	Submitted time.Time `json:"submitted"`
	Done      time.Time `json:"done"`
}

func dlrState(state string) dlr.State {
	switch state {
	case StateDelivered:
		return dlr.Delivered
	case StateUndeliverable:
		return dlr.Undeliverable
	case StateExpired:
		return dlr.Expired
	case StateRejected:
		return dlr.Rejected
	}
	return dlr.Unknown
}

// deliver sends a queued receipt to a receiver bind of its application;
// errNoReceiver while none is up.
func (d *SMPPDoor) deliver(ctx context.Context, q *queuedCallback) error {
	var r smppReceipt
	if err := json.Unmarshal(q.Body, &r); err != nil {
		return fmt.Errorf("unreadable receipt: %w", err)
	}
	d.mu.Lock()
	var s *smpp.Session
	for _, x := range d.rx[q.URL] {
		if x.Bound() {
			s = x
			break
		}
	}
	d.mu.Unlock()
	if s == nil {
		return errNoReceiver
	}
	st := dlrState(r.State)
	stat := r.Stat
	if stat == "" {
		stat = st.Stat()
	}
	errCode := r.Err
	if errCode == "" {
		errCode = "000"
	}
	dlvrd := 0
	if st == dlr.Delivered {
		dlvrd = 1
	}
	ids := r.IDs
	if len(ids) == 0 {
		ids = []string{r.ID}
	}
	for _, id := range ids {
		p := smpp.ReceiptDeliverSM(id, "", dlr.Receipt{ID: id, Sub: 1, Dlvrd: dlvrd, SubmitDate: r.Submitted, DoneDate: r.Done,
			Stat: stat, Err: errCode, State: st})
		p.SourceAddrTON, p.SourceAddrNPI, p.SourceAddr = 1, 1, strings.TrimPrefix(r.Phone, "+")
		p.DestinationAddr = r.Sender
		resp, err := s.Deliver(ctx, p)
		if err != nil {
			return err
		}
		if resp.Status != smpp.ESME_ROK {
			return fmt.Errorf("deliver_sm answered %s", resp.Status)
		}
	}
	return nil
}

// smppReceiptBody is the queued form of a receipt for the SMPP door.
func smppReceiptBody(messageID string, c *callbackTarget, at time.Time) []byte {
	r := smppReceipt{ID: messageID, State: c.State, Stat: c.Stat, Err: c.Err, Phone: c.Phone, Sender: c.Sender,
		Submitted: c.CreatedAt, Done: at}
	if c.AccountSid != "" { // for the SMPP door: the ids its segments were given
		r.IDs = strings.Split(c.AccountSid, ",")
	}
	b, _ := json.Marshal(r)
	return b
}

// submitPart takes one segment of a long message (UDH or sar_*): each is
// stored durably and answered with an id of its own; the last one queues
// the whole text, which otpd splits again for its SMSC. The receipt then
// goes back once for each segment's id.
func (d *SMPPDoor) submitPart(ctx context.Context, p *smpp.SubmitSM, acc *SMPPAccount, part smpp.Part, to, text string) smpp.PDU {
	if part.Seq < 1 || part.Seq > part.Total {
		return smpp.Reply(p, smpp.ESME_RINVESMCLASS)
	}
	if int(part.Total) > maxSegments {
		return smpp.Reply(p, smpp.ESME_RINVMSGLEN)
	}
	if _, err := d.svc.parsePhone(to); err != nil {
		return smpp.Reply(p, smpp.ESME_RINVDSTADR) // refused at the first segment, not the last
	}
	if err := d.svc.checkSender(ctx, acc.KeyID, p.SourceAddr); err != nil {
		return smpp.Reply(p, smpp.ESME_RINVSRCADR)
	}
	key := fmt.Sprintf("%s|%s|%d|%d", to, p.SourceAddr, part.Ref, part.Total)
	id := NewID("msg")
	sp := smppPart{Seq: int(part.Seq), Total: int(part.Total), PartID: id, Sealed: d.svc.sec.Seal(id, text), Receipts: p.RegisteredDelivery&0x03 != 0}
	var all []smppPart
	err := d.svc.store.Write(ctx, func(tx *Tx) error {
		var err error
		all, err = storeSMPPPart(tx, acc.SystemID, key, sp, d.svc.now().UTC())
		return err
	})
	if err != nil {
		return smpp.Reply(p, smpp.ESME_RSYSERR)
	}
	if all != nil {
		if err := d.forward(ctx, acc, key, to, p.SourceAddr, all); err != nil {
			// The segments stay stored: the application's retry of this
			// one queues the message.
			return smpp.Reply(p, smppStatus(err))
		}
	}
	resp := smpp.Reply(p, smpp.ESME_ROK).(*smpp.SubmitSMResp)
	resp.MessageID = id
	return resp
}

// errPartsGone: another submit of the last segment queued the message.
var errPartsGone = errors.New("the segments were queued already")

// forward queues a long message whose segments all came.
func (d *SMPPDoor) forward(ctx context.Context, acc *SMPPAccount, key, to, from string, parts []smppPart) error {
	var b strings.Builder
	ids := make([]string, 0, len(parts))
	receipts := false
	for _, q := range parts {
		t, err := d.svc.sec.Open(q.PartID, q.Sealed)
		if err != nil {
			return err
		}
		b.WriteString(t)
		ids = append(ids, q.PartID)
		receipts = receipts || q.Receipts
	}
	mr := MessageRequest{To: to, Text: b.String(), From: from}
	mr.after.add(func(tx *Tx, _ string, m *Message) error {
		ok, err := dropSMPPParts(tx, acc.SystemID, key)
		if err == nil && !ok {
			err = errPartsGone
		}
		return err
	})
	if receipts {
		d.svc.registerCallback(&mr.after, callbackSMPP, acc.SystemID, "", strings.Join(ids, ","), acc.KeyID)
	}
	_, err := d.svc.SendMessage(ctx, mr, acc.KeyID)
	if errors.Is(err, errPartsGone) {
		return nil
	}
	return err
}

// staleParts is how long the segments of an incomplete long message wait
// for the rest.
const staleParts = 24 * time.Hour

// recoverParts, at start, queues the long messages whose segments all came
// but which were not queued (otpd stopped in between), and drops the
// segments of messages that stayed incomplete for staleParts.
func (d *SMPPDoor) recoverParts() {
	ctx := context.Background()
	now := d.svc.now().UTC()
	sets, err := d.svc.store.completeSMPPSets(ctx)
	if err != nil {
		d.svc.log.Warn("reading stored long-message segments failed", zap.Error(err))
		return
	}
	for _, set := range sets {
		acc, err := d.svc.store.smppAccount(ctx, set.SystemID)
		if err != nil || acc == nil {
			continue
		}
		to, from, ok := splitPartKey(set.Key)
		if !ok {
			continue
		}
		if err := d.forward(ctx, acc, set.Key, to, from, set.Parts); err != nil {
			d.svc.log.Warn("queueing a stored long message failed", zap.Error(err))
		}
	}
	if err := d.svc.store.Write(ctx, func(tx *Tx) error { return dropStaleSMPPParts(tx, now.Add(-staleParts)) }); err != nil {
		d.svc.log.Warn("dropping stale long-message segments failed", zap.Error(err))
	}
}

// splitPartKey reads the number and sender back from a part key.
func splitPartKey(key string) (to, from string, ok bool) {
	f := strings.Split(key, "|")
	if len(f) != 4 {
		return "", "", false
	}
	return f[0], f[1], true
}
