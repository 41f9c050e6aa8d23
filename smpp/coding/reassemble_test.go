package coding

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

type addStep struct {
	key      string
	ref      uint16
	total    uint8
	seq      uint8
	data     string
	at       time.Duration
	complete string // joined parts when complete
	err      error
}

func runSteps(t *testing.T, r *Reassembler, steps []addStep) {
	t.Helper()
	for i, s := range steps {
		parts, complete, err := r.Add(s.key, s.ref, s.total, s.seq, []byte(s.data), t0.Add(s.at))
		if !errors.Is(err, s.err) || (err != nil) != (s.err != nil) {
			t.Fatalf("step %d: error %v, want %v", i, err, s.err)
		}
		if complete != (s.complete != "") {
			t.Fatalf("step %d: complete %v, want %q", i, complete, s.complete)
		}
		if complete {
			var sb strings.Builder
			for _, p := range parts {
				sb.Write(p)
			}
			if sb.String() != s.complete {
				t.Fatalf("step %d: joined %q, want %q", i, sb.String(), s.complete)
			}
		} else if parts != nil {
			t.Fatalf("step %d: parts without completion", i)
		}
	}
}

func TestReassemblerOutOfOrderAndDuplicates(t *testing.T) {
	r := NewReassembler(ReassemblerConfig{})
	runSteps(t, r, []addStep{
		{key: "a", ref: 1, total: 3, seq: 3, data: "C"},
		{key: "a", ref: 1, total: 3, seq: 1, data: "A"},
		{key: "a", ref: 1, total: 3, seq: 1, data: "X"},  // duplicate: ignored
		{key: "b", ref: 1, total: 2, seq: 2, data: "b2"}, // another key, same ref
		{key: "a", ref: 2, total: 2, seq: 1, data: "r2"}, // same key, other ref
		{key: "a", ref: 1, total: 3, seq: 2, data: "B", complete: "ABC"},
		{key: "a", ref: 1, total: 3, seq: 2, data: "B"}, // late duplicate starts a new set
		{key: "b", ref: 1, total: 2, seq: 1, data: "b1", complete: "b1b2"},
		{key: "x", ref: 9, total: 1, seq: 1, data: "single", complete: "single"},
	})
	st := r.Stats()
	if st.Duplicates != 1 || st.Completed != 3 || st.PendingSets != 2 || st.PendingBytes != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReassemblerErrors(t *testing.T) {
	r := NewReassembler(ReassemblerConfig{})
	runSteps(t, r, []addStep{
		{key: "a", ref: 1, total: 0, seq: 0, err: ErrBadSegment},
		{key: "a", ref: 1, total: 2, seq: 0, err: ErrBadSegment},
		{key: "a", ref: 1, total: 2, seq: 3, err: ErrBadSegment},
		{key: "a", ref: 1, total: 3, seq: 1, data: "A"},
		{key: "a", ref: 1, total: 4, seq: 2, data: "B", err: ErrTotalMismatch},
		{key: "a", ref: 1, total: 3, seq: 2, data: "B"},
		{key: "a", ref: 1, total: 3, seq: 3, data: "", complete: "AB"}, // empty segment
	})
}

func TestReassemblerTimeout(t *testing.T) {
	r := NewReassembler(ReassemblerConfig{Timeout: time.Minute})
	runSteps(t, r, []addStep{
		{key: "a", ref: 1, total: 2, seq: 1, data: "A"},
		{key: "b", ref: 5, total: 3, seq: 2, data: "B", at: 30 * time.Second},
	})
	if got := r.Expire(t0.Add(59 * time.Second)); len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	got := r.Expire(t0.Add(60 * time.Second))
	if len(got) != 1 || got[0].Key != "a" || got[0].Ref != 1 || got[0].Total != 2 || got[0].Received() != 1 ||
		string(got[0].Parts[0]) != "A" || got[0].Parts[1] != nil || !got[0].Started.Equal(t0) {
		t.Fatalf("Expire = %+v", got)
	}
	// A segment for an expired set starts a new one.
	runSteps(t, r, []addStep{
		{key: "b", ref: 5, total: 3, seq: 1, data: "x", at: 95 * time.Second},
		{key: "b", ref: 5, total: 3, seq: 2, data: "y", at: 95 * time.Second},
		{key: "b", ref: 5, total: 3, seq: 3, data: "z", at: 96 * time.Second, complete: "xyz"},
	})
	st := r.Stats()
	if st.Expired != 2 || st.PendingSets != 0 || st.PendingBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReassemblerLimits(t *testing.T) {
	r := NewReassembler(ReassemblerConfig{MaxPendingSets: 3, MaxSetsPerKey: 2, MaxPendingBytes: 10})
	runSteps(t, r, []addStep{
		{key: "a", ref: 1, total: 2, seq: 1, data: "12"},
		{key: "a", ref: 2, total: 2, seq: 1, data: "34"},
		{key: "a", ref: 3, total: 2, seq: 1, data: "5", err: ErrReassemblyFull}, // per key
		{key: "b", ref: 1, total: 2, seq: 1, data: "56"},
		{key: "c", ref: 1, total: 2, seq: 1, data: "7", err: ErrReassemblyFull},     // sets
		{key: "b", ref: 1, total: 2, seq: 2, data: "12345", err: ErrReassemblyFull}, // bytes
		{key: "b", ref: 1, total: 2, seq: 2, data: "7890", complete: "567890"},
		{key: "c", ref: 1, total: 2, seq: 1, data: "7"}, // room again
	})
	st := r.Stats()
	if st.Rejected != 3 || st.PendingSets != 3 || st.PendingBytes != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReassemblerCopies(t *testing.T) {
	r := NewReassembler(ReassemblerConfig{})
	buf := []byte("first")
	if _, _, err := r.Add("k", 1, 2, 1, buf, t0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	parts, ok, err := r.Add("k", 1, 2, 2, []byte("second"), t0)
	if err != nil || !ok || string(parts[0]) != "first" {
		t.Fatalf("parts %q %v %v", parts, ok, err)
	}
	one := []byte("one")
	parts, _, _ = r.Add("k", 2, 1, 1, one, t0)
	one[0] = 'X'
	if string(parts[0]) != "one" {
		t.Fatalf("single part not copied: %q", parts[0])
	}
}

func TestReassemblerConcurrent(t *testing.T) {
	r := NewReassembler(ReassemblerConfig{})
	const senders, total = 8, 5
	var wg sync.WaitGroup
	results := make(chan string, senders*total)
	for s := 0; s < senders; s++ {
		for seq := total; seq >= 1; seq-- {
			wg.Add(1)
			go func(s, seq int) {
				defer wg.Done()
				key := fmt.Sprintf("sender%d", s)
				parts, ok, err := r.Add(key, 7, total, uint8(seq), []byte{byte('0' + seq)}, t0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					var sb strings.Builder
					for _, p := range parts {
						sb.Write(p)
					}
					results <- sb.String()
				}
			}(s, seq)
		}
	}
	wg.Wait()
	close(results)
	n := 0
	for got := range results {
		n++
		if got != "12345" {
			t.Errorf("joined %q", got)
		}
	}
	if n != senders {
		t.Fatalf("%d complete sets, want %d", n, senders)
	}
	if st := r.Stats(); st.PendingSets != 0 || st.PendingBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestReassembleSplit runs Split output through ParseUDH and the
// Reassembler, out of order, and decodes it back.
func TestReassembleSplit(t *testing.T) {
	text := strings.Repeat("Grüße {€} ", 40)
	res, err := Split(text, SplitOptions{Auto: true, Packed: true, Method: ConcatUDH16, Ref: 4242})
	if err != nil {
		t.Fatal(err)
	}
	r := NewReassembler(ReassemblerConfig{})
	var septets []byte
	for i := len(res.Segments) - 1; i >= 0; i-- {
		h, rest, err := ParseUDH(res.Segments[i].ShortMessage())
		if err != nil {
			t.Fatal(err)
		}
		c, ok := h.Concat()
		if !ok || c.Ref != 4242 || !c.Wide {
			t.Fatalf("concat %+v %v", c, ok)
		}
		s := UnpackSeptets(rest, FillBits(h.Len()), -1)
		parts, done, err := r.Add("src", c.Ref, c.Total, c.Seq, s, t0)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			for _, p := range parts {
				septets = append(septets, p...)
			}
		}
	}
	if got := DecodeGSM7(septets); got != text {
		t.Fatalf("reassembled %q", got)
	}
}
