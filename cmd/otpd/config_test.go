package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/otpd/otpd/otpd"
)

func yamlFile(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "otpd.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConfigFileErrorsNameKeyAndLine: a wrong file is refused with the key
// and the line it is on.
func TestConfigFileErrorsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		yaml string
		want []string
	}{
		{"smsc:\n  addr: 127.0.0.1:2775\n  windw: 5\n", []string{"line 3", `"smsc.windw"`}},
		{"otp:\n  ttl: 2m\ntemplate:\n  de: x\n", []string{"line 3", `"template"`}},
		{"smsc:\n  window: many\n", []string{"line 2", "smsc.window", `"many"`}},
		{"otp:\n  ttl: 5\n", []string{"line 2", "otp.ttl", "duration"}},
		{"smsc: 127.0.0.1:2775\n", []string{"line 1", "smsc", "mapping"}},
		{"limits:\n  allow_countries: {de: 1}\n", []string{"line 2", "limits.allow_countries"}},
		{"otp:\n  templates:\n    de: [1]\n", []string{"line 3", "otp.templates"}},
		{"http: {addr: a\n", []string{"line"}},
		{"limits:\n  per_phone: lots\n", []string{"--limit-phone", "lots"}},
	}
	for _, tt := range tests {
		_, err := load(t, "--config", yamlFile(t, tt.yaml))
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want an error with %s", tt.yaml, err, w)
			}
		}
	}
}

// TestConfigSources: every kind of value arrives from the file, the
// environment and the command line, in that order of precedence.
func TestConfigSources(t *testing.T) {
	f := yamlFile(t, `
http:
  addr: 127.0.0.1:9090
  max_body: 1024
  no_auth: true
limits:
  allow_countries: [DE, AT]
  per_key: 10/1s
sender:
  retry_max: 1m
otp:
  locale: de
  templates:
    de: "Code {otp}"
smsc:
  tps: 50
log:
  level: warn
`)
	cfg, err := load(t, "--config", f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:9090" || cfg.HTTP.MaxBody != 1024 || !cfg.HTTP.NoAuth || !reflect.DeepEqual(cfg.Limits.AllowCountries, []string{"DE", "AT"}) ||
		cfg.Limits.PerKey.N != 10 || cfg.Sender.RetryMax.String() != "1m0s" || cfg.OTP.Locale != "de" || cfg.OTP.Templates["de"] != "Code {otp}" ||
		cfg.SMSC.TPS != 50 {
		t.Fatalf("from the file: %+v", cfg)
	}
	t.Setenv("OTPD_ALLOW_COUNTRIES", "CH, FR")
	t.Setenv("OTPD_NO_AUTH", "false")
	if cfg, err = load(t, "--config", f); err != nil || !reflect.DeepEqual(cfg.Limits.AllowCountries, []string{"CH", "FR"}) || cfg.HTTP.NoAuth {
		t.Fatalf("env over file: %v %+v", err, cfg)
	}
	if cfg, err = load(t, "--config", f, "--allow-countries", "US", "--http-max-body", "2048"); err != nil ||
		!reflect.DeepEqual(cfg.Limits.AllowCountries, []string{"US"}) || cfg.HTTP.MaxBody != 2048 {
		t.Fatalf("flag over env: %v %+v", err, cfg)
	}
}

// TestEveryConfigKeyIsASetting: each field of otpd.Config is reachable from
// the YAML file through a setting or a section, so none is left out of
// the flags, the variables and the reference.
func TestEveryConfigKeyIsASetting(t *testing.T) {
	known := map[string]bool{}
	for _, s := range serveSpec.Settings {
		known[s.Key] = true
	}
	for k := range serveSpec.Sections {
		known[k] = true
	}
	var walk func(t reflect.Type, prefix string, fail func(string))
	walk = func(typ reflect.Type, prefix string, fail func(string)) {
		for i := 0; i < typ.NumField(); i++ {
			sf := typ.Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || tag == "-" {
				continue
			}
			key := prefix + tag
			if known[key] {
				continue
			}
			if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(otpd.Rate{}) {
				walk(sf.Type, key+".", fail)
				continue
			}
			fail(key)
		}
	}
	walk(reflect.TypeOf(otpd.Config{}), "", func(k string) { t.Errorf("YAML key %s has no setting", k) })
}
