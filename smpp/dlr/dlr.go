// Package dlr parses and formats the text of SMPP 3.4 delivery receipts
// (Appendix B), the short_message of a deliver_sm with esm_class 0x04:
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text: ...
//
// The layout is vendor specific in the specification and in practice, so
// Parse is lenient: keys in any case, fields in any order and separated by
// any amount of white space, fields missing, unknown fields kept, dates of
// 10 (YYMMDDhhmm), 12 (YYMMDDhhmmss) or 14 (YYYYMMDDhhmmss) digits. Format
// writes the fields of Appendix B's table in its order, with three-digit
// err and a lower-case "text:" as the table names it and most SMSCs send
// it; the specification's example line writes "Text:" and a one-character
// "err:E", which Parse reads as well but Format does not copy.
//
// Message ids in receipts are often in another base than the id in
// submit_sm_resp (hex in one, decimal in the other). Canonical, IDForms
// and SameID deal with that.
//
// The text field of a receipt carries the first characters of the message,
// which for an OTP is the code: never log Receipt.Text or a whole receipt.
// ParseError does not include the input for that reason.
//
// The package uses the standard library only and imports nothing else of
// the project.
package dlr

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Receipt is a delivery receipt as read from, or written to, the text of a
// short message.
type Receipt struct {
	// ID is the message id as sent, verbatim (decimal, hex, UUID or
	// anything else). Use Canonical or SameID to match it.
	ID string
	// Sub is the number of short messages originally submitted, Dlvrd
	// the number delivered; -1 when the field is absent or not a number.
	Sub, Dlvrd int
	// SubmitDate and DoneDate are the submit and done dates; the zero
	// time when absent or not a valid date.
	SubmitDate, DoneDate time.Time
	// Stat is the stat word as sent, e.g. "DELIVRD"; "" when absent.
	Stat string
	// State is Stat read with ParseStat; NoState when Stat is absent or
	// not recognised.
	State State
	// Err is the err field as sent, e.g. "000", "0" or "0x0B"; "" when
	// absent.
	Err string
	// Text is the text field: everything after "text:", with leading
	// and trailing white space and NUL bytes removed. It holds the start
	// of the message (for an OTP, the code).
	Text string
	// Extra holds the fields with keys this package does not know, and
	// repeated known keys after their first occurrence, in the order
	// sent. At most MaxExtra are kept.
	Extra []Field
}

// Field is one key:value field of a receipt that Receipt has no place for.
type Field struct {
	Key   string // as sent, e.g. "mcc"
	Value string // as sent
}

// MaxExtra is the most extra fields Parse keeps; later ones are dropped.
const MaxExtra = 32

// Lookup returns the value of the first extra field whose key equals key,
// ignoring case.
func (r *Receipt) Lookup(key string) (string, bool) {
	for _, f := range r.Extra {
		if strings.EqualFold(f.Key, key) {
			return f.Value, true
		}
	}
	return "", false
}

// ErrNotReceipt is the error that every *ParseError wraps.
var ErrNotReceipt = errors.New("not a delivery receipt")

// ParseError is the error Parse returns for text that does not look like a
// delivery receipt. It names the reason but, since a receipt carries the
// start of the message, never the text itself.
type ParseError struct {
	Reason string // why, e.g. "no id or stat field"
	Len    int    // length of the input in bytes
}

// Error returns "dlr: not a delivery receipt: " and the reason.
func (e *ParseError) Error() string {
	return "dlr: " + ErrNotReceipt.Error() + ": " + e.Reason + " (" + strconv.Itoa(e.Len) + " bytes)"
}

// Unwrap returns ErrNotReceipt.
func (e *ParseError) Unwrap() error { return ErrNotReceipt }

// Option changes how Parse reads or Format writes a receipt.
type Option func(*config)

type config struct {
	loc     *time.Location
	seconds bool
}

// WithLocation makes Parse read dates, and Format write them, in loc
// instead of UTC. Appendix B does not say which zone the dates are in;
// most SMSCs use their local time. A nil loc means UTC.
func WithLocation(loc *time.Location) Option {
	return func(c *config) { c.loc = loc }
}

// WithSeconds makes Format write 12-digit dates (YYMMDDhhmmss) instead of
// the 10 digits (YYMMDDhhmm) of Appendix B. Parse accepts both anyway.
func WithSeconds() Option {
	return withSeconds
}

func withSeconds(c *config) { c.seconds = true }

func newConfig(opts []Option) config {
	if len(opts) == 0 {
		return config{loc: time.UTC}
	}
	return applyOptions(opts)
}

// applyOptions is apart from newConfig so that only calls with options
// pay for the config escaping to the heap.
func applyOptions(opts []Option) config {
	c := config{loc: time.UTC}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.loc == nil {
		c.loc = time.UTC
	}
	return c
}

// ParseBytes is Parse for a short_message as bytes.
func ParseBytes(b []byte, opts ...Option) (Receipt, error) {
	return Parse(string(b), opts...)
}

// Parse reads the text of a delivery receipt.
//
// Keys are matched ignoring case ("id", "ID", "Text", "TEXT"); "submit
// date" and "done date" may also be written "submit_date", "submitdate",
// "done_date", "donedate". Fields are separated by one or more white-space
// characters and may come in any order, except "text:", which takes the
// rest of the input (spaces and colons included) and so ends the receipt.
// A value is the run of non-space characters after the colon; when the
// colon is followed by space ("id: 123"), the next word is taken if it
// does not itself look like a key. Text that is not a key:value pair is
// skipped (a key glued to leading garbage, as in "\x00id:12", is still
// found); fields with unknown keys are kept in Extra; for a repeated key
// the first occurrence counts and the others go to Extra.
//
// Nothing is required but something that looks like a receipt: Parse
// returns a *ParseError only when there is neither a non-empty id nor a
// non-empty stat. Absent or malformed sub, dlvrd and dates are reported as
// -1 and zero times, not as errors; a date of all zeros counts as absent.
// Dates are read in UTC unless WithLocation is given. Two-digit years are
// 2000 to 2099.
//
// Parse never panics, and its work is linear in the length of the input.
// The strings in the Receipt share memory with s.
func Parse(s string, opts ...Option) (Receipt, error) {
	cfg := newConfig(opts)
	r := Receipt{Sub: -1, Dlvrd: -1}
	var seen uint16
	n := len(s)
	i := 0
	for i < n {
		for i < n && isSpace(s[i]) {
			i++
		}
		if i >= n {
			break
		}
		key, vstart, ok := readKey(s, i)
		if !ok {
			// Not a field here: move on by one byte, so that a key
			// glued to leading garbage ("\x00id:...") is still found.
			i++
			continue
		}
		kind := classify(key)
		if kind == fieldText {
			r.Text = trimText(s[vstart:]) // the rest of the text: nothing follows
			break
		}
		v := vstart
		for v < n && !isSpace(s[v]) {
			v++
		}
		val := s[vstart:v]
		i = v
		if val == "" && v < n {
			// "key: value": take the next word unless it is a key.
			w := v
			for w < n && isSpace(s[w]) {
				w++
			}
			if _, _, isKey := readKey(s, w); !isKey {
				e := w
				for e < n && !isSpace(s[e]) {
					e++
				}
				val = s[w:e]
				i = e
			}
		}
		if kind == fieldUnknown || seen&(1<<kind) != 0 {
			if len(r.Extra) < MaxExtra {
				r.Extra = append(r.Extra, Field{Key: key, Value: val})
			}
			continue
		}
		seen |= 1 << kind
		switch kind {
		case fieldID:
			r.ID = val
		case fieldSub:
			r.Sub = parseCount(val)
		case fieldDlvrd:
			r.Dlvrd = parseCount(val)
		case fieldSubmitDate:
			r.SubmitDate = parseDate(val, cfg.loc)
		case fieldDoneDate:
			r.DoneDate = parseDate(val, cfg.loc)
		case fieldStat:
			r.Stat = val
			r.State, _ = ParseStat(val)
		case fieldErr:
			r.Err = val
		}
	}
	if r.ID == "" && r.Stat == "" {
		reason := "no id or stat field"
		if strings.TrimSpace(s) == "" {
			reason = "empty text"
		}
		return Receipt{}, &ParseError{Reason: reason, Len: len(s)}
	}
	return r, nil
}

type fieldKind uint8

const (
	fieldUnknown fieldKind = iota
	fieldID
	fieldSub
	fieldDlvrd
	fieldSubmitDate
	fieldDoneDate
	fieldStat
	fieldErr
	fieldText
)

// maxKey bounds the length of a key; longer words are not keys.
const maxKey = 32

// readKey reads a key at s[i:] followed by a colon. A key starts with an
// ASCII letter and goes on with letters, digits, '_', '-' and '.'; the
// two-word keys "submit date" and "done date" may have any number of
// spaces between the words. It returns the key as written and the index
// after the colon.
func readKey(s string, i int) (key string, vstart int, ok bool) {
	n := len(s)
	if i >= n || !isLetter(s[i]) {
		return "", 0, false
	}
	j := i + 1
	for j < n && j-i <= maxKey && isKeyChar(s[j]) {
		j++
	}
	if j-i > maxKey || j >= n {
		return "", 0, false
	}
	if s[j] == ':' {
		return s[i:j], j + 1, true
	}
	if s[j] != ' ' && s[j] != '\t' {
		return "", 0, false
	}
	first := s[i:j]
	if !strings.EqualFold(first, "submit") && !strings.EqualFold(first, "done") {
		return "", 0, false
	}
	m := j
	for m < n && (s[m] == ' ' || s[m] == '\t') {
		m++
	}
	if m+5 <= n && strings.EqualFold(s[m:m+4], "date") && s[m+4] == ':' {
		return s[i : m+4], m + 5, true
	}
	return "", 0, false
}

// classify names a key, ignoring case and the separators ' ', '\t', '_'
// and '-' (so "Submit Date", "submit_date" and "SUBMITDATE" are one key).
func classify(key string) fieldKind {
	var buf [maxKey + 8]byte
	k := 0
	for i := 0; i < len(key) && k < len(buf); i++ {
		c := key[i]
		switch {
		case c == ' ' || c == '\t' || c == '_' || c == '-':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[k] = c
		k++
	}
	switch string(buf[:k]) {
	case "id":
		return fieldID
	case "sub":
		return fieldSub
	case "dlvrd":
		return fieldDlvrd
	case "submitdate":
		return fieldSubmitDate
	case "donedate":
		return fieldDoneDate
	case "stat":
		return fieldStat
	case "err":
		return fieldErr
	case "text":
		return fieldText
	}
	return fieldUnknown
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isLetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isKeyChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '.'
}

// trimText removes leading and trailing white space and NUL bytes.
func trimText(s string) string {
	i, j := 0, len(s)
	for i < j && (isSpace(s[i]) || s[i] == 0) {
		i++
	}
	for j > i && (isSpace(s[j-1]) || s[j-1] == 0) {
		j--
	}
	return s[i:j]
}

// parseCount reads a count of up to 9 decimal digits; -1 otherwise.
func parseCount(v string) int {
	if len(v) == 0 || len(v) > 9 {
		return -1
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return -1
		}
		n = n*10 + int(v[i]-'0')
	}
	return n
}

// parseDate reads YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss in loc. It
// returns the zero time for anything else, for impossible dates and times
// and for all zeros.
func parseDate(v string, loc *time.Location) time.Time {
	switch len(v) {
	case 10, 12, 14:
	default:
		return time.Time{}
	}
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return time.Time{}
		}
	}
	num := func(i int) int { return int(v[i]-'0')*10 + int(v[i+1]-'0') }
	var year, p int
	if len(v) == 14 {
		year, p = num(0)*100+num(2), 4
	} else {
		year, p = 2000+num(0), 2
	}
	month, day, hour, min := num(p), num(p+2), num(p+4), num(p+6)
	sec := 0
	if len(v) > 10 {
		sec = num(p + 8)
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, 0, loc)
	if t.Day() != day { // 31 April and the like
		return time.Time{}
	}
	return t
}

// MaxText is the most characters of Receipt.Text that Format writes:
// Appendix B gives the text field the first 20 characters of the message.
const MaxText = 20

// Format writes r with the fields of SMPP 3.4 Appendix B's table (see the
// package comment for how it differs from the example line there):
//
//	id:%s sub:%03d dlvrd:%03d submit date:%s done date:%s stat:%s err:%s text:%s
//
// A negative Sub or Dlvrd is written as 000. Dates are YYMMDDhhmm in UTC
// (WithLocation and WithSeconds change that); a zero date is written as
// 0000000000, which Parse reads back as absent. The stat word is
// r.State.Stat(), or r.Stat verbatim when State is NoState, or UNKNOWN when
// both are empty. An empty Err is written as 000. The text is cut to its
// first MaxText characters (runes). Extra fields are not written.
func Format(r Receipt, opts ...Option) string {
	cfg := newConfig(opts)
	var b strings.Builder
	b.Grow(120 + len(r.ID) + len(r.Err) + len(r.Stat) + 4*MaxText)
	b.WriteString("id:")
	b.WriteString(r.ID)
	b.WriteString(" sub:")
	writeCount(&b, r.Sub)
	b.WriteString(" dlvrd:")
	writeCount(&b, r.Dlvrd)
	b.WriteString(" submit date:")
	writeDate(&b, r.SubmitDate, cfg)
	b.WriteString(" done date:")
	writeDate(&b, r.DoneDate, cfg)
	b.WriteString(" stat:")
	stat := r.State.Stat()
	if stat == "" {
		stat = r.Stat
	}
	if stat == "" {
		stat = Unknown.Stat()
	}
	b.WriteString(stat)
	b.WriteString(" err:")
	if r.Err == "" {
		b.WriteString("000")
	} else {
		b.WriteString(r.Err)
	}
	b.WriteString(" text:")
	b.WriteString(truncateRunes(r.Text, MaxText))
	return b.String()
}

func writeCount(b *strings.Builder, n int) {
	if n < 0 {
		n = 0
	}
	var buf [24]byte
	d := strconv.AppendInt(buf[:0], int64(n), 10)
	for k := len(d); k < 3; k++ {
		b.WriteByte('0')
	}
	b.Write(d)
}

func writeDate(b *strings.Builder, t time.Time, cfg config) {
	if t.IsZero() {
		if cfg.seconds {
			b.WriteString("000000000000")
		} else {
			b.WriteString("0000000000")
		}
		return
	}
	t = t.In(cfg.loc)
	var buf [12]byte
	put := func(i, v int) {
		buf[i] = byte('0' + v/10%10)
		buf[i+1] = byte('0' + v%10)
	}
	put(0, (t.Year()%100+100)%100)
	put(2, int(t.Month()))
	put(4, t.Day())
	put(6, t.Hour())
	put(8, t.Minute())
	if cfg.seconds {
		put(10, t.Second())
		b.Write(buf[:12])
		return
	}
	b.Write(buf[:10])
}

// truncateRunes returns the first max runes of s (an invalid byte counts
// as one rune).
func truncateRunes(s string, max int) string {
	i := 0
	for k := 0; k < max && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
