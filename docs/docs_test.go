// Package docs holds the tests that keep README.md and docs/ true: the
// quick start runs as written, and every link resolves.
package docs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const root = ".."

// quickStart returns the README's tour: the second sh block of the Quick
// start section.
func quickStart(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Quick start")
	if i < 0 {
		t.Fatal("README has no Quick start section")
	}
	s = s[i:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1)
	if len(blocks) != 2 {
		t.Fatalf("README's Quick start has %d sh blocks, want 2: make run and the tour, both of which this test runs", len(blocks))
	}
	if !strings.Contains(blocks[0][1], "make run") {
		t.Fatal("the Quick start's first block does not start with make run")
	}
	return blocks[1][1]
}

// step is one command of the tour and the answer the README shows for it.
type step struct {
	cmd  string
	want []string // "# " lines after the command; … stands for any text
}

func parse(tour string) []step {
	var steps []step
	for _, line := range strings.Split(tour, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "# "):
			if len(steps) > 0 && !regexp.MustCompile(`^# \d+\. `).MatchString(line) {
				steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimPrefix(line, "# "))
			}
		default:
			steps = append(steps, step{cmd: line})
		}
	}
	return steps
}

func pattern(want string) *regexp.Regexp {
	parts := strings.Split(want, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".+") + "$")
}

// startMakeRun runs make run as a newcomer would, on ports chosen at run
// time (through its OTPD_* variables), and returns otpd's and the
// simulator's addresses.
func startMakeRun(t *testing.T) (api, sim string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "make", "-s", "run")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "OTPD_HTTP=127.0.0.1:0", "OTPD_SIM_HTTP=127.0.0.1:0", "OTPD_DATA="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	started := regexp.MustCompile(`listening on http://(\S+) \(embedded default: .* its API on http://(\S+);`)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("make run ended before otpd said where it listens")
			}
			if m := started.FindStringSubmatch(l); m != nil {
				go func() {
					for range lines {
					}
				}()
				return m[1], m[2]
			}
		case <-ctx.Done():
			t.Fatal("otpd did not start")
		}
	}
}

// TestQuickStart runs every command of the README's tour, in order and in
// one shell, against a fresh make run, and checks each answer shown.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs otpd")
	}
	for _, tool := range []string{"make", "bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			// make test sets OTPD_INTEROP_REQUIRED: there, a missing tool fails.
			if os.Getenv("OTPD_INTEROP_REQUIRED") != "" {
				t.Fatalf("the tour needs %s: %v", tool, err)
			}
			t.Skipf("the tour needs %s: %v", tool, err)
		}
	}
	steps := parse(quickStart(t))
	if len(steps) < 5 {
		t.Fatalf("%d commands in the tour", len(steps))
	}
	apiAddr, simAddr := startMakeRun(t)
	ports := strings.NewReplacer("localhost:8080", apiAddr, "localhost:8025", simAddr)
	// One shell for the whole tour, so that variables carry over; a marker
	// after each command splits the output.
	const mark = "---otpd-readme-step---"
	var script strings.Builder
	script.WriteString("set -u\n")
	for _, s := range steps {
		fmt.Fprintf(&script, "%s\necho; echo %s\n", ports.Replace(s.cmd), mark)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = t.TempDir()
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the tour failed: %v\n%s", err, out)
	}
	outputs := strings.Split(string(out), mark+"\n")
	if len(outputs) != len(steps)+1 {
		t.Fatalf("%d outputs for %d commands:\n%s", len(outputs)-1, len(steps), out)
	}
	for i, s := range steps {
		var got []string
		for _, l := range strings.Split(outputs[i], "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
		if len(got) != len(s.want) {
			t.Errorf("%s\n  printed %q, the README shows %q", s.cmd, got, s.want)
			continue
		}
		for j := range got {
			if !pattern(s.want[j]).MatchString(got[j]) {
				t.Errorf("%s\n  printed  %s\n  README: %s", s.cmd, got[j], s.want[j])
			}
		}
	}
}

// TestMakeRunIsTheDaemon: the tour's make run is otpd serve on its embedded
// default.
func TestMakeRunIsTheDaemon(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^run:\n\t\$\(GO\) run ./cmd/otpd serve$`).Match(b) {
		t.Fatal("make run is not `go run ./cmd/otpd serve`; the README's tour assumes it is")
	}
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(t *testing.T, path string) map[string]bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(b), "")
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(text, -1) {
		out[slug(strings.ReplaceAll(m[1], "`", ""))] = true
	}
	return out
}

// TestLinksResolve: every relative link in README.md and docs/ names a file
// of the repository, and every #anchor a heading of its page.
func TestLinksResolve(t *testing.T) {
	pages := []string{filepath.Join(root, "README.md")}
	filepath.Walk(".", func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return nil
	})
	abs, _ := filepath.Abs(root)
	n := 0
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(b), "")
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			n++
			file, frag, _ := strings.Cut(link, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), file)
			}
			ta, _ := filepath.Abs(target)
			if !strings.HasPrefix(ta, abs+string(filepath.Separator)) {
				t.Errorf("%s: %s points outside the repository", page, link)
				continue
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: %s: no such file", page, link)
				continue
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !anchors(t, target)[frag] {
				t.Errorf("%s: %s: no heading with anchor #%s", page, link, frag)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d links checked", n)
	}
}
