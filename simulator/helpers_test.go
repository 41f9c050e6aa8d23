package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
)

// hang is the bound on every wait in these tests: a guard against hangs,
// not a timing assertion.
const hang = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

// startSim starts a simulator on a free loopback port, closed with the test.
func startSim(t testing.TB, cfg Config) *Simulator {
	t.Helper()
	if cfg.SMPPAddr == "" {
		cfg.SMPPAddr = "127.0.0.1:0"
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.ReceiptRetry == 0 {
		cfg.ReceiptRetry = 20 * time.Millisecond
	}
	sim, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if err := sim.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim
}

// noAnswer from esme.answer leaves a deliver_sm unanswered.
const noAnswer = smpp.CommandStatus(0xFFFFFFFF)

// esme is a client bind that collects the deliver_sm it receives.
type esme struct {
	*smpp.Session
	in chan *smpp.DeliverSM

	mu     sync.Mutex
	answer func(*smpp.DeliverSM) smpp.CommandStatus // nil: ESME_ROK
}

func (e *esme) ServeSMPP(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
	d, ok := req.(*smpp.DeliverSM)
	if !ok {
		return smpp.Reply(req, smpp.ESME_RINVCMDID)
	}
	e.mu.Lock()
	f := e.answer
	e.mu.Unlock()
	st := smpp.ESME_ROK
	if f != nil {
		st = f(d)
	}
	select {
	case e.in <- d:
	default:
		panic("esme: deliver_sm buffer full")
	}
	if st == noAnswer {
		return nil
	}
	return smpp.Reply(req, st)
}

func dialCfg(t testing.TB, addr string, cfg smpp.Config) (*esme, error) {
	t.Helper()
	if cfg.SystemID == "" {
		cfg.SystemID = "otp"
	}
	if cfg.Password == "" {
		cfg.Password = "secret"
	}
	if cfg.Window == 0 {
		cfg.Window = 10
	}
	if cfg.ResponseTimeout == 0 {
		cfg.ResponseTimeout = hang
	}
	e := &esme{in: make(chan *smpp.DeliverSM, 1<<14)}
	cfg.Handler = e
	s, err := smpp.Dial(context.Background(), addr, cfg)
	if err != nil {
		return nil, err
	}
	e.Session = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		s.Close(ctx)
	})
	return e, nil
}

func dial(t testing.TB, sim *Simulator, cfg smpp.Config) *esme {
	t.Helper()
	e, err := dialCfg(t, sim.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// next waits for the next deliver_sm.
func (e *esme) next(t testing.TB) *smpp.DeliverSM {
	t.Helper()
	select {
	case d := <-e.in:
		return d
	case <-time.After(hang):
		t.Fatal("no deliver_sm came")
		return nil
	}
}

// receipt waits for the next deliver_sm and parses it as a receipt.
func (e *esme) receipt(t testing.TB) (smpp.Receipt, *smpp.DeliverSM) {
	t.Helper()
	d := e.next(t)
	r, err := smpp.ParseReceipt(d)
	if err != nil {
		t.Fatalf("not a receipt: %v (%q)", err, d.ShortMessage)
	}
	return r, d
}

// none checks that nothing is waiting in the deliver_sm buffer.
func (e *esme) none(t testing.TB) {
	t.Helper()
	select {
	case d := <-e.in:
		t.Fatalf("unexpected deliver_sm: %q", d.ShortMessage)
	default:
	}
}

func gsm(to, text string, regDel byte) *smpp.SubmitSM {
	return &smpp.SubmitSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: to,
		RegisteredDelivery: regDel, ShortMessage: []byte(text)}
}

func submit(t testing.TB, e *esme, p *smpp.SubmitSM) string {
	t.Helper()
	resp, err := e.Submit(testCtx(t), p)
	if err != nil {
		t.Fatalf("submit to %s: %v", p.DestinationAddr, err)
	}
	return resp.MessageID
}

func submitStatus(t testing.TB, e *esme, p *smpp.SubmitSM) smpp.CommandStatus {
	t.Helper()
	_, err := e.Submit(testCtx(t), p)
	if err == nil {
		return smpp.ESME_ROK
	}
	var re *smpp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("submit: %v", err)
	}
	return re.Status
}

// waitFor polls cond (a hang guard, not a timing assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// do sends an HTTP request to h and decodes the JSON answer into out.
func do(t testing.TB, h http.Handler, method, path, body string, out any) int {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, w.Code, w.Body.String(), err)
		}
	}
	return w.Code
}

func metricsText(t testing.TB, sim *Simulator) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	sim.Handler().ServeHTTP(w, req)
	return w.Body.String()
}
