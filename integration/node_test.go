package integration

// Helpers shared by the tests that run node scripts as separate processes
// (smsc.js, esme.js): start a script, read its JSON lines, wait for an event
// with a deadline, wait for the process to end. The deadlines are guards
// against hangs, not timing assertions.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// nodeRunLimit bounds a node process's whole life.
	nodeRunLimit = 2 * time.Minute
	// eventWait bounds the wait for one expected event.
	eventWait = 30 * time.Second
)

// nodeEvent is one JSON line a script printed. "LISTENING <port>" becomes
// {"event":"listening","port":<port>}; a line that is not JSON becomes
// {"event":"raw","line":...}.
type nodeEvent map[string]any

// Name is the "event" field.
func (e nodeEvent) Name() string { return e.Str("event") }

// Str is a string field ("" when absent or not a string).
func (e nodeEvent) Str(k string) string {
	s, _ := e[k].(string)
	return s
}

// Int is a number field (-1 when absent or not a number).
func (e nodeEvent) Int(k string) int {
	if f, ok := e[k].(float64); ok {
		return int(f)
	}
	return -1
}

func (e nodeEvent) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

// isEvent matches events by name.
func isEvent(name string) func(nodeEvent) bool {
	return func(e nodeEvent) bool { return e.Name() == name }
}

// lockedBuffer is a bytes.Buffer safe for a writer and readers at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// nodeProc is a running node script. Its stdin stays open until cleanup (a
// script may take the end of stdin as the order to exit); its stdout is read
// line by line into events.
type nodeProc struct {
	t      *testing.T
	script string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer

	mu      sync.Mutex
	events  []nodeEvent
	changed chan struct{} // closed and replaced at every new event, and at exit
	exited  bool
	waitErr error
	done    chan struct{} // closed once the process has ended and been waited for
}

// startNode starts `node script args...` in integration/node. It skips or
// fails the test when node or node_modules is missing (see needNode). The
// process is killed at cleanup if it has not ended by then, and always
// waited for; on failure its output is logged.
func startNode(t *testing.T, script string, args ...string) *nodeProc {
	t.Helper()
	node := needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), nodeRunLimit)
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = nodeDir
	cmd.WaitDelay = 5 * time.Second
	p := &nodeProc{t: t, script: script, cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		defer close(p.done)
		defer cancel()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			p.add(parseNodeLine(sc.Text()))
		}
		// Read to the end before Wait, as StdoutPipe requires.
		io.Copy(io.Discard, stdout)
		err := cmd.Wait()
		p.mu.Lock()
		p.exited, p.waitErr = true, err
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("node %s did not exit after stdin closed; killing it", script)
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			p.dump()
		}
	})
	return p
}

func parseNodeLine(line string) nodeEvent {
	if rest, ok := strings.CutPrefix(line, "LISTENING "); ok {
		if port, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
			return nodeEvent{"event": "listening", "port": float64(port)}
		}
	}
	var e nodeEvent
	if err := json.Unmarshal([]byte(line), &e); err != nil || e == nil {
		return nodeEvent{"event": "raw", "line": line}
	}
	return e
}

func (p *nodeProc) add(e nodeEvent) {
	p.mu.Lock()
	p.events = append(p.events, e)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// dump logs everything the process printed.
func (p *nodeProc) dump() {
	p.t.Helper()
	var b strings.Builder
	for _, e := range p.Events() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	p.t.Logf("node %s stdout:\n%sstderr:\n%s", p.script, b.String(), p.stderr.String())
}

// Events returns a copy of the events so far.
func (p *nodeProc) Events() []nodeEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]nodeEvent(nil), p.events...)
}

// Filter returns the events so far that match.
func (p *nodeProc) Filter(match func(nodeEvent) bool) []nodeEvent {
	var out []nodeEvent
	for _, e := range p.Events() {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvents waits until at least n events match and returns the matching
// events so far. It fails the test if the process ends, or eventWait passes,
// first.
func (p *nodeProc) WaitEvents(what string, n int, match func(nodeEvent) bool) []nodeEvent {
	p.t.Helper()
	deadline := time.NewTimer(eventWait)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		var out []nodeEvent
		for _, e := range p.events {
			if match(e) {
				out = append(out, e)
			}
		}
		exited, ch := p.exited, p.changed
		p.mu.Unlock()
		if len(out) >= n {
			return out
		}
		if exited {
			p.t.Fatalf("node %s exited (%v) with %d of %d events %s", p.script, p.exitErr(), len(out), n, what)
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("node %s: %d of %d events %s after %v", p.script, len(out), n, what, eventWait)
		}
	}
}

// WaitEvent waits for the first event that matches.
func (p *nodeProc) WaitEvent(what string, match func(nodeEvent) bool) nodeEvent {
	p.t.Helper()
	return p.WaitEvents(what, 1, match)[0]
}

func (p *nodeProc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Wait waits for the process to end by itself and returns how it ended (nil
// for exit status 0). It fails the test if that takes longer than eventWait.
func (p *nodeProc) Wait() error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(eventWait):
		p.t.Fatalf("node %s still running after %v", p.script, eventWait)
		return nil
	}
}

// Send writes one line to the script's stdin.
func (p *nodeProc) Send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("node %s: writing %q to stdin: %v", p.script, line, err)
	}
}

// Port waits for "LISTENING <port>" and returns the loopback address.
func (p *nodeProc) Port() string {
	p.t.Helper()
	e := p.WaitEvent("listening", isEvent("listening"))
	return fmt.Sprintf("127.0.0.1:%d", e.Int("port"))
}
