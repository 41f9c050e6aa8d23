package otpd

import (
	"github.com/otpd/otpd/smpp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are otpd's Prometheus metrics, on their own registry.
type Metrics struct {
	Registry      *prometheus.Registry
	Challenges    *prometheus.CounterVec // by status reached
	Verifications *prometheus.CounterVec // by result
	Messages      *prometheus.CounterVec // by delivery state reached
	Submits       *prometheus.CounterVec // submit_sm by result (ok, status name, uncertain, no_bind)
	SubmitLatency prometheus.Histogram
	Uncertain     prometheus.Counter
	Receipts      *prometheus.CounterVec // by outcome (matched, orphan, duplicate, bad)
	RateLimited   *prometheus.CounterVec // by limit
	Expired       prometheus.Counter     // messages failed because their deadline passed
	HTTP          *prometheus.CounterVec // by route and code
	Events        prometheus.Counter
	// The event feed between the instances of a shared store.
	EventsRelayed, EventsRelayDropped, EventsReceived, EventsListenReconnects prometheus.Counter
	// A PostgreSQL store's writers' connections regained after a loss.
	StoreReconnects prometheus.Counter
	// Codes sent and verified per country code and prefix: SMS pumping
	// shows as sends without verifies.
	OTPSends    *prometheus.CounterVec
	OTPVerified *prometheus.CounterVec
	HTTPErrors  *prometheus.CounterVec // 5xx answers by code
}

// NewMetrics registers otpd's metrics on a new registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry:      r,
		Challenges:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_challenges_total", Help: "OTP challenges by status reached (created, approved, max_attempts_reached, canceled)."}, []string{"status"}),
		Verifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_verifications_total", Help: "Verification attempts by result."}, []string{"result"}),
		Messages:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_messages_total", Help: "SMS by delivery state reached."}, []string{"state"}),
		Submits:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_submits_total", Help: "submit_sm by result: ok, the SMSC's command_status name, uncertain, no_bind, error."}, []string{"result"}),
		SubmitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "otpd_submit_seconds", Help: "submit_sm round trip.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		Uncertain:     prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_submits_uncertain_total", Help: "Submits whose outcome is unknown (no response, link lost, restart mid-submit)."}),
		Receipts:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_receipts_total", Help: "Delivery receipts by outcome: matched, orphan (no message yet), duplicate, bad."}, []string{"outcome"}),
		RateLimited:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_rate_limited_total", Help: "Sends refused by a rate limit."}, []string{"limit"}),
		Expired:       prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_messages_expired_unsent_total", Help: "Messages failed because their challenge expired before they could be submitted."}),
		HTTP:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		Events:        prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_events_dropped_total", Help: "Delivery events dropped for a slow subscriber."}),
	}
	m.OTPSends = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_otp_sends_total", Help: "OTP challenges created (first SMS) by country code and prefix (country code and 3 digits)."}, []string{"country", "prefix"})
	m.OTPVerified = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_otp_verified_total", Help: "OTP challenges approved by country code and prefix; with otpd_otp_sends_total, the conversion."}, []string{"country", "prefix"})
	m.HTTPErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpd_http_server_errors_total", Help: "HTTP 5xx answers by error code."}, []string{"code"})
	r.MustRegister(m.OTPSends, m.OTPVerified, m.HTTPErrors)
	m.EventsRelayed = prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_events_relayed_total", Help: "Delivery events sent to the other instances of a shared store (PostgreSQL NOTIFY)."})
	m.EventsRelayDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_events_relay_dropped_total", Help: "Delivery events not sent to the other instances: the relay's queue was full or PostgreSQL was unreachable."})
	m.EventsReceived = prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_events_received_total", Help: "Delivery events received from the other instances of a shared store."})
	m.EventsListenReconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_events_listen_reconnects_total", Help: "Reconnects of the listener for the other instances' events after its connection was lost (events in the gap are missed)."})
	r.MustRegister(m.EventsRelayed, m.EventsRelayDropped, m.EventsReceived, m.EventsListenReconnects)
	m.StoreReconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "otpd_store_reconnects_total", Help: "On PostgreSQL: connections of the store's writers regained after one was lost (a server restart, a terminated backend, a cut link)."})
	r.MustRegister(m.StoreReconnects)
	r.MustRegister(m.Challenges, m.Verifications, m.Messages, m.Submits, m.SubmitLatency, m.Uncertain, m.Receipts, m.RateLimited, m.Expired, m.HTTP, m.Events)
	return m
}

// watchPool exports the SMSC binds' state: binds up and down, window in
// use, reconnects, receipts and responses by status.
func (m *Metrics) watchPool(p *smpp.Pool) {
	gauge := func(name, help string, f func(smpp.PoolStats) float64) {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(p.Stats()) }))
	}
	gauge("otpd_smpp_binds_up", "SMSC binds up.", func(s smpp.PoolStats) float64 { return float64(s.BindsUp) })
	gauge("otpd_smpp_binds_down", "SMSC binds down (reconnecting).", func(s smpp.PoolStats) float64 { return float64(s.BindsDown) })
	gauge("otpd_smpp_window_in_use", "Requests outstanding over all binds.", func(s smpp.PoolStats) float64 { return float64(s.WindowInUse) })
	gauge("otpd_smpp_window_size", "Window over all binds up.", func(s smpp.PoolStats) float64 { return float64(s.Window) })
	counter := func(name, help string, f func(smpp.PoolStats) float64) {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(p.Stats()) }))
	}
	counter("otpd_smpp_reconnects_total", "Binds re-established after a loss.", func(s smpp.PoolStats) float64 { return float64(s.Reconnects) })
	counter("otpd_smpp_binds_total", "SMSC binds established, the first ones included.", func(s smpp.PoolStats) float64 { return float64(s.Binds) })
	counter("otpd_smpp_bind_failures_total", "Attempts to bind that failed (connect, refusal, timeout).", func(s smpp.PoolStats) float64 { return float64(s.BindFailures) })
	counter("otpd_smpp_binds_lost_total", "SMSC binds lost after they were up.", func(s smpp.PoolStats) float64 { return float64(s.Losses) })
	counter("otpd_smpp_received_total", "deliver_sm and data_sm received (receipts and MO).", func(s smpp.PoolStats) float64 { return float64(s.Received) })
	counter("otpd_smpp_throttled_total", "Throttling responses from the SMSC.", func(s smpp.PoolStats) float64 { return float64(s.Throttled) })
}

// watchBudget exports the slots of the bind budget this instance holds.
func (m *Metrics) watchBudget(held func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpd_smpp_bind_slots_held",
		Help: "Slots of the SMSC account's bind budget this instance leases (one per session, up or unbinding)."}, func() float64 { return float64(held()) }))
}
