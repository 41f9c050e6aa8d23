//go:build unix

package smpp

import (
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// pollReader reads a TCP connection, and while the link is busy polls it
// for a short while before waiting: a wait parks the goroutine and lets
// the CPU idle, and waking both costs more than the data takes to come.
// Busy: the last wait was shorter than the poll time, or the last poll
// found data. A poll that finds nothing turns polling off until a wait is
// short again, so polling costs CPU only where it pays.
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
	ran bool // try was called
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
		r.ran = true
		r.n, r.err = syscall.Read(int(fd), r.b)
		return true // never wait here
	}
	return r, true
}

func (r *pollReader) Read(b []byte) (int, error) {
	if r.busy && len(b) > 0 {
		deadline := time.Now().Add(r.poll)
		for i := 1; ; i++ {
			r.b, r.n, r.err, r.ran = b, 0, nil, false
			r.raw.Read(r.try)
			n, err := r.n, r.err
			r.b = nil
			switch {
			case n > 0:
				return n, nil
			case err == nil && r.ran:
				return 0, io.EOF
			case err == syscall.EAGAIN || err == syscall.EINTR:
			case err != nil:
				return 0, &net.OpError{Op: "read", Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("read", err)}
			default:
				// Not tried (the connection is closed or past its
				// deadline): the read below says why.
				goto wait
			}
			if i%16 == 0 && time.Now().After(deadline) {
				// Nothing came while polling: the next read waits at once,
				// so that a link with gaps just above the poll time does
				// not burn the poll time at every read.
				r.busy = false
				n, err := r.c.Read(b)
				return n, err
			}
			runtime.Gosched()
		}
	}
wait:
	t0 := time.Now()
	n, err := r.c.Read(b)
	r.busy = time.Since(t0) < r.poll
	return n, err
}
