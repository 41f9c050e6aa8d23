package simulator

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

// TestSinceCursor is the stale-read case: a second code to the same
// number. wait without since answers the first at once (the contract
// kept); with the cursor taken before the send it is always the second.
func TestSinceCursor(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	h := sim.Handler()
	const to = "4915100000301"

	var m Message
	if code := do(t, h, "GET", "/api/messages/latest?to="+to, "", &struct{}{}); code != 404 {
		t.Fatalf("latest with no message: %d, want 404", code)
	}
	first := submit(t, e, gsm(to, "code 111111", 0))
	if code := do(t, h, "GET", "/api/messages/latest?to=%2B"+to, "", &m); code != 200 || m.ID != first {
		t.Fatalf("latest: %d %+v, want %s", code, m, first)
	}
	// The documented pitfall: wait returns what exists.
	var l struct{ Messages []Message }
	do(t, h, "GET", "/api/messages?to="+to+"&wait=10s", "", &l)
	if len(l.Messages) != 1 || l.Messages[0].ID != first {
		t.Fatalf("wait without since: %+v", l)
	}

	// The pattern: cursor, send, wait since the cursor.
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/messages/latest?to="+to+"&since="+first+"&wait=20s", nil))
		got <- w
	}()
	waitFor(t, "the long poll", func() bool {
		sim.st.mu.Lock()
		defer sim.st.mu.Unlock()
		return sim.st.waits[to] != nil
	})
	select {
	case w := <-got:
		t.Fatalf("answered before the second SMS: %d %s", w.Code, w.Body)
	default:
	}
	second := submit(t, e, gsm(to, "code 222222", 0))
	w := <-got
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 || m.ID != second || m.Code != "222222" {
		t.Fatalf("since the first: %d %s, want %s", w.Code, w.Body, second)
	}
	m, err := sim.WaitForMessage(testCtx(t), Filter{To: to, SinceID: first})
	if err != nil || m.ID != second {
		t.Fatalf("WaitForMessage since the first: %+v %v", m, err)
	}
	do(t, h, "GET", "/api/messages?to="+to+"&since="+first, "", &l)
	if len(l.Messages) != 1 || l.Messages[0].ID != second {
		t.Fatalf("list since the first: %+v", l)
	}
	// A cursor that is gone (deleted) still orders by its number.
	if err := sim.DeleteMessage(first); err != nil {
		t.Fatal(err)
	}
	do(t, h, "GET", "/api/messages?to="+to+"&since="+first, "", &l)
	if len(l.Messages) != 1 || l.Messages[0].ID != second {
		t.Fatalf("list since a deleted cursor: %+v", l)
	}
	// since a time: received after it.
	mid := time.Now()
	third := submit(t, e, gsm(to, "code 333333", 0))
	do(t, h, "GET", "/api/messages?to="+to+"&since="+url.QueryEscape(mid.Format(time.RFC3339Nano)), "", &l)
	if len(l.Messages) != 1 || l.Messages[0].ID != third {
		t.Fatalf("list since %s: %+v", mid, l)
	}
	for _, q := range []string{"since=yesterday", "since=12ab", "wait=2m", "limit=-1"} {
		var er struct{ Error apiError }
		if code := do(t, h, "GET", "/api/messages/latest?to="+to+"&"+q, "", &er); code != 400 || er.Error.Message == "" {
			t.Errorf("%s: %d %+v, want 400 with a message", q, code, er)
		}
	}
	if code := do(t, h, "GET", "/api/messages/latest?to="+to+"&since="+third+"&wait=20ms", "", &struct{}{}); code != 404 {
		t.Errorf("latest since the newest, time up: %d, want 404", code)
	}
}

// TestLatestByCompletion: a concatenated message that started before the
// cursor and completed after it is after the cursor.
func TestLatestByCompletion(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	const to = "4915100000302"
	parts, err := smpp.SplitSubmit(gsm(to, "", 0), strings.Repeat("long code 424242 ", 12), coding.SplitOptions{Auto: true, Method: coding.ConcatUDH8, Ref: 7})
	if err != nil || len(parts) < 2 {
		t.Fatal(len(parts), err)
	}
	submit(t, e, parts[0])
	cursor := submit(t, e, gsm(to, "short 111111", 0))
	for _, p := range parts[1:] {
		submit(t, e, p)
	}
	m, err := sim.WaitForMessage(testCtx(t), Filter{To: to, SinceID: cursor})
	if err != nil || m.Segments != len(parts) || m.Code != "424242" {
		t.Fatalf("after the cursor: %+v %v, want the long message", m, err)
	}
	if l, ok := sim.Latest(Filter{To: to}); !ok || l.ID != m.ID {
		t.Fatalf("latest: %+v, want the long message %s", l, m.ID)
	}
}

func TestFindCodes(t *testing.T) {
	re := regexp.MustCompile(`code: ([A-Z0-9]{6})`)
	cases := []struct {
		text string
		re   *regexp.Regexp
		want []string
	}{
		{"", nil, []string{}},
		{"Your code is 123456.", nil, []string{"123456"}},
		{"123 4567 12345678901 0123456789", nil, []string{"4567", "0123456789"}},
		{"+4915112345678 sent 8888, again 8888", nil, []string{"8888"}},
		{"G-483920 is your Google code", nil, []string{"483920"}},
		{"code: AB12CD, or 4242", re, []string{"AB12CD", "4242"}},
		{"code: 123456", re, []string{"123456"}},
		{"Код: ٤٥٦٧ 9876", nil, []string{"9876"}},
	}
	for _, c := range cases {
		if got := findCodes(c.text, c.re); !slices.Equal(got, c.want) || got == nil {
			t.Errorf("findCodes(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	// Whole-match pattern (no group), and the pattern in the message JSON.
	sim := startSim(t, Config{CodePattern: `[A-Z]{3}-[0-9]{3}`})
	e := dial(t, sim, smpp.Config{})
	submit(t, e, gsm("4915100000303", "Use XKQ-123 or 5555", 0))
	var l struct{ Messages []map[string]any }
	do(t, sim.Handler(), "GET", "/api/messages?to=4915100000303", "", &l)
	if len(l.Messages) != 1 || fmt.Sprint(l.Messages[0]["codes"]) != "[XKQ-123 5555]" || l.Messages[0]["code"] != "XKQ-123" {
		t.Fatalf("message JSON: %+v", l.Messages)
	}
	if _, err := Start(Config{SMPPAddr: "127.0.0.1:0", CodePattern: "(["}); err == nil || !strings.Contains(err.Error(), "code pattern") {
		t.Errorf("a bad pattern: %v", err)
	}
}

// TestManualReceipts: with DLR mode manual no receipt goes out until one
// is asked for; the one asked for carries the chosen stat and err.
func TestManualReceipts(t *testing.T) {
	sim := startSim(t, Config{DLRMode: "manual"})
	e := dial(t, sim, smpp.Config{})
	h := sim.Handler()
	id := submit(t, e, gsm("4915100000304", "code 123456", 1))
	q, err := e.Send(testCtx(t), &smpp.QuerySM{MessageID: id})
	if err != nil || q.(*smpp.QuerySMResp).MessageState != smpp.MessageState(dlr.Enroute) {
		t.Fatalf("query_sm of a held message: %+v %v", q, err)
	}
	var m Message
	do(t, h, "GET", "/api/messages/"+id, "", &m)
	if !m.Held || m.State != "ENROUTE" || m.Receipt != nil {
		t.Fatalf("held message: %+v", m)
	}
	if n := sim.sched.pending.Load(); n != 0 {
		t.Fatalf("%d receipts pending in manual mode", n)
	}
	e.none(t)

	var sr ScheduledReceipt
	if code := do(t, h, "POST", "/api/messages/"+id+"/receipt", `{"stat":"UNDELIV","err":"013"}`, &sr); code != 202 || sr.Stat != "UNDELIV" || sr.Err != "013" {
		t.Fatalf("POST receipt: %d %+v", code, sr)
	}
	r, _ := e.receipt(t)
	if r.ID != id || r.State != dlr.Undeliverable || r.Err != "013" {
		t.Fatalf("receipt: %+v", r)
	}
	waitFor(t, "the receipt acknowledged", func() bool { m, _ := sim.Message(id); return m.Receipt != nil && m.Receipt.Delivered })
	m = Message{}
	do(t, h, "GET", "/api/messages/"+id, "", &m)
	if m.Held || m.State != "UNDELIVERABLE" || m.Receipt.Stat != "UNDELIV" {
		t.Fatalf("after the receipt: %+v", m)
	}
	// A second one with a delay and the default err.
	if code := do(t, h, "POST", "/api/messages/"+id+"/receipt", `{"stat":"delivrd","delay":"10ms"}`, &sr); code != 202 || sr.Err != "000" {
		t.Fatalf("POST receipt again: %d %+v", code, sr)
	}
	if r, _ := e.receipt(t); r.State != dlr.Delivered {
		t.Fatalf("second receipt: %+v", r)
	}
	var er struct{ Error apiError }
	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/api/messages/" + id + "/receipt", `{"stat":"GREAT"}`, 400},
		{"/api/messages/" + id + "/receipt", `{"stat":"DELIVRD","err":"1234"}`, 400},
		{"/api/messages/" + id + "/receipt", `{"delay":"soon"}`, 400},
		{"/api/messages/" + id + "/receipt", `{"stats":"DELIVRD"}`, 400},
		{"/api/messages/999/receipt", `{}`, 404},
	} {
		if code := do(t, h, "POST", c.path, c.body, &er); code != c.code || er.Error.Message == "" {
			t.Errorf("POST %s %s: %d %+v, want %d", c.path, c.body, code, er, c.code)
		}
	}
	if _, err := Start(Config{SMPPAddr: "127.0.0.1:0", DLRMode: "later"}); err == nil {
		t.Error("DLR mode later accepted")
	}
}

// TestReceiptSupersedesAuto: a receipt asked for replaces the one the
// message still owed; that one is never sent.
func TestReceiptSupersedesAuto(t *testing.T) {
	sim := startSim(t, Config{DLRDelay: Delay{Min: 200 * time.Millisecond, Max: 200 * time.Millisecond}})
	e := dial(t, sim, smpp.Config{})
	id := submit(t, e, gsm("4915100000305", "code 123456", 1))
	if _, err := sim.SendReceipt(id, ReceiptRequest{Stat: "EXPIRED"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.receipt(t); r.State != dlr.Expired || r.Err != "002" {
		t.Fatalf("receipt: %+v", r)
	}
	// Once the owed one's time has come and gone nothing is pending.
	waitFor(t, "no receipt pending", func() bool { return sim.sched.pending.Load() == 0 })
	e.none(t)
	if m, _ := sim.Message(id); m.Receipt == nil || m.Receipt.Attempts != 1 || m.State != "EXPIRED" {
		t.Fatalf("message: %+v", m)
	}
}

func TestDeleteMessagesAndNamespaces(t *testing.T) {
	sim := startSim(t, Config{})
	a := dial(t, sim, smpp.Config{SystemID: "job-a"})
	b := dial(t, sim, smpp.Config{SystemID: "job-b"})
	h := sim.Handler()
	const to = "4915100000306"
	ida := submit(t, a, gsm(to, "a 111111", 0))
	idb := submit(t, b, gsm(to, "b 222222", 0))
	var m Message
	if do(t, h, "GET", "/api/messages/latest?to="+to+"&system_id=job-a", "", &m); m.ID != ida {
		t.Fatalf("latest of job-a: %+v", m)
	}
	if do(t, h, "GET", "/api/messages/latest?to="+to+"&system_id=job-b", "", &m); m.ID != idb {
		t.Fatalf("latest of job-b: %+v", m)
	}
	var del struct{ Deleted int }
	if code := do(t, h, "DELETE", "/api/messages?system_id=job-a", "", &del); code != 200 || del.Deleted != 1 {
		t.Fatalf("delete job-a's: %d %+v", code, del)
	}
	if ms := sim.Messages(Filter{To: to}); len(ms) != 1 || ms[0].ID != idb {
		t.Fatalf("after deleting job-a's: %+v", ms)
	}
	if code := do(t, h, "DELETE", "/api/messages/"+idb, "", &del); code != 200 {
		t.Fatalf("delete one: %d", code)
	}
	if code := do(t, h, "GET", "/api/messages/"+idb, "", &struct{}{}); code != 404 {
		t.Fatalf("GET a deleted message: %d", code)
	}
	if code := do(t, h, "DELETE", "/api/messages/"+idb, "", &struct{}{}); code != 404 {
		t.Fatalf("DELETE it again: %d", code)
	}
	if ms := sim.Messages(Filter{}); len(ms) != 0 {
		t.Fatalf("left: %+v", ms)
	}
	// The ring reuses a deleted message's slot without counting a drop.
	small := startSim(t, Config{Retention: 2})
	c := dial(t, small, smpp.Config{})
	for i := range 5 {
		id := submit(t, c, gsm(to, fmt.Sprint("n ", i), 0))
		if i%2 == 0 {
			small.DeleteMessage(id)
		}
	}
	if ms := small.Messages(Filter{}); len(ms) != 1 || ms[0].Text != "n 3" {
		t.Fatalf("ring with deletions: %+v", ms)
	}
	if !strings.Contains(metricsText(t, small), "smscsim_messages_dropped_total 1") {
		t.Errorf("drops: want 1 (n 1), deleted ones not counted:\n%s", metricsText(t, small))
	}
}

func TestCloseSession(t *testing.T) {
	sim := startSim(t, Config{})
	a := dial(t, sim, smpp.Config{SystemID: "job-a"})
	b := dial(t, sim, smpp.Config{SystemID: "job-b"})
	h := sim.Handler()
	var l struct{ Sessions []SessionInfo }
	do(t, h, "GET", "/api/sessions?system_id=job-a", "", &l)
	if len(l.Sessions) != 1 || l.Sessions[0].ID == "" || l.Sessions[0].SystemID != "job-a" {
		t.Fatalf("job-a's sessions: %+v", l)
	}
	var st struct{ Status string }
	if code := do(t, h, "DELETE", "/api/sessions/"+l.Sessions[0].ID, "", &st); code != 200 || st.Status != "unbound" {
		t.Fatalf("DELETE: %d %+v", code, st)
	}
	select {
	case <-a.Done():
	case <-time.After(hang):
		t.Fatal("the session did not end")
	}
	do(t, h, "GET", "/api/sessions?system_id=job-b", "", &l)
	if !b.Bound() || len(l.Sessions) != 1 {
		t.Fatalf("job-b's session: %+v", l)
	}
	if code := do(t, h, "DELETE", "/api/sessions/"+l.Sessions[0].ID+"?abrupt=1", "", &st); code != 200 || st.Status != "cut" {
		t.Fatalf("DELETE abrupt: %d %+v", code, st)
	}
	<-b.Done()
	// The client sees the link end before the server has forgotten the
	// session: wait (bounded) for the server's side.
	for deadline := time.Now().Add(hang); ; time.Sleep(5 * time.Millisecond) {
		code := do(t, h, "DELETE", "/api/sessions/"+l.Sessions[0].ID, "", &st)
		if code == 404 {
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("DELETE a gone session: %d", code)
		}
	}
}

// sse reads server-sent events from an HTTP stream.
type sse struct {
	r    *bufio.Reader
	resp *http.Response
}

func openEvents(t testing.TB, url string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sse{r: bufio.NewReader(resp.Body), resp: resp}
	if line, err := s.r.ReadString('\n'); err != nil || line != ": subscribed\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	return s
}

// next returns the next event's type and message.
func (s *sse) next(t testing.TB) (string, Message) {
	t.Helper()
	var typ string
	var m Message
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimSpace(line[7:])
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &m); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		case line == "\n" && typ != "":
			return typ, m
		}
	}
}

func TestEvents(t *testing.T) {
	sim := startSim(t, Config{HTTPAddr: "127.0.0.1:0"})
	a := dial(t, sim, smpp.Config{SystemID: "job-a"})
	b := dial(t, sim, smpp.Config{SystemID: "job-b"})
	ev := openEvents(t, "http://"+sim.HTTPAddr()+"/api/events?system_id=job-a")
	submit(t, b, gsm("4915100000307", "not for a 999999", 1))
	id := submit(t, a, gsm("4915100000307", "for a 123456", 1))
	typ, m := ev.next(t)
	if typ != EventMessage || m.ID != id || m.SystemID != "job-a" || m.Code != "123456" {
		t.Fatalf("first event %s %+v", typ, m)
	}
	typ, m = ev.next(t)
	if typ != EventReceipt || m.ID != id || m.Receipt == nil || m.Receipt.Stat != "DELIVRD" {
		t.Fatalf("second event %s %+v", typ, m)
	}
	// Close ends the stream.
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := sim.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.r.ReadString('\n'); err == nil {
		if _, err := ev.r.ReadString('\n'); err == nil {
			t.Fatal("the stream went on after Close")
		}
	}
}

// TestSlowSubscriberDropped: a subscriber that stops reading loses its
// subscription, not the submits their speed.
func TestSlowSubscriberDropped(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	ch, cancel := sim.Subscribe(Filter{}, 2)
	defer cancel()
	for i := range 4 {
		submit(t, e, gsm("4915100000308", fmt.Sprint("m ", i), 0))
	}
	n := 0
	for range ch {
		n++
	}
	if n != 2 || sim.hub.active() {
		t.Fatalf("%d events before the close, active %v; want 2, false", n, sim.hub.active())
	}
}

// TestDetailPDUs: one message's detail carries each segment's PDU, which
// decodes to what was submitted; lists leave them out.
func TestDetailPDUs(t *testing.T) {
	sim := startSim(t, Config{})
	e := dial(t, sim, smpp.Config{})
	const to = "4915100000309"
	parts, err := smpp.SplitSubmit(gsm(to, "", 1), strings.Repeat("segmented 123456 ", 12), coding.SplitOptions{Auto: true, Method: coding.ConcatUDH8, Ref: 9})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for i, p := range parts {
		if got := submit(t, e, p); i == 0 {
			id = got
		}
	}
	var m Message
	do(t, sim.Handler(), "GET", "/api/messages/"+id, "", &m)
	if len(m.PDUs) != len(parts) {
		t.Fatalf("%d PDUs, want %d", len(m.PDUs), len(parts))
	}
	for i, h := range m.PDUs {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		p, err := smpp.Decode(b)
		if err != nil {
			t.Fatalf("PDU %d: %v", i, err)
		}
		s, ok := p.(*smpp.SubmitSM)
		if !ok || s.DestinationAddr != to || string(s.ShortMessage) != string(parts[i].ShortMessage) {
			t.Fatalf("PDU %d: %+v", i, p)
		}
	}
	var l struct{ Messages []Message }
	do(t, sim.Handler(), "GET", "/api/messages?to="+to, "", &l)
	if len(l.Messages) != 1 || l.Messages[0].PDUs != nil {
		t.Fatalf("list: %+v", l)
	}
}

// TestInboxPage: the page and its assets come with a content security
// policy that allows only the page's own files; the API's 404 stays JSON.
func TestInboxPage(t *testing.T) {
	sim := startSim(t, Config{})
	h := sim.Handler()
	for _, c := range []struct{ path, ctype, body string }{
		{"/", "text/html", `<script src="/static/app.js"`},
		{"/static/app.js", "javascript", "EventSource"},
		{"/static/app.css", "text/css", "mark"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
		csp := w.Header().Get("Content-Security-Policy")
		if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), c.ctype) || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("GET %s: %d %s", c.path, w.Code, w.Header().Get("Content-Type"))
		}
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
	}
	// Nothing inline that the policy would block, nothing from elsewhere.
	page, _ := inboxFS.ReadFile("inbox/index.html")
	if regexp.MustCompile(`<script>|<style|style="|\son[a-z]+="|https?://`).Match(page) {
		t.Error("index.html has inline script or style, or a link elsewhere")
	}
	for _, p := range []string{"/static/", "/static/index.html", "/nope"} {
		var er struct{ Error apiError }
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
		if p == "/nope" && (json.Unmarshal(w.Body.Bytes(), &er) != nil || er.Error.Code != "not_found") {
			t.Errorf("GET /nope: %s", w.Body)
		}
	}
}
