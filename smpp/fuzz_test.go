package smpp

import (
	"bytes"
	"testing"
)

// FuzzDecode: no input panics, and whatever decodes re-encodes to bytes that
// decode and re-encode to themselves.
func FuzzDecode(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			return
		}
		b1, err := Marshal(p)
		if err != nil {
			t.Fatalf("decoded %s does not re-encode: %v", p.CommandID(), err)
		}
		q, err := Decode(b1)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v\n%x", p.CommandID(), err, b1)
		}
		b2, err := Marshal(q)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("not stable: %x\n%x %v", b1, b2, err)
		}
	})
}

// FuzzReader: a stream of arbitrary bytes never panics, never loops, and a
// PDU-level error leaves the reader in step.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, fx := range loadFixtures(f) {
		if fx.expect == "" {
			stream = append(stream, fx.raw...)
		}
	}
	f.Add(stream)
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		r.MaxLength = 4096
		r.Reuse = len(data)%2 == 0
		for i := 0; i <= len(data)/HeaderLen; i++ {
			if _, err := r.ReadPDU(); IsFatal(err) {
				return
			}
		}
		t.Fatalf("more PDUs read than the input can hold")
	})
}
