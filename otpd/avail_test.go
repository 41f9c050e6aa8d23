package otpd

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// nParams is how many arguments a statement binds.
func nParams(q string) int {
	if m := regexp.MustCompile(`\?(\d+)`).FindAllStringSubmatch(q, -1); len(m) > 0 {
		n := 0
		for _, x := range m {
			var v int
			fmt.Sscan(x[1], &v)
			n = max(n, v)
		}
		return n
	}
	return strings.Count(q, "?")
}

// notHot are statements off every hot path, which may scan: startup's
// count of orphans, check for data and load of the open callbacks, the key
// list.
var notHot = []string{
	`SELECT c.message_id FROM callbacks c`,
	`SELECT COUNT(*) FROM orphan_receipts`,
	`SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM challenges LIMIT 1))`,
	`FROM api_keys ORDER BY created_at`,
}

// planWorkload runs every kind of request, receipt, resend, lease
// reclaim and the retention sweep, and returns each statement the store
// ran (as sent to the engine), bar the transaction's own.
func planWorkload(t *testing.T) (*Daemon, []string) {
	// auto: a receipt's id is looked up in every reading (hex, decimal),
	// as with a real SMSC.
	d := testDaemon(t, func(c *Config) { c.SMSC.MessageIDFormat = "auto" })
	seen := &sync.Map{}
	d.store.seen.Store(seen)
	c := newClient(t, d)
	start := time.Now()
	id := create(t, c, "+4915112340100")
	code := smsCode(t, d, "+4915112340100", start)
	c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": "000000"})
	c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code})
	id2 := create(t, c, "+4915112340101")
	create(t, c, "+4915112340101") // supersedes id2
	c.do("GET", "/v1/otp/"+id2, nil)
	waitState(t, c, id, "delivered")
	d.svc.skew.Store(int64(time.Minute))
	c.do("POST", "/v1/otp/"+create(t, c, "+4915112340102")+"/resend", nil)
	_, m, _ := c.do("POST", "/v1/messages", map[string]any{"to": "+4915112340103", "text": "hi"})
	c.do("GET", "/v1/messages/"+m["id"].(string), nil)
	d.svc.ApplyReceipt(context.Background(), smpp.Receipt{Receipt: dlr.Receipt{ID: "99999", Stat: "DELIVRD", State: dlr.Delivered}})
	d.svc.ApplyReceipt(context.Background(), smpp.Receipt{Receipt: dlr.Receipt{ID: "1a2b", Stat: "DELIVRD", State: dlr.Delivered}})
	d.sender.reclaimLeases()
	CreateKey(context.Background(), d.store, "k", "")
	d.svc.LookupKey(context.Background(), "otpd_nope")
	d.svc.keyByID(context.Background(), "key_nope")
	d.svc.skew.Store(int64(31 * 24 * time.Hour))
	d.sender.sweep()
	var qs []string
	seen.Range(func(k, _ any) bool {
		q := k.(string)
		for _, p := range []string{"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"} {
			if strings.HasPrefix(q, p) {
				return true
			}
		}
		qs = append(qs, q)
		return true
	})
	if len(qs) < 25 {
		t.Fatalf("only %d statements recorded: the workload missed paths", len(qs))
	}
	return d, qs
}

// hot says whether q is on a hot path (not one of notHot).
func hot(q string) bool {
	for _, ok := range notHot {
		if strings.Contains(q, ok) {
			return false
		}
	}
	return true
}

// TestQueryPlans checks the plan of every statement of planWorkload on
// SQLite: no full scan of a table.
func TestQueryPlans(t *testing.T) {
	if testOnPostgres() {
		t.Skip("SQLite's query plans; TestQueryPlansPostgres checks PostgreSQL's")
	}
	d, qs := planWorkload(t)
	for _, q := range qs {
		if !hot(q) {
			continue
		}
		rows, err := d.store.rdb.Query(`EXPLAIN QUERY PLAN `+q, make([]any, nParams(q))...)
		if err != nil {
			t.Errorf("explain %s: %v", q, err)
			continue
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
			if strings.HasPrefix(detail, "SCAN ") && !strings.Contains(detail, "USING INDEX") && !strings.Contains(detail, "USING COVERING INDEX") &&
				!strings.HasPrefix(detail, "SCAN CONSTANT ROW") {
				t.Errorf("full scan in %s:\n  %s", q, detail)
			}
		}
		rows.Close()
		t.Logf("%s\n    %s", strings.Join(strings.Fields(q), " "), strings.Join(plan, "\n    "))
	}
}

// pgHotTables grow with the traffic: a hot statement that scans one
// slows every OTP down as it grows.
var pgHotTables = regexp.MustCompile(`Seq Scan on (challenges|messages|segments|orphan_receipts|callbacks|callback_queue|rate_buckets|phone_failures)\b`)

// TestQueryPlansPostgres checks the generic plan of every statement of
// planWorkload on PostgreSQL, on tables as small as a new store's: the
// store prepares its statements, and PostgreSQL keeps the generic plan of
// one whose first runs were on small tables (a "smsc_key IN (?, ?)" kept a
// full scan of segments for every receipt, halving the throughput by
// twenty thousand messages).
func TestQueryPlansPostgres(t *testing.T) {
	if !testOnPostgres() {
		t.Skip("PostgreSQL's plans; TestQueryPlans checks SQLite's")
	}
	d, qs := planWorkload(t)
	ctx := context.Background()
	conn, err := d.store.rdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for i, q := range qs {
		// The sweep's deletes too are checked on SQLite only: run every ten
		// minutes, each is planned anew on tables that have statistics.
		if !hot(q) || strings.HasPrefix(q, "DELETE FROM") {
			continue
		}
		name := fmt.Sprintf("plan_%d", i)
		if _, err := conn.ExecContext(ctx, `PREPARE `+name+` AS `+q); err != nil {
			t.Errorf("prepare %s: %v", q, err)
			continue
		}
		args := strings.TrimSuffix(strings.Repeat("NULL,", pgParams(q)), ",")
		exec := `EXPLAIN EXECUTE ` + name
		if args != "" {
			exec += `(` + args + `)`
		}
		rows, err := conn.QueryContext(ctx, exec)
		if err != nil {
			t.Errorf("explain %s: %v", q, err)
			continue
		}
		var plan []string
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan = append(plan, line)
		}
		rows.Close()
		p := strings.Join(plan, "\n    ")
		if pgHotTables.MatchString(p) {
			t.Errorf("full scan in %s:\n    %s", strings.Join(strings.Fields(q), " "), p)
		}
		t.Logf("%s\n    %s", strings.Join(strings.Fields(q), " "), p)
	}
}

// pgParams is how many parameters ($1, $2, ...) a PostgreSQL statement has.
func pgParams(q string) int {
	n := 0
	for _, x := range regexp.MustCompile(`\$(\d+)`).FindAllStringSubmatch(q, -1) {
		var v int
		fmt.Sscan(x[1], &v)
		n = max(n, v)
	}
	return n
}

// TestSweepInBatches: a sweep over more rows than one batch deletes them
// all, in several writes, and keeps what is young or still to be sent.
func TestSweepInBatches(t *testing.T) {
	st, svc := senderService(t, 2)
	defer st.Close()
	snd := NewSender(svc, &stubPool{})
	old := time.Now().Add(-40 * 24 * time.Hour)
	fill(t, st, 2*sweepBatch+7, old, StateDelivered)
	fill(t, st, 3, old, StateQueued)
	fill(t, st, 5, time.Now(), StateDelivered)
	var writes atomic.Int64
	st.InjectWriteErrors(func() error { writes.Add(1); return nil })
	snd.sweep()
	var msgs, chs, segs int
	st.QueryRow(t.Context(), `SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM challenges), (SELECT COUNT(*) FROM segments)`).Scan(&msgs, &chs, &segs)
	if msgs != 8 || chs != 8 || segs != 5 {
		t.Fatalf("after the sweep: %d messages, %d challenges, %d segments; want 8, 8, 5", msgs, chs, segs)
	}
	if writes.Load() < 6 {
		t.Fatalf("the sweep ran in %d writes; want batches of %d", writes.Load(), sweepBatch)
	}
}

// fill writes n challenges, each with a message (state) and a segment
// when sent, created at at.
func fill(t testing.TB, st *Store, n int, at time.Time, state string) {
	t.Helper()
	for i := 0; i < n; {
		err := st.Write(context.Background(), func(tx *Tx) error {
			for j := 0; j < 5000 && i+j < n; j++ {
				c := &Challenge{ID: NewID("ch"), Phone: "+4915112345678", CodeHMAC: []byte{1}, Status: StatusApproved, MaxAttempts: 5, Sends: 1, Length: 6,
					CreatedAt: at, ExpiresAt: at.Add(5 * time.Minute), LastSentAt: at, UpdatedAt: at}
				m := &Message{ID: NewID("msg"), ChallengeID: c.ID, Phone: c.Phone, State: state, NextAttemptAt: at, Deadline: c.ExpiresAt, CreatedAt: at, UpdatedAt: at}
				c.MessageID = m.ID
				if err := insertChallenge(tx, c); err != nil {
					return err
				}
				if err := insertMessage(tx, m); err != nil {
					return err
				}
				if state != StateQueued {
					if _, err := tx.Exec(`INSERT INTO segments (message_id, seq, smsc_id, smsc_key, state, submitted_at) VALUES (?,1,?,?,?,?)`, m.ID, m.ID, m.ID, state, ms(at)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		i += 5000
	}
}

// BenchmarkSweep: one retention sweep of a store of a million messages
// (and their challenges and segments, 3M rows), 5% of them past the
// retention. Run: go test -run NONE -bench BenchmarkSweep -benchtime 1x ./otpd/
func BenchmarkSweep(b *testing.B) {
	st, svc := senderService(b, 2)
	defer st.Close()
	snd := NewSender(svc, &stubPool{})
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(b, st, 950_000-i*50_000, time.Now(), StateDelivered)
		fill(b, st, 50_000, time.Now().Add(-40*24*time.Hour), StateDelivered)
		var longest time.Duration
		var mu sync.Mutex
		st.InjectWriteErrors(func() error { return nil })
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // a write queued behind the sweep waits this long at most
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				st.Write(context.Background(), func(tx *Tx) error { return nil })
				mu.Lock()
				longest = max(longest, time.Since(t0))
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
		b.StartTimer()
		snd.sweep()
		b.StopTimer()
		close(stop)
		<-done
		b.ReportMetric(float64(longest.Microseconds())/1000, "ms-longest-wait")
	}
}

// failingDisk fails every write while full.
type failingDisk struct{ full atomic.Bool }

func (f *failingDisk) err() error {
	if f.full.Load() {
		return ErrFull
	}
	return nil
}

// fillingPool acknowledges a submit and fills the disk as it does, so
// that the write after submit_sm_resp fails.
type fillingPool struct {
	stubPool
	disk *failingDisk
}

func (p *fillingPool) Go(ctx context.Context, req smpp.PDU, done chan *smpp.Call) *smpp.Call {
	p.disk.full.Store(true)
	return p.stubPool.Go(ctx, req, done)
}

// TestWriteAfterSubmitRetried: the disk fills as the SMSC acknowledges a
// submit; the sender keeps trying to record it, a receipt that comes
// meanwhile is refused (the SMSC retries it) and then kept, and once the
// disk frees the message is submitted and delivered, sent once.
func TestWriteAfterSubmitRetried(t *testing.T) {
	st, svc := senderService(t, 2)
	defer st.Close()
	disk := &failingDisk{}
	st.InjectWriteErrors(disk.err)
	pool := &fillingPool{disk: disk}
	snd := NewSender(svc, pool)
	if err := snd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer snd.Stop(context.Background())
	m, err := svc.SendMessage(t.Context(), MessageRequest{To: "+4915112345678", Text: "hello"}, "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !st.Failing() {
		if time.Now().After(deadline) {
			t.Fatal("the writes after the submit did not fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := smpp.Receipt{Receipt: dlr.Receipt{ID: "1", Stat: "DELIVRD", State: dlr.Delivered}}
	if err := svc.ApplyReceipt(t.Context(), r); err == nil || !Unavailable(err) {
		t.Fatalf("receipt on a full disk: %v", err)
	}
	disk.full.Store(false)
	if err := svc.ApplyReceipt(t.Context(), r); err != nil { // now an orphan, or matched
		t.Fatal(err)
	}
	for {
		state, _ := messageState(t, st, m.ID)
		if state == StateDelivered {
			break
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("message %s after the disk freed; want delivered", state)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Failing() {
		t.Fatal("store still failing after writes succeed")
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if len(pool.ids) != 1 {
		t.Fatalf("submitted %d times", len(pool.ids))
	}
}

// TestExpiredLeaseReclaimed: a message left "sending" under an expired
// lease that no worker holds is sent again, counted uncertain; one held
// by a worker is not touched.
func TestExpiredLeaseReclaimed(t *testing.T) {
	st, svc := senderService(t, 2)
	defer st.Close()
	pool := &stubPool{}
	snd := NewSender(svc, pool)
	now := time.Now()
	mk := func() *Message {
		m := svc.newMessage("", "+4915112345678", "", "hello", now.Add(time.Hour), "", now)
		m.State, m.Attempts, m.LeaseUntil = StateSending, 1, now.Add(-time.Second)
		if err := st.Write(t.Context(), func(tx *Tx) error { return insertMessage(tx, m) }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	lost, held := mk(), mk()
	snd.held.Store(held.ID, true)
	if n := snd.reclaimLeases(); n != 1 {
		t.Fatalf("reclaimed %d, want 1", n)
	}
	if s, _ := messageState(t, st, held.ID); s != StateSending {
		t.Fatalf("held message: %s", s)
	}
	if err := snd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer snd.Stop(context.Background())
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s, _ := messageState(t, st, lost.ID); s == StateSubmitted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reclaimed message not sent")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStoreErrorsAre503: while the disk is full, a create answers 503
// with Retry-After and a request id, logged with its cause; /readyz turns
// 503 after repeated failures and back once a write succeeds; the rate
// limit token of the failed create is given back.
func TestStoreErrorsAre503(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	cfg := NewConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr, cfg.Sim.HTTPAddr, cfg.Sim.DLRDelay = "127.0.0.1:0", "127.0.0.1:0", "10ms"
	cfg.Limits.PerPhone = Rate{1, time.Hour}
	d, err := Start(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	d.Pool().WaitReady(t.Context())
	c := newClient(t, d)
	disk := &failingDisk{}
	disk.full.Store(true)
	d.store.InjectWriteErrors(disk.err)
	for i := 0; i < 3; i++ {
		st, body, h := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340200"})
		if st != 503 || body["error"].(map[string]any)["code"] != "store_unavailable" || h.Get("Retry-After") == "" || h.Get("X-Request-Id") == "" {
			t.Fatalf("create on a full disk: %d %v %v", st, body, h)
		}
		rid := h.Get("X-Request-Id")
		found := false
		for _, e := range logs.FilterMessage("request failed").All() {
			if e.ContextMap()["request_id"] == rid && strings.Contains(fmt.Sprint(e.ContextMap()["cause"]), "disk is full") {
				found = true
			}
		}
		if !found {
			t.Fatalf("no log line with request id %s and its cause", rid)
		}
	}
	if st, _, h := c.do("GET", "/readyz", nil); st != 503 {
		t.Fatalf("readyz while writes fail: %d", st)
	} else {
		for _, e := range logs.FilterMessage("request failed").All() {
			if e.ContextMap()["request_id"] == h.Get("X-Request-Id") {
				t.Fatalf("the probe's 503 was logged as a failed request: %v", e.ContextMap())
			}
		}
	}
	disk.full.Store(false)
	if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340200"}); st != 201 {
		t.Fatalf("create after the disk freed (its limit of 1 must not be used up by the failed ones): %d %v", st, body)
	}
	if st, _, _ := c.do("GET", "/readyz", nil); st != 200 {
		t.Fatalf("readyz after a write succeeded: %d", st)
	}
	// A request id of the client's is echoed; a hostile one is replaced.
	req, _ := http.NewRequest("GET", c.base+"/healthz", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id %q", resp.Header.Get("X-Request-Id"))
	}
	req.Header.Set("X-Request-Id", "evil<script>"+strings.Repeat("x", 100))
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Fatalf("request id %q", resp.Header.Get("X-Request-Id"))
	}
}
