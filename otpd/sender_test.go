package otpd

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"go.uber.org/zap"
)

// stubPool answers submits from the sender: while down, a submit waits
// for its context, as for a bind that does not come; else it is
// acknowledged with the next message id.
type stubPool struct {
	mu   sync.Mutex
	down bool
	ids  []string // message ids given, in order
}

func (p *stubPool) Ready() bool { return true }

func (p *stubPool) Go(ctx context.Context, req smpp.PDU, done chan *smpp.Call) *smpp.Call {
	c := &smpp.Call{Req: req, Done: done}
	go func() {
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			<-ctx.Done()
			c.Err = ctx.Err()
			done <- c
			return
		}
		p.mu.Lock()
		id := fmt.Sprint(len(p.ids) + 1)
		p.ids = append(p.ids, id)
		p.mu.Unlock()
		c.Resp = &smpp.SubmitSMResp{MessageID: id}
		done <- c
	}()
	return c
}

// senderService is a store and a service for a sender of this many
// workers (0: the default), without HTTP or SMPP.
func senderService(t testing.TB, workers int) (*Store, *Service) {
	t.Helper()
	cfg := NewConfig()
	cfg.DataDir = t.TempDir()
	cfg.Sender.Workers = workers
	cfg.Defaults()
	st, err := OpenSQLite(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := LoadSecrets(filepath.Join(cfg.DataDir, "secret"))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, NewService(&cfg, st, sec, NewMetrics(), NewBroker(nil), zap.NewNop())
}

func messageState(t *testing.T, st *Store, id string) (state string, attempts int) {
	t.Helper()
	if err := st.QueryRow(t.Context(), `SELECT state, attempts FROM messages WHERE id = ?`, id).Scan(&state, &attempts); err != nil {
		t.Fatal(err)
	}
	return state, attempts
}

// TestNewMessagesGoStraightToAWorker: a new OTP's message is written as
// being sent and handed to a free worker, without the outbox claim; with
// no worker free, or once the sender stopped, it waits in the outbox. A
// stop puts the handed ones back, and the next sender sends every message
// once.
func TestNewMessagesGoStraightToAWorker(t *testing.T) {
	st, svc := senderService(t, 3)
	defer st.Close()
	pool := &stubPool{down: true}
	snd := NewSender(svc, pool)
	// Its workers only, not its loop: what reaches the pool came
	// straight from Create, not through a claim.
	svc.sender.Store(snd)
	var msgs []string
	for i := range 5 {
		// While due messages wait in the outbox, new ones queue behind them.
		snd.backlog.Store(i == 2)
		c, err := svc.Create(t.Context(), CreateRequest{Phone: fmt.Sprintf("+4915100000%03d", i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, c.MessageID)
	}
	want := []string{StateSending, StateSending, StateQueued, StateSending, StateQueued} // three workers
	// tried is the number of attempts message i was written with.
	tried := func(i int) int {
		if want[i] == StateSending {
			return 1
		}
		return 0
	}
	for i, id := range msgs {
		if state, attempts := messageState(t, st, id); state != want[i] || attempts != tried(i) {
			t.Errorf("message %d: %s after %d attempts, want %s", i, state, attempts, want[i])
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := snd.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range msgs {
		if state, attempts := messageState(t, st, id); state != StateQueued || attempts != tried(i) {
			t.Errorf("message %d after stop: %s after %d attempts, want queued", i, state, attempts)
		}
	}
	// Stopped: a new message stays in the outbox.
	c, err := svc.Create(t.Context(), CreateRequest{Phone: "+4915100000999"}, "")
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, c.MessageID)
	if state, attempts := messageState(t, st, c.MessageID); state != StateQueued || attempts != 0 {
		t.Errorf("message created after stop: %s after %d attempts, want queued", state, attempts)
	}

	pool.mu.Lock()
	pool.down = false
	pool.mu.Unlock()
	snd = NewSender(svc, pool)
	if err := snd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer snd.Stop(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range msgs {
		for {
			state, _ := messageState(t, st, id)
			if state == StateSubmitted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %s still %s", id, state)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if len(pool.ids) != len(msgs) {
		t.Errorf("%d submits for %d messages", len(pool.ids), len(msgs))
	}
}

// TestFailedWriteGivesTheWorkerBack: a worker reserved for a new message
// whose write fails is free again, and Stop does not wait for it.
func TestFailedWriteGivesTheWorkerBack(t *testing.T) {
	st, svc := senderService(t, 1)
	snd := NewSender(svc, &stubPool{})
	svc.sender.Store(snd) // its workers only, not its loop
	st.Close()
	for range 2 {
		if _, err := svc.Create(t.Context(), CreateRequest{Phone: "+4915100000001"}, ""); err == nil {
			t.Fatal("create succeeded on a closed store")
		}
		if n := len(snd.sem); n != 0 {
			t.Fatalf("%d workers taken after the failed write, want 0", n)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := snd.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
