package smpp

import (
	"bufio"
	"io"
	"testing"
)

func benchPDUs() map[string]PDU {
	var rcpt Options
	rcpt.SetCString(TagReceiptedMessageID, "2d6f0b6f")
	rcpt.SetUint(TagMessageState, uint32(StateDelivered))
	return map[string]PDU{
		"submit_sm": &SubmitSM{Header: Header{Sequence: 1}, SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1,
			DestinationAddr: "4915112345678", RegisteredDelivery: 1, ValidityPeriod: "000000000500000R", ShortMessage: []byte("Your code is 123456. It expires in 5 minutes.")},
		"submit_sm_resp": &SubmitSMResp{Header: Header{Sequence: 1}, MessageID: "2d6f0b6f"},
		"deliver_sm": &DeliverSM{Header: Header{Sequence: 1}, SourceAddrTON: 1, SourceAddrNPI: 1, SourceAddr: "4915112345678", DestAddrTON: 5, DestinationAddr: "OTPD",
			ESMClass: ESMClassDeliveryReceipt, ShortMessage: []byte("id:2d6f0b6f sub:001 dlvrd:001 submit date:2611221030 done date:2611221031 stat:DELIVRD err:000 text:Your code is 12345"), Options: rcpt},
		"deliver_sm_resp": &DeliverSMResp{Header: Header{Sequence: 1}},
		"enquire_link":    &EnquireLink{Header: Header{Sequence: 1}},
	}
}

var benchOrder = []string{"submit_sm", "submit_sm_resp", "deliver_sm", "deliver_sm_resp", "enquire_link"}

// BenchmarkEncode encodes into a reused buffer: the aim is 0 allocs/op.
func BenchmarkEncode(b *testing.B) {
	pdus := benchPDUs()
	for _, name := range benchOrder {
		p := pdus[name]
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.Head().Sequence = uint32(i&0x7FFFFFFF) + 1
				var err error
				if buf, err = AppendPDU(buf[:0], p); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkDecode decodes into a reused struct, as Reader.Reuse does.
func BenchmarkDecode(b *testing.B) {
	pdus := benchPDUs()
	for _, name := range benchOrder {
		raw, _ := Marshal(pdus[name])
		h, _ := ParseHeader(raw)
		body := raw[HeaderLen:]
		p := New(h.Command)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for i := 0; i < b.N; i++ {
				if err := DecodeBody(p, h, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopReader serves the same stream over and over.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	if l.off == len(l.data) {
		l.off = 0
	}
	n := copy(p, l.data[l.off:])
	l.off += n
	return n, nil
}

// BenchmarkReader reads a stream of submit_sm through a Reader with Reuse.
func BenchmarkReader(b *testing.B) {
	raw, _ := Marshal(benchPDUs()["submit_sm"])
	var stream []byte
	for i := 0; i < 64; i++ {
		stream = append(stream, raw...)
	}
	r := NewReader(bufio.NewReaderSize(io.Reader(&loopReader{data: stream}), 64*1024))
	r.Reuse = true
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		if _, err := r.ReadPDU(); err != nil {
			b.Fatal(err)
		}
	}
}
