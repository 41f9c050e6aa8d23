package otpd

import (
	"context"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
	"go.uber.org/zap"
)

// receiptState maps a receipt's state to a delivery state; ok is false for
// states that are not final (ENROUTE, ACCEPTD).
func receiptState(st dlr.State) (string, bool) {
	switch st {
	case dlr.Delivered:
		return StateDelivered, true
	case dlr.Undeliverable:
		return StateUndeliverable, true
	case dlr.Expired:
		return StateExpired, true
	case dlr.Rejected:
		return StateRejected, true
	case dlr.Deleted, dlr.Unknown:
		return StateFailed, true
	}
	return StateSubmitted, false
}

// ServeSMPP is the Handler of the SMSC binds: delivery receipts are
// matched and stored before deliver_sm_resp goes back (ESME_RX_T_APPN, a
// temporary error the SMSC retries, when the store cannot take them);
// mobile-originated messages are acknowledged and logged.
func (s *Service) ServeSMPP(ctx context.Context, sess *smpp.Session, req smpp.PDU) smpp.PDU {
	// Receipts come as deliver_sm, or as data_sm from SMSCs that send
	// everything that way.
	var receipt bool
	var from string
	switch d := req.(type) {
	case *smpp.DeliverSM:
		receipt, from = d.IsReceipt(), d.SourceAddr
	case *smpp.DataSM:
		receipt, from = d.IsReceipt(), d.SourceAddr
	default:
		return smpp.Reply(req, smpp.ESME_ROK)
	}
	r, err := smpp.ParseReceipt(req)
	if err != nil {
		if receipt {
			s.metrics.Receipts.WithLabelValues("bad").Inc()
			s.log.Warn("unreadable delivery receipt", zap.Error(err))
		} else {
			s.log.Info("mobile-originated message ignored", zap.String("from", MaskPhone("+"+from)))
		}
		return smpp.Reply(req, smpp.ESME_ROK)
	}
	if err := s.ApplyReceipt(ctx, r); err != nil {
		s.log.Error("storing a receipt failed; the SMSC will retry", zap.Error(err))
		return smpp.Reply(req, smpp.ESME_RX_T_APPN)
	}
	return smpp.Reply(req, smpp.ESME_ROK)
}

// receiptKeys are the segment keys a receipt id may match.
func (s *Service) receiptKeys(id string) []string {
	switch s.cfg.SMSC.MessageIDFormat {
	case "dec":
		return []string{dlr.CanonicalIn(id, dlr.Decimal)}
	case "hex":
		return []string{dlr.CanonicalIn(id, dlr.Hex)}
	}
	return dlr.IDForms(id)
}

// ApplyReceipt stores a receipt against its segment, or as an orphan when
// its message_id is not known yet.
func (s *Service) ApplyReceipt(ctx context.Context, r smpp.Receipt) error {
	now := s.now().UTC()
	keys := s.receiptKeys(r.ID)
	if len(keys) == 0 {
		s.metrics.Receipts.WithLabelValues("bad").Inc()
		return nil
	}
	state, _ := receiptState(r.State)
	done := r.DoneDate
	if done.IsZero() {
		done = now
	}
	var evs []Event
	var orphan bool
	var dups int
	err := s.store.Write(ctx, func(tx *Tx) error {
		evs, orphan, dups = nil, false, 0
		n, e, d, err := applyToSegments(tx, keys, state, r.Stat, r.Err, done, now)
		dups = d
		if err != nil {
			return err
		}
		if n == 0 {
			orphan = true
			s.orphans.Add(int64(len(keys))) // before the insert: a rollback only leaves it high
			for _, k := range keys {
				if err := insertOrphan(tx, k, orphanReceipt{stat: r.Stat, err: r.Err, state: state, done: ms(done), id: r.ID}, ms(now)); err != nil {
					return err
				}
			}
			return nil
		}
		evs = e
		return s.queueReports(tx, e, now) // the callbacks' reports commit with the receipt
	})
	if err != nil {
		return err
	}
	if orphan {
		s.metrics.Receipts.WithLabelValues("orphan").Inc()
		s.log.Info("receipt for a message id not known yet; kept", zap.String("smsc_id", r.ID), zap.String("stat", r.Stat))
		s.settleOrphans(ctx, keys)
		return nil
	}
	if dups > 0 && len(evs) == 0 {
		s.metrics.Receipts.WithLabelValues("duplicate").Inc()
		return nil
	}
	s.metrics.Receipts.WithLabelValues("matched").Inc()
	for _, e := range evs {
		s.events.Publish(e)
	}
	return nil
}

// orphansMatched counts receipts kept as orphans and applied later, once
// their write committed; dropped is how many orphan rows it deleted.
func (s *Service) orphansMatched(applied, dropped int) {
	s.orphans.Add(-int64(dropped))
	if applied > 0 {
		s.metrics.Receipts.WithLabelValues("orphan_matched").Add(float64(applied))
	}
}

// orphansInWrite says whether a segment's write applies the receipts
// that came before it. With one writer (SQLite) it sees every receipt
// committed before it, and none can commit meanwhile. With several (the
// writers of PostgreSQL, other instances), a receipt kept while the
// segment's write runs is missed by it, and the receipt's lookup misses the
// segment: instead each side looks for the other once it has committed
// (settleOrphans), so the later of the two finds both.
func (s *Service) orphansInWrite() bool {
	return !s.shared && s.orphans.Load() > 0
}

// settleOrphans applies the orphan receipts under keys whose segment is
// recorded: after a segment's write, and after a receipt kept as an
// orphan, on a shared store. Rows locked by orphansFor make two instances
// settling the same receipt apply it once. A failure leaves the receipt
// to the janitor's rematch.
func (s *Service) settleOrphans(ctx context.Context, keys []string) {
	if !s.shared {
		return
	}
	found, err := s.store.matchableOrphanKeys(ctx, keys)
	if err != nil {
		s.log.Warn("looking for orphan receipts to match failed; the janitor tries again", zap.Error(err))
		return
	}
	s.applyOrphanKeys(ctx, found)
}

// applyOrphanKeys applies the orphan receipts under each key, a write
// per key; false when a write failed.
func (s *Service) applyOrphanKeys(ctx context.Context, keys []string) bool {
	for _, key := range keys {
		var evs []Event
		var applied, dropped int
		err := s.store.Write(ctx, func(tx *Tx) error {
			var err error
			evs, applied, dropped, err = s.applyOrphans(tx, key, s.now().UTC())
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("applying an orphan receipt failed; the janitor tries again", zap.Error(err))
			}
			return false
		}
		s.orphansMatched(applied, dropped)
		for _, e := range evs {
			s.events.Publish(e)
		}
	}
	return true
}

// applyOrphans applies receipts that came before their segment was
// recorded (key is the segment's), and drops them: under this key, and,
// when the key is a receipt's id as written (its first form), under the
// other readings of that id (see receiptKeys), which then name no message
// of its. dropped is the number of rows deleted.
func (s *Service) applyOrphans(tx *Tx, key string, now time.Time) (evs []Event, applied, dropped int, err error) {
	os_, err := orphansFor(tx, key)
	if err != nil || len(os_) == 0 {
		return nil, 0, 0, err
	}
	drop := func(k, id string) error {
		n, err := dropOrphans(tx, k, id)
		dropped += int(n)
		return err
	}
	for _, o := range os_ {
		_, e, _, err := applyToSegments(tx, []string{key}, o.state, o.stat, o.err, fromMS(o.done), now)
		if err != nil {
			return nil, 0, 0, err
		}
		evs = append(evs, e...)
	}
	if err := s.queueReports(tx, evs, now); err != nil {
		return nil, 0, 0, err
	}
	if err := drop(key, ""); err != nil {
		return nil, 0, 0, err
	}
	seen := map[string]bool{}
	for _, o := range os_ {
		if o.id == "" || seen[o.id] {
			continue // kept before version 3 of the schema: its other forms wait for the sweep
		}
		seen[o.id] = true
		keys := s.receiptKeys(o.id)
		if len(keys) == 0 || keys[0] != key {
			// Matched by another reading of its id than its own (an
			// ambiguous id of digits): its other rows stay, as the message
			// its id names as written may still come.
			continue
		}
		for _, k := range keys[1:] {
			if err := drop(k, o.id); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	return evs, len(os_), dropped, nil
}

// applyToSegments updates the segments with these keys and their
// messages; it returns how many segments matched and the events to publish.
func applyToSegments(tx *Tx, keys []string, state, stat, errCode string, done, now time.Time) (n int, evs []Event, dup int, err error) {
	hits, err := segmentsByKey(tx, keys)
	if err != nil {
		return 0, nil, 0, err
	}
	for _, h := range hits {
		if h.state == state && h.stat == stat && finalState(state) {
			dup++ // the same final receipt again: nothing changes, no event
			continue
		}
		if err := setSegmentState(tx, h.msg, h.seq, state, stat, errCode, ms(done)); err != nil {
			return 0, nil, 0, err
		}
		var msgState string
		if h.segments == 1 && h.seq == 1 {
			// The only segment: its state is the message's once final.
			if finalState(state) {
				msgState = state
			}
		} else if msgState, err = aggregate(tx, h.msg, h.segments); err != nil {
			return 0, nil, 0, err
		}
		if msgState != "" {
			if err := settleMessage(tx, h.msg, msgState, stat, errCode, ms(now)); err != nil {
				return 0, nil, 0, err
			}
		} else if err := noteReceipt(tx, h.msg, stat, errCode, ms(now)); err != nil {
			return 0, nil, 0, err
		}
		ev := Event{MessageID: h.msg, ChallengeID: h.challenge, Phone: MaskPhone(h.phone), State: state, Stat: stat, Err: errCode,
			SMSCID: h.smscID, Segment: h.seq, Segments: h.segments, At: now, keyID: h.key, phone: h.phone, unhooked: !h.hooked}
		if msgState != "" {
			ev.State = msgState
		}
		evs = append(evs, ev)
	}
	return len(hits), evs, dup, nil
}

// aggregate gives a message's state from its segments once every segment
// has a final state: delivered when all are, else the first failure; ""
// while some are still open.
func aggregate(tx *Tx, msgID string, total int) (string, error) {
	states, err := segmentStates(tx, msgID)
	if err != nil {
		return "", err
	}
	result := StateDelivered
	for _, st := range states {
		if !finalState(st) {
			return "", nil
		}
		if st != StateDelivered && result == StateDelivered {
			result = st
		}
	}
	if len(states) < total || len(states) == 0 {
		return "", nil
	}
	return result, nil
}
