package coding

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// basicTable is the GSM 03.38 basic table written out independently of the
// package's table, one string per row of 16 (0x1B, the escape, is '_'
// here and skipped).
var basicTable = []string{
	"@£$¥èéùìòÇ\nØø\rÅå",
	"Δ_ΦΓΛΩΠΨΣΘΞ_ÆæßÉ",
	" !\"#¤%&'()*+,-./",
	"0123456789:;<=>?",
	"¡ABCDEFGHIJKLMNO",
	"PQRSTUVWXYZÄÖÑÜ§",
	"¿abcdefghijklmno",
	"pqrstuvwxyzäöñüà",
}

var extTable = map[rune]byte{
	'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F,
	'[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65,
}

func TestGSM7BasicTableRoundTrip(t *testing.T) {
	seen := 0
	for row, chars := range basicTable {
		rs := []rune(chars)
		if len(rs) != 16 {
			t.Fatalf("row %d has %d characters", row, len(rs))
		}
		for col, r := range rs {
			code := byte(row*16 + col)
			if code == Escape {
				continue
			}
			seen++
			got, err := EncodeGSM7(string(r))
			if err != nil {
				t.Errorf("EncodeGSM7(%q): %v", r, err)
				continue
			}
			if !bytes.Equal(got, []byte{code}) {
				t.Errorf("EncodeGSM7(%q) = % X, want %02X", r, got, code)
			}
			if dec := DecodeGSM7([]byte{code}); dec != string(r) {
				t.Errorf("DecodeGSM7(%02X) = %q, want %q", code, dec, r)
			}
		}
	}
	if seen != 127 {
		t.Fatalf("checked %d basic characters, want 127", seen)
	}
}

func TestGSM7ExtensionTableRoundTrip(t *testing.T) {
	for r, code := range extTable {
		got, err := EncodeGSM7(string(r))
		if err != nil {
			t.Errorf("EncodeGSM7(%q): %v", r, err)
			continue
		}
		if want := []byte{Escape, code}; !bytes.Equal(got, want) {
			t.Errorf("EncodeGSM7(%q) = % X, want % X", r, got, want)
		}
		if dec := DecodeGSM7(got); dec != string(r) {
			t.Errorf("DecodeGSM7(% X) = %q, want %q", got, dec, r)
		}
		if n, ok := GSM7Len(string(r)); n != 2 || !ok {
			t.Errorf("GSM7Len(%q) = %d, %v; want 2, true", r, n, ok)
		}
	}
}

func TestEncodeGSM7(t *testing.T) {
	tests := []struct {
		in      string
		want    string // hex
		wantErr string
	}{
		{"", "", ""},
		{"Your code is 123456", "596F757220636F6465206973 20313233343536", ""},
		{"Code: 123456 {ok}", "436F64653A20313233343536201B286F6B1B29", ""},
		{"5€", "351B65", ""},
		{"@\n\r", "000A0D", ""},
		{"ç", "", `character "ç" (U+00E7) at offset 0 cannot be encoded in GSM 03.38`},
		{"ab`", "", "character \"`\" (U+0060) at offset 2 cannot be encoded in GSM 03.38"},
		{"Привет", "", `character "П" (U+041F) at offset 0 cannot be encoded in GSM 03.38`},
		{"ok \x01", "", `character "\x01" (U+0001) at offset 3 cannot be encoded in GSM 03.38`},
		{"ok\xff", "", `invalid UTF-8 at offset 2 cannot be encoded in GSM 03.38`},
		{"\u00a0", "", `character "\u00a0" (U+00A0) at offset 0 cannot be encoded in GSM 03.38`},
	}
	for _, tt := range tests {
		got, err := EncodeGSM7(tt.in)
		if tt.wantErr != "" {
			var ue *UnencodableError
			if !errors.As(err, &ue) || err.Error() != tt.wantErr {
				t.Errorf("EncodeGSM7(%q) error = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, unhex(t, tt.want)) {
			t.Errorf("EncodeGSM7(%q) = % X, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestGSM7Len(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		ok   bool
		desc string
	}{
		{"", 0, true, "empty"},
		{"Your code is 123456", 19, true, "ascii"},
		{"{}[]", 8, true, "escapes count twice"},
		{"Ünïcode", 2, false, "stops before ï"},
		{strings.Repeat("a", 160), 160, true, "full"},
	}
	for _, tt := range tests {
		n, ok := GSM7Len(tt.in)
		if n != tt.n || ok != tt.ok {
			t.Errorf("%s: GSM7Len(%q) = %d, %v; want %d, %v", tt.desc, tt.in, n, ok, tt.n, tt.ok)
		}
	}
}

func TestDecodeGSM7Edges(t *testing.T) {
	tests := []struct {
		in   string // hex
		want string
	}{
		{"", ""},
		{"1B", " "},             // trailing lone escape: space
		{"411B", "A "},          // same, after text
		{"1B61", "a"},           // unknown extension code: basic character
		{"1B00", "@"},           // unknown extension code 0: "@"
		{"1B0D", "\r"},          // CR2 is not a character: basic CR
		{"1B1B41", " A"},        // escape to a further table: space
		{"1B65", "€"},           // euro
		{"1B0A", "\f"},          // form feed
		{"80", "\uFFFD"},        // not a septet
		{"41FF42", "A\uFFFDB"},  // not a septet in the middle
		{"1B80", " \uFFFD"},     // escape before a non-septet
		{"1B1B", " "},           // two escapes at the end
		{"1B1B1B", "  "},        // three
		{"0D0A", "\r\n"},        // CR LF
		{"7F7E7D7C7B", "àüñöä"}, // top of the table
		{"10111213", "Δ_ΦΓ"},    // Greek
		{"1C1D1E1F", "ÆæßÉ"},    // row 1 tail
		{"24", "¤"},             // currency sign, not dollar
		{"02", "$"},             // dollar
		{"40", "¡"},             // not "@"
		{"5F60", "§¿"},          // section sign, inverted question mark
		{"1B14", "^"},           // circumflex
		{"1B401B3C1B3E", "|[]"}, // bar, brackets
		{"1B2F1B3D1B281B29", `\~{}`},
	}
	for _, tt := range tests {
		if got := DecodeGSM7(unhex(t, tt.in)); got != tt.want {
			t.Errorf("DecodeGSM7(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPackSeptets(t *testing.T) {
	tests := []struct {
		text string
		fill int
		want string // hex
	}{
		// 3GPP TS 23.038 / GSM 03.38 worked example.
		{"hellohello", 0, "E8329BFD4697D9EC37"},
		{"", 0, ""},
		{"A", 0, "41"},
		// 7 septets leave 7 spare bits: they carry CR (0x0D << 1 = 0x1A).
		{"1234567", 0, "31D98C56B3DD1A"},
		// 8 septets fill 7 octets exactly: no padding.
		{"12345678", 0, "31D98C56B3DD70"},
		// After a 6-octet UDH: one fill bit.
		{"A", 1, "82"},
		{"AB", 1, "8242"},
		{"hello", 1, "D06536FB0D"},
		// After a 7-octet UDH: no fill bit, same as plain.
		{"hellohello", 0, "E8329BFD4697D9EC37"},
		// 6 fill bits (a 1-octet UDH, e.g. 00 only): 6+7 = 13 bits.
		{"A", 6, "4010"},
	}
	for _, tt := range tests {
		septets, err := EncodeGSM7(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		got := PackSeptets(septets, tt.fill)
		if want := unhex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("PackSeptets(%q, %d) = % X, want % X", tt.text, tt.fill, got, want)
		}
		if len(got) != PackedLen(len(septets), tt.fill) {
			t.Errorf("PackedLen(%d, %d) = %d, packed %d", len(septets), tt.fill, PackedLen(len(septets), tt.fill), len(got))
		}
		// Unpack with the known count.
		if back := UnpackSeptets(got, tt.fill, len(septets)); !bytes.Equal(back, septets) {
			t.Errorf("UnpackSeptets(% X, %d, %d) = % X, want % X", got, tt.fill, len(septets), back, septets)
		}
		// Unpack without it: the CR padding rule recovers the text.
		if back := UnpackSeptets(got, tt.fill, -1); !bytes.Equal(back, septets) {
			t.Errorf("UnpackSeptets(% X, %d, -1) = % X, want % X", got, tt.fill, back, septets)
		}
	}
}

func TestUnpackSeptetsPadding(t *testing.T) {
	tests := []struct {
		packed string
		fill   int
		count  int
		want   string
		desc   string
	}{
		{"31D98C56B3DD1A", 0, -1, "1234567", "CR in 7 spare bits is padding"},
		{"31D98C56B3DD1A", 0, 8, "1234567\r", "an explicit count keeps it"},
		{"31D98C56B3DD1A", 0, 7, "1234567", "explicit count 7"},
		{"31D98C56B3DD00", 0, -1, "1234567@", "zero in 7 spare bits is taken as @ (23.038 senders pad with CR)"},
		{"31D98C56B3DD00", 0, 7, "1234567", "unless the count says otherwise"},
		{"E8329BFD4697D9EC37", 0, 100, "hellohello", "count past the end is clamped"},
		{"E8329BFD4697D9EC37", 0, 3, "hel", "short count"},
		{"", 0, -1, "", "empty"},
		{"", 3, 5, "", "empty with fill"},
		{"82", 1, -1, "A", "fill 1"},
		{"FF", 1, -1, "\u00e0", "fill 1, all ones: 0x7F is à"},
	}
	for _, tt := range tests {
		got := DecodeGSM7(UnpackSeptets(unhex(t, tt.packed), tt.fill, tt.count))
		if got != tt.want {
			t.Errorf("%s: UnpackSeptets(%s, %d, %d) = %q, want %q", tt.desc, tt.packed, tt.fill, tt.count, got, tt.want)
		}
	}
	if got := UnpackSeptets([]byte{1, 2}, 7, -1); got != nil {
		t.Errorf("fill 7 gave % X, want nil", got)
	}
	if got := UnpackSeptets([]byte{1, 2}, -1, -1); got != nil {
		t.Errorf("fill -1 gave % X, want nil", got)
	}
}

// refPack packs bit by bit, independently of PackSeptets, without padding.
func refPack(septets []byte, fill int) []byte {
	var bits []byte
	for i := 0; i < fill; i++ {
		bits = append(bits, 0)
	}
	for _, s := range septets {
		for i := 0; i < 7; i++ {
			bits = append(bits, (s>>i)&1)
		}
	}
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		out[i/8] |= b << (i % 8)
	}
	return out
}

func TestPackSeptetsAgainstReference(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for fill := 0; fill <= 6; fill++ {
			septets := make([]byte, n)
			for i := range septets {
				septets[i] = byte((i*37 + n*11 + fill) % 128)
			}
			got := PackSeptets(septets, fill)
			want := refPack(septets, fill)
			if n == 0 {
				want = []byte{} // no septets, no octets, fill bits or not
			}
			if n > 0 && (fill+7*n)%8 == 1 { // 7 spare bits: CR padding
				want[len(want)-1] |= CR << 1
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d fill=%d: got % X, want % X", n, fill, got, want)
			}
			if back := UnpackSeptets(got, fill, n); !bytes.Equal(back, septets) {
				t.Fatalf("n=%d fill=%d: unpacked % X, want % X", n, fill, back, septets)
			}
		}
	}
}

func TestFillBits(t *testing.T) {
	for _, tt := range []struct{ udh, fill int }{{0, 0}, {1, 6}, {6, 1}, {7, 0}, {12, 2}, {3, 4}} {
		if got := FillBits(tt.udh); got != tt.fill {
			t.Errorf("FillBits(%d) = %d, want %d", tt.udh, got, tt.fill)
		}
	}
}

func TestPackSeptetsPanicsOnBadFill(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for fill 7")
		}
	}()
	PackSeptets([]byte{1}, 7)
}

func TestLatin1(t *testing.T) {
	got, err := EncodeLatin1("Grüße ÿ")
	if err != nil || !bytes.Equal(got, unhex(t, "4772FC DF 6520FF")) {
		t.Fatalf("EncodeLatin1 = % X, %v", got, err)
	}
	if s := DecodeLatin1(got); s != "Grüße ÿ" {
		t.Fatalf("DecodeLatin1 = %q", s)
	}
	_, err = EncodeLatin1("abc€")
	want := `character "€" (U+20AC) at offset 3 cannot be encoded in Latin-1`
	var ue *UnencodableError
	if !errors.As(err, &ue) || err.Error() != want || ue.Rune != '€' || ue.Offset != 3 || ue.Coding != Latin1 {
		t.Fatalf("EncodeLatin1(abc€) error = %v (%+v), want %s", err, ue, want)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	back, err := EncodeLatin1(DecodeLatin1(all))
	if err != nil || !bytes.Equal(back, all) {
		t.Fatalf("Latin-1 round trip of all octets: % X, %v", back, err)
	}
}

func TestIA5(t *testing.T) {
	got, err := EncodeIA5("Code `1`")
	if err != nil || string(got) != "Code `1`" {
		t.Fatalf("EncodeIA5 = %q, %v", got, err)
	}
	if _, err := EncodeIA5("né"); err == nil || err.Error() != `character "é" (U+00E9) at offset 1 cannot be encoded in IA5/ASCII` {
		t.Fatalf("EncodeIA5(né) error = %v", err)
	}
	if s := DecodeIA5([]byte{'a', 0xE9, 'b'}); s != "a\uFFFDb" {
		t.Fatalf("DecodeIA5 = %q", s)
	}
}

func TestUCS2(t *testing.T) {
	tests := []struct {
		in   string
		want string // hex
	}{
		{"", ""},
		{"A", "0041"},
		{"Привет", "041F 0440 0438 0432 0435 0442"},
		{"€", "20AC"},
		{"😀", "D83D DE00"},
		{"a😀b", "0061 D83D DE00 0062"},
		{"\U0010FFFF", "DBFF DFFF"},
		{"\uFFFD", "FFFD"},
	}
	for _, tt := range tests {
		got, err := EncodeUTF16(tt.in)
		if err != nil || !bytes.Equal(got, unhex(t, tt.want)) {
			t.Errorf("EncodeUTF16(%q) = % X, %v; want %s", tt.in, got, err, tt.want)
		}
		if s := DecodeUCS2(got); s != tt.in {
			t.Errorf("DecodeUCS2(% X) = %q, want %q", got, s, tt.in)
		}
		if n, ok := UCS2Len(tt.in); !ok || n*2 != len(got) {
			t.Errorf("UCS2Len(%q) = %d, %v", tt.in, n, ok)
		}
	}
	if _, err := EncodeUCS2("a\xc0"); err == nil || err.Error() != "invalid UTF-8 at offset 1 cannot be encoded in UCS-2" {
		t.Errorf("EncodeUCS2(invalid) error = %v", err)
	}
}

func TestDecodeUCS2Malformed(t *testing.T) {
	tests := []struct {
		in   string // hex
		want string
	}{
		{"00", "\uFFFD"},             // odd length
		{"004100", "A\uFFFD"},        // trailing odd octet
		{"D83D", "\uFFFD"},           // lone high surrogate at end
		{"D83D0041", "\uFFFDA"},      // high surrogate before a non-surrogate
		{"DE00", "\uFFFD"},           // lone low surrogate
		{"DE00D83D", "\uFFFD\uFFFD"}, // reversed pair
		{"D83DD83DDE00", "\uFFFD😀"},  // two highs then a low
		{"D83D00", "\uFFFD\uFFFD"},   // high surrogate then an odd octet
		{"0000", "\x00"},             // NUL is a character
	}
	for _, tt := range tests {
		got := DecodeUCS2(unhex(t, tt.in))
		if got != tt.want {
			t.Errorf("DecodeUCS2(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEncodeDecodeDispatch(t *testing.T) {
	tests := []struct {
		dc   DataCoding
		text string
		want string // hex
	}{
		{Default, "a{", "611B28"},
		{IA5, "a{", "617B"},
		{Latin1, "é", "E9"},
		{UCS2, "é", "00E9"},
		{0xF0, "a", "61"},   // GSM DCS: 7-bit, class 0
		{0x18, "é", "00E9"}, // GSM DCS: UCS-2, class 0
	}
	for _, tt := range tests {
		got, err := Encode(tt.text, tt.dc)
		if err != nil || !bytes.Equal(got, unhex(t, tt.want)) {
			t.Errorf("Encode(%q, %s) = % X, %v; want %s", tt.text, tt.dc, got, err, tt.want)
			continue
		}
		back, err := Decode(got, tt.dc)
		if err != nil || back != tt.text {
			t.Errorf("Decode(% X, %s) = %q, %v", got, tt.dc, back, err)
		}
	}
	for _, dc := range []DataCoding{Binary, OctetUnspecified, JIS, Cyrillic, 0xF4, 0x24} {
		if _, err := Encode("a", dc); !errors.Is(err, ErrUnsupportedCoding) {
			t.Errorf("Encode(%s) error = %v, want ErrUnsupportedCoding", dc, err)
		}
		if _, err := Decode([]byte("a"), dc); !errors.Is(err, ErrUnsupportedCoding) {
			t.Errorf("Decode(%s) error = %v, want ErrUnsupportedCoding", dc, err)
		}
	}
	if got, err := Encode("€", 0xF0); err != nil || !bytes.Equal(got, []byte{Escape, 0x65}) {
		t.Errorf("Encode(€, 0xF0) = % X, %v", got, err)
	}
	if _, err := Encode("ж", UCS2); err != nil {
		t.Errorf("Encode(ж, UCS2): %v", err)
	}
	if _, err := Encode("ж", 0xF0); err == nil || !strings.HasSuffix(err.Error(), "data_coding 0xF0") {
		t.Errorf("Encode(ж, 0xF0) error = %v, want it to name data_coding 0xF0", err)
	}
}

func TestAlphabet(t *testing.T) {
	tests := []struct{ dc, want DataCoding }{
		{0x00, Default}, {0x01, IA5}, {0x02, Binary}, {0x03, Latin1}, {0x04, Binary},
		{0x08, UCS2}, {0x06, Cyrillic},
		{0x10, Default}, {0x11, Default}, {0x14, Binary}, {0x18, UCS2}, {0x1C, Default},
		{0x20, Binary}, {0x48, UCS2}, {0x90, Default},
		{0xC0, Default}, {0xD3, Default}, {0xE0, UCS2},
		{0xF0, Default}, {0xF1, Default}, {0xF4, Binary}, {0xF7, Binary},
	}
	for _, tt := range tests {
		if got := tt.dc.Alphabet(); got != tt.want {
			t.Errorf("DataCoding(0x%02X).Alphabet() = %s, want %s", byte(tt.dc), got, tt.want)
		}
	}
}

func TestDataCodingString(t *testing.T) {
	for dc, want := range map[DataCoding]string{
		Default: "GSM 03.38", IA5: "IA5/ASCII", Binary: "8-bit binary", Latin1: "Latin-1",
		OctetUnspecified: "8-bit binary", UCS2: "UCS-2", 0xF1: "data_coding 0xF1",
	} {
		if got := dc.String(); got != want {
			t.Errorf("%02X.String() = %q, want %q", byte(dc), got, want)
		}
	}
}

func TestAuto(t *testing.T) {
	tests := []struct {
		in   string
		dc   DataCoding
		want string // hex
	}{
		{"Code: 123456 {ok}", Default, "436F64653A20313233343536201B286F6B1B29"},
		{"Привет", UCS2, "041F04400438043204350442"},
		{"", Default, ""},
		{"Code ç", UCS2, "0043006F00640065002000E7"},
		{"a\xff", UCS2, "0061FFFD"},
	}
	for _, tt := range tests {
		dc, got, err := Auto(tt.in)
		if err != nil || dc != tt.dc || !bytes.Equal(got, unhex(t, tt.want)) {
			t.Errorf("Auto(%q) = %s % X; want %s %s", tt.in, dc, got, tt.dc, tt.want)
		}
	}
}

// UCS-2 carries the BMP only: an emoji is refused with a clear error by
// Auto, Encode and Split, unless Split is told UTF16, which sends the
// surrogate pair (and counts it as two code units).
func TestUCS2BMPOnly(t *testing.T) {
	const s = "Code 123 😀"
	var ue *UnencodableError
	if _, _, err := Auto(s); !errors.As(err, &ue) || ue.Rune != '😀' || ue.Offset != 9 {
		t.Errorf("Auto: %v", err)
	} else if !strings.Contains(err.Error(), "Basic Multilingual Plane") {
		t.Errorf("error does not say why: %v", err)
	}
	if _, err := Encode(s, UCS2); !errors.As(err, &ue) {
		t.Errorf("Encode UCS2: %v", err)
	}
	for _, opt := range []SplitOptions{{Auto: true}, {Coding: UCS2}} {
		if _, err := Split(s, opt); !errors.As(err, &ue) {
			t.Errorf("Split %+v: %v", opt, err)
		}
		opt.UTF16 = true
		sr, err := Split(s, opt)
		if err != nil || sr.Coding != UCS2 || len(sr.Segments) != 1 || !bytes.HasSuffix(sr.Segments[0].Data, []byte{0xD8, 0x3D, 0xDE, 0x00}) || sr.Segments[0].Units != 11 {
			t.Errorf("Split %+v: %+v, %v", opt, sr, err)
		}
	}
	if b, err := EncodeUTF16("😀"); err != nil || !bytes.Equal(b, []byte{0xD8, 0x3D, 0xDE, 0x00}) {
		t.Errorf("EncodeUTF16: % X, %v", b, err)
	}
	if got := DecodeUCS2([]byte{0xD8, 0x3D, 0xDE, 0x00}); got != "😀" {
		t.Errorf("decode of a surrogate pair: %q", got)
	}
}

func TestUnencodableErrorInvalidIsReported(t *testing.T) {
	for _, dc := range []DataCoding{Default, IA5, Latin1, UCS2} {
		_, err := Encode("ok\xe2\x82", dc)
		var ue *UnencodableError
		if !errors.As(err, &ue) || !ue.Invalid || ue.Offset != 2 || ue.Rune != utf8.RuneError {
			t.Errorf("Encode(invalid, %s) = %v (%+v)", dc, err, ue)
		}
	}
}
