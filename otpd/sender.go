package otpd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
	"go.uber.org/zap"
)

// Submitter is what the sender needs of an smpp.Pool: Go waits under ctx
// for a bind and a window slot, then the request is in flight until its
// response or the response timeout, whatever ctx does.
type Submitter interface {
	Go(ctx context.Context, req smpp.PDU, done chan *smpp.Call) *smpp.Call
	Ready() bool
}

// Sender drains the outbox through the SMSC binds: it claims due messages,
// submits their segments, and records each submit_sm_resp message_id as it
// comes, so that a restart resends only what the SMSC did not acknowledge.
type Sender struct {
	svc      *Service
	pool     Submitter
	log      *zap.Logger
	split    coding.SplitOptions
	respBase dlr.Base
	src      struct {
		addr     string
		ton, npi byte
	}

	sem chan struct{}
	// backlog is set while due messages may be waiting in the outbox (one
	// was queued there, or the last claim took all it asked for), and new
	// ones queue behind them instead of going straight to a worker
	// (reserve). A claim that finds fewer than it asked for clears it.
	backlog atomic.Bool
	// ctx ends at Stop: no more claims, and no more waiting for a bind or a
	// window slot; submits in flight still get their responses.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex // orders reserve's wg.Add before Stop's wg.Wait
	stopped bool

	held sync.Map // ids of the messages this sender's workers hold
}

// NewSender builds the sender; Start runs it.
func NewSender(svc *Service, pool Submitter) *Sender {
	cfg := svc.cfg
	s := &Sender{svc: svc, pool: pool, log: svc.log, sem: make(chan struct{}, cfg.Sender.Workers)}
	s.split = coding.SplitOptions{Auto: true}
	switch cfg.SMSC.DataCoding {
	case "gsm":
		s.split = coding.SplitOptions{Coding: coding.Default}
	case "ucs2":
		s.split = coding.SplitOptions{Coding: coding.UCS2}
	case "latin1":
		s.split = coding.SplitOptions{Coding: coding.Latin1}
	}
	s.split.UTF16 = cfg.SMSC.UTF16
	switch cfg.SMSC.Concat {
	case "udh16":
		s.split.Method = coding.ConcatUDH16
	case "sar":
		s.split.Method = coding.ConcatSAR
	case "payload":
		s.split.Method = coding.ConcatPayload
	default:
		s.split.Method = coding.ConcatUDH8
	}
	s.respBase = idBase(cfg.SMSC.MessageIDFormat)
	s.src.addr, s.src.ton, s.src.npi = SourceAddr(cfg.SMSC.SourceAddr, cfg.SMSC.SourceTON, cfg.SMSC.SourceNPI)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func idBase(f string) dlr.Base {
	switch f {
	case "dec":
		return dlr.Decimal
	case "hex":
		return dlr.Hex
	}
	return dlr.AutoBase
}

// SourceAddr derives TON and NPI for a source address when not configured:
// alphanumeric 5/0, international (+ or 10 digits and more) 1/1, a short
// code 3/0.
func SourceAddr(addr string, ton, npi int) (string, byte, byte) {
	a := strings.TrimPrefix(addr, "+")
	dt, dn := byte(1), byte(1)
	digits := true
	for _, c := range a {
		if c < '0' || c > '9' {
			digits = false
		}
	}
	switch {
	case !digits:
		dt, dn = smpp.TONAlphanumeric, smpp.NPIUnknown
		a = addr
	case strings.HasPrefix(addr, "+") || len(a) >= 10:
		dt, dn = smpp.TONInternational, smpp.NPIISDN
	default:
		dt, dn = smpp.TONNetwork, smpp.NPIUnknown
	}
	if ton >= 0 {
		dt = byte(ton)
	}
	if npi >= 0 {
		dn = byte(npi)
	}
	return a, dt, dn
}

// Start recovers what a previous process left half-sent, then drains the
// outbox until Stop.
func (s *Sender) Start(ctx context.Context) error {
	if err := s.recover(ctx); err != nil {
		return err
	}
	// What recover put back goes first: the loop's first claim clears this.
	s.backlog.Store(true)
	s.wg.Add(2)
	go s.loop()
	go s.janitor()
	s.svc.sender.Store(s)
	return nil
}

// reserve takes a free worker for a new message that is about to be
// written as being sent (StateSending, one attempt), which spares the
// outbox claim: the write that queues it claims it too. A crash after
// that write counts the message uncertain, as for a claimed one. False
// when no worker is free, when due messages wait in the outbox (they go
// first), or after Stop. After true the caller must call run or release.
func (s *Sender) reserve() bool {
	if s.backlog.Load() {
		return false
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		<-s.sem
		return false
	}
	s.wg.Add(1)
	return true
}

// release gives back a worker: a reserved one whose message was not
// written, or one whose message run has processed.
func (s *Sender) release() {
	<-s.sem
	s.wg.Done()
}

// run processes c on the worker the caller took (a slot of sem and a
// count of wg), and gives it back after.
func (s *Sender) run(c *claimed) {
	go func() {
		defer s.release()
		s.process(c)
	}()
}

// recover handles messages a previous process claimed and did not finish
// (it was killed): their unacknowledged segments may or may not have
// reached the SMSC. Policy resubmit queues them again (segments with a
// recorded message_id are not resent); policy fail fails them.
func (s *Sender) recover(ctx context.Context) error {
	if s.svc.shared {
		// Another live instance may be sending these: the lease reclaim
		// (janitor) takes up only the ones whose lease ran out.
		return nil
	}
	now := s.svc.now().UTC()
	var n int
	err := s.svc.store.Write(ctx, func(tx *Tx) error {
		c, err := recoverSending(tx, s.svc.cfg.Sender.Uncertain == "fail", "outcome unknown: otpd stopped while submitting", ms(now))
		n = int(c)
		return err
	})
	if n > 0 {
		s.svc.metrics.Uncertain.Add(float64(n))
		s.log.Warn("messages left mid-submit by the previous run", zap.Int("count", n), zap.String("policy", s.svc.cfg.Sender.Uncertain))
	}
	return err
}

// Stop stops claiming, waits for the submits in flight (bounded by ctx)
// and returns. Messages not finished stay in the outbox.
func (s *Sender) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sender: submits still in flight at shutdown (they stay in the outbox): %w", ctx.Err())
	}
}

func (s *Sender) loop() {
	defer s.wg.Done()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		free := cap(s.sem) - len(s.sem)
		var batch []*claimed
		if free > 0 {
			// Cleared before the claim, so that a message queued while it
			// runs (notify) sets it again.
			s.backlog.Store(false)
			var err error
			batch, err = s.claim(free)
			if err != nil && s.ctx.Err() == nil {
				s.log.Error("outbox claim failed", zap.Error(err))
			}
			if err != nil || len(batch) == free {
				// Due messages may be left: new ones queue behind them
				// until a claim finds fewer.
				s.backlog.Store(true)
			}
		}
		for i, c := range batch {
			// A message handed straight to a worker since free was counted
			// may have taken one: wait for the next, or for Stop.
			select {
			case s.sem <- struct{}{}:
			case <-s.ctx.Done():
				// Stopping: the rest go back to the outbox (process finds
				// no bind to wait for), each on its own goroutine.
				for _, c := range batch[i:] {
					s.wg.Add(1)
					go func() {
						defer s.wg.Done()
						s.process(c)
					}()
				}
				return
			}
			s.wg.Add(1)
			s.run(c)
		}
		if len(batch) > 0 && len(batch) == free {
			// More may be due: go round once a worker is free.
			select {
			case s.sem <- struct{}{}:
				<-s.sem
			case <-s.ctx.Done():
				return
			}
			continue
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.svc.wake:
		case <-tick.C:
		}
	}
}

// claimed is a message taken from the outbox with the segments already
// acknowledged.
type claimed struct {
	m    *Message
	done map[int]bool
}

func (s *Sender) claim(n int) ([]*claimed, error) {
	now := s.svc.now().UTC()
	var out []*claimed
	err := s.svc.store.Write(s.ctx, func(tx *Tx) error {
		out = nil
		ms_, err := claimDue(tx, ms(now), ms(now.Add(s.svc.cfg.Sender.Lease)), n)
		if err != nil {
			return err
		}
		for _, m := range ms_ {
			c := &claimed{m: m, done: map[int]bool{}}
			if m.Attempts > 1 { // claimed before: some segments may be sent
				if c.done, err = segmentsSent(tx, m.ID); err != nil {
					return err
				}
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// process submits the segments of one claimed message.
func (s *Sender) process(c *claimed) {
	m := c.m
	s.held.Store(m.ID, true)
	defer s.held.Delete(m.ID)
	log := s.log.With(zap.String("message_id", m.ID), zap.String("phone", MaskPhone(m.Phone)))
	if !s.svc.now().Before(m.Deadline) {
		s.svc.metrics.Expired.Inc()
		s.finish(m, StateFailed, "expired before it could be sent", log)
		return
	}
	text, err := s.svc.sec.Open(m.ID, m.Sealed)
	if err != nil {
		s.finish(m, StateFailed, "cannot open the queued text: "+err.Error(), log)
		return
	}
	tmpl := &smpp.SubmitSM{
		SourceAddrTON: s.src.ton, SourceAddrNPI: s.src.npi, SourceAddr: s.src.addr,
		DestAddrTON: byte(s.svc.cfg.SMSC.DestTON), DestAddrNPI: byte(s.svc.cfg.SMSC.DestNPI), DestinationAddr: strings.TrimPrefix(m.Phone, "+"),
		RegisteredDelivery: byte(s.svc.cfg.SMSC.RegisteredDelivery),
	}
	if m.Sender != "" {
		tmpl.SourceAddr, tmpl.SourceAddrTON, tmpl.SourceAddrNPI = SourceAddr(m.Sender, -1, -1)
	}
	opt := s.split
	opt.Ref = uint16(m.Ref)
	pdus, err := smpp.SplitSubmit(tmpl, text, opt)
	if err != nil {
		s.finish(m, StateFailed, "cannot encode the text: "+err.Error(), log)
		return
	}
	last := 0 // the last segment still to send
	for i := range pdus {
		if !c.done[i+1] {
			last = i + 1
		}
	}
	for i, pdu := range pdus {
		seq := i + 1
		if c.done[seq] {
			continue
		}
		now := s.svc.now()
		left := m.Deadline.Sub(now)
		if left <= 0 {
			s.svc.metrics.Expired.Inc()
			s.finish(m, StateFailed, "expired before it could be sent", log)
			return
		}
		// The SMSC must not deliver the code after the challenge expires.
		pdu.ValidityPeriod = smpp.FormatRelativeTime(left)
		if left < time.Second {
			pdu.ValidityPeriod = smpp.FormatRelativeTime(time.Second)
		}
		// Waiting for a bind and a window slot ends at the deadline or at
		// Stop; once sent, the submit runs until its response.
		ctx, cancel := context.WithTimeout(s.ctx, min(left, 30*time.Second))
		start := time.Now()
		call := <-s.pool.Go(ctx, pdu, make(chan *smpp.Call, 1)).Done
		cancel()
		resp, _ := call.Resp.(*smpp.SubmitSMResp)
		err := call.Err
		if err == nil && resp == nil {
			err = fmt.Errorf("smpp: %s answered a submit_sm", call.Resp.CommandID())
		}
		if err != nil {
			s.failedSubmit(m, err, log)
			return
		}
		s.svc.metrics.SubmitLatency.Observe(time.Since(start).Seconds())
		s.svc.metrics.Submits.WithLabelValues("ok").Inc()
		if seq == last {
			// The last one: its segment and the message's new state in one
			// write.
			s.submitted(m, len(pdus), &segment{seq: seq, smscID: resp.MessageID}, log)
			return
		}
		if err := s.recordSegment(m, seq, len(pdus), resp.MessageID); err != nil {
			// Given up at Stop: the SMSC has it, the restart counts the
			// message uncertain.
			return
		}
	}
	s.submitted(m, len(pdus), nil, log)
}

// segment is a just-acknowledged segment to record.
type segment struct {
	seq    int
	smscID string
}

// failedSubmit classifies a submit error: retry with backoff, or fail.
func (s *Sender) failedSubmit(m *Message, err error, log *zap.Logger) {
	var re *smpp.ResponseError
	switch {
	case smpp.IsUncertain(err):
		s.svc.metrics.Submits.WithLabelValues("uncertain").Inc()
		s.svc.metrics.Uncertain.Inc()
		m.Uncertain++
		if s.svc.cfg.Sender.Uncertain == "fail" {
			s.finish(m, StateFailed, "outcome unknown: "+err.Error(), log)
			return
		}
		log.Warn("submit outcome unknown; resubmitting", zap.Error(err))
		s.retry(m, err.Error(), log)
	case errors.As(err, &re):
		s.svc.metrics.Submits.WithLabelValues(re.Status.Name()).Inc()
		if re.Status.Temporary() || re.Nack {
			s.retry(m, re.Status.Name(), log)
			return
		}
		s.finish(m, StateRejected, "SMSC refused: "+re.Status.Error(), log)
	case errors.Is(err, smpp.ErrNoBind), errors.Is(err, smpp.ErrClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.svc.metrics.Submits.WithLabelValues("no_bind").Inc()
		s.retry(m, "no SMSC bind available", log)
	default:
		s.svc.metrics.Submits.WithLabelValues("error").Inc()
		var pe *smpp.PDUError
		if errors.As(err, &pe) && pe.Header.Command == smpp.SubmitSMID {
			// Our own submit_sm cannot be encoded: it never will be.
			s.finish(m, StateFailed, err.Error(), log)
			return
		}
		log.Warn("submit failed; retrying", zap.Error(err))
		s.retry(m, err.Error(), log)
	}
}

// persist runs a write the sender must not lose (the state after a
// submit, a retry's, a final one) until it commits: on a full or busy
// disk it waits with backoff and tries again for as long as the sender
// runs, so a message never stays "sending" while its SMS went out. At
// Stop it gives up; the message's lease then expires and the next claim,
// or the next start, takes it up again. False when it gave up.
func (s *Sender) persist(what string, log *zap.Logger, fn func(tx *Tx) error) bool {
	back := 20 * time.Millisecond
	for try := 1; ; try++ {
		err := s.svc.store.Write(context.Background(), fn)
		if err == nil {
			if try > 1 {
				log.Info(what+": written after retries", zap.Int("tries", try))
			}
			return true
		}
		if !Unavailable(err) && try >= 5 {
			log.Error(what+" failed; the message's lease will expire and it is taken up again", zap.Error(err))
			return false
		}
		if try == 1 || try%50 == 0 {
			log.Error(what+" failed; retrying", zap.Error(err), zap.Int("tries", try))
		}
		select {
		case <-s.ctx.Done():
			log.Warn(what+" not written before shutdown; the next start takes the message up again", zap.Error(err))
			return false
		case <-time.After(back):
		}
		back = min(2*back, 2*time.Second)
	}
}

// retry puts the message back with exponential backoff and jitter, or
// fails it when the next try would come after its deadline.
func (s *Sender) retry(m *Message, reason string, log *zap.Logger) {
	cfg := s.svc.cfg.Sender
	back := cfg.RetryMin << min(m.Attempts-1, 16)
	if back > cfg.RetryMax || back <= 0 {
		back = cfg.RetryMax
	}
	back = back/2 + time.Duration(rand.Int64N(int64(back/2)+1))
	now := s.svc.now().UTC()
	next := now.Add(back)
	if !next.Before(m.Deadline) {
		s.svc.metrics.Expired.Inc()
		s.finish(m, StateFailed, "not sent before it expired: "+reason, log)
		return
	}
	s.persist("requeue", log, func(tx *Tx) error {
		return requeueSending(tx, m, ms(next), reason, ms(now))
	})
}

// finish ends a message that will not be (further) submitted.
func (s *Sender) finish(m *Message, state, reason string, log *zap.Logger) {
	now := s.svc.now().UTC()
	if !s.persist("recording a failed message", log, func(tx *Tx) error {
		if err := endMessage(tx, m, state, reason, ms(now)); err != nil {
			return err
		}
		return s.svc.queueReports(tx, []Event{{MessageID: m.ID, At: now}}, now) // its callback hears of it too
	}) {
		return
	}
	s.svc.metrics.Messages.WithLabelValues(state).Inc()
	log.Warn("message not delivered", zap.String("state", state), zap.String("reason", reason))
	s.svc.events.Publish(Event{MessageID: m.ID, ChallengeID: m.ChallengeID, Phone: MaskPhone(m.Phone), State: state, Reason: reason, At: now, keyID: m.KeyID, phone: m.Phone})
}

// recordSegment stores a segment's message_id and applies a receipt that
// arrived before it (the SMSC may answer faster than we commit).
func (s *Sender) recordSegment(m *Message, seq, total int, smscID string) error {
	now := s.svc.now().UTC()
	var evs []Event
	var orphans, dropped int
	key := dlr.CanonicalIn(smscID, s.respBase) // receipts find the segment by it
	ok := s.persist("recording a submitted segment", s.log.With(zap.String("message_id", m.ID)), func(tx *Tx) error {
		evs, orphans, dropped = nil, 0, 0
		err := putSegment(tx, m.ID, seq, smscID, key, ms(now))
		if err != nil {
			return err
		}
		if err := setSegmentCount(tx, m.ID, total); err != nil {
			return err
		}
		if !s.svc.orphansInWrite() {
			return nil
		}
		evs, orphans, dropped, err = s.svc.applyOrphans(tx, key, now)
		return err
	})
	if !ok {
		return errors.New("not recorded")
	}
	s.svc.orphansMatched(orphans, dropped)
	for _, e := range evs {
		s.svc.events.Publish(e)
	}
	s.svc.settleOrphans(s.ctx, []string{key})
	return nil
}

// submitted marks a message whose every segment the SMSC acknowledged; its
// sealed text (with the code) is dropped. seg, when set, is the last
// segment, recorded in the same write.
func (s *Sender) submitted(m *Message, n int, seg *segment, log *zap.Logger) {
	now := s.svc.now().UTC()
	var evs []Event
	var orphans, dropped int
	var key string
	if seg != nil {
		key = dlr.CanonicalIn(seg.smscID, s.respBase)
	}
	ok := s.persist("recording a submitted message", log, func(tx *Tx) error {
		evs, orphans, dropped = nil, 0, 0
		if seg != nil {
			if err := putSegment(tx, m.ID, seg.seq, seg.smscID, key, ms(now)); err != nil {
				return err
			}
		}
		if err := markSubmitted(tx, m, n, ms(now)); err != nil {
			return err
		}
		if seg == nil || !s.svc.orphansInWrite() {
			return nil
		}
		var err error
		evs, orphans, dropped, err = s.svc.applyOrphans(tx, key, now)
		return err
	})
	if !ok {
		return
	}
	s.svc.orphansMatched(orphans, dropped)
	s.svc.metrics.Messages.WithLabelValues(StateSubmitted).Inc()
	log.Info("message submitted", zap.Int("segments", n))
	s.svc.events.Publish(Event{MessageID: m.ID, ChallengeID: m.ChallengeID, Phone: MaskPhone(m.Phone), State: StateSubmitted, Segments: n, At: now, keyID: m.KeyID, phone: m.Phone})
	for _, e := range evs {
		s.svc.events.Publish(e)
	}
	if seg != nil {
		s.svc.settleOrphans(s.ctx, []string{key})
	}
}

// janitor runs the retention sweep (a minute after the start, then every
// ten) and takes up messages whose lease expired (every few seconds).
func (s *Sender) janitor() {
	defer s.wg.Done()
	sweep := time.NewTimer(time.Minute)
	defer sweep.Stop()
	leases := time.NewTicker(5 * time.Second)
	defer leases.Stop()
	var orphans <-chan time.Time
	if s.svc.shared {
		t := time.NewTicker(orphanRematch)
		defer t.Stop()
		orphans = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-sweep.C:
			s.sweep()
			sweep.Reset(10 * time.Minute)
		case <-leases.C:
			s.reclaimLeases()
		case <-orphans:
			s.rematchOrphans()
		}
	}
}

// orphanRematch is how often an instance on a shared store applies the
// orphan receipts whose segment another instance recorded meanwhile.
const orphanRematch = time.Second

// rematchOrphans applies the receipts kept as orphans (in the last hour)
// whose segment is recorded now, on a shared store: those that
// settleOrphans did not (its process stopped, or the store failed it).
// Waiting for each other on a lock instead would not do: the writers batch
// many writes a transaction, and two batches locking keys in their own
// orders deadlock.
func (s *Sender) rematchOrphans() {
	for s.ctx.Err() == nil {
		keys, err := s.svc.store.matchableOrphans(s.ctx, ms(s.svc.now().Add(-time.Hour)), 100)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("looking for orphan receipts to match failed", zap.Error(err))
			}
			return
		}
		if !s.svc.applyOrphanKeys(s.ctx, keys) || len(keys) < 100 {
			return
		}
	}
}

// reclaimLeases puts back in the outbox the messages left "sending" under
// an expired lease that no worker here holds: a claim or a direct hand-off
// whose outcome the store could not confirm, a worker that gave up
// writing, another instance that stopped. Counted uncertain: a submit may
// have gone out.
func (s *Sender) reclaimLeases() int {
	now := s.svc.now().UTC()
	ids, err := s.svc.store.expiredLeases(s.ctx, ms(now), 100)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("looking for expired leases failed", zap.Error(err))
		}
		return 0
	}
	n := 0
	for _, id := range ids {
		if _, ok := s.held.Load(id); ok {
			continue // still being worked on here
		}
		var ok bool
		err := s.svc.store.Write(s.ctx, func(tx *Tx) error {
			var err error
			ok, err = reclaim(tx, id, ms(now))
			return err
		})
		if err == nil && ok {
			n++
			s.svc.metrics.Uncertain.Inc()
			s.log.Warn("message taken up again after its lease expired", zap.String("message_id", id))
		}
	}
	if n > 0 {
		s.svc.notify()
	}
	return n
}

// sweep drops what is older than the retention: challenges, messages and
// segments, failure counts, and receipts that never found their message
// (after a day). Each write deletes at most sweepBatch rows, so the
// writes of requests and receipts queued meanwhile go between them.
func (s *Sender) sweep() {
	now := s.svc.now().UTC()
	cut := ms(now.Add(-s.svc.cfg.Retention))
	var total [5]int64
	steps := []struct {
		i   int
		cut int64
		del func(tx *Tx, cut int64, n int) (int64, error)
	}{
		{0, ms(now.Add(-24 * time.Hour)), sweepOrphans},
		{1, cut, sweepMessages},
		{2, cut, sweepChallenges},
		{3, ms(now.Add(-s.svc.cfg.Limits.PhoneFailureWindow)), sweepPhoneFailures},
	}
	if s.svc.shared {
		// The rate limits' buckets, full again a window after their last use.
		steps = append(steps, struct {
			i   int
			cut int64
			del func(tx *Tx, cut int64, n int) (int64, error)
		}{4, ms(now.Add(-s.svc.cfg.Limits.longestWindow())), sweepBuckets})
	}
	for _, st := range steps {
		for s.ctx.Err() == nil {
			var n int64
			err := s.svc.store.Write(s.ctx, func(tx *Tx) error {
				var err error
				n, err = st.del(tx, st.cut, sweepBatch)
				return err
			})
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Error("retention sweep failed", zap.Error(err))
				}
				return
			}
			total[st.i] += n
			if st.i == 0 {
				s.svc.orphans.Add(-n)
			}
			if n < sweepBatch {
				break
			}
		}
	}
	if total[1]+total[2] > 0 {
		s.log.Info("retention sweep", zap.Int64("messages", total[1]), zap.Int64("challenges", total[2]), zap.Int64("orphan_receipts", total[0]))
	}
}
