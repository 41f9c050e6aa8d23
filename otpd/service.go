package otpd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpd/otpd/smpp/coding"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// APIError is an error with its HTTP status and machine-readable code.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration

	limit string // for rate_limited: which limit (the metric's label)
}

func (e *APIError) Error() string { return e.Message }

func apiErr(status int, code, format string, a ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// Service is the OTP service: challenges, plain messages, and what the
// sender and the receipt handler share.
type Service struct {
	cfg     *Config
	store   *Store
	sec     *Secrets
	log     *zap.Logger
	metrics *Metrics
	events  *Broker
	skew    atomic.Int64 // added to the clock (tests move time with it)

	limPhone, limKey, limCountry, limGlobal *limiter
	allow                                   map[string]bool

	wake   chan struct{}          // tells the sender that new messages are due
	sender atomic.Pointer[Sender] // once started: takes new messages straight to a free worker

	// orphans is at least the number of rows in orphan_receipts: raised
	// inside the write that inserts one (so later writes of the same batch
	// see it), lowered after a delete commits. While it is 0, recording a
	// segment skips looking for receipts that came first.
	orphans atomic.Int64

	doors doorState // the front doors' callbacks and per-key settings

	keysMu sync.Mutex
	keys   map[string]*APIKey // cache by hash
}

// NewService builds the service on an open store.
func NewService(cfg *Config, store *Store, sec *Secrets, m *Metrics, events *Broker, log *zap.Logger) *Service {
	s := &Service{
		cfg: cfg, store: store, sec: sec, log: log, metrics: m, events: events,
		limPhone: newLimiter(cfg.Limits.PerPhone), limKey: newLimiter(cfg.Limits.PerKey),
		limCountry: newLimiter(cfg.Limits.PerCountry), limGlobal: newLimiter(cfg.Limits.Global),
		wake: make(chan struct{}, 1), keys: map[string]*APIKey{},
	}
	if len(cfg.Limits.AllowCountries) > 0 {
		s.allow = map[string]bool{}
		for _, c := range cfg.Limits.AllowCountries {
			s.allow[c] = true
		}
	}
	var n int64
	if err := store.QueryRow(context.Background(), `SELECT COUNT(*) FROM orphan_receipts`).Scan(&n); err != nil {
		n = 1 << 62 // unknown: always look
	}
	s.orphans.Store(n)
	return s
}

func (s *Service) now() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }

// notify tells the sender that a new message waits in the outbox: new
// messages queue behind it until the sender claims it.
func (s *Service) notify() {
	if snd := s.sender.Load(); snd != nil {
		snd.backlog.Store(true)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// CreateRequest is the body of POST /v1/otp.
type CreateRequest struct {
	Phone    string `json:"phone"`
	Length   int    `json:"length,omitempty"`
	TTL      string `json:"ttl,omitempty"` // a Go duration ("5m") or seconds ("300")
	Template string `json:"template,omitempty"`
	Locale   string `json:"locale,omitempty"`
	Sender   string `json:"sender,omitempty"`
	// CallbackURL receives the SMS's delivery reports as signed webhooks.
	CallbackURL string `json:"callback_url,omitempty"`

	after afterWrite // a front door's own rows, written with the challenge
}

// checkLimits applies the rate limits of one send to phone by key.
func (s *Service) checkLimits(p Phone, keyID string) error {
	_, err := s.takeLimits(p, keyID)
	s.countRefusal(err)
	return err
}

// countRefusal counts a rate-limit refusal in the metrics.
func (s *Service) countRefusal(err error) {
	var e *APIError
	if errors.As(err, &e) && e.limit != "" {
		s.metrics.RateLimited.WithLabelValues(e.limit).Inc()
	}
}

// takeLimits is checkLimits that also returns how to give the send back,
// for a caller whose send did not happen after all; it counts nothing
// (the caller does, with countRefusal, once).
func (s *Service) takeLimits(p Phone, keyID string) (refund func(), err error) {
	now := s.now()
	type step struct {
		l     *limiter
		key   string
		what  string
		label string
	}
	steps := []step{
		{s.limGlobal, "", "the global SMS budget", "global"},
		{s.limCountry, fmt.Sprint(p.CountryCode), fmt.Sprintf("the limit for country code +%d", p.CountryCode), "country"},
		{s.limKey, keyID, "the limit for this API key", "key"},
		{s.limPhone, p.E164, "the limit for this phone number", "phone"},
	}
	var taken []*rate.Reservation
	refund = func() {
		for _, r := range taken {
			if r != nil {
				r.CancelAt(now)
			}
		}
	}
	for _, st := range steps {
		res, ok, wait := st.l.take(st.key, now)
		if ok {
			taken = append(taken, res)
			continue
		}
		refund() // a refused send does not count against the other limits
		e := apiErr(http.StatusTooManyRequests, "rate_limited", "too many codes sent: %s is reached; retry later", st.what)
		e.RetryAfter, e.limit = wait, st.label
		return nil, e
	}
	return refund, nil
}

func (s *Service) parsePhone(raw string) (Phone, error) {
	p, err := parsePhone(raw, s.cfg.OTP.DefaultRegion, !s.cfg.Embedded())
	if err != nil {
		return Phone{}, apiErr(http.StatusBadRequest, "invalid_phone", "%s", err.Error())
	}
	if s.allow != nil && !s.allow[p.Region] {
		return Phone{}, apiErr(http.StatusBadRequest, "country_not_allowed", "SMS to %s numbers is not enabled", p.Region)
	}
	return p, nil
}

func parseTTL(v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if n := atoi(v); n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// render fills a template.
func render(tmpl, code, phone string, ttl time.Duration) string {
	// One after the other, which a strings.Replacer (built anew for each
	// text, at some cost) would do at once: none of the values holds a
	// placeholder's brace.
	s := strings.ReplaceAll(tmpl, "{otp}", code)
	s = strings.ReplaceAll(s, "{phone}", phone)
	if strings.Contains(s, "{ttl}") {
		s = strings.ReplaceAll(s, "{ttl}", humanDuration(ttl))
	}
	return s
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Minute == 0 && d >= time.Minute:
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	default:
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
}

// maxSegments bounds how long a text may be.
const maxSegments = 6

func (s *Service) checkText(text string) error {
	opt := coding.SplitOptions{Auto: true, UTF16: s.cfg.SMSC.UTF16, Method: coding.ConcatUDH8}
	sr, err := coding.Split(text, opt)
	if err != nil {
		return apiErr(http.StatusBadRequest, "invalid_text", "text cannot be sent: %v", err)
	}
	if len(sr.Segments) > maxSegments {
		return apiErr(http.StatusBadRequest, "text_too_long", "text needs %d SMS segments, at most %d allowed", len(sr.Segments), maxSegments)
	}
	return nil
}

func (s *Service) template(req CreateRequest) (string, error) {
	if req.Template != "" {
		if !strings.Contains(req.Template, "{otp}") {
			return "", apiErr(http.StatusBadRequest, "invalid_template", "template must contain {otp}")
		}
		if len(req.Template) > 480 {
			return "", apiErr(http.StatusBadRequest, "invalid_template", "template longer than 480 characters")
		}
		return req.Template, nil
	}
	loc := req.Locale
	if loc == "" {
		loc = s.cfg.OTP.Locale
	}
	if t, ok := s.cfg.OTP.Templates[loc]; ok {
		return t, nil
	}
	if base, _, ok := strings.Cut(loc, "-"); ok {
		if t, ok := s.cfg.OTP.Templates[base]; ok {
			return t, nil
		}
	}
	if req.Locale != "" {
		return "", apiErr(http.StatusBadRequest, "invalid_locale", "no template for locale %q", req.Locale)
	}
	return s.cfg.OTP.Templates[s.cfg.OTP.Locale], nil
}

func (s *Service) checkSender(sender string) error {
	if sender == "" {
		return nil
	}
	if len(sender) > 20 {
		return apiErr(http.StatusBadRequest, "invalid_sender", "sender longer than 20 characters")
	}
	for _, r := range sender {
		if r < 0x20 || r > 0x7E {
			return apiErr(http.StatusBadRequest, "invalid_sender", "sender must be printable ASCII")
		}
	}
	return nil
}

// Create starts a challenge: the code is drawn, its HMAC and the sealed
// SMS are committed in one transaction, and the sender is woken.
func (s *Service) Create(ctx context.Context, req CreateRequest, keyID string) (*Challenge, error) {
	p, err := s.parsePhone(req.Phone)
	if err != nil {
		return nil, err
	}
	length := req.Length
	if length == 0 {
		length = s.cfg.OTP.Length
	}
	if length < s.cfg.OTP.MinLength || length > 10 {
		return nil, apiErr(http.StatusBadRequest, "invalid_length", "length must be %d to 10", s.cfg.OTP.MinLength)
	}
	ttl, err := parseTTL(req.TTL, s.cfg.OTP.TTL)
	if err != nil || ttl < 30*time.Second || ttl > 10*time.Minute {
		return nil, apiErr(http.StatusBadRequest, "invalid_ttl", "ttl must be a duration from 30s to 10m")
	}
	tmpl, err := s.template(req)
	if err != nil {
		return nil, err
	}
	if err := s.checkSender(req.Sender); err != nil {
		return nil, err
	}
	// The text with a code of the right length must be sendable.
	if err := s.checkText(render(tmpl, strings.Repeat("0", length), p.E164, ttl)); err != nil {
		return nil, err
	}
	after, err := s.withWebhook(ctx, req.CallbackURL, keyID, req.after)
	if err != nil {
		return nil, err
	}
	if err := s.checkLimits(p, keyID); err != nil {
		return nil, err
	}
	code, err := NewCode(length)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	c := &Challenge{ID: NewID("ch"), Phone: p.E164, Status: StatusPending, MaxAttempts: s.cfg.OTP.MaxAttempts, Sends: 1,
		Length: length, Locale: req.Locale, KeyID: keyID, Template: req.Template, Sender: req.Sender,
		CreatedAt: now, ExpiresAt: now.Add(ttl), LastSentAt: now, UpdatedAt: now}
	c.CodeHMAC = s.sec.CodeMAC(c.ID, code)
	m := s.newMessage(c.ID, p.E164, req.Sender, render(tmpl, code, p.E164, ttl), c.ExpiresAt, keyID, now)
	c.MessageID = m.ID
	err = s.queue(ctx, m, func(tx *Tx) error {
		if err := insertChallenge(tx, c); err != nil {
			return err
		}
		if err := insertMessage(tx, m); err != nil {
			return err
		}
		return after.run(tx, c.ID, m)
	})
	if err != nil {
		return nil, fmt.Errorf("store challenge: %w", err)
	}
	s.metrics.Challenges.WithLabelValues("created").Inc()
	s.log.Info("otp created", zap.String("id", c.ID), zap.String("phone", MaskPhone(c.Phone)), zap.String("message_id", m.ID))
	return c, nil
}

// queue runs write, which inserts the new message m, and passes m on to
// the sender: straight to a free worker when the sender has one and no due
// message waits in the outbox (m is then written as being sent, its first
// attempt, so no claim has to take it from the outbox), else through the
// outbox.
func (s *Service) queue(ctx context.Context, m *Message, write func(tx *Tx) error) error {
	snd := s.sender.Load()
	direct := snd != nil && snd.reserve()
	if direct {
		m.State, m.Attempts = StateSending, 1
	}
	err := s.store.Write(ctx, write)
	switch {
	case direct && err == nil:
		own := *m // the worker's own: the caller may still read m
		snd.run(&claimed{m: &own})
	case direct:
		snd.release() // not written; or written but the store broke, and a restart takes it up
	case err == nil:
		s.notify()
	}
	if err == nil {
		s.metrics.Messages.WithLabelValues(StateQueued).Inc()
	}
	return err
}

func (s *Service) newMessage(challengeID, phone, sender, text string, deadline time.Time, keyID string, now time.Time) *Message {
	m := &Message{ID: NewID("msg"), ChallengeID: challengeID, Phone: phone, Sender: sender, State: StateQueued,
		NextAttemptAt: now, Deadline: deadline, KeyID: keyID, CreatedAt: now, UpdatedAt: now}
	var ref [2]byte
	rand.Read(ref[:])
	m.Ref = int(ref[0])<<8 | int(ref[1]) // the concatenation reference, kept across retries
	m.Sealed = s.sec.Seal(m.ID, text)
	return m
}

// withChallenge runs fn on the challenge id (seen by keyID) in one write
// transaction. fn returns an *APIError to refuse without error; a missing
// challenge, or one of another key's, is a 404.
func (s *Service) withChallenge(ctx context.Context, id, keyID string, fn func(tx *Tx, c *Challenge) (*APIError, error)) (*Challenge, error) {
	var c *Challenge
	var apiE *APIError
	var notFound bool
	err := s.store.Write(ctx, func(tx *Tx) error {
		var err error
		apiE, notFound = nil, false
		c, err = scanChallenge(tx.QueryRow(`SELECT `+challengeCols+` FROM challenges WHERE id = ?`, id))
		if errors.Is(err, ErrNotFound) {
			notFound = true // not an error of the write: nothing to undo
			return nil
		}
		if err != nil {
			return err
		}
		if keyID != "" && c.KeyID != "" && c.KeyID != keyID {
			notFound = true // another client's challenge
			return nil
		}
		apiE, err = fn(tx, c)
		return err
	})
	if notFound || errors.Is(err, ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, "not_found", "no challenge %q", id)
	}
	if err != nil {
		return nil, err
	}
	if apiE != nil {
		return nil, apiE
	}
	return c, nil
}

// VerifyResult is the outcome of a verification.
type VerifyResult struct {
	Status       string `json:"status"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

func validCode(code string) bool {
	if len(code) < 4 || len(code) > 10 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Verify checks a code. The attempt is counted before the code is
// compared, the compare is constant-time, and consuming a code is atomic:
// the whole check runs in one serialised write transaction.
func (s *Service) Verify(ctx context.Context, id, code, keyID string) (*VerifyResult, error) {
	code = strings.TrimSpace(code)
	if !validCode(code) {
		return nil, apiErr(http.StatusBadRequest, "invalid_code", "code must be 4 to 10 digits")
	}
	var res VerifyResult
	now := s.now().UTC()
	_, err := s.withChallenge(ctx, id, keyID, func(tx *Tx, c *Challenge) (*APIError, error) {
		res = VerifyResult{} // afresh: the write may run twice
		if len(code) != c.Length {
			// Not an attempt: no code of this length was ever sent.
			return apiErr(http.StatusBadRequest, "invalid_code", "code must be %d digits", c.Length), nil
		}
		switch st := c.effectiveStatus(now); st {
		case StatusApproved, StatusCanceled:
			return apiErr(http.StatusConflict, "not_pending", "challenge is %s; a code works once", st), nil
		case StatusExpired:
			if c.Status != StatusExpired {
				if _, err := tx.Exec(`UPDATE challenges SET status = ?, updated_at = ? WHERE id = ?`, StatusExpired, ms(now), id); err != nil {
					return nil, err
				}
			}
			return apiErr(http.StatusGone, "expired", "challenge expired"), nil
		case StatusMaxAttempts:
			return apiErr(http.StatusTooManyRequests, "max_attempts_reached", "no attempts left for this challenge"), nil
		}
		c.Attempts++
		status := StatusPending
		if s.sec.CheckCode(c.ID, code, c.CodeHMAC) {
			status = StatusApproved
		} else if c.Attempts >= c.MaxAttempts {
			status = StatusMaxAttempts
		}
		if _, err := tx.Exec(`UPDATE challenges SET attempts = ?, status = ?, updated_at = ? WHERE id = ?`, c.Attempts, status, ms(now), id); err != nil {
			return nil, err
		}
		res.Status = status
		if status != StatusApproved {
			left := c.MaxAttempts - c.Attempts
			res.AttemptsLeft = &left
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	s.metrics.Verifications.WithLabelValues(res.Status).Inc()
	if res.Status != StatusPending {
		s.metrics.Challenges.WithLabelValues(res.Status).Inc()
	}
	s.log.Info("otp verify", zap.String("id", id), zap.String("result", res.Status))
	return &res, nil
}

// Resend draws a new code that replaces the old one and queues a new SMS,
// within the cooldown and the cap per challenge. A message with the old
// code that has not gone out yet is withdrawn.
func (s *Service) Resend(ctx context.Context, id, keyID string) (*Challenge, error) {
	now := s.now().UTC()
	var m *Message
	var refund func() // the rate-limit tokens this resend took
	giveBack := func() {
		if refund != nil {
			refund()
			refund = nil
		}
	}
	c, err := s.withChallenge(ctx, id, keyID, func(tx *Tx, c *Challenge) (*APIError, error) {
		giveBack() // the write may run twice: take the tokens once
		switch st := c.effectiveStatus(now); st {
		case StatusPending:
		case StatusExpired:
			return apiErr(http.StatusGone, "expired", "challenge expired"), nil
		default:
			return apiErr(http.StatusConflict, "not_pending", "challenge is %s", st), nil
		}
		if c.Sends >= s.cfg.OTP.MaxSends {
			return apiErr(http.StatusTooManyRequests, "max_sends_reached", "at most %d codes per challenge", s.cfg.OTP.MaxSends), nil
		}
		if wait := c.LastSentAt.Add(s.cfg.OTP.ResendAfter).Sub(now); wait > 0 {
			e := apiErr(http.StatusTooManyRequests, "resend_cooldown", "wait before asking for another code")
			e.RetryAfter = wait
			return e, nil
		}
		// A resend is a send: the rate limits apply (SMS pumping).
		if p, err := parsePhone(c.Phone, "", false); err == nil {
			if refund, err = s.takeLimits(p, keyID); err != nil {
				return err.(*APIError), nil
			}
		}
		code, err := NewCode(c.Length)
		if err != nil {
			return nil, err
		}
		// The new SMS reads as the first did: the caller's template and
		// sender, or the locale's.
		tmpl, _ := s.template(CreateRequest{Locale: c.Locale, Template: c.Template})
		m = s.newMessage(c.ID, c.Phone, c.Sender, render(tmpl, code, c.Phone, c.ExpiresAt.Sub(now).Round(time.Minute)), c.ExpiresAt, keyID, now)
		// The old code stops working; its SMS is withdrawn if still queued.
		if _, err := tx.Exec(`UPDATE messages SET state = ?, sealed = NULL, reason = ?, updated_at = ? WHERE id = ? AND state = ?`,
			StateFailed, "superseded by a resend before it was sent", ms(now), c.MessageID, StateQueued); err != nil {
			return nil, err
		}
		oldMessage := c.MessageID
		c.CodeHMAC = s.sec.CodeMAC(c.ID, code)
		c.Sends++
		c.LastSentAt = now
		c.MessageID = m.ID
		if _, err := tx.Exec(`UPDATE challenges SET code_hmac = ?, sends = ?, last_sent_at = ?, message_id = ?, updated_at = ? WHERE id = ?`,
			c.CodeHMAC, c.Sends, ms(now), m.ID, ms(now), c.ID); err != nil {
			return nil, err
		}
		if err := insertMessage(tx, m); err != nil {
			return nil, err
		}
		return nil, s.carryCallback(tx, oldMessage, m.ID) // its reports go where the first SMS's went
	})
	if err != nil {
		if !errors.Is(err, ErrNotDurable) {
			giveBack() // nothing will be sent
		}
		s.countRefusal(err) // here, not in the write, which may run twice
		return nil, err
	}
	s.metrics.Messages.WithLabelValues(StateQueued).Inc()
	s.log.Info("otp resent", zap.String("id", c.ID), zap.String("phone", MaskPhone(c.Phone)), zap.String("message_id", m.ID))
	s.notify()
	return c, nil
}

// Cancel ends a pending challenge.
func (s *Service) Cancel(ctx context.Context, id, keyID string) (*Challenge, error) {
	now := s.now().UTC()
	c, err := s.withChallenge(ctx, id, keyID, func(tx *Tx, c *Challenge) (*APIError, error) {
		if st := c.effectiveStatus(now); st != StatusPending {
			return apiErr(http.StatusConflict, "not_pending", "challenge is %s", st), nil
		}
		c.Status = StatusCanceled
		_, err := tx.Exec(`UPDATE challenges SET status = ?, updated_at = ? WHERE id = ?`, StatusCanceled, ms(now), id)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	s.metrics.Challenges.WithLabelValues(StatusCanceled).Inc()
	return c, nil
}

// GetChallenge reads a challenge and its latest message.
func (s *Service) GetChallenge(ctx context.Context, id, keyID string) (*Challenge, *Message, error) {
	c, err := scanChallenge(s.store.QueryRow(ctx, `SELECT `+challengeCols+` FROM challenges WHERE id = ?`, id))
	if errors.Is(err, ErrNotFound) || (err == nil && keyID != "" && c.KeyID != "" && c.KeyID != keyID) {
		return nil, nil, apiErr(http.StatusNotFound, "not_found", "no challenge %q", id)
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := s.getMessage(ctx, c.MessageID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, err
	}
	return c, m, nil
}

func (s *Service) getMessage(ctx context.Context, id string) (*Message, error) {
	m, err := scanMessage(s.store.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.Query(ctx, `SELECT seq, smsc_id, state, stat, err, submitted_at, done_at FROM segments WHERE message_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var g Segment
		var sub, done int64
		if err := rows.Scan(&g.Seq, &g.SMSCID, &g.State, &g.Stat, &g.Err, &sub, &done); err != nil {
			return nil, err
		}
		g.SubmittedAt, g.DoneAt = fromMS(sub), fromMS(done)
		m.Parts = append(m.Parts, g)
	}
	return m, rows.Err()
}

// MessageRequest is the body of POST /v1/messages.
type MessageRequest struct {
	To   string `json:"to"`
	Text string `json:"text"`
	From string `json:"from,omitempty"`
	// CallbackURL receives the delivery reports as signed webhooks.
	CallbackURL string `json:"callback_url,omitempty"`

	after afterWrite    // a front door's own rows, written with the message
	ttl   time.Duration // a door's validity period, shorter than the default
}

// SendMessage queues a plain SMS through the same binds.
func (s *Service) SendMessage(ctx context.Context, req MessageRequest, keyID string) (*Message, error) {
	p, err := s.parsePhone(req.To)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Text) == "" {
		return nil, apiErr(http.StatusBadRequest, "invalid_text", "text is required")
	}
	if err := s.checkText(req.Text); err != nil {
		return nil, err
	}
	if err := s.checkSender(req.From); err != nil {
		return nil, err
	}
	after, err := s.withWebhook(ctx, req.CallbackURL, keyID, req.after)
	if err != nil {
		return nil, err
	}
	if err := s.checkLimits(p, keyID); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	ttl := s.cfg.Sender.MessageTTL
	if req.ttl > 0 && req.ttl < ttl {
		ttl = req.ttl
	}
	m := s.newMessage("", p.E164, req.From, req.Text, now.Add(ttl), keyID, now)
	if err := s.queue(ctx, m, func(tx *Tx) error {
		if err := insertMessage(tx, m); err != nil {
			return err
		}
		return after.run(tx, "", m)
	}); err != nil {
		return nil, fmt.Errorf("store message: %w", err)
	}
	s.log.Info("message queued", zap.String("message_id", m.ID), zap.String("phone", MaskPhone(m.Phone)))
	return m, nil
}

// GetMessage reads a plain message (or any message) with its segments.
func (s *Service) GetMessage(ctx context.Context, id, keyID string) (*Message, error) {
	m, err := s.getMessage(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && keyID != "" && m.KeyID != "" && m.KeyID != keyID) {
		return nil, apiErr(http.StatusNotFound, "not_found", "no message %q", id)
	}
	return m, err
}
