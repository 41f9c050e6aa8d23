// Package otpd is the OTP service: challenges and their codes, the durable
// outbox and its sender over an smpp.Pool, delivery receipts, rate limits
// and the HTTP API.
package otpd

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the whole configuration of otpd serve. YAML keys are the
// `yaml` tags; the CLI maps flags and OTPD_* variables onto the same
// fields.
type Config struct {
	HTTP    HTTPConfig `yaml:"http"`
	DataDir string     `yaml:"data_dir"`
	// Database is a PostgreSQL URL (postgres://...) to keep the store in,
	// shared by every instance; "" keeps it in SQLite in DataDir.
	Database string       `yaml:"database"`
	SMSC     SMSCConfig   `yaml:"smsc"`
	OTP      OTPConfig    `yaml:"otp"`
	Limits   LimitsConfig `yaml:"limits"`
	Sender   SenderConfig `yaml:"sender"`
	Sim      SimConfig    `yaml:"simulator"`
	// Retention is how long challenges, messages and their receipts are
	// kept after they were created; default 720h (30 days).
	Retention time.Duration `yaml:"retention"`

	// SMPPListen is the address of the SMPP door for applications ("" none).
	SMPPListen string `yaml:"smpp_listen"`
	// SMPPTLSCert and SMPPTLSKey (PEM files) make the SMPP door speak TLS.
	SMPPTLSCert string `yaml:"smpp_tls_cert"`
	SMPPTLSKey  string `yaml:"smpp_tls_key"`
	// Dev allows the embedded default where it would be refused: on an
	// address other than loopback, or on a data directory that served a
	// real SMSC.
	Dev bool `yaml:"dev"`

	embedded bool // set by Start when it started the embedded simulator
}

// HTTPConfig is the HTTP listener.
type HTTPConfig struct {
	Addr    string `yaml:"addr"`     // default 127.0.0.1:8080
	TLSCert string `yaml:"tls_cert"` // PEM file; with tls_key, serve HTTPS
	TLSKey  string `yaml:"tls_key"`
	MaxBody int64  `yaml:"max_body"` // bytes, default 16 KiB
	NoAuth  bool   `yaml:"no_auth"`  // serve without API keys
	// NoAuthPublic confirms NoAuth on an address other than loopback.
	NoAuthPublic bool `yaml:"no_auth_public"`
	// ReadTimeout bounds reading a request, headers and body; default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// Demo serves the try-it page at /demo with a real SMSC too (the
	// embedded default always serves it): anyone who reaches it can send
	// codes, within the rate limits.
	Demo bool `yaml:"demo"`
}

// SMSCConfig is the SMPP link, named as operators know it from Kannel and
// privacyIDEA. Without Addr otpd runs on the embedded simulator.
type SMSCConfig struct {
	Addr               string        `yaml:"addr"` // host:port
	SystemID           string        `yaml:"system_id"`
	Password           string        `yaml:"password"`
	SystemType         string        `yaml:"system_type"`
	BindMode           string        `yaml:"bind_mode"` // trx (default) or tx+rx
	Binds              int           `yaml:"binds"`     // default 1
	Window             int           `yaml:"window"`    // default 10
	TPS                float64       `yaml:"tps"`       // pool-wide, 0 = none
	BindTPS            float64       `yaml:"bind_tps"`  // per bind, 0 = none
	EnquireLink        time.Duration `yaml:"enquire_link"`
	ResponseTimeout    time.Duration `yaml:"response_timeout"`
	ReconnectMin       time.Duration `yaml:"reconnect_min"`
	ReconnectMax       time.Duration `yaml:"reconnect_max"`
	ReconnectStable    time.Duration `yaml:"reconnect_stable"` // a bind up this long resets the backoff; 0: smpp's default 30s
	SourceAddr         string        `yaml:"source_addr"`      // S_ADDR
	SourceTON          int           `yaml:"source_ton"`       // -1: derived from source_addr
	SourceNPI          int           `yaml:"source_npi"`
	DestTON            int           `yaml:"dest_ton"` // default 1 (international)
	DestNPI            int           `yaml:"dest_npi"` // default 1 (E.164)
	RegisteredDelivery int           `yaml:"registered_delivery"`
	DataCoding         string        `yaml:"data_coding"`       // auto (default), gsm, ucs2, latin1
	UTF16              bool          `yaml:"utf16"`             // send characters outside the BMP as UTF-16 under UCS-2 (the SMSC accepts it)
	Concat             string        `yaml:"concat"`            // udh (default), udh16, sar, payload
	MessageIDFormat    string        `yaml:"message_id_format"` // auto (default), dec, hex: base of receipt ids
	TLS                bool          `yaml:"tls"`
	TLSSkipVerify      bool          `yaml:"tls_skip_verify"`
	TLSCA              string        `yaml:"tls_ca"` // PEM file of CAs to trust
	ThrottlePause      time.Duration `yaml:"throttle_pause"`
	// BindBudget is the most sessions the SMSC account allows at once,
	// over every instance (on PostgreSQL they share it through leases);
	// 0 is no budget.
	BindBudget int `yaml:"bind_budget"`
	// BindLease is how long a slot of the budget is leased; default 30s.
	BindLease time.Duration `yaml:"bind_lease"`
}

// OTPConfig is the challenge policy.
type OTPConfig struct {
	Length        int               `yaml:"length"`         // default 6
	MinLength     int               `yaml:"min_length"`     // floor, default 6 (NIST's 20 bits)
	TTL           time.Duration     `yaml:"ttl"`            // default 5m, at most 10m
	MaxAttempts   int               `yaml:"max_attempts"`   // default 5
	ResendAfter   time.Duration     `yaml:"resend_after"`   // cooldown, default 30s
	MaxSends      int               `yaml:"max_sends"`      // per challenge, default 3
	Templates     map[string]string `yaml:"templates"`      // locale -> text with {otp} {phone} {ttl}
	Locale        string            `yaml:"locale"`         // default locale, default "en"
	HMACKeyFile   string            `yaml:"hmac_key_file"`  // default <data>/secret.key
	DefaultRegion string            `yaml:"default_region"` // region for numbers without + or 00, "" = require one
}

// LimitsConfig is the rate limiting, the first defence against SMS pumping.
type LimitsConfig struct {
	PerPhone       Rate     `yaml:"per_phone"`       // default 5/10m
	PerKey         Rate     `yaml:"per_key"`         // default 600/1m
	PerCountry     Rate     `yaml:"per_country"`     // default 1000/1m
	Global         Rate     `yaml:"global"`          // default 100000/1m
	AllowCountries []string `yaml:"allow_countries"` // ISO regions (DE, US); empty = all
	// PerPrefix limits sends to the numbers that share all but their last
	// PrefixDigits digits (a range an SMS pumper walks); default 20/1h
	// over 3 digits (1000 numbers).
	PerPrefix    Rate `yaml:"per_prefix"`
	PrefixDigits int  `yaml:"prefix_digits"`
	// NumberTypes are the number types codes may go to, as the numbering
	// plan says; default mobile and fixed_line_or_mobile (premium-rate,
	// shared-cost, toll-free, VoIP, pager and unknown numbers are
	// refused: they are where SMS pumping earns).
	NumberTypes []string `yaml:"number_types"`
	// MaxPhoneFailures caps failed verifications in a row for a phone,
	// across its challenges, until PhoneFailureWindow after the last one;
	// default 20 in 24h.
	MaxPhoneFailures   int           `yaml:"max_phone_failures"`
	PhoneFailureWindow time.Duration `yaml:"phone_failure_window"`
}

// Rate is N events per Per; zero N disables the limit. Written "5/10m".
type Rate struct {
	N   int
	Per time.Duration
}

// RateOff is a disabled limit (the zero Rate means "not set": the
// default applies).
var RateOff = Rate{N: 0, Per: -1}

// ParseRate reads "5/10m", "100/1s" or "off".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return RateOff, nil
	}
	if s == "" {
		return Rate{}, nil // unset: the default applies
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/duration such as 5/10m", s)
	}
	var r Rate
	if _, err := fmt.Sscanf(n, "%d", &r.N); err != nil || r.N < 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a count", s, n)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a duration", s, per)
	}
	r.Per = d
	return r, nil
}

func (r Rate) String() string {
	if r.N == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// UnmarshalText reads a Rate from YAML or a flag.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText writes the rate as N/duration.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// SenderConfig tunes the outbox sender.
type SenderConfig struct {
	Workers      int           `yaml:"workers"`       // concurrent submits, default 2x window x binds
	RetryMin     time.Duration `yaml:"retry_min"`     // default 1s
	RetryMax     time.Duration `yaml:"retry_max"`     // default 30s
	Uncertain    string        `yaml:"uncertain"`     // resubmit (default) or fail
	MessageTTL   time.Duration `yaml:"message_ttl"`   // deadline of plain messages, default 1h
	ShutdownWait time.Duration `yaml:"shutdown_wait"` // default 10s
	// Lease is how long a claim holds a message being sent: past it, a
	// message still "sending" that no worker of this process holds (its
	// instance died, its write failed) is taken up again, counted
	// uncertain. Longer than a message's submits can take; default 2m.
	Lease time.Duration `yaml:"lease"`
}

// SimConfig is the embedded simulator used when no SMSC is configured.
type SimConfig struct {
	HTTPAddr string `yaml:"http"`      // default 127.0.0.1:8025
	SMPPAddr string `yaml:"smpp"`      // default a free loopback port
	DLRDelay string `yaml:"dlr_delay"` // default 200ms
}

// NewConfig returns a Config whose fields that have a meaningful zero are
// preset (TON/NPI, registered_delivery); load YAML and flags over it, then
// call Defaults for the rest.
func NewConfig() Config {
	return Config{SMSC: SMSCConfig{SourceTON: -1, SourceNPI: -1, DestTON: 1, DestNPI: 1, RegisteredDelivery: 1}}
}

// Defaults fills every zero field with its default.
func (c *Config) Defaults() {
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = "127.0.0.1:8080"
	}
	if c.HTTP.MaxBody == 0 {
		c.HTTP.MaxBody = 16 << 10
	}
	if c.DataDir == "" {
		c.DataDir = "./otpd-data"
	}
	s := &c.SMSC
	if s.BindMode == "" {
		s.BindMode = "trx"
	}
	if s.Binds == 0 {
		s.Binds = 1
	}
	if s.Window == 0 {
		s.Window = 10
	}
	if s.EnquireLink == 0 {
		s.EnquireLink = 30 * time.Second
	}
	if s.ResponseTimeout == 0 {
		s.ResponseTimeout = 10 * time.Second
	}
	if s.ReconnectMin == 0 {
		s.ReconnectMin = 500 * time.Millisecond
	}
	if s.ReconnectMax == 0 {
		s.ReconnectMax = 30 * time.Second
	}
	if s.SourceAddr == "" {
		s.SourceAddr = "OTPD"
	}
	if s.DataCoding == "" {
		s.DataCoding = "auto"
	}
	if s.Concat == "" {
		s.Concat = "udh"
	}
	if s.MessageIDFormat == "" {
		s.MessageIDFormat = "auto"
		if c.Embedded() {
			// The embedded simulator's ids are decimal, the same in its
			// receipts: read them so. Under auto, a receipt whose id is the
			// hex reading of another message's id would reach that message
			// too, and each receipt costs a lookup per reading.
			s.MessageIDFormat = "dec"
		}
	}
	if s.ThrottlePause == 0 {
		s.ThrottlePause = time.Second
	}
	if s.BindLease == 0 {
		s.BindLease = 30 * time.Second
	}
	o := &c.OTP
	if o.MinLength == 0 {
		o.MinLength = 6
	}
	if o.Length == 0 {
		o.Length = max(6, o.MinLength)
	}
	if o.TTL == 0 {
		o.TTL = 5 * time.Minute
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.ResendAfter == 0 {
		o.ResendAfter = 30 * time.Second
	}
	if o.MaxSends == 0 {
		o.MaxSends = 3
	}
	if o.Locale == "" {
		o.Locale = "en"
	}
	if o.Templates == nil {
		o.Templates = map[string]string{}
	}
	if _, ok := o.Templates["en"]; !ok {
		o.Templates["en"] = "Your code is {otp}. It expires in {ttl}. Do not share it."
	}
	l := &c.Limits
	if l.PerPhone == (Rate{}) {
		l.PerPhone = Rate{5, 10 * time.Minute}
	}
	if l.PerKey == (Rate{}) {
		l.PerKey = Rate{600, time.Minute}
	}
	if l.PerCountry == (Rate{}) {
		l.PerCountry = Rate{1000, time.Minute}
	}
	if l.Global == (Rate{}) {
		l.Global = Rate{100000, time.Minute}
	}
	if l.PerPrefix == (Rate{}) {
		l.PerPrefix = Rate{20, time.Hour}
	}
	if l.PrefixDigits == 0 {
		l.PrefixDigits = 3
	}
	if l.NumberTypes == nil {
		l.NumberTypes = []string{"mobile", "fixed_line_or_mobile"}
	}
	if l.MaxPhoneFailures == 0 {
		l.MaxPhoneFailures = 20
	}
	if l.PhoneFailureWindow == 0 {
		l.PhoneFailureWindow = 24 * time.Hour
	}
	if c.HTTP.ReadTimeout == 0 {
		c.HTTP.ReadTimeout = 30 * time.Second
	}
	if c.Sender.RetryMin == 0 {
		c.Sender.RetryMin = time.Second
	}
	if c.Sender.RetryMax == 0 {
		c.Sender.RetryMax = 30 * time.Second
	}
	if c.Sender.Uncertain == "" {
		c.Sender.Uncertain = "resubmit"
	}
	if c.Sender.MessageTTL == 0 {
		c.Sender.MessageTTL = time.Hour
	}
	if c.Sender.Lease == 0 {
		c.Sender.Lease = 2 * time.Minute
	}
	if c.Sender.ShutdownWait == 0 {
		c.Sender.ShutdownWait = 10 * time.Second
	}
	if c.Sender.Workers == 0 {
		c.Sender.Workers = 2 * s.Window * s.Binds
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.Sim.HTTPAddr == "" {
		c.Sim.HTTPAddr = "127.0.0.1:8025"
	}
	if c.Sim.SMPPAddr == "" {
		c.Sim.SMPPAddr = "127.0.0.1:0"
	}
	if c.Sim.DLRDelay == "" {
		c.Sim.DLRDelay = "200ms"
	}
}

// Embedded reports whether otpd runs on the in-process simulator.
func (c *Config) Embedded() bool { return c.SMSC.Addr == "" || c.embedded }

// Validate checks the configuration; each error names its key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, a ...any) { errs = append(errs, key+": "+fmt.Sprintf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%q is not host:port", c.HTTP.Addr)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tls_cert", "tls_cert and tls_key go together")
	}
	s := c.SMSC
	if s.Addr != "" {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			bad("smsc.addr", "%q is not host:port", s.Addr)
		}
		if s.SystemID == "" {
			bad("smsc.system_id", "required with smsc.addr")
		}
		if len(s.SystemID) > 15 {
			bad("smsc.system_id", "at most 15 characters (SMPP 3.4)")
		}
		if len(s.Password) > 8 {
			bad("smsc.password", "at most 8 characters (SMPP 3.4)")
		}
		if len(s.SystemType) > 12 {
			bad("smsc.system_type", "at most 12 characters (SMPP 3.4)")
		}
	}
	if s.BindMode != "trx" && s.BindMode != "tx+rx" {
		bad("smsc.bind_mode", "%q: want trx or tx+rx", s.BindMode)
	}
	if s.Binds < 1 || s.Binds > 64 {
		bad("smsc.binds", "%d: want 1 to 64", s.Binds)
	}
	if s.Window < 1 || s.Window > 1000 {
		bad("smsc.window", "%d: want 1 to 1000", s.Window)
	}
	if s.BindBudget < 0 || s.BindBudget > 1000 {
		bad("smsc.bind_budget", "%d: want 0 (no budget) to 1000", s.BindBudget)
	}
	if s.BindBudget == 1 && s.BindMode == "tx+rx" {
		bad("smsc.bind_budget", "1 cannot hold both a transmitter and a receiver: tx+rx needs at least 2 (or use trx)")
	}
	if s.BindBudget > 0 && c.Database != "" && (s.BindLease < time.Second || s.BindLease < 3*s.ResponseTimeout) {
		// A bind whose lease is not renewed is dropped half a lease after
		// the last renewal, and its unbind takes up to the response
		// timeout: both must fit in the lease before another instance may
		// take the slot.
		bad("smsc.bind_lease", "%s: want at least 1s and 3 x smsc.response_timeout (%s)", s.BindLease, s.ResponseTimeout)
	}
	if s.TPS < 0 || s.BindTPS < 0 {
		bad("smsc.tps", "must not be negative")
	}
	if len(s.SourceAddr) > 20 {
		bad("smsc.source_addr", "at most 20 characters (SMPP 3.4)")
	}
	for _, v := range []struct {
		k string
		n int
	}{{"smsc.source_ton", s.SourceTON}, {"smsc.source_npi", s.SourceNPI}, {"smsc.dest_ton", s.DestTON}, {"smsc.dest_npi", s.DestNPI}} {
		if v.n < -1 || v.n > 255 {
			bad(v.k, "%d: want 0 to 255", v.n)
		}
	}
	if s.RegisteredDelivery < 0 || s.RegisteredDelivery > 255 {
		bad("smsc.registered_delivery", "%d: want 0 to 255", s.RegisteredDelivery)
	}
	switch s.DataCoding {
	case "auto", "gsm", "ucs2", "latin1":
	default:
		bad("smsc.data_coding", "%q: want auto, gsm, ucs2 or latin1", s.DataCoding)
	}
	switch s.Concat {
	case "udh", "udh16", "sar", "payload":
	default:
		bad("smsc.concat", "%q: want udh, udh16, sar or payload", s.Concat)
	}
	switch s.MessageIDFormat {
	case "auto", "dec", "hex":
	default:
		bad("smsc.message_id_format", "%q: want auto, dec or hex", s.MessageIDFormat)
	}
	o := c.OTP
	if o.MinLength < 6 {
		bad("otp.min_length", "%d: at least 6 (20 bits, NIST SP 800-63B)", o.MinLength)
	}
	if o.Length < o.MinLength || o.Length > 10 {
		bad("otp.length", "%d: want %d to 10", o.Length, o.MinLength)
	}
	if o.TTL <= 0 || o.TTL > 10*time.Minute {
		bad("otp.ttl", "%s: want more than 0 and at most 10m (NIST SP 800-63B)", o.TTL)
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 20 {
		bad("otp.max_attempts", "%d: want 1 to 20", o.MaxAttempts)
	}
	if o.MaxSends < 1 {
		bad("otp.max_sends", "%d: want at least 1", o.MaxSends)
	}
	if _, ok := o.Templates[o.Locale]; !ok {
		bad("otp.locale", "no template for the default locale %q", o.Locale)
	}
	for loc, t := range o.Templates {
		if !strings.Contains(t, "{otp}") {
			bad("otp.templates."+loc, "has no {otp}")
		}
	}
	switch c.Sender.Uncertain {
	case "resubmit", "fail":
	default:
		bad("sender.uncertain", "%q: want resubmit or fail", c.Sender.Uncertain)
	}
	if c.Retention < time.Hour {
		bad("retention", "%s: at least 1h", c.Retention)
	}
	if c.Sender.Workers < 1 {
		bad("sender.workers", "%d: want at least 1", c.Sender.Workers)
	}
	// A lease that ends while its worker still waits for a submit_sm_resp
	// sends the message twice: at least two response timeouts.
	if minLease := max(10*time.Second, 2*c.SMSC.ResponseTimeout); c.Sender.Lease < minLease {
		bad("sender.lease", "%s: at least %s (10s, and twice smsc.response_timeout)", c.Sender.Lease, minLease)
	}
	if c.Limits.PrefixDigits < 1 || c.Limits.PrefixDigits > 6 {
		bad("limits.prefix_digits", "%d: want 1 to 6", c.Limits.PrefixDigits)
	}
	for _, t := range c.Limits.NumberTypes {
		if _, ok := numberTypes[t]; !ok {
			bad("limits.number_types", "%q: want mobile, fixed_line_or_mobile, fixed_line, toll_free, premium_rate, shared_cost, voip, personal_number, pager, uan, voicemail", t)
		}
	}
	if c.Limits.MaxPhoneFailures < 1 || c.Limits.MaxPhoneFailures > 100 {
		bad("limits.max_phone_failures", "%d: want 1 to 100 (NIST SP 800-63B allows at most 100)", c.Limits.MaxPhoneFailures)
	}
	for _, cc := range c.Limits.AllowCountries {
		if len(cc) != 2 || strings.ToUpper(cc) != cc {
			bad("limits.allow_countries", "%q is not an ISO 3166 region code such as DE", cc)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// longestWindow is the longest window of the rate limits: a bucket unused
// for that long is full again.
func (l LimitsConfig) longestWindow() time.Duration {
	return max(l.PerPhone.Per, l.PerKey.Per, l.PerCountry.Per, l.Global.Per, l.PerPrefix.Per, time.Hour)
}
