package smpp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp/dlr"
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

// FuzzParseReceipt: any PDU a peer sends that decodes as a deliver_sm is
// read as a receipt without panicking; a receipt read has an id, a refusal
// is ErrNotReceipt; and a receipt as an SMSC builds it (ReceiptDeliverSM)
// reads back with its id and state once encoded and decoded.
func FuzzParseReceipt(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		if len(fx.raw) >= HeaderLen {
			if h, err := ParseHeader(fx.raw); err == nil && h.Command == DeliverSMID {
				f.Add(fx.raw, "")
			}
		}
	}
	f.Add([]byte{}, "762252143")
	f.Add([]byte{}, "2d6f0b6f-1c3a")
	f.Fuzz(func(t *testing.T, raw []byte, id string) {
		if p, err := Decode(raw); err == nil {
			if d, ok := p.(*DeliverSM); ok {
				r, err := ParseReceipt(d)
				if err != nil && !errors.Is(err, ErrNotReceipt) {
					t.Fatalf("refusal %v is not ErrNotReceipt", err)
				}
				if err == nil && r.ID == "" {
					t.Fatalf("receipt without an id: %+v", r)
				}
			}
		}
		// A C-Octet String id of up to 64 characters, as in submit_sm_resp.
		if id == "" || len(id) > 64 || strings.ContainsAny(id, "\x00") {
			return
		}
		want := dlr.Receipt{Stat: "UNDELIV", State: dlr.Undeliverable, Err: "001"}
		b, err := Marshal(ReceiptDeliverSM(id, "", want))
		if err != nil {
			t.Fatalf("receipt for id %q does not encode: %v", id, err)
		}
		p, err := Decode(b)
		if err != nil {
			t.Fatalf("receipt for id %q does not decode: %v", id, err)
		}
		d := p.(*DeliverSM)
		r, err := ParseReceipt(d)
		if err != nil || r.ID != id || r.State != dlr.Undeliverable {
			t.Fatalf("receipt for id %q read back as %+v, %v", id, r, err)
		}
		// Without the parameters, from the Appendix B text alone (where an
		// id is a run of non-space characters, and the text is cut to 254
		// octets).
		if strings.ContainsAny(id, " \t\r\n\v\f") {
			return
		}
		d.Options.Del(TagReceiptedMessageID)
		d.Options.Del(TagMessageState)
		r, err = ParseReceipt(d)
		if err != nil || r.ID != id || r.State != dlr.Undeliverable || r.FromTLV {
			t.Fatalf("receipt text %q read back as %+v, %v", d.ShortMessage, r, err)
		}
	})
}

// FuzzParseTime: any 16 characters from a peer's time field give a time or
// an error, never a panic; an absolute time formats back to itself (its
// zone kept: quarter hours, at most 12 hours), and a relative one is its
// interval from now (exactly, without years and months; never before now
// with them).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "261203101530504+", "261203101530004-", "991231235959948+", "000001000000000R",
		"990000000000000R", "260229000000000+", "251301000000000+", "2612031015300X4+", "26120310153000 R",
		"000099235959000R", "000001000000123R"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s, now)
		if err != nil {
			if !tm.IsZero() {
				t.Fatalf("%q: error %v with time %v", s, err, tm)
			}
			return
		}
		switch {
		case s == "":
			if !tm.IsZero() {
				t.Fatalf("empty field gave %v", tm)
			}
		case s[15] == 'R':
			// The tnn of a relative time is 000 in section 7.1.1.2; other
			// digits there are tolerated and ignored. Without years and
			// months the interval is exact.
			if s[:4] == "0000" {
				d := func(i int) time.Duration { return time.Duration(s[i]-'0')*10 + time.Duration(s[i+1]-'0') }
				want := d(4)*24*time.Hour + d(6)*time.Hour + d(8)*time.Minute + d(10)*time.Second
				if got := tm.Sub(now); got != want {
					t.Fatalf("relative %q is %v from now, want %v", s, got, want)
				}
			} else if tm.Before(now) {
				t.Fatalf("relative %q is before now: %v", s, tm)
			}
		default:
			got := FormatAbsoluteTime(tm)
			want := s
			if s[13:15] == "00" {
				want = s[:15] + "+" // UTC has one sign when written
			}
			if got != want {
				t.Fatalf("absolute %q formats back as %q", s, got)
			}
		}
	})
}
