package smpp

import (
	"context"
	"testing"
)

// BenchmarkSessionSubmit: submit_sm round trips over loopback TCP between
// a Session and an in-process Server answering at once, window 100,
// pipelined (a new submit goes out as each response comes back).
func BenchmarkSessionSubmit(b *testing.B) {
	for _, window := range []int{1, 10, 100} {
		b.Run("window="+itoa(window), func(b *testing.B) {
			resp := &SubmitSMResp{MessageID: "2d6f0b6f"}
			h := HandlerFunc(func(ctx context.Context, s *Session, req PDU) PDU {
				r := *resp
				return &r
			})
			_, addr := testServer(b, h, nil)
			s := dial(b, addr, Config{Window: window})
			ctx := context.Background()
			done := make(chan *Call, window)
			reqs := make([]*SubmitSM, window)
			for i := range reqs {
				reqs[i] = &SubmitSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112345678",
					RegisteredDelivery: 1, ShortMessage: []byte("Your code is 123456. It expires in 5 minutes.")}
			}
			b.ReportAllocs()
			b.ResetTimer()
			inflight := 0
			for i := 0; i < b.N; i++ {
				var req *SubmitSM
				if inflight == window {
					c := <-done
					if c.Err != nil {
						b.Fatal(c.Err)
					}
					req = c.Req.(*SubmitSM)
					inflight--
				} else {
					req = reqs[inflight]
				}
				s.Go(ctx, req, done)
				inflight++
			}
			for ; inflight > 0; inflight-- {
				if c := <-done; c.Err != nil {
					b.Fatal(c.Err)
				}
			}
		})
	}
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
