package otpd

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// Phone is a parsed, valid number.
type Phone struct {
	E164        string // +4915112345678
	CountryCode int    // 49
	Region      string // DE
	Type        string // mobile, fixed_line_or_mobile, premium_rate, ... ("" when not checked)
}

// numberTypes names the library's number types as configuration does.
var numberTypes = map[string]phonenumbers.PhoneNumberType{
	"fixed_line": phonenumbers.FIXED_LINE, "mobile": phonenumbers.MOBILE, "fixed_line_or_mobile": phonenumbers.FIXED_LINE_OR_MOBILE,
	"toll_free": phonenumbers.TOLL_FREE, "premium_rate": phonenumbers.PREMIUM_RATE, "shared_cost": phonenumbers.SHARED_COST,
	"voip": phonenumbers.VOIP, "personal_number": phonenumbers.PERSONAL_NUMBER, "pager": phonenumbers.PAGER,
	"uan": phonenumbers.UAN, "voicemail": phonenumbers.VOICEMAIL,
}

func typeName(t phonenumbers.PhoneNumberType) string {
	for n, v := range numberTypes {
		if v == t {
			return n
		}
	}
	return "unknown"
}

// Prefix is the number without its last n digits.
func (p Phone) Prefix(n int) string { return p.E164[:max(2, len(p.E164)-n)] }

// normalizeInput reads the digits of any script as ASCII digits (full-width
// ０-９ included, as the library does) and refuses what a number never
// holds: letters (the library would read a vanity number's letters as
// keypad digits), extensions, anything but + ( ) - . / and spaces.
func normalizeInput(raw string) (string, error) {
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9', r == '+', r == ' ', r == '-', r == '.', r == '(', r == ')', r == '/':
			b.WriteRune(r)
		case r == '＋':
			b.WriteByte('+')
		case unicode.IsDigit(r):
			b.WriteByte(byte('0' + digitValue(r)))
		case unicode.IsSpace(r) || r == '\u2011' || r == '\u2010' || r == '\u2013':
			b.WriteByte(' ')
		case unicode.IsLetter(r):
			if r == 'x' || r == 'X' || r == '#' || r == ';' {
				return "", &PhoneError{"phone has an extension; send the number alone"}
			}
			return "", &PhoneError{"phone has letters; send digits only"}
		case r == '#' || r == ';' || r == ',' || r == '*':
			return "", &PhoneError{"phone has an extension or a dialling code; send the number alone"}
		default:
			return "", &PhoneError{"phone has characters a number does not hold"}
		}
	}
	return b.String(), nil
}

// digitValue is the value of a Unicode decimal digit: each range of the
// Nd table runs through whole sets of ten, from a zero.
func digitValue(r rune) int {
	for _, g := range unicode.Nd.R16 {
		if rune(g.Lo) <= r && r <= rune(g.Hi) {
			return int(r-rune(g.Lo)) % 10
		}
	}
	for _, g := range unicode.Nd.R32 {
		if rune(g.Lo) <= r && r <= rune(g.Hi) {
			return int(r-rune(g.Lo)) % 10
		}
	}
	return 0
}

// PhoneError says why a number was refused.
type PhoneError struct{ Reason string }

func (e *PhoneError) Error() string { return e.Reason }

// ParsePhone parses and validates a number and normalises it to E.164.
// Without a leading + the number is read in defaultRegion, and refused when
// that is empty.
func ParsePhone(raw, defaultRegion string) (Phone, error) {
	return parsePhone(raw, defaultRegion, true)
}

// parsePhone with strict false accepts any number of a possible length for
// its country, such as the fictional +1555 numbers: the embedded simulator
// sends nothing to a real handset, and its magic numbers are fictional.
func parsePhone(raw, defaultRegion string, strict bool) (Phone, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Phone{}, &PhoneError{"phone is required"}
	}
	if len(raw) > 64 {
		return Phone{}, &PhoneError{"phone is too long to be a number"}
	}
	raw, err := normalizeInput(raw)
	if err != nil {
		return Phone{}, err
	}
	if len(raw) > 32 {
		return Phone{}, &PhoneError{"phone is too long to be a number"}
	}
	if !strings.HasPrefix(raw, "+") && !strings.HasPrefix(raw, "00") && defaultRegion == "" {
		return Phone{}, &PhoneError{"phone must be in international format, starting with + (or 00) and the country code"}
	}
	if defaultRegion == "" && strings.HasPrefix(raw, "00") {
		// 00 is the international prefix where no region says otherwise;
		// the library reads one only in a region it is given.
		raw = "+" + raw[2:]
	}
	num, err := phonenumbers.Parse(raw, defaultRegion)
	if err != nil {
		return Phone{}, &PhoneError{fmt.Sprintf("phone %s", phoneParseReason(err))}
	}
	if num.GetExtension() != "" {
		return Phone{}, &PhoneError{"phone has an extension; send the number alone"}
	}
	typ := ""
	if strict {
		// GetNumberType is UNKNOWN exactly when IsValidNumber is false: both
		// match the national number against the patterns of the region
		// GetRegionCodeForNumber finds. Asking for the type alone does that
		// work once instead of twice (it is most of the cost of a number).
		t := phonenumbers.GetNumberType(num)
		typ = typeName(t)
		switch t {
		case phonenumbers.UNKNOWN:
			return Phone{}, &PhoneError{"phone is not a valid number for its country"}
		case phonenumbers.FIXED_LINE:
			return Phone{}, &PhoneError{"phone is a fixed line, which cannot receive SMS"}
		}
	} else if !phonenumbers.IsPossibleNumber(num) {
		return Phone{}, &PhoneError{"phone has an impossible length for its country"}
	}
	return Phone{
		E164:        phonenumbers.Format(num, phonenumbers.E164),
		CountryCode: int(num.GetCountryCode()),
		Region:      phonenumbers.GetRegionCodeForNumber(num),
		Type:        typ,
	}, nil
}

func phoneParseReason(err error) string {
	switch err {
	case phonenumbers.ErrInvalidCountryCode:
		return "has an unknown country code"
	case phonenumbers.ErrNotANumber:
		return "is not a number"
	case phonenumbers.ErrTooShortNSN, phonenumbers.ErrTooShortAfterIDD:
		return "is too short"
	case phonenumbers.ErrNumTooLong:
		return "is too long"
	}
	return "cannot be parsed"
}

// MaskPhone shows the country code and the next three digits and the last
// three: +49151****678. Logs and API answers carry only this form.
func MaskPhone(e164 string) string {
	if len(e164) < 8 {
		return "****"
	}
	cc := 1
	for _, n := range []int{1, 2, 3} { // the country code is 1 to 3 digits
		if len(e164) > n+1 {
			if _, ok := phonenumbers.GetSupportedCallingCodes()[atoi(e164[1:1+n])]; ok {
				cc = n
				break
			}
		}
	}
	keep := 1 + cc + 3
	if keep > len(e164)-3 {
		keep = len(e164) - 3
	}
	return e164[:keep] + "****" + e164[len(e164)-3:]
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
