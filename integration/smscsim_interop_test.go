package integration

// Interop of smscsim (package simulator) with the SMPP clients our users'
// CI pipelines already use: the npm package smpp (node/smscsim-esme.js),
// github.com/linxGnu/gosmpp and github.com/fiorix/go-smpp. Each binds to
// the simulator, submits GSM 03.38, UCS-2 and long (segmented) text with
// registered_delivery 1, and receives a receipt for every message id; the
// simulator must have stored each message with its text decoded and the
// segments joined. Deadlines are hang guards, not timing assertions.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	fsmpp "github.com/fiorix/go-smpp/smpp"
	fpdu "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/linxGnu/gosmpp"
	gdata "github.com/linxGnu/gosmpp/data"
	gpdu "github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/smpp/dlr"
)

const smscsimHang = 30 * time.Second

var (
	smscsimGSM  = "Your code is 123456 @ {ok}"
	smscsimUCS2 = "Ваш код 123456 ✓"
	smscsimLong = "Long text: " + strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789. ", 6)
)

func startSmscsim(t *testing.T) *simulator.Simulator {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", Seed: 1,
		Accounts: []simulator.Account{{SystemID: "interop", Password: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), smscsimHang)
		defer cancel()
		if err := sim.Close(ctx); err != nil {
			t.Errorf("simulator Close: %v", err)
		}
	})
	return sim
}

// checkSmscsimMessages checks that the simulator holds the three texts sent
// to `to`, decoded and joined.
func checkSmscsimMessages(t *testing.T, sim *simulator.Simulator, to string, long string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), smscsimHang)
	defer cancel()
	var texts map[string]bool
	for {
		texts = map[string]bool{}
		for _, m := range sim.Messages(simulator.Filter{To: to, SystemID: "interop"}) {
			if m.Complete {
				texts[m.Text] = true
			}
		}
		if len(texts) >= 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, want := range []string{smscsimGSM, smscsimUCS2, long} {
		if !texts[want] {
			t.Errorf("simulator lacks the message %q; it has %v", want, texts)
		}
	}
}

func TestSmscsimInteropNPM(t *testing.T) {
	sim := startSmscsim(t)
	port := sim.Addr()[strings.LastIndex(sim.Addr(), ":")+1:]
	p := startNode(t, "smscsim-esme.js", "--port", port, "--system-id", "interop", "--password", "secret",
		"--to", "4915100000001", "--mo", "1")
	p.WaitEvent("bound", isEvent("bound"))
	ctx, cancel := context.WithTimeout(context.Background(), smscsimHang)
	defer cancel()
	if err := sim.InjectMO(ctx, simulator.MO{From: "+4915100000001", To: "12345", Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("smscsim-esme.js: %v", err)
	}
	done := p.Filter(isEvent("done"))
	if len(done) != 1 {
		t.Fatalf("no done event")
	}
	resps := p.Filter(isEvent("submit_resp"))
	if len(resps) < 4 || done[0].Int("receipts") != len(resps) {
		t.Fatalf("%d submits, %d receipts", len(resps), done[0].Int("receipts"))
	}
	for _, r := range p.Filter(isEvent("receipt")) {
		rc, err := dlr.Parse(r.Str("text"))
		if err != nil || rc.ID != r.Str("id") || rc.Stat != "DELIVRD" || r.Int("state") != int(dlr.Delivered) {
			t.Errorf("receipt %v: %+v %v", r, rc, err)
		}
	}
	if mo := p.Filter(isEvent("mo")); len(mo) != 1 || mo[0].Str("text") != "STOP" || mo[0].Str("from") != "4915100000001" {
		t.Errorf("MO events %v", mo)
	}
	checkSmscsimMessages(t, sim, "4915100000001", smscsimLong)
}

func TestSmscsimInteropGosmpp(t *testing.T) {
	sim := startSmscsim(t)
	var mu sync.Mutex
	ids := map[string]bool{}
	receipts := map[string]string{} // receipted id -> text
	changed := make(chan struct{}, 1)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	sess, err := gosmpp.NewSession(
		gosmpp.TRXConnector(gosmpp.NonTLSDialer, gosmpp.Auth{SMSC: sim.Addr(), SystemID: "interop", Password: "secret"}),
		gosmpp.Settings{
			ReadTimeout:      10 * time.Second,
			EnquireLink:      5 * time.Second,
			OnSubmitError:    func(p gpdu.PDU, err error) { t.Errorf("gosmpp submit error: %v", err) },
			OnReceivingError: func(err error) { t.Logf("gosmpp receiving: %v", err) },
			OnPDU: func(p gpdu.PDU, responded bool) {
				mu.Lock()
				defer mu.Unlock()
				switch pd := p.(type) {
				case *gpdu.SubmitSMResp:
					if pd.CommandStatus != gdata.ESME_ROK {
						t.Errorf("submit_sm_resp status %v", pd.CommandStatus)
					}
					ids[pd.MessageID] = true
				case *gpdu.DeliverSM:
					text, _ := pd.Message.GetMessage()
					if pd.EsmClass&0x04 == 0 {
						t.Errorf("deliver_sm that is no receipt: %q", text)
						return
					}
					rc, err := dlr.Parse(text)
					if err != nil {
						t.Errorf("receipt text %q: %v", text, err)
						return
					}
					if f, ok := pd.OptionalParameters[gpdu.TagReceiptedMessageID]; !ok || strings.TrimRight(string(f.Data), "\x00") != rc.ID {
						t.Errorf("receipted_message_id %q, text id %q", f.Data, rc.ID)
					}
					receipts[rc.ID] = rc.Stat
				}
				signal()
			},
		}, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	addr := func(ton, npi byte, a string) gpdu.Address {
		ad := gpdu.NewAddress()
		ad.SetTon(ton)
		ad.SetNpi(npi)
		if err := ad.SetAddress(a); err != nil {
			t.Fatal(err)
		}
		return ad
	}
	var sms []*gpdu.SubmitSM
	mk := func() *gpdu.SubmitSM {
		sm := gpdu.NewSubmitSM().(*gpdu.SubmitSM)
		sm.SourceAddr = addr(5, 0, "OTPD")
		sm.DestAddr = addr(1, 1, "4915100000002")
		sm.RegisteredDelivery = 1
		return sm
	}
	sm := mk()
	if err := sm.Message.SetMessageWithEncoding(smscsimGSM, gdata.GSM7BIT); err != nil {
		t.Fatal(err)
	}
	sms = append(sms, sm)
	sm = mk()
	if err := sm.Message.SetMessageWithEncoding(smscsimUCS2, gdata.UCS2); err != nil {
		t.Fatal(err)
	}
	sms = append(sms, sm)
	sm = mk()
	if err := sm.Message.SetLongMessageWithEnc(smscsimLong, gdata.GSM7BIT); err != nil {
		t.Fatal(err)
	}
	parts, err := sm.Split()
	if err != nil || len(parts) < 2 {
		t.Fatalf("gosmpp split: %d parts, %v", len(parts), err)
	}
	sms = append(sms, parts...)
	for _, sm := range sms {
		if err := sess.Transceiver().Submit(sm); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(smscsimHang)
	for {
		mu.Lock()
		done := len(ids) == len(sms) && len(receipts) == len(sms)
		for id := range ids {
			if _, ok := receipts[id]; !ok {
				done = false
			}
		}
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			mu.Lock()
			t.Fatalf("%d of %d responses, %d receipts: ids %v receipts %v", len(ids), len(sms), len(receipts), ids, receipts)
		}
	}
	for id, stat := range receipts {
		if stat != "DELIVRD" {
			t.Errorf("receipt %s: %s", id, stat)
		}
	}
	checkSmscsimMessages(t, sim, "4915100000002", smscsimLong)
}

func TestSmscsimInteropFiorix(t *testing.T) {
	sim := startSmscsim(t)
	var mu sync.Mutex
	receipts := map[string]string{}
	changed := make(chan struct{}, 1)
	tx := &fsmpp.Transceiver{Addr: sim.Addr(), User: "interop", Passwd: "secret",
		Handler: func(p fpdu.Body) {
			if p.Header().ID != fpdu.DeliverSMID {
				return
			}
			f := p.Fields()
			text := f[pdufield.ShortMessage].String()
			rc, err := dlr.Parse(text)
			if err != nil || f[pdufield.ESMClass].Bytes()[0]&0x04 == 0 {
				t.Errorf("not a receipt: %q %v", text, err)
				return
			}
			tlv := p.TLVFields()[pdutlv.TagReceiptedMessageID]
			if tlv == nil || strings.TrimRight(string(tlv.Bytes()), "\x00") != rc.ID {
				t.Errorf("receipted_message_id %v, text id %q", tlv, rc.ID)
			}
			mu.Lock()
			receipts[rc.ID] = rc.Stat
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		}}
	status := tx.Bind()
	select {
	case st := <-status:
		if st.Status() != fsmpp.Connected {
			t.Fatalf("fiorix bind: %v %v", st.Status(), st.Error())
		}
	case <-time.After(smscsimHang):
		t.Fatal("fiorix: no bind")
	}
	defer tx.Close()
	base := func(text pdutext.Codec) *fsmpp.ShortMessage {
		return &fsmpp.ShortMessage{Src: "OTPD", Dst: "4915100000003", Text: text, Register: pdufield.FinalDeliveryReceipt,
			SourceAddrTON: 5, DestAddrTON: 1, DestAddrNPI: 1}
	}
	var ids []string
	for _, text := range []pdutext.Codec{pdutext.GSM7(smscsimGSM), pdutext.UCS2(smscsimUCS2)} {
		sm, err := tx.Submit(base(text))
		if err != nil {
			t.Fatalf("fiorix submit: %v", err)
		}
		ids = append(ids, sm.RespID())
	}
	long, err := tx.SubmitLongMsg(base(pdutext.GSM7(smscsimLong)))
	if err != nil || len(long) < 2 {
		t.Fatalf("fiorix long: %d parts, %v", len(long), err)
	}
	for i := range long {
		ids = append(ids, long[i].RespID())
	}
	deadline := time.After(smscsimHang)
	for {
		mu.Lock()
		missing := 0
		for _, id := range ids {
			if receipts[id] == "" {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d receipts missing of ids %v", missing, ids)
		}
	}
	checkSmscsimMessages(t, sim, "4915100000003", smscsimLong)
}
