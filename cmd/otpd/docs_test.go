package main

import (
	"bytes"
	"os"
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
