package docs_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator/simulatortest"
	"github.com/otpd/otpd/smpp"
)

// TestLoginSendsACode is the Go example of docs/smscsim.md, verbatim
// (TestSmscsimGoExampleIsThisTest checks that).
func TestLoginSendsACode(t *testing.T) {
	sim := simulatortest.New(t)      // free ports, closed when the test ends
	app := startApp(t, sim.SMPPAddr) // the application under test, pointed at the simulator
	for range 2 {                    // one number, two codes: each read is the new one
		cur := sim.Cursor(t, "+4915112345678") // before the application sends
		app.Login("+4915112345678")
		m := sim.Next(t, cur) // the SMS after the cursor; fails the test after sim.Timeout (20s)
		if !app.Verify("+4915112345678", m.Code) {
			t.Fatalf("code %q of %q refused", m.Code, m.Text)
		}
	}
}

// loginApp stands for the application under test: it sends a fresh code
// over SMPP on each login and accepts only the last one sent.
type loginApp struct {
	t     *testing.T
	s     *smpp.Session
	mu    sync.Mutex
	codes map[string]string
}

func startApp(t *testing.T, smsc string) *loginApp {
	t.Helper()
	s, err := smpp.Dial(context.Background(), smsc, smpp.Config{SystemID: "app", Password: "pw",
		Handler: smpp.HandlerFunc(func(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
			return smpp.Reply(req, smpp.ESME_ROK)
		})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return &loginApp{t: t, s: s, codes: map[string]string{}}
}

func (a *loginApp) Login(phone string) {
	a.t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		a.t.Fatal(err)
	}
	code := fmt.Sprintf("%06d", n)
	a.mu.Lock()
	a.codes[phone] = code
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "APP", DestAddrTON: 1, DestAddrNPI: 1,
		DestinationAddr: strings.TrimPrefix(phone, "+"), RegisteredDelivery: 1, ShortMessage: []byte("Your code is " + code)})
	if err != nil {
		a.t.Fatal(err)
	}
}

func (a *loginApp) Verify(phone, code string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return code != "" && a.codes[phone] == code
}
