// Package simulatortest starts an SMSC simulator for a Go test: on free
// loopback ports (no fixed port collides between test packages run in
// parallel), closed by t.Cleanup, with its addresses and an HTTP client
// ready.
//
//	sim := simulatortest.New(t)
//	// point the code under test at sim.SMPPAddr, then, for each SMS:
//	cur := sim.Cursor(t, "+4915112345678")
//	... make the code under test send one ...
//	m := sim.Next(t, cur) // the SMS sent after the cursor, never an older one
//	use(m.Code)
package simulatortest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/otpd/otpd/simulator"
)

// Sim is a running simulator and what a test needs to talk to it.
type Sim struct {
	*simulator.Simulator
	// SMPPAddr is the SMPP listener's host:port (the TLS one when the
	// plain listener is off).
	SMPPAddr string
	// URL is the HTTP API's base URL, "http://127.0.0.1:PORT".
	URL string
	// Client is an HTTP client for the API with a timeout.
	Client *http.Client
	// Timeout bounds Next and the other waits; default 20s.
	Timeout time.Duration
}

// New starts a simulator on free loopback ports, its HTTP API included,
// and closes it when the test ends. configure, when given, changes the
// configuration first (accounts, delays, faults, TLS, ...); the addresses
// are chosen at run time unless configure sets them.
func New(t testing.TB, configure ...func(*simulator.Config)) *Sim {
	t.Helper()
	cfg := simulator.Config{SMPPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", SMPPTLSAddr: "127.0.0.1:0"}
	for _, f := range configure {
		f(&cfg)
	}
	if cfg.TLS == nil {
		cfg.SMPPTLSAddr = ""
	}
	sim, err := simulator.Start(cfg)
	if err != nil {
		t.Fatalf("simulatortest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sim.Close(ctx); err != nil {
			t.Errorf("simulatortest: close: %v", err)
		}
	})
	s := &Sim{Simulator: sim, SMPPAddr: sim.Addr(), Client: &http.Client{Timeout: 90 * time.Second}, Timeout: 20 * time.Second}
	if a := sim.HTTPAddr(); a != "" {
		s.URL = "http://" + a
	}
	return s
}

// Cursor is a place in the order in which messages complete: Next reads
// the first message after it. The zero Cursor is before every message.
type Cursor struct {
	Filter simulator.Filter
}

// Cursor returns the place after the newest message to `to` that exists
// now (to "" for any number). Take it before the code under test sends.
func (s *Sim) Cursor(t testing.TB, to string) Cursor {
	return s.CursorFilter(t, simulator.Filter{To: to})
}

// CursorFilter is Cursor for the messages matching f (a namespace:
// f.SystemID).
func (s *Sim) CursorFilter(t testing.TB, f simulator.Filter) Cursor {
	f.SinceID, f.Since, f.Limit = "", time.Time{}, 0
	if m, ok := s.Latest(f); ok {
		f.SinceID = m.ID
	}
	return Cursor{Filter: f}
}

// Next waits for the first message after c and returns it; it fails the
// test after s.Timeout. Pass the cursor of the message it returns
// (c.After) to read the one after it.
func (s *Sim) Next(t testing.TB, c Cursor) simulator.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	m, err := s.WaitForMessage(ctx, c.Filter)
	if err != nil {
		t.Fatalf("simulatortest: no message after the cursor (%+v): %v", c.Filter, err)
	}
	return m
}

// After is the cursor just after m.
func (c Cursor) After(m simulator.Message) Cursor {
	c.Filter.SinceID = m.ID
	return c
}

// GetJSON sends GET path (for example "/api/messages?to=...") to the HTTP
// API and decodes the JSON answer into out; it returns the status code.
func (s *Sim) GetJSON(t testing.TB, path string, out any) int {
	t.Helper()
	resp, err := s.Client.Get(s.URL + path)
	if err != nil {
		t.Fatalf("simulatortest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("simulatortest: GET %s: %v", path, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("simulatortest: GET %s: %s %q: %v", path, resp.Status, b, err)
		}
	}
	return resp.StatusCode
}

// String names the simulator in failure messages.
func (s *Sim) String() string { return fmt.Sprintf("smscsim smpp=%s http=%s", s.SMPPAddr, s.URL) }
