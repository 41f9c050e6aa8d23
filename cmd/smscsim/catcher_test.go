package main

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/simulator/simulatortest"
	"github.com/otpd/otpd/smpp"
)

// TestTLSAndCatcherFlags: --smpp-tls-cert/--smpp-tls-key serve SMPP over
// TLS (with --smpp off, TLS only); --dlr-mode and --code-pattern reach
// the simulator, from flags and from the file.
func TestTLSAndCatcherFlags(t *testing.T) {
	certs := simulatortest.NewCerts(t)
	cfg, _, err := load(t, "--smpp", "off", "--smpp-tls", "127.0.0.1:0", "--http", "off", "--smpp-tls-cert", certs.CertFile,
		"--smpp-tls-key", certs.KeyFile, "--dlr-mode", "manual", "--code-pattern", `G-(\d+)`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || cfg.DLRMode != "manual" || cfg.CodePattern != `G-(\d+)` {
		t.Fatalf("config: %+v", cfg)
	}
	sim, err := simulator.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close(context.Background())
	s, err := smpp.Dial(context.Background(), sim.Addr(), smpp.Config{SystemID: "t", TLS: &tls.Config{RootCAs: certs.CAPool}})
	if err != nil {
		t.Fatalf("bind over TLS: %v", err)
	}
	s.Close(context.Background())

	file := writeFile(t, "smpp_tls_cert: "+certs.CertFile+"\nsmpp_tls_key: "+certs.KeyFile+"\ndlr_mode: manual\ncode_pattern: 'x(\\d)'\nsmpp_tls: 127.0.0.1:0\n")
	if cfg, _, err = load(t, "--config", file); err != nil || cfg.TLS == nil || cfg.DLRMode != "manual" || cfg.CodePattern != `x(\d)` || cfg.SMPPTLSAddr != "127.0.0.1:0" {
		t.Fatalf("from the file: %+v %v", cfg, err)
	}
	for _, args := range [][]string{
		{"--smpp-tls-cert", certs.CertFile},
		{"--smpp-tls-key", certs.KeyFile},
		{"--smpp-tls-cert", certs.KeyFile, "--smpp-tls-key", certs.CertFile},
	} {
		if _, _, err := load(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	for _, c := range []simulator.Config{{DLRMode: "later"}, {CodePattern: "(["}, {SMPPAddr: "off"}} {
		c.HTTPAddr = ""
		if c.SMPPAddr == "" {
			c.SMPPAddr = "127.0.0.1:0"
		}
		if sim, err := simulator.Start(c); err == nil {
			sim.Close(context.Background())
			t.Errorf("%+v started", c)
		}
	}
}
