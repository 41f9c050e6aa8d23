package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"
)

func benchCmd() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load tests",
		Subcommands: []*cli.Command{{
			Name:  "smpp",
			Usage: "submit_sm load over a Pool against an SMSC (smscsim or a real one)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "smsc", Value: "127.0.0.1:2775", Usage: "SMSC host:port", EnvVars: []string{"OTPD_SMSC"}},
				&cli.StringFlag{Name: "system-id", Value: "bench", EnvVars: []string{"OTPD_SYSTEM_ID"}},
				&cli.StringFlag{Name: "password", EnvVars: []string{"OTPD_PASSWORD"}},
				&cli.IntFlag{Name: "n", Value: 100000, Usage: "submits to send"},
				&cli.IntFlag{Name: "window", Value: 100, Usage: "outstanding submits per bind"},
				&cli.IntFlag{Name: "binds", Value: 1, Usage: "transceiver binds"},
				&cli.Float64Flag{Name: "tps", Usage: "submits per second in all, 0 = as fast as possible"},
				&cli.IntFlag{Name: "registered-delivery", Value: 0, Usage: "registered_delivery of the submits (1: ask for receipts)"},
				&cli.StringFlag{Name: "to", Value: "4915112345678", Usage: "destination address"},
				&cli.StringFlag{Name: "text", Value: "Your code is 123456. It expires in 5 minutes.", Usage: "message text (GSM 03.38)"},
				&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON"},
			},
			Action: benchSMPP,
		}, {
			Name:  "otp",
			Usage: "full OTP load against a running otpd: create, read the code from the simulator, verify",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "url", Value: cli.NewStringSlice("http://127.0.0.1:8080"), Usage: "otpd's base URL; repeated, the workers take the instances in turn (and the end-to-end figure counts the receipts of all)", EnvVars: []string{"OTPD_URL"}},
				&cli.StringFlag{Name: "sim-url", Value: "http://127.0.0.1:8025", Usage: "the simulator's HTTP API, to read the codes"},
				&cli.StringFlag{Name: "key", Usage: "API key", EnvVars: []string{"OTPD_API_KEY"}},
				&cli.IntFlag{Name: "n", Value: 1000, Usage: "OTPs"},
				&cli.IntFlag{Name: "concurrency", Value: 32, Usage: "OTPs in progress at once"},
				&cli.StringFlag{Name: "prefix", Value: "+49151", Usage: "numbers are this prefix and digits counting up from a random start, --length characters in all (the default makes valid German mobile numbers)"},
				&cli.IntFlag{Name: "length", Value: 14, Usage: "length of each number with its +"},
				&cli.BoolFlag{Name: "no-verify", Usage: "only create (measures POST /v1/otp alone)"},
				&cli.DurationFlag{Name: "receipt-wait", Value: time.Minute, Usage: "after the load, how long to wait until otpd has matched as many receipts as OTPs were made (its /metrics, so other traffic to the same otpd counts too), for the end-to-end rate; 0 to skip"},
				&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON"},
			},
			Action: benchOTP,
		}},
	}
}

var (
	codeRE   = regexp.MustCompile(`\b\d{6,10}\b`)
	prefixRE = regexp.MustCompile(`^\+[1-9][0-9]*$`)
)

// benchOTP runs the path of one OTP n times: POST /v1/otp, the code read
// from the simulator's API, POST /v1/otp/{id}/verify. Latencies are those
// of POST /v1/otp.
func benchOTP(c *cli.Context) error {
	n, conc := c.Int("n"), c.Int("concurrency")
	if n <= 0 || conc <= 0 {
		return errors.New("--n and --concurrency must be positive")
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var bases []string
	var urls []*url.URL
	for _, b := range c.StringSlice("url") {
		base := strings.TrimRight(b, "/")
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--url %q: want http:// or https:// and a host", base)
		}
		bases, urls = append(bases, base), append(urls, u)
	}
	if len(bases) == 0 {
		return errors.New("--url: want otpd's base URL")
	}
	sim := strings.TrimRight(c.String("sim-url"), "/")
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}, Timeout: 30 * time.Second}
	post := func(oc *otpdConn, path string, body any) (int, map[string]any, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, oc.base+path, bytes.NewReader(b))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if k := c.String("key"); k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
		st, rb, err := oc.do(ctx, req)
		if err != nil {
			return 0, nil, err
		}
		var out map[string]any
		json.Unmarshal(rb, &out)
		return st, out, nil
	}
	readCode := func(digits string) (string, error) {
		// One long poll: the simulator answers when the SMS is there.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sim+"/api/messages?limit=1&wait=10s&to="+digits, nil)
			resp, err := cl.Do(req)
			if err != nil {
				return "", err
			}
			var out struct {
				Messages []struct{ Text string } `json:"messages"`
			}
			json.NewDecoder(resp.Body).Decode(&out)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("GET %s/api/messages: HTTP %d", sim, resp.StatusCode)
			}
			if len(out.Messages) > 0 {
				if code := codeRE.FindString(out.Messages[0].Text); code != "" {
					return code, nil
				}
				// An SMS without a code (another sender's): the wait
				// answers at once while it is the newest, so pause.
				time.Sleep(20 * time.Millisecond)
			}
		}
		return "", errors.New("no SMS with a code at the simulator")
	}
	// otpd's matched receipts before the load, to count this run's.
	receipts0, rerr := matchedReceipts(ctx, cl, bases, c.String("key"))
	if rerr != nil && c.Duration("receipt-wait") > 0 {
		fmt.Fprintf(os.Stderr, "no end-to-end figure: %v\n", rerr)
	}
	var sent, ok atomic.Int64
	errs := &errCounter{m: map[string]int64{}}
	fail := errs.add
	lats := make([][]time.Duration, conc)
	start := time.Now()
	done := make(chan struct{})
	go progress(done, start, &sent, &ok, errs.total)
	prefix := c.String("prefix")
	width := c.Int("length") - len(prefix)
	if !prefixRE.MatchString(prefix) || width < 4 || c.Int("length") > 16 {
		return fmt.Errorf("--prefix %q and --length %d: want + and a country code (digits), and at least 4 digits after the prefix, 15 digits in all at most", prefix, c.Int("length"))
	}
	space := int64(math.Pow10(width))
	if int64(n) > space {
		return fmt.Errorf("--n %d: more OTPs than the %d numbers --prefix %s and --length %d make; each OTP needs its own number", n, space, prefix, c.Int("length"))
	}
	first := rand.Int64N(space) // numbers of this run, unlikely to repeat an earlier run's
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			oc := &otpdConn{url: urls[w%len(urls)], base: bases[w%len(bases)]}
			defer oc.close()
			for ctx.Err() == nil {
				i := sent.Add(1)
				if i > int64(n) {
					return
				}
				phone := fmt.Sprintf("%s%0*d", prefix, width, (first+i)%space)
				t0 := time.Now()
				st, body, err := post(oc, "/v1/otp", map[string]any{"phone": phone})
				d := time.Since(t0)
				if err != nil {
					fail("create: " + err.Error())
					continue
				}
				if st != http.StatusCreated {
					fail(fmt.Sprintf("create: HTTP %d", st))
					continue
				}
				lats[w] = append(lats[w], d)
				if c.Bool("no-verify") {
					ok.Add(1)
					continue
				}
				code, err := readCode(strings.TrimPrefix(phone, "+"))
				if err != nil {
					fail("read code: " + err.Error())
					continue
				}
				id, _ := body["id"].(string)
				st, body, err = post(oc, "/v1/otp/"+id+"/verify", map[string]any{"code": code})
				if err != nil || st != http.StatusOK || body["status"] != "approved" {
					fail(fmt.Sprintf("verify: HTTP %d %v", st, body["status"]))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	all := slices.Concat(lats...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := benchResult{Sent: min(sent.Load(), int64(n)), OK: ok.Load(), Errors: errs.m, Seconds: elapsed.Seconds(),
		Rate: float64(ok.Load()) / elapsed.Seconds(), LatencyMS: percentiles(all)}
	if rerr == nil && c.Duration("receipt-wait") > 0 {
		// End to end: every OTP created, committed, submitted and its
		// receipt matched by otpd.
		deadline := time.Now().Add(c.Duration("receipt-wait"))
		for {
			r, err := matchedReceipts(ctx, cl, bases, c.String("key"))
			if err != nil {
				fmt.Fprintf(os.Stderr, "reading otpd's receipts: %v\n", err)
				break
			}
			res.Receipts = int64(r - receipts0)
			if res.Receipts >= res.OK {
				e2e := time.Since(start).Seconds()
				res.EndToEndSeconds, res.EndToEndRate = e2e, float64(res.OK)/e2e
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				fmt.Fprintf(os.Stderr, "only %d receipts of %d OTPs matched after --receipt-wait\n", res.Receipts, res.OK)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return printResult(c, res)
}

// otpdConn is one worker's keep-alive connection to otpd. The request is
// written and the response read on the worker's own goroutine, without
// the two goroutines an http.Transport runs per connection and the
// hand-offs between them, so that the load generator leaves the CPU to
// otpd. A connection that fails, or that the server closes, is dialled
// again for the next request. It follows no redirect and sends no
// userinfo of --url; a connection otpd closed while idle costs one failed
// request (a run keeps its connections busy).
type otpdConn struct {
	url  *url.URL
	base string // url as text, without a trailing slash
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

// do sends req and returns the status and body of the response.
func (c *otpdConn) do(ctx context.Context, req *http.Request) (int, []byte, error) {
	if c.conn == nil {
		if err := c.dial(ctx); err != nil {
			return 0, nil, err
		}
	}
	conn := c.conn
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) }) // Ctrl-C ends a wait
	defer stop()
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(c.br, req)
	}
	if err != nil {
		c.close()
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

func (c *otpdConn) dial(ctx context.Context) error {
	host := c.url.Host
	if c.url.Port() == "" {
		host = net.JoinHostPort(c.url.Hostname(), map[string]string{"http": "80", "https": "443"}[c.url.Scheme])
	}
	var conn net.Conn
	var err error
	nd := &net.Dialer{Timeout: 30 * time.Second} // as the requests' deadline
	if c.url.Scheme == "https" {
		d := &tls.Dialer{NetDialer: nd, Config: &tls.Config{ServerName: c.url.Hostname()}}
		conn, err = d.DialContext(ctx, "tcp", host)
	} else {
		conn, err = nd.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return err
	}
	c.conn, c.br, c.bw = conn, bufio.NewReader(conn), bufio.NewWriter(conn)
	return nil
}

func (c *otpdConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// matchedReceipts reads from otpd's /metrics how many receipts it matched
// to a message so far (on arrival, or when the submit_sm_resp they beat
// was recorded).
func matchedReceipts(ctx context.Context, cl *http.Client, bases []string, key string) (float64, error) {
	var n float64
	for _, base := range bases {
		m, err := matchedReceiptsOf(ctx, cl, base, key)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

func matchedReceiptsOf(ctx context.Context, cl *http.Client, base, key string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: HTTP %d", base, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET %s/metrics: %w", base, err)
	}
	var n float64
	for _, m := range fams["otpd_receipts_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && (l.GetValue() == "matched" || l.GetValue() == "orphan_matched") {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n, nil
}

// benchResult is the summary of a load run.
type benchResult struct {
	Sent      int64              `json:"sent"`
	OK        int64              `json:"ok"`
	Errors    map[string]int64   `json:"errors"`
	Receipts  int64              `json:"receipts"`
	Seconds   float64            `json:"seconds"`
	Rate      float64            `json:"rate_per_second"`
	LatencyMS map[string]float64 `json:"latency_ms"`
	// bench otp: from the start until otpd had matched a receipt for every
	// OTP created (0 when it did not within --receipt-wait).
	EndToEndSeconds float64 `json:"end_to_end_seconds,omitempty"`
	EndToEndRate    float64 `json:"end_to_end_per_second,omitempty"`
}

func benchSMPP(c *cli.Context) error {
	n := c.Int("n")
	if n <= 0 || c.Int("window") <= 0 || c.Int("binds") <= 0 {
		return errors.New("--n, --window and --binds must be positive")
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var receipts atomic.Int64
	pool := smpp.NewPool(smpp.PoolConfig{
		Addr: c.String("smsc"), Binds: c.Int("binds"), TPS: c.Float64("tps"),
		Session: smpp.Config{SystemID: c.String("system-id"), Password: c.String("password"), Window: c.Int("window"),
			Handler: smpp.HandlerFunc(func(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
				receipts.Add(1)
				return smpp.Reply(req, smpp.ESME_ROK)
			})},
	})
	defer pool.Close(context.Background())
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := pool.WaitReady(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("bind to %s: %w (%v)", c.String("smsc"), err, pool.LastErrors())
	}
	waitBinds := time.Now().Add(5 * time.Second)
	for pool.Stats().BindsUp < c.Int("binds") && time.Now().Before(waitBinds) {
		time.Sleep(10 * time.Millisecond)
	}
	// Every window is kept full from the read loops themselves: each
	// response's completion (Pool.TryGo) sends the next submit, so the
	// figure is the SMPP stack's and the SMSC's, not the scheduler's. A
	// submit that cannot go out at once (rate limit, a bind down) goes to
	// this goroutine, which waits for it (Pool.GoFunc).
	total := c.Int("window") * c.Int("binds")
	var sent, ok atomic.Int64
	errs := &errCounter{m: map[string]int64{}}
	var mu sync.Mutex // all, appended to from every bind's read loop
	all := make([]time.Duration, 0, n)
	start := time.Now()
	done := make(chan struct{})
	go progress(done, start, &sent, &ok, errs.total)
	type slot struct {
		sm *smpp.SubmitSM
		at time.Time
		fn func(*smpp.Call)
	}
	waiting := make(chan *slot, total) // submits this goroutine sends
	finished := make(chan struct{})
	var inflight atomic.Int64
	// next sends the slot's next submit, if any are left.
	next := func(sl *slot) {
		if sent.Add(1) > int64(n) || ctx.Err() != nil {
			if inflight.Add(-1) == 0 {
				close(finished)
			}
			return
		}
		if !pool.TryGo(sl.sm, sl.fn) {
			sl.at = time.Now()
			waiting <- sl
		}
	}
	slots := make([]*slot, total)
	for i := range slots {
		sl := &slot{sm: &smpp.SubmitSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: c.String("to"),
			RegisteredDelivery: byte(c.Int("registered-delivery")), ShortMessage: []byte(c.String("text"))}}
		sl.fn = func(call *smpp.Call) {
			now := time.Now()
			d := now.Sub(sl.at)
			sl.at = now // the next submit's start, unless it waits
			if call.Err != nil {
				errs.add(errName(call.Err))
			} else {
				ok.Add(1)
				mu.Lock()
				all = append(all, d)
				mu.Unlock()
			}
			next(sl)
		}
		slots[i] = sl
	}
	inflight.Store(int64(total))
	for _, sl := range slots {
		sl.at = time.Now()
		next(sl)
	}
wait:
	for {
		select {
		case sl := <-waiting:
			pool.GoFunc(ctx, sl.sm, sl.fn)
		case <-finished: // every slot's last completion has returned: all is settled
			break wait
		}
	}
	elapsed := time.Since(start)
	close(done)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := benchResult{Sent: min(sent.Load(), int64(n)), OK: ok.Load(), Errors: errs.m, Receipts: receipts.Load(), Seconds: elapsed.Seconds(),
		Rate: float64(ok.Load()) / elapsed.Seconds(), LatencyMS: percentiles(all)}
	return printResult(c, res)
}

func errName(err error) string {
	var re *smpp.ResponseError
	switch {
	case errors.As(err, &re):
		return re.Status.Name()
	case smpp.IsUncertain(err):
		return "uncertain"
	case errors.Is(err, smpp.ErrNoBind):
		return "no_bind"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

func percentiles(sorted []time.Duration) map[string]float64 {
	out := map[string]float64{}
	if len(sorted) == 0 {
		return out
	}
	at := func(p float64) float64 {
		i := int(p * float64(len(sorted)-1))
		return float64(sorted[i].Microseconds()) / 1000
	}
	out["p50"], out["p90"], out["p99"], out["max"] = at(0.50), at(0.90), at(0.99), at(1)
	return out
}

// progress prints a live line on stderr until done is closed.
func progress(done <-chan struct{}, start time.Time, sent, ok *atomic.Int64, errs func() int64) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintln(os.Stderr)
			return
		case <-t.C:
			el := time.Since(start).Seconds()
			fmt.Fprintf(os.Stderr, "\r%6.1fs  ok %d  errors %d  %.0f/s   ", el, ok.Load(), errs(), float64(ok.Load())/el)
		}
	}
}

func printResult(c *cli.Context, r benchResult) error {
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	fmt.Printf("sent %d  ok %d  receipts %d  in %.2fs  = %.0f/s\n", r.Sent, r.OK, r.Receipts, r.Seconds, r.Rate)
	fmt.Printf("latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.LatencyMS["p50"], r.LatencyMS["p90"], r.LatencyMS["p99"], r.LatencyMS["max"])
	if r.EndToEndSeconds > 0 {
		fmt.Printf("end to end (every receipt matched) in %.2fs  = %.0f/s\n", r.EndToEndSeconds, r.EndToEndRate)
	}
	if len(r.Errors) > 0 {
		fmt.Printf("errors:")
		for k, v := range r.Errors {
			fmt.Printf("  %s %d", k, v)
		}
		fmt.Println()
	}
	if r.OK < r.Sent {
		return fmt.Errorf("%d of %d submits failed", r.Sent-r.OK, r.Sent)
	}
	return nil
}

// errCounter counts errors by kind, safe for concurrent use.
type errCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errCounter) add(kind string) {
	e.mu.Lock()
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errCounter) total() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, v := range e.m {
		n += v
	}
	return n
}
