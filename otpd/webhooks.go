package otpd

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Kinds of callback and states of a queued report.
const (
	callbackTwilio  = "twilio"  // a Twilio StatusCallback: form, X-Twilio-Signature
	callbackWebhook = "webhook" // otpd's own: JSON, Otpd-Signature

	callbackPending = "pending"
	callbackDone    = "done"
	callbackFailed  = "failed"
)

// WebhookSignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// t.body>", so a receiver can reject old (replayed) reports.
const WebhookSignatureHeader = "Otpd-Signature"

// doorState is what the front doors keep in the Service.
type doorState struct {
	// open holds the ids of the messages whose callback has yet to hear
	// of a final state: only their receipts look for it in the store. It
	// is read from the store on first use (all, when that fails), filled
	// before a registering write commits, and emptied once the report is
	// posted (it is durable in the queue by then).
	open     sync.Map
	once     sync.Once
	loadFail atomic.Bool
	wake     chan struct{} // tells the dispatcher that reports are due

	settingsMu sync.Mutex
	settings   map[string]cachedSettings // per key id
}

type cachedSettings struct {
	s  KeySettings
	at time.Time
}

// settingsTTL is how long a key's settings are cached: changes made with
// `otpd keys settings` take effect within it.
const settingsTTL = 10 * time.Second

// KeySettings are the per-key options of the front doors, stored as JSON.
type KeySettings struct {
	// CallbackURL receives every delivery report of the key's messages
	// that name no callback of their own.
	CallbackURL string `json:"callback_url,omitempty"`
	// PhoneParams and TextParams name the parameters /gateway/http reads
	// the number and the text from (the defaults when empty).
	PhoneParams []string `json:"phone_params,omitempty"`
	TextParams  []string `json:"text_params,omitempty"`
	// Success and Failure are /gateway/http's plain-text answers:
	// {id} is the message id, {code} and {reason} the error's.
	Success string `json:"success,omitempty"`
	Failure string `json:"failure,omitempty"`
}

// SetKeySettings stores a key's door settings.
func SetKeySettings(ctx context.Context, st *Store, keyID string, ks KeySettings) error {
	if ks.CallbackURL != "" {
		if err := checkCallbackURL(ks.CallbackURL); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(ks)
	return st.setKeySettings(ctx, keyID, string(b))
}

// GetKeySettings reads a key's door settings.
func GetKeySettings(ctx context.Context, st *Store, keyID string) (KeySettings, error) {
	var ks KeySettings
	v, err := st.keySettings(ctx, keyID)
	if err != nil || v == "" {
		return ks, err
	}
	err = json.Unmarshal([]byte(v), &ks)
	return ks, err
}

// keySettings are a key's settings, cached for settingsTTL.
func (s *Service) keySettings(ctx context.Context, keyID string) (KeySettings, error) {
	if keyID == "" {
		return KeySettings{}, nil
	}
	now := time.Now()
	d := &s.doors
	d.settingsMu.Lock()
	c, ok := d.settings[keyID]
	d.settingsMu.Unlock()
	if ok && now.Sub(c.at) < settingsTTL {
		return c.s, nil
	}
	ks, err := GetKeySettings(ctx, s.store, keyID)
	if err != nil {
		return KeySettings{}, err
	}
	d.settingsMu.Lock()
	if d.settings == nil || len(d.settings) > 10000 {
		d.settings = map[string]cachedSettings{}
	}
	d.settings[keyID] = cachedSettings{s: ks, at: now}
	d.settingsMu.Unlock()
	return ks, nil
}

// afterWrite is what a front door writes in the transaction that creates
// a message (and its challenge), so that both commit or neither does.
type afterWrite struct {
	fns      []func(tx *Tx, challengeID string, m *Message) error
	callback bool // one of fns registers the message's callback
}

func (a afterWrite) run(tx *Tx, challengeID string, m *Message) error {
	for _, fn := range a.fns {
		if err := fn(tx, challengeID, m); err != nil {
			return err
		}
	}
	return nil
}

func (a *afterWrite) add(fn func(tx *Tx, challengeID string, m *Message) error) {
	a.fns = append(a.fns, fn)
}

// registerCallback adds the write of a message's callback.
func (s *Service) registerCallback(a *afterWrite, kind, url string, secret string, accountSid, keyID string) {
	a.callback = true
	a.add(func(tx *Tx, _ string, m *Message) error {
		s.loadOpen()
		s.doors.open.Store(m.ID, struct{}{}) // before the commit: a receipt that follows it looks
		var sealed []byte
		if secret != "" {
			sealed = s.sec.Seal("callback:"+m.ID, secret)
		}
		return insertCallback(tx, m.ID, kind, url, sealed, accountSid, keyID)
	})
}

// checkCallbackURL accepts absolute http and https URLs.
func checkCallbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 {
		return apiErr(http.StatusBadRequest, "invalid_callback_url", "callback_url must be an absolute http or https URL")
	}
	return nil
}

// redactURL is a URL without userinfo, query or fragment, which may carry
// credentials or a token (a receiver's callback URL, the database's).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unreadable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// urlInText finds the URLs a post's error quotes (Go's client names the
// URL it posted to, query and all).
var urlInText = regexp.MustCompile(`(?i)https?://[^\s"'<>]+`)

func redactURLs(s string) string {
	return urlInText.ReplaceAllStringFunc(s, redactURL)
}

// withWebhook adds the native webhook to a door's writes: the request's
// callback_url, else the key's, unless the door registers a callback of
// its own.
func (s *Service) withWebhook(ctx context.Context, callbackURL, keyID string, a afterWrite) (afterWrite, error) {
	if a.callback {
		return a, nil
	}
	if callbackURL == "" {
		ks, err := s.keySettings(ctx, keyID)
		if err != nil {
			return a, err
		}
		callbackURL = ks.CallbackURL
	}
	if callbackURL == "" {
		return a, nil
	}
	if err := checkCallbackURL(callbackURL); err != nil {
		return a, err
	}
	s.registerCallback(&a, callbackWebhook, callbackURL, "", "", keyID)
	return a, nil
}

// loadOpen reads, once, the messages whose callbacks are still open.
func (s *Service) loadOpen() {
	s.doors.once.Do(func() {
		ids, err := s.store.openCallbacks(context.Background())
		if err != nil {
			s.log.Warn("reading open callbacks failed; every receipt looks for one", zap.Error(err))
			s.doors.loadFail.Store(true)
			return
		}
		for _, id := range ids {
			s.doors.open.Store(id, struct{}{})
		}
	})
}

// mayReport says whether a message may have a callback to report to.
func (s *Service) mayReport(messageID string) bool {
	if s.shared {
		return true
	}
	s.loadOpen()
	if s.doors.loadFail.Load() {
		return true
	}
	_, ok := s.doors.open.Load(messageID)
	return ok
}

// queueReports queues, in the receipt's own transaction, a report for each
// message of evs that has a callback and reached a final state.
func (s *Service) queueReports(tx *Tx, evs []Event, now time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	queued := false
	for i, ev := range evs {
		if ev.unhooked || i > 0 && evs[i-1].MessageID == ev.MessageID || !s.mayReport(ev.MessageID) {
			continue
		}
		c, err := callbackFor(tx, ev.MessageID)
		if err != nil {
			return err
		}
		if c == nil || !finalState(c.State) {
			continue
		}
		q := &queuedCallback{MessageID: ev.MessageID, Kind: c.Kind, URL: c.URL, KeyID: c.KeyID, NextAttemptAt: now, CreatedAt: now}
		switch c.Kind {
		case callbackTwilio:
			if c.Sender == "" {
				c.Sender = s.cfg.SMSC.SourceAddr
			}
			form := twilioStatusForm(ev.MessageID, c, ev.At)
			q.Status = form.Get("MessageStatus")
			q.ContentType = "application/x-www-form-urlencoded"
			q.Body = []byte(form.Encode())
			token, err := s.sec.Open("callback:"+ev.MessageID, c.Secret)
			if err != nil {
				s.log.Warn("a StatusCallback's token cannot be read; the report goes unsigned", zap.String("message_id", ev.MessageID))
			} else {
				q.Signature = TwilioSignature(token, c.URL, form)
			}
		case callbackSMPP:
			q.Status = c.State
			q.ContentType = "application/json"
			q.Body = smppReceiptBody(ev.MessageID, c, ev.At)
		default:
			q.Status = c.State
			q.ContentType = "application/json"
			body := webhookEvent{Type: "delivery", Event: Event{MessageID: ev.MessageID, ChallengeID: c.ChallengeID, Phone: MaskPhone(c.Phone),
				State: c.State, Stat: c.Stat, Err: c.Err, Segments: ev.Segments, At: ev.At}}
			q.Body, _ = json.Marshal(body)
		}
		if err := enqueueCallback(tx, q); err != nil {
			return err
		}
		queued = true
	}
	if queued {
		select {
		case s.doors.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

type webhookEvent struct {
	Type string `json:"type"`
	Event
}

// TwilioSignature is X-Twilio-Signature: base64 of HMAC-SHA1, keyed with
// the auth token, of the URL followed by each parameter's name and value,
// sorted by name.
func TwilioSignature(token, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := hmac.New(sha1.New, []byte(token))
	io.WriteString(m, fullURL)
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			io.WriteString(m, k)
			io.WriteString(m, v)
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// WebhookSecret is the signing secret of a key's webhooks (`otpd webhooks
// secret` prints it); "" is the secret of requests made without a key.
func (s *Secrets) WebhookSecret(keyID string) string {
	m := hmac.New(sha256.New, s.webhookKey)
	io.WriteString(m, keyID)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SignWebhook is the Otpd-Signature value of body at time t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, ts)
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook checks an Otpd-Signature header against body, refusing
// signatures older than tolerance (a receiver's side, and the tests').
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("signature header %q is not t=...,v1=...", header)
	}
	t := time.Unix(sec, 0)
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature is %s old, more than %s", d.Round(time.Second), tolerance)
	}
	want := SignWebhook(secret, t, body)
	_, want, _ = strings.Cut(want, ",v1=")
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no signature matches")
}

// Dispatcher posts the queued reports: each until its receiver answers
// 2xx, retried with exponential backoff, durable across restarts, and
// marked failed after MaxAttempts (`otpd webhooks` lists those).
type Dispatcher struct {
	svc         *Service
	Client      *http.Client
	RetryMin    time.Duration // default 5s
	RetryMax    time.Duration // default 1h
	MaxAttempts int           // default 12
	Parallel    int           // posts at once, default 4

	smpp *SMPPDoor // delivers the SMPP door's receipts; nil without one
	stop chan struct{}
	done chan struct{}
}

// NewDispatcher returns a dispatcher for the service's queue.
func NewDispatcher(svc *Service) *Dispatcher {
	if svc.doors.wake == nil {
		svc.doors.wake = make(chan struct{}, 1)
	}
	return &Dispatcher{svc: svc, RetryMin: 5 * time.Second, RetryMax: time.Hour, MaxAttempts: 12, Parallel: 4,
		Client: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// wakeUp makes the dispatcher look for due reports now.
func (d *Dispatcher) wakeUp() {
	select {
	case d.svc.doors.wake <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher until Stop.
func (d *Dispatcher) Start() {
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go d.loop()
}

// Stop ends the dispatcher after the posts in flight.
func (d *Dispatcher) Stop() {
	if d.stop == nil {
		return
	}
	close(d.stop)
	<-d.done
	d.stop = nil // a second Shutdown stops nothing
}

func (d *Dispatcher) loop() {
	defer close(d.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for d.round() {
		}
		select {
		case <-d.stop:
			return
		case <-d.svc.doors.wake:
		case <-tick.C:
		}
	}
}

// round posts one batch of due reports; true when the batch was full.
func (d *Dispatcher) round() bool {
	s := d.svc
	now := s.now().UTC()
	n := 32
	var batch []*queuedCallback
	err := s.store.Write(context.Background(), func(tx *Tx) error {
		var err error
		batch, err = claimCallbacks(tx, now, now.Add(2*d.Client.Timeout+time.Minute), n)
		return err
	})
	if err != nil {
		s.log.Warn("claiming delivery reports to post failed", zap.Error(err))
		return false
	}
	sem := make(chan struct{}, max(1, d.Parallel))
	var wg sync.WaitGroup
	for i, q := range batch {
		select {
		case <-d.stop:
			// Not posted: due again at once, here or at the next start.
			wg.Wait()
			d.release(batch[i:], now)
			return false
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.post(q)
		}()
	}
	wg.Wait()
	return len(batch) == n
}

// release gives claimed reports back unposted.
func (d *Dispatcher) release(qs []*queuedCallback, now time.Time) {
	err := d.svc.store.Write(context.Background(), func(tx *Tx) error {
		for _, q := range qs {
			if err := finishCallback(tx, q.ID, callbackPending, q.Attempts, now, q.LastError, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.svc.log.Warn("giving back unposted delivery reports failed; they are due once their lease ends", zap.Error(err))
	}
}

func (d *Dispatcher) post(q *queuedCallback) {
	s := d.svc
	ctx, cancel := context.WithTimeout(context.Background(), d.Client.Timeout)
	defer cancel()
	if q.Kind == callbackSMPP {
		d.postSMPP(ctx, q)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.URL, bytes.NewReader(q.Body))
	var perr string
	if err == nil {
		req.Header.Set("Content-Type", q.ContentType)
		req.Header.Set("User-Agent", "otpd-webhooks")
		switch q.Kind {
		case callbackTwilio:
			if q.Signature != "" {
				req.Header.Set("X-Twilio-Signature", q.Signature)
			}
			req.Header.Set("I-Twilio-Idempotency-Token", fmt.Sprintf("%s-%s", q.MessageID, q.Status))
		default:
			req.Header.Set("Otpd-Webhook-Id", strconv.FormatInt(q.ID, 10))
			req.Header.Set(WebhookSignatureHeader, SignWebhook(s.sec.WebhookSecret(q.KeyID), s.now(), q.Body))
		}
		var resp *http.Response
		resp, err = d.Client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				perr = fmt.Sprintf("answered %s", resp.Status)
			}
		}
	}
	if err != nil {
		// The client's error quotes the URL, whose query may hold the
		// receiver's token: neither the log nor the queue keeps that.
		perr = redactURLs(err.Error())
	}
	d.finish(q, perr)
}

// maxHold is how long a receipt waits for its application's receiver.
const maxHold = 72 * time.Hour

// postSMPP hands a receipt to the SMPP door; while the application has no
// receiver bind up (or no door listens), it is held without counting.
func (d *Dispatcher) postSMPP(ctx context.Context, q *queuedCallback) {
	err := errNoReceiver
	if d.smpp != nil {
		err = d.smpp.deliver(ctx, q)
	}
	if errors.Is(err, errNoReceiver) {
		// Looked at again less often the longer it waits (a bind of a
		// receiver makes it due at once), given up after maxHold.
		now := d.svc.now().UTC()
		age := now.Sub(q.CreatedAt)
		state, next := callbackPending, now.Add(min(max(time.Second, age/10), time.Minute))
		if age > maxHold {
			state = callbackFailed
		}
		if err := d.svc.store.Write(context.Background(), func(tx *Tx) error {
			return finishCallback(tx, q.ID, state, q.Attempts, next, err.Error(), now)
		}); err != nil {
			d.svc.log.Warn("holding a receipt for an SMPP application failed", zap.Error(err))
		}
		return
	}
	perr := ""
	if err != nil {
		perr = err.Error()
	}
	d.finish(q, perr)
}

// finish records a post's outcome: done, or due again after a backoff, or
// failed after MaxAttempts.
func (d *Dispatcher) finish(q *queuedCallback, perr string) {
	s := d.svc
	s.doors.open.Delete(q.MessageID) // its final report is in the queue: later receipts need not look
	now := s.now().UTC()
	q.Attempts++
	state, next := callbackDone, now
	if perr != "" {
		state = callbackPending
		wait := d.RetryMin << min(q.Attempts-1, 20)
		if wait > d.RetryMax || wait <= 0 {
			wait = d.RetryMax
		}
		next = now.Add(wait)
		if q.Attempts >= d.MaxAttempts {
			state = callbackFailed
		}
		s.log.Info("posting a delivery report failed", zap.String("message_id", q.MessageID), zap.String("kind", q.Kind),
			zap.Int("attempt", q.Attempts), zap.String("error", perr), zap.String("state", state))
	}
	if err := s.store.Write(context.Background(), func(tx *Tx) error {
		return finishCallback(tx, q.ID, state, q.Attempts, next, perr, now)
	}); err != nil {
		s.log.Warn("recording a delivery report's post failed; it is posted again", zap.Error(err))
	}
}

// CallbackView is a queued report as `otpd webhooks` shows it.
type CallbackView struct {
	ID            int64     `json:"id"`
	MessageID     string    `json:"message_id"`
	Kind          string    `json:"kind"`
	Status        string    `json:"status"`
	URL           string    `json:"url"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// ListCallbackViews lists the queued reports (only troubled ones unless
// all).
func ListCallbackViews(ctx context.Context, st *Store, all bool, limit int) ([]CallbackView, error) {
	qs, err := st.ListCallbacks(ctx, all, limit)
	if err != nil {
		return nil, err
	}
	out := make([]CallbackView, 0, len(qs))
	for _, q := range qs {
		out = append(out, CallbackView{ID: q.ID, MessageID: q.MessageID, Kind: q.Kind, Status: q.Status, URL: q.URL, State: q.State,
			Attempts: q.Attempts, NextAttemptAt: q.NextAttemptAt, LastError: q.LastError, CreatedAt: q.CreatedAt})
	}
	return out, nil
}

// carryCallback gives a resent SMS the callback of the one it replaces.
func (s *Service) carryCallback(tx *Tx, from, to string) error {
	s.loadOpen()
	n, err := copyCallback(tx, from, to)
	if err == nil && n > 0 {
		s.doors.open.Store(to, struct{}{}) // before the commit, as registerCallback
	}
	return err
}
