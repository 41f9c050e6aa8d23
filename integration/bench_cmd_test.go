package integration

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// benchSummary is what `otpd bench ... --json` prints.
type benchSummary struct {
	Sent         int64              `json:"sent"`
	OK           int64              `json:"ok"`
	Errors       map[string]int64   `json:"errors"`
	Receipts     int64              `json:"receipts"`
	Rate         float64            `json:"rate_per_second"`
	LatencyMS    map[string]float64 `json:"latency_ms"`
	EndToEnd     float64            `json:"end_to_end_seconds"`
	EndToEndRate float64            `json:"end_to_end_per_second"`
}

func runBench(t *testing.T, args ...string) benchSummary {
	t.Helper()
	otpdBin, _ := binaries(t)
	out, _ := run(t, otpdBin, append([]string{"bench"}, args...)...)
	var s benchSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("otpd bench %s: not the JSON summary: %v\n%s", strings.Join(args, " "), err, out)
	}
	return s
}

// TestBenchCommands runs `otpd bench smpp` and `otpd bench otp` as an
// operator would, against the smscsim binary and an otpd serving on it,
// and checks that their summaries account for every request.
func TestBenchCommands(t *testing.T) {
	t.Parallel()
	sim := startSim(t, freeAddr(t), freeAddr(t), "--dlr-delay", "10ms")

	s := runBench(t, "smpp", "--smsc", sim.smpp, "--system-id", simSystemID, "--password", simPassword,
		"--n", "3000", "--window", "50", "--binds", "2", "--json")
	if s.Sent != 3000 || s.OK != 3000 || len(s.Errors) != 0 || s.Rate <= 0 || s.LatencyMS["p99"] <= 0 || s.LatencyMS["max"] < s.LatencyMS["p50"] {
		t.Errorf("bench smpp: %+v", s)
	}

	// A wrong password is a clear error naming the SMSC's status.
	otpdBin, _ := binaries(t)
	cmd := exec.Command(otpdBin, "bench", "smpp", "--smsc", sim.smpp, "--system-id", simSystemID, "--password", "wrong", "--n", "10")
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ESME_RINVPASWD") {
		t.Errorf("bench smpp with a wrong password: %v\n%s", err, out)
	}

	o := startOtpd(t, freeAddr(t), t.TempDir(), append(otpdSMSCArgs(sim), "--no-auth",
		"--limit-phone", "off", "--limit-global", "off", "--limit-country", "off", "--limit-key", "off", "--limit-prefix", "off")...)
	s = runBench(t, "otp", "--url", o.url, "--sim-url", "http://"+sim.http, "--n", "200", "--concurrency", "8", "--json")
	if s.Sent != 200 || s.OK != 200 || len(s.Errors) != 0 || s.LatencyMS["p99"] <= 0 {
		t.Errorf("bench otp: %+v", s)
	}
	if s.Receipts != 200 || s.EndToEnd <= 0 || s.EndToEndRate <= 0 {
		t.Errorf("bench otp: every OTP should end with its receipt matched: %+v", s)
	}
	s = runBench(t, "otp", "--url", o.url, "--sim-url", "http://"+sim.http, "--n", "300", "--concurrency", "16", "--no-verify", "--json")
	if s.Sent != 300 || s.OK != 300 || s.Receipts != 300 || s.EndToEndRate <= 0 {
		t.Errorf("bench otp --no-verify: %+v", s)
	}
}
