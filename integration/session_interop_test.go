package integration

// Interop of otpd's SMPP session layer (smpp.Session, smpp.Pool,
// smpp.Server) with an independent implementation, the npm package smpp:
//
//   - our ESME side (smpp.Dial, smpp.Pool) against node/smsc.js, an SMSC
//     built on the package's smpp.createServer;
//   - node/esme.js, an ESME built on the package's smpp.connect, against our
//     smpp.Server.
//
// Every process listens on a loopback port chosen at run time. Without
// integration/node/node_modules the tests skip, unless OTPD_INTEROP_REQUIRED
// is set: then they fail. Deadlines here guard against hangs only.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

const (
	smscSystemID = "otpd"
	smscPassword = "secret"
	smscOwnID    = "NPMSMSC" // the system_id smsc.js sends in bind_resp
	callWait     = 30 * time.Second
)

// Texts of the tests. gsmText uses the GSM 03.38 extension table (escape
// sequences) and '@', which is 0x00 in the default alphabet.
const (
	gsmText  = "Your code is 123456 {€} @£$ [~] ^|\\"
	ucs2Text = "Ваш код 123456 — 验证码 ✓"
)

var longText = strings.Repeat("otpd interop: a long message cut into segments with a UDH, € [x]. ", 5)

// testCtx is a context that ends with the test, bounded by callWait.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	t.Cleanup(cancel)
	return ctx
}

// startSMSC starts smsc.js and returns it and its address.
func startSMSC(t *testing.T, extra ...string) (*nodeProc, string) {
	t.Helper()
	args := append([]string{"--system-id", smscSystemID, "--password", smscPassword, "--smsc-id", smscOwnID}, extra...)
	p := startNode(t, "smsc.js", args...)
	return p, p.Port()
}

// noTrouble fails the test if smsc.js logged an error, a generic_nack, an
// unknown PDU, a refused submit, or a receipt it could not place.
func noTrouble(t *testing.T, smsc *nodeProc) {
	t.Helper()
	for _, e := range smsc.Events() {
		switch e.Name() {
		case "error", "generic_nack", "unknown", "submit_refused", "no_receiver", "receipt_unsent", "bad_command", "raw":
			t.Errorf("smsc.js: %v", e)
		case "receipt_resp":
			if e.Int("status") != 0 {
				t.Errorf("smsc.js: receipt answered with %v", e)
			}
		}
	}
}

// receiptCollector is an ESME Handler that parses delivery receipts with
// smpp.ParseReceipt and answers every deliver_sm with ESME_ROK.
type receiptCollector struct {
	ch   chan smpp.Receipt
	errs chan error
}

func newReceiptCollector() *receiptCollector {
	return &receiptCollector{ch: make(chan smpp.Receipt, 64), errs: make(chan error, 64)}
}

func (rc *receiptCollector) ServeSMPP(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
	dm, ok := req.(*smpp.DeliverSM)
	if !ok {
		rc.report(fmt.Errorf("unexpected %s", req.CommandID()))
		return smpp.Reply(req, smpp.ESME_RINVCMDID)
	}
	r, err := smpp.ParseReceipt(dm)
	switch {
	case err != nil:
		rc.report(fmt.Errorf("ParseReceipt: %w (esm_class %#x, %q)", err, dm.ESMClass, dm.ShortMessage))
	case !s.BindType().CanReceive():
		rc.report(fmt.Errorf("receipt on a %s bind", s.BindType()))
	default:
		select {
		case rc.ch <- r:
		default:
			rc.report(errors.New("too many receipts"))
		}
	}
	return smpp.Reply(req, smpp.ESME_ROK)
}

func (rc *receiptCollector) report(err error) {
	select {
	case rc.errs <- err:
	default:
	}
}

// collect waits for n receipts.
func (rc *receiptCollector) collect(t *testing.T, n int) []smpp.Receipt {
	t.Helper()
	var out []smpp.Receipt
	deadline := time.NewTimer(callWait)
	defer deadline.Stop()
	for len(out) < n {
		select {
		case r := <-rc.ch:
			out = append(out, r)
		case err := <-rc.errs:
			t.Fatal(err)
		case <-deadline.C:
			t.Fatalf("%d of %d receipts after %v", len(out), n, callWait)
		}
	}
	return out
}

// checkReceipts checks that the receipts are one DELIVRD receipt per id.
func checkReceipts(t *testing.T, got []smpp.Receipt, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range got {
		if !slices.Contains(ids, r.ID) || seen[r.ID] {
			t.Errorf("receipt for %q: not one of %v, or a second one", r.ID, ids)
		}
		seen[r.ID] = true
		if !r.FromTLV || r.State != dlr.Delivered || r.Stat != "DELIVRD" || r.Sub != 1 || r.Dlvrd != 1 || r.Err != "000" {
			t.Errorf("receipt %q: FromTLV %v, state %v, stat %q, sub %d, dlvrd %d, err %q",
				r.ID, r.FromTLV, r.State, r.Stat, r.Sub, r.Dlvrd, r.Err)
		}
		if r.SubmitDate.IsZero() || r.DoneDate.IsZero() {
			t.Errorf("receipt %q: dates not read: %v %v", r.ID, r.SubmitDate, r.DoneDate)
		}
	}
}

// testSubmits builds the submit_sm PDUs of gsmText, ucs2Text and longText
// with our encoder, and the text smsc.js must decode from each.
func testSubmits(t *testing.T) ([]*smpp.SubmitSM, []string) {
	t.Helper()
	tmpl := &smpp.SubmitSM{
		SourceAddrTON: 5, SourceAddr: "OTPD",
		DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112345678",
		RegisteredDelivery: smpp.RegisteredDeliveryAlways,
	}
	var pdus []*smpp.SubmitSM
	var texts []string
	for _, tc := range []struct {
		text string
		opt  coding.SplitOptions
		dc   coding.DataCoding
		n    int
	}{
		{gsmText, coding.SplitOptions{Coding: coding.Default}, coding.Default, 1},
		{ucs2Text, coding.SplitOptions{Auto: true}, coding.UCS2, 1},
		{longText, coding.SplitOptions{Auto: true, Method: coding.ConcatUDH8, Ref: 0x42}, coding.Default, 3},
	} {
		ps, err := smpp.SplitSubmit(tmpl, tc.text, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != tc.n {
			t.Fatalf("%q: %d PDUs, want %d", tc.text, len(ps), tc.n)
		}
		for _, p := range ps {
			if coding.DataCoding(p.DataCoding) != tc.dc {
				t.Fatalf("%q: data_coding %#x", tc.text, p.DataCoding)
			}
			part, _, err := smpp.MessagePart(p.ESMClass, p.ShortMessage, p.Options)
			if err != nil {
				t.Fatal(err)
			}
			s, err := coding.Decode(part.Data, tc.dc)
			if err != nil {
				t.Fatal(err)
			}
			pdus = append(pdus, p)
			texts = append(texts, s)
		}
	}
	return pdus, texts
}

// checkSubmitEvent compares what smsc.js decoded with what we sent.
func checkSubmitEvent(t *testing.T, e nodeEvent, p *smpp.SubmitSM, text string) {
	t.Helper()
	if e.Str("text") != text || e.Int("data_coding") != int(p.DataCoding) || e.Int("esm_class") != int(p.ESMClass) ||
		e.Str("from") != p.SourceAddr || e.Int("source_addr_ton") != int(p.SourceAddrTON) ||
		e.Str("to") != p.DestinationAddr || e.Int("dest_addr_ton") != int(p.DestAddrTON) || e.Int("dest_addr_npi") != int(p.DestAddrNPI) ||
		e.Int("registered_delivery") != int(p.RegisteredDelivery) {
		t.Errorf("smsc.js decoded %v\nwe sent text %q, data_coding %#x, esm_class %#x", e, text, p.DataCoding, p.ESMClass)
	}
	if p.ESMClass&smpp.ESMClassUDHI != 0 {
		// The package gives the IEs without the UDH length octet.
		part, _, _ := smpp.MessagePart(p.ESMClass, p.ShortMessage, p.Options)
		if want := fmt.Sprintf("0003%02x%02x%02x", part.Ref, part.Total, part.Seq); e.Str("udh") != want {
			t.Errorf("smsc.js read UDH %q, want %q", e.Str("udh"), want)
		}
	}
}

// waitBindsUp waits until the pool has n binds up.
func waitBindsUp(t *testing.T, pool *smpp.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(callWait)
	for pool.Stats().BindsUp < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d binds up after %v: %v", pool.Stats().BindsUp, n, callWait, pool.LastErrors())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// (1) Our Session against smsc.js, as a transceiver: bind, submit GSM, UCS-2
// and a UDH-split text, message ids back, receipts through the Handler,
// enquire_link, Close with unbind.
func TestSessionInteropDialTransceiver(t *testing.T) {
	smsc, addr := startSMSC(t)
	rc := newReceiptCollector()
	ctx := testCtx(t)
	s, err := smpp.Dial(ctx, addr, smpp.Config{
		SystemID: smscSystemID, Password: smscPassword, SystemType: "otpd",
		Bind: smpp.BindTransceiver, Handler: rc, EnquireLinkInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Abort)
	if s.SystemID() != smscOwnID || s.BindType() != smpp.BindTransceiver || !s.Bound() {
		t.Fatalf("bound to %q as %v (bound %v)", s.SystemID(), s.BindType(), s.Bound())
	}
	bind := smsc.WaitEvent("bind", isEvent("bind"))
	if bind.Str("command") != "bind_transceiver" || bind.Str("system_id") != smscSystemID || bind.Int("interface_version") != 0x34 || bind.Int("status") != 0 {
		t.Errorf("smsc.js saw %v", bind)
	}
	conn := bind.Int("conn")

	pdus, texts := testSubmits(t)
	var ids []string
	last := 0
	for i, p := range pdus {
		resp, err := s.Submit(ctx, p)
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		n, err := strconv.Atoi(resp.MessageID)
		if err != nil || n <= last {
			t.Fatalf("submit %d: message id %q after %d", i, resp.MessageID, last)
		}
		last = n
		ids = append(ids, resp.MessageID)
	}
	events := smsc.WaitEvents("submit", len(pdus), isEvent("submit"))
	for i, id := range ids {
		e := events[i]
		if e.Str("id") != id || e.Int("conn") != conn {
			t.Fatalf("submit %d: smsc.js logged %v, want id %s on conn %d", i, e, id, conn)
		}
		checkSubmitEvent(t, e, pdus[i], texts[i])
	}
	joined := ""
	for _, e := range events[2:] {
		joined += e.Str("text")
	}
	if joined != longText {
		t.Errorf("smsc.js joined the segments to %q", joined)
	}

	checkReceipts(t, rc.collect(t, len(ids)), ids)
	smsc.WaitEvents("receipt_resp", len(ids), isEvent("receipt_resp"))

	if err := s.EnquireLink(ctx); err != nil {
		t.Fatalf("enquire_link: %v", err)
	}
	smsc.WaitEvent("enquire_link", func(e nodeEvent) bool { return e.Name() == "enquire_link" && e.Int("conn") == conn })

	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ub := smsc.WaitEvent("unbind", isEvent("unbind"))
	if ub.Int("conn") != conn || ub.Str("system_id") != smscSystemID {
		t.Errorf("smsc.js saw %v", ub)
	}
	smsc.WaitEvent("close", func(e nodeEvent) bool { return e.Name() == "close" && e.Int("conn") == conn })
	if !errors.Is(s.Err(), smpp.ErrClosed) {
		t.Errorf("session ended with %v", s.Err())
	}
	if _, err := s.Submit(ctx, pdus[0]); !errors.Is(err, smpp.ErrClosed) {
		t.Errorf("submit after Close: %v", err)
	}
	noTrouble(t, smsc)
}

// (1) A smpp.Pool in ModeTxRx against smsc.js: a transmitter and a receiver
// bind, submits on the transmitter, receipts on the receiver through the
// Handler, Pool.Close unbinds both.
func TestSessionInteropPoolTxRx(t *testing.T) {
	smsc, addr := startSMSC(t)
	rc := newReceiptCollector()
	ctx := testCtx(t)
	pool := smpp.NewPool(smpp.PoolConfig{
		Addr:    addr,
		Session: smpp.Config{SystemID: smscSystemID, Password: smscPassword, Handler: rc},
		Mode:    smpp.ModeTxRx, Binds: 1,
	})
	closed := false
	t.Cleanup(func() {
		if !closed {
			pool.Close(context.Background())
		}
	})
	waitBindsUp(t, pool, 2)
	binds := smsc.WaitEvents("bind", 2, isEvent("bind"))
	conns := map[string]int{}
	for _, b := range binds {
		if b.Int("status") != 0 || b.Str("system_id") != smscSystemID {
			t.Errorf("smsc.js saw %v", b)
		}
		conns[b.Str("command")] = b.Int("conn")
	}
	txConn, okTx := conns["bind_transmitter"]
	rxConn, okRx := conns["bind_receiver"]
	if !okTx || !okRx || len(conns) != 2 {
		t.Fatalf("binds: %v", binds)
	}

	pdus, texts := testSubmits(t)
	var ids []string
	for i, p := range pdus {
		resp, err := pool.Submit(ctx, p)
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		ids = append(ids, resp.MessageID)
	}
	events := smsc.WaitEvents("submit", len(pdus), isEvent("submit"))
	for i, e := range events {
		if e.Int("conn") != txConn || e.Str("id") != ids[i] {
			t.Errorf("submit %d: %v, want id %s on the transmitter's conn %d", i, e, ids[i], txConn)
		}
		checkSubmitEvent(t, e, pdus[i], texts[i])
	}
	checkReceipts(t, rc.collect(t, len(ids)), ids)
	for _, e := range smsc.WaitEvents("receipt_sent", len(ids), isEvent("receipt_sent")) {
		if e.Int("conn") != rxConn {
			t.Errorf("receipt sent on conn %d, not the receiver's %d", e.Int("conn"), rxConn)
		}
	}
	smsc.WaitEvents("receipt_resp", len(ids), isEvent("receipt_resp"))
	st := pool.Stats()
	if st.Received != uint64(len(ids)) || st.Responses[smpp.ESME_ROK] != uint64(len(ids)) || st.BindsUp != 2 {
		t.Errorf("pool stats %+v", st)
	}

	closed = true
	if err := pool.Close(ctx); err != nil {
		t.Fatalf("Pool.Close: %v", err)
	}
	unbinds := smsc.WaitEvents("unbind", 2, isEvent("unbind"))
	got := []string{unbinds[0].Str("command"), unbinds[1].Str("command")}
	slices.Sort(got)
	if !slices.Equal(got, []string{"bind_receiver", "bind_transmitter"}) {
		t.Errorf("unbinds: %v", unbinds)
	}
	noTrouble(t, smsc)
}

// (1) A refused bind comes back as the status smsc.js sent (a bind_resp
// without a body, as the package writes error responses).
func TestSessionInteropBindRefused(t *testing.T) {
	smsc, addr := startSMSC(t)
	for _, tc := range []struct {
		id, pw string
		bind   smpp.BindType
		want   smpp.CommandStatus
	}{
		{smscSystemID, "wrong", smpp.BindTransceiver, smpp.ESME_RINVPASWD},
		{smscSystemID, "wrong", smpp.BindTransmitter, smpp.ESME_RINVPASWD},
		{"nobody", smscPassword, smpp.BindReceiver, smpp.ESME_RINVSYSID},
	} {
		_, err := smpp.Dial(testCtx(t), addr, smpp.Config{SystemID: tc.id, Password: tc.pw, Bind: tc.bind})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s/%s as %v: %v, want %s", tc.id, tc.pw, tc.bind, err, tc.want.Name())
		}
		var st smpp.CommandStatus
		if !errors.As(err, &st) || st != tc.want {
			t.Errorf("%s/%s: status %v", tc.id, tc.pw, st)
		}
	}
	binds := smsc.WaitEvents("bind", 3, isEvent("bind"))
	for _, b := range binds {
		if b.Int("status") == 0 {
			t.Errorf("smsc.js accepted %v", b)
		}
	}
	noTrouble(t, smsc)
}

// (1) Throttling through the Pool: smsc.js answers every 3rd submit_sm with
// ESME_RTHROTTLED; the caller gets it as a typed error and the pool pauses
// the bind that got it, so the next submits go to the other bind.
func TestSessionInteropPoolThrottled(t *testing.T) {
	const every = 3
	smsc, addr := startSMSC(t, "--throttle-every", strconv.Itoa(every))
	ctx := testCtx(t)
	pool := smpp.NewPool(smpp.PoolConfig{
		Addr:          addr,
		Session:       smpp.Config{SystemID: smscSystemID, Password: smscPassword},
		Mode:          smpp.ModeTransceiver,
		Binds:         2,
		ThrottlePause: time.Hour, // longer than the test: the bind stays paused
	})
	t.Cleanup(func() { pool.Close(context.Background()) })
	waitBindsUp(t, pool, 2)
	smsc.WaitEvents("bind", 2, isEvent("bind"))

	sm := func(i int) *smpp.SubmitSM {
		return &smpp.SubmitSM{SourceAddr: "OTPD", DestinationAddr: "4915112345678", ShortMessage: []byte("throttle test " + strconv.Itoa(i))}
	}
	for i := 1; i < every; i++ {
		if _, err := pool.Submit(ctx, sm(i)); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	resp, err := pool.Submit(ctx, sm(every))
	var re *smpp.ResponseError
	if !errors.Is(err, smpp.ESME_RTHROTTLED) || !errors.As(err, &re) || re.Status != smpp.ESME_RTHROTTLED || smpp.IsUncertain(err) {
		t.Fatalf("submit %d: %v (%v), want ESME_RTHROTTLED", every, resp, err)
	}
	if resp == nil || resp.Head().Status != smpp.ESME_RTHROTTLED {
		t.Errorf("throttled response %v", resp)
	}
	throttledConn := smsc.WaitEvent("throttled", isEvent("throttled")).Int("conn")

	// The other bind takes the next submits: without the pause, the pool's
	// round robin would give one of these two to the throttled bind.
	for i := every + 1; i < 2*every; i++ {
		resp, err := pool.Submit(ctx, sm(i))
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		e := smsc.WaitEvent("submit "+resp.MessageID, func(e nodeEvent) bool { return e.Name() == "submit" && e.Str("id") == resp.MessageID })
		if e.Int("conn") == throttledConn {
			t.Errorf("submit %d went to the throttled bind (conn %d)", i, throttledConn)
		}
	}
	st := pool.Stats()
	if st.Throttled != 1 || st.Responses[smpp.ESME_RTHROTTLED] != 1 || st.Responses[smpp.ESME_ROK] != 2*every-2 || st.BindsUp != 2 {
		t.Errorf("pool stats %+v", st)
	}
	if err := pool.Close(ctx); err != nil {
		t.Fatalf("Pool.Close: %v", err)
	}
	smsc.WaitEvents("unbind", 2, isEvent("unbind"))
	noTrouble(t, smsc)
}

// (1) Requests from smsc.js to our ESME: an enquire_link is answered; an
// unbind is answered and ends the session (ErrClosed, not a lost link); a
// Pool's bind that the SMSC unbinds binds again and takes work.
func TestSessionInteropSMSCUnbinds(t *testing.T) {
	smsc, addr := startSMSC(t)
	ctx := testCtx(t)
	s, err := smpp.Dial(ctx, addr, smpp.Config{SystemID: smscSystemID, Password: smscPassword, EnquireLinkInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Abort)
	conn := smsc.WaitEvent("bind", isEvent("bind")).Int("conn")

	smsc.Send("enquire_link")
	if e := smsc.WaitEvent("enquire_link_resp", isEvent("enquire_link_resp")); e.Int("conn") != conn || e.Int("status") != 0 {
		t.Errorf("smsc.js: %v", e)
	}
	smsc.Send("unbind")
	if e := smsc.WaitEvent("unbind_resp", isEvent("unbind_resp")); e.Int("conn") != conn || e.Int("status") != 0 {
		t.Errorf("smsc.js: %v", e)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("session still up after the SMSC unbound it")
	}
	if err := s.Err(); !errors.Is(err, smpp.ErrClosed) || smpp.IsUncertain(err) {
		t.Errorf("session ended with %v, want ErrClosed", err)
	}
	if _, err := s.Submit(ctx, &smpp.SubmitSM{DestinationAddr: "1"}); !errors.Is(err, smpp.ErrClosed) {
		t.Errorf("submit after unbind: %v", err)
	}

	pool := smpp.NewPool(smpp.PoolConfig{
		Addr:         addr,
		Session:      smpp.Config{SystemID: smscSystemID, Password: smscPassword},
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
	})
	t.Cleanup(func() { pool.Close(context.Background()) })
	waitBindsUp(t, pool, 1)
	smsc.WaitEvents("second bind", 2, isEvent("bind"))
	smsc.Send("unbind")
	smsc.WaitEvents("unbind_resp", 2, isEvent("unbind_resp"))
	third := smsc.WaitEvents("rebind", 3, isEvent("bind"))[2]
	if third.Int("status") != 0 {
		t.Fatalf("rebind: %v", third)
	}
	deadline := time.Now().Add(callWait)
	for pool.Stats().Reconnects < 1 || pool.Stats().BindsUp < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pool did not bind again: %+v", pool.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := pool.Submit(ctx, &smpp.SubmitSM{SourceAddr: "OTPD", DestinationAddr: "4915112345678", ShortMessage: []byte("after rebind")})
	if err != nil {
		t.Fatalf("submit after rebind: %v", err)
	}
	if e := smsc.WaitEvent("submit", isEvent("submit")); e.Str("id") != resp.MessageID || e.Int("conn") != third.Int("conn") {
		t.Errorf("submit %v, want id %s on conn %d", e, resp.MessageID, third.Int("conn"))
	}
	if err := pool.Close(ctx); err != nil {
		t.Fatalf("Pool.Close: %v", err)
	}
	smsc.WaitEvent("unbind", isEvent("unbind"))
	noTrouble(t, smsc)
}

// ---------------------------------------------------------------------------
// (2) esme.js against our Server.

const (
	npmSystemID = "npm"
	npmPassword = "pw"
	npmCount    = 3 // GSM messages esme.js sends
)

// gotSubmit is what our Server's handler saw of one submit_sm.
type gotSubmit struct {
	SystemID           string
	Bind               smpp.BindType
	From, To           string
	SrcTON, DstTON     byte
	DataCoding         byte
	ESMClass           byte
	RegisteredDelivery byte
	Concat             bool
	Ref                uint16
	Total, Seq         uint8
	Text               string // decoded; "" for a segment
	MessageID          string
}

// ourSMSC is a smpp.Server that answers submit_sm with hex message ids and
// sends a receipt to a receiver or transceiver bind of the same system_id.
type ourSMSC struct {
	t    *testing.T
	srv  *smpp.Server
	addr string
	errc chan error // Serve's result

	reasm  *coding.Reassembler
	nextID atomic.Uint64
	closed atomic.Int32 // OnClosed calls

	mu       sync.Mutex
	binds    []smpp.Bind
	submits  []gotSubmit
	long     []string // reassembled texts
	problems []error
	wg       sync.WaitGroup // receipt senders
}

func startOurSMSC(t *testing.T) *ourSMSC {
	t.Helper()
	o := &ourSMSC{t: t, reasm: coding.NewReassembler(coding.ReassemblerConfig{}), errc: make(chan error, 1)}
	o.nextID.Store(0xA000)
	o.srv = &smpp.Server{
		SystemID: "otpd-test",
		Handler:  smpp.HandlerFunc(o.serve),
		Authenticate: func(ctx context.Context, s *smpp.Session, b *smpp.Bind) smpp.CommandStatus {
			o.mu.Lock()
			o.binds = append(o.binds, smpp.Bind{Type: b.Type, SystemID: b.SystemID, SystemType: b.SystemType, InterfaceVersion: b.InterfaceVersion})
			o.mu.Unlock()
			switch {
			case b.SystemID != npmSystemID:
				return smpp.ESME_RINVSYSID
			case b.Password != npmPassword:
				return smpp.ESME_RINVPASWD
			}
			return smpp.ESME_ROK
		},
		OnClosed: func(*smpp.Session) { o.closed.Add(1) },
		Session: smpp.Config{
			ResponseTimeout: 10 * time.Second,
			BindTimeout:     10 * time.Second,
			// Often enough that esme.js, which waits for one, sees it.
			EnquireLinkInterval: 100 * time.Millisecond,
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = l.Addr().String()
	go func() { o.errc <- o.srv.Serve(l) }()
	t.Cleanup(func() {
		o.srv.Close()
		o.wg.Wait()
	})
	return o
}

func (o *ourSMSC) problem(err error) {
	o.mu.Lock()
	o.problems = append(o.problems, err)
	o.mu.Unlock()
}

func (o *ourSMSC) serve(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
	p, ok := req.(*smpp.SubmitSM)
	if !ok {
		o.problem(fmt.Errorf("unexpected %s", req.CommandID()))
		return smpp.Reply(req, smpp.ESME_RINVCMDID)
	}
	g := gotSubmit{
		SystemID: s.SystemID(), Bind: s.BindType(), From: p.SourceAddr, To: p.DestinationAddr,
		SrcTON: p.SourceAddrTON, DstTON: p.DestAddrTON, DataCoding: p.DataCoding, ESMClass: p.ESMClass,
		RegisteredDelivery: p.RegisteredDelivery,
	}
	part, concat, err := smpp.MessagePart(p.ESMClass, p.ShortMessage, p.Options)
	if err != nil {
		o.problem(fmt.Errorf("MessagePart: %w", err))
		return smpp.Reply(req, smpp.ESME_RINVESMCLASS)
	}
	dc := coding.DataCoding(p.DataCoding)
	if concat {
		g.Concat, g.Ref, g.Total, g.Seq = true, part.Ref, part.Total, part.Seq
		parts, complete, err := o.reasm.Add(p.SourceAddr+">"+p.DestinationAddr, part.Ref, part.Total, part.Seq, part.Data, time.Now())
		if err != nil {
			o.problem(fmt.Errorf("reassemble: %w", err))
		}
		if complete {
			text, err := coding.Decode(slices.Concat(parts...), dc)
			if err != nil {
				o.problem(err)
			}
			o.mu.Lock()
			o.long = append(o.long, text)
			o.mu.Unlock()
		}
	} else {
		g.Text, err = coding.Decode(part.Data, dc)
		if err != nil {
			o.problem(err)
		}
	}
	g.MessageID = strconv.FormatUint(o.nextID.Add(1), 16)
	o.mu.Lock()
	o.submits = append(o.submits, g)
	o.mu.Unlock()

	// The response first, then the receipt: on a transceiver they go out in
	// that order.
	resp := smpp.Reply(req, smpp.ESME_ROK).(*smpp.SubmitSMResp)
	resp.MessageID = g.MessageID
	if err := s.Respond(resp); err != nil {
		o.problem(fmt.Errorf("Respond: %w", err))
		return nil
	}
	if p.RegisteredDelivery&0x03 == 0 {
		return nil
	}
	rx := o.receiverFor(s)
	if rx == nil {
		o.problem(fmt.Errorf("no receiver bound for %q", s.SystemID()))
		return nil
	}
	now := time.Now()
	dm := smpp.ReceiptDeliverSM(g.MessageID, "", dlr.Receipt{
		Sub: 1, Dlvrd: 1, SubmitDate: now, DoneDate: now, State: dlr.Delivered, Err: "000", Text: "interop",
	})
	dm.SourceAddrTON, dm.SourceAddr = p.DestAddrTON, p.DestinationAddr
	dm.DestAddrTON, dm.DestinationAddr = p.SourceAddrTON, p.SourceAddr
	// Deliver waits for deliver_sm_resp, which this session's read loop
	// reads: not here, where the read loop waits for us.
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		dctx, cancel := context.WithTimeout(ctx, callWait)
		defer cancel()
		if _, err := rx.Deliver(dctx, dm); err != nil {
			o.problem(fmt.Errorf("Deliver receipt %s: %w", g.MessageID, err))
		}
	}()
	return nil
}

// receiverFor is s when it can receive, else a bound receiver of the same
// system_id.
func (o *ourSMSC) receiverFor(s *smpp.Session) *smpp.Session {
	if s.BindType().CanReceive() {
		return s
	}
	for _, r := range o.srv.Sessions() {
		if r.Bound() && r.SystemID() == s.SystemID() && r.BindType().CanReceive() {
			return r
		}
	}
	return nil
}

func (o *ourSMSC) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	if err := o.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-o.errc:
		if !errors.Is(err, smpp.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-ctx.Done():
		t.Error("Serve did not return after Shutdown")
	}
	o.wg.Wait()
}

func runESME(t *testing.T, addr string, extra ...string) *nodeProc {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--host", host, "--port", port, "--timeout", "30000"}, extra...)
	return startNode(t, "esme.js", args...)
}

// (2) esme.js binds to our Server (transceiver, or transmitter and
// receiver), submits GSM, UCS-2 and a UDH-split text, gets message ids and
// receipts, answers our enquire_link and sends its own, and unbinds; or,
// in the last case, stays bound until Server.Shutdown unbinds it.
func TestSessionInteropNPMClient(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mode       string
		waitUnbind bool
	}{
		{"trx", "trx", false},
		{"txrx", "txrx", false},
		{"trx unbound by Shutdown", "trx", true},
		{"txrx unbound by Shutdown", "txrx", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := startOurSMSC(t)
			args := []string{"--system-id", npmSystemID, "--password", npmPassword, "--mode", tc.mode,
				"--gsm", gsmText, "--count", strconv.Itoa(npmCount), "--ucs2", ucs2Text, "--long", longText,
				"--expect-enquire-link", "1"}
			if tc.waitUnbind {
				args = append(args, "--wait-unbind", "1")
			}
			esme := runESME(t, o.addr, args...)
			nsess := 1
			if tc.mode == "txrx" {
				nsess = 2
			}
			if tc.waitUnbind {
				esme.WaitEvent("waiting_unbind", isEvent("waiting_unbind"))
				o.shutdown(t)
			}
			if err := esme.Wait(); err != nil {
				t.Fatalf("esme.js: %v", err)
			}
			esme.WaitEvent("done", isEvent("done"))

			// What esme.js saw.
			for _, b := range esme.Filter(isEvent("bound")) {
				if b.Str("system_id") != "otpd-test" || b.Int("sc_interface_version") != 0x34 {
					t.Errorf("esme.js bound: %v", b)
				}
			}
			if n := len(esme.Filter(isEvent("bound"))); n != nsess {
				t.Errorf("%d binds, want %d", n, nsess)
			}
			resps := esme.Filter(isEvent("submit_resp"))
			receipts := map[string]nodeEvent{}
			for _, r := range esme.Filter(isEvent("receipt")) {
				receipts[r.Str("id")] = r
			}
			for _, r := range resps {
				rcpt, ok := receipts[r.Str("message_id")]
				switch {
				case r.Int("status") != 0:
					t.Errorf("esme.js: %v", r)
				case !ok:
					t.Errorf("no receipt for %v", r)
				case rcpt.Int("state") != 2 || rcpt.Int("esm_class") != smpp.ESMClassDeliveryReceipt ||
					!strings.HasPrefix(rcpt.Str("text"), "id:"+r.Str("message_id")+" ") || !strings.Contains(rcpt.Str("text"), " stat:DELIVRD "):
					t.Errorf("receipt %v", rcpt)
				case tc.mode == "txrx" && rcpt.Str("session") != "rx":
					t.Errorf("receipt on %q, not the receiver", rcpt.Str("session"))
				}
			}
			if len(receipts) != len(resps) {
				t.Errorf("%d receipts for %d submits", len(receipts), len(resps))
			}
			if n := len(esme.Filter(isEvent("enquire_link_resp"))); n != nsess {
				t.Errorf("%d enquire_link_resp, want %d", n, nsess)
			}
			if len(esme.Filter(isEvent("enquire_link_in"))) == 0 {
				t.Error("esme.js saw no enquire_link from our Server")
			}
			if tc.waitUnbind {
				if n := len(esme.Filter(isEvent("unbind_in"))); n != nsess {
					t.Errorf("%d unbinds from Shutdown, want %d", n, nsess)
				}
			} else {
				if n := len(esme.Filter(isEvent("unbound"))); n != nsess {
					t.Errorf("%d unbind_resp, want %d", n, nsess)
				}
				for _, e := range esme.Filter(isEvent("unbound")) {
					if e.Int("status") != 0 {
						t.Errorf("esme.js: %v", e)
					}
				}
			}

			// What our Server saw.
			deadline := time.Now().Add(callWait)
			for len(o.srv.Sessions()) > 0 || int(o.closed.Load()) < nsess {
				if time.Now().After(deadline) {
					t.Fatalf("sessions still open after esme.js ended: %d (closed %d)", len(o.srv.Sessions()), o.closed.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !tc.waitUnbind {
				o.shutdown(t)
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			for _, err := range o.problems {
				t.Error(err)
			}
			if len(o.binds) != nsess {
				t.Errorf("binds %+v", o.binds)
			}
			for _, b := range o.binds {
				want := smpp.BindTransceiver
				if tc.mode == "txrx" {
					want = smpp.BindTransmitter
					if b.Type == smpp.BindReceiver {
						want = smpp.BindReceiver
					}
				}
				// The package binds with interface_version 0x50 unless told.
				if b.Type != want || b.SystemID != npmSystemID || b.SystemType != "interop" || b.InterfaceVersion != 0x50 {
					t.Errorf("bind %+v", b)
				}
			}
			var gsm []string
			var ucs2, segs []gotSubmit
			for _, g := range o.submits {
				if g.SystemID != npmSystemID || !g.Bind.CanSend() || g.From != "OTPD" || g.SrcTON != 5 ||
					g.To != "4915112345678" || g.DstTON != 1 || g.RegisteredDelivery != 1 {
					t.Errorf("submit %+v", g)
				}
				switch {
				case g.Concat:
					segs = append(segs, g)
				case g.DataCoding == byte(coding.UCS2):
					ucs2 = append(ucs2, g)
				case g.DataCoding == byte(coding.Default) && g.ESMClass == 0:
					gsm = append(gsm, g.Text)
				default:
					t.Errorf("submit %+v", g)
				}
			}
			var wantGSM []string
			for i := 1; i <= npmCount; i++ {
				wantGSM = append(wantGSM, fmt.Sprintf("%s #%d", gsmText, i))
			}
			if !slices.Equal(gsm, wantGSM) {
				t.Errorf("GSM texts:\n got %q\nwant %q", gsm, wantGSM)
			}
			if len(ucs2) != 1 || ucs2[0].Text != ucs2Text {
				t.Errorf("UCS-2: %+v, want %q", ucs2, ucs2Text)
			}
			wantSegs := len(esme.Filter(func(e nodeEvent) bool { return e.Name() == "submit" && e.Str("kind") == "long" }))
			if wantSegs < 2 || len(segs) != wantSegs {
				t.Errorf("%d segments, esme.js sent %d", len(segs), wantSegs)
			}
			for _, g := range segs {
				if g.ESMClass != smpp.ESMClassUDHI || g.DataCoding != 0 || g.Total != uint8(wantSegs) || g.Ref != segs[0].Ref {
					t.Errorf("segment %+v", g)
				}
			}
			if len(o.long) != 1 || o.long[0] != longText {
				t.Errorf("reassembled %q, want %q", o.long, longText)
			}
			if len(resps) != len(o.submits) {
				t.Errorf("esme.js got %d submit_sm_resp, our Server answered %d", len(resps), len(o.submits))
			}
		})
	}
}

// (2) A bind our Server refuses reaches esme.js with the status named.
func TestSessionInteropNPMClientBindRefused(t *testing.T) {
	o := startOurSMSC(t)
	for _, tc := range []struct {
		id, pw string
		want   smpp.CommandStatus
	}{
		{npmSystemID, "wrong", smpp.ESME_RINVPASWD},
		{"nobody", npmPassword, smpp.ESME_RINVSYSID},
	} {
		esme := runESME(t, o.addr, "--system-id", tc.id, "--password", tc.pw)
		err := esme.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s/%s: esme.js ended with %v, want exit status 1", tc.id, tc.pw, err)
		}
		bf := esme.Filter(isEvent("bind_failed"))
		if len(bf) != 1 || bf[0].Int("status") != int(tc.want) {
			t.Errorf("%s/%s: %v, want status %s", tc.id, tc.pw, bf, tc.want.Name())
		}
	}
	o.shutdown(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.submits) != 0 || len(o.problems) != 0 {
		t.Errorf("submits %v, problems %v", o.submits, o.problems)
	}
}
