package otpd

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkCreateOTP: the whole path of OTPs on the embedded default:
// POST /v1/otp over loopback HTTP by 32 clients, each committed to SQLite
// before it returns, submitted by the sender to the in-process simulator,
// and its receipt matched. The clock stops when every message of the run
// shows delivered, so ns/op is the sustained end-to-end cost, not the
// rate at which requests were accepted while the outbox fell behind.
func BenchmarkCreateOTP(b *testing.B) {
	cfg := NewConfig()
	cfg.DataDir = b.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Sim.HTTPAddr = ""
	cfg.Sim.DLRDelay = "1ms" // the receipt at once: the benchmark measures throughput, not the handset
	cfg.SMSC.Window = 100
	cfg.Limits = LimitsConfig{PerPhone: Rate{N: 1 << 30, Per: time.Hour}, PerKey: Rate{N: 1 << 30, Per: time.Hour}, PerCountry: Rate{N: 1 << 30, Per: time.Hour}, Global: Rate{N: 1 << 30, Per: time.Hour}}
	d, err := Start(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Shutdown(b.Context())
	d.Pool().WaitReady(b.Context())
	url := "http://" + d.Addr() + "/v1/otp"
	var n atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	cl := &http.Client{Transport: tr}
	start := time.Now()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"phone":"+49151%08d"}`, i%100000000)
			resp, err := cl.Post(url, "application/json", bytes.NewBufferString(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body) // to the end, so the connection is reused
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	accepted := time.Since(start)
	// Every message created so far (this run's and the warm-up's) has its
	// receipt matched (counted after the receipt's write committed).
	created := counterValue(d.Service().metrics.Challenges.WithLabelValues("created"))
	deadline := time.Now().Add(time.Minute)
	for counterValue(d.Service().metrics.Receipts.WithLabelValues("matched"))+
		counterValue(d.Service().metrics.Receipts.WithLabelValues("orphan_matched")) < created {
		if time.Now().After(deadline) {
			b.Fatalf("not every receipt matched a minute after the last OTP was accepted")
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "otps/s")
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
