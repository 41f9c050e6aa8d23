package otpd

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
)

// authDaemon is otpd on a real (in-process) SMSC, so API keys are needed.
func authDaemon(t *testing.T, demo bool) *Daemon {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", Accounts: []simulator.Account{{SystemID: "otp", Password: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	return testDaemon(t, func(c *Config) {
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.Password = sim.Addr(), "otp", "secret"
		c.HTTP.Demo = demo
	})
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func form(t *testing.T, c *http.Client, u string, v url.Values, origin string) (*http.Response, string) {
	t.Helper()
	h := map[string]string{}
	if origin != "" {
		h["Origin"] = origin
	}
	return formWith(t, c, u, v, h)
}

func formWith(t *testing.T, c *http.Client, u string, v url.Values, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestConsoleLogin: the console wants an admin key; the cookie carries a
// session id (HttpOnly, SameSite=Strict), never the key; a cross-site
// login, a logout without the page's token and a revoked key's session are
// refused; every page has the CSP.
func TestConsoleLogin(t *testing.T) {
	d := authDaemon(t, false)
	base := "http://" + d.Addr()
	ctx := context.Background()
	_, admin, err := CreateKeyWith(ctx, d.store, KeyOptions{Name: "ops", Scopes: []string{ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	_, plain, _ := CreateKey(ctx, d.store, "app", "")
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)

	resp, body := get(t, c, base+"/console")
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/console/login"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("GET /console without a session: %d %q CSP %q", resp.StatusCode, body, resp.Header.Get("Content-Security-Policy"))
	}
	if resp, _ := get(t, c, base+"/console/api/state"); resp.StatusCode != 401 {
		t.Fatalf("state without a session: %d", resp.StatusCode)
	}
	if resp, body := form(t, c, base+"/console/login", url.Values{"key": {plain}}, base); resp.StatusCode != 403 || !strings.Contains(body, "admin scope") {
		t.Fatalf("non-admin key: %d %s", resp.StatusCode, body)
	}
	if resp, _ := form(t, c, base+"/console/login", url.Values{"key": {"nope"}}, base); resp.StatusCode != 401 {
		t.Fatalf("unknown key: %d", resp.StatusCode)
	}
	if resp, _ := form(t, c, base+"/console/login", url.Values{"key": {admin}}, "http://evil.example"); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-site login: %d %v", resp.StatusCode, resp.Cookies())
	}
	// A browser's form post from these pages (Referrer-Policy: no-referrer)
	// says Origin: null; only Sec-Fetch-Site: same-origin lets it in.
	for _, h := range []map[string]string{{"Origin": "null"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}, {"Origin": "null", "Sec-Fetch-Site": "same-site"}} {
		if resp, _ := formWith(t, c, base+"/console/login", url.Values{"key": {admin}}, h); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
			t.Fatalf("login with %v: %d %v", h, resp.StatusCode, resp.Cookies())
		}
	}
	if resp, _ := formWith(t, noRedirect(nil), base+"/console/login", url.Values{"key": {admin}}, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}); resp.StatusCode != 303 || len(resp.Cookies()) != 1 {
		t.Fatalf("a browser's login form: %d %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = form(t, c, base+"/console/login", url.Values{"key": {admin}}, base)
	if resp.StatusCode != 303 || len(resp.Cookies()) != 1 {
		t.Fatalf("admin login: %d %v", resp.StatusCode, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/console" || strings.Contains(ck.Value, admin) || len(ck.Value) < 40 {
		t.Fatalf("cookie %+v", ck)
	}
	resp, body = get(t, c, base+"/console")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="reports"`) || !strings.Contains(body, `id="hooks-table"`) {
		t.Fatalf("console after login: %d", resp.StatusCode)
	}
	resp, body = get(t, c, base+"/console/api/state")
	var st struct {
		Binds struct{ Up int } `json:"binds"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Binds.Up != 1 {
		t.Fatalf("state: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/console/static/console.js", "/console/static/pages.css"} {
		if resp, _ := get(t, c, base+p); resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := get(t, c, base+"/console/static/console.html"); resp.StatusCode != 404 {
		t.Errorf("a template served raw: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, base+"/demo"); resp.StatusCode != 404 {
		t.Errorf("/demo with a real SMSC and no --demo: %d", resp.StatusCode)
	}
	// Logout needs the page's token.
	if resp, _ := form(t, c, base+"/console/logout", url.Values{"csrf": {"guess"}}, base); resp.StatusCode != 403 {
		t.Fatalf("logout without the token: %d", resp.StatusCode)
	}
	// A revoked key's session ends at once.
	k, _ := d.svc.LookupKey(ctx, admin)
	if err := RevokeKey(ctx, d.store, k.ID); err != nil {
		t.Fatal(err)
	}
	d.svc.keysMu.Lock()
	clear(d.svc.keys)
	d.svc.keysMu.Unlock()
	if resp, _ := get(t, c, base+"/console/api/state"); resp.StatusCode != 401 {
		t.Fatalf("state after the key was revoked: %d", resp.StatusCode)
	}
}

// TestConsoleLogout: logging out with the page's token ends the session.
func TestConsoleLogout(t *testing.T) {
	d := authDaemon(t, true)
	base := "http://" + d.Addr()
	_, admin, _ := CreateKeyWith(context.Background(), d.store, KeyOptions{Name: "ops", Scopes: []string{ScopeAdmin}})
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	form(t, c, base+"/console/login", url.Values{"key": {admin}}, base)
	_, body := get(t, c, base+"/console")
	i := strings.Index(body, `name="csrf" value="`)
	if i < 0 {
		t.Fatalf("no token in %s", body)
	}
	tok := body[i+len(`name="csrf" value="`):]
	tok = tok[:strings.IndexByte(tok, '"')]
	if resp, _ := form(t, c, base+"/console/logout", url.Values{"csrf": {tok}}, base); resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, base+"/console/api/state"); resp.StatusCode != 401 {
		t.Fatalf("state after logout: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, base+"/demo"); resp.StatusCode != 200 || strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Fatalf("/demo with --demo: %d", resp.StatusCode)
	}
}

// TestDemoFlow: on the embedded default the try-it page sends a code,
// shows the simulator's copy, denies a wrong code with attempts left and
// approves the right one; a cross-site or non-JSON post is refused.
func TestDemoFlow(t *testing.T) {
	d := testDaemon(t, nil)
	base := "http://" + d.Addr()
	post := func(path string, body any, origin string) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, _ := post("/demo/api/otp", map[string]any{"phone": "+4915112345070"}, "http://evil.example"); st != 403 {
		t.Fatalf("cross-site send: %d", st)
	}
	resp, err := http.Post(base+"/demo/api/otp", "text/plain", strings.NewReader(`{"phone":"+4915112345070"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Fatalf("text/plain send: %d", resp.StatusCode)
	}
	for round := 0; round < 2; round++ { // the same number twice: the second copy is the second code
		st, ch := post("/demo/api/otp", map[string]any{"phone": "+4915112345070"}, base)
		sms, _ := ch["sms"].(map[string]any)
		if st != 201 || sms == nil || sms["code"] == "" {
			t.Fatalf("send: %d %v", st, ch)
		}
		code := sms["code"].(string)
		if !strings.Contains(sms["text"].(string), code) {
			t.Fatalf("copy %v", sms)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if st, r := post("/demo/api/verify", map[string]any{"id": ch["id"], "code": wrong}, base); st != 200 || r["status"] != "pending" || r["attempts_left"] == nil {
			t.Fatalf("wrong code: %d %v", st, r)
		}
		if st, r := post("/demo/api/verify", map[string]any{"id": ch["id"], "code": code}, base); st != 200 || r["status"] != "approved" {
			t.Fatalf("round %d, right code: %d %v", round, st, r)
		}
		if st, r := post("/demo/api/verify", map[string]any{"id": ch["id"], "code": code}, base); st != 409 || r["status"] != "denied" {
			t.Fatalf("code again: %d %v", st, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consoleClient logs in to the console with a new admin key.
func consoleClient(t *testing.T, d *Daemon) *http.Client {
	t.Helper()
	base := "http://" + d.Addr()
	_, admin, err := CreateKeyWith(context.Background(), d.store, KeyOptions{Name: "ops", Scopes: []string{ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	if resp, body := form(t, c, base+"/console/login", url.Values{"key": {admin}}, base); resp.StatusCode != 303 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	return c
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type consoleHooks struct {
	Counts   map[string]int `json:"counts"`
	Troubled []struct {
		MessageID     string     `json:"message_id"`
		Kind          string     `json:"kind"`
		Status        string     `json:"status"`
		URL           string     `json:"url"`
		State         string     `json:"state"`
		Attempts      int        `json:"attempts"`
		NextAttemptAt *time.Time `json:"next_attempt_at"`
		LastError     string     `json:"last_error"`
	} `json:"troubled"`
	Limit int `json:"limit"`
}

// TestConsoleWebhookFailures: a webhook whose receiver refuses shows in the
// console's state, pending with its error and next attempt, then failed;
// the URL and the error come without the URL's credentials and query; a
// report that was posted counts as done and is not listed.
func TestConsoleWebhookFailures(t *testing.T) {
	d := authDaemon(t, false)
	fastHooks(d) // 4 attempts, 30ms apart and up
	d.pages.hookMu.Lock()
	d.pages.hookEvery = 0
	d.pages.hookMu.Unlock()
	base := "http://" + d.Addr()
	c := consoleClient(t, d)
	read := func() (consoleHooks, string) {
		_, body := get(t, c, base+"/console/api/state")
		var st struct {
			Webhooks consoleHooks `json:"webhooks"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("state: %v %s", err, body)
		}
		return st.Webhooks, body
	}
	if h, body := read(); len(h.Troubled) != 0 || h.Counts["failed"] != 0 || h.Counts["pending"] != 0 || h.Limit != hookLimit {
		t.Fatalf("before any webhook: %s", body)
	}

	_, key, _ := CreateKey(context.Background(), d.store, "app", "")
	api := client{t: t, base: base, key: key}
	ok := newReceiver(t)
	if st, body, _ := api.do("POST", "/v1/otp", map[string]any{"phone": "+4915112345090", "callback_url": ok.srv.URL + "/fine"}); st != 201 {
		t.Fatalf("otp with a working callback: %d %v", st, body)
	}
	ok.wait(t, 1)
	addr := closedAddr(t)
	hook := "http://user:pa55@" + addr + "/hook?token=s3cret#frag"
	st, body, _ := api.do("POST", "/v1/messages", map[string]any{"to": "+4915112345091", "text": "hook me", "callback_url": hook})
	if st != 201 {
		t.Fatalf("send: %d %v", st, body)
	}
	id := body["id"].(string)
	var h consoleHooks
	var raw string
	seen := map[string]bool{}
	eventually(t, "the refused webhook failed for good in the console", func() bool {
		h, raw = read()
		for _, r := range h.Troubled {
			if r.MessageID == id {
				seen[r.State] = true
				if r.State == callbackPending && (r.NextAttemptAt == nil || r.Attempts < 1 || r.LastError == "") {
					t.Fatalf("pending row without its error or next attempt: %s", raw)
				}
				return r.State == callbackFailed
			}
		}
		return false
	})
	if len(h.Troubled) != 1 {
		t.Fatalf("listed: %s", raw)
	}
	r := h.Troubled[0]
	if r.Kind != "webhook" || r.Status != "delivered" || r.Attempts != 4 || r.NextAttemptAt != nil || !strings.Contains(r.LastError, "refused") {
		t.Fatalf("failed row: %s", raw)
	}
	if r.URL != "http://"+addr+"/hook" {
		t.Errorf("url %q", r.URL)
	}
	for _, secret := range []string{"s3cret", "pa55", "user:", "frag", "token="} {
		if strings.Contains(raw, secret) {
			t.Errorf("the console's state shows %q: %s", secret, raw)
		}
	}
	if h.Counts["failed"] != 1 || h.Counts["done"] != 1 {
		t.Errorf("counts %v", h.Counts)
	}
	t.Logf("states seen on the way: %v", seen)
}

// TestConsoleEventStream: the console's stream carries every key's reports
// to a logged-in admin (named report, as the page listens), and nothing
// without a session.
func TestConsoleEventStream(t *testing.T) {
	d := authDaemon(t, false)
	base := "http://" + d.Addr()
	if resp, _ := get(t, http.DefaultClient, base+"/console/api/events"); resp.StatusCode != 401 {
		t.Fatalf("stream without a session: %d", resp.StatusCode)
	}
	c := consoleClient(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/console/api/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	_, key, _ := CreateKey(context.Background(), d.store, "app", "")
	id := create(t, client{t: t, base: base, key: key}, "+4915112345092")
	sc := bufio.NewScanner(resp.Body)
	name := ""
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "event: "); ok {
			name = v
		}
		if data, ok := strings.CutPrefix(l, "data: "); ok {
			var e Event
			json.Unmarshal([]byte(data), &e)
			if name != "report" || e.ChallengeID != id || e.Phone != "+49151****092" {
				t.Fatalf("event %s %s", name, data)
			}
			if e.State == StateDelivered {
				return
			}
		}
	}
	t.Fatalf("stream ended without the delivery: %v", sc.Err())
}

// TestConsoleRedactsURLs: what the console shows of a callback URL, alone
// or quoted in an error, keeps no credentials, query or fragment.
func TestConsoleRedactsURLs(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@hooks.example/a/b?sig=x#f": "https://hooks.example/a/b",
		"http://127.0.0.1:9/h?":                 "http://127.0.0.1:9/h",
		"http://hooks.example":                  "http://hooks.example",
		"http://[::1]:80/%zz":                   "(unreadable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	in := `Post "http://u:***@h.example/x?token=abc#f": dial tcp: refused; then https://h.example/y?k=v failed`
	if got, want := redactURLs(in), `Post "http://h.example/x": dial tcp: refused; then https://h.example/y failed`; got != want {
		t.Errorf("redactURLs:\n got %s\nwant %s", got, want)
	}
}
