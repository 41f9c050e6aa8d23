package integration

// An application that speaks only SMPP, the npm smpp client (esme.js),
// binds to otpd's SMPP door with the system_id and password otpd keys
// create gave its key: a receiver and a transmitter bind, submits that
// reach smscsim, otpd's own message ids, the receipts as deliver_sm on its
// receiver bind, enquire_link and unbind.

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
	p := runESME(t, door, "--system-id", "legacy", "--password", "pw12", "--mode", "txrx", "--count", "2",
		"--to", digits(phone), "--gsm", "Door code 424242")
	done := p.WaitEvent("done", func(e nodeEvent) bool { return e.Name() == "done" || e.Name() == "fail" })
	if done.Name() != "done" || done.Int("receipts") != 2 {
		t.Fatalf("esme.js: %s", done)
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
	msgs := sim.waitMessages(t, phone, 2)
	for _, m := range msgs {
		if !strings.HasPrefix(m.Text, "Door code 424242") || m.From != "OTPD" {
			t.Errorf("at smscsim: %+v", m)
		}
	}
	// Wrong password: the bind fails with ESME_RINVPASWD (0x0E).
	bad := runESME(t, door, "--system-id", "legacy", "--password", "nope")
	if e := bad.WaitEvent("bind_failed", func(e nodeEvent) bool { return e.Name() == "bind_failed" || e.Name() == "done" }); e.Int("status") != 0x0E {
		t.Errorf("wrong password: %s", e)
	}
}
