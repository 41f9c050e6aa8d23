package smpp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStatusError(t *testing.T) {
	tests := []struct {
		s    CommandStatus
		want string
	}{
		{ESME_RTHROTTLED, "ESME_RTHROTTLED (0x00000058): throttling error"},
		{ESME_RINVPASWD, "ESME_RINVPASWD (0x0000000E): invalid password"},
		{ESME_ROK, "ESME_ROK (0x00000000): no error"},
		{0x400, "SMSC_VENDOR_SPECIFIC (0x00000400): SMSC vendor-specific error"},
		{0x99, "RESERVED (0x00000099): reserved status value"},
	}
	for _, tt := range tests {
		if got := tt.s.Error(); got != tt.want {
			t.Errorf("%d: %q, want %q", uint32(tt.s), got, tt.want)
		}
	}
	var err error = ESME_RTHROTTLED
	wrapped := errors.Join(errors.New("submit"), err)
	var st CommandStatus
	if !errors.As(wrapped, &st) || st != ESME_RTHROTTLED || !st.Throttling() || !st.Temporary() {
		t.Fatal("status does not travel as a typed error")
	}
	if s, ok := StatusByName("ESME_RMSGQFUL"); !ok || s != ESME_RMSGQFUL {
		t.Fatal("StatusByName")
	}
	// Every name in the table maps back to its value.
	for s, i := range statusTable {
		if got, ok := StatusByName(i.name); !ok || got != s {
			t.Errorf("%s does not map back", i.name)
		}
	}
}

func TestCommandID(t *testing.T) {
	if SubmitSMID.Response() != SubmitSMRespID || !SubmitSMRespID.IsResponse() || SubmitSMID.IsResponse() {
		t.Fatal("response bit")
	}
	if OutbindID.HasResponse() || AlertNotificationID.HasResponse() || !EnquireLinkID.HasResponse() {
		t.Fatal("HasResponse")
	}
	if CommandID(0x1234).String() != "command_id 0x00001234" || DataSMID.String() != "data_sm" {
		t.Fatal("String")
	}
	for c := range commandNames {
		p := New(c)
		if p == nil || p.CommandID() != c {
			t.Errorf("New(%s) gives %v", c, p)
		}
	}
}

// TestRoundTripStructs encodes filled structs, decodes them and compares.
func TestRoundTripStructs(t *testing.T) {
	var opts Options
	opts.SetCString(TagReceiptedMessageID, "abc123")
	opts.SetUint(TagMessageState, uint32(StateDelivered))
	opts.SetNetworkErrorCode(3, 0x0101)
	opts.SetSAR(SAR{Ref: 0xBEEF, Total: 3, Seq: 2})
	opts.Set(Tag(0x1401), []byte{1, 2, 3})
	pdus := []PDU{
		&Bind{Header: Header{Sequence: 1}, Type: BindTransceiver, SystemID: "otp", Password: "pw", SystemType: "OTP", InterfaceVersion: 0x34, AddrTON: 1, AddrNPI: 1, AddressRange: "^49"},
		&BindResp{Header: Header{Sequence: 1}, Type: BindReceiver, SystemID: "SMSC", Options: Options{{Tag: TagScInterfaceVersion, Value: []byte{0x34}}}},
		&SubmitSM{Header: Header{Sequence: 2}, SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112345678",
			ValidityPeriod: FormatRelativeTime(5 * time.Minute), RegisteredDelivery: 1, DataCoding: 8, ShortMessage: []byte{0, 'h', 0, 'i'}, Options: opts},
		&DeliverSM{Header: Header{Sequence: 3}, ESMClass: ESMClassDeliveryReceipt, ShortMessage: []byte("id:1 stat:DELIVRD"), Options: opts},
		&SubmitMulti{Header: Header{Sequence: 4}, SourceAddr: "x", Dests: []DestAddress{{TON: 1, NPI: 1, Addr: "1"}, {DLName: "list"}}, ShortMessage: []byte("m")},
		&SubmitMultiResp{Header: Header{Sequence: 4}, MessageID: "m", Unsuccess: []UnsuccessSME{{TON: 1, NPI: 1, Addr: "1", Status: ESME_RINVDSTADR}}},
		&DataSM{Header: Header{Sequence: 5}, SourceAddr: strings.Repeat("9", 64), DestinationAddr: "1", Options: Options{{Tag: TagMessagePayload, Value: bytes.Repeat([]byte("p"), 1000)}}},
		&DataSMResp{Header: Header{Sequence: 5, Status: ESME_RDELIVERYFAILURE}, Options: Options{{Tag: TagDeliveryFailureReason, Value: []byte{1}}}},
		&QuerySMResp{Header: Header{Sequence: 6}, MessageID: "1", FinalDate: "261122103100000+", MessageState: StateUndeliverable, ErrorCode: 9},
		&ReplaceSM{Header: Header{Sequence: 7}, MessageID: "1", ShortMessage: []byte("new")},
		&AlertNotification{Header: Header{Sequence: 8}, SourceAddr: "1", ESMEAddr: "2", Options: Options{{Tag: TagMsAvailabilityStatus, Value: []byte{1}}}},
		&Outbind{Header: Header{Sequence: 9}, SystemID: "SMSC", Password: "pw"},
		&GenericNack{Header: Header{Sequence: 10, Status: ESME_RINVCMDID}},
	}
	for _, p := range pdus {
		b, err := Marshal(p)
		if err != nil {
			t.Fatalf("%s: %v", p.CommandID(), err)
		}
		q, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", p.CommandID(), err)
		}
		normalize(p)
		normalize(q)
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", p.CommandID(), q, p)
		}
	}
}

// normalize clears the decode arenas so structs compare by content.
func normalize(p PDU) {
	switch v := p.(type) {
	case *SubmitSM:
		v.arena = nil
	case *DeliverSM:
		v.arena = nil
	case *BindResp:
		v.arena = nil
	case *DataSM:
		v.arena = nil
	case *DataSMResp:
		v.arena = nil
	case *SubmitMulti:
		v.arena = nil
	case *AlertNotification:
		v.arena = nil
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		p     PDU
		field string
		st    CommandStatus
	}{
		{&Bind{Type: BindTransmitter, SystemID: strings.Repeat("s", 16)}, "system_id", ESME_RINVSYSID},
		{&Bind{Type: BindTransmitter, SystemID: "a", Password: "123456789"}, "password", ESME_RINVPASWD},
		{&Bind{SystemID: "a"}, "command_id", ESME_RINVCMDID},
		{&SubmitSM{SourceAddr: strings.Repeat("1", 21)}, "source_addr", ESME_RINVSRCADR},
		{&SubmitSM{DestinationAddr: "12\x0034"}, "destination_addr", ESME_RINVDSTADR},
		{&SubmitSM{ShortMessage: make([]byte, 255)}, "short_message", ESME_RINVMSGLEN},
		{&SubmitSM{ValidityPeriod: "5m"}, "validity_period", ESME_RINVEXPIRY},
		{&SubmitSM{Options: Options{{Tag: TagMessagePayload, Value: make([]byte, 70000)}}}, "message_payload", ESME_RINVPARLEN},
		{&SubmitMulti{}, "number_of_dests", ESME_RINVNUMDESTS},
		{&SubmitMulti{Dests: make([]DestAddress, 255)}, "number_of_dests", ESME_RINVNUMDESTS},
		{&SubmitSMResp{MessageID: strings.Repeat("x", 65)}, "message_id", ESME_RINVMSGID},
	}
	for _, tt := range tests {
		buf := []byte("keep")
		out, err := AppendPDU(buf, tt.p)
		var pe *PDUError
		if !errors.As(err, &pe) || pe.Field != tt.field || pe.Status != tt.st {
			t.Errorf("%s: got %v, want %s %s", tt.p.CommandID(), err, tt.field, tt.st.Name())
		}
		if string(out) != "keep" {
			t.Errorf("%s: buffer changed on error: %q", tt.p.CommandID(), out)
		}
	}
}

func TestErrorResponseHasNoBody(t *testing.T) {
	b, err := Marshal(&SubmitSMResp{Header: Header{Status: ESME_RTHROTTLED, Sequence: 5}, MessageID: "ignored"})
	if err != nil || len(b) != 16 {
		t.Fatalf("error response: %x %v", b, err)
	}
	p, err := Decode(b)
	if err != nil || p.Head().Status != ESME_RTHROTTLED || p.(*SubmitSMResp).MessageID != "" {
		t.Fatalf("decode: %+v %v", p, err)
	}
	// An error response with a body, as many SMSCs send it, decodes too.
	b = []byte{0, 0, 0, 17, 0x80, 0, 0, 4, 0, 0, 0, 0x58, 0, 0, 0, 5, 0}
	if p, err = Decode(b); err != nil || p.Head().Status != ESME_RTHROTTLED {
		t.Fatalf("error response with a body: %v", err)
	}
}

func TestReader(t *testing.T) {
	var stream []byte
	for i := uint32(1); i <= 3; i++ {
		stream, _ = AppendPDU(stream, &EnquireLink{Header: Header{Sequence: i}})
	}
	// EOF at a PDU boundary is io.EOF; inside a PDU it is unexpected.
	r := NewReader(bytes.NewReader(stream))
	for i := uint32(1); i <= 3; i++ {
		p, err := r.ReadPDU()
		if err != nil || p.Head().Sequence != i {
			t.Fatalf("pdu %d: %v %v", i, p, err)
		}
	}
	if _, err := r.ReadPDU(); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
	r = NewReader(bytes.NewReader(stream[:20]))
	r.ReadPDU()
	if _, err := r.ReadPDU(); err != io.ErrUnexpectedEOF || !IsFatal(err) {
		t.Fatalf("mid-PDU: %v", err)
	}
	// A configurable maximum.
	big, _ := Marshal(&DataSM{Options: Options{{Tag: TagMessagePayload, Value: make([]byte, 2000)}}})
	r = NewReader(bytes.NewReader(big))
	r.MaxLength = 1024
	_, err := r.ReadPDU()
	var fe *FramingError
	if !errors.As(err, &fe) || !IsFatal(err) || fe.Length != uint32(len(big)) {
		t.Fatalf("over maximum: %v", err)
	}
}

func TestReaderReuse(t *testing.T) {
	var stream []byte
	for i := uint32(1); i <= 3; i++ {
		stream, _ = AppendPDU(stream, &DeliverSM{Header: Header{Sequence: i}, SourceAddr: "4915112345678", ShortMessage: []byte("id:1 stat:DELIVRD"),
			Options: Options{{Tag: TagReceiptedMessageID, Value: []byte("1\x00")}}})
	}
	r := NewReader(bytes.NewReader(stream))
	r.Reuse = true
	p1, _ := r.ReadPDU()
	p2, err := r.ReadPDU()
	if err != nil || p1 != p2 || p2.Head().Sequence != 2 {
		t.Fatalf("reuse: %p %p %v", p1, p2, err)
	}
	if id, _ := p2.(*DeliverSM).Options.ReceiptedMessageID(); id != "1" {
		t.Fatalf("receipted id %q", id)
	}
}

func TestOptions(t *testing.T) {
	var o Options
	o.SetUint(TagUserMessageReference, 0x1234)
	o.SetUint(TagMessageState, 5)
	if v, ok, err := o.Uint(TagUserMessageReference); !ok || err != nil || v != 0x1234 {
		t.Fatal("Uint 2")
	}
	if b, _ := o.Get(TagUserMessageReference); len(b) != 2 {
		t.Fatal("user_message_reference is 2 octets")
	}
	if s, ok := o.MessageState(); !ok || s != StateUndeliverable || s.String() != "UNDELIVERABLE" || !s.Final() {
		t.Fatal("MessageState")
	}
	o.Set(TagMessageState, []byte{0, 5})
	if _, _, err := o.Uint(TagMessageState); err == nil || !errors.Is(err, ESME_RINVPARLEN) {
		t.Fatal("wrong length accepted")
	}
	o.Del(TagMessageState)
	if o.Has(TagMessageState) || len(o) != 1 {
		t.Fatal("Del")
	}
	// A receipted_message_id without its NUL, as some SMSCs send it.
	o.Set(TagReceiptedMessageID, []byte("abc"))
	if id, ok := o.ReceiptedMessageID(); !ok || id != "abc" {
		t.Fatal("id without NUL")
	}
	if err := (TLV{Tag: TagReceiptedMessageID, Value: []byte("abc")}).Validate(); err == nil {
		t.Fatal("Validate accepts a C string without NUL")
	}
	if err := (TLV{Tag: 0x7777, Value: []byte("anything")}).Validate(); err != nil {
		t.Fatal("unknown tag invalid")
	}
	for tag, info := range tagTable {
		if tag.String() != info.Name {
			t.Errorf("tag %04x name", uint16(tag))
		}
	}
}

func TestTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"261122103000004+", time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)},
		{"261122103000004-", time.Date(2026, 11, 22, 11, 30, 0, 0, time.UTC)},
		{"261122103000500+", time.Date(2026, 11, 22, 10, 30, 0, 500_000_000, time.UTC)},
		{"000000000500000R", now.Add(5 * time.Minute)},
		{"000001020304000R", now.Add(26*time.Hour + 3*time.Minute + 4*time.Second)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"26112210300000+", "2611221030000041", "261322103000000+", "261131103000000+", "26112210300000x+", "261122103000049+"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
	if s := FormatRelativeTime(5 * time.Minute); s != "000000000500000R" {
		t.Errorf("relative %s", s)
	}
	if s := FormatRelativeTime(200 * 24 * time.Hour); s != "000620000000000R" {
		t.Errorf("relative 200d %s", s)
	}
	cet := time.FixedZone("CET", 3600)
	if s := FormatAbsoluteTime(time.Date(2026, 11, 22, 10, 30, 0, 0, cet)); s != "261122103000004+" {
		t.Errorf("absolute %s", s)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("", -5*3600))
	if back, err := ParseTime(FormatAbsoluteTime(ts), now); err != nil || !back.Equal(ts) {
		t.Errorf("absolute round trip %v %v", back, err)
	}
}

// A BindResp without a bind type has no command id: it must neither encode
// as generic_nack (0x80000000, the response bit alone) nor decode a
// generic_nack.
func TestBindRespWithoutType(t *testing.T) {
	out, err := AppendPDU(nil, &BindResp{Header: Header{Sequence: 1}, SystemID: "SMSC"})
	var pe *PDUError
	if !errors.As(err, &pe) || pe.Field != "command_id" || pe.Status != ESME_RINVCMDID {
		t.Fatalf("encoded as %x, err %v; want a command_id error", out, err)
	}
	nack := Header{Length: HeaderLen, Command: GenericNackID, Status: ESME_RINVCMDID, Sequence: 2}
	if err := DecodeBody(&BindResp{}, nack, nil); !errors.As(err, &pe) || pe.Field != "command_id" {
		t.Fatalf("generic_nack decoded into a BindResp: %v", err)
	}
}

// SMPP 3.4 section 7.1.1: nn is 00 to 48 quarter hours. Zones beyond UTC+12
// and offsets that are not whole quarter hours are written in UTC, so the
// instant survives.
func TestFormatAbsoluteTimeOddZones(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	for _, off := range []int{14 * 3600, 13*3600 + 45*60, -12*3600 - 15*60, 20 * 60, 5*3600 + 45*60, -(3*3600 + 30*60)} {
		ts := time.Date(2026, 3, 4, 5, 6, 7, 800_000_000, time.FixedZone("", off))
		s := FormatAbsoluteTime(ts)
		back, err := ParseTime(s, now)
		if err != nil || !back.Equal(ts) {
			t.Errorf("offset %ds: %s reads back as %v, %v; want %v", off, s, back, err, ts)
		}
	}
}

// An error response whose (unexpected) body does not parse still delivers
// its command_status: the body of an error response carries nothing in
// SMPP 3.4. data_sm_resp, whose body explains the error, stays strict, and
// so does a response with ESME_ROK.
func TestErrorResponseMalformedBody(t *testing.T) {
	// submit_sm_resp ESME_RTHROTTLED whose message_id has no NUL.
	b := []byte{0, 0, 0, 19, 0x80, 0, 0, 4, 0, 0, 0, 0x58, 0, 0, 0, 7, 'a', 'b', 'c'}
	p, err := Decode(b)
	if err != nil || p.Head().Status != ESME_RTHROTTLED || p.(*SubmitSMResp).MessageID != "" {
		t.Fatalf("throttled submit_sm_resp with a bad body: %+v %v", p, err)
	}
	// enquire_link_resp ESME_RSYSERR with stray octets.
	b = []byte{0, 0, 0, 18, 0x80, 0, 0, 0x15, 0, 0, 0, 8, 0, 0, 0, 8, 1, 2}
	if p, err = Decode(b); err != nil || p.Head().Status != ESME_RSYSERR {
		t.Fatalf("enquire_link_resp with stray octets: %v", err)
	}
	var pe *PDUError
	// data_sm_resp ESME_RDELIVERYFAILURE with a TLV that runs past the end.
	b = []byte{0, 0, 0, 22, 0x80, 0, 1, 3, 0, 0, 0, 0xFE, 0, 0, 0, 9, 0, 4, 0x25, 0, 9, 1}
	if _, err = Decode(b); !errors.As(err, &pe) || pe.Status != ESME_RINVOPTPARSTREAM {
		t.Fatalf("data_sm_resp with a bad TLV: %v", err)
	}
	// submit_sm_resp ESME_ROK whose message_id has no NUL.
	b = []byte{0, 0, 0, 19, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 7, 'a', 'b', 'c'}
	if _, err = Decode(b); !errors.As(err, &pe) || pe.Field != "message_id" {
		t.Fatalf("OK submit_sm_resp with a bad body: %v", err)
	}
}

func TestDeliverSMRespWithoutBody(t *testing.T) {
	p, err := Decode([]byte{0, 0, 0, 16, 0x80, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 3})
	if err != nil || p.CommandID() != DeliverSMRespID || p.Head().Sequence != 3 {
		t.Fatalf("bodiless deliver_sm_resp: %v %v", p, err)
	}
}

// A well-framed PDU of a command SMPP 3.4 does not define decodes as an
// UnknownPDU, its body kept, and encodes back to the same octets.
func TestUnknownPDU(t *testing.T) {
	raw, err := hex.DecodeString("00000013000000990000000000000005616263")
	if err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() (PDU, error){
		func() (PDU, error) { return Decode(raw) },
		func() (PDU, error) { return NewReader(bytes.NewReader(raw)).ReadPDU() },
	} {
		p, err := read()
		if err != nil {
			t.Fatal(err)
		}
		u, ok := p.(*UnknownPDU)
		if !ok || u.Command != 0x99 || u.Sequence != 5 || string(u.Body) != "abc" {
			t.Fatalf("decoded %T %+v", p, p)
		}
		out, err := Marshal(u)
		if err != nil || !bytes.Equal(out, raw) {
			t.Fatalf("re-encoded %x, %v; want %x", out, err, raw)
		}
	}
	// A known command does not decode into an UnknownPDU.
	if err := DecodeBody(&UnknownPDU{}, Header{Length: HeaderLen, Command: EnquireLinkID}, nil); err == nil {
		t.Fatal("enquire_link decoded into an UnknownPDU")
	}
}

// A known optional parameter of the wrong length is refused with
// ESME_RINVPARLEN on both paths, never misread: a 1-octet sar_msg_ref_num
// must not make a segment look standalone.
func TestTLVLengthValidated(t *testing.T) {
	good, err := Marshal(&DeliverSM{Header: Header{Sequence: 3}, SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tlv := range [][]byte{
		{0x02, 0x0C, 0, 1, 7},          // sar_msg_ref_num of 1 octet (2)
		{0x04, 0x27, 0, 2, 0, 2},       // message_state of 2 octets (1)
		{0x04, 0x23, 0, 2, 3, 0},       // network_error_code of 2 octets (3)
		{0x00, 0x1E, 0, 0},             // receipted_message_id empty (1 to 65)
		{0x02, 0x0E, 0, 4, 0, 0, 0, 2}, // sar_total_segments of 4 octets (1)
	} {
		raw := append(append([]byte{}, good...), tlv...)
		binary.BigEndian.PutUint32(raw, uint32(len(raw)))
		_, err := Decode(raw)
		var pe *PDUError
		if !errors.As(err, &pe) || pe.Status != ESME_RINVPARLEN || pe.Header.Sequence != 3 {
			t.Errorf("TLV %x: %v; want a PDUError with ESME_RINVPARLEN", tlv, err)
		}
	}
	// Encoding refuses it too.
	var opts Options
	opts.Set(TagSarMsgRefNum, []byte{7})
	if _, err := Marshal(&SubmitSM{DestinationAddr: "1", Options: opts}); !errors.Is(err, ESME_RINVPARLEN) {
		t.Errorf("encoding a 1-octet sar_msg_ref_num: %v", err)
	}
	// alert_on_message_delivery: empty in 3.4, one octet in 5.0; both read.
	for _, v := range [][]byte{nil, {1}} {
		var o Options
		o.Set(TagAlertOnMessageDelivery, v)
		b, err := Marshal(&SubmitSM{DestinationAddr: "1", Options: o})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b); err != nil {
			t.Errorf("alert_on_message_delivery of %d octets: %v", len(v), err)
		}
	}
}

// Time fields are checked for content, not only length, when encoded and
// when decoded; relative times read back as the interval written.
func TestTimeFieldContent(t *testing.T) {
	for _, bad := range []string{
		"26112210300000x+", // tenths not a digit
		"261122103000049+", // 49 quarter hours
		"2611221030000041", // neither + - nor R
		"261322103000004+", // month 13
		"26113110300000 R", // relative with a blank
		"2611221030000 4+", // nn not digits
		"ab1122103000004+",
	} {
		if _, err := Marshal(&SubmitSM{DestinationAddr: "1", ValidityPeriod: bad}); !errors.Is(err, ESME_RINVEXPIRY) {
			t.Errorf("encode validity_period %q: %v; want ESME_RINVEXPIRY", bad, err)
		}
		good, err := Marshal(&SubmitSM{DestinationAddr: "1", ScheduleDeliveryTime: "261122103000004+"})
		if err != nil {
			t.Fatal(err)
		}
		raw := bytes.Replace(good, []byte("261122103000004+"), []byte(bad), 1)
		if _, err := Decode(raw); !errors.Is(err, ESME_RINVSCHED) {
			t.Errorf("decode schedule_delivery_time %q: %v; want ESME_RINVSCHED", bad, err)
		}
	}
	for _, d := range []time.Duration{0, 5 * time.Minute, 26*time.Hour + 3*time.Minute + 4*time.Second,
		99*24*time.Hour + 23*time.Hour + 59*time.Minute + 59*time.Second, 100 * 24 * time.Hour, 200*24*time.Hour + 7*time.Second, 3000 * 24 * time.Hour} {
		s := FormatRelativeTime(d)
		back, err := ParseRelativeTime(s)
		if err != nil || back != d {
			t.Errorf("%v -> %s -> %v, %v", d, s, back, err)
		}
		if _, err := Marshal(&SubmitSM{DestinationAddr: "1", ValidityPeriod: s}); err != nil {
			t.Errorf("encode %s: %v", s, err)
		}
	}
	if _, err := ParseRelativeTime("261122103000004+"); err == nil {
		t.Error("an absolute time read as relative")
	}
}
