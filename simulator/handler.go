package simulator

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
)

// submission is what submit_sm, data_sm and each destination of
// submit_multi have in common.
type submission struct {
	cmd                            smpp.CommandID
	srcTON, srcNPI, dstTON, dstNPI byte
	src, dst                       string
	esm, regDel, dc                byte
	sm                             []byte
	opts                           smpp.Options
	raw                            []byte // the request re-encoded, for the detail view
}

// ServeSMPP answers the ESMEs' requests. It runs on each session's read
// loop.
func (sim *Simulator) ServeSMPP(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
	ss := sim.session(s)
	if ss == nil { // closed meanwhile
		return smpp.Reply(req, smpp.ESME_RINVBNDSTS)
	}
	n := ss.requests.Add(1)
	cmd := req.CommandID()
	if ce := sim.log.Check(zap.DebugLevel, "smscsim: request"); ce != nil {
		ce.Write(zap.String("system_id", ss.systemID), zap.Stringer("command", cmd), zap.Uint32("seq", req.Head().Sequence))
	}
	sim.metrics.request(cmd).Inc()
	f := sim.faults.Load()
	var drop, delay bool
	if f.hasRequest {
		if f.DisconnectAfter > 0 && n > uint64(f.DisconnectAfter) {
			sim.metrics.fault(faultDisconnect).Inc()
			sim.cut(s, "disconnect_after "+strconv.Itoa(f.DisconnectAfter))
			return nil
		}
		if sim.chance(f.DisconnectRate) {
			sim.metrics.fault(faultDisconnect).Inc()
			sim.cut(s, "disconnect_rate")
			return nil
		}
		if isSubmit(cmd) {
			if f.tps != nil && !f.tps.Allow() {
				sim.metrics.fault(faultThrottleTPS).Inc()
				return sim.answer(ss, req, smpp.Reply(req, smpp.ESME_RTHROTTLED))
			}
			if sim.chance(f.ThrottleRate) {
				sim.metrics.fault(faultThrottle).Inc()
				return sim.answer(ss, req, smpp.Reply(req, smpp.ESME_RTHROTTLED))
			}
			if sim.chance(f.ErrorRate) {
				sim.metrics.fault(faultError).Inc()
				return sim.answer(ss, req, smpp.Reply(req, smpp.CommandStatus(f.ErrorStatus)))
			}
		}
		if sim.chance(f.DropRate) {
			sim.metrics.fault(faultDrop).Inc()
			drop = true
		} else if sim.chance(f.DelayRate) {
			sim.metrics.fault(faultDelay).Inc()
			delay = true
		}
	}
	receipts := ss.jobs[:0] // the session's own: the handler runs on its read loop
	resp := sim.handle(ss, req, &receipts, !delay)
	switch {
	case drop:
		sim.schedule(ss, receipts)
		return nil
	case delay:
		if resp != nil {
			resp.Head().Sequence = req.Head().Sequence
			sim.sched.respondLater(s, resp, time.Now().Add(sim.drawDelay(f.ResponseDelay)))
		}
		sim.schedule(ss, receipts)
		return nil
	}
	resp = sim.answer(ss, req, resp)
	if len(receipts) == 0 {
		return resp
	}
	// The response goes out before the receipts are scheduled, so that no
	// receipt overtakes the submit_sm_resp that gives its id.
	resp.Head().Sequence = req.Head().Sequence
	s.Respond(resp)
	sim.schedule(ss, receipts)
	return nil
}

// schedule hands the receipts to the scheduler and gives the scratch
// slice back to the session.
func (sim *Simulator) schedule(ss *sess, jobs []*job) {
	for i, j := range jobs {
		sim.sched.add(j)
		jobs[i] = nil
	}
	ss.jobs = jobs[:0]
}

func (sim *Simulator) answer(ss *sess, req, resp smpp.PDU) smpp.PDU {
	if resp != nil {
		if st := resp.Head().Status; st != smpp.ESME_ROK {
			sim.metrics.rejected(st).Inc()
			if ce := sim.log.Check(zap.DebugLevel, "smscsim: request refused"); ce != nil {
				ce.Write(zap.String("system_id", ss.systemID), zap.Stringer("command", req.CommandID()), zap.String("status", st.Name()))
			}
		}
	}
	return resp
}

func isSubmit(c smpp.CommandID) bool {
	return c == smpp.SubmitSMID || c == smpp.DataSMID || c == smpp.SubmitMultiID
}

// handle answers req; the receipts it asks for are appended to receipts.
//
// With reuse, a submit_sm_resp is the session's own struct: the session
// encodes a response before it reads the next request, so it can serve
// every response of this read loop. A delayed response needs its own.
func (sim *Simulator) handle(ss *sess, req smpp.PDU, receipts *[]*job, reuse bool) smpp.PDU {
	if isSubmit(req.CommandID()) && ss.acct != nil && ss.acct.limiter != nil && !ss.acct.limiter.Allow() {
		sim.metrics.throttled.Inc()
		return smpp.Reply(req, smpp.ESME_RTHROTTLED)
	}
	now := time.Now()
	switch p := req.(type) {
	case *smpp.SubmitSM:
		sub := submission{cmd: smpp.SubmitSMID, srcTON: p.SourceAddrTON, srcNPI: p.SourceAddrNPI, src: p.SourceAddr,
			dstTON: p.DestAddrTON, dstNPI: p.DestAddrNPI, dst: p.DestinationAddr, esm: p.ESMClass,
			regDel: p.RegisteredDelivery, dc: p.DataCoding, sm: p.ShortMessage, opts: p.Options, raw: rawPDU(req)}
		id, st := sim.accept(ss, &sub, now, 0, receipts)
		if st != smpp.ESME_ROK {
			return smpp.Reply(req, st)
		}
		if reuse {
			ss.submitResp = smpp.SubmitSMResp{MessageID: id}
			return &ss.submitResp
		}
		return &smpp.SubmitSMResp{MessageID: id}
	case *smpp.DataSM:
		sub := submission{cmd: smpp.DataSMID, srcTON: p.SourceAddrTON, srcNPI: p.SourceAddrNPI, src: p.SourceAddr,
			dstTON: p.DestAddrTON, dstNPI: p.DestAddrNPI, dst: p.DestinationAddr, esm: p.ESMClass,
			regDel: p.RegisteredDelivery, dc: p.DataCoding, opts: p.Options, raw: rawPDU(req)}
		id, st := sim.accept(ss, &sub, now, 0, receipts)
		if st != smpp.ESME_ROK {
			return smpp.Reply(req, st)
		}
		return &smpp.DataSMResp{MessageID: id}
	case *smpp.SubmitMulti:
		return sim.submitMulti(ss, p, now, receipts)
	case *smpp.QuerySM:
		return sim.query(p, now)
	case *smpp.CancelSM:
		return sim.cancelSM(p, now)
	case *smpp.ReplaceSM:
		return sim.replace(p, now)
	}
	return smpp.Reply(req, smpp.ESME_RINVCMDID)
}

func (sim *Simulator) submitMulti(ss *sess, p *smpp.SubmitMulti, now time.Time, receipts *[]*job) smpp.PDU {
	resp := &smpp.SubmitMultiResp{}
	raw := rawPDU(p)
	var num uint64
	for _, d := range p.Dests {
		if d.DLName != "" {
			resp.Unsuccess = append(resp.Unsuccess, smpp.UnsuccessSME{Addr: truncate(d.DLName, smpp.MaxAddr-1), Status: smpp.ESME_RINVDLNAME})
			continue
		}
		sub := submission{cmd: smpp.SubmitMultiID, srcTON: p.SourceAddrTON, srcNPI: p.SourceAddrNPI, src: p.SourceAddr,
			dstTON: d.TON, dstNPI: d.NPI, dst: d.Addr, esm: p.ESMClass,
			regDel: p.RegisteredDelivery, dc: p.DataCoding, sm: p.ShortMessage, opts: p.Options, raw: raw}
		id, st := sim.accept(ss, &sub, now, num, receipts)
		if st != smpp.ESME_ROK {
			resp.Unsuccess = append(resp.Unsuccess, smpp.UnsuccessSME{TON: d.TON, NPI: d.NPI, Addr: d.Addr, Status: st})
			continue
		}
		if num == 0 {
			num, _ = sim.ids.parse(id)
			resp.MessageID = id
		}
	}
	return resp
}

// wantReceipt tests the receipt bits of registered_delivery: 1 asks for a
// receipt on success and failure, 2 on failure only. Other bits (SME
// acknowledgements, intermediate notifications, as in Kannel's 0x11) are
// ignored.
func wantReceipt(regDel byte, o Outcome) bool {
	switch regDel & smpp.RegisteredDeliveryMask {
	case smpp.RegisteredDeliveryAlways:
		return true
	case smpp.RegisteredDeliveryOnFailure:
		return o.State != dlr.Delivered && o.State != dlr.Accepted && o.State != dlr.Enroute
	}
	return false
}

// accept stores one message (or segment) and appends its receipt, if one
// is due, to receipts. num, when not zero, is the id number to use (the
// destinations of one submit_multi share it).
func (sim *Simulator) accept(ss *sess, sub *submission, now time.Time, num uint64, receipts *[]*job) (string, smpp.CommandStatus) {
	var receiptCounted, receiptDue bool
	var completed *message // a copy for the event stream
	defer func() {
		if receiptCounted && !receiptDue {
			sim.sched.count(ss.systemID, -1)
		}
		if completed != nil {
			sim.publish(EventMessage, completed)
		}
	}()
	rule := sim.rule(sub.dst)
	if rule != nil && rule.Reject != smpp.ESME_ROK {
		return "", rule.Reject
	}
	// A receipt it may owe is counted before the message is taken: with
	// MaxPendingReceipts of the account's receipts not yet acknowledged,
	// the SMSC's queue is full and the submit is refused (ESME_RMSGQFUL,
	// which clients retry), so memory stays bounded and no receipt of an
	// accepted message is ever dropped. The count is given back below when
	// no receipt is due after all.
	if sub.regDel&smpp.RegisteredDeliveryMask != 0 {
		if sim.sched.count(ss.systemID, 1) > int64(sim.cfg.MaxPendingReceipts) {
			sim.sched.count(ss.systemID, -1)
			sim.metrics.receiptQueueFull.Inc()
			return "", smpp.ESME_RMSGQFUL
		}
		receiptCounted = true
	}
	part, isPart, err := smpp.MessagePart(sub.esm, sub.sm, sub.opts)
	if err != nil || part.Seq == 0 || part.Seq > part.Total {
		isPart = false // a malformed UDH: keep the data as it came
	}
	// The request struct is reused for the next PDU (ReuseRequests): keep a
	// copy of the data.
	part.Data = bytes.Clone(part.Data)
	if num == 0 {
		num = sim.num.Add(1)
	}
	id := sim.ids.str(num)
	ss.submits.Add(1)
	sim.metrics.messages.Inc()

	var m *message
	var newMsg bool
	var jo Outcome   // the receipt's outcome,
	var jg uint32    // generation
	var at time.Time // and time, read under st.mu
	st := sim.st
	if !isPart {
		m = sim.newMessage(ss, sub, rule, num, id, now)
		m.data, m.total, m.received, m.complete = part.Data, 1, 1, true
		m.pdus = [][]byte{sub.raw}
		st.mu.Lock()
		st.addLocked(m)
		st.wakeLocked(m)
		if sim.hub.active() {
			c := st.copyLocked(m)
			completed = &c
		}
		if m.noReceipt || m.held || !wantReceipt(sub.regDel, m.outcome) {
			st.mu.Unlock()
			return id, smpp.ESME_ROK
		}
		m.rcptWanted++
		jo, jg, at = m.outcome, m.rcptGen, m.doneAt
		st.mu.Unlock()
	} else {
		key := setKey{key: ss.systemID + "\x00" + sub.src + "\x00" + sub.dst, ref: part.Ref}
		st.mu.Lock()
		m = sim.sets[key]
		if m == nil || m.total != int(part.Total) {
			m = sim.newMessage(ss, sub, rule, num, id, now)
			m.total = int(part.Total)
			m.segNums = make([]uint64, part.Total)
			sim.sets[key] = m
			newMsg = true
		}
		if i := int(part.Seq) - 1; m.segNums[i] == 0 {
			m.segNums[i] = num
			m.received++
			if m.pdus == nil {
				m.pdus = make([][]byte, part.Total)
			}
			m.pdus[i] = sub.raw
		}
		if newMsg {
			st.addLocked(m)
		} else {
			st.byNum[num] = m
		}
		parts, complete, rerr := sim.reasm.Add(key.key, part.Ref, part.Total, part.Seq, part.Data, now)
		if complete {
			m.parts, m.complete = parts, true
			delete(sim.sets, key)
			st.wakeLocked(m)
			if sim.hub.active() {
				c := st.copyLocked(m)
				completed = &c
			}
		} else if rerr != nil && !errors.Is(rerr, coding.ErrReassemblyFull) {
			sim.log.Debug("smscsim: segment not reassembled", zap.Error(rerr))
		}
		if m.noReceipt || m.held || !wantReceipt(sub.regDel, m.outcome) {
			st.mu.Unlock()
			return id, smpp.ESME_ROK
		}
		m.rcptWanted++
		jo, jg, at = m.outcome, m.rcptGen, m.doneAt
		st.mu.Unlock()
	}
	if at.Before(now) {
		at = now
	}
	if fd := sim.faults.Load().ReceiptDelay; !fd.IsZero() {
		sim.metrics.fault(faultReceiptDelay).Inc()
		at = at.Add(sim.drawDelay(fd))
	}
	*receipts = append(*receipts, &job{at: at, m: m, num: num, data: part.Data, outcome: jo, gen: jg})
	receiptDue = true
	return id, smpp.ESME_ROK
}

func (sim *Simulator) newMessage(ss *sess, sub *submission, rule *Rule, num uint64, id string, now time.Time) *message {
	m := &message{num: num, id: id, systemID: ss.systemID, via: ss.id, cmd: sub.cmd, from: sub.src, to: sub.dst,
		srcTON: sub.srcTON, srcNPI: sub.srcNPI, dstTON: sub.dstTON, dstNPI: sub.dstNPI,
		esm: sub.esm, regDel: sub.regDel, dc: sub.dc, receivedAt: now, doneAt: now}
	switch {
	case rule != nil && rule.NoReceipt:
		m.outcome, m.noReceipt = delivered, true
	case rule != nil:
		m.outcome = Outcome{State: rule.state, Err: rule.Err, Weight: 1}
	default:
		m.outcome = sim.drawOutcome()
	}
	if !sim.cfg.DLRDelay.IsZero() {
		m.doneAt = now.Add(sim.drawDelay(sim.cfg.DLRDelay))
	}
	m.held = sim.cfg.DLRMode == "manual"
	return m
}

func (sim *Simulator) query(p *smpp.QuerySM, now time.Time) smpp.PDU {
	st := sim.st
	st.mu.Lock()
	m := st.lookupLocked(p.MessageID)
	if m == nil {
		st.mu.Unlock()
		return smpp.Reply(p, smpp.ESME_RQUERYFAIL)
	}
	state := m.state(now)
	resp := &smpp.QuerySMResp{MessageID: p.MessageID, MessageState: smpp.MessageState(state)}
	if state != dlr.Enroute {
		at := m.doneAt
		if m.canceled {
			at = now
		}
		resp.FinalDate = smpp.FormatAbsoluteTime(at)
		if state != dlr.Delivered && !m.canceled {
			if e, err := strconv.ParseUint(m.outcome.Err, 10, 8); err == nil {
				resp.ErrorCode = byte(e)
			}
		}
	}
	st.mu.Unlock()
	return resp
}

func (sim *Simulator) cancelSM(p *smpp.CancelSM, now time.Time) smpp.PDU {
	st := sim.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if p.MessageID != "" {
		m := st.lookupLocked(p.MessageID)
		if m == nil || m.state(now) != dlr.Enroute || (p.SourceAddr != "" && trimPlus(p.SourceAddr) != trimPlus(m.from)) {
			return smpp.Reply(p, smpp.ESME_RCANCELFAIL)
		}
		m.canceled = true
		return &smpp.CancelSMResp{}
	}
	// Every message from source_addr to destination_addr still enroute.
	n := 0
	for _, m := range st.ring {
		if m != nil && trimPlus(m.from) == trimPlus(p.SourceAddr) && trimPlus(m.to) == trimPlus(p.DestinationAddr) && m.state(now) == dlr.Enroute {
			m.canceled = true
			n++
		}
	}
	if n == 0 {
		return smpp.Reply(p, smpp.ESME_RCANCELFAIL)
	}
	return &smpp.CancelSMResp{}
}

func (sim *Simulator) replace(p *smpp.ReplaceSM, now time.Time) smpp.PDU {
	st := sim.st
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.lookupLocked(p.MessageID)
	if m == nil || m.total != 1 || m.state(now) != dlr.Enroute || (p.SourceAddr != "" && trimPlus(p.SourceAddr) != trimPlus(m.from)) {
		return smpp.Reply(p, smpp.ESME_RREPLACEFAIL)
	}
	m.data = bytes.Clone(p.ShortMessage) // p is reused for the next PDU
	return &smpp.ReplaceSMResp{}
}

// rawPDU encodes req again (the session reuses the bytes it read): what
// the detail view shows as the PDU's hex.
func rawPDU(req smpp.PDU) []byte {
	size := 256 // header, addresses and the usual TLVs
	if p, ok := req.(*smpp.SubmitSM); ok {
		size += len(p.ShortMessage)
	}
	b, err := smpp.AppendPDU(make([]byte, 0, size), req)
	if err != nil {
		return nil
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
