package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// TestConfigurationPageIsGenerated: docs/configuration.md is what
// "otpd config reference" prints, so the page follows every change of
// the flags.
func TestConfigurationPageIsGenerated(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != configReference() {
		t.Fatal("docs/configuration.md differs from the flags; run: go run ./cmd/otpd config reference > docs/configuration.md")
	}
}

// TestServeHelpAgreesWithPage: each flag otpd serve --help shows is on
// the page with the same variable, YAML key and default.
func TestServeHelpAgreesWithPage(t *testing.T) {
	page, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	app := &cli.App{Name: "otpd", Commands: []*cli.Command{serveCmd()}, Writer: &out}
	if err := app.Run([]string{"otpd", "serve", "--help"}); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^\s+--([a-z0-9-]+) (?:value\s+)?(.*?)(?: \[(\w[\w.]*)\])?(?: \(default: (.*)\))? \[\$(\w+)\]$`)
	rows := map[string]string{}
	for _, r := range strings.Split(string(page), "\n") {
		if m := regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\|").FindStringSubmatch(r); m != nil {
			if _, dup := rows[m[1]]; !dup {
				rows[m[1]] = r
			}
		}
	}
	n := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") || strings.Contains(l, "--help") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("help line not understood: %q", l)
			continue
		}
		n++
		name, key, def, env := m[1], m[3], m[4], m[5]
		row, ok := rows[name]
		if !ok {
			t.Errorf("--%s is in otpd serve --help, not in docs/configuration.md", name)
			continue
		}
		want := "| `--" + name + "` | `" + env + "` | "
		if key != "" {
			want += "`" + key + "` | "
		} else {
			want += " | "
		}
		if def != "" {
			want += "`" + def + "` |"
		}
		if !strings.HasPrefix(row, want) {
			t.Errorf("--%s: help says %q, page says %q", name, want, row)
		}
	}
	if n != len(serveOptions) {
		t.Errorf("%d flags in the help, %d settings", n, len(serveOptions))
	}
}

// TestExampleConfigLoads: fixtures/otpd.yaml loads and passes validation
// as otpd serve --config reads it, and it sets every key there is.
func TestExampleConfigLoads(t *testing.T) {
	const path = "../../fixtures/otpd.yaml"
	cfg, err := load(t, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMSC.Addr != "smsc.example.net:2775" || cfg.SMSC.Binds != 2 || cfg.SMSC.TPS != 50 || cfg.OTP.Templates["de"] == "" ||
		len(cfg.Limits.AllowCountries) != 3 || cfg.Sender.Workers != 40 || cfg.Retention != 720*time.Hour {
		t.Fatalf("not what the file says: %+v", cfg)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	has := func(key string) bool {
		var v any = doc
		for _, part := range strings.Split(key, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if v, ok = m[part]; !ok {
				return false
			}
		}
		return true
	}
	for _, s := range serveSpec.Settings {
		if s.Key != "" && !has(s.Key) {
			t.Errorf("fixtures/otpd.yaml does not set %s", s.Key)
		}
	}
	for k := range serveSpec.Sections {
		if !has(k) {
			t.Errorf("fixtures/otpd.yaml does not set %s", k)
		}
	}
}

// TestConfigCheck: otpd config check accepts the example and names the
// key and line of a mistake.
func TestConfigCheck(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := &cli.App{Name: "otpd", Commands: []*cli.Command{configCmd()}, Writer: &out}
		stdout := os.Stdout
		r, w, _ := os.Pipe()
		os.Stdout = w
		err := app.Run(append([]string{"otpd", "config", "check"}, args...))
		w.Close()
		os.Stdout = stdout
		b, _ := io.ReadAll(r)
		return string(b), err
	}
	if out, err := run("--config", "../../fixtures/otpd.yaml", "--data", t.TempDir()); err != nil || !strings.Contains(out, "configuration is valid") ||
		!strings.Contains(out, "smsc.example.net:2775") {
		t.Fatalf("example: %v %q", err, out)
	}
	if _, err := run("--config", yamlFile(t, "otp:\n  ttl: 5m\n  tll: 2m\n")); err == nil || !strings.Contains(err.Error(), `line 3: unknown key "otp.tll"`) {
		t.Fatalf("mistake: %v", err)
	}
}

// TestSystemdUnit: the unit in deploy/ is valid for systemd (when
// systemd-analyze is there) and its command lines parse as otpd's.
func TestSystemdUnit(t *testing.T) {
	const unit = "../../deploy/otpd.service"
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		for _, key := range []string{"ExecStart=", "ExecStartPre="} {
			cmdline, ok := strings.CutPrefix(l, key)
			if !ok {
				continue
			}
			n++
			args := strings.Fields(cmdline)
			if args[0] != "/usr/local/bin/otpd" {
				t.Errorf("%s runs %s", key, args[0])
			}
			parsed := false
			serve, config := serveCmd(), configCmd()
			serve.Action = func(*cli.Context) error { parsed = true; return nil }
			config.Subcommands[1].Action = serve.Action
			app := &cli.App{Name: "otpd", Commands: []*cli.Command{serve, config}, Flags: globalFlags()}
			if err := app.Run(append([]string{"otpd"}, args[1:]...)); err != nil || !parsed {
				t.Errorf("%s%s: %v", key, cmdline, err)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d command lines in the unit, want ExecStartPre and ExecStart", n)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("no systemd-analyze: the unit's syntax is not checked")
		return
	}
	// systemd-analyze checks that ExecStart's binary exists: point it at
	// a copy of the unit that runs a file that does.
	dir := t.TempDir()
	bin := filepath.Join(dir, "otpd")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "otpd.service"), []byte(strings.ReplaceAll(string(b), "/usr/local/bin/otpd", bin)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(dir, "otpd.service")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
