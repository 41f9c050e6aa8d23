package otpd

import (
	"context"
	"encoding/json"
	"io"
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
	if resp.StatusCode != 200 || !strings.Contains(body, `id="reports"`) || !strings.Contains(body, "no webhook store") {
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
