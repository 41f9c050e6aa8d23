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
