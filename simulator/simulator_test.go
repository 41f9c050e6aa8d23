package simulator

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

func TestSubmitStoreAndReceipt(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("4915112345678", "Your code is 123456", 1))

	m, err := sim.WaitForMessage(testCtx(t), Filter{To: "+4915112345678"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != id || m.Text != "Your code is 123456" || m.From != "OTPD" || m.SystemID != "otp" || m.Segments != 1 || !m.Complete {
		t.Fatalf("message %+v", m)
	}
	r, d := e.receipt(t)
	if d.ESMClass != smpp.ESMClassDeliveryReceipt || d.SourceAddr != "4915112345678" || d.DestinationAddr != "OTPD" {
		t.Fatalf("receipt deliver_sm %+v", d)
	}
	if !r.FromTLV || r.ID != id || r.State != dlr.Delivered || r.Stat != "DELIVRD" || r.Err != "000" {
		t.Fatalf("receipt %+v", r)
	}
	text, err := dlr.ParseBytes(d.ShortMessage)
	if err != nil || text.ID != id || text.Sub != 1 || text.Dlvrd != 1 || text.Text != "Your code is 123456" {
		t.Fatalf("receipt text %q: %+v %v", d.ShortMessage, text, err)
	}
	waitFor(t, "the receipt recorded as delivered", func() bool {
		m, _ := sim.Message(id)
		return m.Receipt != nil && m.Receipt.Delivered
	})
	m, _ = sim.Message(id)
	if m.Receipt.Stat != "DELIVRD" || m.Receipt.Err != "000" || m.Receipt.Attempts != 1 || m.State != "DELIVERED" {
		t.Fatalf("receipt info %+v state %s", m.Receipt, m.State)
	}
}

func TestAccounts(t *testing.T) {
	sim := startSim(t, Config{Accounts: []Account{
		{SystemID: "otp", Password: "secret"},
		{SystemID: "typed", Password: "pw", SystemType: "OTP"},
		{SystemID: "txonly", Password: "pw", BindTypes: []smpp.BindType{smpp.BindTransmitter}},
		{SystemID: "one", Password: "pw", MaxBinds: 1},
	}})
	cases := []struct {
		name string
		cfg  smpp.Config
		want smpp.CommandStatus
	}{
		{"ok", smpp.Config{SystemID: "otp", Password: "secret"}, smpp.ESME_ROK},
		{"unknown system_id", smpp.Config{SystemID: "nobody", Password: "secret"}, smpp.ESME_RINVSYSID},
		{"wrong password", smpp.Config{SystemID: "otp", Password: "wrong"}, smpp.ESME_RINVPASWD},
		{"wrong system_type", smpp.Config{SystemID: "typed", Password: "pw", SystemType: "X"}, smpp.ESME_RINVSYSTYP},
		{"right system_type", smpp.Config{SystemID: "typed", Password: "pw", SystemType: "OTP"}, smpp.ESME_ROK},
		{"bind type not allowed", smpp.Config{SystemID: "txonly", Password: "pw", Bind: smpp.BindReceiver}, smpp.ESME_RBINDFAIL},
		{"bind type allowed", smpp.Config{SystemID: "txonly", Password: "pw", Bind: smpp.BindTransmitter}, smpp.ESME_ROK},
	}
	first := dial(t, sim, smpp.Config{SystemID: "one", Password: "pw"})
	if _, err := dialCfg(t, sim.Addr(), smpp.Config{SystemID: "one", Password: "pw"}); !errors.Is(err, smpp.ESME_RBINDFAIL) {
		t.Fatalf("second bind with max_binds 1: %v", err)
	}
	first.Close(testCtx(t))
	waitFor(t, "the bind to be released", func() bool { return len(sim.Sessions()) == 0 })
	dial(t, sim, smpp.Config{SystemID: "one", Password: "pw"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := dialCfg(t, sim.Addr(), c.cfg)
			if c.want == smpp.ESME_ROK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("bind: %v, want %v", err, c.want)
			}
		})
	}
	if !strings.Contains(metricsText(t, sim), `smscsim_binds_total{status="ESME_RINVPASWD"} 1`) {
		t.Error("refused binds not counted")
	}
}

func TestAccountTPS(t *testing.T) {
	sim := startSim(t, Config{Accounts: []Account{{SystemID: "otp", Password: "secret", TPS: 1}}})
	e := dial(t, sim, smpp.Config{})
	throttled := 0
	for i := 0; i < 5; i++ {
		if submitStatus(t, e, gsm("4915112345678", "hi", 0)) == smpp.ESME_RTHROTTLED {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("5 submits at once with tps=1: none throttled")
	}
}

func TestMessageIDFormats(t *testing.T) {
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, idf := range []string{"dec", "hex", "uuid"} {
		for _, rf := range []string{"same", "dec", "hex"} {
			for _, keep := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/keep=%v", idf, rf, keep), func(t *testing.T) {
					sim := startSim(t, Config{MessageIDFormat: idf, ReceiptIDFormat: rf, ReceiptTLVKeepsID: keep})
					e := dial(t, sim, smpp.Config{})
					id := submit(t, e, gsm("4915112345678", "hi", 1))
					var n *big.Int
					switch idf {
					case "dec":
						n, _ = new(big.Int).SetString(id, 10)
					case "hex":
						if strings.Trim(id, "0123456789") == "" {
							t.Fatalf("hex id %q without a letter", id)
						}
						n, _ = new(big.Int).SetString(id, 16)
					case "uuid":
						if !uuidRe.MatchString(id) {
							t.Fatalf("id %q is not a UUID", id)
						}
						n, _ = new(big.Int).SetString(strings.ReplaceAll(id, "-", ""), 16)
					}
					if n == nil {
						t.Fatalf("id %q is not %s", id, idf)
					}
					want := id
					switch rf {
					case "dec":
						want = n.Text(10)
					case "hex":
						if idf != "hex" {
							want = n.Text(16)
						}
					}
					if rf == "dec" && idf == "dec" || rf == "hex" && idf == "hex" {
						want = id
					}
					_, d := e.receipt(t)
					text, _ := dlr.ParseBytes(d.ShortMessage)
					tlv, _ := d.Options.ReceiptedMessageID()
					wantTLV := want
					if keep {
						wantTLV = id
					}
					if text.ID != want || tlv != wantTLV {
						t.Fatalf("submit id %q: receipt text id %q TLV %q, want %q and %q", id, text.ID, tlv, want, wantTLV)
					}
					// Every form of the id finds the message through query_sm.
					resp, err := e.Send(testCtx(t), &smpp.QuerySM{MessageID: id, SourceAddrTON: 5, SourceAddr: "OTPD"})
					if err != nil || resp.(*smpp.QuerySMResp).MessageState != smpp.MessageState(dlr.Delivered) {
						t.Fatalf("query_sm %q: %v %+v", id, err, resp)
					}
				})
			}
		}
	}
}

func TestCodings(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	gsmText := "Code 1234 @ £5 {€} ü"
	gsmBytes, err := coding.Encode(gsmText, coding.Default)
	if err != nil {
		t.Fatal(err)
	}
	ucs := "Код 1234 🔑 確認"
	ucsBytes, err := coding.EncodeUTF16(ucs) // an emoji: UTF-16 under data_coding 8, as many SMSCs take it
	if err != nil {
		t.Fatal(err)
	}
	latin := "Código 1234 ñ"
	latinBytes, _ := coding.Encode(latin, coding.Latin1)
	cases := []struct {
		to   string
		dc   byte
		data []byte
		want string
	}{
		{"491500000001", 0x00, gsmBytes, gsmText},
		{"491500000002", 0x08, ucsBytes, ucs},
		{"491500000003", 0x03, latinBytes, latin},
		{"491500000004", 0x01, []byte("IA5 text 42"), "IA5 text 42"},
	}
	for _, c := range cases {
		p := gsm(c.to, "", 0)
		p.DataCoding, p.ShortMessage = c.dc, c.data
		submit(t, e, p)
		m, err := sim.WaitForMessage(testCtx(t), Filter{To: c.to})
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != c.want || m.DataCoding != c.dc {
			t.Errorf("dc %#x: text %q, want %q", c.dc, m.Text, c.want)
		}
	}
	// Binary data is kept in hex.
	p := gsm("491500000005", "", 0)
	p.DataCoding, p.ShortMessage = 0x04, []byte{0xde, 0xad, 0xbe, 0xef}
	submit(t, e, p)
	m, _ := sim.WaitForMessage(testCtx(t), Filter{To: "491500000005"})
	if m.DataHex != "deadbeef" || m.Text != "" {
		t.Errorf("binary message %+v", m)
	}
}

func TestConcatenation(t *testing.T) {
	long := strings.Repeat("Your one-time code is 123456. ", 12) + "€ end"
	longUCS := strings.Repeat("Ваш код 123456. ", 10) + "🔑"
	cases := []struct {
		name   string
		text   string
		method coding.ConcatMethod
	}{
		{"udh8", long, coding.ConcatUDH8},
		{"udh16", long, coding.ConcatUDH16},
		{"sar", long, coding.ConcatSAR},
		{"payload", long, coding.ConcatPayload},
		{"udh8 ucs2", longUCS, coding.ConcatUDH8},
		{"sar ucs2", longUCS, coding.ConcatSAR},
	}
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			to := fmt.Sprintf("4915100000%02d", i)
			parts, err := smpp.SplitSubmit(gsm(to, "", 1), c.text, coding.SplitOptions{Auto: true, UTF16: true, Method: c.method, Ref: uint16(300 + i)})
			if err != nil {
				t.Fatal(err)
			}
			// Send the segments last first: reassembly must not care.
			var ids []string
			for k := len(parts) - 1; k >= 0; k-- {
				ids = append(ids, submit(t, e, parts[k]))
			}
			m, err := sim.WaitForMessage(testCtx(t), Filter{To: to})
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != c.text || m.Segments != len(parts) || m.SegmentsReceived != len(parts) || !m.Complete {
				t.Fatalf("message: %d segments (%d received), complete %v, text %q", m.Segments, m.SegmentsReceived, m.Complete, m.Text)
			}
			// One receipt per segment, each with its own id; any segment
			// id finds the message.
			got := map[string]bool{}
			for range parts {
				r, _ := e.receipt(t)
				got[r.ID] = true
			}
			for _, id := range ids {
				if !got[id] {
					t.Errorf("no receipt for segment %s (got %v)", id, got)
				}
				if mm, ok := sim.Message(id); !ok || mm.ID != m.ID {
					t.Errorf("Message(%s): %v %s", id, ok, mm.ID)
				}
			}
			if len(parts) > 1 && len(m.SegmentIDs) != len(parts) {
				t.Errorf("segment ids %v", m.SegmentIDs)
			}
		})
	}
}

func TestIncompleteSegmentsExpire(t *testing.T) {
	sim := startSim(t, Config{SegmentTimeout: time.Millisecond})
	e := dial(t, sim, smpp.Config{})
	parts, _ := smpp.SplitSubmit(gsm("491577", "", 0), strings.Repeat("x", 400), coding.SplitOptions{Auto: true})
	id := submit(t, e, parts[0])
	m, ok := sim.Message(id)
	if !ok || m.Complete || m.Segments != len(parts) || m.SegmentsReceived != 1 {
		t.Fatalf("incomplete message %+v", m)
	}
	waitFor(t, "the incomplete message to expire with its first segment's text", func() bool {
		m, _ := sim.Message(id)
		return strings.HasPrefix(m.Text, "xxx") && !m.Complete
	})
}

func TestRetention(t *testing.T) {
	sim := startSim(t, Config{Retention: 5})
	e := dial(t, sim, smpp.Config{})
	var ids []string
	for i := 0; i < 8; i++ {
		ids = append(ids, submit(t, e, gsm(fmt.Sprintf("49151%d", i), "hi", 0)))
	}
	msgs := sim.Messages(Filter{})
	if len(msgs) != 5 || msgs[0].ID != ids[7] || msgs[4].ID != ids[3] {
		t.Fatalf("%d messages, newest %s oldest %s", len(msgs), msgs[0].ID, msgs[len(msgs)-1].ID)
	}
	if _, ok := sim.Message(ids[0]); ok {
		t.Error("the oldest message is still there")
	}
	if !strings.Contains(metricsText(t, sim), "smscsim_messages_dropped_total 3") {
		t.Error("dropped messages not counted")
	}
	if got := sim.Messages(Filter{Limit: 2}); len(got) != 2 {
		t.Errorf("limit 2: %d", len(got))
	}
}

func TestRegisteredDelivery(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	cases := []struct {
		name   string
		to     string
		regDel byte
		esm    byte
		want   bool
	}{
		{"0 none", "4915100001", 0x00, 0, false},
		{"1 always", "4915100002", 0x01, 0, true},
		{"2 failure only, delivered", "4915100003", 0x02, 0, false},
		{"2 failure only, undeliverable", "+15550001234", 0x02, 0, true},
		{"kannel 0x11", "4915100004", 0x11, 0, true},
		{"kannel 0x12, delivered", "4915100005", 0x12, 0, false},
		{"sme ack bits only", "4915100006", 0x0C, 0, false},
		{"esm_class store and forward", "4915100007", 0x01, smpp.ESMClassStoreAndForward, true},
		{"esm_class datagram", "4915100008", 0x01, smpp.ESMClassDatagramMode, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := gsm(c.to, "hi", c.regDel)
			p.ESMClass = c.esm
			id := submit(t, e, p)
			// A sentinel with a receipt: receipts go out in order, so
			// once it is here any receipt of the first is too.
			sentinel := submit(t, e, gsm("4915199999", "sentinel", 1))
			r, _ := e.receipt(t)
			if c.want {
				if r.ID != id {
					t.Fatalf("receipt for %s, want %s", r.ID, id)
				}
				r, _ = e.receipt(t)
			}
			if r.ID != sentinel {
				t.Fatalf("receipt for %s, want the sentinel %s", r.ID, sentinel)
			}
			e.none(t)
		})
	}
}

func TestOutcomesAndDelay(t *testing.T) {
	outcomes, err := ParseOutcomes("DELIVRD=0.5,UNDELIV:009=0.3,EXPIRED=0.2")
	if err != nil {
		t.Fatal(err)
	}
	run := func() []string {
		sim := startSim(t, Config{DLROutcomes: outcomes, DLRDelay: Delay{Min: time.Millisecond, Max: 5 * time.Millisecond}, Seed: 7})
		e := dial(t, sim, smpp.Config{})
		var got []string
		seen := map[string]int{}
		for i := 0; i < 60; i++ {
			id := submit(t, e, gsm("4915112345678", "hi", 1))
			r, _ := e.receipt(t)
			if r.ID != id {
				t.Fatalf("receipt %s for %s", r.ID, id)
			}
			want := map[string]string{"DELIVRD": "000", "UNDELIV": "009", "EXPIRED": "002"}[r.Stat]
			if want == "" || r.Err != want {
				t.Fatalf("receipt stat %s err %s", r.Stat, r.Err)
			}
			seen[r.Stat]++
			got = append(got, r.Stat)
		}
		if len(seen) != 3 {
			t.Fatalf("outcomes seen: %v", seen)
		}
		return got
	}
	a, b := run(), run()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatal("the same seed drew different outcomes")
	}
}

func TestEnrouteQueryCancelReplace(t *testing.T) {
	sim := startSim(t, Config{DLRDelay: Delay{Min: time.Hour, Max: time.Hour}})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("4915112345678", "first text", 1))
	ctx := testCtx(t)
	resp, err := e.Send(ctx, &smpp.QuerySM{MessageID: id, SourceAddr: "OTPD"})
	if err != nil || resp.(*smpp.QuerySMResp).MessageState != smpp.MessageState(dlr.Enroute) || resp.(*smpp.QuerySMResp).FinalDate != "" {
		t.Fatalf("query_sm: %v %+v", err, resp)
	}
	if _, err := e.Send(ctx, &smpp.ReplaceSM{MessageID: id, SourceAddr: "OTPD", ShortMessage: []byte("second text")}); err != nil {
		t.Fatal(err)
	}
	if m, _ := sim.Message(id); m.Text != "second text" || m.State != "ENROUTE" {
		t.Fatalf("replaced: %+v", m)
	}
	if _, err := e.Send(ctx, &smpp.CancelSM{MessageID: id, SourceAddr: "OTPD"}); err != nil {
		t.Fatal(err)
	}
	resp, _ = e.Send(ctx, &smpp.QuerySM{MessageID: id, SourceAddr: "OTPD"})
	if q := resp.(*smpp.QuerySMResp); q.MessageState != smpp.MessageState(dlr.Deleted) || q.FinalDate == "" {
		t.Fatalf("query_sm after cancel: %+v", q)
	}
	for _, req := range []smpp.PDU{
		&smpp.CancelSM{MessageID: id, SourceAddr: "OTPD"},
		&smpp.ReplaceSM{MessageID: id, SourceAddr: "OTPD", ShortMessage: []byte("x")},
		&smpp.QuerySM{MessageID: "999"},
		&smpp.CancelSM{MessageID: "999"},
	} {
		want := map[smpp.CommandID]smpp.CommandStatus{smpp.CancelSMID: smpp.ESME_RCANCELFAIL, smpp.ReplaceSMID: smpp.ESME_RREPLACEFAIL, smpp.QuerySMID: smpp.ESME_RQUERYFAIL}[req.CommandID()]
		if _, err := e.Send(ctx, req); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", req.CommandID(), err, want)
		}
	}
	// Cancel by source and destination.
	submit(t, e, gsm("4915100077", "a", 1))
	submit(t, e, gsm("4915100077", "b", 1))
	if _, err := e.Send(ctx, &smpp.CancelSM{SourceAddr: "OTPD", DestinationAddr: "4915100077"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range sim.Messages(Filter{To: "4915100077"}) {
		if m.State != "DELETED" {
			t.Errorf("%s: %s", m.ID, m.State)
		}
	}
}

func TestDeliveredAfterDelay(t *testing.T) {
	// A message whose receipt is not asked for still reaches its outcome.
	sim := startSim(t, Config{DLRDelay: Delay{Min: time.Millisecond, Max: time.Millisecond}})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("+15550001111", "x", 0))
	waitFor(t, "the outcome", func() bool {
		m, _ := sim.Message(id)
		return m.State == "UNDELIVERABLE"
	})
}

func TestSubmitMultiAndDataSM(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	ctx := testCtx(t)
	resp, err := e.Send(ctx, &smpp.SubmitMulti{SourceAddrTON: 5, SourceAddr: "OTPD", RegisteredDelivery: 1,
		Dests:        []smpp.DestAddress{{TON: 1, NPI: 1, Addr: "491511"}, {TON: 1, NPI: 1, Addr: "15550019999"}, {TON: 1, NPI: 1, Addr: "491522"}, {DLName: "friends"}},
		ShortMessage: []byte("multi")})
	if err != nil {
		t.Fatal(err)
	}
	mr := resp.(*smpp.SubmitMultiResp)
	if mr.MessageID == "" || len(mr.Unsuccess) != 2 || mr.Unsuccess[0].Status != smpp.ESME_RINVDSTADR || mr.Unsuccess[1].Status != smpp.ESME_RINVDLNAME {
		t.Fatalf("submit_multi_resp %+v", mr)
	}
	for _, to := range []string{"491511", "491522"} {
		m, err := sim.WaitForMessage(ctx, Filter{To: to})
		if err != nil || m.ID != mr.MessageID || m.Text != "multi" || m.Command != "submit_multi" {
			t.Fatalf("%s: %+v %v", to, m, err)
		}
	}
	for i := 0; i < 2; i++ {
		if r, _ := e.receipt(t); r.ID != mr.MessageID {
			t.Fatalf("receipt id %s", r.ID)
		}
	}

	ds := &smpp.DataSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "491533", RegisteredDelivery: 1, DataCoding: 8}
	payload, _ := coding.Encode("data_sm текст", coding.UCS2)
	ds.Options.Set(smpp.TagMessagePayload, payload)
	dresp, err := e.Send(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	did := dresp.(*smpp.DataSMResp).MessageID
	m, _ := sim.WaitForMessage(ctx, Filter{To: "491533"})
	if m.ID != did || m.Text != "data_sm текст" || m.Command != "data_sm" {
		t.Fatalf("data_sm message %+v", m)
	}
	if r, _ := e.receipt(t); r.ID != did {
		t.Fatalf("data_sm receipt %s", r.ID)
	}
}

func TestReceiptsHeldUntilReceiverBinds(t *testing.T) {
	sim := startSim(t, Config{Accounts: []Account{{SystemID: "otp", Password: "secret"}, {SystemID: "other", Password: "pw"}}})
	tx := dial(t, sim, smpp.Config{Bind: smpp.BindTransmitter})
	other := dial(t, sim, smpp.Config{SystemID: "other", Password: "pw", Bind: smpp.BindReceiver})
	id := submit(t, tx, gsm("4915112345678", "held", 1))
	m, _ := sim.WaitForMessage(testCtx(t), Filter{To: "4915112345678"})
	if m.Receipt != nil {
		t.Fatalf("receipt sent with no receiver bound: %+v", m.Receipt)
	}
	rx := dial(t, sim, smpp.Config{Bind: smpp.BindReceiver})
	if r, _ := rx.receipt(t); r.ID != id {
		t.Fatalf("receipt %s, want %s", r.ID, id)
	}
	// The other account's receiver got nothing: it would have come first.
	if err := sim.InjectMO(testCtx(t), MO{From: "+491", To: "12345", Text: "mo", SystemID: "other"}); err != nil {
		t.Fatal(err)
	}
	if d := other.next(t); d.IsReceipt() {
		t.Fatalf("the other account got a receipt: %q", d.ShortMessage)
	}
}

func TestReceiptRetriedUntilAcked(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	n := 0
	e.answer = func(d *smpp.DeliverSM) smpp.CommandStatus {
		n++
		if n <= 2 {
			return smpp.ESME_RSYSERR
		}
		return smpp.ESME_ROK
	}
	id := submit(t, e, gsm("4915112345678", "retry", 1))
	for i := 0; i < 3; i++ {
		if r, _ := e.receipt(t); r.ID != id {
			t.Fatalf("attempt %d: receipt %s", i+1, r.ID)
		}
	}
	waitFor(t, "the receipt to be recorded delivered", func() bool {
		m, _ := sim.Message(id)
		return m.Receipt != nil && m.Receipt.Delivered
	})
	m, _ := sim.Message(id)
	if m.Receipt.Attempts != 3 || m.Receipt.Acked != 1 {
		t.Fatalf("receipt info %+v", m.Receipt)
	}
	// Acknowledged: never sent again (a sentinel comes next).
	sentinel := submit(t, e, gsm("4915100000", "sentinel", 1))
	if r, _ := e.receipt(t); r.ID != sentinel {
		t.Fatalf("receipt %s after the acknowledged one, want the sentinel", r.ID)
	}
	if !strings.Contains(metricsText(t, sim), "smscsim_receipts_retried_total 2") {
		t.Error("retries not counted")
	}
}

func TestReceiptRetriedOnAnotherBind(t *testing.T) {
	// A receiver that goes away with the receipt unanswered: it comes
	// again on the next receiver of the account.
	sim := startSim(t, Config{})
	tx := dial(t, sim, smpp.Config{Bind: smpp.BindTransmitter})
	rx1 := dial(t, sim, smpp.Config{Bind: smpp.BindReceiver})
	rx1.answer = func(d *smpp.DeliverSM) smpp.CommandStatus { return noAnswer }
	id := submit(t, tx, gsm("4915112345678", "lost", 1))
	waitFor(t, "the receipt sent", func() bool {
		m, _ := sim.Message(id)
		return m.Receipt != nil
	})
	rx1.next(t)
	rx1.Abort()
	rx2 := dial(t, sim, smpp.Config{Bind: smpp.BindReceiver})
	if r, _ := rx2.receipt(t); r.ID != id {
		t.Fatalf("receipt %s, want %s", r.ID, id)
	}
}

// TestReceiptRouteOther: with DLRRoute "other" each receipt goes out on
// the account's other transceiver, never on the one that submitted, and
// on the submitting one once it is the only receiver left; with "any"
// (round robin) some come back on the submitting bind.
func TestReceiptRouteOther(t *testing.T) {
	const n = 10
	// route submits n messages on each of two binds and reports, per bind,
	// how many of the receipts it got were of its own submits.
	route := func(t *testing.T, sim *Simulator) (a, b *esme, own int) {
		a = dial(t, sim, smpp.Config{})
		b = dial(t, sim, smpp.Config{})
		by := map[string]*esme{}
		for i := range n {
			by[submit(t, a, gsm("4915112345678", fmt.Sprint("from a ", i), 1))] = a
			by[submit(t, b, gsm("4915112345679", fmt.Sprint("from b ", i), 1))] = b
		}
		for _, e := range []*esme{a, b} {
			for range n {
				r, _ := e.receipt(t)
				from, ok := by[r.ID]
				if !ok {
					t.Fatalf("receipt of an unknown id %s", r.ID)
				}
				delete(by, r.ID)
				if from == e {
					own++
				}
			}
		}
		a.none(t)
		b.none(t)
		return a, b, own
	}
	t.Run("other", func(t *testing.T) {
		sim := startSim(t, Config{DLRRoute: "other"})
		a, b, own := route(t, sim)
		if own != 0 {
			t.Fatalf("%d of %d receipts came on the bind that submitted the message", own, 2*n)
		}
		b.Abort()
		waitFor(t, "the second bind to be gone", func() bool { return len(sim.Sessions()) == 1 })
		id := submit(t, a, gsm("4915112345678", "alone", 1))
		if r, _ := a.receipt(t); r.ID != id {
			t.Fatalf("receipt %s, want %s on the only bind left", r.ID, id)
		}
	})
	t.Run("any", func(t *testing.T) {
		// Round robin over both binds: of the receipts of a's submits,
		// some come back on a.
		sim := startSim(t, Config{})
		a := dial(t, sim, smpp.Config{})
		b := dial(t, sim, smpp.Config{})
		for i := range 2 * n {
			submit(t, a, gsm("4915112345678", fmt.Sprint("from a ", i), 1))
		}
		got := map[*esme]int{}
		for range 2 * n {
			select {
			case <-a.in:
				got[a]++
			case <-b.in:
				got[b]++
			case <-time.After(hang):
				t.Fatalf("receipts: %d on a, %d on b, want %d in all", got[a], got[b], 2*n)
			}
		}
		if got[a] == 0 || got[b] == 0 {
			t.Fatalf("receipts: %d on a, %d on b, want both", got[a], got[b])
		}
	})
}

func TestDefaultRules(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("+15550001234", "x", 1))
	r, _ := e.receipt(t)
	if r.ID != id || r.Stat != "UNDELIV" || r.Err != "001" || r.State != dlr.Undeliverable {
		t.Fatalf("receipt %+v", r)
	}
	if st := submitStatus(t, e, gsm("15550011234", "x", 1)); st != smpp.ESME_RINVDSTADR {
		t.Fatalf("+1555001: %v", st)
	}
	if st := submitStatus(t, e, gsm("15550041234", "x", 1)); st != smpp.ESME_RTHROTTLED {
		t.Fatalf("+1555004: %v", st)
	}
	submit(t, e, gsm("15550021234", "never", 1))
	id = submit(t, e, gsm("15550031234", "x", 1))
	if r, _ := e.receipt(t); r.ID != id || r.Stat != "EXPIRED" || r.Err != "002" {
		t.Fatalf("receipt %+v, want EXPIRED for %s (and none for +1555002)", r, id)
	}
}

func TestCustomRules(t *testing.T) {
	r1, err := ParseRule("+4917=REJECTD:042")
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := ParseRule("4918=reject:0x45")
	sim := startSim(t, Config{Rules: []Rule{r1, r2}})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("491700", "x", 1))
	if r, _ := e.receipt(t); r.ID != id || r.Stat != "REJECTD" || r.Err != "042" {
		t.Fatalf("receipt %+v", r)
	}
	if st := submitStatus(t, e, gsm("+491800", "x", 1)); st != smpp.ESME_RSUBMITFAIL {
		t.Fatalf("status %v", st)
	}
	// The default magic numbers are off with rules of one's own.
	id = submit(t, e, gsm("15550011234", "x", 1))
	if r, _ := e.receipt(t); r.ID != id || r.Stat != "DELIVRD" {
		t.Fatalf("receipt %+v", r)
	}
}

func TestMO(t *testing.T) {
	sim := startSim(t, Config{})
	ctx := testCtx(t)
	if err := sim.InjectMO(ctx, MO{From: "+4915112345678", To: "OTPD", Text: "STOP"}); !errors.Is(err, ErrNoReceiver) {
		t.Fatalf("no receiver: %v", err)
	}
	e := dial(t, sim, smpp.Config{})
	if err := sim.InjectMO(ctx, MO{From: "+4915112345678", To: "12345", Text: "STOP €"}); err != nil {
		t.Fatal(err)
	}
	d := e.next(t)
	text, _ := coding.Decode(d.ShortMessage, coding.DataCoding(d.DataCoding))
	if d.IsReceipt() || d.SourceAddr != "4915112345678" || d.SourceAddrTON != smpp.TONInternational || d.DestinationAddr != "12345" || text != "STOP €" {
		t.Fatalf("MO %+v text %q", d, text)
	}
	// A long UCS-2 text comes in segments.
	long := strings.Repeat("Привет ", 30)
	var got map[string]any
	code := do(t, sim.Handler(), "POST", "/api/mo", `{"from":"+4915112345678","to":"12345","text":"`+long+`","system_id":"otp"}`, &got)
	if code != 200 || got["parts"].(float64) < 2 {
		t.Fatalf("POST /api/mo: %d %v", code, got)
	}
	re := coding.NewReassembler(coding.ReassemblerConfig{})
	for {
		d := e.next(t)
		p, ok, err := smpp.MessagePart(d.ESMClass, d.ShortMessage, d.Options)
		if err != nil || !ok || d.DataCoding != 8 {
			t.Fatalf("segment: %v %v dc %d", ok, err, d.DataCoding)
		}
		parts, done, _ := re.Add("k", p.Ref, p.Total, p.Seq, p.Data, time.Now())
		if done {
			var b []byte
			for _, x := range parts {
				b = append(b, x...)
			}
			if s, _ := coding.Decode(b, coding.UCS2); s != long {
				t.Fatalf("MO text %q", s)
			}
			break
		}
	}
	if code := do(t, sim.Handler(), "POST", "/api/mo", `{"from":"+49","to":"1","text":"x","system_id":"nobody"}`, &got); code != 409 {
		t.Fatalf("no receiver: %d", code)
	}
	if code := do(t, sim.Handler(), "POST", "/api/mo", `{"to":"1"}`, &got); code != 400 {
		t.Fatalf("no from: %d", code)
	}
}

func TestWaitForMessage(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	got := make(chan Message, 1)
	go func() {
		m, err := sim.WaitForMessage(testCtx(t), Filter{To: "+4915112345678"})
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	submit(t, e, gsm("4915100000000", "not this one", 0))
	submit(t, e, gsm("4915112345678", "Your code is 987654", 0))
	if m := <-got; m.Text != "Your code is 987654" {
		t.Fatalf("got %q", m.Text)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sim.WaitForMessage(ctx, Filter{To: "0000"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	// Close ends a wait.
	sim2, _ := Start(Config{SMPPAddr: "127.0.0.1:0"})
	errc := make(chan error, 1)
	go func() {
		_, err := sim2.WaitForMessage(context.Background(), Filter{To: "1"})
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond)
	sim2.Close(testCtx(t))
	if err := <-errc; err == nil {
		t.Fatal("wait not ended by Close")
	}
}

func TestResetAndSessions(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	dial(t, sim, smpp.Config{Bind: smpp.BindReceiver})
	submit(t, e, gsm("491", "x", 0))
	sim.Reset()
	if n := len(sim.Messages(Filter{})); n != 0 {
		t.Fatalf("%d messages after Reset", n)
	}
	ss := sim.Sessions()
	if len(ss) != 2 || ss[0].BindType != "trx" || ss[1].BindType != "rx" || ss[0].Submits != 1 || ss[0].SystemID != "otp" {
		t.Fatalf("sessions %+v", ss)
	}
	id := submit(t, e, gsm("491", "after reset", 0))
	if m, ok := sim.Message(id); !ok || m.Text != "after reset" {
		t.Fatal("message after Reset not found")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{MessageIDFormat: "oct"},
		{ReceiptIDFormat: "uuid"},
		{DLRRoute: "same"},
		{Faults: Faults{ErrorRate: 2}},
		{Accounts: []Account{{SystemID: "a"}, {SystemID: "a"}}},
		{Rules: []Rule{{Prefix: "1"}}},
		{SMPPAddr: "256.0.0.1:99999"},
	} {
		if sim, err := Start(cfg); err == nil {
			sim.Close(context.Background())
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]Delay{
		"": {}, "0": {}, "100ms": {100 * time.Millisecond, 100 * time.Millisecond}, "1s-5s": {time.Second, 5 * time.Second},
	} {
		if d, err := ParseDelay(in); err != nil || d != want {
			t.Errorf("ParseDelay(%q) = %v, %v", in, d, err)
		}
		if d, _ := ParseDelay(want.String()); d != want {
			t.Errorf("round trip %v", want)
		}
	}
	for _, bad := range []string{"x", "5s-1s", "-1s", "1s-"} {
		if _, err := ParseDelay(bad); err == nil {
			t.Errorf("ParseDelay(%q): no error", bad)
		}
	}
	o, err := ParseOutcomes("delivrd=0.9, UNDELIV:007=0.1")
	if err != nil || len(o) != 2 || o[0].State != dlr.Delivered || o[0].Err != "000" || o[1].Err != "007" || o[1].Weight != 0.1 {
		t.Errorf("ParseOutcomes: %+v %v", o, err)
	}
	for _, bad := range []string{"FOO=1", "DELIVRD=-1", "DELIVRD=0", "DELIVRD=x"} {
		if _, err := ParseOutcomes(bad); err == nil {
			t.Errorf("ParseOutcomes(%q): no error", bad)
		}
	}
	a, err := ParseAccount("otp:se:cret")
	if err == nil {
		t.Errorf("options without = accepted: %+v", a)
	}
	a, err = ParseAccount("otp:secret:bind=tx+rx,max_binds=2,tps=50.5,system_type=OTP")
	if err != nil || a.SystemID != "otp" || a.Password != "secret" || len(a.BindTypes) != 2 || a.MaxBinds != 2 || a.TPS != 50.5 || a.SystemType != "OTP" {
		t.Errorf("ParseAccount: %+v %v", a, err)
	}
	for _, bad := range []string{"", ":pw", "otp:pw:bind=xx", "otp:pw:tps=-1", "otp:pw:color=red"} {
		if _, err := ParseAccount(bad); err == nil {
			t.Errorf("ParseAccount(%q): no error", bad)
		}
	}
	for in, want := range map[string]string{
		"+1555000=UNDELIV:001":             "+1555000=UNDELIV:001",
		"1555=delivrd":                     "1555=DELIVRD:000",
		"+1555001=reject:ESME_RINVDSTADR":  "+1555001=reject:ESME_RINVDSTADR",
		"+1555002=noreceipt":               "+1555002=noreceipt",
		"+44=reject:" + strconv.Itoa(0x58): "+44=reject:ESME_RTHROTTLED",
	} {
		r, err := ParseRule(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRule(%q) = %q, %v", in, r.String(), err)
		}
	}
	for _, bad := range []string{"=DELIVRD", "+1", "+1=FOO", "+1=reject:NOPE"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q): no error", bad)
		}
	}
}

func TestReceiptNeverBeforeResponse(t *testing.T) {
	sim := startSim(t, Config{})
	var current atomic.Pointer[chan *smpp.Call]
	var early atomic.Int32
	got := make(chan struct{}, 1)
	s, err := smpp.Dial(context.Background(), sim.Addr(), smpp.Config{SystemID: "otp", Handler: smpp.HandlerFunc(
		func(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
			if c := current.Load(); c != nil && len(*c) == 0 {
				early.Add(1) // the submit_sm_resp has not been read yet
			}
			got <- struct{}{}
			return smpp.Reply(req, smpp.ESME_ROK)
		})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for i := 0; i < 300; i++ {
		done := make(chan *smpp.Call, 1)
		current.Store(&done)
		s.Go(testCtx(t), gsm("491", "x", 1), done)
		select {
		case <-got:
		case <-time.After(hang):
			t.Fatal("no receipt")
		}
		if r := <-done; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := early.Load(); n != 0 {
		t.Fatalf("%d receipts came before their submit_sm_resp", n)
	}
}

func TestHeldReceiptsBounded(t *testing.T) {
	sim := startSim(t, Config{Retention: 3})
	tx := dial(t, sim, smpp.Config{Bind: smpp.BindTransmitter})
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, submit(t, tx, gsm("491", "x", 1)))
	}
	waitFor(t, "2 receipts dropped", func() bool {
		return strings.Contains(metricsText(t, sim), "smscsim_receipts_dropped_total 2")
	})
	rx := dial(t, sim, smpp.Config{Bind: smpp.BindReceiver})
	for _, id := range ids[2:] {
		if r, _ := rx.receipt(t); r.ID != id {
			t.Fatalf("receipt %s, want %s", r.ID, id)
		}
	}
	sentinel := submit(t, tx, gsm("491", "y", 1))
	if r, _ := rx.receipt(t); r.ID != sentinel {
		t.Fatalf("receipt %s, want the sentinel", r.ID)
	}
}
