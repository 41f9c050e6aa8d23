package coding

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	surrHighMin = 0xD800
	surrLowMin  = 0xDC00
	surrLowMax  = 0xDFFF
	surrSelf    = 0x10000
)

// EncodeUCS2 encodes s as UCS-2 (big-endian), data_coding 8, which
// carries characters of the Basic Multilingual Plane only: a character
// outside it (most emoji) gives an *UnencodableError, as does invalid
// UTF-8. EncodeUTF16 sends such characters as surrogate pairs, for SMSCs
// that accept UTF-16 under data_coding 8.
func EncodeUCS2(s string) ([]byte, error) { return encodeUTF16(s, false) }

// EncodeUTF16 encodes s as UTF-16BE: UCS-2, with characters outside the
// BMP as surrogate pairs of two code units (four octets). Many SMSCs and
// phones accept that under data_coding 8; SMPP 3.4 names only UCS-2, so
// it is the caller's explicit choice (SplitOptions.UTF16). Invalid UTF-8
// gives an *UnencodableError.
func EncodeUTF16(s string) ([]byte, error) { return encodeUTF16(s, true) }

func encodeUTF16(s string, pairs bool) ([]byte, error) {
	n, err := ucs2Units(s, pairs)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 2*n)
	for _, r := range s {
		out = appendUTF16BE(out, r)
	}
	return out, nil
}

// encodeUCS2Lossy is EncodeUTF16 with invalid UTF-8 turned into U+FFFD.
func encodeUCS2Lossy(s string) []byte {
	out := make([]byte, 0, 2*len(s))
	for _, r := range s {
		out = appendUTF16BE(out, r)
	}
	return out
}

// ucs2Units counts the UTF-16 code units of s and reports invalid UTF-8
// and, unless pairs is set, a character outside the BMP.
func ucs2Units(s string, pairs bool) (int, error) {
	n := 0
	for i := 0; i < len(s); {
		r, size, invalid := decodeRune(s, i)
		if invalid {
			return 0, &UnencodableError{Rune: r, Offset: i, Coding: UCS2, Invalid: true}
		}
		if r >= surrSelf {
			if !pairs {
				return 0, &UnencodableError{Rune: r, Offset: i, Coding: UCS2}
			}
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n, nil
}

// UCS2Len reports how many UTF-16 code units s takes in UCS-2 (the unit of
// the 70 / 67 / 66 segment limits); ok is false when s is not valid UTF-8.
func UCS2Len(s string) (units int, ok bool) {
	n, err := ucs2Units(s, true)
	return n, err == nil
}

func appendUTF16BE(b []byte, r rune) []byte {
	if r >= surrSelf {
		hi, lo := utf16.EncodeRune(r)
		return append(b, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
	}
	return append(b, byte(r>>8), byte(r))
}

// DecodeUCS2 decodes UTF-16BE octets, including surrogate pairs. It never
// fails: a lone or reversed surrogate and a trailing odd octet each become
// U+FFFD.
func DecodeUCS2(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for i := 0; i < len(b); {
		if i+1 >= len(b) {
			sb.WriteRune(utf8.RuneError)
			break
		}
		u := rune(b[i])<<8 | rune(b[i+1])
		i += 2
		switch {
		case u < surrHighMin || u > surrLowMax:
			sb.WriteRune(u)
		case u < surrLowMin && i+1 < len(b):
			lo := rune(b[i])<<8 | rune(b[i+1])
			if lo >= surrLowMin && lo <= surrLowMax {
				sb.WriteRune(surrSelf + (u-surrHighMin)<<10 + (lo - surrLowMin))
				i += 2
			} else {
				sb.WriteRune(utf8.RuneError)
			}
		default:
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String()
}
