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

	// one non-blocking read: made once, as a closure per call allocates
	try func(fd uintptr) bool
	b   []byte
	n   int
	err error
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
	r := &pollReader{c: c, raw: rc, poll: poll}
	r.try = func(fd uintptr) bool {
		r.n, r.err = syscall.Read(int(fd), r.b)
		return true // never wait here
	}
	return r, true
}

func (r *pollReader) Read(b []byte) (int, error) {
	if r.busy {
		deadline := time.Now().Add(r.poll)
		for i := 1; ; i++ {
			r.b, r.n, r.err = b, 0, nil
			r.raw.Read(r.try)
			n, err := r.n, r.err
			r.b = nil
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
