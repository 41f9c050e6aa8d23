package docs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// smscsimBlock returns the first block of the language lang in the section
// of docs/smscsim.md under the heading.
func smscsimBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile("smscsim.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## "+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/smscsim.md has no section %q", heading)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("docs/smscsim.md's section %q has no %s block", heading, lang)
	}
	return m[1]
}

// TestSmscsimGoExampleIsThisTest: the Go example of docs/smscsim.md is
// TestLoginSendsACode, which runs.
func TestSmscsimGoExampleIsThisTest(t *testing.T) {
	doc := smscsimBlock(t, "From Go tests", "go")
	src, err := os.ReadFile("smscsim_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), doc) {
		t.Fatalf("docs/smscsim.md's first Go example is not in docs/smscsim_example_test.go as written:\n%s", doc)
	}
}

// TestSmscsimCursor runs the cursor block of docs/smscsim.md twice, in one
// namespace and to one number, against the smscsim and otpd binaries, and
// checks that each run reads its own SMS's code: the first run with no
// message before it (the 404 branch), the second after one (since=).
func TestSmscsimCursor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs smscsim and otpd")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("OTPD_INTEROP_REQUIRED") != "" {
				t.Fatalf("the example needs %s: %v", tool, err)
			}
			t.Skipf("the example needs %s: %v", tool, err)
		}
	}
	block := smscsimBlock(t, "Reading the SMS a test caused", "sh")
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/smscsim", "./cmd/otpd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	smppAddr, httpAddr := startSmscsim(t, filepath.Join(bin, "smscsim"))
	script := strings.NewReplacer("http://127.0.0.1:8025", "http://"+httpAddr, "127.0.0.1:2775", smppAddr).Replace(block)
	if script == block {
		t.Fatal("the block names neither 127.0.0.1:8025 nor 127.0.0.1:2775")
	}
	for run := 1; run <= 2; run++ {
		sh := exec.Command("bash", "-euo", "pipefail", "-c", script)
		sh.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		sh.Stderr = os.Stderr
		out, err := sh.Output()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != "481516" {
			t.Fatalf("run %d printed %q, want 481516", run, got)
		}
	}
	// Both runs' SMS are there: the second run read the second one.
	out, err := exec.Command("curl", "-s", "http://"+httpAddr+"/api/messages?to=4915112345678&system_id=ci-job-1").Output()
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Messages []struct{ ID string } }
	if err := json.Unmarshal(out, &list); err != nil || len(list.Messages) != 2 {
		t.Fatalf("messages after two runs: %s (%v)", out, err)
	}
}

// startSmscsim starts the binary on free loopback ports and returns the
// addresses its start line names.
func startSmscsim(t *testing.T, path string) (smppAddr, httpAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "--smpp", "127.0.0.1:0", "--http", "127.0.0.1:0")
	errs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	type started struct{ SMPP, HTTP string }
	ch := make(chan started, 1)
	go func() {
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			var l struct {
				Msg  string `json:"msg"`
				SMPP string `json:"smpp"`
				HTTP string `json:"http"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "smscsim: started" {
				ch <- started{l.SMPP, l.HTTP}
			}
		}
	}()
	select {
	case s := <-ch:
		return s.SMPP, s.HTTP
	case <-time.After(30 * time.Second):
		t.Fatal("smscsim did not say where it listens")
	}
	return "", ""
}
