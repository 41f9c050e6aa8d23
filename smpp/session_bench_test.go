package smpp

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkSessionSubmit: submit_sm round trips over loopback TCP against
// an in-process Server answering at once, pipelined (a new submit goes out
// as each response comes back), for windows 1, 10 and 100 on one Session,
// and on a Pool of 4 binds. It reports round trips per second (rt/s) and
// the latency from Go to the response (p50-us, p99-us).
func BenchmarkSessionSubmit(b *testing.B) {
	for _, binds := range []int{1, 4} {
		for _, window := range []int{1, 10, 100} {
			b.Run("binds="+itoa(binds)+"/window="+itoa(window), func(b *testing.B) {
				benchSubmit(b, binds, window)
			})
		}
	}
}

// submitter is what the benchmark drives: a Session or a Pool.
type submitter interface {
	Go(ctx context.Context, req PDU, done chan *Call) *Call
}

func benchSubmit(b *testing.B, binds, window int) {
	resp := &SubmitSMResp{MessageID: "2d6f0b6f"}
	h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
		r := *resp
		return &r
	})
	_, addr := testServer(b, h, nil)
	ctx := context.Background()
	var sub submitter
	if binds == 1 {
		sub = dial(b, addr, Config{Window: window})
	} else {
		p := NewPool(PoolConfig{Addr: addr, Binds: binds, Session: Config{SystemID: "otp", Window: window}})
		b.Cleanup(func() { p.Close(context.Background()) })
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for p.Stats().BindsUp < binds {
			if wctx.Err() != nil {
				b.Fatalf("only %d of %d binds up", p.Stats().BindsUp, binds)
			}
			time.Sleep(time.Millisecond)
		}
		sub = p
	}
	total := binds * window
	done := make(chan *Call, total)
	reqs := make([]*SubmitSM, total)
	sentAt := make(map[*SubmitSM]time.Time, total)
	for i := range reqs {
		reqs[i] = &SubmitSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112345678",
			RegisteredDelivery: 1, ShortMessage: []byte("Your code is 123456. It expires in 5 minutes.")}
	}
	lat := make([]time.Duration, 0, b.N)
	finish := func(c *Call) *SubmitSM {
		if c.Err != nil {
			b.Fatal(c.Err)
		}
		req := c.Req.(*SubmitSM)
		lat = append(lat, time.Since(sentAt[req]))
		return req
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	inflight := 0
	for i := 0; i < b.N; i++ {
		var req *SubmitSM
		if inflight == total {
			req = finish(<-done)
			inflight--
		} else {
			req = reqs[inflight]
		}
		sentAt[req] = time.Now()
		sub.Go(ctx, req, done)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		finish(<-done)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rt/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}
