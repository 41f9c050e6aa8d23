package coding

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeGSM7(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		[]byte("Your code is 123456"),
		{Escape},
		{Escape, Escape},
		{Escape, 0x65, Escape, 0x28, 0x41},
		{Escape, 0x80},
		{0x80, 0xFF, 0x7F, 0x00},
		{0x1B, 0x0A, 0x1B, 0x0D, 0x1B, 0x61},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := DecodeGSM7(b)
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 from % X", b)
		}
		septets := true
		for _, c := range b {
			if c > 0x7F {
				septets = false
			}
		}
		if !septets {
			return
		}
		// Whatever the decoder shows can be sent again, and re-encoding
		// is stable from there.
		enc, err := EncodeGSM7(s)
		if err != nil {
			t.Fatalf("decoded %q from % X does not encode: %v", s, b, err)
		}
		if again := DecodeGSM7(enc); again != s {
			t.Fatalf("% X -> %q -> % X -> %q", b, s, enc, again)
		}
	})
}

func FuzzUnpackSeptets(f *testing.F) {
	f.Add([]byte{0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37}, 0, -1)
	f.Add([]byte{0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x1A}, 0, 8)
	f.Add([]byte{0xD0, 0x65, 0x36, 0xFB, 0x0D}, 1, 5)
	f.Add([]byte{}, 6, 3)
	f.Add([]byte{0xFF}, 7, -1)
	f.Add([]byte{0x00, 0xFF}, -3, 1000)
	f.Fuzz(func(t *testing.T, packed []byte, fill, count int) {
		out := UnpackSeptets(packed, fill, count)
		if fill < 0 || fill > 6 {
			if out != nil {
				t.Fatalf("fill %d gave output", fill)
			}
			return
		}
		if max := (len(packed)*8 - fill) / 7; len(out) > max || (count >= 0 && len(out) > count) {
			t.Fatalf("%d septets from %d octets (fill %d, count %d)", len(out), len(packed), fill, count)
		}
		for _, s := range out {
			if s > 0x7F {
				t.Fatalf("septet %02X", s)
			}
		}
		// Packing what was unpacked and unpacking it again is stable.
		re := PackSeptets(out, fill)
		if len(re) > len(packed) {
			t.Fatalf("repacked %d septets into %d octets, more than %d", len(out), len(re), len(packed))
		}
		if back := UnpackSeptets(re, fill, len(out)); !bytes.Equal(back, out) {
			t.Fatalf("round trip % X -> % X", out, back)
		}
		_ = DecodeGSM7(out)
	})
}

func FuzzDecodeUCS2(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		{0x00},
		{0x04, 0x1F, 0x04, 0x40},
		{0xD8, 0x3D, 0xDE, 0x00},
		{0xD8, 0x3D},
		{0xDE, 0x00, 0xD8, 0x3D},
		{0xD8, 0x3D, 0x00},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := DecodeUCS2(b)
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 from % X", b)
		}
		enc, err := EncodeUTF16(s)
		if err != nil {
			t.Fatalf("decoded %q does not encode: %v", s, err)
		}
		if DecodeUCS2(enc) != s {
			t.Fatalf("unstable round trip for % X", b)
		}
		// Well-formed input comes back unchanged.
		if len(b)%2 == 0 && !bytes.Contains(enc, []byte{0xFF, 0xFD}) && !bytes.Equal(enc, b) {
			t.Fatalf("% X -> %q -> % X", b, s, enc)
		}
	})
}

func FuzzParseUDH(f *testing.F) {
	for _, seed := range [][]byte{
		{0x05, 0x00, 0x03, 0xCC, 0x02, 0x01, 'h', 'i'},
		{0x06, 0x08, 0x04, 0xBE, 0xEF, 0x03, 0x02},
		{0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x01, 0x02, 0x02},
		{0x00},
		{},
		{0xFF, 0x00},
		{0x03, 0x00, 0x03, 0x01, 0x02},
		{0x01, 0x00},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ud []byte) {
		h, rest, err := ParseUDH(ud)
		if err != nil {
			return
		}
		b, err := h.Bytes()
		if err != nil {
			t.Fatalf("parsed header does not encode: %v", err)
		}
		if n := len(ud) - len(rest); !bytes.Equal(b, ud[:n]) || h.Len() != n {
			t.Fatalf("re-encoded % X, want % X", b, ud[:n])
		}
		if c, ok := h.Concat(); ok && (c.Total == 0 || c.Seq == 0 || c.Seq > c.Total) {
			t.Fatalf("invalid concat accepted: %+v", c)
		}
		h.Ports()
	})
}
