// Package coding converts between Go strings and the octets an SMPP 3.4
// short message carries: the GSM 03.38 default alphabet (3GPP TS 23.038)
// with its extension table, packed or unpacked, IA5/ASCII, Latin-1 and UCS-2
// (UTF-16BE). It also splits long text into concatenated segments (user data
// header per 3GPP TS 23.040, SMPP sar_* TLVs or message_payload), parses and
// builds user data headers, and reassembles incoming segments.
//
// Text a coding cannot carry is never altered silently: encoders return an
// *UnencodableError that names the first offending character. Decoders never
// fail and never panic on malformed input; what they substitute is
// documented on each decoder.
//
// The package imports only the standard library.
package coding

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// DataCoding is the SMPP 3.4 data_coding parameter (section 5.2.19). Values
// 0x00 to 0x0F have the SMPP meanings below; higher values are GSM 03.38
// data coding schemes (3GPP TS 23.038 section 4), see Alphabet.
type DataCoding byte

// SMPP 3.4 data_coding values.
const (
	// Default is the SMSC default alphabet, which this package treats as
	// the GSM 03.38 7-bit default alphabet.
	Default DataCoding = 0x00
	// IA5 is IA5 (CCITT T.50) / ASCII (ANSI X3.4).
	IA5 DataCoding = 0x01
	// Binary is octet unspecified (8-bit binary).
	Binary DataCoding = 0x02
	// Latin1 is ISO-8859-1.
	Latin1 DataCoding = 0x03
	// OctetUnspecified is the second SMPP value for 8-bit binary data.
	OctetUnspecified DataCoding = 0x04
	// JIS is JIS X 0208-1990 (not supported by the encoders).
	JIS DataCoding = 0x05
	// Cyrillic is ISO-8859-5 (not supported by the encoders).
	Cyrillic DataCoding = 0x06
	// Hebrew is ISO-8859-8 (not supported by the encoders).
	Hebrew DataCoding = 0x07
	// UCS2 is ISO/IEC-10646 UCS-2: BMP characters only when encoding
	// (EncodeUTF16 and SplitOptions.UTF16 add surrogate pairs, as an
	// explicit choice); decoding reads surrogate pairs too.
	UCS2 DataCoding = 0x08
	// Pictogram is the pictogram encoding (not supported by the encoders).
	Pictogram DataCoding = 0x09
	// MusicCodes is ISO-2022-JP music codes (not supported).
	MusicCodes DataCoding = 0x0A
	// ExtendedKanji is extended Kanji JIS X 0212-1990 (not supported).
	ExtendedKanji DataCoding = 0x0D
	// KSC5601 is KS C 5601 (not supported).
	KSC5601 DataCoding = 0x0E
)

// String names the coding, e.g. "GSM 03.38", "Latin-1", "UCS-2", or
// "data_coding 0xF1" for values without a name.
func (dc DataCoding) String() string {
	switch dc {
	case Default:
		return "GSM 03.38"
	case IA5:
		return "IA5/ASCII"
	case Binary, OctetUnspecified:
		return "8-bit binary"
	case Latin1:
		return "Latin-1"
	case JIS:
		return "JIS"
	case Cyrillic:
		return "Cyrillic (ISO-8859-5)"
	case Hebrew:
		return "Latin/Hebrew (ISO-8859-8)"
	case UCS2:
		return "UCS-2"
	case Pictogram:
		return "pictogram"
	case MusicCodes:
		return "ISO-2022-JP music codes"
	case ExtendedKanji:
		return "extended Kanji"
	case KSC5601:
		return "KS C 5601"
	}
	return fmt.Sprintf("data_coding 0x%02X", byte(dc))
}

// Alphabet reduces a data_coding value to the character set it selects.
//
// Values 0x00 to 0x0F keep their SMPP meaning (0x04 is reported as Binary).
// Higher values are read as 3GPP TS 23.038 data coding schemes: the general
// data coding and automatic deletion groups (0x10-0x7F) select Default, Binary
// or UCS2 from bits 3-2 (compressed text, bit 5, is reported as Binary since
// this package does not decompress); the message waiting groups select
// Default (0xC0-0xDF) or UCS2 (0xE0-0xEF); 0xF0-0xFF select Default or
// Binary from bit 2. Reserved values (0x80-0xBF, alphabet bits 11) are
// Default, as 23.038 tells a receiving entity to assume.
func (dc DataCoding) Alphabet() DataCoding {
	switch {
	case dc <= 0x0F:
		if dc == OctetUnspecified {
			return Binary
		}
		return dc
	case dc < 0x80:
		if dc&0x20 != 0 {
			return Binary
		}
		switch (dc >> 2) & 0x03 {
		case 1:
			return Binary
		case 2:
			return UCS2
		}
		return Default
	case dc < 0xC0:
		return Default
	case dc < 0xE0:
		return Default
	case dc < 0xF0:
		return UCS2
	default:
		if dc&0x04 != 0 {
			return Binary
		}
		return Default
	}
}

// ErrUnsupportedCoding is wrapped by Encode, Decode and Split when asked for
// a data coding that is not text this package handles (binary data, JIS,
// and so on).
var ErrUnsupportedCoding = errors.New("unsupported data coding")

func unsupported(dc DataCoding) error {
	return fmt.Errorf("coding: %s: %w", dc, ErrUnsupportedCoding)
}

// UnencodableError reports text that a coding cannot carry.
type UnencodableError struct {
	// Rune is the first character that does not fit; utf8.RuneError when
	// Invalid is set.
	Rune rune
	// Offset is the byte offset of that character in the string.
	Offset int
	// Coding is the coding that was asked for.
	Coding DataCoding
	// Invalid is set when the string is not valid UTF-8 at Offset.
	Invalid bool
}

// Error names the character, its code point, its byte offset and the
// coding, e.g. `character "€" (U+20AC) at offset 3 cannot be encoded in
// Latin-1`.
func (e *UnencodableError) Error() string {
	if e.Invalid {
		return fmt.Sprintf("invalid UTF-8 at offset %d cannot be encoded in %s", e.Offset, e.Coding)
	}
	if e.Coding.Alphabet() == UCS2 && e.Rune >= 0x10000 {
		return fmt.Sprintf("character %q (%U) at offset %d is outside the Basic Multilingual Plane and cannot be encoded in UCS-2 (sending it as UTF-16 is an explicit per-SMSC option)", string(e.Rune), e.Rune, e.Offset)
	}
	return fmt.Sprintf("character %q (%U) at offset %d cannot be encoded in %s", string(e.Rune), e.Rune, e.Offset, e.Coding)
}

// decodeRune is utf8.DecodeRuneInString that reports invalid input.
func decodeRune(s string, i int) (r rune, size int, invalid bool) {
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1, false
	}
	r, size = utf8.DecodeRuneInString(s[i:])
	return r, size, r == utf8.RuneError && size == 1
}

// Encode encodes s in the character set dc selects (see Alphabet): unpacked
// GSM 03.38 septets for Default, ASCII for IA5, ISO-8859-1 for Latin1 and
// UTF-16BE for UCS2. A character the coding cannot carry gives an
// *UnencodableError; other codings wrap ErrUnsupportedCoding.
func Encode(s string, dc DataCoding) ([]byte, error) {
	switch a := dc.Alphabet(); a {
	case Default:
		b, err := EncodeGSM7(s)
		return b, withCoding(err, dc)
	case IA5:
		return EncodeIA5(s)
	case Latin1:
		return EncodeLatin1(s)
	case UCS2:
		b, err := EncodeUCS2(s)
		return b, withCoding(err, dc)
	}
	return nil, unsupported(dc)
}

// withCoding names the coding the caller asked for in an UnencodableError.
func withCoding(err error, dc DataCoding) error {
	var ue *UnencodableError
	if errors.As(err, &ue) {
		ue.Coding = dc
	}
	return err
}

// Decode decodes b in the character set dc selects (see Alphabet): unpacked
// GSM 03.38 septets for Default (see DecodeGSM7), ASCII for IA5, ISO-8859-1
// for Latin1 and UTF-16BE for UCS2. Malformed input is decoded with the
// substitutions the individual decoders document and no error; the error
// wraps ErrUnsupportedCoding for codings that are not text this package
// handles.
func Decode(b []byte, dc DataCoding) (string, error) {
	switch dc.Alphabet() {
	case Default:
		return DecodeGSM7(b), nil
	case IA5:
		return DecodeIA5(b), nil
	case Latin1:
		return DecodeLatin1(b), nil
	case UCS2:
		return DecodeUCS2(b), nil
	}
	return "", unsupported(dc)
}

// Auto picks the GSM 03.38 default alphabet when every character of s is in
// it (basic or extension table) and UCS-2 otherwise, and returns the coding
// and the encoded text (unpacked septets, or UCS-2). A character outside
// the BMP fits neither: Auto reports it (an *UnencodableError) rather than
// pick UTF-16 silently; Split with SplitOptions.UTF16 sends it. Bytes of s
// that are not valid UTF-8 become U+FFFD in the UCS-2 result; use Encode
// to have them reported instead.
func Auto(s string) (DataCoding, []byte, error) {
	if b, err := EncodeGSM7(s); err == nil {
		return Default, b, nil
	}
	for i, r := range s {
		if r >= 0x10000 {
			return UCS2, nil, &UnencodableError{Rune: r, Offset: i, Coding: UCS2}
		}
	}
	return UCS2, encodeUCS2Lossy(s), nil
}

// EncodeIA5 encodes s as IA5 / ASCII, one octet per character. Characters
// above U+007F give an *UnencodableError.
func EncodeIA5(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			r, _, invalid := decodeRune(s, i)
			return nil, &UnencodableError{Rune: r, Offset: i, Coding: IA5, Invalid: invalid}
		}
	}
	return []byte(s), nil
}

// DecodeIA5 decodes IA5 / ASCII octets. Octets above 0x7F, which IA5 does
// not define, become U+FFFD.
func DecodeIA5(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c >= utf8.RuneSelf {
			sb.WriteRune(utf8.RuneError)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// EncodeLatin1 encodes s as ISO-8859-1, one octet per character.
// Characters above U+00FF give an *UnencodableError.
func EncodeLatin1(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, size, invalid := decodeRune(s, i)
		if invalid || r > 0xFF {
			return nil, &UnencodableError{Rune: r, Offset: i, Coding: Latin1, Invalid: invalid}
		}
		out = append(out, byte(r))
		i += size
	}
	return out, nil
}

// DecodeLatin1 decodes ISO-8859-1 octets; every octet is a character.
func DecodeLatin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}
