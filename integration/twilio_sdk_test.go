package integration

// Twilio's own Node SDK (npm twilio) against otpd's Twilio doors, as real
// processes: it sends through the Messages API, receives the StatusCallback
// and accepts its signature with twilio.validateRequest, fetches and lists,
// meets Twilio's error codes, and runs a Verify round trip on an SMS whose
// code is read from smscsim. `otpd webhooks` then lists a report whose
// receiver is down.

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestTwilioSDK(t *testing.T) {
	t.Parallel()
	bin, _ := binaries(t)
	data := t.TempDir()
	out, _ := run(t, bin, "keys", "create", "--data", data, "--name", "twilio")
	key := strings.TrimSpace(out)
	sim := startSim(t, freeAddr(t), freeAddr(t), "--dlr-delay", "50ms")
	o := startOtpd(t, freeAddr(t), data, append(otpdSMSCArgs(sim), "--source-addr", "OTPD")...)
	o.key = key
	to, verifyTo := newPhone(""), newPhone("")
	const account, service = "AC00000000000000000000000000000001", "VA00000000000000000000000000000001"
	p := startNode(t, "twilio-sdk.js", "--url", o.url, "--account", account, "--token", key, "--to", to,
		"--verify-to", verifyTo, "--service", service)

	c := p.WaitEvent("created", isEvent("created"))
	sid := c.Str("sid")
	for k, want := range map[string]string{"status": "queued", "to": to, "from": "OTPD", "body": "SDK code 246810",
		"direction": "outbound-api", "accountSid": account, "apiVersion": "2010-04-01",
		"uri": "/2010-04-01/Accounts/" + account + "/Messages/" + sid + ".json"} {
		if c.Str(k) != want {
			t.Errorf("created %s = %q, want %q (%s)", k, c.Str(k), want, c)
		}
	}
	if len(sid) != 34 || !strings.HasPrefix(sid, "SM") || c.Str("numSegments") != "1" || c.Str("dateCreated") == "" || c["errorCode"] != nil {
		t.Errorf("created %s", c)
	}
	if m := sim.waitMessages(t, to, 1)[0]; m.Text != "SDK code 246810" || m.From != "OTPD" {
		t.Errorf("at smscsim: %+v", m)
	}
	cb := p.WaitEvent("delivered callback", func(e nodeEvent) bool {
		pm, _ := e["params"].(map[string]any)
		return e.Name() == "callback" && pm["MessageStatus"] == "delivered"
	})
	if cb["valid"] != true {
		t.Errorf("twilio.validateRequest refused the StatusCallback: %s", cb)
	}
	pm := cb["params"].(map[string]any)
	for k, want := range map[string]string{"MessageSid": sid, "SmsSid": sid, "SmsStatus": "delivered", "AccountSid": account,
		"From": "OTPD", "To": to, "ApiVersion": "2010-04-01"} {
		if pm[k] != want {
			t.Errorf("callback %s = %v, want %q", k, pm[k], want)
		}
	}
	if f := p.WaitEvent("fetched", isEvent("fetched")); f.Str("status") != "delivered" || f.Str("dateSent") == "" {
		t.Errorf("fetched %s", f)
	}
	if l := p.WaitEvent("listed", isEvent("listed")); fmt.Sprint(l["sids"]) != "["+sid+"]" {
		t.Errorf("listed %s", l)
	}
	for name, want := range map[string][2]int{"wrong token": {20003, 401}, "invalid To": {21211, 400}, "no Body": {21602, 400}} {
		e := p.WaitEvent(name, func(e nodeEvent) bool { return e.Name() == "error" && e.Str("case") == name })
		if e.Int("code") != want[0] || e.Int("status") != want[1] {
			t.Errorf("%s: %s, want code %d status %d", name, e, want[0], want[1])
		}
	}

	v := p.WaitEvent("verification", isEvent("verification"))
	if v.Str("status") != "pending" || v.Str("to") != verifyTo || v.Str("channel") != "sms" || v["valid"] != false ||
		v.Str("serviceSid") != service || !strings.HasPrefix(v.Str("sid"), "VE") {
		t.Errorf("verification %s", v)
	}
	p.Send(codeOf(t, sim.waitMessages(t, verifyTo, 1)[0].Text))
	if w := p.WaitEvent("wrong check", func(e nodeEvent) bool { return e.Name() == "check" && e.Str("case") == "wrong" }); w.Str("status") != "pending" || w["valid"] != false {
		t.Errorf("wrong code: %s", w)
	}
	if r := p.WaitEvent("right check", func(e nodeEvent) bool { return e.Name() == "check" && e.Str("case") == "right" }); r.Str("status") != "approved" || r["valid"] != true || r.Str("sid") != v.Str("sid") {
		t.Errorf("right code: %s", r)
	}
	if e := p.WaitEvent("check again", func(e nodeEvent) bool { return e.Name() == "error" && e.Str("case") == "check again" }); e.Int("code") != 20404 || e.Int("status") != 404 {
		t.Errorf("second check: %s", e)
	}
	p.WaitEvent("done", isEvent("done"))

	// A webhook whose receiver is down shows in otpd webhooks.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String() + "/hooks"
	ln.Close()
	o.expect(t, "POST", "/v1/messages", map[string]any{"to": newPhone(""), "text": "hooked", "callback_url": down}, 201)
	eventually(t, "otpd webhooks lists the failure", settleWait, func() (bool, string) {
		out, _ := run(t, bin, "webhooks", "--data", data, "--json")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var v struct {
				URL       string `json:"url"`
				Kind      string `json:"kind"`
				LastError string `json:"last_error"`
				Attempts  int    `json:"attempts"`
			}
			json.Unmarshal([]byte(line), &v)
			if v.URL == down && v.Kind == "webhook" && v.Attempts >= 1 && v.LastError != "" {
				return true, ""
			}
		}
		return false, out
	})
}
