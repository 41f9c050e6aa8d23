package otpd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
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

// BenchmarkStoreOTPWrites: the store's share of one OTP, without HTTP or
// SMPP: the create write (challenge and message), the write after the
// submit_sm_resp (segment and message) and the receipt's write, from 128
// goroutines per core at once, so that they share group commits as under
// load.
// ns/op is the writer's time per OTP: what bounds the end-to-end rate.
func BenchmarkStoreOTPWrites(b *testing.B) { storeOTPWrites(b, false) }

// BenchmarkStoreOTPWritesCallbacksOn: the same once some message has a
// callback (a StatusCallback, webhook or SMPP receipt), so that every
// receipt looks for one of its own in its write.
func BenchmarkStoreOTPWritesCallbacksOn(b *testing.B) { storeOTPWrites(b, true) }

func storeOTPWrites(b *testing.B, callbacks bool) {
	st, svc := senderService(b, 0)
	defer st.Close()
	if callbacks {
		// Callbacks on other messages, still open.
		for i := 0; i < 1000; i++ {
			svc.doors.open.Store(NewID("msg"), struct{}{})
		}
	}
	sec := svc.sec
	snd := NewSender(svc, nil)
	var n atomic.Int64
	b.SetParallelism(128) // 128 per core: batches as large as under load, not bound by the disk's sync time
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			now := time.Now().UTC()
			c := &Challenge{ID: NewID("ch"), Phone: "+4915100000000", Status: StatusPending, MaxAttempts: 3, Sends: 1, Length: 6,
				CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute), LastSentAt: now, UpdatedAt: now, CodeHMAC: sec.CodeMAC("ch", "123456")}
			m := svc.newMessage(c.ID, c.Phone, "", "Your code is 123456", c.ExpiresAt, "", now)
			m.State, m.Attempts = StateSending, 1
			c.MessageID = m.ID
			if err := st.Write(b.Context(), func(tx *Tx) error {
				if err := insertChallenge(tx, c); err != nil {
					return err
				}
				return insertMessage(tx, m)
			}); err != nil {
				b.Error(err)
				return
			}
			// Ids of ten digits, as from a busy SMSC, read as decimal (the
			// embedded default, as in the end-to-end figures).
			id := strconv.FormatInt(1e9+i, 10)
			snd.submitted(m, 1, &segment{seq: 1, smscID: id}, zap.NewNop())
			if err := svc.ApplyReceipt(b.Context(), smpp.Receipt{Receipt: dlr.Receipt{ID: id, Stat: "DELIVRD", State: dlr.Delivered}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if got := counterValue(svc.metrics.Receipts.WithLabelValues("matched")); got != float64(b.N) {
		b.Fatalf("%v receipts matched, want %d", got, b.N)
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHTTPTransport: what one POST /v1/otp costs in net/http alone,
// both ends in this process over loopback, 16 keep-alive clients per core
// (32 on the 2-core VM of the README's figures), and a
// handler that answers at once with a body like POST /v1/otp's. The CPU
// per request (cpu-ns/op) is a floor under the end-to-end cost of an OTP
// that no change inside otpd's handler can lower.
func BenchmarkHTTPTransport(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(`{"expires_at":"2026-11-22T09:06:06.298Z","id":"ch_2al26zati2ckx2wntmztf4kfmo","phone":"+49151****740","status":"pending"}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(answer)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/v1/otp"
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(16)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := cl.Post(url, "application/json", bytes.NewBufferString(`{"phone":"+4915100000001"}`))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkParsePhone: what reading one number costs with
// github.com/nyaruka/phonenumbers, a different valid German mobile number
// each time: as the embedded default reads it (possible length only) and
// as otpd does with a real SMSC (valid for its country, not a fixed line).
func BenchmarkParsePhone(b *testing.B) {
	for _, strict := range []bool{false, true} {
		b.Run("strict="+strconv.FormatBool(strict), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := parsePhone("+49151"+strconv.Itoa(10_000_000+i%90_000_000), "", strict); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
