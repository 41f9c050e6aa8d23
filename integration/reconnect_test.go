package integration

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
)

// Against an SMSC that accepts every bind and drops the link right after
// bind_resp, otpd serve --smsc binds a handful of times in 10 seconds, not
// in a tight loop (real SMSCs block a source that does), and its log says
// why it waits.
func TestServeBacksOffFromDroppingSMSC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 10 s")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var binds atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
					return
				}
				p, err := smpp.NewReader(c).ReadPDU()
				if err != nil {
					return
				}
				b, ok := p.(*smpp.Bind)
				if !ok {
					return
				}
				out, err := smpp.Marshal(&smpp.BindResp{Header: smpp.Header{Sequence: b.Sequence}, Type: b.Type, SystemID: "FLAKY"})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Write(out); err == nil {
					binds.Add(1)
				}
			}()
		}
	}()
	bin, _ := binaries(t)
	p := startProc(t, "otpd", bin, "serve", "--http", freeAddr(t), "--data", t.TempDir(), "--no-auth",
		"--smsc", l.Addr().String(), "--system-id", "otp", "--password", "pw")
	// The default backoff: 500 ms, doubling to 30 s, each wait up to half
	// as much again: 0.5, 1, 2, 4 s (about 5 binds) fit in 10 s.
	timer := time.NewTimer(10 * time.Second)
	<-timer.C
	p.Stop()
	n := binds.Load()
	t.Logf("%d binds in 10 s", n)
	if n < 2 || n > 8 {
		t.Errorf("%d binds in 10 s against an SMSC dropping every link after bind_resp; want 2 to 8", n)
	}
	logs := p.stderr.String() + p.stdout.String()
	if !strings.Contains(logs, "bind lost; waiting before binding again") || !strings.Contains(logs, "that resets the backoff") {
		t.Errorf("the log does not say why otpd waits before binding again")
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "waiting before binding again") {
			t.Logf("log: %s", line)
			break
		}
	}
}
