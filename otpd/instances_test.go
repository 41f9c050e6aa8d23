package otpd

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
)

// TestInstancesShareOneStore runs two daemons on one PostgreSQL store: a
// receipt that reaches the instance that did not send the SMS is matched
// through the database, one that beat its segment there is applied when
// the sender records it, its callback is queued wherever it arrives, and
// the code verifies on either instance.
func TestInstancesShareOneStore(t *testing.T) {
	url := testPostgresURL(t)
	key := filepath.Join(t.TempDir(), "secret.key") // every instance has the same one
	shared := func(c *Config) {
		c.Database = url
		c.OTP.HMACKeyFile = key
		c.Sim.DLRDelay = "1h" // the receipts below come from the test
		c.SMSC.MessageIDFormat = "auto"
	}
	a := testDaemon(t, shared)
	b := testDaemon(t, shared)
	ctx := context.Background()
	start := time.Now()
	st, body, _ := newClient(t, a).do("POST", "/v1/otp", map[string]any{"phone": "+4915112345678", "callback_url": "http://127.0.0.1:9/hook"})
	if st != http.StatusCreated {
		t.Fatalf("create on a: %d %v", st, body)
	}
	id := body["id"].(string)
	code := smsCode(t, a, "+4915112345678", start)
	var m *Message
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := b.store.Challenge(ctx, id)
		if err == nil {
			if m, err = b.store.Message(ctx, c.MessageID); err == nil && m.State == StateSubmitted && len(m.Parts) == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("message not submitted: %v", err)
		}
	}
	// Segment 1's receipt on b.
	r := smpp.Receipt{Receipt: dlr.Receipt{ID: m.Parts[0].SMSCID, Stat: "DELIVRD", State: dlr.Delivered}}
	if err := b.svc.ApplyReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.store.Message(ctx, m.ID); got.Parts[0].State != StateDelivered {
		t.Fatalf("segment 1 after b's receipt: %+v", got.Parts)
	}
	// A second segment's receipt reaches b before a records the segment.
	r.ID = "987654321"
	if err := b.svc.ApplyReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := a.sender.recordSegment(m, 2, 2, r.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := a.store.Message(ctx, m.ID)
	if len(got.Parts) != 2 || got.Parts[1].State != StateDelivered || got.State != StateDelivered {
		t.Fatalf("after a recorded segment 2: state %s, parts %+v; want the orphan receipt applied", got.State, got.Parts)
	}
	// The callback a registered is queued by b, where the receipt came.
	if qs, err := b.store.ListCallbacks(ctx, true, 10); err != nil || len(qs) != 1 || qs[0].MessageID != m.ID {
		t.Fatalf("callback queue: %v, %v", qs, err)
	}
	// The code verifies on b.
	st, body, _ = newClient(t, b).do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code})
	if st != http.StatusOK || body["status"] != "approved" {
		t.Fatalf("verify on b: %d %v", st, body)
	}
}

// TestInstancesShareRateLimits: on one PostgreSQL store the rate limits
// count every instance's sends (two instances would otherwise allow twice
// the limit), and a refused send takes no token from the other limits.
func TestInstancesShareRateLimits(t *testing.T) {
	url := testPostgresURL(t)
	key := filepath.Join(t.TempDir(), "secret.key")
	shared := func(c *Config) {
		c.Database, c.OTP.HMACKeyFile = url, key
		c.Limits.PerPhone = Rate{N: 3, Per: time.Hour}
		c.Limits.PerPrefix = Rate{N: 5, Per: time.Hour}
	}
	a, b := testDaemon(t, shared), testDaemon(t, shared)
	ca, cb := newClient(t, a), newClient(t, b)
	for i, c := range []client{ca, cb, ca} {
		if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340700"}); st != http.StatusCreated {
			t.Fatalf("send %d: %d %v", i+1, st, body)
		}
	}
	st, body, h := cb.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340700"})
	if st != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("4th send to one phone over two instances: %d %v %v; want 429 with Retry-After", st, body, h)
	}
	// The refused send left the prefix's budget alone: two more numbers of
	// the range still go (3 + 2 = its 5), a third does not.
	for i, p := range []string{"+4915112340701", "+4915112340702"} {
		if st, body, _ := []client{ca, cb}[i].do("POST", "/v1/otp", map[string]any{"phone": p}); st != http.StatusCreated {
			t.Fatalf("send to %s: %d %v", p, st, body)
		}
	}
	if st, _, _ := ca.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340703"}); st != http.StatusTooManyRequests {
		t.Fatalf("6th send in one range: %d, want 429", st)
	}
}

// TestInstanceStartLeavesOthersSends: an instance starting on a shared
// store does not take back the messages another live instance is sending
// (that would send them twice); only an expired lease is taken up.
func TestInstanceStartLeavesOthersSends(t *testing.T) {
	url := testPostgresURL(t)
	key := filepath.Join(t.TempDir(), "secret.key")
	shared := func(c *Config) { c.Database, c.OTP.HMACKeyFile = url, key }
	a := testDaemon(t, shared)
	now := time.Now().UTC()
	m := testMessage("msg_inflight", now)
	m.State, m.LeaseUntil = StateSending, now.Add(time.Hour)
	if err := a.store.Write(context.Background(), func(tx *Tx) error { return insertMessage(tx, m) }); err != nil {
		t.Fatal(err)
	}
	b := testDaemon(t, shared)
	got, err := b.store.Message(context.Background(), m.ID)
	if err != nil || got.State != StateSending || got.Uncertain != 0 {
		t.Fatalf("after another instance started: %+v, %v; want it left sending", got, err)
	}
}
