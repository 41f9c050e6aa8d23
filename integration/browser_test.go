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
