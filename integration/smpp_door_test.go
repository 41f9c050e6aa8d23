package integration

// An application that speaks only SMPP, the npm smpp client (esme.js),
// binds to otpd's SMPP door with the system_id and password otpd keys
// create gave its key: a receiver and a transmitter bind, submits (and the
// UDH segments of a long text) that reach smscsim, otpd's own message ids,
// a receipt as deliver_sm on its receiver bind for each, enquire_link and
// unbind.

import (
	"strings"
	"testing"
)

func TestSMPPDoorWithNodeClient(t *testing.T) {
	t.Parallel()
	bin, _ := binaries(t)
	data := t.TempDir()
	_, stderr := run(t, bin, "keys", "create", "--data", data, "--name", "legacy", "--smpp-system-id", "legacy", "--smpp-password", "pw12")
	if !strings.Contains(stderr, "created API key") {
		t.Fatalf("keys create: %s", stderr)
	}
	// A drawn password is printed, 8 characters.
	_, stderr = run(t, bin, "keys", "create", "--data", data, "--smpp-system-id", "other")
	if i := strings.Index(stderr, "SMPP password of system_id other: "); i < 0 || len(strings.TrimSpace(stderr[i+len("SMPP password of system_id other: "):])) != 8 {
		t.Fatalf("drawn password: %q", stderr)
	}
	sim := startSim(t, freeAddr(t), freeAddr(t), "--dlr-delay", "50ms")
	door := freeAddr(t)
	startOtpd(t, freeAddr(t), data, append(otpdSMSCArgs(sim), "--smpp-listen", door)...)
	phone := newPhone("")
	long := strings.Repeat("A long text from an application, split by it with a UDH. ", 4)
	p := runESME(t, door, "--system-id", "legacy", "--password", "pw12", "--mode", "txrx", "--count", "2",
		"--to", digits(phone), "--gsm", "Door code 424242", "--long", long)
	done := p.WaitEvent("done", func(e nodeEvent) bool { return e.Name() == "done" || e.Name() == "fail" })
	parts := len(p.Filter(func(e nodeEvent) bool { return e.Name() == "submit" && e.Str("kind") == "long" }))
	if done.Name() != "done" || parts < 2 || done.Int("receipts") != 2+parts {
		t.Fatalf("esme.js: %s (%d segments)", done, parts)
	}
	for _, e := range p.Filter(isEvent("submit_resp")) {
		if e.Int("status") != 0 || !strings.HasPrefix(e.Str("message_id"), "msg_") {
			t.Errorf("submit_resp %s", e)
		}
	}
	for _, e := range p.Filter(isEvent("receipt")) {
		if e.Str("session") != "rx" || !strings.HasPrefix(e.Str("id"), "msg_") {
			t.Errorf("receipt %s", e)
		}
	}
	msgs := sim.waitMessages(t, phone, 3)
	longs := 0
	for _, m := range msgs {
		switch {
		case m.Text == long && m.Segments == parts:
			longs++
		case !strings.HasPrefix(m.Text, "Door code 424242") || m.From != "OTPD":
			t.Errorf("at smscsim: %+v", m)
		}
	}
	if longs != 1 {
		t.Errorf("the long text reached smscsim %d times in %d segments, want once: %+v", longs, parts, msgs)
	}
	// Wrong password: the bind fails with ESME_RINVPASWD (0x0E).
	bad := runESME(t, door, "--system-id", "legacy", "--password", "nope")
	if e := bad.WaitEvent("bind_failed", func(e nodeEvent) bool { return e.Name() == "bind_failed" || e.Name() == "done" }); e.Int("status") != 0x0E {
		t.Errorf("wrong password: %s", e)
	}
}
