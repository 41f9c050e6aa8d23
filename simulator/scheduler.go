package simulator

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

// job is a receipt to send (s == nil) or a delayed response (s != nil).
type job struct {
	at  time.Time
	idx int

	// receipt
	m        *message
	num      uint64 // the receipted segment's id number
	data     []byte // its user data, for the text: field
	doneAt   time.Time
	dup      bool
	attempts int
	outcome  Outcome // what the receipt says
	gen      uint32  // message.rcptGen when scheduled
	target   *sess   // the session of the last attempt

	// delayed response
	s    *smpp.Session
	resp smpp.PDU
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *jobHeap) Push(x any)        { j := x.(*job); j.idx = len(*h); *h = append(*h, j) }
func (h *jobHeap) Pop() any {
	old := *h
	n := len(old)
	j := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return j
}

// doneCap bounds the deliver_sm in flight at once over all sessions (the
// shared done channel must have room for each).
const doneCap = 1 << 16

// scheduler sends receipts and delayed responses from one goroutine: a
// timer heap of jobs, a queue per system_id of receipts waiting for a
// receiver (none bound, or every window full), and the completions of the
// deliver_sm in flight on one shared channel.
type scheduler struct {
	sim *Simulator

	mu       sync.Mutex
	incoming []*job
	spare    []*job
	rebinds  []string
	wake     chan struct{}

	// owned by the loop
	h        jobHeap
	waiting  map[string]*queue
	inflight map[*smpp.Call]*job
	rr       map[string]int
	done     chan *smpp.Call

	pending   atomic.Int64 // receipts not yet acknowledged
	pendingBy sync.Map     // the same by system_id: string -> *atomic.Int64
	stop      chan struct{}
	stopped   chan struct{}
}

func newScheduler(sim *Simulator) *scheduler {
	sc := &scheduler{
		sim:      sim,
		wake:     make(chan struct{}, 1),
		waiting:  map[string]*queue{},
		inflight: map[*smpp.Call]*job{},
		rr:       map[string]int{},
		done:     make(chan *smpp.Call, doneCap),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go sc.loop()
	return sc
}

func (sc *scheduler) signal() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// count adds d to the receipts pending, in all and for the system_id; it
// returns the system_id's count.
func (sc *scheduler) count(sys string, d int64) int64 {
	sc.pending.Add(d)
	c, ok := sc.pendingBy.Load(sys)
	if !ok {
		c, _ = sc.pendingBy.LoadOrStore(sys, new(atomic.Int64))
	}
	return c.(*atomic.Int64).Add(d)
}

// add schedules a receipt (accept has counted it pending).
func (sc *scheduler) add(j *job) {
	sc.mu.Lock()
	sc.incoming = append(sc.incoming, j)
	first := len(sc.incoming) == 1
	sc.mu.Unlock()
	if first {
		sc.signal()
	}
}

// respondLater sends resp on s at the time at.
func (sc *scheduler) respondLater(s *smpp.Session, resp smpp.PDU, at time.Time) {
	sc.mu.Lock()
	sc.incoming = append(sc.incoming, &job{at: at, s: s, resp: resp})
	first := len(sc.incoming) == 1
	sc.mu.Unlock()
	if first {
		sc.signal()
	}
}

// rebind tells the loop that a receiver of systemID has bound.
func (sc *scheduler) rebind(systemID string) {
	sc.mu.Lock()
	sc.rebinds = append(sc.rebinds, systemID)
	sc.mu.Unlock()
	sc.signal()
}

func (sc *scheduler) close() {
	select {
	case <-sc.stop:
	default:
		close(sc.stop)
	}
	<-sc.stopped
}

func (sc *scheduler) loop() {
	defer close(sc.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		sc.mu.Lock()
		in := sc.incoming
		sc.incoming = sc.spare[:0]
		rebinds := sc.rebinds
		sc.rebinds = nil
		sc.mu.Unlock()
		for i, j := range in {
			heap.Push(&sc.h, j)
			in[i] = nil
		}
		sc.spare = in[:0]
		for _, sys := range rebinds {
			sc.drain(sys)
		}
		now := time.Now()
		for len(sc.h) > 0 && !sc.h[0].at.After(now) {
			if sc.sim.ctx.Err() != nil {
				return
			}
			sc.run(heap.Pop(&sc.h).(*job), now)
		}
		if len(sc.h) > 0 {
			timer.Reset(sc.h[0].at.Sub(now))
		}
		select {
		case <-sc.stop:
			return
		case <-sc.wake:
		case <-timer.C:
		case c := <-sc.done:
			sc.completed(c)
			for more := true; more; {
				select {
				case c := <-sc.done:
					sc.completed(c)
				default:
					more = false
				}
			}
		case now := <-tick.C:
			for sys := range sc.waiting {
				sc.drain(sys)
			}
			sc.sim.expireSegments(now)
		}
	}
}

// drain sends the receipts waiting for a receiver of sys, in order, as
// far as windows allow.
func (sc *scheduler) drain(sys string) {
	q := sc.waiting[sys]
	if q == nil {
		return
	}
	now := time.Now()
	for q.len() > 0 {
		if !sc.send(q.peek(), now) {
			return
		}
		q.pop()
	}
	delete(sc.waiting, sys)
}

// wait queues j behind the receipts waiting for a receiver of its
// system_id. While no receiver of the system_id is bound, a queue holds at
// most the retention's worth: beyond it the oldest receipt is dropped
// (counted), so that an ESME that submits with receipts and never binds a
// receiver cannot grow memory without bound. (With receivers bound and
// their windows full the queue is backpressure and nothing is dropped.)
func (sc *scheduler) wait(j *job) {
	q := sc.waiting[j.m.systemID]
	if q == nil {
		q = &queue{}
		sc.waiting[j.m.systemID] = q
	}
	q.push(j)
	if q.len() > sc.sim.cfg.Retention && !sc.sim.hasReceiver(j.m.systemID) {
		old := q.peek()
		q.pop()
		sc.count(j.m.systemID, -1)
		sc.sim.st.mu.Lock()
		if old.gen == old.m.rcptGen {
			old.m.rcptWanted-- // never sent: its message is delivered without it
		}
		sc.sim.st.mu.Unlock()
		sc.sim.metrics.receiptsDropped.Inc()
	}
}

// queue is a FIFO of jobs.
type queue struct {
	items []*job
	head  int
}

func (q *queue) len() int    { return len(q.items) - q.head }
func (q *queue) peek() *job  { return q.items[q.head] }
func (q *queue) push(j *job) { q.items = append(q.items, j) }
func (q *queue) pop() {
	q.items[q.head] = nil
	q.head++
	if q.head >= 1024 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
}

func (sc *scheduler) run(j *job, now time.Time) {
	if j.s != nil {
		if err := j.s.Respond(j.resp); err != nil {
			sc.sim.log.Debug("smscsim: delayed response not sent", zap.Error(err))
		}
		return
	}
	if j.doneAt.IsZero() {
		j.doneAt = now
	}
	if q := sc.waiting[j.m.systemID]; q != nil && q.len() > 0 {
		sc.wait(j) // behind the others, in order
		return
	}
	if !sc.send(j, now) {
		sc.wait(j)
	}
}

// send sends j's receipt on a receiver of its system_id with room in its
// window; with none it reports false.
func (sc *scheduler) send(j *job, now time.Time) bool {
	sim := sc.sim
	m := j.m
	st := sim.st
	st.mu.Lock()
	stale := m.canceled || j.gen != m.rcptGen
	st.mu.Unlock()
	if stale { // canceled, or superseded by SendReceipt
		sc.count(m.systemID, -1)
		return true
	}
	target := sc.pick(m)
	if target == nil {
		return false
	}
	p := sim.receiptPDU(j)
	c := target.s.Go(sim.ctx, p, sc.done)
	sc.inflight[c] = j
	j.target = target
	target.rcptSent.Add(1)
	j.attempts++
	st.mu.Lock()
	if m.rcptSentAt.IsZero() {
		m.rcptSentAt = now
	}
	m.rcptAttempts++
	var ev *message
	if sim.hub.active() {
		c := st.copyLocked(m)
		ev = &c
	}
	st.mu.Unlock()
	if ev != nil {
		sim.publish(EventReceipt, ev)
	}
	sim.metrics.receiptSent(j.outcome.State).Inc()
	if ce := sim.log.Check(zap.DebugLevel, "smscsim: receipt sent"); ce != nil {
		ce.Write(zap.String("system_id", m.systemID), zap.String("id", sim.ids.str(j.num)), zap.String("stat", j.outcome.State.Stat()),
			zap.Int("attempt", j.attempts), zap.Bool("duplicate", j.dup))
	}
	return true
}

// pick chooses a bound receiver of m's system_id with room in its window,
// round robin; with DLRRoute "other", among the binds other than the one
// that submitted m while any other is bound (a full window there is waited
// for, not routed around).
func (sc *scheduler) pick(m *message) *sess {
	if len(sc.inflight) >= doneCap {
		return nil
	}
	sim := sc.sim
	sys := m.systemID
	sim.smu.RLock()
	defer sim.smu.RUnlock()
	list := sim.rx[sys]
	avoid := ""
	if sim.cfg.DLRRoute == "other" {
		for _, ss := range list {
			if ss.id != m.via && ss.s.Bound() {
				avoid = m.via
				break
			}
		}
	}
	n := len(list)
	start := sc.rr[sys]
	for k := 0; k < n; k++ {
		ss := list[(start+k)%n]
		if !ss.s.Bound() || (avoid != "" && ss.id == avoid) {
			continue
		}
		if st := ss.s.Stats(); st.WindowInUse < st.Window {
			sc.rr[sys] = (start + k + 1) % n
			return ss
		}
	}
	return nil
}

func (sc *scheduler) completed(c *smpp.Call) {
	j := sc.inflight[c]
	if j == nil {
		return
	}
	delete(sc.inflight, c)
	sim := sc.sim
	m := j.m
	now := time.Now()
	if c.Err == nil {
		sim.metrics.receiptsAcked.Inc()
		if j.target != nil {
			j.target.rcptAcked.Add(1)
		}
		sc.count(m.systemID, -1) // duplicates are counted pending too (below)
		if !j.dup {
			sim.st.mu.Lock()
			if j.gen == m.rcptGen {
				m.rcptAcked++
			}
			sim.st.mu.Unlock()
			if f := sim.faults.Load(); f.DuplicateReceiptRate > 0 && sim.chance(f.DuplicateReceiptRate) {
				sim.metrics.fault(faultReceiptDuplicate).Inc()
				sc.count(m.systemID, 1)
				sc.run(&job{at: now, m: m, num: j.num, data: j.data, doneAt: j.doneAt, dup: true, outcome: j.outcome, gen: j.gen}, now)
			}
		}
	} else {
		sim.metrics.receiptsRetried.Inc()
		sim.log.Debug("smscsim: receipt not acknowledged; will retry", zap.String("system_id", m.systemID),
			zap.String("id", sim.ids.str(j.num)), zap.Int("attempt", j.attempts), zap.Error(c.Err))
		j.at = now.Add(sim.cfg.ReceiptRetry)
		heap.Push(&sc.h, j)
	}
	sc.drain(m.systemID)
}

// receiptPDU builds the deliver_sm of j's receipt.
func (sim *Simulator) receiptPDU(j *job) *smpp.DeliverSM {
	m := j.m
	o := j.outcome
	id := sim.ids.receiptID(j.num, sim.cfg.ReceiptIDFormat)
	tlvID := id
	if sim.cfg.ReceiptTLVKeepsID {
		tlvID = sim.ids.str(j.num)
	}
	r := dlr.Receipt{Sub: 1, SubmitDate: m.receivedAt, DoneDate: j.doneAt, State: o.State, Err: o.Err}
	if o.State == dlr.Delivered {
		r.Dlvrd = 1
	}
	if !sim.cfg.ReceiptNoText {
		r.Text = receiptText(j.data, m.dc)
	}
	p := smpp.ReceiptDeliverSM(tlvID, id, r)
	p.SourceAddrTON, p.SourceAddrNPI, p.SourceAddr = m.dstTON, m.dstNPI, truncate(m.to, smpp.MaxAddr-1)
	p.DestAddrTON, p.DestAddrNPI, p.DestinationAddr = m.srcTON, m.srcNPI, truncate(m.from, smpp.MaxAddr-1)
	return p
}

// receiptText is the start of the message for the text: field, in
// printable ASCII ('?' for anything else).
func receiptText(data []byte, dc byte) string {
	if len(data) > 2*dlr.MaxText {
		data = data[:2*dlr.MaxText]
	}
	s, err := coding.Decode(data, coding.DataCoding(dc))
	if err != nil {
		return ""
	}
	b := make([]byte, 0, dlr.MaxText)
	for _, r := range s {
		if len(b) == dlr.MaxText {
			break
		}
		if r < 0x20 || r > 0x7E {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// expireSegments drops the incomplete concatenated messages past the
// segment timeout: they keep the segments that came, and stay incomplete.
func (sim *Simulator) expireSegments(now time.Time) {
	st := sim.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(sim.sets) == 0 {
		return
	}
	for _, in := range sim.reasm.Expire(now) {
		k := setKey{key: in.Key, ref: in.Ref}
		if m := sim.sets[k]; m != nil {
			m.parts = in.Parts
			delete(sim.sets, k)
		}
	}
}
