package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/otpd"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// load runs the serve command's configuration loading with args.
func load(t *testing.T, args ...string) (otpd.Config, error) {
	t.Helper()
	cmd := serveCmd()
	var cfg otpd.Config
	var err error
	cmd.Action = func(c *cli.Context) error {
		cfg, err = loadConfig(c)
		return nil
	}
	app := &cli.App{Commands: []*cli.Command{cmd}}
	if rerr := app.Run(append([]string{"otpd", "serve"}, args...)); rerr != nil {
		return cfg, rerr
	}
	return cfg, err
}

func TestConfigPrecedence(t *testing.T) {
	f := filepath.Join(t.TempDir(), "otpd.yaml")
	yaml := func(limits string) {
		os.WriteFile(f, []byte(`
smsc:
  addr: 127.0.0.1:2775
  system_id: otp
  window: 20
  binds: 2
  source_ton: 5
limits:
  per_phone: 3/1h
`+limits+`
otp:
  ttl: 2m
  templates:
    de: "Code {otp}"
`), 0o600)
	}
	// Unknown keys are errors that name them.
	yaml("  per_global: off")
	if _, err := load(t, "--config", f); err == nil || !strings.Contains(err.Error(), "per_global") {
		t.Fatalf("unknown key: %v", err)
	}
	yaml(`  global: "off"`)
	cfg, err := load(t, "--config", f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMSC.Window != 20 || cfg.SMSC.Binds != 2 || cfg.SMSC.SourceTON != 5 || cfg.SMSC.SourceNPI != -1 || cfg.SMSC.DestTON != 1 ||
		cfg.Limits.PerPhone != (otpd.Rate{N: 3, Per: time.Hour}) || cfg.Limits.Global.String() != "off" || cfg.OTP.TTL != 2*time.Minute ||
		cfg.OTP.Templates["de"] != "Code {otp}" || cfg.OTP.Templates["en"] == "" || cfg.HTTP.Addr != "127.0.0.1:8080" {
		t.Fatalf("from the file: %+v", cfg)
	}
	// The environment over the file, flags over the environment.
	t.Setenv("OTPD_WINDOW", "30")
	t.Setenv("OTPD_LIMIT_PHONE", "7/1m")
	if cfg, err = load(t, "--config", f); err != nil || cfg.SMSC.Window != 30 || cfg.Limits.PerPhone.N != 7 || cfg.SMSC.Binds != 2 {
		t.Fatalf("env over file: %v %+v", err, cfg.SMSC)
	}
	if cfg, err = load(t, "--config", f, "--window", "40"); err != nil || cfg.SMSC.Window != 40 {
		t.Fatalf("flag over env: %v %d", err, cfg.SMSC.Window)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		args []string
		key  string
	}{
		{[]string{"--otp-ttl", "20m"}, "otp.ttl"},
		{[]string{"--otp-length", "5"}, "otp.length"},
		{[]string{"--smsc", "nohost"}, "smsc.addr"},
		{[]string{"--smsc", "127.0.0.1:2775"}, "smsc.system_id"},
		{[]string{"--bind-mode", "both"}, "smsc.bind_mode"},
		{[]string{"--window", "2000"}, "smsc.window"},
		{[]string{"--data-coding", "ebcdic"}, "smsc.data_coding"},
		{[]string{"--uncertain", "maybe"}, "sender.uncertain"},
		{[]string{"--limit-phone", "lots"}, "--limit-phone"},
		{[]string{"--allow-countries", "germany"}, "limits.allow_countries"},
		{[]string{"--http", "8080"}, "http.addr"},
	}
	for _, tt := range tests {
		_, err := load(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%v: %v, want an error naming %s", tt.args, err, tt.key)
		}
	}
}

// TestLogsAreNotSampled: a burst of lines with one message, as under load,
// is written whole in both formats.
func TestLogsAreNotSampled(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "log")
		cfg := loggerConfig(zapcore.InfoLevel, asJSON)
		cfg.OutputPaths = []string{path}
		log, err := cfg.Build()
		if err != nil {
			t.Fatal(err)
		}
		const n = 500
		for i := 0; i < n; i++ {
			log.Info("otp created", zap.Int("i", i))
		}
		log.Sync()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(b), "otp created"); got != n {
			t.Errorf("json %v: %d of %d lines written", asJSON, got, n)
		}
	}
}
