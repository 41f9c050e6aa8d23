//go:build !unix

package smpp

import (
	"io"
	"net"
	"time"
)

const canWriteNow = false

// writeNonBlocking is not used where canWriteNow is false.
func writeNonBlocking(fd uintptr, b []byte) int { return 0 }

// newPollReader: reads wait at once where canWriteNow is false.
func newPollReader(c net.Conn, poll time.Duration) (io.Reader, bool) { return nil, false }
