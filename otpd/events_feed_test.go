package otpd

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
)

// evStream follows a /v1/events stream and keeps its events.
type evStream struct {
	mu  sync.Mutex
	evs []Event
}

// follow opens the stream at url with key; it is subscribed when follow
// returns, and ends at the test's end.
func follow(t *testing.T, url, key string) *evStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	s := &evStream{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e Event
				json.Unmarshal([]byte(data), &e)
				s.mu.Lock()
				s.evs = append(s.evs, e)
				s.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// got lists the stream's events as "message:state".
func (s *evStream) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.evs {
		out = append(out, e.MessageID+":"+e.State)
	}
	return out
}

// waitFor waits (bounded) until the stream holds every one of want.
func (s *evStream) waitFor(t *testing.T, name string, want ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		have := map[string]bool{}
		for _, g := range s.got() {
			have[g] = true
		}
		missing := false
		for _, w := range want {
			missing = missing || !have[w]
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: %v, want %v among them", name, s.got(), want)
		}
	}
}

// sharedPair starts two daemons on one PostgreSQL schema; mod adjusts both.
func sharedPair(t *testing.T, mod func(*Config)) (a, b *Daemon) {
	url := testPostgresURL(t)
	key := filepath.Join(t.TempDir(), "secret.key")
	shared := func(c *Config) {
		c.Database, c.OTP.HMACKeyFile = url, key
		if mod != nil {
			mod(c)
		}
	}
	return testDaemon(t, shared), testDaemon(t, shared)
}

// TestInstancesShareEvents: on one PostgreSQL store, a stream on instance
// a shows the delivery report of a's message whose receipt came to
// instance b, once, and b's stream shows a's reports; a key sees only its
// own messages' reports from the other instance too, and ?phone= still
// matches the full number, not its mask.
func TestInstancesShareEvents(t *testing.T) {
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", DLRDelay: simulator.Delay{Min: time.Hour, Max: time.Hour}, // the receipt comes from the test
		Accounts: []simulator.Account{{SystemID: "otp", Password: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	a, b := sharedPair(t, func(c *Config) {
		c.SMSC.Addr, c.SMSC.SystemID, c.SMSC.Password = sim.Addr(), "otp", "secret"
		c.SMSC.MessageIDFormat = "auto"
	})
	_, ka := key(t, a, KeyOptions{Name: "a"})
	_, kb := key(t, a, KeyOptions{Name: "b"})
	_, kadm := key(t, a, KeyOptions{Name: "admin", Scopes: []string{ScopeAdmin}})
	onA, onB := "http://"+a.Addr()+"/v1/events", "http://"+b.Addr()+"/v1/events"
	sA, sAPhone, sAMask, sB, sAdm, sAdmB := follow(t, onA, ka), follow(t, onA+"?phone=%2B4915112340678", ka),
		follow(t, onA+"?phone=%2B4915112399678", ka), follow(t, onA, kb), follow(t, onA, kadm), follow(t, onB, kadm)

	ctx := context.Background()
	id := create(t, client{t: t, base: "http://" + a.Addr(), key: ka}, "+4915112340678") // masked +49151****678, as +4915112399678
	c, err := a.store.Challenge(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sub, dlv := c.MessageID+":"+StateSubmitted, c.MessageID+":"+StateDelivered
	sA.waitFor(t, "a on a", sub)
	sAdmB.waitFor(t, "admin on b", sub) // a's own report, relayed to b
	m, err := b.store.Message(ctx, c.MessageID)
	if err != nil || len(m.Parts) != 1 {
		t.Fatalf("message: %+v, %v", m, err)
	}
	// The receipt reaches b's bind.
	r := smpp.Receipt{Receipt: dlr.Receipt{ID: m.Parts[0].SMSCID, Stat: "DELIVRD", State: dlr.Delivered}}
	if err := b.svc.ApplyReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Key b sends on b.
	st, body, _ := client{t: t, base: "http://" + b.Addr(), key: kb}.do("POST", "/v1/messages", map[string]any{"to": "+4915112340679", "text": "hi"})
	if st != http.StatusCreated {
		t.Fatalf("send on b: %d %v", st, body)
	}
	bsub := body["id"].(string) + ":" + StateSubmitted
	sAdm.waitFor(t, "admin on a", sub, dlv, bsub)
	sAdmB.waitFor(t, "admin on b", sub, dlv, bsub)
	sB.waitFor(t, "b on a", bsub)
	time.Sleep(300 * time.Millisecond) // what else would come, has
	for _, tt := range []struct {
		name string
		s    *evStream
		want []string
	}{
		{"key a on a", sA, []string{sub, dlv}}, // each once: a does not hear its own again
		{"key a on a, ?phone= of its number", sAPhone, []string{sub, dlv}},
		{"key a on a, ?phone= of a number with the same mask", sAMask, nil},
		{"key b on a", sB, []string{bsub}},
		{"admin on a", sAdm, []string{sub, dlv, bsub}},
		{"admin on b", sAdmB, []string{sub, dlv, bsub}},
	} {
		if got := tt.s.got(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	sA.mu.Lock()
	relayed := sA.evs[1]
	sA.mu.Unlock()
	if relayed.Phone != "+49151****678" || relayed.ChallengeID != id || relayed.Stat != "DELIVRD" {
		t.Errorf("b's report as a shows it: %+v", relayed)
	}
	if n := counterValue(b.metrics.EventsRelayed); n < 2 {
		t.Errorf("otpd_events_relayed_total on b: %v, want at least its 2 reports", n)
	}
	if n := counterValue(a.metrics.EventsReceived); n < 2 {
		t.Errorf("otpd_events_received_total on a: %v, want at least b's 2 reports", n)
	}
}

// TestEventFeedReconnects: an instance whose listener's connection is cut
// (pg_terminate_backend) reconnects, counts it, and hears the other
// instance again; a relay whose connection is cut dials again and sends
// the batch it had; many events at once go out in several notifications,
// each within PostgreSQL's payload limit, key and number intact; a relay
// sends what it still has when it closes.
func TestEventFeedReconnects(t *testing.T) {
	a, b := sharedPair(t, nil)
	ch, stop := a.events.Subscribe()
	defer stop()
	seq := 0
	publish := func(reason string) Event {
		seq++
		e := Event{MessageID: NewID("msg"), Phone: MaskPhone("+4915112340678"), State: StateFailed, Reason: reason,
			At: time.Now().UTC(), keyID: "key_" + fmt.Sprint(seq), phone: "+4915112340678"}
		b.events.Publish(e)
		return e
	}
	expect := func(what string, want ...Event) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for _, w := range want {
			select {
			case got := <-ch:
				if got.MessageID != w.MessageID || got.keyID != w.keyID || got.phone != w.phone || got.Phone != w.Phone ||
					got.Reason != w.Reason || !got.At.Equal(w.At) || got.State != w.State {
					t.Fatalf("%s: got %s %s %s key %q phone %q (reason of %d bytes), want %s %s %s key %q phone %q (%d bytes)", what,
						got.MessageID, got.State, got.Phone, got.keyID, got.phone, len(got.Reason), w.MessageID, w.State, w.Phone, w.keyID, w.phone, len(w.Reason))
				}
			case <-timeout:
				t.Fatalf("%s: event %s did not reach the other instance", what, w.MessageID)
			}
		}
	}
	expect("before any cut", publish("first"))

	db, err := sql.Open("pgx", os.Getenv("OTPD_TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	terminate := func(pid uint32) {
		t.Helper()
		var ok bool
		if err := db.QueryRow(`SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, ok, err)
		}
	}

	pid := a.feed.listenPID.Load()
	terminate(pid)
	for deadline := time.Now().Add(10 * time.Second); counterValue(a.metrics.EventsListenReconnects) < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect")
		}
	}
	if a.feed.listenPID.Load() == pid {
		t.Fatal("the listener reconnected on the process that was terminated")
	}
	expect("after the listener's reconnect", publish("after the listener's reconnect"))

	pid = b.feed.relayPID.Load()
	terminate(pid)
	expect("after the relay's connection was cut", publish("after the relay's cut"))
	if b.feed.relayPID.Load() == pid {
		t.Fatal("the relay did not dial again")
	}

	// More than one notification holds, each near the limit.
	var many []Event
	reason := strings.Repeat("r", 400)
	for range 200 {
		many = append(many, publish(reason))
	}
	expect("200 events at once", many...)
	if n := counterValue(b.metrics.EventsRelayDropped); n != 0 {
		t.Errorf("otpd_events_relay_dropped_total on b: %v", n)
	}

	// Closing flushes the batch at once, not after the flush delay only.
	last := publish("last")
	b.feed.Close()
	expect("published just before the relay closed", last)
	select {
	case e := <-ch:
		t.Errorf("unexpected event: %+v", e)
	default:
	}
}

// TestEventFeedOnlyShared: a SQLite store has no feed; a PostgreSQL one
// has one.
func TestEventFeedOnlyShared(t *testing.T) {
	d := testDaemon(t, nil)
	if shared := d.store.Dialect() == "postgres"; (d.feed != nil) != shared {
		t.Fatalf("feed %v on a store that is shared: %v", d.feed != nil, shared)
	}
	d.events.Publish(Event{MessageID: "msg_1", State: StateSubmitted, At: time.Now()}) // no relay to hand it to, and no panic
}

// TestEventChannel: the store in public uses otpd_events; one in another
// schema a channel of its own, within PostgreSQL's 63 bytes however long
// the schema's name, and two long names do not share one.
func TestEventChannel(t *testing.T) {
	if c := eventChannel("public"); c != "otpd_events" {
		t.Errorf("public: %q", c)
	}
	if c := eventChannel("otpd_test_0a1b"); c != "otpd_events.otpd_test_0a1b" {
		t.Errorf("otpd_test_0a1b: %q", c)
	}
	long1, long2 := eventChannel(strings.Repeat("s", 60)+"1"), eventChannel(strings.Repeat("s", 60)+"2")
	if len(long1) > 63 || len(long2) > 63 || long1 == long2 {
		t.Errorf("long schemas: %q, %q", long1, long2)
	}
}
