package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func faultCount(t *testing.T, sim *Simulator, name string) string {
	t.Helper()
	prefix := `smscsim_faults_total{fault="` + name + `"} `
	for _, l := range strings.Split(metricsText(t, sim), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix)
		}
	}
	return ""
}

func TestFaultErrorAndThrottle(t *testing.T) {
	sim := startSim(t, Config{Faults: Faults{ErrorRate: 1, ErrorStatus: Status(smpp.ESME_RMSGQFUL)}})
	e := dial(t, sim, smpp.Config{})
	if st := submitStatus(t, e, gsm("491", "x", 1)); st != smpp.ESME_RMSGQFUL {
		t.Fatalf("error fault: %v", st)
	}
	if len(sim.Messages(Filter{})) != 0 {
		t.Fatal("a refused submit was stored")
	}
	// Changed while running, through the HTTP API.
	var f Faults
	if code := do(t, sim.Handler(), "PUT", "/api/faults", `{"throttle_rate": 1}`, &f); code != 200 || f.ThrottleRate != 1 || f.ErrorRate != 0 {
		t.Fatalf("PUT /api/faults: %d %+v", code, f)
	}
	if st := submitStatus(t, e, gsm("491", "x", 1)); st != smpp.ESME_RTHROTTLED {
		t.Fatalf("throttle fault: %v", st)
	}
	sim.SetFaults(Faults{ThrottleTPS: 1})
	throttled := 0
	for i := 0; i < 5; i++ {
		if submitStatus(t, e, gsm("491", "x", 0)) == smpp.ESME_RTHROTTLED {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("throttle_tps 1: 5 submits at once, none throttled")
	}
	sim.SetFaults(Faults{})
	submit(t, e, gsm("491", "x", 0))
	for name, want := range map[string]string{faultError: "1", faultThrottle: "1", faultThrottleTPS: fmt.Sprint(throttled)} {
		if got := faultCount(t, sim, name); got != want {
			t.Errorf("fault %s counted %s, want %s", name, got, want)
		}
	}
	if !strings.Contains(metricsText(t, sim), `smscsim_rejected_total{status="ESME_RMSGQFUL"} 1`) {
		t.Error("rejections not counted by status")
	}
}

func TestFaultDropAndDelay(t *testing.T) {
	sim := startSim(t, Config{Faults: Faults{DropRate: 1}})
	e := dial(t, sim, smpp.Config{ResponseTimeout: 300 * time.Millisecond})
	_, err := e.Submit(testCtx(t), gsm("4915112345678", "dropped", 1))
	if !errors.Is(err, smpp.ErrResponseTimeout) {
		t.Fatalf("dropped response: %v", err)
	}
	// The message was taken all the same, and its receipt comes.
	m, _ := sim.WaitForMessage(testCtx(t), Filter{To: "4915112345678"})
	if r, _ := e.receipt(t); r.ID != m.ID {
		t.Fatalf("receipt %s for %s", r.ID, m.ID)
	}
	sim.SetFaults(Faults{DelayRate: 1, ResponseDelay: Delay{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	e2 := dial(t, sim, smpp.Config{})
	id := submit(t, e2, gsm("4915100000001", "delayed", 0))
	if _, ok := sim.Message(id); !ok {
		t.Fatal("delayed submit not stored")
	}
	if faultCount(t, sim, faultDrop) != "1" || faultCount(t, sim, faultDelay) != "1" {
		t.Errorf("drop %s delay %s", faultCount(t, sim, faultDrop), faultCount(t, sim, faultDelay))
	}
}

func TestFaultDisconnect(t *testing.T) {
	sim := startSim(t, Config{Faults: Faults{DisconnectAfter: 3}})
	e := dial(t, sim, smpp.Config{})
	for i := 0; i < 3; i++ {
		submit(t, e, gsm("491", "x", 0))
	}
	if _, err := e.Submit(testCtx(t), gsm("491", "x", 0)); !smpp.IsUncertain(err) {
		t.Fatalf("4th submit: %v, want the link lost", err)
	}
	<-e.Done()
	sim.SetFaults(Faults{DisconnectRate: 1})
	e2 := dial(t, sim, smpp.Config{})
	if _, err := e2.Submit(testCtx(t), gsm("491", "x", 0)); !smpp.IsUncertain(err) {
		t.Fatalf("submit: %v, want the link lost", err)
	}
	if got := faultCount(t, sim, faultDisconnect); got != "2" {
		t.Errorf("disconnects counted %s", got)
	}
}

func TestFaultReceipts(t *testing.T) {
	sim := startSim(t, Config{Faults: Faults{DuplicateReceiptRate: 1, ReceiptDelay: Delay{Min: time.Millisecond, Max: 2 * time.Millisecond}}})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("491", "x", 1))
	for i := 0; i < 2; i++ {
		if r, _ := e.receipt(t); r.ID != id {
			t.Fatalf("receipt %d: %s", i, r.ID)
		}
	}
	sim.SetFaults(Faults{})
	sentinel := submit(t, e, gsm("491", "y", 1))
	if r, _ := e.receipt(t); r.ID != sentinel {
		t.Fatalf("a third receipt for %s", r.ID)
	}
	if faultCount(t, sim, faultReceiptDuplicate) != "1" || faultCount(t, sim, faultReceiptDelay) != "1" {
		t.Errorf("duplicate %s delay %s", faultCount(t, sim, faultReceiptDuplicate), faultCount(t, sim, faultReceiptDelay))
	}
}

func TestHTTPAPI(t *testing.T) {
	sim := startSim(t, Config{HTTPAddr: "127.0.0.1:0"})
	e := dial(t, sim, smpp.Config{})
	id1 := submit(t, e, gsm("4915100000001", "one", 1))
	submit(t, e, gsm("4915100000002", "two", 0))
	h := sim.Handler()

	var list struct{ Messages []Message }
	if code := do(t, h, "GET", "/api/messages", "", &list); code != 200 || len(list.Messages) != 2 || list.Messages[0].Text != "two" {
		t.Fatalf("list: %d %+v", code, list)
	}
	do(t, h, "GET", "/api/messages?to=%2B4915100000001&system_id=otp", "", &list)
	if len(list.Messages) != 1 || list.Messages[0].ID != id1 {
		t.Fatalf("filtered: %+v", list)
	}
	do(t, h, "GET", "/api/messages?from=OTPD&limit=1", "", &list)
	if len(list.Messages) != 1 {
		t.Fatalf("limit: %+v", list)
	}
	do(t, h, "GET", "/api/messages?system_id=nobody", "", &list)
	if list.Messages == nil || len(list.Messages) != 0 {
		t.Fatalf("no match: %+v", list)
	}
	e.receipt(t)
	waitFor(t, "the receipt acknowledged", func() bool {
		m, _ := sim.Message(id1)
		return m.Receipt != nil && m.Receipt.Delivered
	})
	var raw map[string]any
	if code := do(t, h, "GET", "/api/messages/"+id1, "", &raw); code != 200 {
		t.Fatalf("get: %d", code)
	}
	for _, k := range []string{"id", "system_id", "from", "to", "text", "data_coding", "segments", "received_at", "receipt"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("message JSON without %q: %v", k, raw)
		}
	}
	rc := raw["receipt"].(map[string]any)
	if rc["stat"] != "DELIVRD" || rc["err"] != "000" || rc["sent_at"] == "" {
		t.Errorf("receipt JSON %v", rc)
	}

	type apiErr struct {
		Error struct{ Code, Message string }
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/api/messages/424242", "", 404, "not_found"},
		{"GET", "/api/messages?limit=x", "", 400, "invalid_limit"},
		{"GET", "/api/messages?limit=-1", "", 400, "invalid_limit"},
		{"GET", "/api/messages?wait=soon", "", 400, "invalid_wait"},
		{"GET", "/api/messages?wait=2m", "", 400, "invalid_wait"},
		{"POST", "/api/messages", "", 405, "method_not_allowed"},
		{"PUT", "/api/faults", `{"drop_rate": 2}`, 400, "invalid_faults"},
		{"PUT", "/api/faults", `{"drop_rate": "x"}`, 400, "invalid_json"},
		{"PUT", "/api/faults", `{"nope": 1}`, 400, "invalid_json"},
		{"PUT", "/api/faults", `{"error_status": "ESME_NOPE"}`, 400, "invalid_json"},
		{"PUT", "/api/faults", `{"response_delay": "5s-1s"}`, 400, "invalid_json"},
		{"PUT", "/api/faults", `{} {}`, 400, "invalid_json"},
		{"POST", "/api/mo", `{`, 400, "invalid_json"},
		{"GET", "/nope", "", 404, "not_found"},
	} {
		var ae apiErr
		if status := do(t, h, c.method, c.path, c.body, &ae); status != c.status || ae.Error.Code != c.code || ae.Error.Message == "" {
			t.Errorf("%s %s %s: %d %+v, want %d %s", c.method, c.path, c.body, status, ae, c.status, c.code)
		}
	}

	var f Faults
	do(t, h, "PUT", "/api/faults", `{"error_rate":0.5,"error_status":"ESME_RSUBMITFAIL","response_delay":"1s-2s","disconnect_after":7}`, &f)
	if f.ErrorRate != 0.5 || smpp.CommandStatus(f.ErrorStatus) != smpp.ESME_RSUBMITFAIL || f.ResponseDelay.Max != 2*time.Second || f.DisconnectAfter != 7 {
		t.Fatalf("faults %+v", f)
	}
	do(t, h, "PATCH", "/api/faults", `{"drop_rate":0.25}`, &f)
	if f.ErrorRate != 0.5 || f.DropRate != 0.25 {
		t.Fatalf("patched faults %+v", f)
	}
	var got map[string]any
	do(t, h, "GET", "/api/faults", "", &got)
	if got["error_status"] != "ESME_RSUBMITFAIL" || got["response_delay"] != "1s-2s" {
		t.Fatalf("GET /api/faults %v", got)
	}
	do(t, h, "PUT", "/api/faults", `{}`, &f)

	var sessions struct{ Sessions []SessionInfo }
	if code := do(t, h, "GET", "/api/sessions", "", &sessions); code != 200 || len(sessions.Sessions) != 1 || sessions.Sessions[0].SystemID != "otp" || sessions.Sessions[0].Submits != 2 {
		t.Fatalf("sessions %d %+v", code, sessions)
	}
	var health map[string]string
	if code := do(t, h, "GET", "/healthz", "", &health); code != 200 || health["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, health)
	}
	if m := metricsText(t, sim); !strings.Contains(m, "smscsim_messages_total 2") || !strings.Contains(m, `smscsim_requests_total{command="submit_sm"} 2`) {
		t.Fatalf("metrics:\n%s", m)
	}
	if code := do(t, h, "DELETE", "/api/messages", "", &got); code != 200 || len(sim.Messages(Filter{})) != 0 {
		t.Fatalf("DELETE: %d", code)
	}

	// The real listener serves the same.
	resp, err := http.Get("http://" + sim.HTTPAddr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("real listener: %v", err)
	}
	resp.Body.Close()
}

func TestCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	sim, err := Start(Config{SMPPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DLRDelay: Delay{Min: time.Hour, Max: time.Hour},
		Faults: Faults{DelayRate: 1, ResponseDelay: Delay{Min: time.Hour, Max: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := smpp.Dial(context.Background(), sim.Addr(), smpp.Config{SystemID: "otp", ResponseTimeout: hang})
	if err != nil {
		t.Fatal(err)
	}
	s.Go(context.Background(), gsm("491", "x", 1), nil) // its response held for an hour
	waitFor(t, "the submit stored", func() bool { return len(sim.Messages(Filter{})) == 1 })
	if err := sim.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	<-s.Done() // the simulator unbound it
	s.Close(context.Background())
	waitFor(t, "every goroutine to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestHTTPMessagesWait: GET /api/messages?to=...&wait= blocks until the
// SMS to that number arrives (a CI job's way to read its OTP), and answers
// the empty list when the time is up.
func TestHTTPMessagesWait(t *testing.T) {
	sim := startSim(t, Config{HTTPAddr: "127.0.0.1:0", Retention: 4})
	e := dial(t, sim, smpp.Config{})
	h := sim.Handler()

	type list struct{ Messages []Message }
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/messages?to=%2B4915100000077&wait=20s", nil))
		got <- w
	}()
	waitFor(t, "the request waiting for +4915100000077", func() bool {
		sim.st.mu.Lock()
		defer sim.st.mu.Unlock()
		return sim.st.waits["4915100000077"] != nil
	})
	submit(t, e, gsm("4915100000078", "not this one", 0))
	select {
	case w := <-got:
		t.Fatalf("answered before the SMS to the number came: %d %s", w.Code, w.Body)
	case <-time.After(50 * time.Millisecond):
	}
	id := submit(t, e, gsm("4915100000077", "your code is 123456", 0))
	select {
	case w := <-got:
		var l list
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || w.Code != 200 || len(l.Messages) != 1 || l.Messages[0].ID != id || l.Messages[0].Text != "your code is 123456" {
			t.Fatalf("waited for %s, got %d %s (%v)", id, w.Code, w.Body, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request did not return when the SMS came")
	}
	sim.st.mu.Lock()
	left := len(sim.st.waits)
	sim.st.mu.Unlock()
	if left != 0 {
		t.Errorf("%d wait sets left after the request returned", left)
	}

	var l list
	if code := do(t, h, "GET", "/api/messages?to=4915100000099&wait=30ms", "", &l); code != 200 || l.Messages == nil || len(l.Messages) != 0 {
		t.Fatalf("time up: %d %+v, want 200 and an empty list", code, l)
	}

	// Retention 4: older messages to a number leave its index with the ring.
	for i := range 6 {
		submit(t, e, gsm("4915100000077", fmt.Sprint("again ", i), 0))
	}
	do(t, h, "GET", "/api/messages?to=4915100000077", "", &l)
	if len(l.Messages) != 4 || l.Messages[0].Text != "again 5" || l.Messages[3].Text != "again 2" {
		t.Fatalf("after the ring dropped the oldest: %+v", l)
	}
	sim.st.mu.Lock()
	n := len(sim.st.byTo["4915100000077"]) + len(sim.st.byTo["4915100000078"])
	sim.st.mu.Unlock()
	if n != 4 {
		t.Errorf("index holds %d messages for the two numbers, want the 4 the ring keeps", n)
	}
}

// TestMaxPendingReceipts: receipts owed and not yet acknowledged are
// bounded per system_id: beyond the bound a submit asking for a receipt is
// refused with ESME_RMSGQFUL (none without, and no other account's), and
// no receipt of an accepted message is lost.
func TestMaxPendingReceipts(t *testing.T) {
	sim := startSim(t, Config{DLRDelay: Delay{Min: time.Hour, Max: time.Hour}, MaxPendingReceipts: 5})
	e := dial(t, sim, smpp.Config{})
	for i := range 8 {
		st := submitStatus(t, e, gsm(fmt.Sprintf("49151000001%02d", i), "code", 1))
		if want := map[bool]smpp.CommandStatus{true: smpp.ESME_ROK, false: smpp.ESME_RMSGQFUL}[i < 5]; st != want {
			t.Errorf("submit %d: %v, want %v", i, st, want)
		}
	}
	if st := submitStatus(t, e, gsm("4915100000190", "no receipt asked", 0)); st != smpp.ESME_ROK {
		t.Errorf("a submit without a receipt while the queue is full: %v", st)
	}
	if got := sim.sched.pending.Load(); got != 5 {
		t.Errorf("%d receipts pending, want the 5 allowed", got)
	}
	if got := counterValue(sim.metrics.receiptQueueFull); got != 3 {
		t.Errorf("%v submits counted as refused, want 3", got)
	}
	other := dial(t, sim, smpp.Config{SystemID: "other"})
	if st := submitStatus(t, other, gsm("4915100000200", "code", 1)); st != smpp.ESME_ROK {
		t.Errorf("another account's submit: %v", st)
	}
	if got := counterValue(sim.metrics.receiptsDropped); got != 0 {
		t.Errorf("%v receipts dropped", got)
	}

	// Pending goes back down as receipts are acknowledged.
	fast := startSim(t, Config{MaxPendingReceipts: 2})
	fe := dial(t, fast, smpp.Config{})
	for round := range 3 {
		for i := range 2 {
			submit(t, fe, gsm(fmt.Sprintf("4915100000%d%02d", 3+round, i), "code", 1))
		}
		fe.receipt(t)
		fe.receipt(t)
		waitFor(t, "both receipts acknowledged", func() bool { return fast.sched.pending.Load() == 0 })
	}
	if got := counterValue(fast.metrics.receiptsDropped); got != 0 {
		t.Errorf("%v receipts dropped though each round stayed within the bound", got)
	}

	if s, err := Start(Config{SMPPAddr: "127.0.0.1:0", MaxPendingReceipts: -1}); err == nil {
		s.Close(context.Background())
		t.Error("a negative max pending receipts was accepted")
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestCloseEndsLongPolls: Close does not wait for a long poll to time out.
func TestCloseEndsLongPolls(t *testing.T) {
	sim, err := Start(Config{SMPPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + sim.HTTPAddr() + "/api/messages?to=4915100000001&wait=50s")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the long poll waiting", func() bool {
		sim.st.mu.Lock()
		defer sim.st.mu.Unlock()
		return len(sim.st.waits) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sim.Close(ctx); err != nil {
		t.Fatalf("Close with a long poll waiting: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the long poll: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll still waits after Close")
	}
}
