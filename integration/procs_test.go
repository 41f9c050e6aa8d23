package integration

// Helpers of the otpd end-to-end tests (otpd_e2e_test.go): build the real
// otpd and smscsim binaries once per test run, start them as processes on
// loopback ports chosen at run time, stop them at cleanup, and talk to their
// HTTP APIs. Every wait here is bounded, but only as a guard against hangs:
// no test asserts how long anything takes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// buildLimit bounds go build of the two binaries.
	buildLimit = 5 * time.Minute
	// stopWait is how long a process has to end after SIGTERM before it is
	// killed.
	stopWait = 20 * time.Second
	// startWait bounds the wait for a started process to answer.
	startWait = 30 * time.Second
	// settleWait bounds the wait for messages to reach their final state.
	settleWait = 90 * time.Second
	// simSystemID and simPassword are the smscsim account otpd binds with
	// (SMPP 3.4 passwords have at most 8 characters).
	simSystemID = "otpd"
	simPassword = "e2eP4ss"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// raceBuild reports whether this test binary was built with -race; the
// binaries under test are then built with it too, and a data race they
// report fails the test.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// binaries builds cmd/otpd and cmd/smscsim once per test run into a
// temporary directory and returns their paths.
func binaries(t *testing.T) (otpdBin, simBin string) {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "otpd-e2e-bin-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), buildLimit)
		defer cancel()
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		if raceBuild() {
			args = append(args, "-race")
		}
		args = append(args, "github.com/otpd/otpd/cmd/otpd", "github.com/otpd/otpd/cmd/smscsim")
		cmd := exec.CommandContext(ctx, goTool(), args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("building the binaries: %v", binErr)
	}
	return filepath.Join(binDir, "otpd"), filepath.Join(binDir, "smscsim")
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		return filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
	}
	return "go"
}

// childEnv is the environment of the processes under test: ours without
// the OTPD_* and SMSCSIM_* variables, so that only the flags configure
// them.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OTPD_") || strings.HasPrefix(kv, "SMSCSIM_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freeAddr returns a loopback address with a port that was free a moment
// ago (listen on :0, close).
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		// Below the kernel's ephemeral range (32768-60999 by default), so
		// neither an outgoing connection nor another test's port-0 listener
		// takes it between this check and the process's own listen; never
		// handed out twice in one run, so two processes of one test (or an
		// SMPP and an HTTP listener of one process) never get the same port.
		port := 20000 + rand.IntN(12000)
		if portsGiven[port] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		portsGiven[port] = true
		return ln.Addr().String()
	}
	t.Fatalf("no free port found in 127.0.0.1:20000-31999")
	return ""
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// phoneSeq numbers the phone numbers handed out in this test run.
var phoneSeq atomic.Int64

// newPhone returns a valid German mobile number no other test of this run
// uses: +49151 and 8 digits, or the given prefix (+49151...) padded with
// digits to the same length.
func newPhone(prefix string) string {
	if prefix == "" {
		prefix = "+49151"
	}
	n := phoneSeq.Add(1)
	width := len("+4915112345678") - len(prefix)
	return prefix + fmt.Sprintf("%0*d", width, n%int64(pow10(width)))
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// digits is a number without its +, as smscsim's ?to= takes it.
func digits(phone string) string { return strings.TrimPrefix(phone, "+") }

// outBuf is a buffer safe for a writer and readers at once.
type outBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *outBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *outBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a process under test. It is stopped (SIGTERM, then SIGKILL after
// stopWait) and waited for at cleanup; its output is logged when the test
// failed.
type proc struct {
	t      *testing.T
	name   string
	args   []string
	cmd    *exec.Cmd
	stdout outBuf
	stderr outBuf

	done    chan struct{} // closed once the process ended and was waited for
	waitErr error
	stopped atomic.Bool // we stopped or killed it
	termed  bool        // it ended after our SIGTERM, by itself
}

// startProc starts bin with args; name labels it in logs.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = childEnv()
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		early := p.exited() && !p.stopped.Load()
		p.Stop()
		switch {
		case early:
			t.Errorf("%s ended by itself before the test stopped it: %v", p.name, p.waitErr)
		case p.termed && p.waitErr != nil:
			t.Errorf("%s did not exit cleanly on SIGTERM: %v", p.name, p.waitErr)
		}
		p.checkRaces()
		if t.Failed() {
			p.dump()
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process with SIGTERM, then SIGKILL if it has not ended
// within stopWait, and waits for it. It may be called more than once.
func (p *proc) Stop() {
	if p.stopped.Swap(true) {
		<-p.done
		return
	}
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		p.termed = true
		return
	case <-time.After(stopWait):
	}
	p.t.Errorf("%s did not stop within %s of SIGTERM; killing it", p.name, stopWait)
	p.cmd.Process.Kill()
	<-p.done
}

// Kill ends the process with SIGKILL and waits for it.
func (p *proc) Kill() {
	p.stopped.Store(true)
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(stopWait):
		p.t.Fatalf("%s still running %s after SIGKILL", p.name, stopWait)
	}
}

// checkRaces fails the test when a race-built process reported a data race.
func (p *proc) checkRaces() {
	if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
		p.t.Errorf("%s reported a data race (its stderr follows)", p.name)
	}
}

// dump logs the command line and output, the last 256 KiB of each.
func (p *proc) dump() {
	tail := func(s string) string {
		const max = 256 << 10
		if len(s) > max {
			return "[...]\n" + s[len(s)-max:]
		}
		return s
	}
	p.t.Logf("--- %s %s (%v)\n--- stdout:\n%s\n--- stderr:\n%s", p.name, strings.Join(p.args, " "), p.waitErr,
		tail(p.stdout.String()), tail(p.stderr.String()))
}

// run runs a command that ends by itself (otpd send, otpd keys create) and
// returns its stdout and stderr; a failure to run or a non-zero exit fails
// the test.
func run(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startWait*2)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String(), errb.String())
	}
	if raceBuild() && strings.Contains(errb.String(), "WARNING: DATA RACE") {
		t.Errorf("%s %s reported a data race:\n%s", filepath.Base(bin), strings.Join(args, " "), errb.String())
	}
	return out.String(), errb.String()
}

// eventually polls check until it reports done, failing the test with the
// last state it described when limit passes first.
func eventually(t *testing.T, what string, limit time.Duration, check func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		done, state := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the case after %s (hang guard); last: %s", what, limit, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- HTTP clients ----

var httpClient = &http.Client{
	Timeout:   30 * time.Second, // a hang guard
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil},
}

// reply is an HTTP answer with its body read.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *reply) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// decode reads the JSON body into v.
func (r *reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer %s: not the JSON expected: %v", r, err)
	}
}

// errorCode is the code of a JSON error answer.
func (r *reply) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// request sends a request with an optional JSON body and an optional
// bearer key.
func request(ctx context.Context, method, u, key string, body any) (*reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	// A POST says JSON even without a body (resend, cancel): otpd refuses
	// one that does not, unless it carries a key (a cross-site form can
	// send neither).
	if body != nil || method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// ---- smscsim ----

// simProc is a running smscsim.
type simProc struct {
	*proc
	smpp, http string // listen addresses
}

// startSim starts smscsim on the given addresses with the account otpd
// binds with, and waits until its HTTP API and SMPP port answer.
func startSim(t *testing.T, smppAddr, httpAddr string, extra ...string) *simProc {
	t.Helper()
	_, bin := binaries(t)
	args := append([]string{"--smpp", smppAddr, "--http", httpAddr, "--account", simSystemID + ":" + simPassword}, extra...)
	p := startListening(t, "smscsim", bin, args, func() (bool, string) {
		r, err := request(context.Background(), "GET", "http://"+httpAddr+"/healthz", "", nil)
		if err != nil || r.Status != 200 {
			return false, fmt.Sprint(r, err)
		}
		c, err := net.DialTimeout("tcp", smppAddr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return &simProc{proc: p, smpp: smppAddr, http: httpAddr}
}

// startListening starts a server process and waits until ready says so.
// A port picked by freeAddr (or reused after a restart) may be taken by
// someone else's outgoing connection for a moment: a process that exits at
// start because its address is in use is started again, a few times.
func startListening(t *testing.T, name, bin string, args []string, ready func() (bool, string)) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := startProc(t, name, bin, args...)
		inUse := false
		eventually(t, name+" ready", startWait, func() (bool, string) {
			if p.exited() {
				if attempt < 5 && strings.Contains(p.stderr.String(), "address already in use") {
					inUse = true
					return true, ""
				}
				t.Fatalf("%s %s exited at start: %v\n%s", name, strings.Join(args, " "), p.waitErr, p.stderr.String())
			}
			return ready()
		})
		if !inUse {
			return p
		}
		p.stopped.Store(true) // it ended as it should: no complaint at cleanup
		t.Logf("%s: address in use at start, starting it again", name)
		time.Sleep(200 * time.Millisecond)
	}
}

// simMessage is a message as smscsim's API shows it.
type simMessage struct {
	ID         string `json:"id"`
	SystemID   string `json:"system_id"`
	From       string `json:"from"`
	To         string `json:"to"`
	Text       string `json:"text"`
	Segments   int    `json:"segments"`
	DataCoding byte   `json:"data_coding"`
	Receipt    *struct {
		Stat string `json:"stat"`
		Err  string `json:"err"`
	} `json:"receipt"`
}

// messages lists the messages smscsim holds, to one number (digits, no +)
// or all of them when to is "".
func (s *simProc) messages(t *testing.T, to string) []simMessage {
	t.Helper()
	u := "http://" + s.http + "/api/messages"
	if to != "" {
		u += "?" + url.Values{"to": {to}}.Encode()
	}
	r, err := request(context.Background(), "GET", u, "", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET %s: %v %v", u, r, err)
	}
	var out struct {
		Messages []simMessage `json:"messages"`
	}
	r.decode(t, &out)
	return out.Messages
}

// waitMessages waits until smscsim holds at least n messages to phone and
// returns them, newest first.
func (s *simProc) waitMessages(t *testing.T, phone string, n int) []simMessage {
	t.Helper()
	var msgs []simMessage
	eventually(t, fmt.Sprintf("%d SMS to %s at smscsim", n, phone), settleWait, func() (bool, string) {
		msgs = s.messages(t, digits(phone))
		return len(msgs) >= n, fmt.Sprintf("%d SMS", len(msgs))
	})
	return msgs
}

var codeRE = regexp.MustCompile(`\b(\d{6,10})\b`)

// codeOf reads the OTP in an SMS text.
func codeOf(t *testing.T, text string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no code in SMS text %q", text)
	}
	return m[1]
}

// ---- otpd ----

// otpdProc is a running otpd serve.
type otpdProc struct {
	*proc
	url string // http://host:port
	key string // API key sent as Bearer, if any
}

// otpdSMSCArgs are the flags that point otpd at a running smscsim, with
// short reconnect backoffs so that a restarted smscsim is found again soon.
func otpdSMSCArgs(sim *simProc) []string {
	return []string{"--smsc", sim.smpp, "--system-id", simSystemID, "--password", simPassword,
		"--reconnect-min", "100ms", "--reconnect-max", "1s"}
}

// startOtpd starts otpd serve on httpAddr with dataDir and extra flags,
// and waits until it is ready (a bind to the SMSC is up).
func startOtpd(t *testing.T, httpAddr, dataDir string, extra ...string) *otpdProc {
	t.Helper()
	return startOtpdGlobal(t, nil, httpAddr, dataDir, extra...)
}

// startOtpdGlobal is startOtpd with global flags (--log-level, --log-json)
// before the serve command.
func startOtpdGlobal(t *testing.T, global []string, httpAddr, dataDir string, extra ...string) *otpdProc {
	t.Helper()
	bin, _ := binaries(t)
	args := append(slices.Clone(global), "serve", "--http", httpAddr, "--data", dataDir)
	args = append(args, extra...)
	u := "http://" + httpAddr
	p := startListening(t, "otpd", bin, args, func() (bool, string) {
		r, err := request(context.Background(), "GET", u+"/readyz", "", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == 200, r.String()
	})
	return &otpdProc{proc: p, url: u}
}

// do sends a request to otpd with its key.
func (o *otpdProc) do(t *testing.T, method, path string, body any) *reply {
	t.Helper()
	r, err := request(context.Background(), method, o.url+path, o.key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// expect sends a request and fails the test unless the status is want.
func (o *otpdProc) expect(t *testing.T, method, path string, body any, want int) *reply {
	t.Helper()
	r := o.do(t, method, path, body)
	if r.Status != want {
		t.Fatalf("%s %s: got %s, want status %d", method, path, r, want)
	}
	return r
}

// challenge is GET /v1/otp/{id}.
type challenge struct {
	ID           string    `json:"id"`
	Phone        string    `json:"phone"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
	AttemptsLeft *int      `json:"attempts_left"`
	Delivery     *struct {
		State      string    `json:"state"`
		MessageIDs []string  `json:"message_ids"`
		Stat       string    `json:"stat"`
		Err        string    `json:"err"`
		Reason     string    `json:"reason"`
		UpdatedAt  time.Time `json:"updated_at"`
	} `json:"delivery"`
}

func (c *challenge) state() string {
	if c.Delivery == nil {
		return "(no delivery)"
	}
	return c.Delivery.State
}

// verifyResult is POST /v1/otp/{id}/verify's 200 answer.
type verifyResult struct {
	Status       string `json:"status"`
	AttemptsLeft *int   `json:"attempts_left"`
}

// create is POST /v1/otp that must answer 201.
func (o *otpdProc) create(t *testing.T, body map[string]any) challenge {
	t.Helper()
	var c challenge
	o.expect(t, "POST", "/v1/otp", body, 201).decode(t, &c)
	if c.ID == "" || c.Status != "pending" {
		t.Fatalf("POST /v1/otp: created %+v, want an id and status pending", c)
	}
	return c
}

// get is GET /v1/otp/{id}.
func (o *otpdProc) get(t *testing.T, id string) challenge {
	t.Helper()
	var c challenge
	o.expect(t, "GET", "/v1/otp/"+id, nil, 200).decode(t, &c)
	return c
}

// verify is POST /v1/otp/{id}/verify; the reply is returned whatever its
// status.
func (o *otpdProc) verify(t *testing.T, id, code string) *reply {
	t.Helper()
	return o.do(t, "POST", "/v1/otp/"+id+"/verify", map[string]string{"code": code})
}

// metric reads one unlabelled sample from GET /metrics (0 when absent).
func (o *otpdProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	r := o.expect(t, "GET", "/metrics", nil, 200)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q: %v", name, line, err)
			}
			return f
		}
	}
	return 0
}

// isRefused reports whether a request failed because nothing listened:
// it never reached a server, so it may be sent again as it is.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
