package otpd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"

	dto "github.com/prometheus/client_model/go"
)

// testDaemon starts otpd on its embedded default with a fresh data
// directory; mod adjusts the configuration.
func testDaemon(t *testing.T, mod func(*Config)) *Daemon {
	t.Helper()
	cfg := NewConfig()
	cfg.DataDir = t.TempDir()
	if testOnPostgres() {
		cfg.Database = testPostgresURL(t)
	}
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Sim.HTTPAddr = "127.0.0.1:0"
	cfg.Sim.DLRDelay = "10ms"
	cfg.Sender.RetryMin = 20 * time.Millisecond
	cfg.Sender.RetryMax = 100 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	d, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Pool().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

type client struct {
	t    *testing.T
	base string
	key  string
}

func (c client) do(method, path string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			r = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if body != nil || method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func newClient(t *testing.T, d *Daemon) client { return client{t: t, base: "http://" + d.Addr()} }

var codeRE = regexp.MustCompile(`\b(\d{6,10})\b`)

// smsCode waits for the SMS to phone at the simulator and returns its code.
func smsCode(t *testing.T, d *Daemon, phone string, after time.Time) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		m, err := d.Simulator().WaitForMessage(ctx, simulator.Filter{To: strings.TrimPrefix(phone, "+")})
		if err != nil {
			t.Fatalf("no SMS to %s: %v", phone, err)
		}
		if m.ReceivedAt.Before(after) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		code := codeRE.FindString(m.Text)
		if code == "" {
			t.Fatalf("no code in %q", m.Text)
		}
		return code
	}
}

func create(t *testing.T, c client, phone string) string {
	t.Helper()
	st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": phone})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	return body["id"].(string)
}

func TestOTPRoundTrip(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	start := time.Now()
	st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+49 151 12345678"})
	if st != http.StatusCreated || body["phone"] != "+49151****678" || body["status"] != "pending" {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	code := smsCode(t, d, "+4915112345678", start)
	if len(code) != 6 {
		t.Fatalf("code %q", code)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	st, body, _ = c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": wrong})
	if st != 200 || body["status"] != "pending" || body["attempts_left"] != float64(4) {
		t.Fatalf("wrong code: %d %v", st, body)
	}
	st, body, _ = c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code})
	if st != 200 || body["status"] != "approved" {
		t.Fatalf("right code: %d %v", st, body)
	}
	// A code works once.
	if st, _, _ = c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code}); st != http.StatusConflict {
		t.Fatalf("second use: %d", st)
	}
	// The receipt arrives and shows on the challenge; the code never does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body, _ = c.do("GET", "/v1/otp/"+id, nil)
		if st != http.StatusOK {
			t.Fatalf("GET: %d %v", st, body)
		}
		del := body["delivery"].(map[string]any)
		if del["state"] == "delivered" {
			if ids := del["message_ids"].([]any); len(ids) != 1 || del["stat"] != "DELIVRD" {
				t.Fatalf("delivery %v", del)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %v", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	raw, _ := json.Marshal(body)
	if strings.Contains(string(raw), code) {
		t.Fatal("GET shows the code")
	}
}

func TestMaxAttemptsAndExpiry(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.OTP.MaxAttempts = 2 })
	c := newClient(t, d)
	id := create(t, c, "+4915112345001")
	for i, want := range []string{"pending", "max_attempts_reached"} {
		st, body, _ := c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": "000000"})
		if st != 200 || body["status"] != want {
			t.Fatalf("attempt %d: %d %v", i+1, st, body)
		}
	}
	// Final: a 409, not a 429 that invites a retry.
	if st, body, _ := c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": "000000"}); st != http.StatusConflict || body["error"].(map[string]any)["code"] != "max_attempts_reached" {
		t.Fatalf("after max attempts: %d %v", st, body)
	}
	// Expiry: move the clock past the TTL.
	id2 := create(t, c, "+4915112345002")
	d.svc.skew.Store(int64(6 * time.Minute))
	if st, body, _ := c.do("POST", "/v1/otp/"+id2+"/verify", map[string]any{"code": "123456"}); st != http.StatusGone {
		t.Fatalf("expired: %d %v", st, body)
	}
	if _, body, _ := c.do("GET", "/v1/otp/"+id2, nil); body["status"] != "expired" {
		t.Fatalf("status %v", body["status"])
	}
}

func TestConcurrentRightAnswersOneWins(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	start := time.Now()
	id := create(t, c, "+4915112345003")
	code := smsCode(t, d, "+4915112345003", start)
	var wg sync.WaitGroup
	results := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, _ := c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code})
			results <- st
		}()
	}
	wg.Wait()
	close(results)
	ok, conflict := 0, 0
	for st := range results {
		switch st {
		case 200:
			ok++
		case 409:
			conflict++
		}
	}
	if ok != 1 || conflict != 7 {
		t.Fatalf("%d approved, %d conflicts", ok, conflict)
	}
}

func TestResend(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.OTP.ResendAfter = time.Minute })
	c := newClient(t, d)
	start := time.Now()
	id := create(t, c, "+4915112345004")
	old := smsCode(t, d, "+4915112345004", start)
	st, _, h := c.do("POST", "/v1/otp/"+id+"/resend", nil)
	if st != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("resend inside cooldown: %d %q", st, h.Get("Retry-After"))
	}
	d.svc.skew.Store(int64(61 * time.Second))
	mark := time.Now()
	if st, body, _ := c.do("POST", "/v1/otp/"+id+"/resend", nil); st != 200 || body["sends"] != float64(2) {
		t.Fatalf("resend: %d %v", st, body)
	}
	d.svc.skew.Store(0)
	code := smsCode(t, d, "+4915112345004", mark)
	if code != old {
		if st, body, _ := c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": old}); st != 200 || body["status"] != "pending" {
			t.Fatalf("old code after resend: %d %v", st, body)
		}
	}
	if st, body, _ := c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code}); st != 200 || body["status"] != "approved" {
		t.Fatalf("new code: %d %v", st, body)
	}
}

func TestRateLimitPerPhone(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.Limits.PerPhone = Rate{N: 2, Per: time.Hour} })
	c := newClient(t, d)
	create(t, c, "+4915112345005")
	create(t, c, "+4915112345005")
	st, body, h := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112345005"})
	if st != http.StatusTooManyRequests || h.Get("Retry-After") == "" || body["error"].(map[string]any)["code"] != "rate_limited" {
		t.Fatalf("third send: %d %v %v", st, body, h)
	}
	// Another number is not affected.
	create(t, c, "+4915112345006")
	// The refusal counted once, by its limit.
	var m dto.Metric
	d.Service().metrics.RateLimited.WithLabelValues("phone").Write(&m)
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("otpd_rate_limited_total{limit=\"phone\"} = %v, want 1", got)
	}
}

func TestUndeliverableReceiptShows(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	// The simulator's magic numbers: +1555000... always end UNDELIV.
	id := create(t, c, "+15550001234")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := c.do("GET", "/v1/otp/"+id, nil)
		del := body["delivery"].(map[string]any)
		if del["state"] == "undeliverable" {
			if del["stat"] != "UNDELIV" {
				t.Fatalf("delivery %v", del)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no UNDELIV: %v", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadInput(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	tests := []struct {
		method, path string
		body         any
		ctype        string
		status       int
		code         string
	}{
		{"POST", "/v1/otp", map[string]any{"phone": "not a number"}, "", 400, "invalid_phone"},
		{"POST", "/v1/otp", map[string]any{"phone": "015112345678"}, "", 400, "invalid_phone"},
		{"POST", "/v1/otp", map[string]any{"phone": "+999123"}, "", 400, "invalid_phone"},
		{"POST", "/v1/otp", map[string]any{"phone": "+4915112345678", "length": 4}, "", 400, "invalid_length"},
		{"POST", "/v1/otp", map[string]any{"phone": "+4915112345678", "ttl": "1h"}, "", 400, "invalid_ttl"},
		{"POST", "/v1/otp", map[string]any{"phone": "+4915112345678", "template": "no code here"}, "", 400, "invalid_template"},
		{"POST", "/v1/otp", `{"phone": `, "", 400, "invalid_json"},
		{"POST", "/v1/otp", `{"phone": 12}`, "", 400, "invalid_json"},
		{"POST", "/v1/otp", `{"phone":"+4915112345678"}`, "text/plain", 415, "unsupported_media_type"},
		{"POST", "/v1/otp", `{"phone":"` + strings.Repeat("1", 20000) + `"}`, "", 413, "body_too_large"},
		{"POST", "/v1/otp/ch_nope/verify", map[string]any{"code": "123456"}, "", 404, "not_found"},
		{"POST", "/v1/otp/ch_nope/verify", map[string]any{"code": "12ab"}, "", 400, "invalid_code"},
		{"GET", "/v1/nothing", nil, "", 404, "not_found"},
		{"DELETE", "/v1/otp", nil, "", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		var r io.Reader
		if s, ok := tt.body.(string); ok {
			r = strings.NewReader(s)
		} else if tt.body != nil {
			b, _ := json.Marshal(tt.body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(tt.method, c.base+tt.path, r)
		if tt.ctype != "" {
			req.Header.Set("Content-Type", tt.ctype)
		} else if tt.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != tt.status || out.Error.Code != tt.code || out.Error.Message == "" {
			t.Errorf("%s %s %v: %d %+v, want %d %s", tt.method, tt.path, tt.body, resp.StatusCode, out, tt.status, tt.code)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", Accounts: []simulator.Account{{SystemID: "otp", Password: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) }) // after the daemon's
	d := testDaemon(t, func(c *Config) {
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.Password = sim.Addr(), "otp", "secret"
	})
	_, key, err := CreateKey(context.Background(), d.store, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	_, key2, _ := CreateKey(context.Background(), d.store, "elsewhere", "10.0.0.0/8")
	c := newClient(t, d)
	if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112345007"}); st != 401 {
		t.Fatalf("no key: %d", st)
	}
	c.key = "otpd_wrong"
	if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112345007"}); st != 401 {
		t.Fatalf("wrong key: %d", st)
	}
	c.key = key2
	if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112345007"}); st != 403 {
		t.Fatalf("key from a network it may not be used from: %d", st)
	}
	c.key = key
	id := create(t, c, "+4915112345007")
	// Another key does not see this key's challenge.
	_, key3, _ := CreateKey(context.Background(), d.store, "other", "")
	c2 := c
	c2.key = key3
	if st, _, _ := c2.do("GET", "/v1/otp/"+id, nil); st != 404 {
		t.Fatalf("other key sees the challenge: %d", st)
	}
	if st, _, _ := c.do("GET", "/v1/otp/"+id, nil); st != 200 {
		t.Fatalf("own challenge: %d", st)
	}
}

func TestEventsStreamAndShutdown(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	req, _ := http.NewRequest("GET", c.base+"/v1/events?state=delivered", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	id := create(t, c, "+4915112345010")
	lines := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		var acc string
		for {
			n, err := resp.Body.Read(buf)
			acc += string(buf[:n])
			for {
				i := strings.Index(acc, "\n")
				if i < 0 {
					break
				}
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if data, ok := strings.CutPrefix(l, "data: "); ok {
				var e Event
				json.Unmarshal([]byte(data), &e)
				if e.ChallengeID != id || e.State != "delivered" || e.Phone != "+49151****010" {
					t.Fatalf("event %+v", e)
				}
				// Shutdown ends the stream rather than waiting for it.
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := d.Shutdown(ctx); err != nil || time.Since(start) > 8*time.Second {
					t.Fatalf("shutdown with a stream open: %v after %v", err, time.Since(start))
				}
				return
			}
		case <-timeout:
			t.Fatal("no delivery event")
		}
	}
}
