package otpd

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/smpp"
)

var veSid = regexp.MustCompile(`^VE[0-9a-f]{32}$`)

const testService = "VA0123456789abcdef0123456789abcdef"

func TestTwilioVerify(t *testing.T) {
	e := doorDaemon(t, func(c *Config) { c.OTP.MaxAttempts = 3; c.OTP.ResendAfter = time.Millisecond; c.OTP.MaxSends = 2 })
	base := "/v2/Services/" + testService
	const to = "+4915112346020"
	start := time.Now()
	a := e.twilio("POST", base+"/Verifications", testAccount, e.key, url.Values{"To": {to}, "Channel": {"sms"}, "Locale": {"en"},
		"CustomFriendlyName": {"Acme"}})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	v := a.json(t)
	sid, _ := v["sid"].(string)
	if !veSid.MatchString(sid) {
		t.Fatalf("sid %q", sid)
	}
	checkFields(t, "verification", v, map[string]any{"service_sid": testService, "account_sid": testAccount, "to": to,
		"channel": "sms", "status": "pending", "valid": false, "amount": nil, "payee": nil, "lookup": map[string]any{"carrier": nil},
		"url": e.base + base + "/Verifications/" + sid})
	if atts, _ := v["send_code_attempts"].([]any); len(atts) != 1 || atts[0].(map[string]any)["channel"] != "sms" {
		t.Errorf("send_code_attempts %v", v["send_code_attempts"])
	}
	if _, err := time.Parse(time.RFC3339, v["date_created"].(string)); err != nil {
		t.Errorf("date_created %v", v["date_created"])
	}
	m := e.simMessage(to)
	if !strings.HasPrefix(m.Text, "Your Acme verification code is: ") {
		t.Fatalf("text %q", m.Text)
	}
	code := codeRE.FindString(m.Text)
	_ = start

	// A wrong code: pending, not valid.
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	a = e.twilio("POST", base+"/VerificationCheck", testAccount, e.key, url.Values{"To": {to}, "Code": {wrong}})
	if res := a.json(t); a.status != 200 || res["status"] != "pending" || res["valid"] != false || res["sid"] != sid {
		t.Fatalf("wrong code: %d %s", a.status, a.body)
	}
	// The right one, by VerificationSid.
	a = e.twilio("POST", base+"/VerificationCheck", testAccount, e.key, url.Values{"VerificationSid": {sid}, "Code": {code}})
	res := a.json(t)
	if a.status != 200 {
		t.Fatalf("right code: %d %s", a.status, a.body)
	}
	checkFields(t, "check", res, map[string]any{"sid": sid, "service_sid": testService, "account_sid": testAccount, "to": to,
		"channel": "sms", "status": "approved", "valid": true, "amount": nil, "payee": nil, "sna_attempts_error_codes": []any{}})
	// A code works once: Twilio answers 20404 for an approved verification.
	a = e.twilio("POST", base+"/VerificationCheck", testAccount, e.key, url.Values{"To": {to}, "Code": {code}})
	if res := a.json(t); a.status != 404 || res["code"] != float64(20404) {
		t.Fatalf("second check: %d %s", a.status, a.body)
	}
	a = e.twilio("GET", base+"/Verifications/"+sid, testAccount, e.key, nil)
	if res := a.json(t); a.status != 200 || res["status"] != "approved" || res["valid"] != true {
		t.Fatalf("fetch: %d %s", a.status, a.body)
	}
	// The challenge is otpd's own.
	nc := client{t: t, base: e.base, key: e.key}
	if st, body, _ := nc.do("GET", "/v1/otp/"+idFromSid("VE", "ch", sid), nil); st != 200 || body["status"] != "approved" {
		t.Fatalf("native: %d %v", st, body)
	}

	// Another verification: a second create while pending resends on the
	// same sid; a third exceeds max sends (60203).
	const to2 = "+4915112346021"
	a = e.twilio("POST", base+"/Verifications", testAccount, e.key, url.Values{"To": {to2}, "Channel": {"sms"}, "CodeLength": {"8"}})
	sid2 := a.json(t)["sid"].(string)
	if m := e.simMessage(to2); len(codeRE.FindString(m.Text)) != 8 {
		t.Fatalf("CodeLength 8: %q", m.Text)
	}
	time.Sleep(5 * time.Millisecond)
	a = e.twilio("POST", base+"/Verifications", testAccount, e.key, url.Values{"To": {to2}, "Channel": {"sms"}})
	res = a.json(t)
	if a.status != 201 || res["sid"] != sid2 || len(res["send_code_attempts"].([]any)) != 2 {
		t.Fatalf("resend: %d %s", a.status, a.body)
	}
	time.Sleep(5 * time.Millisecond)
	a = e.twilio("POST", base+"/Verifications", testAccount, e.key, url.Values{"To": {to2}, "Channel": {"sms"}})
	if res := a.json(t); a.status != 429 || res["code"] != float64(60203) {
		t.Fatalf("max sends: %d %s", a.status, a.body)
	}
	// Wrong codes until the attempts are used up: 60202 after.
	for i := 0; i < 3; i++ {
		e.twilio("POST", base+"/VerificationCheck", testAccount, e.key, url.Values{"VerificationSid": {sid2}, "Code": {"00000000"}})
	}
	a = e.twilio("POST", base+"/VerificationCheck", testAccount, e.key, url.Values{"VerificationSid": {sid2}, "Code": {"00000000"}})
	if res := a.json(t); a.status != 429 || res["code"] != float64(60202) {
		t.Fatalf("max checks: %d %s", a.status, a.body)
	}

	// Cancel.
	const to3 = "+4915112346022"
	a = e.twilio("POST", base+"/Verifications", testAccount, e.key, url.Values{"To": {to3}, "Channel": {"sms"}})
	sid3 := a.json(t)["sid"].(string)
	a = e.twilio("POST", base+"/Verifications/"+sid3, testAccount, e.key, url.Values{"Status": {"canceled"}})
	if res := a.json(t); a.status != 200 || res["status"] != "canceled" {
		t.Fatalf("cancel: %d %s", a.status, a.body)
	}
	a = e.twilio("POST", base+"/VerificationCheck", testAccount, e.key, url.Values{"VerificationSid": {sid3}, "Code": {"123456"}})
	if res := a.json(t); a.status != 404 || res["code"] != float64(20404) {
		t.Fatalf("check after cancel: %d %s", a.status, a.body)
	}

	for _, tt := range []struct {
		name, method, path, token string
		form                      url.Values
		status, code              int
	}{
		{"wrong token", "POST", base + "/Verifications", "otpd_wrong", url.Values{"To": {to}, "Channel": {"sms"}}, 401, 20003},
		{"channel call", "POST", base + "/Verifications", e.key, url.Values{"To": {to}, "Channel": {"call"}}, 400, 60200},
		{"no To", "POST", base + "/Verifications", e.key, url.Values{"Channel": {"sms"}}, 400, 60200},
		{"bad To", "POST", base + "/Verifications", e.key, url.Values{"To": {"+1"}, "Channel": {"sms"}}, 400, 60200},
		{"CodeLength below policy", "POST", base + "/Verifications", e.key, url.Values{"To": {"+4915112346023"}, "Channel": {"sms"}, "CodeLength": {"4"}}, 400, 60200},
		{"no Code", "POST", base + "/VerificationCheck", e.key, url.Values{"To": {to}}, 400, 60200},
		{"neither To nor sid", "POST", base + "/VerificationCheck", e.key, url.Values{"Code": {"123456"}}, 400, 60200},
		{"unknown number", "POST", base + "/VerificationCheck", e.key, url.Values{"To": {"+4915112346099"}, "Code": {"123456"}}, 404, 20404},
		{"other service", "GET", "/v2/Services/VAother/Verifications/" + sid, e.key, nil, 404, 20404},
		{"unknown sid", "GET", base + "/Verifications/VE00000000000000000000000000000000", e.key, nil, 404, 20404},
		{"status approved", "POST", base + "/Verifications/" + sid, e.key, url.Values{"Status": {"approved"}}, 400, 60200},
	} {
		a := e.twilio(tt.method, tt.path, testAccount, tt.token, tt.form)
		res := a.json(t)
		if a.status != tt.status || res["code"] != float64(tt.code) || res["more_info"] == "" {
			t.Errorf("%s: %d %s, want %d %d", tt.name, a.status, a.body, tt.status, tt.code)
		}
	}
}

func TestMosaicGateway(t *testing.T) {
	e := doorDaemon(t, nil)
	// Mosaic's validation of the gateway URL.
	a := e.send("GET", "/gateway/mosaic", map[string]string{"X-API-Key": e.key, "X-Verification-Key": "chk-8c1f"}, "")
	if res := a.json(t); a.status != 200 || res["key"] != "chk-8c1f" || len(res) != 1 {
		t.Fatalf("validate: %d %s", a.status, a.body)
	}
	for name, hdr := range map[string]map[string]string{
		"wrong key":  {"X-API-Key": "otpd_wrong", "X-Verification-Key": "chk"},
		"no key":     {"X-Verification-Key": "chk"},
		"no vkey":    {"X-API-Key": e.key},
		"key absent": {},
	} {
		if a := e.send("GET", "/gateway/mosaic", hdr, ""); a.status != 400 {
			t.Errorf("validate with %s: %d %s", name, a.status, a.body)
		}
	}
	a = e.send("POST", "/gateway/mosaic", map[string]string{"X-API-Key": e.key, "Content-Type": "application/json"},
		`{"phone_number":"+4915112346030","sender_id":"Acme","message":"Your Mosaic code: 918273"}`)
	res := a.json(t)
	if a.status != 200 || res["status"] != "queued" || !strings.HasPrefix(res["id"].(string), "msg_") {
		t.Fatalf("send: %d %s", a.status, a.body)
	}
	if m := e.simMessage("+4915112346030"); m.Text != "Your Mosaic code: 918273" || m.From != "Acme" {
		t.Fatalf("simulator: %+v", m)
	}
	for _, tt := range []struct {
		name string
		hdr  map[string]string
		body string
		want int
	}{
		{"wrong key", map[string]string{"X-API-Key": "otpd_wrong", "Content-Type": "application/json"}, `{"phone_number":"+4915112346031","message":"x"}`, 401},
		{"bad json", map[string]string{"X-API-Key": e.key, "Content-Type": "application/json"}, `{"phone_number":`, 400},
		{"bad number", map[string]string{"X-API-Key": e.key, "Content-Type": "application/json"}, `{"phone_number":"12","message":"x"}`, 400},
		{"no message", map[string]string{"X-API-Key": e.key, "Content-Type": "application/json"}, `{"phone_number":"+4915112346031"}`, 400},
	} {
		a := e.send("POST", "/gateway/mosaic", tt.hdr, tt.body)
		var out struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(a.body, &out)
		if a.status != tt.want || out.Error.Code == "" || out.Error.Message == "" {
			t.Errorf("%s: %d %s", tt.name, a.status, a.body)
		}
	}
}

func TestExSignGateway(t *testing.T) {
	e := doorDaemon(t, nil)
	_, narrow, _ := CreateKey(context.Background(), e.d.store, "exsign-office", "10.1.0.0/16")
	body := func(n string) string { return `{"MobileNumber":"` + n + `","MessageText":"ExSign code 5522"}` }
	for _, tt := range []struct {
		name, auth, phone string
		ok                bool
	}{
		{"token base64", "token " + base64.StdEncoding.EncodeToString([]byte(e.key)), "+4915112346040", true},
		{"token bare key", "token " + e.key, "+4915112346041", true},
		{"bare key", e.key, "004915112346042", true},
		{"wrong key", "token " + base64.StdEncoding.EncodeToString([]byte("otpd_wrong")), "+4915112346043", false},
		{"no header", "", "+4915112346043", false},
		{"key from another network", "token " + base64.StdEncoding.EncodeToString([]byte(narrow)), "+4915112346043", false},
		{"bad number", "token " + e.key, "123", false},
	} {
		hdr := map[string]string{"Content-Type": "application/json"}
		if tt.auth != "" {
			hdr["Authorization"] = tt.auth
		}
		a := e.send("POST", "/gateway/exsign", hdr, body(tt.phone))
		res := a.json(t)
		if a.status != 200 || res["IsSuccess"] != tt.ok || len(res) != 2 || (tt.ok != (res["ErrorDetails"] == "")) {
			t.Errorf("%s: %d %s", tt.name, a.status, a.body)
			continue
		}
		if tt.ok {
			phone := "+" + strings.TrimPrefix(strings.TrimPrefix(tt.phone, "+"), "00")
			if m := e.simMessage(phone); m.Text != "ExSign code 5522" {
				t.Errorf("%s: simulator %+v", tt.name, m)
			}
		}
	}
	a := e.send("POST", "/gateway/exsign", map[string]string{"Authorization": "token " + e.key, "Content-Type": "application/json"}, `not json`)
	if res := a.json(t); a.status != 200 || res["IsSuccess"] != false || res["ErrorDetails"] == "" {
		t.Errorf("bad body: %d %s", a.status, a.body)
	}
}

func TestHTTPGateway(t *testing.T) {
	e := doorDaemon(t, func(c *Config) { c.OTP.DefaultRegion = "DE" })
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("netiq:"+e.key))
	idRE := regexp.MustCompile(`^ID: (msg_[a-z2-7]{26})\n$`)
	for _, tt := range []struct {
		name, method, path string
		hdr                map[string]string
		body, phone, text  string
	}{
		// privacyIDEA's HttpSMSProvider: GET, parameters in the query.
		{"privacyIDEA GET", "GET", "/gateway/http?phone=%2B4915112346050&text=privacyIDEA+123456", map[string]string{"Authorization": basic}, "", "+4915112346050", "privacyIDEA 123456"},
		// NetIQ's generic sender: POST form, E.164 without +.
		{"NetIQ POST form", "POST", "/gateway/http", map[string]string{"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"},
			"number=4915112346051&message=NetIQ+code+654321", "+4915112346051", "NetIQ code 654321"},
		{"JSON with Bearer", "POST", "/gateway/http", map[string]string{"Authorization": "Bearer " + e.key, "Content-Type": "application/json"},
			`{"to":"0049 151 12346052","body":"json 1","from":"Acme"}`, "+4915112346052", "json 1"},
		{"national number", "POST", "/gateway/http", map[string]string{"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"},
			"to=015112346053&text=national", "+4915112346053", "national"},
	} {
		a := e.send(tt.method, tt.path, tt.hdr, tt.body)
		if a.status != 200 || !idRE.Match(a.body) || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q", tt.name, a.status, a.body)
			continue
		}
		if m := e.simMessage(tt.phone); m.Text != tt.text {
			t.Errorf("%s: simulator %+v", tt.name, m)
		}
		// The id is the native message's.
		nc := client{t: t, base: e.base, key: e.key}
		if st, _, _ := nc.do("GET", "/v1/messages/"+string(idRE.FindSubmatch(a.body)[1]), nil); st != 200 {
			t.Errorf("%s: native GET %d", tt.name, st)
		}
	}
	for _, tt := range []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
		answer             string
	}{
		{"no key", "GET", "/gateway/http?to=%2B4915112346054&text=x", nil, "", 401, "ERR: 001, "},
		{"wrong password", "GET", "/gateway/http?to=%2B4915112346054&text=x", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("u:otpd_wrong"))}, "", 401, "ERR: 001, "},
		{"bad number", "GET", "/gateway/http?to=12&text=x", map[string]string{"Authorization": basic}, "", 400, "ERR: 105, "},
		{"no number", "GET", "/gateway/http?text=x", map[string]string{"Authorization": basic}, "", 400, "ERR: 105, "},
		{"no text", "GET", "/gateway/http?to=%2B4915112346054", map[string]string{"Authorization": basic}, "", 400, "ERR: 101, "},
		{"bad json", "POST", "/gateway/http", map[string]string{"Authorization": basic, "Content-Type": "application/json"}, "{", 400, "ERR: 101, "},
		{"xml", "POST", "/gateway/http", map[string]string{"Authorization": basic, "Content-Type": "text/xml"}, "<a/>", 415, "ERR: 101, "},
	} {
		a := e.send(tt.method, tt.path, tt.hdr, tt.body)
		if a.status != tt.status || !strings.HasPrefix(string(a.body), tt.answer) || len(a.body) <= len(tt.answer)+1 {
			t.Errorf("%s: %d %q, want %d %q...", tt.name, a.status, a.body, tt.status, tt.answer)
		}
	}
	// A key's own parameter names and answers.
	if err := SetKeySettings(context.Background(), e.d.store, e.keyID, KeySettings{PhoneParams: []string{"msisdn"}, TextParams: []string{"sms"},
		Success: "OK {id}", Failure: "FAIL {code} {reason}"}); err != nil {
		t.Fatal(err)
	}
	e.d.svc.doors.settingsMu.Lock()
	clear(e.d.svc.doors.settings) // not waiting out the cache
	e.d.svc.doors.settingsMu.Unlock()
	a := e.send("GET", "/gateway/http?msisdn=4915112346055&sms=own+names", map[string]string{"Authorization": basic}, "")
	if a.status != 200 || !regexp.MustCompile(`^OK msg_[a-z2-7]{26}\n$`).Match(a.body) {
		t.Fatalf("own success: %d %q", a.status, a.body)
	}
	e.simMessage("+4915112346055")
	a = e.send("GET", "/gateway/http?to=4915112346056&text=default+names", map[string]string{"Authorization": basic}, "")
	if a.status != 400 || !strings.HasPrefix(string(a.body), "FAIL 105 ") {
		t.Fatalf("own failure: %d %q", a.status, a.body)
	}
}

func TestNativeWebhooks(t *testing.T) {
	e := doorDaemon(t, nil)
	rc := newReceiver(t, 500) // the first post fails
	nc := client{t: t, base: e.base, key: e.key}
	st, body, _ := nc.do("POST", "/v1/messages", map[string]any{"to": "+4915112346060", "text": "hook me", "callback_url": rc.srv.URL + "/hooks"})
	if st != 201 {
		t.Fatalf("send: %d %v", st, body)
	}
	id := body["id"].(string)
	got := rc.wait(t, 2)
	secret := e.d.svc.sec.WebhookSecret(e.keyID)
	for i, g := range got[:2] {
		if g.header.Get("Content-Type") != "application/json" {
			t.Errorf("post %d: Content-Type %q", i, g.header.Get("Content-Type"))
		}
		if err := VerifyWebhook(secret, g.header.Get(WebhookSignatureHeader), g.body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("post %d: %v (%s)", i, err, g.header.Get(WebhookSignatureHeader))
		}
	}
	// Computed here as a receiver would: HMAC-SHA256 of "t.body".
	parts := strings.Split(got[1].header.Get(WebhookSignatureHeader), ",")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "t=") || !strings.HasPrefix(parts[1], "v1=") {
		t.Fatalf("signature header %q", got[1].header.Get(WebhookSignatureHeader))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0][2:] + "." + string(got[1].body)))
	if hex.EncodeToString(mac.Sum(nil)) != parts[1][3:] {
		t.Errorf("v1 is not HMAC-SHA256(secret, t.body)")
	}
	var ev map[string]any
	json.Unmarshal(got[1].body, &ev)
	checkFields(t, "webhook", ev, map[string]any{"type": "delivery", "message_id": id, "phone": "+49151****060", "state": "delivered", "stat": "DELIVRD"})
	if strings.Contains(string(got[1].body), "4915112346060") {
		t.Error("the webhook carries the full number")
	}
	// A receiver rejects a replay and a forgery.
	if VerifyWebhook(secret, got[1].header.Get(WebhookSignatureHeader), got[1].body, time.Now().Add(10*time.Minute), 5*time.Minute) == nil {
		t.Error("an old signature is accepted")
	}
	if VerifyWebhook(secret, got[1].header.Get(WebhookSignatureHeader), append(got[1].body, ' '), time.Now(), 5*time.Minute) == nil {
		t.Error("a changed body is accepted")
	}
	if VerifyWebhook(e.d.svc.sec.WebhookSecret("key_other"), got[1].header.Get(WebhookSignatureHeader), got[1].body, time.Now(), 5*time.Minute) == nil {
		t.Error("another key's secret is accepted")
	}

	// The key's callback_url serves messages that name none, OTPs too.
	rc2 := newReceiver(t)
	if err := SetKeySettings(context.Background(), e.d.store, e.keyID, KeySettings{CallbackURL: rc2.srv.URL}); err != nil {
		t.Fatal(err)
	}
	e.d.svc.doors.settingsMu.Lock()
	clear(e.d.svc.doors.settings)
	e.d.svc.doors.settingsMu.Unlock()
	otp := create(t, nc, "+4915112346061")
	g := rc2.wait(t, 1)[0]
	json.Unmarshal(g.body, &ev)
	if ev["challenge_id"] != otp || ev["state"] != "delivered" {
		t.Fatalf("per-key webhook: %s", g.body)
	}
	// A receiver that never answers 2xx ends as failed, listed.
	rc3 := newReceiver(t, 500, 500, 500, 500, 500)
	nc.do("POST", "/v1/messages", map[string]any{"to": "+4915112346062", "text": "never", "callback_url": rc3.srv.URL})
	eventually(t, "failed report listed", func() bool {
		vs, _ := ListCallbackViews(context.Background(), e.d.store, false, 10)
		for _, v := range vs {
			if v.URL == rc3.srv.URL && v.State == callbackFailed && v.Attempts == 4 && strings.Contains(v.LastError, "500") {
				return true
			}
		}
		return false
	})
	if n, err := e.d.store.RetryCallbacks(context.Background(), time.Now()); err != nil || n != 1 {
		t.Fatalf("retry: %d %v", n, err)
	}
	if st, body, _ := nc.do("POST", "/v1/messages", map[string]any{"to": "+4915112346063", "text": "x", "callback_url": "file:///etc/passwd"}); st != 400 ||
		body["error"].(map[string]any)["code"] != "invalid_callback_url" {
		t.Fatalf("bad callback_url: %d %v", st, body)
	}
	_ = http.StatusOK
}

// TestCallbacksOfFailuresAndResends: a message the SMSC refuses at submit
// (no receipt ever) and one it cannot deliver reach their StatusCallback as
// failed and undelivered with Twilio's error codes; a resent OTP's SMS
// reports to the first one's callback_url.
func TestCallbacksOfFailuresAndResends(t *testing.T) {
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", DLRDelay: simulator.Delay{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond},
		Rules: []simulator.Rule{{Prefix: "+4915112346090", Stat: "UNDELIV", Err: "001"}, {Prefix: "+4915112346091", Reject: smpp.ESME_RINVDSTADR}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	d := testDaemon(t, func(c *Config) {
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.SourceAddr = sim.Addr(), "otp", "OTPD"
		c.OTP.ResendAfter = time.Millisecond
	})
	fastHooks(d)
	kid, key, _ := CreateKey(context.Background(), d.store, "k", "")
	e := &doorEnv{t: t, d: d, sim: sim, key: key, keyID: kid, base: "http://" + d.Addr()}
	rc := newReceiver(t)
	path := "/2010-04-01/Accounts/" + testAccount + "/Messages.json"
	for _, to := range []string{"+4915112346090", "+4915112346091"} {
		if a := e.twilio("POST", path, testAccount, key, url.Values{"To": {to}, "Body": {"x"}, "StatusCallback": {rc.srv.URL}}); a.status != 201 {
			t.Fatalf("%s: %d %s", to, a.status, a.body)
		}
	}
	got := rc.wait(t, 2)
	byTo := map[string]url.Values{}
	for _, g := range got {
		byTo[g.form.Get("To")] = g.form
		if g.header.Get("X-Twilio-Signature") != TwilioSignature(key, rc.srv.URL, g.form) {
			t.Errorf("signature of %v", g.form)
		}
	}
	if f := byTo["+4915112346090"]; f.Get("MessageStatus") != "undelivered" || f.Get("ErrorCode") != "30003" {
		t.Errorf("undelivered: %v", f)
	}
	if f := byTo["+4915112346091"]; f.Get("MessageStatus") != "undelivered" && f.Get("MessageStatus") != "failed" || f.Get("ErrorCode") == "" {
		t.Errorf("refused at submit: %v", f)
	}

	rc2 := newReceiver(t)
	nc := client{t: t, base: e.base, key: key}
	st, body, _ := nc.do("POST", "/v1/otp", map[string]any{"phone": "+4915112346092", "callback_url": rc2.srv.URL})
	if st != 201 {
		t.Fatalf("otp: %d %v", st, body)
	}
	id := body["id"].(string)
	rc2.wait(t, 1)
	time.Sleep(5 * time.Millisecond)
	if st, body, _ := nc.do("POST", "/v1/otp/"+id+"/resend", nil); st != 200 {
		t.Fatalf("resend: %d %v", st, body)
	}
	got = rc2.wait(t, 2)
	var a, b map[string]any
	json.Unmarshal(got[0].body, &a)
	json.Unmarshal(got[1].body, &b)
	if a["challenge_id"] != id || b["challenge_id"] != id || a["message_id"] == b["message_id"] {
		t.Fatalf("reports of the resend: %s %s", got[0].body, got[1].body)
	}
}
