package integration

// End-to-end tests of otpd against smscsim: the real binaries, built once
// per run, as processes on loopback ports chosen at run time, each test with
// its own data directory. Everything goes through otpd's HTTP API; the SMS
// texts (and the codes in them) are read from smscsim's HTTP API, never
// from otpd's database. Helpers are in procs_test.go.
//
// The tests run in parallel (at most GOMAXPROCS at once): the expiry case
// waits out a 30s TTL, the shortest the API allows, while the others run.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// masked is the form otpd shows a number in: +49151****678.
func masked(phone string) string { return phone[:6] + "****" + phone[len(phone)-3:] }

// wrongCode is a code of the same length that is not code.
func wrongCode(code string) string {
	b := []byte(code)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

// TestOtpdChallenges: send an OTP, read its code from smscsim, verify it;
// a wrong code; max attempts; the per-phone rate limit; expiry, and a code
// that cannot be sent before its challenge expires.
func TestOtpdChallenges(t *testing.T) {
	t.Parallel()
	// smscsim refuses SMS to this prefix with ESME_RSYSERR, a temporary
	// error otpd retries until the challenge's expiry.
	const refused = "+4915198"
	sim := startSim(t, freeAddr(t), freeAddr(t), "--rule", refused+"=reject:ESME_RSYSERR")
	o := startOtpdGlobal(t, []string{"--log-level", "debug"}, freeAddr(t), t.TempDir(),
		append(otpdSMSCArgs(sim), "--no-auth", "--max-attempts", "2", "--limit-phone", "2/1h")...)
	// At the end: otpd's logs, at debug, hold no number, code or password.
	defer func() {
		if !t.Failed() {
			noSecretsInLogs(t, o.proc, sim.messages(t, ""))
		}
	}()

	// The expiring challenge first, with the shortest TTL the API takes:
	// its 30 seconds run out while the other cases run.
	expPhone := newPhone("")
	exp := o.create(t, map[string]any{"phone": expPhone, "ttl": "30s"})
	expCode := codeOf(t, sim.waitMessages(t, expPhone, 1)[0].Text)
	unsendPhone := newPhone(refused)
	unsend := o.create(t, map[string]any{"phone": unsendPhone, "ttl": "30s"})

	t.Run("send and verify", func(t *testing.T) {
		phone := newPhone("")
		c := o.create(t, map[string]any{"phone": phone})
		if c.Phone != masked(phone) {
			t.Errorf("phone in the answer %q, want it masked as %q", c.Phone, masked(phone))
		}
		msgs := sim.waitMessages(t, phone, 1)
		if len(msgs) != 1 {
			t.Fatalf("%d SMS to %s, want 1: %+v", len(msgs), phone, msgs)
		}
		m := msgs[0]
		if m.SystemID != simSystemID || m.From != "OTPD" {
			t.Errorf("SMS from system_id %q source %q, want %q and OTPD", m.SystemID, m.From, simSystemID)
		}
		code := codeOf(t, m.Text)
		if len(code) != 6 {
			t.Errorf("code %q in %q: want 6 digits", code, m.Text)
		}

		var v verifyResult
		r := o.verify(t, c.ID, wrongCode(code))
		if r.Status != 200 {
			t.Fatalf("verify with a wrong code: %s, want 200", r)
		}
		r.decode(t, &v)
		if v.Status != "pending" || v.AttemptsLeft == nil || *v.AttemptsLeft != 1 {
			t.Errorf("verify with a wrong code: %s, want pending with attempts_left 1", r)
		}

		r = o.verify(t, c.ID, code)
		if r.Status != 200 {
			t.Fatalf("verify with the code: %s, want 200", r)
		}
		v = verifyResult{}
		r.decode(t, &v)
		if v.Status != "approved" {
			t.Errorf("verify with the code: %s, want approved", r)
		}
		if r := o.verify(t, c.ID, code); r.Status != 409 {
			t.Errorf("verify again with the used code: %s, want 409", r)
		}

		g := o.expect(t, "GET", "/v1/otp/"+c.ID, nil, 200)
		if strings.Contains(string(g.Body), code) || strings.Contains(string(g.Body), phone) {
			t.Errorf("GET /v1/otp/{id} shows the code or the full number: %s", g)
		}
		var got challenge
		g.decode(t, &got)
		if got.Status != "approved" || got.Phone != masked(phone) {
			t.Errorf("GET after approval: %s, want status approved, phone masked", g)
		}
		if got.Delivery == nil || len(got.Delivery.MessageIDs) != 1 || got.Delivery.MessageIDs[0] != m.ID {
			t.Errorf("delivery %+v: want the message id smscsim gave, %s", got.Delivery, m.ID)
		}
	})

	t.Run("max attempts", func(t *testing.T) {
		phone := newPhone("")
		c := o.create(t, map[string]any{"phone": phone})
		code := codeOf(t, sim.waitMessages(t, phone, 1)[0].Text)
		for i, want := range []struct {
			status string
			left   int
		}{{"pending", 1}, {"max_attempts_reached", 0}} {
			r := o.verify(t, c.ID, wrongCode(code))
			var v verifyResult
			if r.Status == 200 {
				r.decode(t, &v)
			}
			if r.Status != 200 || v.Status != want.status || v.AttemptsLeft == nil || *v.AttemptsLeft != want.left {
				t.Fatalf("wrong code #%d: %s, want 200 %s with attempts_left %d", i+1, r, want.status, want.left)
			}
		}
		r := o.verify(t, c.ID, code)
		if r.Status != 409 || r.errorCode() != "max_attempts_reached" {
			t.Errorf("the right code after the attempts are used up: %s, want 409 max_attempts_reached (final, not a 429)", r)
		}
		if got := o.get(t, c.ID); got.Status != "max_attempts_reached" {
			t.Errorf("status %q, want max_attempts_reached", got.Status)
		}
	})

	t.Run("rate limit per phone", func(t *testing.T) {
		phone := newPhone("")
		a := o.create(t, map[string]any{"phone": phone})
		b := o.create(t, map[string]any{"phone": phone})
		r := o.do(t, "POST", "/v1/otp", map[string]any{"phone": phone})
		if r.Status != 429 || r.errorCode() != "rate_limited" {
			t.Fatalf("third code to one number within --limit-phone 2/1h: %s, want 429 rate_limited", r)
		}
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n <= 0 {
			t.Errorf("Retry-After %q: want a positive number of seconds", r.Header.Get("Retry-After"))
		}
		o.create(t, map[string]any{"phone": newPhone("")}) // another number is not limited
		// The refused one is never sent: once both accepted are out,
		// smscsim holds exactly two SMS for the number.
		for _, id := range []string{a.ID, b.ID} {
			eventually(t, "challenge "+id+" delivered", settleWait, func() (bool, string) {
				c := o.get(t, id)
				return c.state() == "delivered", c.state()
			})
		}
		if msgs := sim.messages(t, digits(phone)); len(msgs) != 2 {
			t.Errorf("%d SMS to the rate-limited number, want 2", len(msgs))
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			method, path string
			body         any
			status       int
			code         string
		}{
			{"POST", "/v1/otp", map[string]any{"phone": "+4930123456"}, 400, "invalid_phone"}, // a Berlin landline
			{"POST", "/v1/otp", map[string]any{"phone": "015112345678"}, 400, "invalid_phone"},
			{"POST", "/v1/otp", map[string]any{"phone": newPhone(""), "ttl": "20s"}, 400, "invalid_ttl"},
			{"GET", "/v1/otp/ch_doesnotexist", nil, 404, "not_found"},
			{"POST", "/v1/otp/" + exp.ID + "/verify", map[string]any{"code": "12ab"}, 400, "invalid_code"},
		} {
			r := o.do(t, tc.method, tc.path, tc.body)
			if r.Status != tc.status || r.errorCode() != tc.code {
				t.Errorf("%s %s %v: %s, want %d %s", tc.method, tc.path, tc.body, r, tc.status, tc.code)
			}
		}
	})

	t.Run("expiry", func(t *testing.T) {
		eventually(t, "challenge with ttl 30s expired", time.Until(exp.ExpiresAt)+30*time.Second, func() (bool, string) {
			c := o.get(t, exp.ID)
			return c.Status == "expired", c.Status
		})
		if r := o.verify(t, exp.ID, expCode); r.Status != 410 || r.errorCode() != "expired" {
			t.Errorf("the right code after expiry: %s, want 410 expired", r)
		}
	})

	t.Run("unsendable until expiry", func(t *testing.T) {
		var c challenge
		eventually(t, "the refused message failed", time.Until(unsend.ExpiresAt)+30*time.Second, func() (bool, string) {
			c = o.get(t, unsend.ID)
			return c.state() == "failed", fmt.Sprintf("%s %+v", c.Status, c.Delivery)
		})
		if len(c.Delivery.MessageIDs) != 0 || !strings.Contains(c.Delivery.Reason, "expire") {
			t.Errorf("delivery %+v: want no message id and a reason that names the expiry", *c.Delivery)
		}
		if n := len(sim.messages(t, digits(unsendPhone))); n != 0 {
			t.Errorf("smscsim holds %d SMS to the refused number, want none", n)
		}
		if n := o.metric(t, "otpd_messages_expired_unsent_total"); n < 1 {
			t.Errorf("otpd_messages_expired_unsent_total %v, want at least 1", n)
		}
	})
}

// TestOtpdReceipts: smscsim answers a number's SMS with an UNDELIV
// receipt and the challenge shows it; the others are delivered, including
// a long text in two segments (delivered once both are) and a UCS-2 text.
// otpd binds as transmitter and receiver pairs (receipts come on the
// receiver binds), and smscsim gives hex message ids but writes decimal
// ones in its receipts, which otpd still matches.
func TestOtpdReceipts(t *testing.T) {
	t.Parallel()
	const undeliv = "+4915199"
	sim := startSim(t, freeAddr(t), freeAddr(t), "--rule", undeliv+"=UNDELIV:001",
		"--message-id-format", "hex", "--receipt-id-format", "dec")
	o := startOtpd(t, freeAddr(t), t.TempDir(),
		append(otpdSMSCArgs(sim), "--no-auth", "--bind-mode", "tx+rx", "--binds", "2", "--message-id-format", "auto")...)

	long := "Your one-time code for signing in to the e2e test service is {otp}. " +
		"Nobody from the service will ever ask you for it; do not share it with anyone. It expires soon."
	for _, tc := range []struct {
		name     string
		phone    string
		template string
		state    string
		stat     string
		err      string
		segments int
		coding   byte
	}{
		{"undeliverable", newPhone(undeliv), "", "undeliverable", "UNDELIV", "001", 1, 0},
		{"delivered", newPhone(""), "", "delivered", "DELIVRD", "000", 1, 0},
		{"two segments", newPhone(""), long, "delivered", "DELIVRD", "000", 2, 0},
		{"ucs2", newPhone(""), "Ваш код: {otp}", "delivered", "DELIVRD", "000", 1, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"phone": tc.phone}
			if tc.template != "" {
				body["template"] = tc.template
			}
			created := o.create(t, body)
			var c challenge
			eventually(t, "delivery of "+tc.phone+" final", settleWait, func() (bool, string) {
				c = o.get(t, created.ID)
				return c.state() != "queued" && c.state() != "submitted", fmt.Sprintf("%+v", c.Delivery)
			})
			if d := c.Delivery; d.State != tc.state || d.Stat != tc.stat || d.Err != tc.err || len(d.MessageIDs) != tc.segments {
				t.Errorf("delivery %+v, want state %s, stat %s, err %s, %d message ids", *d, tc.state, tc.stat, tc.err, tc.segments)
			}
			if c.Status != "pending" {
				t.Errorf("challenge status %q, want pending (delivery does not change it)", c.Status)
			}
			msgs := sim.waitMessages(t, tc.phone, 1)
			if len(msgs) != 1 {
				t.Fatalf("%d SMS at smscsim, want 1: %+v", len(msgs), msgs)
			}
			m := msgs[0]
			if m.Receipt == nil || m.Receipt.Stat != tc.stat || m.Segments != tc.segments || m.DataCoding != tc.coding {
				t.Errorf("smscsim holds %+v, want %d segment(s), data_coding %d, a %s receipt", m, tc.segments, tc.coding, tc.stat)
			}
			code := codeOf(t, m.Text)
			if tc.template != "" && m.Text != strings.ReplaceAll(tc.template, "{otp}", code) {
				t.Errorf("SMS text %q, want the template %q with the code", m.Text, tc.template)
			}
			if c.Delivery.MessageIDs[0] != m.ID {
				t.Errorf("otpd's message ids %v, smscsim's %s", c.Delivery.MessageIDs, m.ID)
			}
			var v verifyResult
			o.expect(t, "POST", "/v1/otp/"+created.ID+"/verify", map[string]string{"code": code}, 200).decode(t, &v)
			if v.Status != "approved" {
				t.Errorf("verify with the code of the SMS: %+v, want approved", v)
			}
		})
	}
}

// TestOtpdAPIKeys: with a real SMSC configured, otpd wants the key that
// otpd keys create printed.
func TestOtpdAPIKeys(t *testing.T) {
	t.Parallel()
	bin, _ := binaries(t)
	data := t.TempDir()
	out, _ := run(t, bin, "keys", "create", "--data", data, "--name", "e2e")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || lines[0] == "" || strings.ContainsAny(lines[0], " \t") {
		t.Fatalf("otpd keys create printed %q, want the key on one line", out)
	}
	key := lines[0]

	sim := startSim(t, freeAddr(t), freeAddr(t))
	o := startOtpd(t, freeAddr(t), data, otpdSMSCArgs(sim)...)

	phone := newPhone("")
	for _, tc := range []struct {
		key          string
		method, path string
		body         any
	}{
		{"", "POST", "/v1/otp", map[string]any{"phone": phone}},
		{"", "GET", "/v1/otp/ch_whatever", nil},
		{"", "GET", "/v1/events", nil},
		{"not-the-key", "POST", "/v1/otp", map[string]any{"phone": phone}},
		{key + "x", "POST", "/v1/otp", map[string]any{"phone": phone}},
	} {
		o.key = tc.key
		if r := o.do(t, tc.method, tc.path, tc.body); r.Status != 401 || r.errorCode() != "unauthorized" {
			t.Errorf("%s %s with key %q: %s, want 401 unauthorized", tc.method, tc.path, tc.key, r)
		}
	}
	o.key = ""
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		o.expect(t, "GET", path, nil, 200)
	}
	if n := len(sim.messages(t, digits(phone))); n != 0 {
		t.Errorf("%d SMS sent for requests without a valid key", n)
	}

	o.key = key
	c := o.create(t, map[string]any{"phone": phone})
	code := codeOf(t, sim.waitMessages(t, phone, 1)[0].Text)
	o.key = ""
	if r := o.verify(t, c.ID, code); r.Status != 401 {
		t.Errorf("verify without the key: %s, want 401", r)
	}
	o.key = key
	var v verifyResult
	o.expect(t, "POST", "/v1/otp/"+c.ID+"/verify", map[string]string{"code": code}, 200).decode(t, &v)
	if v.Status != "approved" {
		t.Errorf("verify with the key: %+v, want approved", v)
	}

	// Keys created while otpd runs work at once; a client sees only its
	// own challenges; a key limited to other networks is refused.
	out, _ = run(t, bin, "keys", "create", "--data", data, "--name", "second")
	o.key = strings.TrimSpace(out)
	if r := o.do(t, "GET", "/v1/otp/"+c.ID, nil); r.Status != 404 {
		t.Errorf("another key's challenge: %s, want 404", r)
	}
	o.create(t, map[string]any{"phone": newPhone("")})
	out, _ = run(t, bin, "keys", "create", "--data", data, "--name", "elsewhere", "--networks", "10.0.0.0/8")
	o.key = strings.TrimSpace(out)
	if r := o.do(t, "POST", "/v1/otp", map[string]any{"phone": newPhone("")}); r.Status != 403 {
		t.Errorf("a key for 10.0.0.0/8 used from 127.0.0.1: %s, want 403", r)
	}

	// otpd keys list shows ids and names, never a key; otpd keys revoke
	// takes effect on the running otpd within seconds; rotate prints a new
	// key that works while the old one still does.
	out, errOut := run(t, bin, "keys", "create", "--data", data, "--name", "doomed")
	doomed := strings.TrimSpace(out)
	id := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(errOut), "created API key"))
	list, _ := run(t, bin, "keys", "list", "--data", data)
	if !strings.Contains(list, id) || !strings.Contains(list, "doomed") || strings.Contains(list, doomed) || strings.Contains(list, key) {
		t.Errorf("otpd keys list:\n%s", list)
	}
	o.key = doomed
	o.create(t, map[string]any{"phone": newPhone("")})
	run(t, bin, "keys", "revoke", "--data", data, id)
	deadline := time.Now().Add(10 * time.Second)
	for o.do(t, "GET", "/v1/otp/ch_2222222222222222222222222a", nil).Status != 401 {
		if time.Now().After(deadline) {
			t.Fatal("a key revoked by otpd keys revoke still works on the running otpd")
		}
		time.Sleep(200 * time.Millisecond)
	}
	list, _ = run(t, bin, "keys", "list", "--data", data)
	if !strings.Contains(list, "revoked") {
		t.Errorf("otpd keys list after revoke:\n%s", list)
	}
}

// TestOtpdSendAndTail: otpd send over a fresh bind prints the message_id
// and the receipt; otpd tail --json shows the delivery of an OTP created
// while it runs.
func TestOtpdSendAndTail(t *testing.T) {
	t.Parallel()
	bin, _ := binaries(t)
	sim := startSim(t, freeAddr(t), freeAddr(t))

	t.Run("send", func(t *testing.T) {
		phone := newPhone("")
		text := "e2e link test " + phone[len(phone)-4:]
		out, _ := run(t, bin, "send", "--smsc", sim.smpp, "--system-id", simSystemID, "--password", simPassword,
			"--to", phone, "--text", text, "--wait", "30s")
		var id string
		for _, line := range strings.Split(out, "\n") {
			if _, after, ok := strings.Cut(line, "message_id "); ok && strings.HasPrefix(line, "submitted 1/1") {
				id = strings.TrimSpace(after)
			}
		}
		if id == "" {
			t.Fatalf("otpd send printed no message_id:\n%s", out)
		}
		if !strings.Contains(out, "receipt for "+id+": stat DELIVRD") {
			t.Errorf("otpd send printed no DELIVRD receipt for %s:\n%s", id, out)
		}
		if strings.Contains(out, phone) {
			t.Errorf("otpd send printed the full number:\n%s", out)
		}
		msgs := sim.waitMessages(t, phone, 1)
		if len(msgs) != 1 || msgs[0].ID != id || msgs[0].Text != text {
			t.Errorf("smscsim holds %+v, want one message %s with text %q", msgs, id, text)
		}
	})

	t.Run("tail", func(t *testing.T) {
		data := t.TempDir()
		out, _ := run(t, bin, "keys", "create", "--data", data)
		key := strings.TrimSpace(out)
		o := startOtpd(t, freeAddr(t), data, otpdSMSCArgs(sim)...)
		o.key = key
		tail := startProc(t, "otpd tail", bin, "tail", "--url", o.url, "--key", key, "--json")

		events := func() []map[string]any {
			var evs []map[string]any
			for _, line := range strings.Split(tail.stdout.String(), "\n") {
				if line = strings.TrimSpace(line); line == "" {
					continue
				}
				var e map[string]any
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("otpd tail --json printed a line that is not JSON: %q", line)
				}
				evs = append(evs, e)
			}
			return evs
		}
		// tail prints nothing until its subscription sees an event: create
		// OTPs until one shows, so that the next is created while tail
		// surely follows.
		var phones []string
		eventually(t, "otpd tail shows a first event", settleWait, func() (bool, string) {
			if tail.exited() {
				t.Fatalf("otpd tail ended: %v\n%s", tail.waitErr, tail.stderr.String())
			}
			if len(events()) > 0 {
				return true, ""
			}
			p := newPhone("")
			phones = append(phones, p)
			o.create(t, map[string]any{"phone": p})
			time.Sleep(200 * time.Millisecond)
			return false, fmt.Sprintf("%d OTPs created, no event", len(phones))
		})

		phone := newPhone("")
		c := o.create(t, map[string]any{"phone": phone})
		var ev map[string]any
		eventually(t, "otpd tail shows the delivery of "+c.ID, settleWait, func() (bool, string) {
			for _, e := range events() {
				if e["challenge_id"] == c.ID && e["state"] == "delivered" {
					ev = e
					return true, ""
				}
			}
			return false, tail.stdout.String()
		})
		if ev["phone"] != masked(phone) || ev["stat"] != "DELIVRD" || ev["message_id"] == "" || ev["smsc_id"] == "" {
			t.Errorf("delivery event %v: want phone %s, stat DELIVRD, message_id and smsc_id", ev, masked(phone))
		}
		msgs := sim.waitMessages(t, phone, 1)
		if ev["smsc_id"] != msgs[0].ID {
			t.Errorf("event smsc_id %v, smscsim's message id %s", ev["smsc_id"], msgs[0].ID)
		}
		for _, p := range append(phones, phone) {
			if strings.Contains(tail.stdout.String(), p) {
				t.Errorf("otpd tail shows the full number %s", p)
			}
		}
		tail.Stop()
	})
}

// noSecretsInLogs checks that a process's logs hold none of the numbers
// and codes of msgs, nor the SMPP password.
func noSecretsInLogs(t *testing.T, p *proc, msgs []simMessage) {
	t.Helper()
	logs := p.stderr.String() + p.stdout.String()
	if strings.Contains(logs, simPassword) {
		t.Errorf("%s logged the SMPP password", p.name)
	}
	numbers := map[string]bool{} // every run of 6 digits or more in the logs
	for _, n := range digitsRE.FindAllString(logs, -1) {
		numbers[n] = true
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if strings.Contains(logs, digits(m.To)) && !seen[m.To] {
			seen[m.To] = true
			t.Errorf("%s logged the full number %s", p.name, m.To)
		}
		if c := codeRE.FindString(m.Text); c != "" && numbers[c] && !seen[c] {
			seen[c] = true
			t.Errorf("%s logged the code %s (sent to %s)", p.name, c, m.To)
		}
	}
}

var digitsRE = regexp.MustCompile(`\d{6,}`)

// ---- under load: smscsim cut, otpd killed ----

// acceptedOTP is a challenge otpd answered 201 for.
type acceptedOTP struct{ id, phone string }

// load creates OTPs with several workers, each to a number of its own,
// until n are accepted. While no bind is up (503) or nothing listens
// (connection refused) a request is repeated; a request whose outcome is
// unknown (the connection broke after it was sent) is not: its number is
// set aside and the worker goes on with a new one.
type load struct {
	url    string
	n      int
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	next   atomic.Int64

	unavailable, refused atomic.Int64

	mu       sync.Mutex
	accepted []acceptedOTP
	unknown  map[string]string // number -> error
	problems []string
}

func startLoad(t *testing.T, url string, n, workers int) *load {
	l := &load{url: url, n: n, unknown: map[string]string{}}
	l.ctx, l.cancel = context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	for range workers {
		l.wg.Add(1)
		go l.worker()
	}
	t.Cleanup(func() { l.cancel(); l.wg.Wait() })
	return l
}

func (l *load) problem(format string, a ...any) {
	l.mu.Lock()
	l.problems = append(l.problems, fmt.Sprintf(format, a...))
	l.mu.Unlock()
}

func (l *load) worker() {
	defer l.wg.Done()
	for l.next.Add(1) <= int64(l.n) {
		phone := newPhone("")
	try:
		for {
			if l.ctx.Err() != nil {
				l.problem("gave up creating an OTP for %s: %v", phone, l.ctx.Err())
				return
			}
			r, err := request(l.ctx, "POST", l.url+"/v1/otp", "", map[string]any{"phone": phone})
			switch {
			case err != nil && isRefused(err):
				l.refused.Add(1)
			case err != nil:
				l.mu.Lock()
				l.unknown[phone] = err.Error()
				l.mu.Unlock()
				phone = newPhone("")
			case r.Status == 201:
				var c challenge
				if json.Unmarshal(r.Body, &c) != nil || c.ID == "" {
					l.problem("POST /v1/otp %s: %s", phone, r)
					return
				}
				l.mu.Lock()
				l.accepted = append(l.accepted, acceptedOTP{c.ID, phone})
				l.mu.Unlock()
				break try
			case r.Status == 503:
				l.unavailable.Add(1)
			default:
				l.problem("POST /v1/otp %s: %s, want 201 (or 503 while no bind is up)", phone, r)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// waitAccepted waits until k OTPs were accepted.
func (l *load) waitAccepted(t *testing.T, k int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d OTPs accepted", k), settleWait, func() (bool, string) {
		return l.count() >= k, fmt.Sprintf("%d accepted", l.count())
	})
}

// wait waits for the workers and returns what was accepted and the numbers
// whose outcome is unknown.
func (l *load) wait(t *testing.T) ([]acceptedOTP, map[string]string) {
	t.Helper()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Error(p)
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(l.accepted) != l.n {
		t.Fatalf("%d OTPs accepted, want %d", len(l.accepted), l.n)
	}
	t.Logf("load: %d OTPs accepted; %d answers 503 and %d connections refused, repeated; %d outcomes unknown",
		len(l.accepted), l.unavailable.Load(), l.refused.Load(), len(l.unknown))
	return slices.Clone(l.accepted), l.unknown
}

// settle waits until every accepted OTP's message left the outbox, and
// returns the challenges. A message in a failed final state
// (undeliverable, expired, rejected, failed) is lost: the test fails.
// done says when a challenge is settled; the others are asked again.
func settle(t *testing.T, o *otpdProc, acc []acceptedOTP, done func(a acceptedOTP, c challenge) bool) map[string]challenge {
	t.Helper()
	out := map[string]challenge{}
	open := slices.Clone(acc)
	eventually(t, "every accepted OTP submitted", settleWait, func() (bool, string) {
		var still []acceptedOTP
		states := map[string]int{}
		for _, a := range open {
			c := o.get(t, a.id)
			states[c.state()]++
			switch c.state() {
			case "queued", "submitted", "delivered":
			default:
				t.Fatalf("OTP %s to %s lost: delivery %+v", a.id, a.phone, c.Delivery)
			}
			out[a.id] = c
			if !done(a, c) {
				still = append(still, a)
			}
		}
		open = still
		return len(open) == 0, fmt.Sprintf("%d not settled, states %v", len(open), states)
	})
	return out
}

// smsByPhone groups smscsim's messages by number (with +).
func smsByPhone(msgs []simMessage) map[string][]simMessage {
	by := map[string][]simMessage{}
	for _, m := range msgs {
		by["+"+digits(m.To)] = append(by["+"+digits(m.To)], m)
	}
	return by
}

// duplicates counts the SMS beyond the first per accepted number (each got
// one code), checks that copies carry the same text, and that every SMS
// went to an accepted number or one whose outcome is unknown.
func duplicates(t *testing.T, by map[string][]simMessage, acc []acceptedOTP, unknown map[string]string) int {
	t.Helper()
	accepted := map[string]bool{}
	for _, a := range acc {
		accepted[a.phone] = true
	}
	dups := 0
	var dupPhones []string
	for phone, msgs := range by {
		if !accepted[phone] {
			if _, ok := unknown[phone]; !ok {
				t.Errorf("%d SMS to %s, for which no OTP was asked", len(msgs), phone)
			}
			continue
		}
		if len(msgs) > 1 {
			dups += len(msgs) - 1
			dupPhones = append(dupPhones, phone)
			for _, m := range msgs[1:] {
				if m.Text != msgs[0].Text {
					t.Errorf("SMS to %s: %q and %q: a resubmit must carry the same code", phone, msgs[0].Text, m.Text)
				}
			}
		}
	}
	sort.Strings(dupPhones)
	if dups > 0 {
		t.Logf("duplicate SMS: %d, to %v", dups, dupPhones)
	}
	return dups
}

// verifyAll verifies each accepted OTP with the code smscsim received for
// its number; every one must be approved.
func verifyAll(t *testing.T, o *otpdProc, acc []acceptedOTP, by map[string][]simMessage) int {
	t.Helper()
	work := make(chan acceptedOTP)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				code := codeRE.FindString(by[a.phone][0].Text)
				r, err := request(context.Background(), "POST", o.url+"/v1/otp/"+a.id+"/verify", o.key, map[string]string{"code": code})
				var v verifyResult
				if err == nil && r.Status == 200 {
					json.Unmarshal(r.Body, &v)
				}
				if v.Status != "approved" {
					t.Errorf("OTP %s to %s with the code %q smscsim received: %v %v, want approved", a.id, a.phone, code, r, err)
				}
				n.Add(1)
			}
		}()
	}
	for _, a := range acc {
		if len(by[a.phone]) > 0 {
			work <- a
		}
	}
	close(work)
	wg.Wait()
	return int(n.Load())
}

const (
	loadOTPs    = 200
	loadWorkers = 8
)

// TestOtpdSMSCRestartUnderLoad: smscsim is killed (SIGKILL) while OTPs are
// created and sent, and started again on the same port. Every accepted
// OTP still reaches an SMSC: what the first smscsim acknowledged is
// submitted (its SMS and receipts died with it), the rest reaches the
// second one and is delivered. Duplicates at the second smscsim are
// counted against otpd_submits_uncertain_total.
func TestOtpdSMSCRestartUnderLoad(t *testing.T) {
	t.Parallel()
	smppAddr, httpAddr := freeAddr(t), freeAddr(t)
	// Half of the first smscsim's answers come late, so that the cut
	// finds submits in flight.
	// Its receipts come after a while, so that some of what it
	// acknowledged has no receipt when it dies.
	simA := startSim(t, smppAddr, httpAddr, "--fault-delay-rate", "0.5", "--fault-response-delay", "50ms-300ms", "--dlr-delay", "0-2s")
	startedA := time.Now()
	// Sequential test numbers: the per-prefix limit would stop them at 20.
	o := startOtpd(t, freeAddr(t), t.TempDir(), append(otpdSMSCArgs(simA), "--no-auth", "--limit-prefix", "off")...)

	l := startLoad(t, o.url, loadOTPs, loadWorkers)
	l.waitAccepted(t, loadOTPs/3)
	// What the first smscsim holds just before it dies (what reaches it
	// in between is not seen): a number found at both is an SMS sent twice.
	byA := smsByPhone(simA.messages(t, ""))
	simA.Kill()
	t.Logf("smscsim killed after %d OTPs accepted; it held %d SMS a moment before", l.count(), len(byA))
	// otpd sees the bind go: /readyz answers 503.
	eventually(t, "otpd notices the lost bind", startWait, func() (bool, string) {
		r, err := request(context.Background(), "GET", o.url+"/readyz", "", nil)
		return err == nil && r.Status == 503, fmt.Sprint(r, err)
	})
	// smscsim draws its message ids from the clock's seconds: start the
	// second one in a later second than the first, so that their ids differ
	// (as a real SMSC's would across a restart).
	time.Sleep(time.Until(startedA.Truncate(time.Second).Add(time.Second)))
	simB := startSim(t, smppAddr, httpAddr)
	acc, unknown := l.wait(t)
	if len(unknown) > 0 {
		t.Errorf("requests to otpd failed while otpd was up: %v", unknown)
	}

	idsB := map[string]bool{}
	settled := settle(t, o, acc, func(a acceptedOTP, c challenge) bool {
		switch c.state() {
		case "delivered":
			return true
		case "submitted":
			// Acknowledged by the first smscsim, whose receipt died with
			// it; anything the second one took gets its receipt.
			return len(simB.messages(t, digits(a.phone))) == 0
		}
		return false
	})
	byB := smsByPhone(simB.messages(t, ""))
	for _, ms := range byB {
		for _, m := range ms {
			idsB[m.ID] = true
		}
	}
	var toA, toB, receiptLost int
	for _, a := range acc {
		c := settled[a.id]
		if len(byB[a.phone]) > 0 {
			toB++
			if c.state() != "delivered" {
				t.Errorf("OTP %s to %s reached the second smscsim but shows %q", a.id, a.phone, c.state())
			}
			continue
		}
		toA++
		for _, id := range c.Delivery.MessageIDs {
			if idsB[id] {
				t.Errorf("OTP %s to %s: message id %s is the second smscsim's, which has no SMS to the number", a.id, a.phone, id)
			}
		}
		if c.state() == "submitted" {
			receiptLost++
		}
	}
	dups := duplicates(t, byB, acc, nil)
	var across []string
	for phone, ms := range byA {
		if len(byB[phone]) > 0 {
			dups += len(ms)
			across = append(across, phone)
		}
	}
	sort.Strings(across)
	uncertain := o.metric(t, "otpd_submits_uncertain_total")
	verified := verifyAll(t, o, acc, byB)
	t.Logf("%d OTPs: %d acknowledged by the first smscsim (%d of them without a receipt before it died), %d sent to the second, %d of those verified with the code it received; %d sent to both %v; %d duplicates in all, %.0f uncertain submits, %.0f reconnects",
		len(acc), toA, receiptLost, toB, verified, len(across), across, dups, uncertain, o.metric(t, "otpd_smpp_reconnects_total"))
	if float64(dups) > uncertain {
		t.Errorf("%d duplicate SMS but only %.0f uncertain submits: otpd sent again what the SMSC had acknowledged", dups, uncertain)
	}
	o.Stop() // before simB, whose cleanup comes first otherwise
}

// TestOtpdKilledUnderLoad: otpd is killed (SIGKILL) while OTPs are
// created and sent, and started again on the same data directory. Every
// accepted OTP is still delivered: smscsim holds an SMS for it whose code
// verifies, and otpd shows it delivered. Duplicates are counted against
// the uncertain submits the restarted otpd found.
func TestOtpdKilledUnderLoad(t *testing.T) {
	t.Parallel()
	restartUnderLoad(t, false)
}

// TestOtpdStoppedUnderLoad: as TestOtpdKilledUnderLoad, with SIGTERM: the
// graceful stop lets the submits in flight finish, so the restarted otpd
// finds nothing uncertain and nothing is sent twice.
func TestOtpdStoppedUnderLoad(t *testing.T) {
	t.Parallel()
	restartUnderLoad(t, true)
}

func restartUnderLoad(t *testing.T, graceful bool) {
	// Late answers, so that the stop finds submits in flight.
	sim := startSim(t, freeAddr(t), freeAddr(t), "--fault-delay-rate", "0.5", "--fault-response-delay", "50ms-300ms")
	httpAddr, data := freeAddr(t), t.TempDir()
	args := append(otpdSMSCArgs(sim), "--no-auth", "--limit-prefix", "off") // sequential test numbers
	o1 := startOtpd(t, httpAddr, data, args...)

	l := startLoad(t, o1.url, loadOTPs, loadWorkers)
	l.waitAccepted(t, loadOTPs/3)
	if graceful {
		o1.Stop() // its cleanup checks that it exited cleanly
		t.Logf("otpd stopped (SIGTERM) after %d OTPs accepted", l.count())
	} else {
		o1.Kill()
		t.Logf("otpd killed (SIGKILL) after %d OTPs accepted", l.count())
	}
	o2 := startOtpd(t, httpAddr, data, args...)
	acc, unknown := l.wait(t)

	settle(t, o2, acc, func(a acceptedOTP, c challenge) bool { return c.state() == "delivered" })
	by := smsByPhone(sim.messages(t, ""))
	for _, a := range acc {
		if len(by[a.phone]) == 0 {
			t.Errorf("OTP %s to %s shows delivered but smscsim has no SMS to the number", a.id, a.phone)
		}
	}
	dups := duplicates(t, by, acc, unknown)
	uncertain := o2.metric(t, "otpd_submits_uncertain_total")
	verified := verifyAll(t, o2, acc, by)
	noSecretsInLogs(t, o1.proc, sim.messages(t, ""))
	noSecretsInLogs(t, o2.proc, sim.messages(t, ""))
	t.Logf("%d OTPs accepted, %d verified with the code smscsim received; %d requests cut by the stop (outcome unknown); %d duplicates, %.0f uncertain submits after the restart",
		len(acc), verified, len(unknown), dups, uncertain)
	if float64(dups) > uncertain {
		t.Errorf("%d duplicate SMS but only %.0f uncertain submits: otpd sent again what the SMSC had acknowledged", dups, uncertain)
	}
	if graceful && (dups > 0 || uncertain > 0) {
		t.Errorf("after a graceful stop: %d duplicates and %.0f uncertain submits, want none", dups, uncertain)
	}
}

// TestOtpdResendPhoneLimit: a resend is a send to the number, so it counts
// against --limit-phone like a new challenge does.
func TestOtpdResendPhoneLimit(t *testing.T) {
	t.Parallel()
	sim := startSim(t, freeAddr(t), freeAddr(t))
	o := startOtpd(t, freeAddr(t), t.TempDir(),
		append(otpdSMSCArgs(sim), "--no-auth", "--limit-phone", "1/1h", "--resend-after", "1s")...)
	phone := newPhone("")
	c := o.create(t, map[string]any{"phone": phone})
	sim.waitMessages(t, phone, 1)
	if r := o.do(t, "POST", "/v1/otp", map[string]any{"phone": phone}); r.Status != 429 || r.errorCode() != "rate_limited" {
		t.Fatalf("a second challenge within --limit-phone 1/1h: %s, want 429 rate_limited", r)
	}
	var r *reply
	eventually(t, "resend cooldown over", startWait, func() (bool, string) {
		r = o.do(t, "POST", "/v1/otp/"+c.ID+"/resend", nil)
		return r.errorCode() != "resend_cooldown", r.String()
	})
	if r.Status != 429 || r.errorCode() != "rate_limited" {
		// Let a second SMS reach smscsim, as evidence.
		msgs := sim.waitMessages(t, phone, 2)
		t.Errorf("resend with --limit-phone 1/1h used up: %s, want 429 rate_limited; smscsim holds %d SMS to the number within the hour", r, len(msgs))
	}
}

// TestOtpdSecondSignalForcesExit: while a graceful stop waits for a submit
// in flight, a second SIGINT ends otpd at once (exit status 130).
func TestOtpdSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	sim := startSim(t, freeAddr(t), freeAddr(t), "--fault-delay-rate", "1", "--fault-response-delay", "20s")
	o := startOtpd(t, freeAddr(t), t.TempDir(), append(otpdSMSCArgs(sim), "--no-auth")...)
	o.create(t, map[string]any{"phone": newPhone("")})
	time.Sleep(300 * time.Millisecond) // the submit is in flight
	o.stopped.Store(true)
	o.cmd.Process.Signal(os.Interrupt)
	select {
	case <-o.done:
		t.Fatal("otpd ended before the submit in flight was answered: nothing to force")
	case <-time.After(time.Second):
	}
	start := time.Now()
	o.cmd.Process.Signal(os.Interrupt)
	select {
	case <-o.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second SIGINT did not end otpd")
	}
	var ee *exec.ExitError
	if !errors.As(o.waitErr, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit after the second SIGINT: %v (after %v)", o.waitErr, time.Since(start))
	}
}
