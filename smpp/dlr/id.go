package dlr

import (
	"math/big"
	"strconv"
	"strings"
)

// MaxIDLen is the longest id, in bytes, that Canonical, IDForms and SameID
// read as a number; longer ids are only compared verbatim.
const MaxIDLen = 64

// Base says how to read a message id as a number.
type Base uint8

// The bases of message ids.
const (
	// AutoBase reads an id of decimal digits as decimal and an id with
	// hex letters (or a 0x prefix) as hex.
	AutoBase Base = iota
	// Decimal reads an id of decimal digits as decimal.
	Decimal
	// Hex reads an id of hex digits as hex, even one without letters.
	Hex
)

// Canonical returns the key under which to store a message id for lookup,
// reading the id in AutoBase:
//
//   - all decimal digits: decimal without leading zeros ("0001234" ->
//     "1234"; all zeros -> "0");
//   - hex digits with at least one letter a-f (any case), or a 0x prefix:
//     converted to decimal ("2d6f0b6f" -> "762252143");
//   - a UUID (8-4-4-4-12 hex digits): lower case;
//   - anything else, and ids longer than MaxIDLen: verbatim.
//
// Surrounding white space is removed first.
//
// An id of decimal digits may also be a hex number without letters (an SMSC
// that gives hex ids gives "12345678" now and then); Canonical reads it as
// decimal, and IDForms lists the other readings. To match receipts whose
// base differs from that of submit_sm_resp, store each message under
// Canonical(submit_sm_resp id) and look a receipt up under every key of
// IDForms(receipt id). When the bases are known (configured per SMSC, as
// Kannel's msg-id-type), use CanonicalIn on both sides instead: it has no
// ambiguity.
func Canonical(id string) string {
	return CanonicalIn(id, AutoBase)
}

// CanonicalIn is Canonical for an id known to be in base: with Decimal an
// id of decimal digits is read as decimal, with Hex an id of hex digits
// (with or without letters or a 0x prefix) is read as hex and converted
// to decimal. Ids that are not numbers in the given base fall back to
// Canonical's AutoBase rules.
func CanonicalIn(id string, base Base) string {
	s := strings.TrimSpace(id)
	if s == "" || len(s) > MaxIDLen {
		return s
	}
	if h, ok := cutHexPrefix(s); ok {
		return hexToDec(h)
	}
	switch base {
	case Decimal:
		if isDec(s) {
			return stripZeros(s)
		}
	case Hex:
		if isHex(s) {
			return hexToDec(s)
		}
	}
	switch {
	case isDec(s):
		return stripZeros(s)
	case isHex(s):
		return hexToDec(s)
	case isUUID(s):
		return strings.ToLower(s)
	}
	return s
}

// IDForms returns the keys under which a message stored with Canonical may
// be found, given the id a receipt (or another PDU) carries for it, first
// Canonical(id) itself. For an id of decimal digits it adds the id read as
// hex (in decimal), and the id's decimal value written in hex when that
// has no letters (the key Canonical gives a hex id without letters). For
// anything else the only form is Canonical(id). It returns nil for an
// empty id.
//
// Look the keys up in order and take the first hit. For SMSCs whose ids are
// sequential numbers the readings can name different messages ("10" read
// as hex is 16); where that matters configure the bases and use
// CanonicalIn.
func IDForms(id string) []string {
	s := strings.TrimSpace(id)
	if s == "" {
		return nil
	}
	c := Canonical(s)
	if len(s) > MaxIDLen || !isDec(s) {
		return []string{c}
	}
	forms := make([]string, 1, 3)
	forms[0] = c
	add := func(f string) {
		for _, g := range forms {
			if g == f {
				return
			}
		}
		forms = append(forms, f)
	}
	add(hexToDec(s))
	if h := decToHex(s); !hasHexLetter(h) {
		add(h)
	}
	return forms
}

// SameID reports whether two message ids can name the same message. Empty
// ids name nothing, and surrounding white space is ignored. They are the
// same when equal verbatim; or, both being numbers, equal in value when each is read as
// decimal (if all decimal digits) or as hex (if all hex digits, or with a
// 0x prefix), leading zeros and the case of hex letters not mattering; or
// both being UUIDs equal ignoring case. Ids longer than MaxIDLen and ids
// that are neither are compared verbatim.
//
// So SameID("2d6f0b6f", "762252143") and SameID("0012AB", "12ab") are true.
// Since an all-digit id may be hex, SameID("10", "16") is true as well:
// check exact equality first where several candidates exist.
func SameID(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	if isUUID(a) && isUUID(b) {
		return strings.EqualFold(a, b)
	}
	var ra, rb [2]string
	na, nb := readings(a, &ra), readings(b, &rb)
	for _, x := range ra[:na] {
		for _, y := range rb[:nb] {
			if x == y {
				return true
			}
		}
	}
	return false
}

// readings writes the decimal values id can have into out and returns how
// many: its decimal reading if it is all decimal digits, its hex reading
// if it is all hex digits or has a 0x prefix.
func readings(id string, out *[2]string) int {
	if len(id) > MaxIDLen {
		return 0
	}
	if h, ok := cutHexPrefix(id); ok {
		out[0] = hexToDec(h)
		return 1
	}
	n := 0
	if isDec(id) {
		out[n] = stripZeros(id)
		n++
	}
	if isHex(id) {
		out[n] = hexToDec(id)
		n++
	}
	return n
}

func cutHexPrefix(s string) (string, bool) {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isHex(s[2:]) {
		return s[2:], true
	}
	return "", false
}

func isDec(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func hasHexLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			return true
		}
	}
	return false
}

// isUUID reports whether s is 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexDigit(s[i]) {
				return false
			}
		}
	}
	return true
}

// stripZeros removes leading zeros from a string of digits, keeping one.
func stripZeros(s string) string {
	i := 0
	for i < len(s)-1 && s[i] == '0' {
		i++
	}
	return s[i:]
}

// hexToDec converts hex digits (any case, len <= MaxIDLen) to decimal.
func hexToDec(h string) string {
	h = stripZeros(h)
	if len(h) <= 16 {
		v, err := strconv.ParseUint(h, 16, 64)
		if err == nil {
			return strconv.FormatUint(v, 10)
		}
	}
	var z big.Int
	if _, ok := z.SetString(h, 16); !ok {
		return h
	}
	return z.Text(10)
}

// decToHex converts decimal digits (len <= MaxIDLen) to lower-case hex.
func decToHex(d string) string {
	d = stripZeros(d)
	if len(d) <= 19 {
		v, err := strconv.ParseUint(d, 10, 64)
		if err == nil {
			return strconv.FormatUint(v, 16)
		}
	}
	var z big.Int
	if _, ok := z.SetString(d, 10); !ok {
		return d
	}
	return z.Text(16)
}
