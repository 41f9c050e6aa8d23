//go:build unix

package smpp

import "syscall"

const canWriteNow = true

// writeNonBlocking writes b to the non-blocking socket fd as far as it
// takes it now. An error (EAGAIN, EPIPE, ...) stops it: the writer
// goroutine writes the rest, waiting for the socket, and reports a failure.
func writeNonBlocking(fd uintptr, b []byte) int {
	n := 0
	for n < len(b) {
		m, err := syscall.Write(int(fd), b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return n
}
