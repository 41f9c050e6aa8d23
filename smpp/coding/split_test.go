package coding

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// joinSeptets unpacks (if needed) and concatenates the segments' text.
func joinSegments(t *testing.T, r *SplitResult) []byte {
	t.Helper()
	var all []byte
	for _, s := range r.Segments {
		d := s.Data
		if r.Packed {
			d = UnpackSeptets(d, s.FillBits, s.Units)
		}
		all = append(all, d...)
	}
	return all
}

func TestSplitSizes(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		desc   string
		text   string
		opt    SplitOptions
		coding DataCoding
		units  []int // per segment
	}{
		{"empty", "", SplitOptions{Auto: true}, Default, []int{0}},
		{"160 septets fit one", a(160), SplitOptions{Auto: true}, Default, []int{160}},
		{"161 septets: 153+8", a(161), SplitOptions{Auto: true}, Default, []int{153, 8}},
		{"306 septets: 2x153", a(306), SplitOptions{Auto: true}, Default, []int{153, 153}},
		{"307 septets: 3", a(307), SplitOptions{Auto: true}, Default, []int{153, 153, 1}},
		{"UDH16: 152", a(161), SplitOptions{Auto: true, Method: ConcatUDH16}, Default, []int{152, 9}},
		{"SAR sized as UDH8", a(161), SplitOptions{Auto: true, Method: ConcatSAR}, Default, []int{153, 8}},
		{"payload: one part", a(1000), SplitOptions{Auto: true, Method: ConcatPayload}, Default, []int{1000}},
		{"escape at the 153rd septet", a(152) + "€" + a(10), SplitOptions{Auto: true}, Default, []int{152, 12}},
		{"escape ending at the 153rd septet", a(151) + "€" + a(10), SplitOptions{Auto: true}, Default, []int{153, 10}},
		{"escape at 152nd septet, UDH16", a(151) + "{" + a(10), SplitOptions{Auto: true, Method: ConcatUDH16}, Default, []int{151, 12}},
		{"extension chars count twice", strings.Repeat("{", 80), SplitOptions{Auto: true}, Default, []int{160}},
		{"81 braces: escapes kept whole", strings.Repeat("{", 81), SplitOptions{Auto: true}, Default, []int{152, 10}},
		{"70 UCS-2 fit one", strings.Repeat("ж", 70), SplitOptions{Auto: true}, UCS2, []int{70}},
		{"71 UCS-2: 67+4", strings.Repeat("ж", 71), SplitOptions{Auto: true}, UCS2, []int{67, 4}},
		{"UCS-2 UDH16: 66", strings.Repeat("ж", 71), SplitOptions{Auto: true, Method: ConcatUDH16}, UCS2, []int{66, 5}},
		{"emoji at the 67th unit", strings.Repeat("ж", 66) + "😀" + "bbbbb", SplitOptions{Auto: true, UTF16: true}, UCS2, []int{66, 7}},
		{"emoji ending at the 67th unit", strings.Repeat("ж", 65) + "😀" + "bbbbb", SplitOptions{Auto: true, UTF16: true}, UCS2, []int{67, 5}},
		{"emoji at the 66th unit, UDH16", strings.Repeat("ж", 65) + "😀" + "bbbbb", SplitOptions{Auto: true, UTF16: true, Method: ConcatUDH16}, UCS2, []int{65, 7}},
		{"35 emoji fit one", strings.Repeat("😀", 35), SplitOptions{Auto: true, UTF16: true}, UCS2, []int{70}},
		{"36 emoji: 33+3", strings.Repeat("😀", 36), SplitOptions{Auto: true, UTF16: true}, UCS2, []int{66, 6}},
		{"Latin-1 140 fit", strings.Repeat("é", 140), SplitOptions{Coding: Latin1}, Latin1, []int{140}},
		{"Latin-1 141: 134+7", strings.Repeat("é", 141), SplitOptions{Coding: Latin1}, Latin1, []int{134, 7}},
		{"IA5 UDH16 133", a(141), SplitOptions{Coding: IA5, Method: ConcatUDH16}, IA5, []int{133, 8}},
		{"explicit UCS-2 for GSM text", a(71), SplitOptions{Coding: UCS2}, UCS2, []int{67, 4}},
	}
	for _, tt := range tests {
		r, err := Split(tt.text, tt.opt)
		if err != nil {
			t.Errorf("%s: %v", tt.desc, err)
			continue
		}
		if r.Coding != tt.coding {
			t.Errorf("%s: coding %s, want %s", tt.desc, r.Coding, tt.coding)
		}
		var got []int
		total := 0
		for i, s := range r.Segments {
			got = append(got, s.Units)
			total += s.Units
			if int(s.Seq) != i+1 || int(s.Total) != len(r.Segments) {
				t.Errorf("%s: segment %d has seq %d/%d", tt.desc, i, s.Seq, s.Total)
			}
		}
		if !equalInts(got, tt.units) {
			t.Errorf("%s: segments %v, want %v", tt.desc, got, tt.units)
		}
		if total != r.Units {
			t.Errorf("%s: Units %d, segments sum to %d", tt.desc, r.Units, total)
		}
		want, err := Encode(tt.text, tt.coding)
		if tt.opt.UTF16 {
			want, err = EncodeUTF16(tt.text)
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.desc, err)
		}
		if all := joinSegments(t, r); !bytes.Equal(all, want) {
			t.Errorf("%s: joined segments differ from the encoded text", tt.desc)
		}
		back, _ := Decode(want, tt.coding)
		var joined strings.Builder
		for _, s := range r.Segments {
			d, err := Decode(s.Data, r.Coding)
			if err != nil {
				t.Fatal(err)
			}
			joined.WriteString(d)
		}
		if joined.String() != back {
			t.Errorf("%s: segments decode to %q", tt.desc, joined.String())
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSplitEscapeBoundaryBytes(t *testing.T) {
	text := strings.Repeat("a", 152) + "€" + "bbbbbbb" // 161 septets
	r, err := Split(text, SplitOptions{Auto: true, Ref: 0x42})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Segments) != 2 {
		t.Fatalf("%d segments", len(r.Segments))
	}
	s1, s2 := r.Segments[0], r.Segments[1]
	if want := []byte{0x05, 0x00, 0x03, 0x42, 0x02, 0x01}; !bytes.Equal(s1.UDH, want) {
		t.Errorf("UDH 1 = % X, want % X", s1.UDH, want)
	}
	if want := []byte{0x05, 0x00, 0x03, 0x42, 0x02, 0x02}; !bytes.Equal(s2.UDH, want) {
		t.Errorf("UDH 2 = % X, want % X", s2.UDH, want)
	}
	if !bytes.Equal(s1.Data, bytes.Repeat([]byte{'a'}, 152)) {
		t.Errorf("segment 1 = % X", s1.Data)
	}
	if want := []byte{Escape, 0x65, 'b', 'b', 'b', 'b', 'b', 'b', 'b'}; !bytes.Equal(s2.Data, want) {
		t.Errorf("segment 2 = % X, want % X", s2.Data, want)
	}
	if s1.Ref != 0x42 || r.Ref != 0x42 {
		t.Errorf("ref %d %d", s1.Ref, r.Ref)
	}
}

func TestSplitEmojiBoundaryBytes(t *testing.T) {
	text := strings.Repeat("ж", 66) + "😀" + "bbbbb" // 73 units
	r, err := Split(text, SplitOptions{Auto: true, UTF16: true, Method: ConcatUDH16, Ref: 0xBEEF})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Segments) != 2 {
		t.Fatalf("%d segments", len(r.Segments))
	}
	s1, s2 := r.Segments[0], r.Segments[1]
	if want := []byte{0x06, 0x08, 0x04, 0xBE, 0xEF, 0x02, 0x01}; !bytes.Equal(s1.UDH, want) {
		t.Errorf("UDH 1 = % X, want % X", s1.UDH, want)
	}
	if len(s1.Data) != 132 || !bytes.Equal(s1.Data[:2], []byte{0x04, 0x36}) {
		t.Errorf("segment 1 = % X", s1.Data)
	}
	if want := unhex(t, "D83DDE00 0062 0062 0062 0062 0062"); !bytes.Equal(s2.Data, want) {
		t.Errorf("segment 2 = % X, want % X", s2.Data, want)
	}
	if n := len(s1.ShortMessage()); n != 139 {
		t.Errorf("short message 1 is %d octets, want 139", n)
	}
}

func TestSplitPacked(t *testing.T) {
	text := strings.Repeat("a", 153) + "hellohello" // 163 septets
	r, err := Split(text, SplitOptions{Auto: true, Packed: true, Ref: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Packed || len(r.Segments) != 2 {
		t.Fatalf("packed %v, %d segments", r.Packed, len(r.Segments))
	}
	s1, s2 := r.Segments[0], r.Segments[1]
	if s1.FillBits != 1 || s2.FillBits != 1 {
		t.Errorf("fill bits %d %d, want 1", s1.FillBits, s2.FillBits)
	}
	if n := len(s1.ShortMessage()); n != 140 {
		t.Errorf("segment 1 is %d octets, want 140", n)
	}
	if want := refPack(bytes.Repeat([]byte{'a'}, 153), 1); !bytes.Equal(s1.Data, want) {
		t.Errorf("segment 1 = % X, want % X", s1.Data, want)
	}
	// "hellohello" after a 6-octet header: one fill bit, 71 bits in 9
	// octets, one spare bit.
	want := append([]byte{0x05, 0x00, 0x03, 0x07, 0x02, 0x02}, refPack([]byte("hellohello"), 1)...)
	if got := s2.ShortMessage(); !bytes.Equal(got, want) {
		t.Errorf("segment 2 = % X, want % X", got, want)
	}
	// The UDH16 header is 56 bits: no fill bits.
	r, err = Split(strings.Repeat("a", 152)+"hellohello", SplitOptions{Auto: true, Packed: true, Method: ConcatUDH16})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Segments[1].Data; r.Segments[1].FillBits != 0 || !bytes.Equal(got, unhex(t, "E8329BFD4697D9EC37")) {
		t.Errorf("UDH16 segment 2 = % X (fill %d)", got, r.Segments[1].FillBits)
	}
	if n := len(r.Segments[0].ShortMessage()); n != 140 {
		t.Errorf("UDH16 segment 1 is %d octets, want 140", n)
	}
	// A single packed message has no fill bits.
	r, err = Split("hellohello", SplitOptions{Packed: true})
	if err != nil || !bytes.Equal(r.Segments[0].Data, unhex(t, "E8329BFD4697D9EC37")) || r.Segments[0].UDH != nil {
		t.Errorf("single packed = %+v, %v", r.Segments[0], err)
	}
	// Packed is ignored for UCS-2.
	r, err = Split("ж", SplitOptions{Auto: true, Packed: true})
	if err != nil || r.Packed || !bytes.Equal(r.Segments[0].Data, []byte{0x04, 0x36}) {
		t.Errorf("UCS-2 packed = %+v, %v", r, err)
	}
}

func TestSplitErrors(t *testing.T) {
	_, err := Split("Hello Привет", SplitOptions{Coding: Default})
	var ue *UnencodableError
	if !errors.As(err, &ue) || err.Error() != `character "П" (U+041F) at offset 6 cannot be encoded in GSM 03.38` {
		t.Errorf("explicit GSM error = %v", err)
	}
	_, err = Split("price: 5€", SplitOptions{Coding: Latin1})
	if !errors.As(err, &ue) || ue.Offset != 8 || ue.Rune != '€' {
		t.Errorf("explicit Latin-1 error = %v", err)
	}
	if _, err := Split("a", SplitOptions{Coding: Binary}); !errors.Is(err, ErrUnsupportedCoding) {
		t.Errorf("binary error = %v", err)
	}
	if _, err := Split("a\xff", SplitOptions{Auto: true}); !errors.As(err, &ue) || !ue.Invalid {
		t.Errorf("invalid UTF-8 error = %v", err)
	}
	if _, err := Split("a", SplitOptions{Auto: true, Method: 9}); err == nil {
		t.Error("unknown method accepted")
	}
	// 255 segments is the maximum.
	if r, err := Split(strings.Repeat("a", 153*255), SplitOptions{Auto: true}); err != nil || len(r.Segments) != 255 {
		t.Errorf("255 segments: %v", err)
	}
	if _, err := Split(strings.Repeat("a", 153*255+1), SplitOptions{Auto: true}); !errors.Is(err, ErrTooLong) {
		t.Errorf("256 segments: %v", err)
	}
	if _, err := Split(strings.Repeat("ж", 0x8000), SplitOptions{Auto: true, Method: ConcatPayload}); !errors.Is(err, ErrTooLong) {
		t.Errorf("payload over 65535 octets: %v", err)
	}
}

func TestSplitRef8(t *testing.T) {
	r, err := Split(strings.Repeat("a", 200), SplitOptions{Auto: true, Ref: 0x1234})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != 0x34 || r.Segments[0].Ref != 0x34 || r.Segments[0].UDH[3] != 0x34 {
		t.Errorf("ref %X %X % X", r.Ref, r.Segments[0].Ref, r.Segments[0].UDH)
	}
	r, err = Split(strings.Repeat("a", 200), SplitOptions{Auto: true, Ref: 0x1234, Method: ConcatSAR})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != 0x1234 || r.Segments[1].UDH != nil || r.Segments[1].Ref != 0x1234 {
		t.Errorf("SAR: %+v", r.Segments[1])
	}
}

func TestSplitBinary(t *testing.T) {
	data := bytes.Repeat([]byte{0xFF}, 300)
	r, err := SplitBinary(data, SplitOptions{Coding: OctetUnspecified})
	if err != nil {
		t.Fatal(err)
	}
	if r.Coding != OctetUnspecified || len(r.Segments) != 3 || r.Segments[0].Units != 134 || r.Segments[2].Units != 32 {
		t.Errorf("%+v", r)
	}
	r, err = SplitBinary(data[:140], SplitOptions{Coding: UCS2})
	if err != nil || r.Coding != Binary || len(r.Segments) != 1 {
		t.Errorf("%+v %v", r, err)
	}
}
