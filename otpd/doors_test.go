package otpd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
)

// doorEnv is otpd with API keys required, on a simulator of its own.
type doorEnv struct {
	t          *testing.T
	d          *Daemon
	sim        *simulator.Simulator
	key, keyID string
	base       string
}

func doorDaemon(t *testing.T, mod func(*Config)) *doorEnv {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", DLRDelay: simulator.Delay{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) }) // after the daemon's
	d := testDaemon(t, func(c *Config) {
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.SourceAddr = sim.Addr(), "otp", "OTPD"
		if mod != nil {
			mod(c)
		}
	})
	fastHooks(d)
	// The senders the door tests send from besides the configured one.
	id, key, err := CreateKeyWith(context.Background(), d.store, KeyOptions{Name: "door", Senders: []string{"ACME", "Acme", "+12349013030"}})
	if err != nil {
		t.Fatal(err)
	}
	return &doorEnv{t: t, d: d, sim: sim, key: key, keyID: id, base: "http://" + d.Addr()}
}

// fastHooks makes the dispatcher retry within the test's patience.
func fastHooks(d *Daemon) {
	h := d.Dispatcher()
	h.Stop()
	h.RetryMin, h.RetryMax, h.MaxAttempts = 30*time.Millisecond, 200*time.Millisecond, 4
	h.Start()
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", a.status, err, a.body)
	}
	return m
}

// send makes one request with the given headers; body is sent as is.
func (e *doorEnv) send(method, path string, hdr map[string]string, body string) answer {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.base+path, r)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// twilio sends a form as Twilio's SDKs do: basic auth AccountSid:token.
func (e *doorEnv) twilio(method, path, user, token string, form url.Values) answer {
	e.t.Helper()
	hdr := map[string]string{"Accept": "application/json", "User-Agent": "twilio-node/5.0.0 (linux x64) node/v20"}
	if user != "" || token != "" {
		hdr["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
	}
	body := ""
	if form != nil {
		hdr["Content-Type"] = "application/x-www-form-urlencoded"
		body = form.Encode()
	}
	return e.send(method, path, hdr, body)
}

// simMessage waits for the SMS to phone (E.164) at the simulator.
func (e *doorEnv) simMessage(phone string) simulator.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := e.sim.WaitForMessage(ctx, simulator.Filter{To: strings.TrimPrefix(phone, "+")})
	if err != nil {
		e.t.Fatalf("no SMS to %s at the simulator: %v", phone, err)
	}
	return m
}

// eventually polls check until it is true.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookRequest is one request a receiver got.
type hookRequest struct {
	header http.Header
	body   []byte
	form   url.Values
	url    string
}

// receiver records requests, answering each with the next status of
// statuses (200 once they are used up).
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []hookRequest
	statuses []int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		rc.mu.Lock()
		rc.got = append(rc.got, hookRequest{header: r.Header.Clone(), body: b, form: form, url: "http://" + r.Host + r.URL.RequestURI()})
		st := 200
		if len(rc.statuses) > 0 {
			st, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.got...)
}

func (rc *receiver) wait(t *testing.T, n int) []hookRequest {
	t.Helper()
	eventually(t, "callbacks", func() bool { return len(rc.requests()) >= n })
	return rc.requests()
}

const testAccount = "AC0123456789abcdef0123456789abcdef"

var smSid = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

// checkFields compares fields one by one.
func checkFields(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no field %q in %v", what, k, got)
			continue
		}
		if gb, _ := json.Marshal(g); string(gb) != mustJSON(v) {
			t.Errorf("%s: %s = %s, want %s", what, k, gb, mustJSON(v))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTwilioSignatureVector: X-Twilio-Signature of Twilio's documented
// example (also accepted by the npm twilio package's validateRequest).
func TestTwilioSignatureVector(t *testing.T) {
	params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	if got := TwilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params); got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Fatalf("signature %q, want 0/KCTR6DLpKmkAf8muzZqo1nDgQ=", got)
	}
}

func TestSidsRoundTrip(t *testing.T) {
	id := NewID("msg")
	sid := sidFromID("SM", id)
	if !smSid.MatchString(sid) || idFromSid("SM", "msg", sid) != id {
		t.Fatalf("%s -> %s -> %s", id, sid, idFromSid("SM", "msg", sid))
	}
	for _, bad := range []string{"", "SM", "VE" + sid[2:], "SM" + strings.Repeat("g", 32), sid + "0"} {
		if idFromSid("SM", "msg", bad) != "" {
			t.Errorf("%q read as a sid", bad)
		}
	}
}

func TestTwilioMessagesAPI(t *testing.T) {
	e := doorDaemon(t, nil)
	rc := newReceiver(t)
	const to = "+4915112346001"
	cbURL := rc.srv.URL + "/twilio/status?tenant=7"
	path := "/2010-04-01/Accounts/" + testAccount + "/Messages.json"
	start := time.Now().UTC().Truncate(time.Second)
	a := e.twilio("POST", path, testAccount, e.key, url.Values{"To": {to}, "From": {"OTPD"}, "Body": {"Your code is 123456"},
		"StatusCallback": {cbURL}})
	if a.status != http.StatusCreated || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("create: %d %s %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	res := a.json(t)
	sid, _ := res["sid"].(string)
	if !smSid.MatchString(sid) {
		t.Fatalf("sid %q", sid)
	}
	checkFields(t, "created", res, map[string]any{
		"account_sid": testAccount, "api_version": "2010-04-01", "body": "Your code is 123456", "date_sent": nil,
		"direction": "outbound-api", "error_code": nil, "error_message": nil, "from": "OTPD", "messaging_service_sid": nil,
		"num_media": "0", "num_segments": "1", "price": nil, "price_unit": "USD", "status": "queued", "to": to,
		"uri":              path[:len(path)-len(".json")] + "/" + sid + ".json",
		"subresource_uris": map[string]string{"media": path[:len(path)-len(".json")] + "/" + sid + "/Media.json"},
	})
	for _, f := range []string{"date_created", "date_updated"} {
		d, err := time.Parse(time.RFC1123Z, res[f].(string))
		if err != nil || d.Before(start) || d.After(time.Now().Add(time.Second)) {
			t.Errorf("%s %q: %v", f, res[f], err)
		}
	}
	m := e.simMessage(to)
	if m.Text != "Your code is 123456" || m.From != "OTPD" {
		t.Fatalf("at the simulator: %+v", m)
	}

	// The receipt comes back as a StatusCallback signed with the key.
	got := rc.wait(t, 1)[0]
	if ct := got.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("callback Content-Type %q", ct)
	}
	wantForm := map[string]string{"MessageSid": sid, "SmsSid": sid, "MessageStatus": "delivered", "SmsStatus": "delivered",
		"AccountSid": testAccount, "From": "OTPD", "To": to, "ApiVersion": "2010-04-01"}
	for k, v := range wantForm {
		if got.form.Get(k) != v {
			t.Errorf("callback %s = %q, want %q", k, got.form.Get(k), v)
		}
	}
	if _, ok := got.form["ErrorCode"]; ok {
		t.Errorf("ErrorCode on a delivered message: %v", got.form)
	}
	if !regexp.MustCompile(`^\d{10}$`).MatchString(got.form.Get("RawDlrDoneDate")) {
		t.Errorf("RawDlrDoneDate %q", got.form.Get("RawDlrDoneDate"))
	}
	if got.url != cbURL {
		t.Errorf("posted to %s, want %s", got.url, cbURL)
	}
	if sig := got.header.Get("X-Twilio-Signature"); sig != TwilioSignature(e.key, cbURL, got.form) || sig == "" {
		t.Errorf("X-Twilio-Signature %q does not validate", sig)
	}
	if TwilioSignature("otpd_other", cbURL, got.form) == got.header.Get("X-Twilio-Signature") {
		t.Error("the signature does not depend on the token")
	}

	// GET gives the status from the receipt; the list holds it.
	a = e.twilio("GET", path[:len(path)-len(".json")]+"/"+sid+".json", testAccount, e.key, nil)
	if a.status != 200 {
		t.Fatalf("get: %d %s", a.status, a.body)
	}
	res = a.json(t)
	checkFields(t, "fetched", res, map[string]any{"sid": sid, "status": "delivered", "to": to, "error_code": nil})
	if _, err := time.Parse(time.RFC1123Z, res["date_sent"].(string)); err != nil {
		t.Errorf("date_sent %v", res["date_sent"])
	}
	a = e.twilio("GET", path+"?PageSize=1", testAccount, e.key, nil)
	res = a.json(t)
	list, _ := res["messages"].([]any)
	if a.status != 200 || len(list) != 1 || list[0].(map[string]any)["sid"] != sid {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	checkFields(t, "list", res, map[string]any{"page": 0, "page_size": 1, "start": 0, "end": 0, "next_page_uri": nil,
		"previous_page_uri": nil, "first_page_uri": path + "?PageSize=1&Page=0", "uri": path + "?PageSize=1&Page=0"})
	// Another account's list does not show it.
	a = e.twilio("GET", "/2010-04-01/Accounts/ACother/Messages.json", "ACother", e.key, nil)
	if l := a.json(t)["messages"].([]any); len(l) != 0 {
		t.Errorf("other account lists %v", l)
	}
	// The native API shows the same message.
	nc := client{t: t, base: e.base, key: e.key}
	st, nm, _ := nc.do("GET", "/v1/messages/"+idFromSid("SM", "msg", sid), nil)
	if st != 200 || nm["delivery"].(map[string]any)["state"] != "delivered" {
		t.Fatalf("native GET: %d %v", st, nm)
	}
}

func TestTwilioErrors(t *testing.T) {
	e := doorDaemon(t, nil)
	path := "/2010-04-01/Accounts/" + testAccount + "/Messages.json"
	ok := url.Values{"To": {"+4915112346002"}, "Body": {"hi"}}
	for _, tt := range []struct {
		name, method, path, user, token string
		form                            url.Values
		status, code                    int
	}{
		{"no credentials", "POST", path, "", "", ok, 401, 20003},
		{"wrong token", "POST", path, testAccount, "otpd_wrong", ok, 401, 20003},
		{"invalid To", "POST", path, testAccount, e.key, url.Values{"To": {"+12"}, "Body": {"hi"}}, 400, 21211},
		{"letters as To", "POST", path, testAccount, e.key, url.Values{"To": {"hello"}, "Body": {"hi"}}, 400, 21211},
		{"no To", "POST", path, testAccount, e.key, url.Values{"Body": {"hi"}}, 400, 21604},
		{"no Body", "POST", path, testAccount, e.key, url.Values{"To": {"+4915112346002"}}, 400, 21602},
		{"body too long", "POST", path, testAccount, e.key, url.Values{"To": {"+4915112346002"}, "Body": {strings.Repeat("x", 2000)}}, 400, 21617},
		{"bad From", "POST", path, testAccount, e.key, url.Values{"To": {"+4915112346002"}, "Body": {"hi"}, "From": {strings.Repeat("A", 30)}}, 400, 21212},
		{"bad StatusCallback", "POST", path, testAccount, e.key, url.Values{"To": {"+4915112346002"}, "Body": {"hi"}, "StatusCallback": {"ftp://x"}}, 400, 21609},
		{"bad ValidityPeriod", "POST", path, testAccount, e.key, url.Values{"To": {"+4915112346002"}, "Body": {"hi"}, "ValidityPeriod": {"0"}}, 400, 21623},
		{"unknown sid", "GET", "/2010-04-01/Accounts/" + testAccount + "/Messages/SM00000000000000000000000000000000.json", testAccount, e.key, nil, 404, 20404},
		{"not a sid", "GET", "/2010-04-01/Accounts/" + testAccount + "/Messages/nothing.json", testAccount, e.key, nil, 404, 20404},
		{"list without credentials", "GET", path, "", "", nil, 401, 20003},
	} {
		a := e.twilio(tt.method, tt.path, tt.user, tt.token, tt.form)
		if a.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, a.status, a.body, tt.status)
			continue
		}
		res := a.json(t)
		if res["code"] != float64(tt.code) || res["status"] != float64(tt.status) || res["message"] == "" ||
			res["more_info"] != "https://www.twilio.com/docs/errors/"+itoa(tt.code) {
			t.Errorf("%s: %s, want code %d", tt.name, a.body, tt.code)
		}
	}
	// Twilio's 401 asks for basic auth.
	if a := e.twilio("POST", path, "", "", ok); a.header.Get("WWW-Authenticate") == "" {
		t.Error("no WWW-Authenticate on 401")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestStatusCallbackRetriedAcrossRestart: a receiver that fails is posted
// to again with backoff, and a report still queued at shutdown is posted
// by the next start.
func TestStatusCallbackRetriedAcrossRestart(t *testing.T) {
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", DLRDelay: simulator.Delay{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	dir := t.TempDir()
	cfg := NewConfig()
	cfg.DataDir, cfg.HTTP.Addr = dir, "127.0.0.1:0"
	cfg.SMSC.Addr, cfg.SMSC.SystemID, cfg.SMSC.SourceAddr = sim.Addr(), "otp", "OTPD"
	d1, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d1.Pool().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	fastHooks(d1)
	d1.Dispatcher().MaxAttempts = 100
	_, key, _ := CreateKey(ctx, d1.store, "k", "")
	rc := newReceiver(t, 500, 503, 500, 500, 500, 500, 500, 500) // down until the restart
	e := &doorEnv{t: t, d: d1, sim: sim, key: key, base: "http://" + d1.Addr()}
	cbURL := rc.srv.URL + "/cb"
	a := e.twilio("POST", "/2010-04-01/Accounts/"+testAccount+"/Messages.json", testAccount, key,
		url.Values{"To": {"+4915112346003"}, "Body": {"hello"}, "StatusCallback": {cbURL}})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	first := rc.wait(t, 2)
	if err := d1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n := len(rc.requests())
	var views []CallbackView
	{
		st, err := OpenSQLite(dir)
		if err != nil {
			t.Fatal(err)
		}
		views, err = ListCallbackViews(ctx, st, false, 10)
		st.Close()
		if err != nil || len(views) != 1 || views[0].State != callbackPending || views[0].Attempts < 2 || views[0].LastError == "" {
			t.Fatalf("queued after shutdown: %+v %v", views, err)
		}
	}
	rc.mu.Lock()
	rc.statuses = nil // the receiver is back
	rc.mu.Unlock()
	d2 := testDaemon(t, func(c *Config) {
		*c = cfg
		c.Sender.RetryMin, c.Sender.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	})
	fastHooks(d2)
	// Due again after its backoff; posted with the same signature.
	all := rc.wait(t, n+1)
	last := all[len(all)-1]
	if last.header.Get("X-Twilio-Signature") != first[0].header.Get("X-Twilio-Signature") || string(last.body) != string(first[0].body) {
		t.Fatalf("the report changed across the restart:\n%s\n%s", first[0].body, last.body)
	}
	eventually(t, "report done", func() bool {
		vs, _ := ListCallbackViews(ctx, d2.store, true, 10)
		return len(vs) == 1 && vs[0].State == callbackDone
	})
}

func TestRestcommMessages(t *testing.T) {
	e := doorDaemon(t, nil)
	base := "/restcomm/2012-04-24/Accounts/" + testAccount + "/SMS/Messages"
	a := e.twilio("POST", base, testAccount, e.key, url.Values{"To": {"+4915112346010"}, "From": {"OTPD"}, "Body": {"Restcomm 4711"}})
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/xml") {
		t.Fatalf("xml: %d %s", a.status, a.body)
	}
	var x struct {
		XMLName xml.Name `xml:"RestcommResponse"`
		SMS     struct {
			Sid, AccountSid, From, To, Body, Status, Direction, APIVersion, URI string
			DateCreated                                                         string
		} `xml:"SMSMessage"`
	}
	if err := xml.Unmarshal(a.body, &x); err != nil {
		t.Fatalf("%v: %s", err, a.body)
	}
	s := x.SMS
	if !smSid.MatchString(s.Sid) || s.AccountSid != testAccount || s.To != "+4915112346010" || s.From != "OTPD" || s.Body != "Restcomm 4711" ||
		s.Status != "queued" || s.Direction != "outbound-api" {
		t.Fatalf("xml fields: %+v", s)
	}
	if m := e.simMessage("+4915112346010"); m.Text != "Restcomm 4711" {
		t.Fatalf("simulator: %+v", m)
	}
	a = e.twilio("POST", base+".json", testAccount, e.key, url.Values{"To": {"+4915112346011"}, "Body": {"Restcomm json"}})
	res := a.json(t)
	if a.status != 200 || !smSid.MatchString(res["sid"].(string)) || res["to"] != "+4915112346011" || res["body"] != "Restcomm json" ||
		res["uri"] != base+"/"+res["sid"].(string)+".json" {
		t.Fatalf("json: %d %s", a.status, a.body)
	}
	e.simMessage("+4915112346011")
	a = e.twilio("POST", base, testAccount, "otpd_wrong", url.Values{"To": {"+4915112346011"}, "Body": {"x"}})
	if a.status != 401 || !strings.Contains(string(a.body), "<Code>20003</Code>") {
		t.Fatalf("xml error: %d %s", a.status, a.body)
	}
}
