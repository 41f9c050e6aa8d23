package smpp

import (
	"errors"
	"fmt"

	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

// Receipt is a delivery receipt read from a deliver_sm (or data_sm): the
// Appendix B text where there is one, with the receipted_message_id and
// message_state parameters taking precedence over it.
type Receipt struct {
	dlr.Receipt
	// NetworkErrorType and NetworkErrorCode come from network_error_code.
	NetworkErrorType uint8
	NetworkErrorCode uint16
	HasNetworkError  bool
	// FromTLV reports whether the id and state came from the parameters.
	FromTLV bool
}

// ErrNotReceipt is returned by ParseReceipt for a deliver_sm that is not a
// delivery receipt.
var ErrNotReceipt = errors.New("smpp: not a delivery receipt")

// ParseReceipt reads the delivery receipt carried by p, a *DeliverSM or a
// *DataSM. It fails with ErrNotReceipt when the esm_class does not mark a
// receipt and neither the parameters nor the text look like one, and for
// any other PDU. The text is read from short_message, or from
// message_payload when short_message is empty (always, for data_sm), and
// decoded per data_coding: UCS-2, Latin-1 and IA5 are decoded; the SMSC
// default alphabet (0) and the rest are read as they are, since SMSCs
// write receipt text in ASCII there.
func ParseReceipt(p PDU) (Receipt, error) {
	var r Receipt
	var text []byte
	var opts Options
	var esm, dc byte
	switch m := p.(type) {
	case *DeliverSM:
		text, opts, esm, dc = m.ShortMessage, m.Options, m.ESMClass, m.DataCoding
	case *DataSM:
		opts, esm, dc = m.Options, m.ESMClass, m.DataCoding
	default:
		return Receipt{}, fmt.Errorf("%w: %s", ErrNotReceipt, p.CommandID())
	}
	if len(text) == 0 {
		text, _ = opts.Get(TagMessagePayload)
	}
	switch alpha := coding.DataCoding(dc).Alphabet(); alpha {
	case coding.UCS2, coding.Latin1, coding.IA5:
		if s, err := coding.Decode(text, alpha); err == nil {
			text = []byte(s)
		}
	}
	var perr error
	r.Receipt, perr = dlr.ParseBytes(text)
	id, hasID := opts.ReceiptedMessageID()
	st, hasState := opts.MessageState()
	if hasState && st.Stat() == "" {
		// 0 or a value beyond SMPP 3.4 section 5.2.28 (1 to 8, and the
		// 5.0 SKIPPED): no state that could win over the text.
		hasState = false
	}
	if hasID && id != "" {
		r.ID = id
		r.FromTLV = true
	}
	if hasState {
		r.State = st
		// Stat follows the winning state unless the text's word already
		// says the same (kept verbatim then, e.g. "FAILED").
		if ps, ok := dlr.ParseStat(r.Stat); !ok || ps != st {
			r.Stat = st.Stat()
		}
		r.FromTLV = true
	}
	if t, c, ok := opts.NetworkErrorCode(); ok {
		r.NetworkErrorType, r.NetworkErrorCode, r.HasNetworkError = t, c, true
	}
	if r.ID == "" || (perr != nil && !hasState) {
		if t := esm & ESMClassTypeMask; t != ESMClassDeliveryReceipt && t != ESMClassIntermediateNotify && !r.FromTLV {
			return Receipt{}, ErrNotReceipt
		}
		if r.ID == "" {
			return Receipt{}, fmt.Errorf("%w: no receipted_message_id and no id in the text", ErrNotReceipt)
		}
	}
	return r, nil
}

// ReceiptDeliverSM builds the deliver_sm an SMSC sends as the receipt of a
// message: esm_class 0x04, the Appendix B text, and the receipted_message_id
// and message_state parameters. textID is the id written in the text (some
// SMSCs use another base there than in the parameter); empty means id.
func ReceiptDeliverSM(id, textID string, r dlr.Receipt) *DeliverSM {
	if textID == "" {
		textID = id
	}
	r.ID = textID
	p := &DeliverSM{ESMClass: ESMClassDeliveryReceipt, ShortMessage: []byte(dlr.Format(r))}
	if len(p.ShortMessage) > MaxShortMessage {
		p.ShortMessage = p.ShortMessage[:MaxShortMessage]
	}
	p.Options.SetCString(TagReceiptedMessageID, id)
	p.Options.SetUint(TagMessageState, uint32(r.State))
	return p
}

// SplitSubmit turns text into the submit_sm PDUs that carry it, copying
// the addressing and flags of tmpl into each: one PDU when the text fits,
// else one per segment with a UDH (esm_class UDHI set) or the sar_*
// parameters, or a single PDU with message_payload, as opt.Method says.
// data_coding is set from the chosen coding.
func SplitSubmit(tmpl *SubmitSM, text string, opt coding.SplitOptions) ([]*SubmitSM, error) {
	sr, err := coding.Split(text, opt)
	if err != nil {
		return nil, err
	}
	out := make([]*SubmitSM, 0, len(sr.Segments))
	for _, seg := range sr.Segments {
		p := cloneSubmit(tmpl)
		p.DataCoding = byte(sr.Coding)
		if sr.Method == coding.ConcatPayload && !fitsOne(text, opt) {
			p.ShortMessage = nil
			p.Options.Set(TagMessagePayload, seg.ShortMessage())
		} else {
			p.ShortMessage = seg.ShortMessage()
		}
		if seg.UDH != nil {
			p.ESMClass |= ESMClassUDHI
		}
		if sr.Method == coding.ConcatSAR && seg.Total > 1 {
			p.Options.SetSAR(SAR{Ref: seg.Ref, Total: seg.Total, Seq: seg.Seq})
		}
		out = append(out, p)
	}
	return out, nil
}

func cloneSubmit(t *SubmitSM) *SubmitSM {
	p := *t
	p.Header = Header{}
	p.arena = nil
	p.ShortMessage = nil
	p.Options = append(Options(nil), t.Options...)
	return &p
}

// Part is what one short message says about the concatenated message it
// belongs to.
type Part struct {
	Ref   uint16
	Total uint8
	Seq   uint8
	Data  []byte // the user data without the UDH (still packed, if it was)
	UDH   *coding.UDH
}

// MessagePart reads the concatenation information of a submit_sm or
// deliver_sm body: a concatenation IE in the UDH (esm_class UDHI), else the
// sar_* parameters. ok is false for a message that stands alone; its Data is
// then the whole message (message_payload when short_message is empty).
func MessagePart(esmClass byte, shortMessage []byte, opts Options) (Part, bool, error) {
	data := shortMessage
	if len(data) == 0 {
		if pl, ok := opts.Get(TagMessagePayload); ok {
			data = pl
		}
	}
	p := Part{Data: data}
	if esmClass&ESMClassUDHI != 0 {
		u, rest, err := coding.ParseUDH(data)
		if err != nil {
			return p, false, err
		}
		p.UDH, p.Data = &u, rest
		if ci, ok := u.Concat(); ok && ci.Total > 1 {
			p.Ref, p.Total, p.Seq = ci.Ref, ci.Total, ci.Seq
			return p, true, nil
		}
	}
	if s, ok := opts.SAR(); ok && s.Total > 1 && s.Seq >= 1 && s.Seq <= s.Total {
		p.Ref, p.Total, p.Seq = s.Ref, s.Total, s.Seq
		return p, true, nil
	}
	return p, false, nil
}

// fitsOne reports whether text fits in one short message in the coding opt
// chooses.
func fitsOne(text string, opt coding.SplitOptions) bool {
	opt.Method = coding.ConcatUDH8
	sr, err := coding.Split(text, opt)
	return err == nil && len(sr.Segments) == 1
}
