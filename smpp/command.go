package smpp

import "fmt"

// CommandID is the command_id field of an SMPP PDU (SMPP 3.4 section 5.1.2).
// A response has the request's id with bit 31 set.
type CommandID uint32

// Command ids of SMPP 3.4 table 5-1.
const (
	GenericNackID         CommandID = 0x80000000
	BindReceiverID        CommandID = 0x00000001
	BindReceiverRespID    CommandID = 0x80000001
	BindTransmitterID     CommandID = 0x00000002
	BindTransmitterRespID CommandID = 0x80000002
	QuerySMID             CommandID = 0x00000003
	QuerySMRespID         CommandID = 0x80000003
	SubmitSMID            CommandID = 0x00000004
	SubmitSMRespID        CommandID = 0x80000004
	DeliverSMID           CommandID = 0x00000005
	DeliverSMRespID       CommandID = 0x80000005
	UnbindID              CommandID = 0x00000006
	UnbindRespID          CommandID = 0x80000006
	ReplaceSMID           CommandID = 0x00000007
	ReplaceSMRespID       CommandID = 0x80000007
	CancelSMID            CommandID = 0x00000008
	CancelSMRespID        CommandID = 0x80000008
	BindTransceiverID     CommandID = 0x00000009
	BindTransceiverRespID CommandID = 0x80000009
	OutbindID             CommandID = 0x0000000B
	EnquireLinkID         CommandID = 0x00000015
	EnquireLinkRespID     CommandID = 0x80000015
	SubmitMultiID         CommandID = 0x00000021
	SubmitMultiRespID     CommandID = 0x80000021
	AlertNotificationID   CommandID = 0x00000102
	DataSMID              CommandID = 0x00000103
	DataSMRespID          CommandID = 0x80000103
)

var commandNames = map[CommandID]string{
	GenericNackID:         "generic_nack",
	BindReceiverID:        "bind_receiver",
	BindReceiverRespID:    "bind_receiver_resp",
	BindTransmitterID:     "bind_transmitter",
	BindTransmitterRespID: "bind_transmitter_resp",
	QuerySMID:             "query_sm",
	QuerySMRespID:         "query_sm_resp",
	SubmitSMID:            "submit_sm",
	SubmitSMRespID:        "submit_sm_resp",
	DeliverSMID:           "deliver_sm",
	DeliverSMRespID:       "deliver_sm_resp",
	UnbindID:              "unbind",
	UnbindRespID:          "unbind_resp",
	ReplaceSMID:           "replace_sm",
	ReplaceSMRespID:       "replace_sm_resp",
	CancelSMID:            "cancel_sm",
	CancelSMRespID:        "cancel_sm_resp",
	BindTransceiverID:     "bind_transceiver",
	BindTransceiverRespID: "bind_transceiver_resp",
	OutbindID:             "outbind",
	EnquireLinkID:         "enquire_link",
	EnquireLinkRespID:     "enquire_link_resp",
	SubmitMultiID:         "submit_multi",
	SubmitMultiRespID:     "submit_multi_resp",
	AlertNotificationID:   "alert_notification",
	DataSMID:              "data_sm",
	DataSMRespID:          "data_sm_resp",
}

// String is the specification's name, such as "submit_sm", or the id in hex
// for an unknown command.
func (c CommandID) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return fmt.Sprintf("command_id 0x%08X", uint32(c))
}

// Known reports whether c is a command of SMPP 3.4.
func (c CommandID) Known() bool {
	_, ok := commandNames[c]
	return ok
}

// IsResponse reports whether c is a response (bit 31 set). generic_nack is a
// response.
func (c CommandID) IsResponse() bool { return c&0x80000000 != 0 }

// Response is the command id of the response to request c. It is only
// meaningful for requests that have a response: every request but outbind
// and alert_notification.
func (c CommandID) Response() CommandID { return c | 0x80000000 }

// HasResponse reports whether a request of this command expects a response.
func (c CommandID) HasResponse() bool {
	return !c.IsResponse() && c != OutbindID && c != AlertNotificationID
}

// BindType is the kind of bind of a session.
type BindType uint8

// Bind types.
const (
	BindTransmitter BindType = iota + 1
	BindReceiver
	BindTransceiver
)

func (b BindType) String() string {
	switch b {
	case BindTransmitter:
		return "transmitter"
	case BindReceiver:
		return "receiver"
	case BindTransceiver:
		return "transceiver"
	}
	return fmt.Sprintf("BindType(%d)", uint8(b))
}

// CommandID is the command id of a bind request of this type.
func (b BindType) CommandID() CommandID {
	switch b {
	case BindTransmitter:
		return BindTransmitterID
	case BindReceiver:
		return BindReceiverID
	case BindTransceiver:
		return BindTransceiverID
	}
	return 0
}

// CanSend reports whether a session bound this way may submit messages.
func (b BindType) CanSend() bool { return b == BindTransmitter || b == BindTransceiver }

// CanReceive reports whether a session bound this way receives deliver_sm.
func (b BindType) CanReceive() bool { return b == BindReceiver || b == BindTransceiver }

// BindTypeOf gives the bind type of a bind request or response command id.
func BindTypeOf(c CommandID) (BindType, bool) {
	switch c &^ 0x80000000 {
	case BindTransmitterID:
		return BindTransmitter, true
	case BindReceiverID:
		return BindReceiver, true
	case BindTransceiverID:
		return BindTransceiver, true
	}
	return 0, false
}
