package coding

import (
	"strings"
	"unicode/utf8"
)

// Escape is the GSM 03.38 escape to the extension table (septet 0x1B).
const Escape = 0x1B

// CR is the GSM 03.38 carriage return, also the padding septet of packed
// text (3GPP TS 23.038 section 6.1.2).
const CR = 0x0D

// gsmBasic is the GSM 03.38 default alphabet (3GPP TS 23.038 section 6.2.1),
// indexed by septet. Entry 0x1B is the escape to the extension table; it is
// stored as a space, the character a receiver shows for an escape it cannot
// follow, and is never produced by the encoder.
var gsmBasic = [128]rune{
	// 0x00
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	// 0x10
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É',
	// 0x20
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	// 0x30
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	// 0x40
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	// 0x50
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	// 0x60
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	// 0x70
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExt is the GSM 03.38 default alphabet extension table (3GPP TS 23.038
// section 6.2.1.1): the character a septet stands for after an Escape, or 0
// where the table defines none.
var gsmExt = [128]rune{
	0x0A: '\f', // form feed (page break)
	0x14: '^',
	0x28: '{',
	0x29: '}',
	0x2F: '\\',
	0x3C: '[',
	0x3D: '~',
	0x3E: ']',
	0x40: '|',
	0x65: '€',
}

// gsmNone marks a rune without a GSM 03.38 code in gsmASCII.
const gsmNone = 0xFFFF

// gsmASCII maps runes below 0x80 to their code: the septet, or 0x1B00|code
// for an extension character; gsmNone when there is none.
var gsmASCII [128]uint16

// gsmOther maps runes from 0x80 up to their code, like gsmASCII.
var gsmOther = map[rune]uint16{}

func init() {
	for i := range gsmASCII {
		gsmASCII[i] = gsmNone
	}
	set := func(r rune, code uint16) {
		if r < utf8.RuneSelf {
			gsmASCII[r] = code
		} else {
			gsmOther[r] = code
		}
	}
	for c, r := range gsmBasic {
		if c != Escape {
			set(r, uint16(c))
		}
	}
	for c, r := range gsmExt {
		if r != 0 {
			set(r, Escape<<8|uint16(c))
		}
	}
}

// gsmCode returns the code of r (see gsmASCII) and whether it has one.
func gsmCode(r rune) (uint16, bool) {
	if r < utf8.RuneSelf {
		c := gsmASCII[r]
		return c, c != gsmNone
	}
	c, ok := gsmOther[r]
	return c, ok
}

// gsmScan counts the septets of s and finds the first character that the
// GSM 03.38 default alphabet cannot carry.
func gsmScan(s string) (int, *UnencodableError) {
	n := 0
	for i := 0; i < len(s); {
		r, size, invalid := decodeRune(s, i)
		code, ok := gsmCode(r)
		if invalid || !ok {
			return n, &UnencodableError{Rune: r, Offset: i, Coding: Default, Invalid: invalid}
		}
		if code > 0xFF {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n, nil
}

// GSM7Len reports how many septets s takes in the GSM 03.38 default
// alphabet, counting an extension character (such as € or {) as two. ok is
// false when some character is not in the alphabet; septets then counts the
// text before it.
func GSM7Len(s string) (septets int, ok bool) {
	n, err := gsmScan(s)
	return n, err == nil
}

// EncodeGSM7 encodes s in the GSM 03.38 default alphabet as unpacked
// septets, one per octet, which is what most SMSCs expect with data_coding 0.
// Characters of the extension table become Escape followed by their code.
// A character outside both tables gives an *UnencodableError; no character
// is approximated (ç, for example, is refused rather than sent as Ç).
func EncodeGSM7(s string) ([]byte, error) {
	n, err := gsmScan(s)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, n)
	for _, r := range s {
		code, _ := gsmCode(r)
		if code > 0xFF {
			out = append(out, Escape, byte(code))
		} else {
			out = append(out, byte(code))
		}
	}
	return out, nil
}

// DecodeGSM7 decodes unpacked GSM 03.38 septets, one per octet. It never
// fails; following 3GPP TS 23.038:
//
//   - Escape followed by a code the extension table does not define shows
//     the character of the basic table for that code (1B 61 is "a", while
//     1B 65 is "€" from the extension table);
//   - Escape followed by Escape (reserved for a further extension table)
//     shows a space, and decoding goes on with the next septet;
//   - a lone Escape at the end shows a space.
//
// Octets above 0x7F are not septets: each becomes U+FFFD, so that corrupt
// input stays visible instead of being masked into another character. An
// Escape directly before such an octet shows a space.
func DecodeGSM7(septets []byte) string {
	var sb strings.Builder
	sb.Grow(len(septets))
	for i := 0; i < len(septets); i++ {
		c := septets[i]
		switch {
		case c >= 0x80:
			sb.WriteRune(utf8.RuneError)
		case c != Escape:
			writeGSM(&sb, gsmBasic[c])
		case i+1 >= len(septets) || septets[i+1] >= 0x80:
			sb.WriteByte(' ')
		default:
			i++
			n := septets[i]
			switch r := gsmExt[n]; {
			case r != 0:
				writeGSM(&sb, r)
			case n == Escape:
				sb.WriteByte(' ')
			default:
				writeGSM(&sb, gsmBasic[n])
			}
		}
	}
	return sb.String()
}

func writeGSM(sb *strings.Builder, r rune) {
	if r < utf8.RuneSelf {
		sb.WriteByte(byte(r))
	} else {
		sb.WriteRune(r)
	}
}

// FillBits returns the number of fill bits between a user data header of
// udhLen octets (including its length octet) and the first septet, so that
// the septets start on a septet boundary: (7 - udhLen*8 % 7) % 7. It is 1
// for the 6-octet concatenation header and 0 for the 7-octet one.
func FillBits(udhLen int) int {
	if udhLen <= 0 {
		return 0
	}
	return (7 - (udhLen*8)%7) % 7
}

// PackedLen returns the number of octets that n septets take when packed
// after fillBits fill bits.
func PackedLen(n, fillBits int) int {
	if n <= 0 {
		return 0
	}
	return (fillBits + 7*n + 7) / 8
}

// PackSeptets packs septets (one per octet, the high bit ignored) into
// octets as 3GPP TS 23.038 section 6.1.2.1 describes: the first septet takes
// the low 7 bits of the first octet, and so on. fillBits (0 to 6) zero bits
// come first, as after a user data header (see FillBits).
//
// When the last octet would hold 7 spare bits, they carry a CR rather than
// zeros, as 23.038 asks, so that a receiver that counts septets from the
// octet length does not read an extra "@". The length of the result is
// PackedLen(len(septets), fillBits) either way. PackSeptets does not add the
// second CR that 23.038 asks for when the text itself ends with a CR on an
// octet boundary, since that would lengthen the output; when the septet
// count travels with the data (TP-UDL in SMS) no receiver needs it.
//
// PackSeptets panics if fillBits is outside 0 to 6.
func PackSeptets(septets []byte, fillBits int) []byte {
	if fillBits < 0 || fillBits > 6 {
		panic("coding: PackSeptets: fill bits out of range 0..6")
	}
	n := len(septets)
	if n == 0 {
		return []byte{}
	}
	out := make([]byte, PackedLen(n, fillBits))
	bit := fillBits
	put := func(s byte) {
		v := uint16(s&0x7F) << (bit % 8)
		o := bit / 8
		out[o] |= byte(v)
		if v > 0xFF && o+1 < len(out) {
			out[o+1] |= byte(v >> 8)
		}
		bit += 7
	}
	for _, s := range septets {
		put(s)
	}
	if len(out)*8-bit == 7 {
		put(CR)
	}
	return out
}

// UnpackSeptets unpacks 7-bit packed data into septets, one per octet,
// skipping fillBits (0 to 6) leading fill bits.
//
// With count >= 0 it returns at most count septets (fewer if packed is
// short); pass the septet count when it is known, e.g. from TP-UDL less the
// header. With count < 0 it returns every whole septet the octets hold, and,
// as 3GPP TS 23.038 section 6.1.2 tells a receiver, drops a final CR when the
// septets end exactly on an octet boundary, since that CR is padding (see
// PackSeptets). A final zero septet in that position is kept and decodes as
// "@": 23.038 senders pad with CR, so a zero there is taken as real text.
//
// UnpackSeptets never panics; it returns nil if fillBits is outside 0 to 6.
func UnpackSeptets(packed []byte, fillBits int, count int) []byte {
	if fillBits < 0 || fillBits > 6 {
		return nil
	}
	avail := (len(packed)*8 - fillBits) / 7
	if avail < 0 {
		avail = 0
	}
	n := avail
	if count >= 0 && count < n {
		n = count
	}
	out := make([]byte, n)
	bit := fillBits
	for i := range out {
		o := bit / 8
		v := uint16(packed[o])
		if o+1 < len(packed) {
			v |= uint16(packed[o+1]) << 8
		}
		out[i] = byte(v>>(bit%8)) & 0x7F
		bit += 7
	}
	if count < 0 && n > 0 && (fillBits+7*n)%8 == 0 && out[n-1] == CR {
		out = out[:n-1]
	}
	return out
}
