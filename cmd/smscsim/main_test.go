package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/smpp"
)

const hang = 30 * time.Second

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smscsim.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const sampleYAML = `
smpp: 127.0.0.1:0
http: "off"
accounts:
  - system_id: filer
    password: pw
    bind_types: [trx, rx]
    max_binds: 3
    tps: 50
dlr_delay: 1s-5s
dlr_outcomes: DELIVRD=0.9,UNDELIV=0.1
message_id_format: hex
receipt_id_format: dec
retention: 500
rules:
  - prefix: "+1999"
    stat: EXPIRED
  - prefix: "+1998"
    reject: ESME_RINVDSTADR
  - prefix: "+1997"
    no_receipt: true
faults:
  error_rate: 0.1
  error_status: ESME_RMSGQFUL
  response_delay: 10ms-20ms
  disconnect_after: 99
seed: 42
log_level: warn
`

// load runs the app's flag parsing on args and returns the config.
func load(t *testing.T, args ...string) (simulator.Config, logConfig, error) {
	t.Helper()
	app := newApp()
	var cfg simulator.Config
	var lc logConfig
	var lerr error
	app.Action = func(c *cli.Context) error {
		cfg, lc, lerr = loadConfig(c)
		return nil
	}
	if err := app.Run(append([]string{"smscsim"}, args...)); err != nil {
		return cfg, lc, err
	}
	return cfg, lc, lerr
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, lc, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMPPAddr != "127.0.0.1:2775" || cfg.HTTPAddr != "127.0.0.1:8025" || len(cfg.Accounts) != 0 || cfg.MessageIDFormat != "dec" ||
		cfg.ReceiptIDFormat != "same" || cfg.Retention != 10000 || cfg.Rules != nil || cfg.ReceiptNoText || lc.level != "info" ||
		smpp.CommandStatus(cfg.Faults.ErrorStatus) != smpp.ESME_RSYSERR {
		t.Fatalf("defaults: %+v %+v", cfg, lc)
	}
}

func TestLoadConfigFileEnvFlags(t *testing.T) {
	file := writeFile(t, sampleYAML)
	cfg, lc, err := load(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMPPAddr != "127.0.0.1:0" || cfg.HTTPAddr != "" || len(cfg.Accounts) != 1 || cfg.Accounts[0].SystemID != "filer" ||
		len(cfg.Accounts[0].BindTypes) != 2 || cfg.Accounts[0].MaxBinds != 3 || cfg.Accounts[0].TPS != 50 ||
		cfg.DLRDelay != (simulator.Delay{Min: time.Second, Max: 5 * time.Second}) || len(cfg.DLROutcomes) != 2 ||
		cfg.MessageIDFormat != "hex" || cfg.ReceiptIDFormat != "dec" || cfg.Retention != 500 || len(cfg.Rules) != 3 ||
		cfg.Rules[1].Reject != smpp.ESME_RINVDSTADR || !cfg.Rules[2].NoReceipt || cfg.Seed != 42 || lc.level != "warn" ||
		cfg.Faults.ErrorRate != 0.1 || smpp.CommandStatus(cfg.Faults.ErrorStatus) != smpp.ESME_RMSGQFUL ||
		cfg.Faults.ResponseDelay.Max != 20*time.Millisecond || cfg.Faults.DisconnectAfter != 99 {
		t.Fatalf("from the file: %+v %+v", cfg, lc)
	}
	// The environment wins over the file, a flag over both.
	t.Setenv("SMSCSIM_RETENTION", "77")
	t.Setenv("SMSCSIM_MESSAGE_ID_FORMAT", "uuid")
	t.Setenv("SMSCSIM_ACCOUNT", "a:1 b:2:tps=5,max_binds=1")
	t.Setenv("SMSCSIM_FAULT_DROP_RATE", "0.5")
	cfg, _, err = load(t, "--config", file, "--message-id-format", "dec", "--fault-error-rate", "0", "--rule", "+44=noreceipt", "--dlr-delay", "100ms")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention != 77 || cfg.MessageIDFormat != "dec" || len(cfg.Accounts) != 2 || cfg.Accounts[1].TPS != 5 ||
		cfg.Faults.DropRate != 0.5 || cfg.Faults.ErrorRate != 0 || cfg.Faults.DisconnectAfter != 99 || len(cfg.Rules) != 1 ||
		cfg.DLRDelay.Max != 100*time.Millisecond {
		t.Fatalf("with env and flags: %+v", cfg)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--dlr-delay", "soon"},
		{"--dlr-outcomes", "GREAT=1"},
		{"--account", "nopassword"},
		{"--rule", "+1=WHAT"},
		{"--fault-drop-rate", "1.5"},
		{"--fault-error-status", "ESME_RNOPE"},
		{"--config", "/nonexistent/smscsim.yaml"},
		{"--config", writeFile(t, "smpp: [1, 2]\n")},
		{"--config", writeFile(t, "colour: blue\n")},
	} {
		if _, _, err := load(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestBinary builds smscsim, starts it as a process, binds, submits, reads
// the message over HTTP and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "smscsim")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	file := writeFile(t, "faults:\n  duplicate_receipt_rate: 0\nreceipt_id_format: hex\n")
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--smpp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--account", "otp:secret",
		"--config", file, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "SMSCSIM_DLR_DELAY=1ms", "SMSCSIM_SEED=3")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[string]any, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			} else {
				t.Logf("stderr: %s", sc.Text())
			}
		}
	}()
	waitLog := func(msg string) map[string]any {
		t.Helper()
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("smscsim ended before logging %q", msg)
				}
				if m["msg"] == msg {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("no %q in the log", msg)
			}
		}
	}
	started := waitLog("smscsim: started")
	smppAddr, httpAddr := started["smpp"].(string), started["http"].(string)

	if _, err := smpp.Dial(ctx, smppAddr, smpp.Config{SystemID: "otp", Password: "wrong"}); !errorsIs(err, smpp.ESME_RINVPASWD) {
		t.Fatalf("wrong password: %v", err)
	}
	waitLog("smscsim: bind refused: wrong password")
	receipts := make(chan *smpp.DeliverSM, 10)
	s, err := smpp.Dial(ctx, smppAddr, smpp.Config{SystemID: "otp", Password: "secret", Handler: smpp.HandlerFunc(
		func(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
			receipts <- req.(*smpp.DeliverSM)
			return smpp.Reply(req, smpp.ESME_ROK)
		})})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "OTPD", SourceAddrTON: 5, DestAddrTON: 1, DestinationAddr: "4915112345678",
		RegisteredDelivery: 1, ShortMessage: []byte("Your code is 424242")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-receipts:
		r, err := smpp.ParseReceipt(d)
		if err != nil || r.Stat != "DELIVRD" {
			t.Fatalf("receipt %+v %v", r, err)
		}
	case <-ctx.Done():
		t.Fatal("no receipt")
	}
	waitLog("smscsim: request")

	hresp, err := http.Get("http://" + httpAddr + "/api/messages?to=%2B4915112345678")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	var list struct{ Messages []simulator.Message }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Messages) != 1 || list.Messages[0].ID != resp.MessageID ||
		list.Messages[0].Text != "Your code is 424242" || list.Messages[0].SystemID != "otp" {
		t.Fatalf("GET /api/messages: %s %v", body, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog("smscsim: stopped")
	<-s.Done() // unbound by the simulator on its way out
	s.Close(ctx)
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("smscsim exited: %v", err)
	}
}

func errorsIs(err error, st smpp.CommandStatus) bool {
	return err != nil && strings.Contains(err.Error(), st.Name())
}
