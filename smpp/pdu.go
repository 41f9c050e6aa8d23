package smpp

import (
	"encoding/binary"
	"fmt"
)

// Header is the 16-octet header every PDU starts with (SMPP 3.4 section
// 3.2). It is embedded in every PDU struct.
type Header struct {
	Length   uint32        // command_length: set when decoding and encoding
	Command  CommandID     // command_id: set when decoding and encoding
	Status   CommandStatus // command_status: zero in requests
	Sequence uint32        // sequence_number: 1 to 0x7FFFFFFF
}

// Head returns the header itself; through embedding it gives every PDU
// struct access to its header.
func (h *Header) Head() *Header { return h }

// PDU is one SMPP protocol data unit. The types of this package that
// implement it are the PDUs of SMPP 3.4 section 4.
type PDU interface {
	// Head is the PDU's header.
	Head() *Header
	// CommandID is the command_id this PDU is sent with.
	CommandID() CommandID
	appendBody(b []byte) ([]byte, error)
	decodeBody(d *decoder)
}

// ESM class bits (SMPP 3.4 section 5.2.12).
const (
	ESMClassDefaultMode     = 0x00
	ESMClassDatagramMode    = 0x01
	ESMClassForwardMode     = 0x02
	ESMClassStoreAndForward = 0x03
	ESMClassModeMask        = 0x03

	ESMClassDeliveryReceipt    = 0x04 // message type: SMSC delivery receipt
	ESMClassDeliveryAck        = 0x08
	ESMClassUserAck            = 0x10
	ESMClassConversationAbort  = 0x18
	ESMClassIntermediateNotify = 0x20
	ESMClassTypeMask           = 0x3C

	ESMClassUDHI      = 0x40 // short_message starts with a user data header
	ESMClassReplyPath = 0x80
)

// registered_delivery bits (SMPP 3.4 section 5.2.17).
const (
	RegisteredDeliveryNone      = 0x00
	RegisteredDeliveryAlways    = 0x01 // receipt on success and failure
	RegisteredDeliveryOnFailure = 0x02 // receipt on failure only
	RegisteredDeliveryMask      = 0x03
	RegisteredDeliverySMEAck    = 0x0C
	RegisteredDeliveryIntermed  = 0x10
)

// Type of number and numbering plan values (SMPP 3.4 section 5.2.5, 5.2.6).
const (
	TONUnknown       = 0x00
	TONInternational = 0x01
	TONNational      = 0x02
	TONNetwork       = 0x03
	TONSubscriber    = 0x04
	TONAlphanumeric  = 0x05
	TONAbbreviated   = 0x06

	NPIUnknown  = 0x00
	NPIISDN     = 0x01 // E.163/E.164
	NPIData     = 0x03
	NPITelex    = 0x04
	NPILandMob  = 0x06
	NPINational = 0x08
	NPIPrivate  = 0x09
	NPIERMES    = 0x0A
	NPIInternet = 0x0E
	NPIWAP      = 0x12
)

// Bind is bind_transmitter, bind_receiver or bind_transceiver (section 4.1),
// chosen by Type.
type Bind struct {
	Header
	Type             BindType
	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte
	AddrTON          byte
	AddrNPI          byte
	AddressRange     string
}

// CommandID implements PDU.
func (p *Bind) CommandID() CommandID { return p.Type.CommandID() }

func (p *Bind) appendBody(b []byte) (_ []byte, err error) {
	if b, err = appendCString(b, p.SystemID, MaxSystemID, "system_id", ESME_RINVSYSID, &p.Header); err != nil {
		return b, err
	}
	if b, err = appendCString(b, p.Password, MaxPassword, "password", ESME_RINVPASWD, &p.Header); err != nil {
		return b, err
	}
	if b, err = appendCString(b, p.SystemType, MaxSystemType, "system_type", ESME_RINVSYSTYP, &p.Header); err != nil {
		return b, err
	}
	b = append(b, p.InterfaceVersion, p.AddrTON, p.AddrNPI)
	return appendCString(b, p.AddressRange, MaxAddressRange, "address_range", ESME_RINVSRCADR, &p.Header)
}

func (p *Bind) decodeBody(d *decoder) {
	d.cstr(&p.SystemID, "system_id", MaxSystemID, ESME_RINVSYSID)
	d.cstr(&p.Password, "password", MaxPassword, ESME_RINVPASWD)
	d.cstr(&p.SystemType, "system_type", MaxSystemType, ESME_RINVSYSTYP)
	p.InterfaceVersion = d.u8("interface_version")
	p.AddrTON = d.u8("addr_ton")
	p.AddrNPI = d.u8("addr_npi")
	d.cstr(&p.AddressRange, "address_range", MaxAddressRange, ESME_RINVSRCADR)
	d.end()
}

// BindResp is bind_transmitter_resp, bind_receiver_resp or
// bind_transceiver_resp (section 4.1), chosen by Type.
type BindResp struct {
	Header
	Type     BindType
	SystemID string
	Options  Options // sc_interface_version
	arena    []byte
}

// CommandID implements PDU. It is 0 while Type is not a bind type, so that
// such a struct is neither encoded nor decoded as generic_nack (whose id is
// the response bit alone).
func (p *BindResp) CommandID() CommandID {
	if c := p.Type.CommandID(); c != 0 {
		return c.Response()
	}
	return 0
}

func (p *BindResp) appendBody(b []byte) (_ []byte, err error) {
	if b, err = appendCString(b, p.SystemID, MaxSystemID, "system_id", ESME_RINVSYSID, &p.Header); err != nil {
		return b, err
	}
	return appendTLVs(b, p.Options, &p.Header)
}

func (p *BindResp) decodeBody(d *decoder) {
	d.cstr(&p.SystemID, "system_id", MaxSystemID, ESME_RINVSYSID)
	p.Options = d.tlvs(p.Options, &p.arena)
}

// Outbind is outbind (section 4.1.7): the SMSC asks the ESME to bind.
type Outbind struct {
	Header
	SystemID string
	Password string
}

// CommandID implements PDU.
func (p *Outbind) CommandID() CommandID { return OutbindID }

func (p *Outbind) appendBody(b []byte) (_ []byte, err error) {
	if b, err = appendCString(b, p.SystemID, MaxSystemID, "system_id", ESME_RINVSYSID, &p.Header); err != nil {
		return b, err
	}
	return appendCString(b, p.Password, MaxPassword, "password", ESME_RINVPASWD, &p.Header)
}

func (p *Outbind) decodeBody(d *decoder) {
	d.cstr(&p.SystemID, "system_id", MaxSystemID, ESME_RINVSYSID)
	d.cstr(&p.Password, "password", MaxPassword, ESME_RINVPASWD)
	d.end()
}

// headerOnly is the body codec of PDUs that have no body.
type headerOnly struct{}

func (headerOnly) appendBody(b []byte) ([]byte, error) { return b, nil }
func (headerOnly) decodeBody(d *decoder)               { d.end() }

// Unbind is unbind (section 4.2.1).
type Unbind struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*Unbind) CommandID() CommandID { return UnbindID }

// UnbindResp is unbind_resp (section 4.2.2).
type UnbindResp struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*UnbindResp) CommandID() CommandID { return UnbindRespID }

// GenericNack is generic_nack (section 4.3): the answer to a PDU that could
// not be taken as what it claimed to be.
type GenericNack struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*GenericNack) CommandID() CommandID { return GenericNackID }

// UnknownPDU is a well-framed PDU whose command_id SMPP 3.4 does not
// define (a vendor's, say), kept whole as x/net/http2 keeps UnknownFrame:
// its header and raw body. A Handler sees an unknown request as one; the
// session answers it with generic_nack ESME_RINVCMDID unless the Handler
// returns a response of its own (another UnknownPDU, with the response
// command id). Sent by Session.Go, it is framed as it is.
type UnknownPDU struct {
	Header
	Body []byte
}

// CommandID implements PDU: the header's command id.
func (p *UnknownPDU) CommandID() CommandID { return p.Command }

func (p *UnknownPDU) appendBody(b []byte) ([]byte, error) { return append(b, p.Body...), nil }

func (p *UnknownPDU) decodeBody(d *decoder) {
	p.Body = append(p.Body[:0], d.b[d.off:]...)
	d.off = len(d.b)
}

// EnquireLink is enquire_link (section 4.11.1).
type EnquireLink struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*EnquireLink) CommandID() CommandID { return EnquireLinkID }

// EnquireLinkResp is enquire_link_resp (section 4.11.2).
type EnquireLinkResp struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*EnquireLinkResp) CommandID() CommandID { return EnquireLinkRespID }

// CancelSMResp is cancel_sm_resp (section 4.9.2).
type CancelSMResp struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*CancelSMResp) CommandID() CommandID { return CancelSMRespID }

// ReplaceSMResp is replace_sm_resp (section 4.10.2).
type ReplaceSMResp struct {
	Header
	headerOnly
}

// CommandID implements PDU.
func (*ReplaceSMResp) CommandID() CommandID { return ReplaceSMRespID }

// SubmitSM is submit_sm (section 4.4.1). DeliverSM has the same fields.
type SubmitSM struct {
	Header
	ServiceType          string
	SourceAddrTON        byte
	SourceAddrNPI        byte
	SourceAddr           string
	DestAddrTON          byte
	DestAddrNPI          byte
	DestinationAddr      string
	ESMClass             byte
	ProtocolID           byte
	PriorityFlag         byte
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	ReplaceIfPresentFlag byte
	DataCoding           byte
	SMDefaultMsgID       byte
	ShortMessage         []byte // at most 254 octets; sm_length is its length
	Options              Options
	arena                []byte
}

// CommandID implements PDU.
func (p *SubmitSM) CommandID() CommandID { return SubmitSMID }

func (p *SubmitSM) appendBody(b []byte) (_ []byte, err error) {
	h := &p.Header
	if b, err = appendCString(b, p.ServiceType, MaxServiceType, "service_type", ESME_RINVSERTYP, h); err != nil {
		return b, err
	}
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	if b, err = appendCString(b, p.SourceAddr, MaxAddr, "source_addr", ESME_RINVSRCADR, h); err != nil {
		return b, err
	}
	b = append(b, p.DestAddrTON, p.DestAddrNPI)
	if b, err = appendCString(b, p.DestinationAddr, MaxAddr, "destination_addr", ESME_RINVDSTADR, h); err != nil {
		return b, err
	}
	b = append(b, p.ESMClass, p.ProtocolID, p.PriorityFlag)
	if b, err = appendTime(b, p.ScheduleDeliveryTime, "schedule_delivery_time", ESME_RINVSCHED, h); err != nil {
		return b, err
	}
	if b, err = appendTime(b, p.ValidityPeriod, "validity_period", ESME_RINVEXPIRY, h); err != nil {
		return b, err
	}
	b = append(b, p.RegisteredDelivery, p.ReplaceIfPresentFlag, p.DataCoding, p.SMDefaultMsgID)
	if b, err = appendShortMessage(b, p.ShortMessage, h); err != nil {
		return b, err
	}
	return appendTLVs(b, p.Options, h)
}

func (p *SubmitSM) decodeBody(d *decoder) {
	d.cstr(&p.ServiceType, "service_type", MaxServiceType, ESME_RINVSERTYP)
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxAddr, ESME_RINVSRCADR)
	p.DestAddrTON = d.u8("dest_addr_ton")
	p.DestAddrNPI = d.u8("dest_addr_npi")
	d.cstr(&p.DestinationAddr, "destination_addr", MaxAddr, ESME_RINVDSTADR)
	p.ESMClass = d.u8("esm_class")
	p.ProtocolID = d.u8("protocol_id")
	p.PriorityFlag = d.u8("priority_flag")
	d.time(&p.ScheduleDeliveryTime, "schedule_delivery_time", ESME_RINVSCHED)
	d.time(&p.ValidityPeriod, "validity_period", ESME_RINVEXPIRY)
	p.RegisteredDelivery = d.u8("registered_delivery")
	p.ReplaceIfPresentFlag = d.u8("replace_if_present_flag")
	p.DataCoding = d.u8("data_coding")
	p.SMDefaultMsgID = d.u8("sm_default_msg_id")
	p.ShortMessage = d.shortMessage(p.ShortMessage)
	p.Options = d.tlvs(p.Options, &p.arena)
}

// DeliverSM is deliver_sm (section 4.6.1): a mobile-originated message or a
// delivery receipt from the SMSC. Its fields are those of SubmitSM.
type DeliverSM SubmitSM

// CommandID implements PDU.
func (p *DeliverSM) CommandID() CommandID { return DeliverSMID }

func (p *DeliverSM) appendBody(b []byte) ([]byte, error) { return (*SubmitSM)(p).appendBody(b) }
func (p *DeliverSM) decodeBody(d *decoder)               { (*SubmitSM)(p).decodeBody(d) }

// IsReceipt reports whether the esm_class marks this deliver_sm as an SMSC
// delivery receipt (or an intermediate notification).
func (p *DeliverSM) IsReceipt() bool { return isReceiptClass(p.ESMClass) }

// IsReceipt reports whether the esm_class marks this data_sm as an SMSC
// delivery receipt (or an intermediate notification).
func (p *DataSM) IsReceipt() bool { return isReceiptClass(p.ESMClass) }

func isReceiptClass(esmClass byte) bool {
	t := esmClass & ESMClassTypeMask
	return t == ESMClassDeliveryReceipt || t == ESMClassIntermediateNotify
}

// messageIDResp is the body of submit_sm_resp and deliver_sm_resp: a
// message_id, and optional parameters that SMPP 3.4 does not define there but
// later versions and some SMSCs send (kept for a faithful round trip).
type messageIDResp struct {
	Header
	MessageID string
	Options   Options
	arena     []byte
}

func (p *messageIDResp) appendBody(b []byte) (_ []byte, err error) {
	if b, err = appendCString(b, p.MessageID, MaxMessageID, "message_id", ESME_RINVMSGID, &p.Header); err != nil {
		return b, err
	}
	return appendTLVs(b, p.Options, &p.Header)
}

func (p *messageIDResp) decodeBody(d *decoder) {
	d.cstr(&p.MessageID, "message_id", MaxMessageID, ESME_RINVMSGID)
	p.Options = d.tlvs(p.Options, &p.arena)
}

// SubmitSMResp is submit_sm_resp (section 4.4.2).
type SubmitSMResp messageIDResp

// CommandID implements PDU.
func (p *SubmitSMResp) CommandID() CommandID { return SubmitSMRespID }

func (p *SubmitSMResp) appendBody(b []byte) ([]byte, error) {
	return (*messageIDResp)(p).appendBody(b)
}
func (p *SubmitSMResp) decodeBody(d *decoder) { (*messageIDResp)(p).decodeBody(d) }

// DeliverSMResp is deliver_sm_resp (section 4.6.2). MessageID is unused by
// the specification and sent empty.
type DeliverSMResp messageIDResp

// CommandID implements PDU.
func (p *DeliverSMResp) CommandID() CommandID { return DeliverSMRespID }

func (p *DeliverSMResp) appendBody(b []byte) ([]byte, error) {
	return (*messageIDResp)(p).appendBody(b)
}
func (p *DeliverSMResp) decodeBody(d *decoder) { (*messageIDResp)(p).decodeBody(d) }

// DataSMResp is data_sm_resp (section 4.7.2); its optional parameters
// (delivery_failure_reason, network_error_code, additional_status_info_text,
// dpf_result) are sent with error statuses too.
type DataSMResp messageIDResp

// CommandID implements PDU.
func (p *DataSMResp) CommandID() CommandID { return DataSMRespID }

func (p *DataSMResp) appendBody(b []byte) ([]byte, error) {
	return (*messageIDResp)(p).appendBody(b)
}
func (p *DataSMResp) decodeBody(d *decoder) { (*messageIDResp)(p).decodeBody(d) }

// DataSM is data_sm (section 4.7.1).
type DataSM struct {
	Header
	ServiceType        string
	SourceAddrTON      byte
	SourceAddrNPI      byte
	SourceAddr         string // at most 64 octets
	DestAddrTON        byte
	DestAddrNPI        byte
	DestinationAddr    string // at most 64 octets
	ESMClass           byte
	RegisteredDelivery byte
	DataCoding         byte
	Options            Options // message_payload carries the text
	arena              []byte
}

// CommandID implements PDU.
func (p *DataSM) CommandID() CommandID { return DataSMID }

func (p *DataSM) appendBody(b []byte) (_ []byte, err error) {
	h := &p.Header
	if b, err = appendCString(b, p.ServiceType, MaxServiceType, "service_type", ESME_RINVSERTYP, h); err != nil {
		return b, err
	}
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	if b, err = appendCString(b, p.SourceAddr, MaxDataSMAddr, "source_addr", ESME_RINVSRCADR, h); err != nil {
		return b, err
	}
	b = append(b, p.DestAddrTON, p.DestAddrNPI)
	if b, err = appendCString(b, p.DestinationAddr, MaxDataSMAddr, "destination_addr", ESME_RINVDSTADR, h); err != nil {
		return b, err
	}
	b = append(b, p.ESMClass, p.RegisteredDelivery, p.DataCoding)
	return appendTLVs(b, p.Options, h)
}

func (p *DataSM) decodeBody(d *decoder) {
	d.cstr(&p.ServiceType, "service_type", MaxServiceType, ESME_RINVSERTYP)
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxDataSMAddr, ESME_RINVSRCADR)
	p.DestAddrTON = d.u8("dest_addr_ton")
	p.DestAddrNPI = d.u8("dest_addr_npi")
	d.cstr(&p.DestinationAddr, "destination_addr", MaxDataSMAddr, ESME_RINVDSTADR)
	p.ESMClass = d.u8("esm_class")
	p.RegisteredDelivery = d.u8("registered_delivery")
	p.DataCoding = d.u8("data_coding")
	p.Options = d.tlvs(p.Options, &p.arena)
}

// DestAddress is one dest_address of submit_multi (section 4.5.1.1): an SME
// address (dest_flag 1) or, when DLName is set, a distribution list
// (dest_flag 2).
type DestAddress struct {
	DLName string // distribution list name; when set TON, NPI and Addr are not sent
	TON    byte
	NPI    byte
	Addr   string
}

// Destination flags of submit_multi.
const (
	DestFlagSMEAddress = 1
	DestFlagDistList   = 2
)

// SubmitMulti is submit_multi (section 4.5.1).
type SubmitMulti struct {
	Header
	ServiceType          string
	SourceAddrTON        byte
	SourceAddrNPI        byte
	SourceAddr           string
	Dests                []DestAddress // 1 to 254
	ESMClass             byte
	ProtocolID           byte
	PriorityFlag         byte
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	ReplaceIfPresentFlag byte
	DataCoding           byte
	SMDefaultMsgID       byte
	ShortMessage         []byte
	Options              Options
	arena                []byte
}

// MaxDests is the most destinations one submit_multi may carry.
const MaxDests = 254

// CommandID implements PDU.
func (p *SubmitMulti) CommandID() CommandID { return SubmitMultiID }

func (p *SubmitMulti) appendBody(b []byte) (_ []byte, err error) {
	h := &p.Header
	if b, err = appendCString(b, p.ServiceType, MaxServiceType, "service_type", ESME_RINVSERTYP, h); err != nil {
		return b, err
	}
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	if b, err = appendCString(b, p.SourceAddr, MaxAddr, "source_addr", ESME_RINVSRCADR, h); err != nil {
		return b, err
	}
	if len(p.Dests) == 0 || len(p.Dests) > MaxDests {
		return b, &PDUError{Header: *h, Field: "number_of_dests", Reason: fmt.Sprintf("%d destinations, want 1 to %d", len(p.Dests), MaxDests), Status: ESME_RINVNUMDESTS}
	}
	b = append(b, byte(len(p.Dests)))
	for _, da := range p.Dests {
		if da.DLName != "" {
			b = append(b, DestFlagDistList)
			if b, err = appendCString(b, da.DLName, MaxDLName, "dl_name", ESME_RINVDLNAME, h); err != nil {
				return b, err
			}
			continue
		}
		b = append(b, DestFlagSMEAddress, da.TON, da.NPI)
		if b, err = appendCString(b, da.Addr, MaxAddr, "destination_addr", ESME_RINVDSTADR, h); err != nil {
			return b, err
		}
	}
	b = append(b, p.ESMClass, p.ProtocolID, p.PriorityFlag)
	if b, err = appendTime(b, p.ScheduleDeliveryTime, "schedule_delivery_time", ESME_RINVSCHED, h); err != nil {
		return b, err
	}
	if b, err = appendTime(b, p.ValidityPeriod, "validity_period", ESME_RINVEXPIRY, h); err != nil {
		return b, err
	}
	b = append(b, p.RegisteredDelivery, p.ReplaceIfPresentFlag, p.DataCoding, p.SMDefaultMsgID)
	if b, err = appendShortMessage(b, p.ShortMessage, h); err != nil {
		return b, err
	}
	return appendTLVs(b, p.Options, h)
}

func (p *SubmitMulti) decodeBody(d *decoder) {
	d.cstr(&p.ServiceType, "service_type", MaxServiceType, ESME_RINVSERTYP)
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxAddr, ESME_RINVSRCADR)
	n := int(d.u8("number_of_dests"))
	if d.err == nil && (n == 0 || n > MaxDests) {
		d.fail("number_of_dests", fmt.Sprintf("%d, want 1 to %d", n, MaxDests), ESME_RINVNUMDESTS)
	}
	p.Dests = p.Dests[:0]
	for i := 0; i < n && d.err == nil; i++ {
		var da DestAddress
		switch f := d.u8("dest_flag"); f {
		case DestFlagSMEAddress:
			da.TON = d.u8("dest_addr_ton")
			da.NPI = d.u8("dest_addr_npi")
			d.cstr(&da.Addr, "destination_addr", MaxAddr, ESME_RINVDSTADR)
		case DestFlagDistList:
			d.cstr(&da.DLName, "dl_name", MaxDLName, ESME_RINVDLNAME)
			if d.err == nil && da.DLName == "" {
				d.fail("dl_name", "empty distribution list name", ESME_RINVDLNAME)
			}
		default:
			if d.err == nil {
				d.fail("dest_flag", fmt.Sprintf("value %d, want 1 (SME address) or 2 (distribution list)", f), ESME_RINVDESTFLAG)
			}
		}
		p.Dests = append(p.Dests, da)
	}
	p.ESMClass = d.u8("esm_class")
	p.ProtocolID = d.u8("protocol_id")
	p.PriorityFlag = d.u8("priority_flag")
	d.time(&p.ScheduleDeliveryTime, "schedule_delivery_time", ESME_RINVSCHED)
	d.time(&p.ValidityPeriod, "validity_period", ESME_RINVEXPIRY)
	p.RegisteredDelivery = d.u8("registered_delivery")
	p.ReplaceIfPresentFlag = d.u8("replace_if_present_flag")
	p.DataCoding = d.u8("data_coding")
	p.SMDefaultMsgID = d.u8("sm_default_msg_id")
	p.ShortMessage = d.shortMessage(p.ShortMessage)
	p.Options = d.tlvs(p.Options, &p.arena)
}

// UnsuccessSME is one entry of submit_multi_resp's unsuccess_sme list.
type UnsuccessSME struct {
	TON    byte
	NPI    byte
	Addr   string
	Status CommandStatus // error_status_code
}

// SubmitMultiResp is submit_multi_resp (section 4.5.2).
type SubmitMultiResp struct {
	Header
	MessageID string
	Unsuccess []UnsuccessSME
}

// CommandID implements PDU.
func (p *SubmitMultiResp) CommandID() CommandID { return SubmitMultiRespID }

func (p *SubmitMultiResp) appendBody(b []byte) (_ []byte, err error) {
	h := &p.Header
	if b, err = appendCString(b, p.MessageID, MaxMessageID, "message_id", ESME_RINVMSGID, h); err != nil {
		return b, err
	}
	if len(p.Unsuccess) > maxUnsuccessItems {
		return b, &PDUError{Header: *h, Field: "no_unsuccess", Reason: fmt.Sprintf("%d entries, at most %d", len(p.Unsuccess), maxUnsuccessItems), Status: ESME_RINVNUMDESTS}
	}
	b = append(b, byte(len(p.Unsuccess)))
	for _, u := range p.Unsuccess {
		b = append(b, u.TON, u.NPI)
		if b, err = appendCString(b, u.Addr, MaxAddr, "destination_addr", ESME_RINVDSTADR, h); err != nil {
			return b, err
		}
		b = appendU32(b, uint32(u.Status))
	}
	return b, nil
}

func (p *SubmitMultiResp) decodeBody(d *decoder) {
	d.cstr(&p.MessageID, "message_id", MaxMessageID, ESME_RINVMSGID)
	n := int(d.u8("no_unsuccess"))
	p.Unsuccess = p.Unsuccess[:0]
	for i := 0; i < n && d.err == nil; i++ {
		var u UnsuccessSME
		u.TON = d.u8("dest_addr_ton")
		u.NPI = d.u8("dest_addr_npi")
		d.cstr(&u.Addr, "destination_addr", MaxAddr, ESME_RINVDSTADR)
		u.Status = CommandStatus(d.u32("error_status_code"))
		p.Unsuccess = append(p.Unsuccess, u)
	}
	d.end()
}

// QuerySM is query_sm (section 4.8.1).
type QuerySM struct {
	Header
	MessageID     string
	SourceAddrTON byte
	SourceAddrNPI byte
	SourceAddr    string
}

// CommandID implements PDU.
func (p *QuerySM) CommandID() CommandID { return QuerySMID }

func (p *QuerySM) appendBody(b []byte) (_ []byte, err error) {
	if b, err = appendCString(b, p.MessageID, MaxMessageID, "message_id", ESME_RINVMSGID, &p.Header); err != nil {
		return b, err
	}
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	return appendCString(b, p.SourceAddr, MaxAddr, "source_addr", ESME_RINVSRCADR, &p.Header)
}

func (p *QuerySM) decodeBody(d *decoder) {
	d.cstr(&p.MessageID, "message_id", MaxMessageID, ESME_RINVMSGID)
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxAddr, ESME_RINVSRCADR)
	d.end()
}

// QuerySMResp is query_sm_resp (section 4.8.2).
type QuerySMResp struct {
	Header
	MessageID    string
	FinalDate    string
	MessageState MessageState
	ErrorCode    byte
}

// CommandID implements PDU.
func (p *QuerySMResp) CommandID() CommandID { return QuerySMRespID }

func (p *QuerySMResp) appendBody(b []byte) (_ []byte, err error) {
	if b, err = appendCString(b, p.MessageID, MaxMessageID, "message_id", ESME_RINVMSGID, &p.Header); err != nil {
		return b, err
	}
	if b, err = appendTime(b, p.FinalDate, "final_date", ESME_RUNKNOWNERR, &p.Header); err != nil {
		return b, err
	}
	return append(b, byte(p.MessageState), p.ErrorCode), nil
}

func (p *QuerySMResp) decodeBody(d *decoder) {
	d.cstr(&p.MessageID, "message_id", MaxMessageID, ESME_RINVMSGID)
	d.time(&p.FinalDate, "final_date", ESME_RUNKNOWNERR)
	p.MessageState = MessageState(d.u8("message_state"))
	p.ErrorCode = d.u8("error_code")
	d.end()
}

// CancelSM is cancel_sm (section 4.9.1).
type CancelSM struct {
	Header
	ServiceType     string
	MessageID       string
	SourceAddrTON   byte
	SourceAddrNPI   byte
	SourceAddr      string
	DestAddrTON     byte
	DestAddrNPI     byte
	DestinationAddr string
}

// CommandID implements PDU.
func (p *CancelSM) CommandID() CommandID { return CancelSMID }

func (p *CancelSM) appendBody(b []byte) (_ []byte, err error) {
	h := &p.Header
	if b, err = appendCString(b, p.ServiceType, MaxServiceType, "service_type", ESME_RINVSERTYP, h); err != nil {
		return b, err
	}
	if b, err = appendCString(b, p.MessageID, MaxMessageID, "message_id", ESME_RINVMSGID, h); err != nil {
		return b, err
	}
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	if b, err = appendCString(b, p.SourceAddr, MaxAddr, "source_addr", ESME_RINVSRCADR, h); err != nil {
		return b, err
	}
	b = append(b, p.DestAddrTON, p.DestAddrNPI)
	return appendCString(b, p.DestinationAddr, MaxAddr, "destination_addr", ESME_RINVDSTADR, h)
}

func (p *CancelSM) decodeBody(d *decoder) {
	d.cstr(&p.ServiceType, "service_type", MaxServiceType, ESME_RINVSERTYP)
	d.cstr(&p.MessageID, "message_id", MaxMessageID, ESME_RINVMSGID)
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxAddr, ESME_RINVSRCADR)
	p.DestAddrTON = d.u8("dest_addr_ton")
	p.DestAddrNPI = d.u8("dest_addr_npi")
	d.cstr(&p.DestinationAddr, "destination_addr", MaxAddr, ESME_RINVDSTADR)
	d.end()
}

// ReplaceSM is replace_sm (section 4.10.1).
type ReplaceSM struct {
	Header
	MessageID            string
	SourceAddrTON        byte
	SourceAddrNPI        byte
	SourceAddr           string
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	SMDefaultMsgID       byte
	ShortMessage         []byte
}

// CommandID implements PDU.
func (p *ReplaceSM) CommandID() CommandID { return ReplaceSMID }

func (p *ReplaceSM) appendBody(b []byte) (_ []byte, err error) {
	h := &p.Header
	if b, err = appendCString(b, p.MessageID, MaxMessageID, "message_id", ESME_RINVMSGID, h); err != nil {
		return b, err
	}
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	if b, err = appendCString(b, p.SourceAddr, MaxAddr, "source_addr", ESME_RINVSRCADR, h); err != nil {
		return b, err
	}
	if b, err = appendTime(b, p.ScheduleDeliveryTime, "schedule_delivery_time", ESME_RINVSCHED, h); err != nil {
		return b, err
	}
	if b, err = appendTime(b, p.ValidityPeriod, "validity_period", ESME_RINVEXPIRY, h); err != nil {
		return b, err
	}
	b = append(b, p.RegisteredDelivery, p.SMDefaultMsgID)
	return appendShortMessage(b, p.ShortMessage, h)
}

func (p *ReplaceSM) decodeBody(d *decoder) {
	d.cstr(&p.MessageID, "message_id", MaxMessageID, ESME_RINVMSGID)
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxAddr, ESME_RINVSRCADR)
	d.time(&p.ScheduleDeliveryTime, "schedule_delivery_time", ESME_RINVSCHED)
	d.time(&p.ValidityPeriod, "validity_period", ESME_RINVEXPIRY)
	p.RegisteredDelivery = d.u8("registered_delivery")
	p.SMDefaultMsgID = d.u8("sm_default_msg_id")
	p.ShortMessage = d.shortMessage(p.ShortMessage)
	d.end()
}

// AlertNotification is alert_notification (section 4.12.1).
type AlertNotification struct {
	Header
	SourceAddrTON byte
	SourceAddrNPI byte
	SourceAddr    string // at most 64 octets
	ESMEAddrTON   byte
	ESMEAddrNPI   byte
	ESMEAddr      string // at most 64 octets
	Options       Options
	arena         []byte
}

// CommandID implements PDU.
func (p *AlertNotification) CommandID() CommandID { return AlertNotificationID }

func (p *AlertNotification) appendBody(b []byte) (_ []byte, err error) {
	b = append(b, p.SourceAddrTON, p.SourceAddrNPI)
	if b, err = appendCString(b, p.SourceAddr, MaxDataSMAddr, "source_addr", ESME_RINVSRCADR, &p.Header); err != nil {
		return b, err
	}
	b = append(b, p.ESMEAddrTON, p.ESMEAddrNPI)
	if b, err = appendCString(b, p.ESMEAddr, MaxDataSMAddr, "esme_addr", ESME_RINVDSTADR, &p.Header); err != nil {
		return b, err
	}
	return appendTLVs(b, p.Options, &p.Header)
}

func (p *AlertNotification) decodeBody(d *decoder) {
	p.SourceAddrTON = d.u8("source_addr_ton")
	p.SourceAddrNPI = d.u8("source_addr_npi")
	d.cstr(&p.SourceAddr, "source_addr", MaxDataSMAddr, ESME_RINVSRCADR)
	p.ESMEAddrTON = d.u8("esme_addr_ton")
	p.ESMEAddrNPI = d.u8("esme_addr_npi")
	d.cstr(&p.ESMEAddr, "esme_addr", MaxDataSMAddr, ESME_RINVDSTADR)
	p.Options = d.tlvs(p.Options, &p.arena)
}

// shortMessage reads sm_length and short_message into dst's storage.
func (d *decoder) shortMessage(dst []byte) []byte {
	n := int(d.u8("sm_length"))
	if d.err == nil && n > MaxShortMessage {
		d.fail("sm_length", fmt.Sprintf("%d octets, at most %d allowed", n, MaxShortMessage), ESME_RINVMSGLEN)
	}
	b := d.octets("short_message", n)
	if d.err != nil {
		return dst[:0]
	}
	return append(dst[:0], b...)
}

func appendShortMessage(b, sm []byte, h *Header) ([]byte, error) {
	if len(sm) > MaxShortMessage {
		return b, &PDUError{Header: *h, Field: "short_message", Reason: fmt.Sprintf("%d octets, at most %d allowed (use message_payload or segments)", len(sm), MaxShortMessage), Status: ESME_RINVMSGLEN}
	}
	b = append(b, byte(len(sm)))
	return append(b, sm...), nil
}

// appendTime writes a time field: empty, or 16 characters plus NUL.
func appendTime(b []byte, s, field string, st CommandStatus, h *Header) ([]byte, error) {
	if s != "" && len(s) != MaxTime-1 {
		return b, &PDUError{Header: *h, Field: field, Reason: fmt.Sprintf("%q is not a 16-character SMPP time", s), Status: st}
	}
	if err := CheckTime(s); err != nil {
		return b, &PDUError{Header: *h, Field: field, Reason: err.Error(), Status: st}
	}
	return appendCString(b, s, MaxTime, field, st, h)
}

// New returns an empty PDU struct for a command id, or nil for an unknown
// one.
func New(c CommandID) PDU {
	switch c {
	case BindTransmitterID, BindReceiverID, BindTransceiverID:
		t, _ := BindTypeOf(c)
		return &Bind{Type: t}
	case BindTransmitterRespID, BindReceiverRespID, BindTransceiverRespID:
		t, _ := BindTypeOf(c)
		return &BindResp{Type: t}
	case OutbindID:
		return &Outbind{}
	case UnbindID:
		return &Unbind{}
	case UnbindRespID:
		return &UnbindResp{}
	case GenericNackID:
		return &GenericNack{}
	case SubmitSMID:
		return &SubmitSM{}
	case SubmitSMRespID:
		return &SubmitSMResp{}
	case SubmitMultiID:
		return &SubmitMulti{}
	case SubmitMultiRespID:
		return &SubmitMultiResp{}
	case DeliverSMID:
		return &DeliverSM{}
	case DeliverSMRespID:
		return &DeliverSMResp{}
	case DataSMID:
		return &DataSM{}
	case DataSMRespID:
		return &DataSMResp{}
	case QuerySMID:
		return &QuerySM{}
	case QuerySMRespID:
		return &QuerySMResp{}
	case CancelSMID:
		return &CancelSM{}
	case CancelSMRespID:
		return &CancelSMResp{}
	case ReplaceSMID:
		return &ReplaceSM{}
	case ReplaceSMRespID:
		return &ReplaceSMResp{}
	case EnquireLinkID:
		return &EnquireLink{}
	case EnquireLinkRespID:
		return &EnquireLinkResp{}
	case AlertNotificationID:
		return &AlertNotification{}
	}
	return nil
}

// bodyOnError reports whether a response of this command keeps its body
// when its status is an error. SMPP 3.4 says the body of an error response
// is not returned; data_sm_resp is the exception, since its optional
// parameters explain the failure.
func bodyOnError(c CommandID) bool { return c == DataSMRespID }

// AppendPDU appends the encoding of p to dst and returns the extended
// buffer. It sets p's header Command and Length. With a dst of enough
// capacity it does not allocate. On error dst is returned unchanged.
//
// A response with a non-zero command_status is encoded without a body (SMPP
// 3.4 says so of bind_*_resp and submit_sm_resp; SMPP 5.0 makes it the rule
// for every response), except data_sm_resp, whose TLVs explain the failure.
func AppendPDU(dst []byte, p PDU) ([]byte, error) {
	start := len(dst)
	h := p.Head()
	id := p.CommandID()
	if id == 0 {
		return dst, &PDUError{Header: *h, Field: "command_id", Reason: "no command id (bind type not set?)", Status: ESME_RINVCMDID}
	}
	h.Command = id
	dst = append(dst, 0, 0, 0, 0)
	dst = appendU32(dst, uint32(id))
	dst = appendU32(dst, uint32(h.Status))
	dst = appendU32(dst, h.Sequence)
	if !(id.IsResponse() && h.Status != ESME_ROK && !bodyOnError(id)) {
		var err error
		dst, err = p.appendBody(dst)
		if err != nil {
			return dst[:start], err
		}
	}
	n := len(dst) - start
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	h.Length = uint32(n)
	return dst, nil
}

// Marshal returns the encoding of p in a new buffer.
func Marshal(p PDU) ([]byte, error) { return AppendPDU(nil, p) }

// ParseHeader reads the 16-octet header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrUnexpectedEOF
	}
	return Header{
		Length:   binary.BigEndian.Uint32(b),
		Command:  CommandID(binary.BigEndian.Uint32(b[4:])),
		Status:   CommandStatus(binary.BigEndian.Uint32(b[8:])),
		Sequence: binary.BigEndian.Uint32(b[12:]),
	}, nil
}

// Decode decodes one whole PDU (header and body) from raw, whose length
// must be the command_length. The PDU does not alias raw.
func Decode(raw []byte) (PDU, error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return nil, err
	}
	if h.Length < HeaderLen {
		return nil, &FramingError{Length: h.Length, Reason: "is below the 16-octet header"}
	}
	if int64(h.Length) != int64(len(raw)) {
		return nil, &PDUError{Header: h, Field: "command_length", Reason: fmt.Sprintf("%d but the PDU has %d octets", h.Length, len(raw)), Status: ESME_RINVCMDLEN}
	}
	p := New(h.Command)
	if p == nil {
		if h.Command == 0 {
			return nil, &PDUError{Header: h, Field: "command_id", Reason: "command_id 0", Status: ESME_RINVCMDID}
		}
		p = &UnknownPDU{}
	}
	if err := DecodeBody(p, h, raw[HeaderLen:]); err != nil {
		return nil, err
	}
	return p, nil
}

// DecodeBody decodes body into p, which must be the struct for h.Command
// (as New gives, or one reused from an earlier call: its buffers are
// reused). p does not alias body. A response with an error status (but
// data_sm_resp) whose body is missing or does not parse decodes with its
// body fields empty.
func DecodeBody(p PDU, h Header, body []byte) error {
	switch b := p.(type) {
	case *Bind:
		if t, ok := BindTypeOf(h.Command); ok && !h.Command.IsResponse() {
			b.Type = t
		}
	case *BindResp:
		if t, ok := BindTypeOf(h.Command); ok && h.Command.IsResponse() {
			b.Type = t
		}
	}
	if u, ok := p.(*UnknownPDU); ok {
		if h.Command.Known() {
			return &PDUError{Header: h, Field: "command_id", Reason: "decoding a known command into an UnknownPDU", Status: ESME_RINVCMDID}
		}
		u.Command = h.Command
	}
	if want := p.CommandID(); want != h.Command {
		return &PDUError{Header: h, Field: "command_id", Reason: fmt.Sprintf("decoding into a %s struct", want), Status: ESME_RINVCMDID}
	}
	*p.Head() = h
	d := decoder{b: body, h: h}
	if len(body) == 0 && h.Command == DeliverSMRespID {
		// deliver_sm_resp without its (unused, NULL) message_id, as some
		// ESMEs send it.
		resetBody(p)
		return nil
	}
	if len(body) == 0 && h.Command.IsResponse() && h.Status != ESME_ROK {
		// An error response without a body, as SMPP 3.4 intends.
		resetBody(p)
		return nil
	}
	decodeInto(p, &d)
	if d.err != nil {
		if h.Command.IsResponse() && h.Status != ESME_ROK && !bodyOnError(h.Command) {
			// SMPP 3.4 returns no body with an error status, so a body that
			// does not parse carries nothing: drop it, and let the status
			// (ESME_RTHROTTLED, say) reach the caller as what it is.
			resetBody(p)
			return nil
		}
		return d.err
	}
	return nil
}

// resetBody clears the body fields of a reused response struct.
func resetBody(p PDU) {
	switch r := p.(type) {
	case *BindResp:
		r.SystemID, r.Options = "", r.Options[:0]
	case *SubmitSMResp:
		r.MessageID, r.Options = "", r.Options[:0]
	case *DeliverSMResp:
		r.MessageID, r.Options = "", r.Options[:0]
	case *DataSMResp:
		r.MessageID, r.Options = "", r.Options[:0]
	case *SubmitMultiResp:
		r.MessageID, r.Unsuccess = "", r.Unsuccess[:0]
	case *QuerySMResp:
		r.MessageID, r.FinalDate, r.MessageState, r.ErrorCode = "", "", 0, 0
	}
}

// time reads a time field: empty, or 16 characters plus NUL.
func (d *decoder) time(dst *string, field string, st CommandStatus) {
	b := d.cbytes(field, MaxTime, st)
	if d.err != nil {
		return
	}
	if len(b) != 0 && len(b) != MaxTime-1 {
		d.fail(field, fmt.Sprintf("%d characters, want 0 or 16", len(b)), st)
		return
	}
	if string(b) != *dst {
		if err := CheckTime(string(b)); err != nil {
			d.fail(field, err.Error(), st)
			return
		}
	}
	if string(b) != *dst {
		*dst = string(b)
	}
}

// decodeInto calls p's decodeBody through its concrete type, so that the
// decoder stays on the caller's stack (an interface call would move it to
// the heap: one allocation per PDU).
func decodeInto(p PDU, d *decoder) {
	switch v := p.(type) {
	case *SubmitSM:
		v.decodeBody(d)
	case *SubmitSMResp:
		v.decodeBody(d)
	case *DeliverSM:
		v.decodeBody(d)
	case *DeliverSMResp:
		v.decodeBody(d)
	case *EnquireLink:
		v.decodeBody(d)
	case *EnquireLinkResp:
		v.decodeBody(d)
	case *DataSM:
		v.decodeBody(d)
	case *DataSMResp:
		v.decodeBody(d)
	case *Bind:
		v.decodeBody(d)
	case *BindResp:
		v.decodeBody(d)
	case *GenericNack:
		v.decodeBody(d)
	case *Unbind:
		v.decodeBody(d)
	case *UnbindResp:
		v.decodeBody(d)
	case *Outbind:
		v.decodeBody(d)
	case *SubmitMulti:
		v.decodeBody(d)
	case *SubmitMultiResp:
		v.decodeBody(d)
	case *QuerySM:
		v.decodeBody(d)
	case *QuerySMResp:
		v.decodeBody(d)
	case *CancelSM:
		v.decodeBody(d)
	case *CancelSMResp:
		v.decodeBody(d)
	case *ReplaceSM:
		v.decodeBody(d)
	case *ReplaceSMResp:
		v.decodeBody(d)
	case *AlertNotification:
		v.decodeBody(d)
	case *UnknownPDU:
		v.decodeBody(d)
	default:
		d.fail("command_id", "no decoder for this struct", ESME_RINVCMDID)
	}
}
