package smpp

import (
	"encoding/binary"
	"fmt"
)

// Field size limits of SMPP 3.4 section 4, in octets including the NUL of a
// C-octet string.
const (
	MaxSystemID       = 16
	MaxPassword       = 9
	MaxSystemType     = 13
	MaxAddressRange   = 41
	MaxServiceType    = 6
	MaxAddr           = 21 // source_addr, destination_addr, esme_addr of most PDUs
	MaxDataSMAddr     = 65 // addresses of data_sm and alert_notification
	MaxMessageID      = 65
	MaxTime           = 17 // schedule_delivery_time, validity_period, final_date
	MaxDLName         = 21
	MaxShortMessage   = 254
	HeaderLen         = 16
	DefaultMaxPDULen  = 64 * 1024
	InterfaceVersion  = 0x34
	maxUnsuccessItems = 255
)

// decoder reads the fields of a PDU body. The first error sticks; every read
// after it returns zero values.
type decoder struct {
	b   []byte
	off int
	h   Header
	err *PDUError
}

func (d *decoder) fail(field, reason string, st CommandStatus) {
	if d.err == nil {
		d.err = &PDUError{Header: d.h, Field: field, Reason: reason, Status: st}
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) u8(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(field, "body ends before this field", ESME_RINVCMDLEN)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u32(field string) uint32 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 4 {
		d.fail(field, "body ends before this field", ESME_RINVCMDLEN)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

// cbytes reads a C-octet string of at most max octets with its NUL and
// returns it without the NUL, aliasing the buffer.
func (d *decoder) cbytes(field string, max int, st CommandStatus) []byte {
	if d.err != nil {
		return nil
	}
	end := len(d.b)
	if end-d.off > max {
		end = d.off + max
	}
	for i := d.off; i < end; i++ {
		if d.b[i] == 0 {
			s := d.b[d.off:i]
			d.off = i + 1
			return s
		}
	}
	if end-d.off >= max {
		d.fail(field, fmt.Sprintf("C-octet string longer than %d octets with its NUL", max), st)
	} else {
		d.fail(field, "C-octet string without its NUL before the end of the PDU", ESME_RINVCMDLEN)
	}
	return nil
}

// cstr reads a C-octet string into *dst, keeping the old string (and not
// allocating) when it has the same content.
func (d *decoder) cstr(dst *string, field string, max int, st CommandStatus) {
	b := d.cbytes(field, max, st)
	if d.err != nil {
		return
	}
	if string(b) != *dst {
		*dst = string(b)
	}
}

func (d *decoder) octets(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if d.remaining() < n {
		d.fail(field, fmt.Sprintf("declares %d octets but the body has %d left", n, d.remaining()), ESME_RINVCMDLEN)
		return nil
	}
	b := d.b[d.off : d.off+n]
	d.off += n
	return b
}

// tlvs reads optional parameters until the end of the body. Values are
// copied into *arena (reused across calls) and the returned Options alias it.
func (d *decoder) tlvs(dst Options, arena *[]byte) Options {
	dst = dst[:0]
	if d.err != nil || d.remaining() == 0 {
		return dst
	}
	*arena = append((*arena)[:0], d.b[d.off:]...)
	a := *arena
	off := 0
	for off < len(a) {
		if len(a)-off < 4 {
			d.fail("optional parameters", fmt.Sprintf("%d octets left after the mandatory fields, too few for a TLV header", len(a)-off), ESME_RINVOPTPARSTREAM)
			return dst[:0]
		}
		tag := Tag(binary.BigEndian.Uint16(a[off:]))
		n := int(binary.BigEndian.Uint16(a[off+2:]))
		off += 4
		if n > len(a)-off {
			d.fail(tag.String(), fmt.Sprintf("TLV length %d runs past the end of the PDU (%d octets left)", n, len(a)-off), ESME_RINVOPTPARSTREAM)
			return dst[:0]
		}
		if reason := tlvLenProblem(tag, n); reason != "" {
			// A known parameter of the wrong length is refused, never read
			// as something else (a 1-octet sar_msg_ref_num would make a
			// segment look standalone).
			d.fail(tag.String(), reason, ESME_RINVPARLEN)
			return dst[:0]
		}
		dst = append(dst, TLV{Tag: tag, Value: a[off : off+n : off+n]})
		off += n
	}
	d.off = len(d.b)
	return dst
}

// end checks that the body had nothing left after its last field.
func (d *decoder) end() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("", fmt.Sprintf("%d octets after the last field", len(d.b)-d.off), ESME_RINVCMDLEN)
	}
}

// Encoding helpers. They append to b; field checks return a *PDUError
// naming the field.

func appendCString(b []byte, s string, max int, field string, st CommandStatus, h *Header) ([]byte, error) {
	if len(s)+1 > max {
		return b, &PDUError{Header: *h, Field: field, Reason: fmt.Sprintf("%d octets, at most %d allowed", len(s), max-1), Status: st}
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return b, &PDUError{Header: *h, Field: field, Reason: "contains a NUL octet", Status: st}
		}
	}
	b = append(b, s...)
	return append(b, 0), nil
}

func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// tlvLenProblem says what is wrong with a value of n octets for tag, or ""
// when the length is right (or the tag unknown). It checks the length
// only: a C-octet string without its NUL is tolerated, as real SMSCs send
// them (see Options.CString). The status for a wrong length is SMPP 3.4's
// ESME_RINVPARLEN (0xC2): the peers speak 3.4 (interface_version 0x34),
// and SMPP 5.0's ESME_RINVTLVLEN is the same value under a new name.
func tlvLenProblem(tag Tag, n int) string {
	i, ok := tagTable[tag]
	if !ok {
		return ""
	}
	switch i.Type {
	case TLVInt:
		if n != i.MinLen {
			return fmt.Sprintf("length %d, want %d", n, i.MinLen)
		}
	case TLVCString:
		if n < 1 || n > i.MaxLen {
			return fmt.Sprintf("length %d, want 1 to %d", n, i.MaxLen)
		}
	case TLVOctets, TLVEmpty:
		if n < i.MinLen || n > i.MaxLen {
			return fmt.Sprintf("length %d, want %d to %d", n, i.MinLen, i.MaxLen)
		}
	}
	return ""
}

func appendTLVs(b []byte, o Options, h *Header) ([]byte, error) {
	for _, t := range o {
		if len(t.Value) > 0xFFFF {
			return b, &PDUError{Header: *h, Field: t.Tag.String(), Reason: "value longer than 65535 octets", Status: ESME_RINVPARLEN}
		}
		if reason := tlvLenProblem(t.Tag, len(t.Value)); reason != "" {
			return b, &PDUError{Header: *h, Field: t.Tag.String(), Reason: reason, Status: ESME_RINVPARLEN}
		}
		b = binary.BigEndian.AppendUint16(b, uint16(t.Tag))
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Value)))
		b = append(b, t.Value...)
	}
	return b, nil
}
