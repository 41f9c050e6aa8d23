package smpp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

func TestParseReceipt(t *testing.T) {
	text := []byte("id:762252143 sub:001 dlvrd:001 submit date:2611221030 done date:2611221031 stat:DELIVRD err:000 text:Your code")
	tests := []struct {
		name    string
		p       *DeliverSM
		id      string
		state   MessageState
		fromTLV bool
		err     bool
	}{
		{"text only", &DeliverSM{ESMClass: ESMClassDeliveryReceipt, ShortMessage: text}, "762252143", StateDelivered, false, false},
		{"TLVs win over the text", &DeliverSM{ESMClass: ESMClassDeliveryReceipt, ShortMessage: text,
			Options: Options{{Tag: TagReceiptedMessageID, Value: []byte("2d6f0b6f\x00")}, {Tag: TagMessageState, Value: []byte{5}}}}, "2d6f0b6f", StateUndeliverable, true, false},
		{"TLVs only, empty text", &DeliverSM{ESMClass: ESMClassDeliveryReceipt,
			Options: Options{{Tag: TagReceiptedMessageID, Value: []byte("abc\x00")}, {Tag: TagMessageState, Value: []byte{3}}}}, "abc", StateExpired, true, false},
		{"text in message_payload", &DeliverSM{ESMClass: ESMClassDeliveryReceipt, Options: Options{{Tag: TagMessagePayload, Value: text}}}, "762252143", StateDelivered, false, false},
		{"mobile-originated text", &DeliverSM{ShortMessage: []byte("STOP")}, "", 0, false, true},
		{"receipt flag, nothing readable", &DeliverSM{ESMClass: ESMClassDeliveryReceipt, ShortMessage: []byte("garbage")}, "", 0, false, true},
	}
	for _, tt := range tests {
		r, err := ParseReceipt(tt.p)
		if (err != nil) != tt.err {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if err == nil && (r.ID != tt.id || r.State != tt.state || r.FromTLV != tt.fromTLV) {
			t.Errorf("%s: got id %q state %v tlv %v", tt.name, r.ID, r.State, r.FromTLV)
		}
	}
	p := ReceiptDeliverSM("2d6f0b6f", "762252143", dlr.Receipt{State: dlr.Undeliverable, Stat: "UNDELIV", Err: "001", Sub: 1, Dlvrd: 0,
		SubmitDate: time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC), DoneDate: time.Date(2026, 11, 22, 10, 31, 0, 0, time.UTC)})
	p.Options.SetNetworkErrorCode(3, 1)
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := Decode(b)
	r, err := ParseReceipt(q.(*DeliverSM))
	if err != nil || r.ID != "2d6f0b6f" || r.State != StateUndeliverable || r.Err != "001" || !r.HasNetworkError || r.NetworkErrorCode != 1 {
		t.Fatalf("built receipt reads back as %+v %v", r, err)
	}
	if !strings.HasPrefix(string(p.ShortMessage), "id:762252143 ") || !dlr.SameID(r.ID, "762252143") {
		t.Fatalf("text id: %q", p.ShortMessage)
	}
}

func TestSplitSubmitAndReassemble(t *testing.T) {
	tmpl := &SubmitSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112345678", RegisteredDelivery: 1}
	long := strings.Repeat("Your code is 123456 {ok} ", 12) // 300 septets with escapes
	for _, m := range []coding.ConcatMethod{coding.ConcatUDH8, coding.ConcatUDH16, coding.ConcatSAR, coding.ConcatPayload} {
		pdus, err := SplitSubmit(tmpl, long, coding.SplitOptions{Auto: true, Method: m, Ref: 0x42})
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		if m == coding.ConcatPayload {
			if len(pdus) != 1 || len(pdus[0].ShortMessage) != 0 || !pdus[0].Options.Has(TagMessagePayload) {
				t.Fatalf("payload: %d pdus", len(pdus))
			}
		} else if len(pdus) < 2 {
			t.Fatalf("%v: %d pdus", m, len(pdus))
		}
		ra := coding.NewReassembler(coding.ReassemblerConfig{})
		var got []byte
		// Feed the parts in reverse order, through the wire.
		for i := len(pdus) - 1; i >= 0; i-- {
			b, err := Marshal(pdus[i])
			if err != nil {
				t.Fatalf("%v: %v", m, err)
			}
			d, _ := Decode(b)
			s := d.(*SubmitSM)
			if s.DestinationAddr != tmpl.DestinationAddr || s.RegisteredDelivery != 1 {
				t.Fatal("template not copied")
			}
			part, multi, err := MessagePart(s.ESMClass, s.ShortMessage, s.Options)
			if err != nil {
				t.Fatal(err)
			}
			if !multi {
				got = part.Data
				continue
			}
			parts, done, err := ra.Add("k", part.Ref, part.Total, part.Seq, part.Data, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if done {
				got = bytes.Join(parts, nil)
			}
		}
		if text := coding.DecodeGSM7(got); text != long {
			t.Fatalf("%v: reassembled %q", m, text)
		}
	}
	// A short text is one plain PDU whatever the method.
	pdus, _ := SplitSubmit(tmpl, "Code 123456", coding.SplitOptions{Auto: true, Method: coding.ConcatPayload})
	if len(pdus) != 1 || string(pdus[0].ShortMessage) != "Code 123456" || pdus[0].ESMClass != 0 {
		t.Fatalf("short text: %+v", pdus[0])
	}
	// UCS-2 is chosen for text GSM cannot carry, and data_coding says so.
	pdus, _ = SplitSubmit(tmpl, "Код 1234", coding.SplitOptions{Auto: true})
	if pdus[0].DataCoding != 8 {
		t.Fatalf("data_coding %d", pdus[0].DataCoding)
	}
	if _, err := SplitSubmit(tmpl, "Код", coding.SplitOptions{Coding: coding.Default}); err == nil {
		t.Fatal("explicit GSM accepted Cyrillic")
	}
}

// The message_state parameter wins over the text's stat word, and Stat
// then says the same as State; a message_state outside SMPP 3.4's 1 to 8
// wins over nothing.
func TestParseReceiptStateConsistency(t *testing.T) {
	text := []byte("id:762252143 sub:001 dlvrd:001 submit date:2611221030 done date:2611221031 stat:DELIVRD err:000 text:x")
	p := &DeliverSM{ESMClass: ESMClassDeliveryReceipt, ShortMessage: text,
		Options: Options{{Tag: TagMessageState, Value: []byte{byte(StateUndeliverable)}}}}
	r, err := ParseReceipt(p)
	if err != nil || r.State != StateUndeliverable || r.Stat != "UNDELIV" {
		t.Fatalf("TLV UNDELIVERABLE over text DELIVRD: state %v stat %q, %v", r.State, r.Stat, err)
	}
	p.Options = Options{{Tag: TagMessageState, Value: []byte{0}}}
	r, err = ParseReceipt(p)
	if err != nil || r.State != StateDelivered || r.Stat != "DELIVRD" {
		t.Fatalf("message_state 0 over text DELIVRD: state %v stat %q, %v", r.State, r.Stat, err)
	}
	// A stat word the text spells its own way is kept when it agrees.
	p.ShortMessage = []byte("id:1 stat:FAILED err:034")
	p.Options = Options{{Tag: TagMessageState, Value: []byte{byte(StateUndeliverable)}}}
	if r, err = ParseReceipt(p); err != nil || r.Stat != "FAILED" || r.State != StateUndeliverable {
		t.Fatalf("agreeing stat word: %q %v %v", r.Stat, r.State, err)
	}
}

// ParseReceipt reads data_sm receipts (text in message_payload) and
// decodes the text per data_coding; dlr.Parse reads the example line of
// Appendix B as the specification writes it.
func TestParseReceiptDataSMAndCoding(t *testing.T) {
	const text = "id:7f3a sub:001 dlvrd:001 submit date:2612031015 done date:2612031016 stat:DELIVRD err:000 text:Код"
	ds := &DataSM{ESMClass: ESMClassDeliveryReceipt, DataCoding: 8}
	ucs, err := coding.Encode(text, coding.UCS2)
	if err != nil {
		t.Fatal(err)
	}
	ds.Options.Set(TagMessagePayload, ucs)
	r, err := ParseReceipt(ds)
	if err != nil || r.ID != "7f3a" || r.Stat != "DELIVRD" || r.Text != "Код" || r.FromTLV {
		t.Fatalf("data_sm receipt in UCS-2: %+v, %v", r, err)
	}
	// The same as a deliver_sm in Latin-1.
	lat, err := coding.Encode("id:42 stat:UNDELIV err:001 text:café", coding.Latin1)
	if err != nil {
		t.Fatal(err)
	}
	r, err = ParseReceipt(&DeliverSM{ESMClass: ESMClassDeliveryReceipt, DataCoding: 3, ShortMessage: lat})
	if err != nil || r.ID != "42" || r.Text != "café" {
		t.Fatalf("Latin-1 receipt: %+v, %v", r, err)
	}
	// A data_sm that is no receipt, and another PDU.
	if _, err := ParseReceipt(&DataSM{}); !errors.Is(err, ErrNotReceipt) {
		t.Fatalf("plain data_sm: %v", err)
	}
	if _, err := ParseReceipt(&SubmitSM{}); !errors.Is(err, ErrNotReceipt) {
		t.Fatalf("submit_sm: %v", err)
	}
	ex, err := dlr.Parse("id:IIIIIIIIII sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 stat:DELIVRD err:0 Text:hello")
	if err != nil || ex.ID != "IIIIIIIIII" || ex.Text != "hello" || ex.Err != "0" {
		t.Fatalf("the Appendix B example: %+v, %v", ex, err)
	}
}
