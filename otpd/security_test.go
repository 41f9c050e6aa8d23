package otpd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
	dto "github.com/prometheus/client_model/go"
)

// realDaemon runs otpd against a simulator as a real SMSC: API keys
// required, strict number checks.
func realDaemon(t *testing.T, mod func(*Config)) *Daemon {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", DLRDelay: simulator.Delay{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond},
		Accounts: []simulator.Account{{SystemID: "otp", Password: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	return testDaemon(t, func(c *Config) {
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.Password = sim.Addr(), "otp", "secret"
		if mod != nil {
			mod(c)
		}
	})
}

func key(t *testing.T, d *Daemon, opt KeyOptions) (string, string) {
	t.Helper()
	id, k, err := CreateKeyWith(context.Background(), d.store, opt)
	if err != nil {
		t.Fatal(err)
	}
	return id, k
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// events reads the delivery events of a stream until it has seen want of
// them or the time is up.
func readEvents(t *testing.T, url, key string, wait time.Duration) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	var out []Event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var e Event
			json.Unmarshal([]byte(data), &e)
			out = append(out, e)
		}
	}
	return out
}

// TestEventsAndReadsScopedToKey: a key's event stream carries its own
// reports only (admin's every key's); ?phone= matches the full number,
// not its masked form; a challenge made without a key is no key's.
func TestEventsAndReadsScopedToKey(t *testing.T) {
	d := realDaemon(t, nil)
	_, ka := key(t, d, KeyOptions{Name: "a"})
	_, kb := key(t, d, KeyOptions{Name: "b"})
	_, kadm := key(t, d, KeyOptions{Name: "admin", Scopes: []string{ScopeAdmin}})
	base := "http://" + d.Addr() + "/v1/events"
	type res struct{ evs []Event }
	got := map[string]chan []Event{}
	for name, u := range map[string][2]string{"b": {base, kb}, "adm": {base, kadm}, "a-same-mask": {base + "?phone=%2B4915112399678", ka}, "a-exact": {base + "?phone=%2B4915112340678", ka}} {
		ch := make(chan []Event, 1)
		got[name] = ch
		go func() { ch <- readEvents(t, u[0], u[1], 3*time.Second) }()
	}
	time.Sleep(200 * time.Millisecond)
	ca := client{t: t, base: "http://" + d.Addr(), key: ka}
	id := create(t, ca, "+4915112340678") // masked +49151****678, as +4915112399678
	if evs := <-got["b"]; len(evs) != 0 {
		t.Errorf("key b sees key a's reports: %+v", evs)
	}
	if evs := <-got["adm"]; len(evs) == 0 || evs[0].ChallengeID != id {
		t.Errorf("admin sees %+v", evs)
	}
	if evs := <-got["a-same-mask"]; len(evs) != 0 {
		t.Errorf("?phone= of another number with the same mask matched: %+v", evs)
	}
	if evs := <-got["a-exact"]; len(evs) == 0 {
		t.Errorf("?phone= of the number matched nothing")
	}
	// Made with authentication off (no key): no key reads it.
	c, err := d.svc.Create(context.Background(), CreateRequest{Phone: "+4915112340679"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := ca.do("GET", "/v1/otp/"+c.ID, nil); st != 404 {
		t.Fatalf("a key reads a challenge made without one: %d", st)
	}
	cadm := ca
	cadm.key = kadm
	if st, _, _ := cadm.do("GET", "/v1/otp/"+c.ID, nil); st != 200 {
		t.Fatalf("admin: %d", st)
	}
}

// TestKeyLifeCycle: scopes, allowed senders, revocation seen by the
// running daemon within seconds, rotation with an overlap, the list.
func TestKeyLifeCycle(t *testing.T) {
	d := realDaemon(t, nil)
	ctx := context.Background()
	ida, ka := key(t, d, KeyOptions{Name: "a"})
	_, kev := key(t, d, KeyOptions{Name: "events only", Scopes: []string{ScopeEvents}})
	_, kpp := key(t, d, KeyOptions{Name: "paypal", Senders: []string{"PayPal"}})
	c := client{t: t, base: "http://" + d.Addr(), key: ka}
	for _, tt := range []struct {
		key, from string
		st        int
		code      string
	}{
		{ka, "PayPal", 403, "sender_not_allowed"},
		{kpp, "PayPal", 201, ""},
		{kpp, "PayPalSecure", 400, "invalid_sender"}, // 12 characters
		{kpp, "+4915112345678", 403, "sender_not_allowed"},
		{kev, "", 403, "forbidden"},
	} {
		c.key = tt.key
		st, body, _ := c.do("POST", "/v1/messages", map[string]any{"to": "+4915112340700", "text": "hi", "from": tt.from})
		if st != tt.st || errCode(body) != tt.code {
			t.Errorf("from %q: %d %v; want %d %s", tt.from, st, body, tt.st, tt.code)
		}
	}
	c.key = ka
	if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340701", "sender": "Bank"}); st != 403 {
		t.Errorf("otp with a sender the key may not use: %d %v", st, body)
	}
	create(t, c, "+4915112340701")
	// Revoked in the store (as otpd keys revoke does from another
	// process): refused within seconds, no restart.
	if err := RevokeKey(ctx, d.store, ida); err != nil {
		t.Fatal(err)
	}
	if err := RevokeKey(ctx, d.store, ida); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("revoke twice: %v", err)
	}
	deadline := time.Now().Add(keyCacheTTL + 3*time.Second)
	for {
		st, _, _ := c.do("GET", "/v1/otp/ch_2222222222222222222222222a", nil)
		if st == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still works: %d", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Rotation: both work during the overlap, then only the new one.
	idr, kr := key(t, d, KeyOptions{Name: "rot", Senders: []string{"Bank"}})
	idn, kn, err := RotateKey(ctx, d.store, idr, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{kr, kn} {
		c.key = k
		if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340702", "sender": "Bank"}); st != 201 {
			t.Fatalf("during the overlap: %d %v", st, body)
		}
	}
	time.Sleep(1600*time.Millisecond + keyCacheTTL)
	c.key = kr
	if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340703"}); st != 401 {
		t.Fatalf("old key after the overlap: %d", st)
	}
	keys, err := ListKeys(ctx, d.store)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, k := range keys {
		states[k.ID] = k.State(time.Now())
	}
	if states[ida] != "revoked" || states[idr] != "expired" || states[idn] != "active" {
		t.Fatalf("states %v", states)
	}
	if _, err := ParseScopes("otp,root"); err == nil {
		t.Fatal("unknown scope accepted")
	}
}

func counter(t *testing.T, d *Daemon, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			sum += (&dto.Counter{Value: m.Counter.Value}).GetValue()
		}
	}
	return sum
}

// TestPumpingDefences: premium-rate numbers refused; a new challenge
// supersedes the phone's pending one; the per-prefix limit; the cap of
// wrong codes per phone across challenges; conversion metrics.
func TestPumpingDefences(t *testing.T) {
	d := realDaemon(t, func(c *Config) {
		c.Limits.PerPrefix = Rate{3, time.Hour}
		c.Limits.MaxPhoneFailures = 3
		c.OTP.MaxAttempts = 2
	})
	_, k := key(t, d, KeyOptions{})
	c := client{t: t, base: "http://" + d.Addr(), key: k}
	for _, p := range []string{"+499001234567", "+449098790000"} {
		if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": p}); st != 400 || errCode(body) != "number_type_not_allowed" {
			t.Errorf("%s: %d %v", p, st, body)
		}
	}
	first := create(t, c, "+4915112340800")
	second := create(t, c, "+4915112340800")
	if _, body, _ := c.do("GET", "/v1/otp/"+first, nil); body["status"] != "canceled" {
		t.Fatalf("older challenge not superseded: %v", body)
	}
	create(t, c, "+4915112340801") // third of the range +4915112340xxx
	if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340802"}); st != 429 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "range") {
		t.Fatalf("fourth in the range: %d %v", st, body)
	}
	// Wrong codes: 2 on one challenge, 1 on the next: blocked.
	for i := 0; i < 2; i++ {
		c.do("POST", "/v1/otp/"+second+"/verify", map[string]any{"code": "000000"})
	}
	phone := "+4915112340800"
	d.svc.limPrefix = newLimiter(RateOff)
	fourth := create(t, c, phone)
	c.do("POST", "/v1/otp/"+fourth+"/verify", map[string]any{"code": "000000"})
	if st, body, h := c.do("POST", "/v1/otp", map[string]any{"phone": phone}); st != 403 || errCode(body) != "phone_blocked" || h.Get("Retry-After") == "" {
		t.Fatalf("after 3 wrong codes in a row: %d %v", st, body)
	}
	if counter(t, d, "otpd_otp_sends_total", map[string]string{"country": "+49", "prefix": "+49151"}) < 4 {
		t.Fatal("sends not counted by country and prefix")
	}
	if counter(t, d, "otpd_otp_verified_total", nil) != 0 {
		t.Fatal("verified counted without a verification")
	}
}

// TestFailOpenDefaults: the embedded default only on loopback or with
// --dev, and never on a data directory that served a real SMSC;
// --no-auth off loopback needs --no-auth-public.
func TestFailOpenDefaults(t *testing.T) {
	base := func(dir string) Config {
		cfg := NewConfig()
		cfg.DataDir, cfg.Sim.HTTPAddr = dir, "127.0.0.1:0"
		return cfg
	}
	cfg := base(t.TempDir())
	cfg.HTTP.Addr = "0.0.0.0:0"
	if _, err := Start(cfg, nil); err == nil || !strings.Contains(err.Error(), "--dev") {
		t.Fatalf("embedded default on 0.0.0.0: %v", err)
	}
	cfg.Dev = true
	d, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Shutdown(context.Background())

	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close(context.Background())
	dir := t.TempDir()
	cfg = base(dir)
	cfg.HTTP.Addr = "0.0.0.0:0"
	cfg.SMSC.Addr, cfg.SMSC.SystemID = sim.Addr(), "x"
	cfg.HTTP.NoAuth = true
	if _, err := Start(cfg, nil); err == nil || !strings.Contains(err.Error(), "--no-auth-public") {
		t.Fatalf("--no-auth on 0.0.0.0: %v", err)
	}
	cfg.HTTP.NoAuthPublic = true
	if d, err = Start(cfg, nil); err != nil {
		t.Fatal(err)
	}
	d.Shutdown(context.Background())
	// The SMSC setting goes missing: the embedded default is refused there.
	cfg = base(dir)
	cfg.HTTP.Addr = "127.0.0.1:0"
	if _, err := Start(cfg, nil); err == nil || !strings.Contains(err.Error(), "served a real SMSC") {
		t.Fatalf("embedded default on a real SMSC's data: %v", err)
	}
}

// TestSecretLossDetected: a missing or replaced secret.key over existing
// data is refused, never silently replaced.
func TestSecretLossDetected(t *testing.T) {
	dir := t.TempDir()
	cfg := NewConfig()
	cfg.DataDir, cfg.HTTP.Addr, cfg.Sim.HTTPAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
	d, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Pool().WaitReady(t.Context())
	create(t, newClient(t, d), "+4915112341000")
	d.Shutdown(context.Background())
	file := filepath.Join(dir, "secret.key")
	orig, _ := os.ReadFile(file)
	os.Remove(file)
	if _, err := Start(cfg, nil); !errors.Is(err, ErrSecretLost) {
		t.Fatalf("secret.key missing: %v", err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a new secret.key was made over the data")
	}
	os.WriteFile(file, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	if _, err := Start(cfg, nil); !errors.Is(err, ErrSecretLost) {
		t.Fatalf("another secret.key: %v", err)
	}
	os.WriteFile(file, orig, 0o600)
	d, err = Start(cfg, nil)
	if err != nil {
		t.Fatalf("the right key restored: %v", err)
	}
	d.Shutdown(context.Background())
}

// TestSlowBody: a body slower than the read timeout gets 408.
func TestSlowBody(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.HTTP.ReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/otp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"phone\":")
	time.Sleep(600 * time.Millisecond)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(b), "request_timeout") || strings.Contains(string(b), "tcp") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestResendText: the resend's text says the time left (seconds under a
// minute), the expiry does not move, and a template gone from the
// configuration fails the resend instead of sending a text without it.
func TestResendText(t *testing.T) {
	d := testDaemon(t, func(c *Config) {
		c.OTP.Templates = map[string]string{"en": "Code {otp}, expires in {ttl}.", "de": "Code {otp}, gültig {ttl}."}
		c.OTP.ResendAfter = time.Second
	})
	c := newClient(t, d)
	_, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112341100", "ttl": "60"})
	id, exp := body["id"].(string), body["expires_at"].(string)
	d.svc.skew.Store(int64(20 * time.Second))
	start := time.Now()
	st, body, _ := c.do("POST", "/v1/otp/"+id+"/resend", nil)
	t0, _ := time.Parse(time.RFC3339Nano, exp)
	t1, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(body["expires_at"]))
	if st != 200 || !t0.Truncate(time.Millisecond).Equal(t1) {
		t.Fatalf("resend: %d %v (expiry was %v)", st, body, exp)
	}
	time.Sleep(50 * time.Millisecond)
	msgs := d.Simulator().Messages(simulator.Filter{To: "4915112341100"})
	if len(msgs) == 0 || !strings.Contains(msgs[0].Text, "expires in 40 seconds") {
		t.Fatalf("resend text: %+v (sent after %v)", msgs, start)
	}
	_, body, _ = c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112341101", "locale": "de"})
	id = body["id"].(string)
	delete(d.Config.OTP.Templates, "de")
	d.svc.skew.Store(int64(40 * time.Second))
	if st, body, _ := c.do("POST", "/v1/otp/"+id+"/resend", nil); st != 409 || errCode(body) != "template_unavailable" {
		t.Fatalf("resend without its template: %d %v", st, body)
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{40 * time.Second, "40 seconds"}, {400 * time.Millisecond, "1 second"}, {59500 * time.Millisecond, "1 minute"}, {time.Minute, "1 minute"}, {270 * time.Second, "4 minutes"}} {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
