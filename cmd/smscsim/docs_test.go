package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	pagePath   = "../../docs/smscsim.md"
	beginFlags = "<!-- flags: generated from cmd/smscsim/config.go; OTPD_UPDATE_DOCS=1 go test ./cmd/smscsim rewrites it -->\n"
	endFlags   = "<!-- end of flags -->\n"
)

// TestPageListsTheFlags: the settings section of docs/smscsim.md is the one
// generated from the definitions. OTPD_UPDATE_DOCS=1 rewrites it.
func TestPageListsTheFlags(t *testing.T) {
	b, err := os.ReadFile(pagePath)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	i, j := strings.Index(page, beginFlags), strings.Index(page, endFlags)
	if i < 0 || j < i {
		t.Fatalf("docs/smscsim.md has no section between %q and %q", beginFlags, endFlags)
	}
	want := beginFlags + "\n" + spec.Reference("###") + endFlags
	got := page[i : j+len(endFlags)]
	if got == want {
		return
	}
	if os.Getenv("OTPD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(pagePath, []byte(page[:i]+want+page[j+len(endFlags):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("docs/smscsim.md's flags differ from cmd/smscsim/config.go; run OTPD_UPDATE_DOCS=1 go test ./cmd/smscsim")
}

// TestExampleConfigLoads: fixtures/smscsim.yaml loads and sets every key.
func TestExampleConfigLoads(t *testing.T) {
	const path = "../../fixtures/smscsim.yaml"
	cfg, _, err := load(t, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].TPS != 100 || len(cfg.Rules) != 3 || cfg.DLRDelay.Max != 2*time.Second || cfg.MaxPendingReceipts != 100000 {
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
	for _, s := range spec.Settings {
		if s.Key == "" {
			continue
		}
		var v any = doc
		for _, part := range strings.Split(s.Key, ".") {
			m, _ := v.(map[string]any)
			v = m[part]
		}
		if v == nil {
			t.Errorf("fixtures/smscsim.yaml does not set %s", s.Key)
		}
	}
	for k := range spec.Sections {
		if doc[k] == nil {
			t.Errorf("fixtures/smscsim.yaml does not set %s", k)
		}
	}
}
