package simulator

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
)

// The faults counted in smscsim_faults_total{fault}.
const (
	faultError            = "error"
	faultThrottle         = "throttle"
	faultThrottleTPS      = "throttle_tps"
	faultDrop             = "drop"
	faultDelay            = "delay"
	faultDisconnect       = "disconnect"
	faultReceiptDelay     = "receipt_delay"
	faultReceiptDuplicate = "receipt_duplicate"
)

var faultNames = []string{faultError, faultThrottle, faultThrottleTPS, faultDrop, faultDelay, faultDisconnect, faultReceiptDelay, faultReceiptDuplicate}

// metrics are the simulator's Prometheus metrics, in a registry of its own
// (several simulators in one process do not collide).
type metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	requestByCmd     map[smpp.CommandID]prometheus.Counter
	rejectedVec      *prometheus.CounterVec
	rejectedCache    sync.Map // smpp.CommandStatus -> prometheus.Counter
	faults           map[string]prometheus.Counter
	messages         prometheus.Counter
	dropped          prometheus.Counter
	throttled        prometheus.Counter
	receiptsSentVec  *prometheus.CounterVec
	receiptsSent     map[dlr.State]prometheus.Counter
	receiptsAcked    prometheus.Counter
	receiptsRetried  prometheus.Counter
	receiptsDropped  prometheus.Counter
	receiptQueueFull prometheus.Counter
	bindsVec         *prometheus.CounterVec
	mo               prometheus.Counter
}

func newMetrics(sim *Simulator) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smscsim_requests_total", Help: "Requests received from ESMEs, by command."}, []string{"command"})
	f(m.requests)
	m.requestByCmd = map[smpp.CommandID]prometheus.Counter{}
	for _, c := range []smpp.CommandID{smpp.SubmitSMID, smpp.DataSMID, smpp.SubmitMultiID, smpp.QuerySMID, smpp.CancelSMID, smpp.ReplaceSMID} {
		m.requestByCmd[c] = m.requests.WithLabelValues(c.String())
	}
	m.rejectedVec = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smscsim_rejected_total", Help: "Requests answered with an error status, by status."}, []string{"status"})
	f(m.rejectedVec)
	fv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smscsim_faults_total", Help: "Faults injected, by fault."}, []string{"fault"})
	f(fv)
	m.faults = map[string]prometheus.Counter{}
	for _, n := range faultNames {
		m.faults[n] = fv.WithLabelValues(n)
	}
	m.messages = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_messages_total", Help: "Short messages accepted (each segment and each submit_multi destination counts)."})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_messages_dropped_total", Help: "Stored messages dropped, oldest first, to stay within the retention."})
	m.throttled = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_throttled_total", Help: "Submits answered ESME_RTHROTTLED for passing an account's TPS."})
	m.receiptsSentVec = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smscsim_receipts_sent_total", Help: "Delivery receipts sent (retries and duplicates included), by stat."}, []string{"stat"})
	m.receiptsSent = map[dlr.State]prometheus.Counter{}
	for st := dlr.Enroute; st <= dlr.Rejected; st++ {
		m.receiptsSent[st] = m.receiptsSentVec.WithLabelValues(st.Stat())
	}
	m.receiptsAcked = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_receipts_acked_total", Help: "Delivery receipts answered by an OK deliver_sm_resp."})
	m.receiptsRetried = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_receipts_retried_total", Help: "Delivery receipts to send again after an error answer or a lost link."})
	m.receiptsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_receipts_dropped_total", Help: "Receipts dropped, oldest first, while more than the retention waited for a receiver."})
	f(m.receiptsDropped)
	m.receiptQueueFull = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_receipt_queue_full_total", Help: "Submits refused with ESME_RMSGQFUL: the account had max_pending_receipts receipts not yet acknowledged."})
	f(m.receiptQueueFull)
	m.bindsVec = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smscsim_binds_total", Help: "Bind attempts, by the status answered."}, []string{"status"})
	m.mo = prometheus.NewCounter(prometheus.CounterOpts{Name: "smscsim_mo_total", Help: "Mobile-originated deliver_sm sent."})
	f(m.messages)
	f(m.dropped)
	f(m.throttled)
	f(m.receiptsSentVec)
	f(m.receiptsAcked)
	f(m.receiptsRetried)
	f(m.bindsVec)
	f(m.mo)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "smscsim_messages_stored", Help: "Messages held now."},
		func() float64 { return float64(sim.st.count()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "smscsim_receipts_pending", Help: "Receipts scheduled or in flight and not yet acknowledged."},
		func() float64 { return float64(sim.sched.pending.Load()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "smscsim_sessions", Help: "Bound sessions now."},
		func() float64 {
			sim.smu.RLock()
			defer sim.smu.RUnlock()
			return float64(len(sim.sessions))
		}))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) request(c smpp.CommandID) prometheus.Counter {
	if x := m.requestByCmd[c]; x != nil {
		return x
	}
	return m.requests.WithLabelValues(c.String())
}

func (m *metrics) fault(name string) prometheus.Counter { return m.faults[name] }

func (m *metrics) rejected(st smpp.CommandStatus) prometheus.Counter {
	if c, ok := m.rejectedCache.Load(st); ok {
		return c.(prometheus.Counter)
	}
	c := m.rejectedVec.WithLabelValues(statusName(st))
	m.rejectedCache.Store(st, c)
	return c
}

func (m *metrics) binds(st smpp.CommandStatus) prometheus.Counter {
	return m.bindsVec.WithLabelValues(statusName(st))
}

func (m *metrics) receiptSent(st dlr.State) prometheus.Counter {
	if c := m.receiptsSent[st]; c != nil {
		return c
	}
	return m.receiptsSentVec.WithLabelValues(st.Stat())
}

func statusName(st smpp.CommandStatus) string {
	if st.Known() {
		return st.Name()
	}
	b, _ := Status(st).MarshalText()
	return string(b)
}
