package integration

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/otpd/otpd/simulator/simulatortest"
)

// catcherMessage is a message as smscsim's API shows it, with its codes.
type catcherMessage struct {
	simMessage
	Code  string   `json:"code"`
	Codes []string `json:"codes"`
}

// latest is GET /api/messages/latest with the query q: the message, or
// ok false on 404.
func (s *simProc) latest(t *testing.T, q url.Values) (catcherMessage, bool) {
	t.Helper()
	u := "http://" + s.http + "/api/messages/latest?" + q.Encode()
	r, err := request(context.Background(), "GET", u, "", nil)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	var m catcherMessage
	switch r.Status {
	case 200:
		r.decode(t, &m)
		return m, true
	case 404:
		return m, false
	}
	t.Fatalf("GET %s: %s", u, r)
	return m, false
}

// next is the pattern that cannot read a stale SMS: the cursor (the
// newest message to the number, if any) before the send, then the first
// message after it, waited for.
func (s *simProc) next(t *testing.T, q url.Values, send func()) catcherMessage {
	t.Helper()
	q.Del("since")
	if m, ok := s.latest(t, q); ok {
		q.Set("since", m.ID)
	}
	send()
	q.Set("wait", "60s")
	m, ok := s.latest(t, q)
	if !ok {
		t.Fatalf("no SMS after the cursor (%s) within 60s", q.Encode())
	}
	return m
}

// TestCatcherSameNumberTwice is the CI case: one number, a new challenge
// right after the last, and the code read is that of the new one every
// time.
func TestCatcherSameNumberTwice(t *testing.T) {
	t.Parallel()
	sim := startSim(t, freeAddr(t), freeAddr(t))
	o := startOtpd(t, freeAddr(t), t.TempDir(), append(otpdSMSCArgs(sim), "--no-auth", "--limit-phone", "100/1m")...)
	phone := newPhone("")
	for round := range 6 {
		var c challenge
		m := sim.next(t, url.Values{"to": {phone}}, func() { c = o.create(t, map[string]any{"phone": phone}) })
		if m.Code == "" || m.Code != codeOf(t, m.Text) {
			t.Fatalf("round %d: code %q of %q", round, m.Code, m.Text)
		}
		var v verifyResult
		o.expect(t, "POST", "/v1/otp/"+c.ID+"/verify", map[string]string{"code": m.Code}, 200).decode(t, &v)
		if v.Status != "approved" {
			t.Fatalf("round %d: the code read (%s) is not the new challenge's: %+v", round, m.Code, v)
		}
	}
}

// TestCatcherNamespacesInParallel: two CI jobs share one smscsim and one
// phone number, each with its own system_id; each reads its own codes.
func TestCatcherNamespacesInParallel(t *testing.T) {
	t.Parallel()
	sim := startSim(t, freeAddr(t), freeAddr(t), "--account", "job-a:pwa", "--account", "job-b:pwb")
	phone := newPhone("")
	var wg sync.WaitGroup
	for _, job := range []struct{ id, pw string }{{"job-a", "pwa"}, {"job-b", "pwb"}} {
		o := startOtpd(t, freeAddr(t), t.TempDir(), "--smsc", sim.smpp, "--system-id", job.id, "--password", job.pw, "--no-auth", "--limit-phone", "100/1m")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				var c challenge
				m := sim.next(t, url.Values{"to": {phone}, "system_id": {job.id}}, func() { c = o.create(t, map[string]any{"phone": phone}) })
				if m.SystemID != job.id {
					t.Errorf("%s round %d: read a message of %s", job.id, round, m.SystemID)
					return
				}
				var v verifyResult
				o.expect(t, "POST", "/v1/otp/"+c.ID+"/verify", map[string]string{"code": m.Code}, 200).decode(t, &v)
				if v.Status != "approved" {
					t.Errorf("%s round %d: %+v", job.id, round, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(sim.messages(t, digits(phone))); n != 10 {
		t.Errorf("%d SMS to the number, want 10", n)
	}
}

// TestOtpdOverTLS: otpd's --smsc-tls path against smscsim's SMPP over TLS,
// the certificate verified against --smsc-tls-ca; without the CA otpd
// does not bind.
func TestOtpdOverTLS(t *testing.T) {
	t.Parallel()
	certs := simulatortest.NewCerts(t)
	tlsAddr := freeAddr(t)
	sim := startSim(t, freeAddr(t), freeAddr(t), "--smpp-tls", tlsAddr, "--smpp-tls-cert", certs.CertFile, "--smpp-tls-key", certs.KeyFile)
	args := []string{"--smsc", tlsAddr, "--system-id", simSystemID, "--password", simPassword, "--smsc-tls", "--no-auth",
		"--reconnect-min", "100ms", "--reconnect-max", "1s"}

	// No CA: the handshake fails verification, nothing binds.
	bin, _ := binaries(t)
	bad := startProc(t, "otpd (no CA)", bin, append([]string{"serve", "--http", freeAddr(t), "--data", t.TempDir()}, args...)...)
	eventually(t, "otpd refusing the certificate", startWait, func() (bool, string) {
		return strings.Contains(bad.stderr.String(), "certificate signed by unknown authority"), bad.stderr.String()
	})
	if s := sim.sessions(t); len(s) != 0 {
		t.Fatalf("sessions with an unverified certificate: %v", s)
	}
	bad.Stop()

	o := startOtpd(t, freeAddr(t), t.TempDir(), append(args, "--smsc-tls-ca", certs.CAFile)...)
	phone := newPhone("")
	var c challenge
	m := sim.next(t, url.Values{"to": {phone}}, func() { c = o.create(t, map[string]any{"phone": phone}) })
	var v verifyResult
	o.expect(t, "POST", "/v1/otp/"+c.ID+"/verify", map[string]string{"code": m.Code}, 200).decode(t, &v)
	if v.Status != "approved" {
		t.Fatalf("verify over TLS: %+v", v)
	}
	eventually(t, "the receipt over TLS", settleWait, func() (bool, string) {
		c = o.get(t, c.ID)
		return c.state() == "delivered", c.state()
	})
}

// sessions is GET /api/sessions: the peers bound.
func (s *simProc) sessions(t *testing.T) []string {
	t.Helper()
	r, err := request(context.Background(), "GET", "http://"+s.http+"/api/sessions", "", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET /api/sessions: %v %v", r, err)
	}
	var out struct {
		Sessions []struct {
			SystemID string `json:"system_id"`
			Peer     string `json:"peer"`
		} `json:"sessions"`
	}
	r.decode(t, &out)
	var l []string
	for _, x := range out.Sessions {
		l = append(l, fmt.Sprint(x.SystemID, "@", x.Peer))
	}
	return l
}
