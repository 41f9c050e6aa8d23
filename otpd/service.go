package otpd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpd/otpd/smpp/coding"
	"go.uber.org/zap"
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

	limPhone, limKey, limCountry, limGlobal, limPrefix *limiter
	numberTypes                                        map[string]bool
	allow                                              map[string]bool

	wake   chan struct{}          // tells the sender that new messages are due
	sender atomic.Pointer[Sender] // once started: takes new messages straight to a free worker

	// orphans is at least the number of rows in orphan_receipts: raised
	// inside the write that inserts one (so later writes of the same batch
	// see it), lowered after a delete commits. While it is 0, recording a
	// segment skips looking for receipts that came first.
	orphans atomic.Int64
	// shared: other instances write the same store (PostgreSQL), so what
	// this process counts of it (orphans, open callbacks) is not all
	// there is, and every lookup goes to the database.
	shared bool

	doors doorState // the front doors' callbacks and per-key settings

	keysMu sync.Mutex
	keys   map[string]cachedKey // by "h:"+hash and "i:"+id
}

// NewService builds the service on an open store.
func NewService(cfg *Config, store *Store, sec *Secrets, m *Metrics, events *Broker, log *zap.Logger) *Service {
	s := &Service{
		cfg: cfg, store: store, sec: sec, log: log, metrics: m, events: events,
		limPhone: newLimiter(cfg.Limits.PerPhone), limKey: newLimiter(cfg.Limits.PerKey),
		limCountry: newLimiter(cfg.Limits.PerCountry), limGlobal: newLimiter(cfg.Limits.Global), limPrefix: newLimiter(cfg.Limits.PerPrefix),
		numberTypes: map[string]bool{},
		wake:        make(chan struct{}, 1), keys: map[string]cachedKey{},
	}
	for _, t := range cfg.Limits.NumberTypes {
		s.numberTypes[t] = true
	}
	if len(cfg.Limits.AllowCountries) > 0 {
		s.allow = map[string]bool{}
		for _, c := range cfg.Limits.AllowCountries {
			s.allow[c] = true
		}
	}
	n, err := store.countOrphans(context.Background())
	if err != nil {
		n = 1 << 62 // unknown: always look
	}
	s.orphans.Store(n)
	s.shared = store.Dialect() == "postgres"
	if s.shared {
		for name, l := range map[string]*limiter{"phone": s.limPhone, "key": s.limKey, "country": s.limCountry, "global": s.limGlobal, "prefix": s.limPrefix} {
			l.shared, l.name = store, name
		}
	}
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
func (s *Service) checkLimits(ctx context.Context, p Phone, keyID string) error {
	_, err := s.takeLimits(ctx, p, keyID)
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
func (s *Service) takeLimits(ctx context.Context, p Phone, keyID string) (refund func(), err error) {
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
		{s.limPrefix, p.Prefix(s.cfg.Limits.PrefixDigits), "the limit for this range of numbers", "prefix"},
		{s.limKey, keyID, "the limit for this API key", "key"},
		{s.limPhone, p.E164, "the limit for this phone number", "phone"},
	}
	var taken []func()
	refund = func() {
		for _, r := range taken {
			if r != nil {
				r()
			}
		}
	}
	for _, st := range steps {
		res, ok, wait, err := st.l.take(ctx, st.key, now)
		if err != nil {
			refund()
			return nil, err // the shared buckets' store: a 503 as any store error
		}
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
	if p.Type != "" && !s.numberTypes[p.Type] {
		return Phone{}, apiErr(http.StatusBadRequest, "number_type_not_allowed", "SMS to %s numbers is not enabled", strings.ReplaceAll(p.Type, "_", "-"))
	}
	return p, nil
}

// parseRead parses a phone number given to filter what was sent (any
// type, no country check).
func (s *Service) parseRead(raw string) (Phone, error) {
	p, err := parsePhone(raw, s.cfg.OTP.DefaultRegion, false)
	if err != nil {
		return Phone{}, apiErr(http.StatusBadRequest, "invalid_phone", "%s", err.Error())
	}
	return p, nil
}

// parseTTL reads a TTL as seconds ("300") or a Go duration ("5m"); a
// number too large for a duration is an error, not a wrapped-around one.
func parseTTL(v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if v[0] >= '0' && v[0] <= '9' && strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(math.MaxInt64/time.Second) {
			return 0, errors.New("out of range")
		}
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

// humanDuration says how long a code has left: whole minutes, rounded
// down, from a minute on; seconds, rounded up, below one.
func humanDuration(d time.Duration) string {
	if d > time.Minute {
		d = d.Truncate(time.Minute)
	} else {
		d = (d + time.Second - 1).Truncate(time.Second)
	}
	switch {
	case d%time.Minute == 0 && d >= time.Minute:
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d <= time.Second:
		return "1 second"
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

// senderError says what is wrong with a sender address, "" when nothing:
// a number (an optional + and at most 15 digits, E.164) or an
// alphanumeric name of at most 11 characters (GSM 03.40's limit, which
// SMSCs cut at or refuse).
func senderError(sender string) string {
	for _, r := range sender {
		if r < 0x20 || r > 0x7E {
			return "sender must be printable ASCII"
		}
	}
	digits := strings.TrimPrefix(sender, "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		if len(digits) > 15 {
			return "a numeric sender has at most 15 digits"
		}
		return ""
	}
	if strings.TrimSpace(sender) == "" {
		return "sender is blank"
	}
	if len(sender) > 11 {
		return "an alphanumeric sender has at most 11 characters"
	}
	return ""
}

// checkSender checks a sender address and that the key may use it: only
// the ones listed for it (a key with none may only use the configured
// source address). Without a key (authentication off) only the embedded
// default, which sends nothing to a handset, takes any.
func (s *Service) checkSender(ctx context.Context, keyID, sender string) error {
	if sender == "" || sender == s.cfg.SMSC.SourceAddr {
		return nil
	}
	if e := senderError(sender); e != "" {
		return apiErr(http.StatusBadRequest, "invalid_sender", "%s", e)
	}
	if keyID == "" {
		if s.cfg.Embedded() {
			return nil
		}
		return apiErr(http.StatusForbidden, "sender_not_allowed", "without API keys only the configured source address is used; leave the sender out")
	}
	k, err := s.keyByID(ctx, keyID)
	if err != nil {
		return err
	}
	if k == nil || !slices.Contains(k.Senders, sender) {
		return apiErr(http.StatusForbidden, "sender_not_allowed", "this API key may not send from that sender (otpd keys create --senders)")
	}
	return nil
}

// access checks that the key may use scope, and says whether it sees every
// key's data (admin, or authentication off: no key) or only its own.
func (s *Service) access(ctx context.Context, keyID, scope string) (all bool, err error) {
	if keyID == "" {
		return true, nil
	}
	k, err := s.keyByID(ctx, keyID)
	if err != nil {
		return false, err
	}
	if k == nil || !k.Active(time.Now()) {
		return false, apiErr(http.StatusUnauthorized, "unauthorized", "this API key is revoked or expired")
	}
	if !k.Has(scope) {
		return false, apiErr(http.StatusForbidden, "forbidden", "this API key lacks the %s scope", scope)
	}
	return k.Has(ScopeAdmin), nil
}

// validID reports whether id has the form NewID gives with prefix.
func validID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= '2' && c <= '7' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

var (
	errNoChallenge = apiErr(http.StatusNotFound, "not_found", "no such challenge")
	errNoMessage   = apiErr(http.StatusNotFound, "not_found", "no such message")
)

// Create starts a challenge: the code is drawn, its HMAC and the sealed
// SMS are committed in one transaction, and the sender is woken. The
// phone's older pending challenges of the same key are canceled (their
// codes stop working, their SMS not sent yet are withdrawn).
func (s *Service) Create(ctx context.Context, req CreateRequest, keyID string) (*Challenge, error) {
	if _, err := s.access(ctx, keyID, ScopeOTP); err != nil {
		return nil, err
	}
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
		return nil, apiErr(http.StatusBadRequest, "invalid_ttl", "ttl must be seconds or a duration from 30s to 10m")
	}
	tmpl, err := s.template(req)
	if err != nil {
		return nil, err
	}
	if err := s.checkSender(ctx, keyID, req.Sender); err != nil {
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
	if err := s.checkFailures(ctx, p.E164); err != nil {
		return nil, err
	}
	refund, err := s.takeLimits(ctx, p, keyID)
	s.countRefusal(err)
	if err != nil {
		return nil, err
	}
	code, err := NewCode(length)
	if err != nil {
		refund()
		return nil, err
	}
	now := s.now().UTC()
	c := &Challenge{ID: NewID("ch"), Phone: p.E164, Status: StatusPending, MaxAttempts: s.cfg.OTP.MaxAttempts, Sends: 1,
		Length: length, Locale: req.Locale, KeyID: keyID, Template: req.Template, Sender: req.Sender,
		CreatedAt: now, ExpiresAt: now.Add(ttl), LastSentAt: now, UpdatedAt: now}
	c.CodeHMAC = s.sec.CodeMAC(c.ID, code)
	m := s.newMessage(c.ID, p.E164, req.Sender, render(tmpl, code, p.E164, ttl), c.ExpiresAt, keyID, now)
	c.MessageID = m.ID
	var superseded int64
	err = s.queue(ctx, m, func(tx *Tx) error {
		var err error
		if superseded, err = supersedePending(tx, p.E164, keyID, ms(now)); err != nil {
			return err
		}
		if err := insertChallenge(tx, c); err != nil {
			return err
		}
		if err := insertMessage(tx, m); err != nil {
			return err
		}
		return after.run(tx, c.ID, m)
	})
	if err != nil {
		if !errors.Is(err, ErrNotDurable) {
			refund() // nothing will be sent
		}
		return nil, fmt.Errorf("store challenge: %w", err)
	}
	s.metrics.Challenges.WithLabelValues("created").Inc()
	if superseded > 0 {
		s.metrics.Challenges.WithLabelValues("superseded").Add(float64(superseded))
	}
	s.metrics.OTPSends.WithLabelValues(metricLabels(p.E164)...).Inc()
	s.log.Info("otp created", zap.String("id", c.ID), zap.String("phone", MaskPhone(c.Phone)), zap.String("message_id", m.ID))
	return c, nil
}

// checkFailures refuses a phone whose codes failed too often in a row.
func (s *Service) checkFailures(ctx context.Context, phone string) error {
	n, at, err := s.store.phoneFailures(ctx, phone)
	if err != nil {
		return err
	}
	return s.failuresError(n, at)
}

func (s *Service) failuresError(n int, at int64) error {
	left := fromMS(at).Add(s.cfg.Limits.PhoneFailureWindow).Sub(s.now())
	if n < s.cfg.Limits.MaxPhoneFailures || left <= 0 {
		return nil
	}
	e := apiErr(http.StatusForbidden, "phone_blocked", "too many wrong codes for this phone number; it is blocked for a while")
	e.RetryAfter = left
	return e
}

// metricLabels are the country code and the prefix (country code and
// three more digits, as MaskPhone shows them) of a number.
func metricLabels(e164 string) []string {
	m := MaskPhone(e164)
	head, _, _ := strings.Cut(m, "*")
	cc := head
	if len(head) > 4 {
		cc = head[:len(head)-3]
	}
	return []string{cc, head}
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
		m.State, m.Attempts, m.LeaseUntil = StateSending, 1, s.now().Add(s.cfg.Sender.Lease)
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

// withChallenge runs fn on the challenge id (seen by keyID with scope
// otp) in one write transaction. fn returns an *APIError to refuse without
// error; a missing challenge, or one of another key's, is a 404.
func (s *Service) withChallenge(ctx context.Context, id, keyID string, fn func(tx *Tx, c *Challenge) (*APIError, error)) (*Challenge, error) {
	all, err := s.access(ctx, keyID, ScopeOTP)
	if err != nil {
		return nil, err
	}
	if !validID("ch", id) {
		return nil, errNoChallenge
	}
	var c *Challenge
	var apiE *APIError
	var notFound bool
	err = s.store.Write(ctx, func(tx *Tx) error {
		var err error
		apiE, notFound = nil, false
		c, err = txChallenge(tx, id)
		if errors.Is(err, ErrNotFound) {
			notFound = true // not an error of the write: nothing to undo
			return nil
		}
		if err != nil {
			return err
		}
		if !all && c.KeyID != keyID {
			notFound = true // another client's challenge, or one made without a key
			return nil
		}
		apiE, err = fn(tx, c)
		return err
	})
	if notFound || errors.Is(err, ErrNotFound) {
		return nil, errNoChallenge
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
	var phone string
	now := s.now().UTC()
	_, err := s.withChallenge(ctx, id, keyID, func(tx *Tx, c *Challenge) (*APIError, error) {
		res, phone = VerifyResult{}, c.Phone // afresh: the write may run twice
		if len(code) != c.Length {
			// Not an attempt: no code of this length was ever sent.
			return apiErr(http.StatusBadRequest, "invalid_code", "code must be %d digits", c.Length), nil
		}
		switch st := c.effectiveStatus(now); st {
		case StatusApproved, StatusCanceled:
			return apiErr(http.StatusConflict, "not_pending", "challenge is %s; a code works once", st), nil
		case StatusExpired:
			if c.Status != StatusExpired {
				if err := setChallengeStatus(tx, id, StatusExpired, ms(now)); err != nil {
					return nil, err
				}
			}
			return apiErr(http.StatusGone, "expired", "challenge expired"), nil
		case StatusMaxAttempts:
			// Final: no retry helps, so not a 429.
			return apiErr(http.StatusConflict, "max_attempts_reached", "no attempts left for this challenge; start a new one"), nil
		}
		fails, at, err := txPhoneFailures(tx, c.Phone)
		if err != nil {
			return nil, err
		}
		if e := s.failuresError(fails, at); e != nil {
			return e.(*APIError), nil
		}
		if fromMS(at).Add(s.cfg.Limits.PhoneFailureWindow).Before(now) {
			fails = 0 // the last failure is old: a new run
		}
		c.Attempts++
		status := StatusPending
		if s.sec.CheckCode(c.ID, code, c.CodeHMAC) {
			status = StatusApproved
			fails = 0
		} else {
			fails++
			if c.Attempts >= c.MaxAttempts {
				status = StatusMaxAttempts
			}
		}
		if err := setPhoneFailures(tx, c.Phone, fails, ms(now)); err != nil {
			return nil, err
		}
		if err := recordAttempt(tx, id, c.Attempts, status, ms(now)); err != nil {
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
	if res.Status == StatusApproved {
		s.metrics.OTPVerified.WithLabelValues(metricLabels(phone)...).Inc()
	}
	s.log.Info("otp verify", zap.String("id", id), zap.String("result", res.Status))
	return &res, nil
}

// Resend draws a new code that replaces the old one and queues a new SMS,
// within the cooldown and the cap per challenge. A message with the old
// code that has not gone out yet is withdrawn. The expiry stays where the
// challenge's creation set it: a resend never extends it (else resends
// could keep a challenge, and its attempts, alive for ever).
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
			// Final for this challenge: not a 429 that invites a retry.
			return apiErr(http.StatusForbidden, "max_sends_reached", "at most %d codes per challenge; start a new one", s.cfg.OTP.MaxSends), nil
		}
		if wait := c.LastSentAt.Add(s.cfg.OTP.ResendAfter).Sub(now); wait > 0 {
			e := apiErr(http.StatusTooManyRequests, "resend_cooldown", "wait before asking for another code")
			e.RetryAfter = wait
			return e, nil
		}
		// The new SMS reads as the first did: the caller's template and
		// sender, or the locale's; a template the configuration lost since
		// fails the resend rather than sending a text without its code.
		tmpl, err := s.template(CreateRequest{Locale: c.Locale, Template: c.Template})
		if err != nil || !strings.Contains(tmpl, "{otp}") {
			return apiErr(http.StatusConflict, "template_unavailable", "the template of this challenge is not configured any more; start a new one"), nil
		}
		text := render(tmpl, strings.Repeat("0", c.Length), c.Phone, c.ExpiresAt.Sub(now))
		if err := s.checkText(text); err != nil {
			return err.(*APIError), nil
		}
		// A resend is a send: the rate limits apply (SMS pumping).
		if p, err := parsePhone(c.Phone, "", false); err == nil {
			if refund, err = s.takeLimits(ctx, p, keyID); err != nil {
				if ae, ok := err.(*APIError); ok {
					return ae, nil
				}
				return nil, err
			}
		}
		code, err := NewCode(c.Length)
		if err != nil {
			return nil, err
		}
		m = s.newMessage(c.ID, c.Phone, c.Sender, render(tmpl, code, c.Phone, c.ExpiresAt.Sub(now)), c.ExpiresAt, keyID, now)
		// The old code stops working; its SMS is withdrawn if still queued.
		if err := withdrawQueued(tx, c.MessageID, "superseded by a resend before it was sent", ms(now)); err != nil {
			return nil, err
		}
		oldMessage := c.MessageID
		c.CodeHMAC = s.sec.CodeMAC(c.ID, code)
		c.Sends++
		c.LastSentAt = now
		c.MessageID = m.ID
		if err := recordResend(tx, c, ms(now)); err != nil {
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
		return nil, setChallengeStatus(tx, id, StatusCanceled, ms(now))
	})
	if err != nil {
		return nil, err
	}
	s.metrics.Challenges.WithLabelValues(StatusCanceled).Inc()
	return c, nil
}

// GetChallenge reads a challenge and its latest message.
func (s *Service) GetChallenge(ctx context.Context, id, keyID string) (*Challenge, *Message, error) {
	all, err := s.access(ctx, keyID, ScopeOTP)
	if err != nil {
		return nil, nil, err
	}
	if !validID("ch", id) {
		return nil, nil, errNoChallenge
	}
	c, err := s.store.Challenge(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !all && c.KeyID != keyID) {
		return nil, nil, errNoChallenge
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := s.store.Message(ctx, c.MessageID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, err
	}
	return c, m, nil
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
	if _, err := s.access(ctx, keyID, ScopeMessages); err != nil {
		return nil, err
	}
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
	if err := s.checkSender(ctx, keyID, req.From); err != nil {
		return nil, err
	}
	after, err := s.withWebhook(ctx, req.CallbackURL, keyID, req.after)
	if err != nil {
		return nil, err
	}
	refund, err := s.takeLimits(ctx, p, keyID)
	s.countRefusal(err)
	if err != nil {
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
		if !errors.Is(err, ErrNotDurable) {
			refund()
		}
		return nil, fmt.Errorf("store message: %w", err)
	}
	s.log.Info("message queued", zap.String("message_id", m.ID), zap.String("phone", MaskPhone(m.Phone)))
	return m, nil
}

// GetMessage reads a plain message (or any message) with its segments.
func (s *Service) GetMessage(ctx context.Context, id, keyID string) (*Message, error) {
	all, err := s.access(ctx, keyID, ScopeMessages)
	if err != nil {
		return nil, err
	}
	if !validID("msg", id) {
		return nil, errNoMessage
	}
	m, err := s.store.Message(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !all && m.KeyID != keyID) {
		return nil, errNoMessage
	}
	return m, err
}
