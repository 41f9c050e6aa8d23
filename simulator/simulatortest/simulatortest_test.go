package simulatortest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/simulator/simulatortest"
	"github.com/otpd/otpd/smpp"
)

func bind(t *testing.T, addr, systemID string, tc *tls.Config) *smpp.Session {
	t.Helper()
	s, err := smpp.Dial(context.Background(), addr, smpp.Config{Bind: smpp.BindTransceiver, SystemID: systemID, Password: "pw", TLS: tc,
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
	return s
}

func send(t *testing.T, s *smpp.Session, to, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "APP", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: to, RegisteredDelivery: 1, ShortMessage: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	return r.MessageID
}

// TestNewInParallel: simulators of parallel tests never share a port.
func TestNewInParallel(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			sim := simulatortest.New(t)
			mu.Lock()
			for _, a := range []string{sim.SMPPAddr, sim.URL} {
				if seen[a] {
					t.Errorf("address %s used twice", a)
				}
				seen[a] = true
			}
			mu.Unlock()
			var h map[string]string
			if code := sim.GetJSON(t, "/healthz", &h); code != 200 || h["status"] != "ok" {
				t.Fatalf("healthz: %d %v", code, h)
			}
		})
	}
}

// TestSameNumberTwice is the CI case of the stale read: one number, two
// codes in a row, the second read every time.
func TestSameNumberTwice(t *testing.T) {
	sim := simulatortest.New(t)
	s := bind(t, sim.SMPPAddr, "ci", nil)
	const to = "+4915100000401"
	for round := range 20 {
		cur := sim.Cursor(t, to)
		code := fmt.Sprintf("%06d", 100000+round)
		send(t, s, strings.TrimPrefix(to, "+"), "Your code is "+code)
		if m := sim.Next(t, cur); m.Code != code {
			t.Fatalf("round %d: read %q, want %q", round, m.Code, code)
		}
	}
}

// TestNamespacesInParallel: two jobs share one simulator and one number,
// each reads only its own messages.
func TestNamespacesInParallel(t *testing.T) {
	sim := simulatortest.New(t)
	const to = "4915100000402"
	for _, job := range []string{"job-a", "job-b"} {
		t.Run(job, func(t *testing.T) {
			t.Parallel()
			s := bind(t, sim.SMPPAddr, job, nil)
			for round := range 20 {
				cur := sim.CursorFilter(t, simulator.Filter{To: to, SystemID: job})
				text := fmt.Sprintf("%s code %d", job, 500000+round)
				send(t, s, to, text)
				if m := sim.Next(t, cur); m.Text != text || m.SystemID != job {
					t.Fatalf("round %d: read %q of %s, want %q", round, m.Text, m.SystemID, text)
				}
			}
		})
	}
}

func TestTLS(t *testing.T) {
	certs := simulatortest.NewCerts(t)
	t.Run("instead of plain", func(t *testing.T) {
		sim := simulatortest.New(t, func(c *simulator.Config) { c.SMPPAddr, c.TLS = "off", certs.Server })
		if sim.TLSAddr() == "" || sim.SMPPAddr != sim.TLSAddr() {
			t.Fatalf("addresses: smpp %q tls %q", sim.SMPPAddr, sim.TLSAddr())
		}
		s := bind(t, sim.SMPPAddr, "tls", &tls.Config{RootCAs: certs.CAPool})
		cur := sim.Cursor(t, "4915100000403")
		send(t, s, "4915100000403", "over TLS 123456")
		if m := sim.Next(t, cur); m.Code != "123456" {
			t.Fatalf("message %+v", m)
		}
		// Verification: a client that does not trust the CA is refused.
		_, err := smpp.Dial(context.Background(), sim.SMPPAddr, smpp.Config{SystemID: "x", TLS: &tls.Config{}})
		var ue x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &ue) {
			t.Fatalf("dial without the CA: %v, want an unknown authority error", err)
		}
		// Plain SMPP on the TLS port does not bind.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := smpp.Dial(ctx, sim.SMPPAddr, smpp.Config{SystemID: "x"}); err == nil {
			t.Fatal("a plain bind on the TLS listener succeeded")
		}
	})
	t.Run("beside plain", func(t *testing.T) {
		sim := simulatortest.New(t, func(c *simulator.Config) { c.TLS = certs.Server })
		if sim.TLSAddr() == "" || sim.SMPPAddr == sim.TLSAddr() {
			t.Fatalf("addresses: smpp %q tls %q", sim.SMPPAddr, sim.TLSAddr())
		}
		bind(t, sim.SMPPAddr, "plain", nil)
		bind(t, sim.TLSAddr(), "tls", &tls.Config{RootCAs: certs.CAPool})
		if n := len(sim.Sessions()); n != 2 {
			t.Fatalf("%d sessions, want 2", n)
		}
	})
	if _, err := simulator.Start(simulator.Config{SMPPAddr: "off"}); err == nil {
		t.Error("no listener at all was accepted")
	}
}
