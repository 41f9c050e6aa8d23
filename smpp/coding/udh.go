package coding

import (
	"errors"
	"fmt"
)

// Information element identifiers of 3GPP TS 23.040 section 9.2.3.24 that
// this package reads and writes.
const (
	// IEConcat8 is the concatenated short message IE with an 8-bit
	// reference: ref, total, seq.
	IEConcat8 byte = 0x00
	// IEPorts8 is application port addressing with 8-bit ports: dst, src.
	IEPorts8 byte = 0x04
	// IEPorts16 is application port addressing with 16-bit ports: dst, src.
	IEPorts16 byte = 0x05
	// IEConcat16 is the concatenated short message IE with a 16-bit
	// reference: ref (2 octets), total, seq.
	IEConcat16 byte = 0x08
)

// ErrBadUDH is wrapped by ParseUDH and UDH.Bytes for a malformed header.
var ErrBadUDH = errors.New("malformed user data header")

// IE is one information element of a user data header.
type IE struct {
	ID   byte
	Data []byte
}

// UDH is a user data header (3GPP TS 23.040 section 9.2.3.24): its
// information elements in order. Repeated elements are all kept.
type UDH struct {
	IEs []IE
}

// ParseUDH reads a user data header from the start of user data (the
// short_message of a PDU whose esm_class has the UDHI bit set): the length
// octet UDHL and UDHL octets of information elements. It returns the header
// and the rest of ud that follows it. The IE data alias ud.
//
// A UDHL that runs past the end of ud, or an IE whose length runs past the
// header, gives an error wrapping ErrBadUDH.
func ParseUDH(ud []byte) (UDH, []byte, error) {
	if len(ud) == 0 {
		return UDH{}, nil, fmt.Errorf("coding: %w: no header length octet", ErrBadUDH)
	}
	udhl := int(ud[0])
	if 1+udhl > len(ud) {
		return UDH{}, nil, fmt.Errorf("coding: %w: header length %d exceeds the %d octets of user data", ErrBadUDH, udhl, len(ud)-1)
	}
	hdr := ud[1 : 1+udhl]
	var h UDH
	for i := 0; i < len(hdr); {
		if i+2 > len(hdr) {
			return UDH{}, nil, fmt.Errorf("coding: %w: truncated information element at header octet %d", ErrBadUDH, i)
		}
		id, l := hdr[i], int(hdr[i+1])
		if i+2+l > len(hdr) {
			return UDH{}, nil, fmt.Errorf("coding: %w: information element 0x%02X of length %d runs past the header", ErrBadUDH, id, l)
		}
		h.IEs = append(h.IEs, IE{ID: id, Data: hdr[i+2 : i+2+l : i+2+l]})
		i += 2 + l
	}
	return h, ud[1+udhl:], nil
}

// Find returns the last IE with the given id: 23.040 says a receiver uses
// the last occurrence of an element that should not be repeated.
func (h UDH) Find(id byte) (IE, bool) {
	for i := len(h.IEs) - 1; i >= 0; i-- {
		if h.IEs[i].ID == id {
			return h.IEs[i], true
		}
	}
	return IE{}, false
}

// Len returns the encoded length of the header in octets, including the
// UDHL octet.
func (h UDH) Len() int {
	n := 1
	for _, ie := range h.IEs {
		n += 2 + len(ie.Data)
	}
	return n
}

// Bytes encodes the header: UDHL followed by the information elements. An
// IE longer than 255 octets or a header longer than 255 gives an error
// wrapping ErrBadUDH.
func (h UDH) Bytes() ([]byte, error) {
	n := h.Len()
	if n-1 > 0xFF {
		return nil, fmt.Errorf("coding: %w: header of %d octets exceeds 255", ErrBadUDH, n-1)
	}
	out := make([]byte, 0, n)
	out = append(out, byte(n-1))
	for _, ie := range h.IEs {
		if len(ie.Data) > 0xFF {
			return nil, fmt.Errorf("coding: %w: information element 0x%02X of %d octets exceeds 255", ErrBadUDH, ie.ID, len(ie.Data))
		}
		out = append(out, ie.ID, byte(len(ie.Data)))
		out = append(out, ie.Data...)
	}
	return out, nil
}

// ConcatInfo is the content of a concatenation IE.
type ConcatInfo struct {
	Ref   uint16 // reference number, the same in every segment
	Total uint8  // number of segments
	Seq   uint8  // this segment, from 1
	Wide  bool   // the 16-bit reference IE (0x08) rather than 0x00
}

// Concat returns the concatenation information of the header, from the last
// IE 0x00 (8-bit reference) or 0x08 (16-bit reference). ok is false when
// there is none, when its length is wrong, or when 23.040 tells the receiver
// to ignore it: a total of 0, or a sequence number of 0 or above the total.
func (h UDH) Concat() (info ConcatInfo, ok bool) {
	for i := len(h.IEs) - 1; i >= 0; i-- {
		ie := h.IEs[i]
		switch {
		case ie.ID == IEConcat8 && len(ie.Data) == 3:
			info = ConcatInfo{Ref: uint16(ie.Data[0]), Total: ie.Data[1], Seq: ie.Data[2]}
		case ie.ID == IEConcat16 && len(ie.Data) == 4:
			info = ConcatInfo{Ref: uint16(ie.Data[0])<<8 | uint16(ie.Data[1]), Total: ie.Data[2], Seq: ie.Data[3], Wide: true}
		case ie.ID == IEConcat8 || ie.ID == IEConcat16:
			return ConcatInfo{}, false
		default:
			continue
		}
		if info.Total == 0 || info.Seq == 0 || info.Seq > info.Total {
			return ConcatInfo{}, false
		}
		return info, true
	}
	return ConcatInfo{}, false
}

// PortInfo is the content of an application port addressing IE.
type PortInfo struct {
	Dst, Src uint16
	Wide     bool // 16-bit ports (IE 0x05) rather than 8-bit (0x04)
}

// Ports returns the application port addressing of the header, from the
// last IE 0x04 (8-bit ports) or 0x05 (16-bit ports); ok is false when there
// is none or its length is wrong.
func (h UDH) Ports() (PortInfo, bool) {
	for i := len(h.IEs) - 1; i >= 0; i-- {
		ie := h.IEs[i]
		switch {
		case ie.ID == IEPorts8 && len(ie.Data) == 2:
			return PortInfo{Dst: uint16(ie.Data[0]), Src: uint16(ie.Data[1])}, true
		case ie.ID == IEPorts16 && len(ie.Data) == 4:
			return PortInfo{
				Dst:  uint16(ie.Data[0])<<8 | uint16(ie.Data[1]),
				Src:  uint16(ie.Data[2])<<8 | uint16(ie.Data[3]),
				Wide: true,
			}, true
		case ie.ID == IEPorts8 || ie.ID == IEPorts16:
			return PortInfo{}, false
		}
	}
	return PortInfo{}, false
}

// Concat8IE builds a concatenation IE with an 8-bit reference (0x00).
func Concat8IE(ref uint8, total, seq uint8) IE {
	return IE{ID: IEConcat8, Data: []byte{ref, total, seq}}
}

// Concat16IE builds a concatenation IE with a 16-bit reference (0x08).
func Concat16IE(ref uint16, total, seq uint8) IE {
	return IE{ID: IEConcat16, Data: []byte{byte(ref >> 8), byte(ref), total, seq}}
}

// Ports8IE builds an application port addressing IE with 8-bit ports (0x04).
func Ports8IE(dst, src uint8) IE {
	return IE{ID: IEPorts8, Data: []byte{dst, src}}
}

// Ports16IE builds an application port addressing IE with 16-bit ports
// (0x05).
func Ports16IE(dst, src uint16) IE {
	return IE{ID: IEPorts16, Data: []byte{byte(dst >> 8), byte(dst), byte(src >> 8), byte(src)}}
}

// ConcatUDH8Header returns the 6-octet user data header of one segment with
// an 8-bit reference: 05 00 03 ref total seq.
func ConcatUDH8Header(ref uint8, total, seq uint8) []byte {
	return []byte{0x05, IEConcat8, 0x03, ref, total, seq}
}

// ConcatUDH16Header returns the 7-octet user data header of one segment with
// a 16-bit reference: 06 08 04 refHi refLo total seq.
func ConcatUDH16Header(ref uint16, total, seq uint8) []byte {
	return []byte{0x06, IEConcat16, 0x04, byte(ref >> 8), byte(ref), total, seq}
}
