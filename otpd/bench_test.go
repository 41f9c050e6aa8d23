package otpd

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCreateOTP: POST /v1/otp over loopback HTTP on the embedded
// default, in parallel; each is committed to SQLite before it returns.
func BenchmarkCreateOTP(b *testing.B) {
	cfg := NewConfig()
	cfg.DataDir = b.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Sim.HTTPAddr = ""
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
}
