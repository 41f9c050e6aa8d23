package coding

import (
	"errors"
	"fmt"
)

// ConcatMethod is how the segments of a long message are tied together.
type ConcatMethod int

// Concatenation methods.
const (
	// ConcatUDH8 puts a 6-octet user data header with an 8-bit reference
	// (IE 0x00) in front of each segment; the PDU sets the UDHI bit of
	// esm_class.
	ConcatUDH8 ConcatMethod = iota
	// ConcatUDH16 puts a 7-octet user data header with a 16-bit reference
	// (IE 0x08) in front of each segment.
	ConcatUDH16
	// ConcatSAR gives segments without a header, for the SMPP TLVs
	// sar_msg_ref_num, sar_total_segments and sar_segment_seqnum; they are
	// sized as for ConcatUDH8 since the SMSC adds that header.
	ConcatSAR
	// ConcatPayload gives one part with all the data, for the SMPP
	// message_payload TLV; the SMSC does the splitting.
	ConcatPayload
)

// String names the method.
func (m ConcatMethod) String() string {
	switch m {
	case ConcatUDH8:
		return "UDH (8-bit reference)"
	case ConcatUDH16:
		return "UDH (16-bit reference)"
	case ConcatSAR:
		return "SAR TLVs"
	case ConcatPayload:
		return "message_payload"
	}
	return fmt.Sprintf("ConcatMethod(%d)", int(m))
}

// Message size limits, in the unit of each coding: septets for the GSM
// default alphabet, octets for 8-bit codings, UTF-16 code units for UCS-2.
const (
	MaxSeptets        = 160 // one message, GSM 03.38
	MaxOctets         = 140 // one message, 8-bit
	MaxUCS2Units      = 70  // one message, UCS-2
	MaxSeptetsUDH8    = 153 // a segment with the 6-octet header
	MaxOctetsUDH8     = 134
	MaxUCS2UnitsUDH8  = 67
	MaxSeptetsUDH16   = 152 // a segment with the 7-octet header
	MaxOctetsUDH16    = 133
	MaxUCS2UnitsUDH16 = 66
	// MaxSegments is the largest number of segments a concatenated
	// message can have.
	MaxSegments = 255
	// MaxPayload is the largest message_payload TLV value, in octets.
	MaxPayload = 0xFFFF
)

// ErrTooLong is wrapped by Split when the text needs more than MaxSegments
// segments, or more than MaxPayload octets with ConcatPayload.
var ErrTooLong = errors.New("message too long")

// SplitOptions choose how Split encodes and cuts text.
type SplitOptions struct {
	// Auto picks GSM 03.38 when the text fits it and UCS-2 otherwise;
	// Coding is then ignored.
	Auto bool
	// Coding is the coding to use when Auto is false: Default (GSM 03.38),
	// IA5, Latin1 or UCS2 (or a GSM data coding scheme selecting one of
	// them, see DataCoding.Alphabet). Text that does not fit it gives an
	// *UnencodableError naming the first character that does not fit.
	Coding DataCoding
	// Method ties the segments together; the zero value is ConcatUDH8.
	Method ConcatMethod
	// Ref is the reference number shared by the segments. ConcatUDH8
	// uses its low 8 bits only; the result tells the value used.
	Ref uint16
	// UTF16 sends characters outside the BMP (most emoji) under UCS-2 as
	// UTF-16 surrogate pairs, which many SMSCs accept; without it such
	// text is refused with an *UnencodableError (UCS-2 is BMP-only).
	UTF16 bool
	// Packed packs GSM 03.38 septets 7 bits each (with the fill bits a
	// header needs) rather than one per octet. Other codings ignore it.
	Packed bool
}

// Segment is one short message of a split text.
type Segment struct {
	Seq   uint8  // 1-based position
	Total uint8  // number of segments
	Ref   uint16 // reference number (as sent: 8 bits for ConcatUDH8)
	// UDH is the user data header to put in front of Data, nil when there
	// is none (a single message, ConcatSAR, ConcatPayload).
	UDH []byte
	// Data is the encoded text of the segment: unpacked septets, packed
	// septets (after FillBits fill bits), octets or UTF-16BE.
	Data []byte
	// Units is the length of the text of this segment in the coding's
	// unit: septets, octets or UTF-16 code units.
	Units int
	// FillBits is the number of fill bits at the start of packed Data.
	FillBits int
}

// ShortMessage returns UDH followed by Data, the short_message (or
// message_payload) value of the segment.
func (s Segment) ShortMessage() []byte {
	out := make([]byte, 0, len(s.UDH)+len(s.Data))
	return append(append(out, s.UDH...), s.Data...)
}

// SplitResult is a text encoded and cut into segments.
type SplitResult struct {
	Coding   DataCoding   // the data_coding to send
	Method   ConcatMethod // as asked
	Packed   bool         // GSM septets are packed
	Ref      uint16       // reference as sent
	Units    int          // length of the whole text in the coding's unit
	Segments []Segment
}

// Split encodes s and cuts it into segments no longer than 3GPP TS 23.040
// allows: when the whole text fits one message (160 septets, 140 octets or
// 70 UCS-2 code units) it gives one segment without header; otherwise
// segments of at most 153 septets / 134 octets / 67 code units with
// ConcatUDH8 and ConcatSAR, or 152 / 133 / 66 with ConcatUDH16. ConcatPayload
// gives one part with all the text. An escape sequence (two septets) and a
// surrogate pair (two code units) are never cut between segments.
//
// Split does not know about grapheme clusters: a combining mark or an emoji
// made of several code points joined by U+200D may be cut between segments;
// the receiving phone joins them again.
func Split(s string, opt SplitOptions) (*SplitResult, error) {
	dc := opt.Coding
	var data []byte
	var err error
	if opt.Auto {
		dc = Default
		if data, err = EncodeGSM7(s); err != nil {
			// Unlike Auto, refuse invalid UTF-8 rather than send U+FFFD.
			dc = UCS2
			if data, err = encodeUTF16(s, opt.UTF16); err != nil {
				return nil, err
			}
		}
	} else if dc.Alphabet() == UCS2 && opt.UTF16 {
		if data, err = EncodeUTF16(s); err != nil {
			return nil, withCoding(err, dc)
		}
	} else if data, err = Encode(s, dc); err != nil {
		return nil, err
	}
	return split(data, dc, opt)
}

// SplitBinary cuts 8-bit data into segments as Split does, counting octets:
// 140 for one message, 134 with ConcatUDH8 or ConcatSAR, 133 with
// ConcatUDH16. The result's Coding is opt.Coding when that is a binary
// coding, else Binary. Data are not copied: segments share them.
func SplitBinary(data []byte, opt SplitOptions) (*SplitResult, error) {
	dc := opt.Coding
	if dc.Alphabet() != Binary {
		dc = Binary
	}
	return split(data, dc, opt)
}

// limits returns the single and segmented lengths for an alphabet and a
// method, and the size of the header.
func limits(alpha DataCoding, m ConcatMethod) (single, seg, udhLen int, err error) {
	var s, u8, u16 int
	switch alpha {
	case Default:
		s, u8, u16 = MaxSeptets, MaxSeptetsUDH8, MaxSeptetsUDH16
	case UCS2:
		s, u8, u16 = MaxUCS2Units, MaxUCS2UnitsUDH8, MaxUCS2UnitsUDH16
	default:
		s, u8, u16 = MaxOctets, MaxOctetsUDH8, MaxOctetsUDH16
	}
	switch m {
	case ConcatUDH8:
		return s, u8, 6, nil
	case ConcatUDH16:
		return s, u16, 7, nil
	case ConcatSAR:
		return s, u8, 0, nil
	case ConcatPayload:
		return 0, 0, 0, nil
	}
	return 0, 0, 0, fmt.Errorf("coding: unknown concatenation method %d", int(m))
}

func split(data []byte, dc DataCoding, opt SplitOptions) (*SplitResult, error) {
	alpha := dc.Alphabet()
	unitSize := 1
	if alpha == UCS2 {
		unitSize = 2
	}
	packed := opt.Packed && alpha == Default
	single, segLen, udhLen, err := limits(alpha, opt.Method)
	if err != nil {
		return nil, err
	}
	ref := opt.Ref
	if opt.Method == ConcatUDH8 {
		ref &= 0xFF
	}
	units := len(data) / unitSize
	res := &SplitResult{Coding: dc, Method: opt.Method, Packed: packed, Ref: ref, Units: units}

	one := func(d []byte) {
		seg := Segment{Seq: 1, Total: 1, Ref: ref, Data: d, Units: units}
		if packed {
			seg.Data = PackSeptets(d, 0)
		}
		res.Segments = []Segment{seg}
	}
	if opt.Method == ConcatPayload {
		size := len(data)
		if packed {
			size = PackedLen(units, 0)
		}
		if size > MaxPayload {
			return nil, fmt.Errorf("coding: %w: %d octets exceed the %d of message_payload", ErrTooLong, size, MaxPayload)
		}
		one(data)
		return res, nil
	}
	if units <= single {
		one(data)
		return res, nil
	}

	// Cut into chunks of at most segLen units, never inside an escape
	// sequence or a surrogate pair. The encoders emit Escape only as the
	// first septet of a pair, and a high surrogate only before a low one.
	var cuts []int // end offsets in units
	for start := 0; start < units; {
		end := start + segLen
		if end >= units {
			end = units
		} else if alpha == Default && data[end-1] == Escape {
			end--
		} else if alpha == UCS2 && isHighSurrogate(data[2*(end-1)]) {
			end--
		}
		cuts = append(cuts, end)
		if len(cuts) > MaxSegments {
			return nil, fmt.Errorf("coding: %w: %d %s need more than %d segments", ErrTooLong, units, unitName(alpha), MaxSegments)
		}
		start = end
	}
	total := uint8(len(cuts))
	fill := 0
	if packed {
		fill = FillBits(udhLen)
	}
	res.Segments = make([]Segment, len(cuts))
	start := 0
	for i, end := range cuts {
		seq := uint8(i + 1)
		chunk := data[start*unitSize : end*unitSize : end*unitSize]
		seg := Segment{Seq: seq, Total: total, Ref: ref, Data: chunk, Units: end - start, FillBits: fill}
		switch opt.Method {
		case ConcatUDH8:
			seg.UDH = ConcatUDH8Header(uint8(ref), total, seq)
		case ConcatUDH16:
			seg.UDH = ConcatUDH16Header(ref, total, seq)
		}
		if packed {
			seg.Data = PackSeptets(chunk, fill)
		}
		res.Segments[i] = seg
		start = end
	}
	return res, nil
}

func isHighSurrogate(hiOctet byte) bool { return hiOctet >= 0xD8 && hiOctet <= 0xDB }

func unitName(alpha DataCoding) string {
	switch alpha {
	case Default:
		return "septets"
	case UCS2:
		return "UTF-16 code units"
	}
	return "octets"
}
