package simulator

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
)

// Default addresses of the binary.
const (
	DefaultSMPPAddr = "127.0.0.1:2775"
	DefaultHTTPAddr = "127.0.0.1:8025"
	// DefaultSMPPTLSAddr is the SMPP over TLS listener's (3550 is IANA's
	// ssmpp port).
	DefaultSMPPTLSAddr = "127.0.0.1:3550"
)

// Config configures a Simulator. The zero value of each field takes the
// default in its comment.
type Config struct {
	// SMPPAddr is the SMPP listener's address; default "127.0.0.1:2775".
	// "127.0.0.1:0" picks a free port (read it with Addr). "off" starts no
	// plain listener (with TLS set: SMPP over TLS only).
	SMPPAddr string
	// TLS, when set, serves SMPP over TLS on SMPPTLSAddr, beside the plain
	// listener (or instead of it with SMPPAddr "off").
	TLS *tls.Config
	// SMPPTLSAddr is the TLS listener's address; default
	// DefaultSMPPTLSAddr ("127.0.0.1:3550", IANA's ssmpp port). Read it
	// with TLSAddr.
	SMPPTLSAddr string
	// DLRMode is "auto" (default: receipts as DLRDelay and DLROutcomes
	// say) or "manual": no receipt is sent until one is asked for with
	// SendReceipt (POST /api/messages/{id}/receipt); messages stay
	// ENROUTE until then.
	DLRMode string
	// DLRRoute is the receiver bind a receipt goes out on: "any" (default:
	// round robin over the system_id's receiver binds) or "other": a bind
	// other than the session that submitted the message whenever one is
	// bound, else the submitting one. "other" shows whether an ESME with
	// several binds (or several instances sharing an account) matches a
	// receipt that arrives on a bind that did not submit. With tx+rx pairs
	// the submitting session is a transmitter, so every receiver is other.
	DLRRoute string
	// CodePattern is a regular expression whose matches in a message's
	// text are its first codes (the first submatch when it has one),
	// before the runs of 4 to 10 digits that are always extracted.
	CodePattern string
	// HTTPAddr is the HTTP API's address (DefaultHTTPAddr is
	// "127.0.0.1:8025"); "" starts no HTTP listener (Handler still works).
	HTTPAddr string
	// Accounts are the ESMEs that may bind; none means any bind is
	// accepted.
	Accounts []Account
	// DLRDelay is how long after the submit a receipt is sent: fixed or a
	// random range (ParseDelay). Default 0: at once.
	DLRDelay Delay
	// DLROutcomes is the distribution receipts' outcomes are drawn from
	// (ParseOutcomes); default all DELIVRD.
	DLROutcomes Outcomes
	// MessageIDFormat is the form of message ids: "dec" (default), "hex"
	// or "uuid".
	MessageIDFormat string
	// ReceiptIDFormat is the form of the id in receipts: "same" (default:
	// as in submit_sm_resp), "dec" or "hex". It applies to the receipt
	// text and to receipted_message_id, unless ReceiptTLVKeepsID.
	ReceiptIDFormat string
	// ReceiptTLVKeepsID keeps the submit_sm_resp form of the id in the
	// receipted_message_id parameter while the text has ReceiptIDFormat.
	ReceiptTLVKeepsID bool
	// ReceiptNoText leaves the text: field of receipts empty (by default
	// it holds the message's first 20 characters, as in Appendix B).
	ReceiptNoText bool
	// ReceiptRetry is the wait before a receipt is sent again after an
	// error answer or a lost link; default 1s.
	ReceiptRetry time.Duration
	// Retention is how many messages are kept, oldest dropped first;
	// default 10000.
	Retention int
	// MaxPendingReceipts bounds the receipts owed and not yet
	// acknowledged (each holds its message), per system_id: while an
	// account has that many, its submits asking for a receipt are refused
	// with ESME_RMSGQFUL (message queue full; clients retry) and counted in
	// smscsim_receipt_queue_full_total. Default 10 times Retention, so
	// memory stays bounded whatever the submit rate and the receipt delay.
	MaxPendingReceipts int
	// Rules apply by destination prefix. Nil means DefaultRules (unless
	// NoDefaultRules); an empty non-nil slice means none.
	Rules []Rule
	// NoDefaultRules drops DefaultRules when Rules is nil.
	NoDefaultRules bool
	// Faults are the faults injected from the start (SetFaults changes
	// them while running).
	Faults Faults
	// Seed makes random draws (delays, outcomes, faults) and message ids
	// deterministic; 0 draws a random seed and starts ids from the clock.
	Seed int64
	// Window is the most deliver_sm outstanding per session; default 100.
	Window int
	// SegmentTimeout is how long an incomplete concatenated message waits
	// for its missing segments; default 10 minutes.
	SegmentTimeout time.Duration
	// SystemID is the system_id in bind responses; default "smscsim".
	SystemID string
	// Logger receives the logs (binds at info, PDUs at debug); nil logs
	// nothing.
	Logger *zap.Logger

	codeRE *regexp.Regexp
}

// Account is an ESME allowed to bind.
type Account struct {
	SystemID   string `json:"system_id" yaml:"system_id"`
	Password   string `json:"password" yaml:"password"`
	SystemType string `json:"system_type,omitempty" yaml:"system_type"`
	// BindTypes are the bind types allowed; empty allows all.
	BindTypes []smpp.BindType `json:"bind_types,omitempty" yaml:"-"`
	// MaxBinds is the most binds at once; 0 is no limit.
	MaxBinds int `json:"max_binds,omitempty" yaml:"max_binds"`
	// TPS is the most submits per second over all binds of the account;
	// beyond it the simulator answers ESME_RTHROTTLED. 0 is no limit.
	TPS float64 `json:"tps,omitempty" yaml:"tps"`
}

// ParseAccount reads "ID:PASSWORD" optionally followed by
// ":key=value,key=value" with keys bind (tx, rx, trx, joined by "+"),
// max_binds, tps and system_type. The password cannot contain ':'.
func ParseAccount(s string) (Account, error) {
	id, rest, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return Account{}, fmt.Errorf("account %q: want ID:PASSWORD[:bind=trx+tx,max_binds=N,tps=N,system_type=T]", s)
	}
	pw, opts, _ := strings.Cut(rest, ":")
	a := Account{SystemID: id, Password: pw}
	if opts == "" {
		return a, nil
	}
	for _, kv := range strings.Split(opts, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Account{}, fmt.Errorf("account %q: option %q is not key=value", id, kv)
		}
		switch strings.TrimSpace(k) {
		case "bind", "binds", "bind_types":
			bts, err := ParseBindTypes(strings.Split(v, "+"))
			if err != nil {
				return Account{}, fmt.Errorf("account %q: %w", id, err)
			}
			a.BindTypes = bts
		case "max_binds", "max-binds":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Account{}, fmt.Errorf("account %q: max_binds %q is not a count", id, v)
			}
			a.MaxBinds = n
		case "tps":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return Account{}, fmt.Errorf("account %q: tps %q is not a rate", id, v)
			}
			a.TPS = f
		case "system_type", "system-type":
			a.SystemType = v
		default:
			return Account{}, fmt.Errorf("account %q: unknown option %q (bind, max_binds, tps, system_type)", id, k)
		}
	}
	return a, nil
}

// ParseBindTypes reads bind type names: tx (transmitter), rx (receiver),
// trx (transceiver).
func ParseBindTypes(names []string) ([]smpp.BindType, error) {
	var out []smpp.BindType
	for _, n := range names {
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "tx", "transmitter":
			out = append(out, smpp.BindTransmitter)
		case "rx", "receiver":
			out = append(out, smpp.BindReceiver)
		case "trx", "transceiver":
			out = append(out, smpp.BindTransceiver)
		case "":
		default:
			return nil, fmt.Errorf("bind type %q: want tx, rx or trx", n)
		}
	}
	return out, nil
}

// Delay is a fixed delay (Min == Max) or a random one drawn uniformly from
// [Min, Max].
type Delay struct {
	Min, Max time.Duration
}

// ParseDelay reads "100ms", "2s" (fixed) or "1s-5s" (a range); "" and "0"
// are no delay.
func ParseDelay(s string) (Delay, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Delay{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	min, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return Delay{}, fmt.Errorf("delay %q: want a duration (100ms, 2s) or a range (1s-5s)", s)
	}
	max := min
	if isRange {
		if max, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return Delay{}, fmt.Errorf("delay %q: want a duration (100ms, 2s) or a range (1s-5s)", s)
		}
	}
	if min < 0 || max < min {
		return Delay{}, fmt.Errorf("delay %q: want 0 <= min <= max", s)
	}
	return Delay{Min: min, Max: max}, nil
}

// String gives the form ParseDelay reads.
func (d Delay) String() string {
	if d.Min == d.Max {
		if d.Min == 0 {
			return "0"
		}
		return d.Min.String()
	}
	return d.Min.String() + "-" + d.Max.String()
}

// IsZero reports whether the delay is none.
func (d Delay) IsZero() bool { return d.Max == 0 }

// MarshalText implements encoding.TextMarshaler.
func (d Delay) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Delay) UnmarshalText(b []byte) error {
	v, err := ParseDelay(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Outcome is one possible end of a message: its state, the err code
// written in its receipt, and its weight in the draw.
type Outcome struct {
	State  dlr.State
	Err    string
	Weight float64
}

// Outcomes is a distribution of outcomes; weights need not add up to 1.
type Outcomes []Outcome

// DefaultErr is the err code ParseOutcomes gives each stat word without
// one: 000 for DELIVRD and ACCEPTD, else a code of its own.
func DefaultErr(st dlr.State) string {
	switch st {
	case dlr.Delivered, dlr.Accepted, dlr.Enroute:
		return "000"
	case dlr.Undeliverable:
		return "001"
	case dlr.Expired:
		return "002"
	case dlr.Deleted:
		return "003"
	case dlr.Rejected:
		return "004"
	}
	return "005"
}

// ParseOutcomes reads "DELIVRD=0.9,UNDELIV=0.1"; a stat word may carry its
// err code as "UNDELIV:001=0.1". Stat words: DELIVRD, UNDELIV, EXPIRED,
// REJECTD, DELETED, UNKNOWN, ACCEPTD, ENROUTE. "" gives all DELIVRD.
func ParseOutcomes(s string) (Outcomes, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out Outcomes
	total := 0.0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		stat, w, hasW := strings.Cut(part, "=")
		weight := 1.0
		if hasW {
			f, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("outcomes %q: weight %q is not a non-negative number", s, w)
			}
			weight = f
		}
		word, errCode, hasErr := strings.Cut(strings.TrimSpace(stat), ":")
		st, err := parseStat(word)
		if err != nil {
			return nil, fmt.Errorf("outcomes %q: %w", s, err)
		}
		if !hasErr {
			errCode = DefaultErr(st)
		}
		out = append(out, Outcome{State: st, Err: errCode, Weight: weight})
		total += weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("outcomes %q: the weights add up to 0", s)
	}
	return out, nil
}

func parseStat(word string) (dlr.State, error) {
	st, ok := dlr.ParseStat(strings.ToUpper(strings.TrimSpace(word)))
	if !ok || st == dlr.NoState {
		return 0, fmt.Errorf("stat %q: want DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ACCEPTD or ENROUTE", word)
	}
	return st, nil
}

// String gives the form ParseOutcomes reads.
func (o Outcomes) String() string {
	if len(o) == 0 {
		return "DELIVRD=1"
	}
	parts := make([]string, len(o))
	for i, x := range o {
		parts[i] = x.State.Stat() + ":" + x.Err + "=" + strconv.FormatFloat(x.Weight, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// Rule applies to messages whose destination starts with Prefix (a leading
// '+' on either side is ignored). Reject, when set, answers the submit with
// that status; else NoReceipt sends no receipt; else the message always
// ends in Stat with Err.
type Rule struct {
	Prefix    string             `json:"prefix" yaml:"prefix"`
	Stat      string             `json:"stat,omitempty" yaml:"stat"`
	Err       string             `json:"err,omitempty" yaml:"err"`
	Reject    smpp.CommandStatus `json:"-" yaml:"-"`
	NoReceipt bool               `json:"no_receipt,omitempty" yaml:"no_receipt"`

	state dlr.State
}

// DefaultRules are the magic test numbers in force unless Config.Rules is
// set or NoDefaultRules:
//
//	+1555000...  always UNDELIV err 001
//	+1555001...  rejected at submit with ESME_RINVDSTADR
//	+1555002...  accepted, never a receipt
//	+1555003...  always EXPIRED err 002
//	+1555004...  submit answered with ESME_RTHROTTLED
func DefaultRules() []Rule {
	return []Rule{
		{Prefix: "+1555000", Stat: "UNDELIV", Err: "001"},
		{Prefix: "+1555001", Reject: smpp.ESME_RINVDSTADR},
		{Prefix: "+1555002", NoReceipt: true},
		{Prefix: "+1555003", Stat: "EXPIRED", Err: "002"},
		{Prefix: "+1555004", Reject: smpp.ESME_RTHROTTLED},
	}
}

// ParseRule reads "PREFIX=STAT[:ERR]", "PREFIX=reject:STATUS" (a status
// name such as ESME_RINVDSTADR or a number such as 0x0B) or
// "PREFIX=noreceipt".
func ParseRule(s string) (Rule, error) {
	prefix, what, ok := strings.Cut(s, "=")
	prefix = strings.TrimSpace(prefix)
	if !ok || strings.TrimPrefix(prefix, "+") == "" {
		return Rule{}, fmt.Errorf("rule %q: want PREFIX=STAT[:ERR], PREFIX=reject:STATUS or PREFIX=noreceipt", s)
	}
	r := Rule{Prefix: prefix}
	what = strings.TrimSpace(what)
	switch {
	case strings.EqualFold(what, "noreceipt") || strings.EqualFold(what, "no_receipt"):
		r.NoReceipt = true
	case strings.HasPrefix(strings.ToLower(what), "reject:"):
		st, err := ParseStatus(what[len("reject:"):])
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w", s, err)
		}
		r.Reject = st
	default:
		word, code, _ := strings.Cut(what, ":")
		r.Stat, r.Err = word, code
	}
	if err := r.init(); err != nil {
		return Rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	return r, nil
}

func (r *Rule) init() error {
	if r.Prefix == "" || r.Prefix == "+" {
		return errors.New("empty prefix")
	}
	if r.Reject != smpp.ESME_ROK || r.NoReceipt {
		return nil
	}
	if r.Stat == "" {
		return errors.New("a rule needs a stat, a reject status or no_receipt")
	}
	st, err := parseStat(r.Stat)
	if err != nil {
		return err
	}
	r.state = st
	r.Stat = st.Stat()
	if r.Err == "" {
		r.Err = DefaultErr(st)
	}
	return nil
}

func (r *Rule) matches(dest string) bool {
	return strings.HasPrefix(strings.TrimPrefix(dest, "+"), strings.TrimPrefix(r.Prefix, "+"))
}

// String gives the form ParseRule reads.
func (r Rule) String() string {
	switch {
	case r.Reject != smpp.ESME_ROK:
		return r.Prefix + "=reject:" + r.Reject.Name()
	case r.NoReceipt:
		return r.Prefix + "=noreceipt"
	}
	return r.Prefix + "=" + r.Stat + ":" + r.Err
}

// ParseStatus reads a command_status by name (ESME_RTHROTTLED) or number
// (88, 0x58).
func ParseStatus(s string) (smpp.CommandStatus, error) {
	s = strings.TrimSpace(s)
	if st, ok := smpp.StatusByName(strings.ToUpper(s)); ok {
		return st, nil
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("command_status %q: want a name such as ESME_RSYSERR or a number such as 0x08", s)
	}
	return smpp.CommandStatus(n), nil
}

// Status is a command_status that reads and writes as its name in JSON and
// YAML ("ESME_RSYSERR"); numbers are read too.
type Status smpp.CommandStatus

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) {
	st := smpp.CommandStatus(s)
	if st.Known() {
		return []byte(st.Name()), nil
	}
	return []byte(fmt.Sprintf("0x%08X", uint32(st))), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	st, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = Status(st)
	return nil
}

// UnmarshalJSON accepts a name or a JSON number.
func (s *Status) UnmarshalJSON(b []byte) error {
	var n uint32
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Status(n)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return errors.New("want a command_status name or number")
	}
	return s.UnmarshalText([]byte(str))
}

// Faults are the faults injected into the simulator's answers. Rates are
// shares from 0 to 1, drawn per PDU (or per receipt).
type Faults struct {
	// ErrorRate of submits (submit_sm, submit_multi, data_sm) are
	// answered with ErrorStatus (default ESME_RSYSERR) and not stored.
	ErrorRate   float64 `json:"error_rate" yaml:"error_rate"`
	ErrorStatus Status  `json:"error_status" yaml:"error_status"`
	// ThrottleRate of submits are answered with ESME_RTHROTTLED; beyond
	// ThrottleTPS submits per second (all sessions together) every submit
	// is. 0 is none.
	ThrottleRate float64 `json:"throttle_rate" yaml:"throttle_rate"`
	ThrottleTPS  float64 `json:"throttle_tps" yaml:"throttle_tps"`
	// DropRate of requests are accepted (a submit is stored and gets its
	// receipt) but never answered.
	DropRate float64 `json:"drop_rate" yaml:"drop_rate"`
	// DelayRate of responses are sent after ResponseDelay.
	DelayRate     float64 `json:"delay_rate" yaml:"delay_rate"`
	ResponseDelay Delay   `json:"response_delay" yaml:"response_delay"`
	// DisconnectAfter cuts each connection after it has sent this many
	// requests (0: never); DisconnectRate cuts it at random, per request.
	DisconnectAfter int     `json:"disconnect_after" yaml:"disconnect_after"`
	DisconnectRate  float64 `json:"disconnect_rate" yaml:"disconnect_rate"`
	// ReceiptDelay is added to the DLR delay of every receipt.
	ReceiptDelay Delay `json:"receipt_delay" yaml:"receipt_delay"`
	// DuplicateReceiptRate of receipts are sent twice.
	DuplicateReceiptRate float64 `json:"duplicate_receipt_rate" yaml:"duplicate_receipt_rate"`
}

// Validate checks rates and counts.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"throttle_rate", f.ThrottleRate}, {"drop_rate", f.DropRate},
		{"delay_rate", f.DelayRate}, {"disconnect_rate", f.DisconnectRate}, {"duplicate_receipt_rate", f.DuplicateReceiptRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("%s %v: want a share from 0 to 1", r.name, r.v)
		}
	}
	if !(f.ThrottleTPS >= 0) || math.IsInf(f.ThrottleTPS, 0) {
		return fmt.Errorf("throttle_tps %v: want a rate >= 0", f.ThrottleTPS)
	}
	if f.DisconnectAfter < 0 {
		return fmt.Errorf("disconnect_after %d: want a count >= 0", f.DisconnectAfter)
	}
	if f.ResponseDelay.Min < 0 || f.ResponseDelay.Max < f.ResponseDelay.Min {
		return errors.New("response_delay: want 0 <= min <= max")
	}
	if f.ReceiptDelay.Min < 0 || f.ReceiptDelay.Max < f.ReceiptDelay.Min {
		return errors.New("receipt_delay: want 0 <= min <= max")
	}
	return nil
}

// any reports whether a fault on the request path is set.
func (f *Faults) requestFaults() bool {
	return f.ErrorRate > 0 || f.ThrottleRate > 0 || f.ThrottleTPS > 0 || f.DropRate > 0 || f.DelayRate > 0 ||
		f.DisconnectAfter > 0 || f.DisconnectRate > 0
}

func (c *Config) setDefaults() error {
	if c.SMPPAddr == "" {
		c.SMPPAddr = DefaultSMPPAddr
	}
	if c.SMPPAddr == "off" && c.TLS == nil {
		return errors.New("simulator: SMPP address \"off\" without TLS: no listener at all")
	}
	if c.TLS != nil && c.SMPPTLSAddr == "" {
		c.SMPPTLSAddr = DefaultSMPPTLSAddr
	}
	switch c.DLRMode {
	case "":
		c.DLRMode = "auto"
	case "auto", "manual":
	default:
		return fmt.Errorf("simulator: DLR mode %q: want auto or manual", c.DLRMode)
	}
	switch c.DLRRoute {
	case "":
		c.DLRRoute = "any"
	case "any", "other":
	default:
		return fmt.Errorf("simulator: DLR route %q: want any or other", c.DLRRoute)
	}
	if c.CodePattern != "" {
		re, err := regexp.Compile(c.CodePattern)
		if err != nil {
			return fmt.Errorf("simulator: code pattern: %w", err)
		}
		c.codeRE = re
	}
	switch c.MessageIDFormat {
	case "":
		c.MessageIDFormat = "dec"
	case "dec", "hex", "uuid":
	default:
		return fmt.Errorf("simulator: message id format %q: want dec, hex or uuid", c.MessageIDFormat)
	}
	switch c.ReceiptIDFormat {
	case "":
		c.ReceiptIDFormat = "same"
	case "same", "dec", "hex":
	default:
		return fmt.Errorf("simulator: receipt id format %q: want same, dec or hex", c.ReceiptIDFormat)
	}
	if c.Retention < 0 || c.MaxPendingReceipts < 0 {
		return fmt.Errorf("simulator: retention %d, max pending receipts %d: want 0 (the default) or more", c.Retention, c.MaxPendingReceipts)
	}
	if c.Retention == 0 {
		c.Retention = 10000
	}
	if c.MaxPendingReceipts == 0 {
		c.MaxPendingReceipts = 10 * c.Retention
	}
	if c.ReceiptRetry <= 0 {
		c.ReceiptRetry = time.Second
	}
	if c.Window <= 0 {
		c.Window = 100
	}
	if c.SystemID == "" {
		c.SystemID = "smscsim"
	}
	if c.DLRDelay.Min < 0 || c.DLRDelay.Max < c.DLRDelay.Min {
		return errors.New("simulator: DLR delay: want 0 <= min <= max")
	}
	total := 0.0
	for _, o := range c.DLROutcomes {
		if o.Weight < 0 || o.State == dlr.NoState {
			return errors.New("simulator: DLR outcomes: want stat words with non-negative weights")
		}
		total += o.Weight
	}
	if len(c.DLROutcomes) > 0 && total <= 0 {
		return errors.New("simulator: DLR outcomes: the weights add up to 0")
	}
	if c.Rules == nil && !c.NoDefaultRules {
		c.Rules = DefaultRules()
	}
	rules := make([]Rule, len(c.Rules))
	for i, r := range c.Rules {
		if err := r.init(); err != nil {
			return fmt.Errorf("simulator: rule %d (%s): %w", i+1, r.Prefix, err)
		}
		rules[i] = r
	}
	c.Rules = rules
	seen := map[string]bool{}
	for _, a := range c.Accounts {
		if a.SystemID == "" {
			return errors.New("simulator: an account without system_id")
		}
		if seen[a.SystemID] {
			return fmt.Errorf("simulator: account %q twice", a.SystemID)
		}
		seen[a.SystemID] = true
	}
	if err := c.Faults.Validate(); err != nil {
		return fmt.Errorf("simulator: faults: %w", err)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}
