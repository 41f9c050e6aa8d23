package simulator

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
)

// BenchmarkSimulatorSubmit: submit_sm round trips between our smpp client
// (window 100 per bind, pipelined with Session.Go) and an in-process
// simulator over loopback TCP, on 1 and 4 transceiver binds, with receipts
// off (registered_delivery 0) and on (a receipt for each submit, answered
// by the client; the benchmark ends when every receipt has come).
// cpu-ns/op is the CPU both ends took per submit.
//
//	go test ./simulator -run '^$' -bench SimulatorSubmit -benchmem
func BenchmarkSimulatorSubmit(b *testing.B) {
	for _, binds := range []int{1, 4} {
		for _, receipts := range []bool{false, true} {
			name := "binds=" + strconv.Itoa(binds) + "/receipts=off"
			if receipts {
				name = "binds=" + strconv.Itoa(binds) + "/receipts=on"
			}
			b.Run(name, func(b *testing.B) { benchSubmit(b, binds, receipts) })
		}
	}
}

func benchSubmit(b *testing.B, binds int, receipts bool) {
	const window = 100
	// Receipts on: the client submits faster than receipts can go back,
	// so the receipts owed grow with b.N; the bound (which would answer
	// ESME_RMSGQFUL) is lifted to measure both directions at full speed.
	sim, err := Start(Config{SMPPAddr: "127.0.0.1:0", Seed: 1, MaxPendingReceipts: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close(context.Background())
	var got atomic.Int64
	h := smpp.HandlerFunc(func(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
		got.Add(1)
		return smpp.Reply(req, smpp.ESME_ROK)
	})
	sessions := make([]*smpp.Session, binds)
	for i := range sessions {
		s, err := smpp.Dial(context.Background(), sim.Addr(), smpp.Config{SystemID: "otp", Window: window, Handler: h, ResponseTimeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close(context.Background())
		sessions[i] = s
	}
	var regDel byte
	if receipts {
		regDel = 1
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, s := range sessions {
		n := b.N / binds
		if i < b.N%binds {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pipeline(b, s, n, window, regDel)
		}()
	}
	wg.Wait()
	if receipts {
		deadline := time.Now().Add(time.Minute)
		for got.Load() < int64(b.N) {
			if time.Now().After(deadline) {
				b.Fatalf("%d receipts of %d", got.Load(), b.N)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	// Both ends' CPU for one message (and its receipt, when on): the SMPP
	// share of an OTP on one box, at the best a window of 100 can do.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pipeline(b *testing.B, s *smpp.Session, n, window int, regDel byte) {
	ctx := context.Background()
	done := make(chan *smpp.Call, window)
	reqs := make([]*smpp.SubmitSM, window)
	for i := range reqs {
		reqs[i] = &smpp.SubmitSM{SourceAddrTON: 5, SourceAddr: "OTPD", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112345678",
			RegisteredDelivery: regDel, ShortMessage: []byte("Your code is 123456. It expires in 5 minutes.")}
	}
	inflight := 0
	for i := 0; i < n; i++ {
		var req *smpp.SubmitSM
		if inflight == window {
			c := <-done
			if c.Err != nil {
				b.Error(c.Err)
				return
			}
			req = c.Req.(*smpp.SubmitSM)
			inflight--
		} else {
			req = reqs[inflight]
		}
		s.Go(ctx, req, done)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		if c := <-done; c.Err != nil {
			b.Error(c.Err)
			return
		}
	}
}
