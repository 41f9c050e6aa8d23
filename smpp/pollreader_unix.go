//go:build unix

package smpp

import (
	"net"
	"runtime"
	"syscall"
	"time"
)

// pollReader reads a TCP connection, and while the link is busy polls it
// for a short while before waiting: a wait parks the goroutine and lets
// the CPU idle, and waking both costs more than the data takes to come.
type pollReader struct {
	c    net.Conn
	raw  syscall.RawConn
	poll time.Duration
	busy bool // the last wait was short: poll before the next
}

func newPollReader(c net.Conn, poll time.Duration) (*pollReader, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok || poll <= 0 {
		return nil, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, false
	}
	return &pollReader{c: c, raw: rc, poll: poll}, true
}

func (r *pollReader) Read(b []byte) (int, error) {
	if r.busy {
		deadline := time.Now().Add(r.poll)
		for i := 1; ; i++ {
			var n int
			var err error
			r.raw.Read(func(fd uintptr) bool {
				n, err = syscall.Read(int(fd), b)
				return true // never wait here
			})
			if n > 0 {
				return n, nil
			}
			if err != syscall.EAGAIN && err != syscall.EINTR {
				break // end of stream or an error: the read below reports it
			}
			if i%16 == 0 && time.Now().After(deadline) {
				break
			}
			runtime.Gosched()
		}
	}
	t0 := time.Now()
	n, err := r.c.Read(b)
	r.busy = time.Since(t0) < 4*r.poll
	return n, err
}
