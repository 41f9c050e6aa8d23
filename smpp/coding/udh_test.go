package coding

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseUDH(t *testing.T) {
	tests := []struct {
		desc    string
		ud      string // hex
		ies     []IE
		rest    string // hex
		concat  *ConcatInfo
		ports   *PortInfo
		wantErr bool
	}{
		{
			desc:   "8-bit concat",
			ud:     "050003CC0201 48656C6C6F",
			ies:    []IE{{0x00, []byte{0xCC, 0x02, 0x01}}},
			rest:   "48656C6C6F",
			concat: &ConcatInfo{Ref: 0xCC, Total: 2, Seq: 1},
		},
		{
			desc:   "16-bit concat",
			ud:     "060804BEEF0302 41",
			ies:    []IE{{0x08, []byte{0xBE, 0xEF, 0x03, 0x02}}},
			rest:   "41",
			concat: &ConcatInfo{Ref: 0xBEEF, Total: 3, Seq: 2, Wide: true},
		},
		{
			desc:   "16-bit ports and concat",
			ud:     "0B 0504 0B84 23F0 0003 01 02 02",
			ies:    []IE{{0x05, []byte{0x0B, 0x84, 0x23, 0xF0}}, {0x00, []byte{0x01, 0x02, 0x02}}},
			rest:   "",
			concat: &ConcatInfo{Ref: 1, Total: 2, Seq: 2},
			ports:  &PortInfo{Dst: 2948, Src: 9200, Wide: true},
		},
		{
			desc:  "8-bit ports",
			ud:    "04 0402 F5 F6 AA",
			ies:   []IE{{0x04, []byte{0xF5, 0xF6}}},
			rest:  "AA",
			ports: &PortInfo{Dst: 0xF5, Src: 0xF6},
		},
		{
			desc:   "repeated concat: the last one counts",
			ud:     "0A 0003010201 0003070303",
			ies:    []IE{{0x00, []byte{1, 2, 1}}, {0x00, []byte{7, 3, 3}}},
			concat: &ConcatInfo{Ref: 7, Total: 3, Seq: 3},
		},
		{
			desc: "concat with seq 0 is ignored",
			ud:   "05 0003010200",
			ies:  []IE{{0x00, []byte{1, 2, 0}}},
		},
		{
			desc: "concat with seq above total is ignored",
			ud:   "05 0003010203",
			ies:  []IE{{0x00, []byte{1, 2, 3}}},
		},
		{
			desc: "concat with total 0 is ignored",
			ud:   "05 0003010000",
			ies:  []IE{{0x00, []byte{1, 0, 0}}},
		},
		{
			desc: "concat of the wrong length is ignored",
			ud:   "04 00020102",
			ies:  []IE{{0x00, []byte{1, 2}}},
		},
		{
			desc: "unknown IE kept, zero length",
			ud:   "05 7000 2401 01 FF",
			ies:  []IE{{0x70, []byte{}}, {0x24, []byte{0x01}}},
			rest: "FF",
		},
		{desc: "empty header", ud: "00 41", ies: nil, rest: "41"},
		{desc: "no octets", ud: "", wantErr: true},
		{desc: "UDHL past the end", ud: "05 000301", wantErr: true},
		{desc: "IE length past the header", ud: "03 0003 01 02", wantErr: true},
		{desc: "IE header cut", ud: "01 00", wantErr: true},
		{desc: "UDHL 255 with little data", ud: "FF 00", wantErr: true},
	}
	for _, tt := range tests {
		h, rest, err := ParseUDH(unhex(t, tt.ud))
		if tt.wantErr {
			if !errors.Is(err, ErrBadUDH) {
				t.Errorf("%s: error = %v, want ErrBadUDH", tt.desc, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.desc, err)
			continue
		}
		if !bytes.Equal(rest, unhex(t, tt.rest)) {
			t.Errorf("%s: rest % X, want %s", tt.desc, rest, tt.rest)
		}
		if len(h.IEs) != len(tt.ies) {
			t.Errorf("%s: IEs %+v, want %+v", tt.desc, h.IEs, tt.ies)
		} else {
			for i := range h.IEs {
				if h.IEs[i].ID != tt.ies[i].ID || !bytes.Equal(h.IEs[i].Data, tt.ies[i].Data) {
					t.Errorf("%s: IE %d = %+v, want %+v", tt.desc, i, h.IEs[i], tt.ies[i])
				}
			}
		}
		c, ok := h.Concat()
		if (tt.concat != nil) != ok || (ok && c != *tt.concat) {
			t.Errorf("%s: Concat() = %+v, %v; want %+v", tt.desc, c, ok, tt.concat)
		}
		p, ok := h.Ports()
		if (tt.ports != nil) != ok || (ok && p != *tt.ports) {
			t.Errorf("%s: Ports() = %+v, %v; want %+v", tt.desc, p, ok, tt.ports)
		}
		// Re-encoding gives the header octets back.
		b, err := h.Bytes()
		ud := unhex(t, tt.ud)
		if err != nil || !bytes.Equal(b, ud[:1+int(ud[0])]) {
			t.Errorf("%s: Bytes() = % X, %v", tt.desc, b, err)
		}
		if h.Len() != 1+int(ud[0]) {
			t.Errorf("%s: Len() = %d", tt.desc, h.Len())
		}
	}
}

func TestBuildUDH(t *testing.T) {
	tests := []struct {
		desc string
		got  []byte
		want string
	}{
		{"ConcatUDH8Header", ConcatUDH8Header(0x2A, 3, 1), "0500032A0301"},
		{"ConcatUDH16Header", ConcatUDH16Header(0x1234, 3, 2), "060804123403 02"},
		{"ports16+concat8", mustBytes(t, UDH{IEs: []IE{Ports16IE(2948, 9200), Concat8IE(1, 2, 1)}}), "0B 0504 0B8423F0 0003 010201"},
		{"ports8", mustBytes(t, UDH{IEs: []IE{Ports8IE(0xF5, 0xF6)}}), "04 0402F5F6"},
		{"concat16 IE", mustBytes(t, UDH{IEs: []IE{Concat16IE(0xBEEF, 9, 9)}}), "06 0804BEEF0909"},
		{"empty", mustBytes(t, UDH{}), "00"},
	}
	for _, tt := range tests {
		if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s = % X, want % X", tt.desc, tt.got, want)
		}
	}
	if _, err := (UDH{IEs: []IE{{ID: 1, Data: make([]byte, 256)}}}).Bytes(); !errors.Is(err, ErrBadUDH) {
		t.Errorf("oversized IE: %v", err)
	}
	big := UDH{}
	for i := 0; i < 30; i++ {
		big.IEs = append(big.IEs, IE{ID: 0x70, Data: make([]byte, 8)})
	}
	if _, err := big.Bytes(); !errors.Is(err, ErrBadUDH) {
		t.Errorf("oversized header: %v", err)
	}
}

func mustBytes(t *testing.T, h UDH) []byte {
	t.Helper()
	b, err := h.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
