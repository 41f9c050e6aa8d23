package smpp

import (
	"encoding/binary"
	"fmt"

	"github.com/otpd/otpd/smpp/dlr"
)

// Tag is the tag of an optional parameter (TLV), SMPP 3.4 section 5.3.
type Tag uint16

// Optional parameter tags of SMPP 3.4 table 5-3 (section 5.3.2).
const (
	TagDestAddrSubunit          Tag = 0x0005
	TagDestNetworkType          Tag = 0x0006
	TagDestBearerType           Tag = 0x0007
	TagDestTelematicsID         Tag = 0x0008
	TagSourceAddrSubunit        Tag = 0x000D
	TagSourceNetworkType        Tag = 0x000E
	TagSourceBearerType         Tag = 0x000F
	TagSourceTelematicsID       Tag = 0x0010
	TagQosTimeToLive            Tag = 0x0017
	TagPayloadType              Tag = 0x0019
	TagAdditionalStatusInfoText Tag = 0x001D
	TagReceiptedMessageID       Tag = 0x001E
	TagMsMsgWaitFacilities      Tag = 0x0030
	TagPrivacyIndicator         Tag = 0x0201
	TagSourceSubaddress         Tag = 0x0202
	TagDestSubaddress           Tag = 0x0203
	TagUserMessageReference     Tag = 0x0204
	TagUserResponseCode         Tag = 0x0205
	TagSourcePort               Tag = 0x020A
	TagDestinationPort          Tag = 0x020B
	TagSarMsgRefNum             Tag = 0x020C
	TagLanguageIndicator        Tag = 0x020D
	TagSarTotalSegments         Tag = 0x020E
	TagSarSegmentSeqnum         Tag = 0x020F
	TagScInterfaceVersion       Tag = 0x0210
	TagCallbackNumPresInd       Tag = 0x0302
	TagCallbackNumAtag          Tag = 0x0303
	TagNumberOfMessages         Tag = 0x0304
	TagCallbackNum              Tag = 0x0381
	TagDpfResult                Tag = 0x0420
	TagSetDpf                   Tag = 0x0421
	TagMsAvailabilityStatus     Tag = 0x0422
	TagNetworkErrorCode         Tag = 0x0423
	TagMessagePayload           Tag = 0x0424
	TagDeliveryFailureReason    Tag = 0x0425
	TagMoreMessagesToSend       Tag = 0x0426
	TagMessageState             Tag = 0x0427
	TagUssdServiceOp            Tag = 0x0501
	TagDisplayTime              Tag = 0x1201
	TagSmsSignal                Tag = 0x1203
	TagMsValidity               Tag = 0x1204
	TagAlertOnMessageDelivery   Tag = 0x130C
	TagItsReplyType             Tag = 0x1380
	TagItsSessionInfo           Tag = 0x1383
)

// TLVType is the type of a standard optional parameter's value.
type TLVType uint8

// Value types of optional parameters.
const (
	TLVOctets  TLVType = iota // octet string of MinLen..MaxLen octets
	TLVInt                    // unsigned big-endian integer of exactly MinLen octets
	TLVCString                // C-octet string, at most MaxLen octets with its NUL
	TLVEmpty                  // no value (MinLen..MaxLen octets, ignored)
)

// TagInfo describes a standard optional parameter.
type TagInfo struct {
	Name   string
	Type   TLVType
	MinLen int
	MaxLen int
}

var tagTable = map[Tag]TagInfo{
	TagDestAddrSubunit:          {"dest_addr_subunit", TLVInt, 1, 1},
	TagDestNetworkType:          {"dest_network_type", TLVInt, 1, 1},
	TagDestBearerType:           {"dest_bearer_type", TLVInt, 1, 1},
	TagDestTelematicsID:         {"dest_telematics_id", TLVInt, 2, 2},
	TagSourceAddrSubunit:        {"source_addr_subunit", TLVInt, 1, 1},
	TagSourceNetworkType:        {"source_network_type", TLVInt, 1, 1},
	TagSourceBearerType:         {"source_bearer_type", TLVInt, 1, 1},
	TagSourceTelematicsID:       {"source_telematics_id", TLVInt, 1, 1},
	TagQosTimeToLive:            {"qos_time_to_live", TLVInt, 4, 4},
	TagPayloadType:              {"payload_type", TLVInt, 1, 1},
	TagAdditionalStatusInfoText: {"additional_status_info_text", TLVCString, 1, 256},
	TagReceiptedMessageID:       {"receipted_message_id", TLVCString, 1, 65},
	TagMsMsgWaitFacilities:      {"ms_msg_wait_facilities", TLVInt, 1, 1},
	TagPrivacyIndicator:         {"privacy_indicator", TLVInt, 1, 1},
	TagSourceSubaddress:         {"source_subaddress", TLVOctets, 2, 23},
	TagDestSubaddress:           {"dest_subaddress", TLVOctets, 2, 23},
	TagUserMessageReference:     {"user_message_reference", TLVInt, 2, 2},
	TagUserResponseCode:         {"user_response_code", TLVInt, 1, 1},
	TagSourcePort:               {"source_port", TLVInt, 2, 2},
	TagDestinationPort:          {"destination_port", TLVInt, 2, 2},
	TagSarMsgRefNum:             {"sar_msg_ref_num", TLVInt, 2, 2},
	TagLanguageIndicator:        {"language_indicator", TLVInt, 1, 1},
	TagSarTotalSegments:         {"sar_total_segments", TLVInt, 1, 1},
	TagSarSegmentSeqnum:         {"sar_segment_seqnum", TLVInt, 1, 1},
	TagScInterfaceVersion:       {"sc_interface_version", TLVInt, 1, 1},
	TagCallbackNumPresInd:       {"callback_num_pres_ind", TLVInt, 1, 1},
	TagCallbackNumAtag:          {"callback_num_atag", TLVOctets, 0, 65},
	TagNumberOfMessages:         {"number_of_messages", TLVInt, 1, 1},
	TagCallbackNum:              {"callback_num", TLVOctets, 4, 19},
	TagDpfResult:                {"dpf_result", TLVInt, 1, 1},
	TagSetDpf:                   {"set_dpf", TLVInt, 1, 1},
	TagMsAvailabilityStatus:     {"ms_availability_status", TLVInt, 1, 1},
	TagNetworkErrorCode:         {"network_error_code", TLVOctets, 3, 3},
	TagMessagePayload:           {"message_payload", TLVOctets, 0, 0xFFFF},
	TagDeliveryFailureReason:    {"delivery_failure_reason", TLVInt, 1, 1},
	TagMoreMessagesToSend:       {"more_messages_to_send", TLVInt, 1, 1},
	TagMessageState:             {"message_state", TLVInt, 1, 1},
	TagUssdServiceOp:            {"ussd_service_op", TLVOctets, 1, 1},
	TagDisplayTime:              {"display_time", TLVInt, 1, 1},
	TagSmsSignal:                {"sms_signal", TLVInt, 2, 2},
	TagMsValidity:               {"ms_validity", TLVInt, 1, 1},
	// No value in 3.4; one octet (the alert type) in 5.0, which peers such
	// as the npm smpp package send: both are accepted.
	TagAlertOnMessageDelivery: {"alert_on_message_delivery", TLVEmpty, 0, 1},
	TagItsReplyType:           {"its_reply_type", TLVInt, 1, 1},
	TagItsSessionInfo:         {"its_session_info", TLVOctets, 2, 2},
}

// Info describes a standard tag; ok is false for a tag not in SMPP 3.4.
func (t Tag) Info() (TagInfo, bool) {
	i, ok := tagTable[t]
	return i, ok
}

// String is the specification's name of the tag, or its value in hex.
func (t Tag) String() string {
	if i, ok := tagTable[t]; ok {
		return i.Name
	}
	return fmt.Sprintf("tag 0x%04X", uint16(t))
}

// TLV is one optional parameter. Value holds the raw octets as they are on
// the wire; the typed accessors of Options interpret it.
type TLV struct {
	Tag   Tag
	Value []byte
}

// Validate checks the value's length (and for C-octet strings its NUL)
// against the specification. Unknown tags are always valid.
func (t TLV) Validate() error {
	i, ok := tagTable[t.Tag]
	if !ok {
		return nil
	}
	n := len(t.Value)
	if reason := tlvLenProblem(t.Tag, n); reason != "" {
		return &TLVError{Tag: t.Tag, Reason: reason}
	}
	if i.Type == TLVCString && t.Value[n-1] != 0 {
		return &TLVError{Tag: t.Tag, Reason: "C-octet string without its NUL terminator"}
	}
	return nil
}

// TLVError says why an optional parameter's value is not what its type
// demands.
type TLVError struct {
	Tag    Tag
	Reason string
}

func (e *TLVError) Error() string {
	return fmt.Sprintf("smpp: optional parameter %s: %s", e.Tag, e.Reason)
}

// Unwrap gives ESME_RINVPARLEN, the status that answers such a parameter.
func (e *TLVError) Unwrap() error { return ESME_RINVPARLEN }

// Options is the list of optional parameters of a PDU, in wire order.
// Unknown tags are kept as they came.
type Options []TLV

// Get returns the raw value of the first parameter with this tag.
func (o Options) Get(t Tag) ([]byte, bool) {
	for i := range o {
		if o[i].Tag == t {
			return o[i].Value, true
		}
	}
	return nil, false
}

// Has reports whether a parameter with this tag is present.
func (o Options) Has(t Tag) bool {
	_, ok := o.Get(t)
	return ok
}

// Set replaces the value of the first parameter with this tag, or appends
// one. The value is used as is (not copied).
func (o *Options) Set(t Tag, v []byte) {
	for i := range *o {
		if (*o)[i].Tag == t {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, TLV{Tag: t, Value: v})
}

// Del removes every parameter with this tag.
func (o *Options) Del(t Tag) {
	out := (*o)[:0]
	for _, p := range *o {
		if p.Tag != t {
			out = append(out, p)
		}
	}
	*o = out
}

// Uint reads an integer parameter of 1, 2 or 4 octets. It fails when the
// parameter is missing (ok false) or its length is not that of the tag's
// type (err).
func (o Options) Uint(t Tag) (v uint32, ok bool, err error) {
	b, ok := o.Get(t)
	if !ok {
		return 0, false, nil
	}
	if i, known := tagTable[t]; known && i.Type == TLVInt && len(b) != i.MinLen {
		return 0, true, &TLVError{Tag: t, Reason: fmt.Sprintf("length %d, want %d", len(b), i.MinLen)}
	}
	switch len(b) {
	case 1:
		return uint32(b[0]), true, nil
	case 2:
		return uint32(binary.BigEndian.Uint16(b)), true, nil
	case 4:
		return binary.BigEndian.Uint32(b), true, nil
	}
	return 0, true, &TLVError{Tag: t, Reason: fmt.Sprintf("length %d is not that of an integer", len(b))}
}

// SetUint sets an integer parameter with the width the specification gives
// its tag (1 octet for unknown tags unless v needs more: then 2 or 4).
func (o *Options) SetUint(t Tag, v uint32) {
	n := 1
	if i, ok := tagTable[t]; ok && i.Type == TLVInt {
		n = i.MinLen
	} else if v > 0xFFFF {
		n = 4
	} else if v > 0xFF {
		n = 2
	}
	b := make([]byte, n)
	switch n {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.BigEndian.PutUint16(b, uint16(v))
	default:
		binary.BigEndian.PutUint32(b, v)
	}
	o.Set(t, b)
}

// CString reads a C-octet string parameter. Real SMSCs sometimes leave out
// the NUL; the value is then taken whole. Octets after a NUL are ignored.
func (o Options) CString(t Tag) (string, bool) {
	b, ok := o.Get(t)
	if !ok {
		return "", false
	}
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return string(b), true
}

// SetCString sets a C-octet string parameter, adding the NUL.
func (o *Options) SetCString(t Tag, s string) {
	b := make([]byte, len(s)+1)
	copy(b, s)
	o.Set(t, b)
}

// ReceiptedMessageID is the receipted_message_id of a delivery receipt.
func (o Options) ReceiptedMessageID() (string, bool) { return o.CString(TagReceiptedMessageID) }

// MessageState is the message_state parameter of a delivery receipt.
func (o Options) MessageState() (MessageState, bool) {
	v, ok, err := o.Uint(TagMessageState)
	if !ok || err != nil {
		return 0, false
	}
	return MessageState(v), true
}

// NetworkErrorCode is the network_error_code parameter: the network type
// (1 ANSI-136, 2 IS-95, 3 GSM, ...) and the error code.
func (o Options) NetworkErrorCode() (netType uint8, code uint16, ok bool) {
	b, ok := o.Get(TagNetworkErrorCode)
	if !ok || len(b) != 3 {
		return 0, 0, false
	}
	return b[0], binary.BigEndian.Uint16(b[1:]), true
}

// SetNetworkErrorCode sets the network_error_code parameter.
func (o *Options) SetNetworkErrorCode(netType uint8, code uint16) {
	o.Set(TagNetworkErrorCode, []byte{netType, byte(code >> 8), byte(code)})
}

// SAR is the segmentation and reassembly information of the sar_* parameters.
type SAR struct {
	Ref   uint16 // sar_msg_ref_num
	Total uint8  // sar_total_segments
	Seq   uint8  // sar_segment_seqnum, 1-based
}

// SAR reads the three sar_* parameters; ok is false unless all three are
// present and well formed.
func (o Options) SAR() (SAR, bool) {
	r, ok1, e1 := o.Uint(TagSarMsgRefNum)
	t, ok2, e2 := o.Uint(TagSarTotalSegments)
	s, ok3, e3 := o.Uint(TagSarSegmentSeqnum)
	if !ok1 || !ok2 || !ok3 || e1 != nil || e2 != nil || e3 != nil {
		return SAR{}, false
	}
	return SAR{Ref: uint16(r), Total: uint8(t), Seq: uint8(s)}, true
}

// SetSAR sets the three sar_* parameters.
func (o *Options) SetSAR(s SAR) {
	o.SetUint(TagSarMsgRefNum, uint32(s.Ref))
	o.SetUint(TagSarTotalSegments, uint32(s.Total))
	o.SetUint(TagSarSegmentSeqnum, uint32(s.Seq))
}

// MessageState is the state of a short message, SMPP 3.4 section 5.2.28,
// carried in query_sm_resp and the message_state parameter. It is dlr.State.
type MessageState = dlr.State

// Message states.
const (
	StateEnroute       = dlr.Enroute
	StateDelivered     = dlr.Delivered
	StateExpired       = dlr.Expired
	StateDeleted       = dlr.Deleted
	StateUndeliverable = dlr.Undeliverable
	StateAccepted      = dlr.Accepted
	StateUnknown       = dlr.Unknown
	StateRejected      = dlr.Rejected
)
