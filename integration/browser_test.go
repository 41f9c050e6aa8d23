package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromiumPath is Debian's Chromium, which the browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// needBrowser returns node with playwright-core and Chromium ready: it
// installs Chromium with apt-get when it is missing and the test runs as
// root, else skips (fails with OTPD_INTEROP_REQUIRED set).
func needBrowser(t *testing.T) string {
	t.Helper()
	node := needNode(t)
	why := ""
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "playwright-core", "package.json")); err != nil {
		why = "integration/node/node_modules has no playwright-core (run: npm ci --prefix integration/node)"
	} else if _, err := os.Stat(chromiumPath); err != nil {
		why = installChromium(t)
	}
	if why == "" {
		return node
	}
	if os.Getenv("OTPD_INTEROP_REQUIRED") != "" {
		t.Fatalf("OTPD_INTEROP_REQUIRED is set but %s", why)
	}
	t.Skip(why)
	return ""
}

// installChromium runs apt-get install -y chromium; it returns why it
// could not, "" once installed.
func installChromium(t *testing.T) string {
	t.Helper()
	apt, err := exec.LookPath("apt-get")
	if err != nil || os.Geteuid() != 0 {
		return chromiumPath + " is missing and cannot be installed here (apt-get as root): apt-get install -y chromium"
	}
	t.Logf("installing Chromium: apt-get install -y chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return err
	}
	if run("install", "-y", "chromium") != nil && (run("update") != nil || run("install", "-y", "chromium") != nil) {
		return "apt-get install -y chromium failed"
	}
	return ""
}

// artifactsDir is where browser tests save screenshots: $OTPD_ARTIFACTS
// (CI uploads it), else a directory under the system's temporary one.
func artifactsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("OTPD_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "otpd-artifacts")
	}
	dir := filepath.Join(base, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInboxBrowser drives smscsim's inbox page in Chromium while otpd
// sends through smscsim (DLR mode manual: the page sends the receipt).
func TestInboxBrowser(t *testing.T) {
	t.Parallel()
	node := needBrowser(t)
	sim := startSim(t, freeAddr(t), freeAddr(t), "--dlr-mode", "manual")
	o := startOtpd(t, freeAddr(t), t.TempDir(), append(otpdSMSCArgs(sim), "--no-auth")...)
	art := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "inbox-browser.js")
	cmd.Dir = nodeDir
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "SIM_URL=http://"+sim.http, "OTPD_URL="+o.url, "PHONE="+newPhone(""), "NS="+simSystemID,
		"ARTIFACTS="+art, "CHROMIUM="+chromiumPath)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"event":"done"}`) {
		t.Fatalf("inbox-browser.js: %v\n%s", err, out)
	}
	for _, name := range []string{"inbox", "detail", "receipt", "cleared"} {
		if fi, err := os.Stat(filepath.Join(art, name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	t.Logf("screenshots in %s", art)
}

// runBrowserScript runs one of integration/node's browser scripts with env
// and checks that it finished and saved the screenshots named.
func runBrowserScript(t *testing.T, node, script, art string, env []string, shots ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = nodeDir
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(append(os.Environ(), "ARTIFACTS="+art, "CHROMIUM="+chromiumPath), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"event":"done"}`) {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if testing.Verbose() {
		t.Logf("%s:\n%s", script, out)
	}
	for _, name := range shots {
		if fi, err := os.Stat(filepath.Join(art, name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	t.Logf("screenshots in %s", art)
}

// TestConsoleBrowser drives otpd's console in Chromium with authentication
// on, against smscsim: keys made with otpd keys create (an admin one, one
// with the otp scope only), reports of OTPs sent with the otp key, one
// number smscsim cannot deliver to, and a webhook to a closed port.
func TestConsoleBrowser(t *testing.T) {
	t.Parallel()
	node := needBrowser(t)
	bin, _ := binaries(t)
	data := t.TempDir()
	newKey := func(name, scopes string) string {
		out, _ := run(t, bin, "keys", "create", "--data", data, "--name", name, "--scopes", scopes)
		k := strings.TrimSpace(out)
		if k == "" || strings.ContainsAny(k, " \n") {
			t.Fatalf("otpd keys create printed %q", out)
		}
		return k
	}
	admin, otpOnly := newKey("ops", "admin"), newKey("app", "otp")
	bad := newPhone("+49160")
	sim := startSim(t, freeAddr(t), freeAddr(t), "--rule", "+49160=UNDELIV:001")
	o := startOtpd(t, freeAddr(t), data, otpdSMSCArgs(sim)...) // a real SMSC: keys required
	closed := freeAddr(t)                                      // nothing listens there
	runBrowserScript(t, node, "console-browser.js", artifactsDir(t), []string{
		"OTPD_URL=" + o.url, "ADMIN_KEY=" + admin, "OTP_KEY=" + otpOnly,
		"PHONE=" + newPhone(""), "PHONE_BAD=" + bad, "PHONE_HOOK=" + newPhone(""),
		"HOOK_URL=http://" + closed + "/otp-hook?token=hook-s3cret",
	}, "console-login", "console", "console-reports", "console-webhooks")
}

// TestDemoBrowser drives the try-it page in Chromium: with --demo against
// smscsim (the code read from smscsim's API) and on the embedded default
// (the page shows the simulator's copy).
func TestDemoBrowser(t *testing.T) {
	t.Parallel()
	node := needBrowser(t)
	shots := []string{"demo-sent", "demo-denied", "demo-approved"}
	t.Run("smscsim", func(t *testing.T) {
		sim := startSim(t, freeAddr(t), freeAddr(t))
		o := startOtpd(t, freeAddr(t), t.TempDir(), append(otpdSMSCArgs(sim), "--demo")...)
		runBrowserScript(t, node, "demo-browser.js", artifactsDir(t), []string{
			"OTPD_URL=" + o.url, "SIM_URL=http://" + sim.http, "EMBEDDED=0", "PHONE=" + newPhone(""),
		}, shots...)
	})
	t.Run("embedded", func(t *testing.T) {
		simHTTP := freeAddr(t)
		o := startOtpd(t, freeAddr(t), t.TempDir(), "--sim-http", simHTTP)
		runBrowserScript(t, node, "demo-browser.js", artifactsDir(t), []string{
			"OTPD_URL=" + o.url, "SIM_URL=http://" + simHTTP, "EMBEDDED=1", "PHONE=" + newPhone(""),
		}, shots...)
	})
}
