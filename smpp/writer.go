package smpp

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// batchFlush is how many queued octets wake the writer goroutine even
// while the read loop holds writes (hold).
const batchFlush = 64 << 10

// batchPart and partPDUs: during a batch the read loop writes what is
// queued once it reaches batchPart octets, or once it has handled partPDUs
// PDUs since it last wrote, so that the peer has work while the batch goes
// on (responses are small: by octets alone a whole window would wait).
const (
	batchPart = 4096
	partPDUs  = 64
)

// writer coalesces PDUs into few socket writes. What is queued while a
// write is in flight goes out in the next single write.
//
// A batch is the PDUs the read loop has read and handles without waiting
// for the connection. What it queues meanwhile (the responses of an inline
// Handler, the requests a completion starts) does not wake the writer
// goroutine: at the batch's end, and every 4 KiB before it, the read loop
// writes what is queued itself, as far as the socket takes it without
// waiting (TCP only), and leaves any rest to the writer goroutine. While
// the read loop runs such code (hold), what other goroutines queue waits
// for it too; between PDUs it wakes the writer goroutine as usual. So that
// code must not block (an inline Handler must return at once, as
// HandlerConcurrency says), and where the read loop may wait (a handler
// slot, Authenticate, OnBound) it ends the batch first. Under load that
// makes one write per batch of reads and no goroutine wake-up per PDU; the
// read loop never waits for the socket, only, like every sender, for room
// in a full buffer (1 MiB).
type writer struct {
	s       *Session
	raw     syscall.RawConn // nil: no inline writes (TLS, pipes)
	mu      sync.Mutex
	cond    sync.Cond // signalled when buf drains below the limit
	buf     []byte
	spare   []byte
	wake    chan struct{}
	writing bool        // a write is in flight, by the writer goroutine or inline
	held    atomic.Bool // the read loop is handling a PDU and writes at its batch's end
	closed  bool
	after   func() // run once buf is written (flushThen)
	maxBuf  int

	// one non-blocking write (writeNow): made once, as a closure per call
	// allocates
	try  func(fd uintptr) bool
	out  []byte
	outN int
}

func (w *writer) init(s *Session) {
	w.s = s
	w.cond.L = &w.mu
	w.wake = make(chan struct{}, 1)
	w.maxBuf = 1 << 20
	w.buf = make([]byte, 0, 4096)
	w.spare = make([]byte, 0, 4096)
	if tc, ok := s.conn.(*net.TCPConn); ok && canWriteNow {
		if rc, err := tc.SyscallConn(); err == nil {
			w.raw = rc
			w.try = func(fd uintptr) bool {
				w.outN = writeNonBlocking(fd, w.out)
				return true // never wait for the socket to become writable
			}
		}
	}
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writer) enqueue(p PDU) error {
	_, err := w.put(p, true)
	return err
}

// tryEnqueue is enqueue that does not wait for room: false when the
// buffer is full.
func (w *writer) tryEnqueue(p PDU) (bool, error) { return w.put(p, false) }

func (w *writer) put(p PDU, wait bool) (bool, error) {
	w.mu.Lock()
	if !wait && len(w.buf) >= w.maxBuf && !w.closed {
		w.mu.Unlock()
		return false, nil
	}
	for len(w.buf) >= w.maxBuf && !w.closed {
		w.cond.Wait()
	}
	if w.closed || w.after != nil {
		w.mu.Unlock()
		return true, ErrClosed
	}
	var err error
	w.buf, err = AppendPDU(w.buf, p)
	signal := !w.held.Load() || len(w.buf) >= batchFlush
	w.mu.Unlock()
	if err != nil {
		return true, err
	}
	if signal {
		w.signal()
	}
	return true, nil
}

// hold: the read loop handles a PDU (a response's completion, an inline
// Handler); what is queued meanwhile, by it or by others, waits for the
// batch's end (or for batchFlush octets) instead of waking the writer
// goroutine.
func (w *writer) hold() { w.held.Store(true) }

// unhold: the read loop is done with the PDU; what others queue from now
// wakes the writer goroutine again.
func (w *writer) unhold() { w.held.Store(false) }

// endBatch: the read loop is about to wait (for the connection, a handler
// slot, Authenticate, OnBound) or ends. What is queued goes out now.
func (w *writer) endBatch() {
	w.unhold()
	w.flushInline(0)
}

// midBatch: the read loop has handled a PDU of a batch. Once what is queued
// reaches batchPart octets (or anything is queued, with force) it goes
// out, so that the peer works on it while the batch goes on: both ends
// busy at once, not taking turns. It reports whether it went out (or a
// write in flight took it).
func (w *writer) midBatch(force bool) bool {
	if force {
		return w.flushInline(1)
	}
	return w.flushInline(batchPart)
}

// flushInline writes, from the read loop, everything queued if it is at
// least min octets.
func (w *writer) flushInline(min int) bool {
	w.mu.Lock()
	if len(w.buf) == 0 || len(w.buf) < min || w.writing {
		// Too little queued, or a write in flight that looks again when
		// done.
		below := len(w.buf) == 0 || len(w.buf) < min
		w.mu.Unlock()
		return !below
	}
	if w.raw == nil || w.closed || w.after != nil {
		w.mu.Unlock()
		w.signal()
		return true
	}
	out := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.writing = true
	w.cond.Broadcast()
	w.mu.Unlock()

	n := w.writeNow(out)
	if n > 0 {
		w.s.writes.Add(1)
	}

	w.mu.Lock()
	w.writing = false
	more := len(w.buf) > 0 || w.closed || w.after != nil
	if n < len(out) {
		// The socket is full (or failed): the rest goes first, then what
		// was queued meanwhile, by the writer goroutine, which waits for
		// the socket (or reports its error).
		rest := append(out[:0], out[n:]...)
		rest = append(rest, w.buf...)
		w.buf, w.spare = rest, w.buf[:0]
		more = true
	} else {
		w.spare = out[:0]
	}
	w.mu.Unlock()
	if more {
		w.signal()
	}
	return true
}

// writeNow writes what the socket takes without waiting and returns how
// many octets that was.
func (w *writer) writeNow(b []byte) int {
	w.out, w.outN = b, 0
	w.raw.Write(w.try)
	n := w.outN
	w.out = nil
	return n
}

func (w *writer) flushThen(f func()) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		f()
		return
	}
	w.after = f
	w.mu.Unlock()
	w.signal()
}

func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	w.signal()
}

func (w *writer) loop() {
	defer w.s.wg.Done()
	for {
		<-w.wake
		w.mu.Lock()
		if w.writing {
			// An inline write is in flight; it signals when it is done if
			// anything is left.
			w.mu.Unlock()
			continue
		}
		if len(w.buf) == 0 && !w.closed && w.after == nil {
			w.mu.Unlock() // a spare wake-up: nothing to do
			continue
		}
		out := w.buf
		w.buf, w.spare = w.spare[:0], nil
		closed := w.closed
		after := w.after
		mine := len(out) > 0 && !closed // this pass writes
		w.writing = mine
		w.cond.Broadcast()
		w.mu.Unlock()
		if mine {
			w.s.conn.SetWriteDeadline(time.Now().Add(w.s.cfg.WriteTimeout))
			w.s.writes.Add(1)
			_, err := w.s.conn.Write(out)
			// Cleared, so that an expired deadline does not stop the next
			// inline write.
			w.s.conn.SetWriteDeadline(time.Time{})
			if err != nil {
				w.mu.Lock()
				w.closed = true
				w.writing = false
				w.cond.Broadcast()
				w.mu.Unlock()
				// On this goroutine, which the session's wait group
				// counts: abort does not wait for the writer.
				w.s.abort(linkErr(fmt.Errorf("write: %w", err)))
				return
			}
		}
		w.mu.Lock()
		if mine {
			w.writing = false
		}
		w.spare = out[:0]
		empty := len(w.buf) == 0
		w.mu.Unlock()
		if !empty && !closed {
			w.signal()
		}
		if after != nil && empty {
			after()
			return
		}
		if closed {
			return
		}
	}
}
