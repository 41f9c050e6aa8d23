package simulator

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

// Message is one logical message as the simulator received it: the
// segments of a concatenated message are joined into one.
type Message struct {
	// ID is the message id of its first segment (as in submit_sm_resp).
	ID       string `json:"id"`
	SystemID string `json:"system_id"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Text is the decoded text (GSM 03.38, IA5, Latin-1 or UCS-2); empty
	// for binary data (see DataHex) and while segments are missing.
	Text       string    `json:"text"`
	DataCoding byte      `json:"data_coding"`
	Segments   int       `json:"segments"`
	ReceivedAt time.Time `json:"received_at"`
	// Receipt is set once a receipt has been sent.
	Receipt *ReceiptInfo `json:"receipt,omitempty"`

	// SegmentIDs are the ids of the segments in order (concatenated
	// messages only).
	SegmentIDs []string `json:"segment_ids,omitempty"`
	// SegmentsReceived counts the segments that arrived; Complete is
	// false while some are missing (and after they timed out).
	SegmentsReceived int  `json:"segments_received"`
	Complete         bool `json:"complete"`
	// Command is submit_sm, data_sm or submit_multi.
	Command            string `json:"command"`
	SourceTON          byte   `json:"source_ton"`
	SourceNPI          byte   `json:"source_npi"`
	DestTON            byte   `json:"dest_ton"`
	DestNPI            byte   `json:"dest_npi"`
	ESMClass           byte   `json:"esm_class"`
	RegisteredDelivery byte   `json:"registered_delivery"`
	// State is the message's state: ENROUTE until its outcome is due,
	// then the outcome (DELIVERED, UNDELIVERABLE, ...), or DELETED once
	// canceled.
	State string `json:"state"`
	// DataHex is the user data in hex when it is not text.
	DataHex string `json:"data_hex,omitempty"`
	// Codes are the codes found in Text: the matches of the configured
	// code pattern first, then every run of 4 to 10 digits; never null.
	// Code is the first of them, "" when there is none.
	Codes []string `json:"codes"`
	Code  string   `json:"code"`
	// PDUs are the hex of each segment's request PDU, re-encoded from
	// what was decoded, in segment order ("" for a segment missing);
	// only in GET /api/messages/{id} (Simulator.Message).
	PDUs []string `json:"pdus,omitempty"`
	// Held is true while the message waits for a receipt asked for over
	// the API (DLR mode manual).
	Held bool `json:"held,omitempty"`
}

// ReceiptInfo is what the simulator sent as the message's receipt.
type ReceiptInfo struct {
	Stat   string    `json:"stat"`
	Err    string    `json:"err"`
	SentAt time.Time `json:"sent_at"`
	// Attempts counts deliver_sm sent (retries and duplicates included);
	// Acked counts the OK deliver_sm_resp; Delivered is true once every
	// receipt of the message (one per segment) was acknowledged.
	Attempts  int  `json:"attempts"`
	Acked     int  `json:"acked"`
	Delivered bool `json:"delivered"`
}

// Filter selects messages. Empty fields match everything; To and From
// ignore a leading '+'. SystemID is the namespace: the system_id the
// message was submitted on.
type Filter struct {
	To, From, SystemID string
	// Limit is the most messages returned; 0 is no limit.
	Limit int
	// SinceID keeps only the messages that completed after the message
	// with that id (any of its segments' ids) did: the cursor of a test
	// that reads the next message to a number. An id no longer stored
	// (deleted, or dropped by the retention) still orders by its number.
	SinceID string
	// Since keeps only the messages received after that time.
	Since time.Time

	sinceSeq, sinceNum uint64 // SinceID resolved (resolveLocked)
}

// ErrUnknownSince is the error of a Filter.SinceID that is no message id
// of the simulator's format.
var ErrUnknownSince = errors.New("simulator: since: not a message id")

func trimPlus(s string) string { return strings.TrimPrefix(s, "+") }

// message is a stored message. Its fields are guarded by store.mu except
// those set before it is published.
type message struct {
	num      uint64 // the first segment's id number
	id       string
	systemID string
	via      string // the id of the session that submitted it (its first segment)
	cmd      smpp.CommandID
	from, to string

	srcTON, srcNPI, dstTON, dstNPI byte
	esm, regDel, dc                byte
	receivedAt                     time.Time

	// data is the user data of a message that stands alone; parts the
	// segments' data, in order, once complete (or what arrived of them).
	data     []byte
	parts    [][]byte
	segNums  []uint64 // segment id numbers by seq (0: missing)
	pdus     [][]byte // each segment's request PDU, by seq
	total    int      // segments expected (1 for a lone message)
	received int
	complete bool

	// seq orders messages by completion (by arrival of the first
	// segment while incomplete): SinceID and Latest go by it.
	seq uint64

	outcome   Outcome
	doneAt    time.Time // the outcome is reached then
	canceled  bool
	noReceipt bool
	held      bool   // no receipt until one is asked for (DLR mode manual)
	deleted   bool   // deleted over the API; its ring slot is reused later
	rcptGen   uint32 // receipts of older generations are not sent (SendReceipt)

	rcptWanted   int // receipts scheduled (one per segment)
	rcptSentAt   time.Time
	rcptAttempts int
	rcptAcked    int
}

func (m *message) state(now time.Time) dlr.State {
	switch {
	case m.canceled:
		return dlr.Deleted
	case m.held, now.Before(m.doneAt):
		return dlr.Enroute
	}
	return m.outcome.State
}

func (m *message) matches(f *Filter) bool {
	return (f.To == "" || trimPlus(m.to) == trimPlus(f.To)) &&
		(f.From == "" || trimPlus(m.from) == trimPlus(f.From)) &&
		(f.SystemID == "" || m.systemID == f.SystemID) &&
		(f.Since.IsZero() || m.receivedAt.After(f.Since)) &&
		(f.SinceID == "" || (f.sinceSeq != 0 && m.seq > f.sinceSeq) || (f.sinceSeq == 0 && m.num > f.sinceNum))
}

// resolveLocked finds the order of f.SinceID. s.mu held.
func (s *store) resolveLocked(f *Filter) error {
	f.sinceSeq, f.sinceNum = 0, 0
	if f.SinceID == "" {
		return nil
	}
	n, ok := s.ids.parse(f.SinceID)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSince, f.SinceID)
	}
	f.sinceNum = n
	if m := s.byNum[n]; m != nil {
		f.sinceSeq = m.seq
	}
	return nil
}

// store keeps the last N messages in a ring, indexed by id number.
type store struct {
	ids *idGen

	mu      sync.Mutex
	ring    []*message
	next    int
	byNum   map[uint64]*message
	byTo    map[string][]*message // by destination without '+', oldest first
	dropped uint64
	seq     uint64 // the last message seq given
	// WaitForMessage callers, by the number they wait for ("" for any):
	// the channel is closed when a message to that number completes.
	waits  map[string]*waitSet
	closed bool
	onDrop func()
}

func newStore(n int, ids *idGen) *store {
	return &store{ids: ids, ring: make([]*message, n), byNum: make(map[uint64]*message, min(n, 1<<16)),
		byTo: make(map[string][]*message, min(n, 1<<16)), waits: map[string]*waitSet{}}
}

// addLocked inserts m, dropping the oldest message when full. s.mu held.
func (s *store) addLocked(m *message) {
	s.seq++
	m.seq = s.seq
	if old := s.ring[s.next]; old != nil && !old.deleted {
		s.forgetLocked(old)
		s.dropped++
		if s.onDrop != nil {
			s.onDrop()
		}
	}
	s.ring[s.next] = m
	s.next++
	if s.next == len(s.ring) {
		s.next = 0
	}
	s.byNum[m.num] = m
	to := trimPlus(m.to)
	s.byTo[to] = append(s.byTo[to], m)
}

func (s *store) forgetLocked(m *message) {
	if s.byNum[m.num] == m {
		delete(s.byNum, m.num)
	}
	// The ring drops the oldest first, so m is first among its number's.
	to := trimPlus(m.to)
	if l := s.byTo[to]; len(l) > 0 {
		switch i := slices.Index(l, m); {
		case i == 0:
			l[0] = nil
			l = l[1:]
		case i > 0:
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			delete(s.byTo, to)
		} else {
			s.byTo[to] = l
		}
	}
	for _, n := range m.segNums {
		if n != 0 && s.byNum[n] == m {
			delete(s.byNum, n)
		}
	}
}

// waitSet is the callers waiting for a message to one number.
type waitSet struct {
	ch chan struct{}
	n  int
}

// waitLocked registers a caller waiting for a message to `to` ("" for
// any); it returns the channel to wait on and the function to call when
// done waiting. s.mu held.
func (s *store) waitLocked(to string) (<-chan struct{}, func()) {
	to = trimPlus(to)
	w := s.waits[to]
	if w == nil {
		w = &waitSet{ch: make(chan struct{})}
		s.waits[to] = w
	}
	w.n++
	return w.ch, func() {
		s.mu.Lock()
		if w.n--; w.n == 0 && s.waits[to] == w {
			delete(s.waits, to)
		}
		s.mu.Unlock()
	}
}

// wakeLocked tells the WaitForMessage callers waiting for m's number, or
// for any, that m completed, and gives m its place in the completion
// order. s.mu held.
func (s *store) wakeLocked(m *message) {
	s.seq++
	m.seq = s.seq
	if len(s.waits) == 0 {
		return
	}
	for _, to := range [2]string{trimPlus(m.to), ""} {
		if w := s.waits[to]; w != nil {
			close(w.ch)
			delete(s.waits, to)
		}
	}
}

// closeLocked ends the store: waiters wake and find it closed. s.mu held.
func (s *store) closeLocked() {
	s.closed = true
	for to, w := range s.waits {
		close(w.ch)
		delete(s.waits, to)
	}
}

// lookup finds the message with the id (any of its segments' ids).
func (s *store) lookupLocked(id string) *message {
	n, ok := s.ids.parse(id)
	if !ok {
		return nil
	}
	return s.byNum[n]
}

func (s *store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.ring)
	clear(s.byNum)
	clear(s.byTo)
	s.next = 0
}

// deleteLocked forgets m; its ring slot stays taken until reused. s.mu
// held.
func (s *store) deleteLocked(m *message) {
	if m.deleted {
		return
	}
	s.forgetLocked(m)
	m.deleted = true
}

// latestLocked is the complete message matching f that completed last.
// s.mu held.
func (s *store) latestLocked(f *Filter) *message {
	var found *message
	s.eachLocked(f, true, func(m *message) bool {
		if found == nil || m.seq > found.seq {
			found = m
		}
		return true
	})
	return found
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byNum)
}

// snapshot copies the messages matching f, newest first.
func (s *store) snapshot(f Filter, completeOnly bool) ([]message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resolveLocked(&f); err != nil {
		return nil, err
	}
	var out []message
	s.eachLocked(&f, completeOnly, func(m *message) bool {
		out = append(out, s.copyLocked(m))
		return f.Limit == 0 || len(out) < f.Limit
	})
	return out, nil
}

// eachLocked calls fn on the messages matching f, newest first, until fn
// returns false. With f.To it looks only at that number's messages. s.mu
// held.
func (s *store) eachLocked(f *Filter, completeOnly bool, fn func(*message) bool) {
	ok := func(m *message) bool { return !m.deleted && m.matches(f) && (!completeOnly || m.complete) }
	if f.To != "" {
		l := s.byTo[trimPlus(f.To)]
		for i := len(l) - 1; i >= 0; i-- {
			if ok(l[i]) && !fn(l[i]) {
				return
			}
		}
		return
	}
	n := len(s.ring)
	for i := 1; i <= n; i++ {
		m := s.ring[(s.next-i+n)%n]
		if m == nil {
			return // the ring fills from slot 0 (reset starts it over)
		}
		if ok(m) && !fn(m) {
			return
		}
	}
}

func (s *store) copyLocked(m *message) message {
	c := *m
	c.parts = append([][]byte(nil), m.parts...)
	c.segNums = append([]uint64(nil), m.segNums...)
	c.pdus = append([][]byte(nil), m.pdus...)
	return c
}

var errClosed = errors.New("simulator: closed")

// export turns a copy of a stored message into a Message, decoding its
// text and finding its codes (codeRE may be nil).
func (m *message) export(ids *idGen, now time.Time, codeRE *regexp.Regexp) Message {
	out := Message{
		ID: m.id, SystemID: m.systemID, From: m.from, To: m.to, DataCoding: m.dc,
		Segments: m.total, ReceivedAt: m.receivedAt, SegmentsReceived: m.received, Complete: m.complete,
		Command: m.cmd.String(), SourceTON: m.srcTON, SourceNPI: m.srcNPI, DestTON: m.dstTON, DestNPI: m.dstNPI,
		ESMClass: m.esm, RegisteredDelivery: m.regDel, State: m.state(now).String(), Held: m.held,
	}
	if len(m.segNums) > 0 {
		out.SegmentIDs = make([]string, len(m.segNums))
		for i, n := range m.segNums {
			if n != 0 {
				out.SegmentIDs[i] = ids.str(n)
			}
		}
	}
	data := m.data
	if m.parts != nil {
		var b []byte
		for _, p := range m.parts {
			b = append(b, p...)
		}
		data = b
	}
	if text, err := coding.Decode(data, coding.DataCoding(m.dc)); err == nil {
		out.Text = text
	} else {
		out.DataHex = hex.EncodeToString(data)
	}
	out.Codes = findCodes(out.Text, codeRE)
	if len(out.Codes) > 0 {
		out.Code = out.Codes[0]
	}
	if !m.rcptSentAt.IsZero() {
		out.Receipt = &ReceiptInfo{Stat: m.outcome.State.Stat(), Err: m.outcome.Err, SentAt: m.rcptSentAt,
			Attempts: m.rcptAttempts, Acked: m.rcptAcked, Delivered: m.rcptAcked >= m.rcptWanted}
	}
	return out
}
