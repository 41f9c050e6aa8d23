package coding

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Errors of Reassembler.Add; test with errors.Is.
var (
	// ErrBadSegment: a total of 0, or a sequence number of 0 or above the
	// total.
	ErrBadSegment = errors.New("invalid segment number")
	// ErrTotalMismatch: a segment whose total differs from the one of
	// the segments already held for the same key and reference.
	ErrTotalMismatch = errors.New("segment total differs from earlier segments")
	// ErrReassemblyFull: keeping the segment would pass a limit of the
	// Reassembler (sets pending, sets per key, or bytes held).
	ErrReassemblyFull = errors.New("reassembly limits reached")
)

// Default limits of a Reassembler.
const (
	DefaultReassemblyTimeout = 10 * time.Minute
	DefaultMaxPendingSets    = 1024
	DefaultMaxSetsPerKey     = 32
	DefaultMaxPendingBytes   = 4 << 20
)

// ReassemblerConfig bounds a Reassembler. Zero fields take the defaults.
type ReassemblerConfig struct {
	// Timeout is how long an incomplete set is kept after its first
	// segment arrived.
	Timeout time.Duration
	// MaxPendingSets bounds the number of incomplete sets held.
	MaxPendingSets int
	// MaxSetsPerKey bounds the incomplete sets of one key, so that one
	// sender cannot take all of MaxPendingSets.
	MaxSetsPerKey int
	// MaxPendingBytes bounds the segment data held, in octets.
	MaxPendingBytes int
}

// ReassemblyStats are counters of a Reassembler.
type ReassemblyStats struct {
	PendingSets  int    // incomplete sets held now
	PendingBytes int    // octets of segment data held now
	Completed    uint64 // sets returned complete
	Duplicates   uint64 // segments ignored as already held
	Expired      uint64 // incomplete sets dropped after the timeout
	Rejected     uint64 // segments refused for a limit
}

// Incomplete is a set of segments dropped before it was complete.
type Incomplete struct {
	Key     string
	Ref     uint16
	Total   uint8
	Started time.Time // arrival of its first segment
	// Parts holds the segments that arrived, indexed by seq-1; missing
	// ones are nil.
	Parts [][]byte
}

// Received counts the segments of the set that arrived.
func (in Incomplete) Received() int {
	n := 0
	for _, p := range in.Parts {
		if p != nil {
			n++
		}
	}
	return n
}

type setKey struct {
	key string
	ref uint16
}

type pendingSet struct {
	total    uint8
	started  time.Time
	parts    [][]byte
	received int
	bytes    int
}

// Reassembler joins the segments of concatenated messages that may arrive
// out of order, repeated, or never. Sets are told apart by a caller's key
// (for example source and destination address) and the reference number. It
// is safe for concurrent use. The zero value is not usable; use
// NewReassembler.
type Reassembler struct {
	cfg ReassemblerConfig

	mu     sync.Mutex
	sets   map[setKey]*pendingSet
	perKey map[string]int
	bytes  int
	stats  ReassemblyStats
}

// NewReassembler returns a Reassembler with the given bounds.
func NewReassembler(cfg ReassemblerConfig) *Reassembler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultReassemblyTimeout
	}
	if cfg.MaxPendingSets <= 0 {
		cfg.MaxPendingSets = DefaultMaxPendingSets
	}
	if cfg.MaxSetsPerKey <= 0 {
		cfg.MaxSetsPerKey = DefaultMaxSetsPerKey
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = DefaultMaxPendingBytes
	}
	return &Reassembler{cfg: cfg, sets: map[setKey]*pendingSet{}, perKey: map[string]int{}}
}

// Add records segment seq of total of the set (key, ref), arrived at now,
// and copies data. When that completes the set it returns the data of all
// its segments in order and complete true, and forgets the set. A segment
// with total 1 completes at once.
//
// A segment already held is ignored (counted in Stats().Duplicates; the
// first copy wins) and gives neither parts nor error. A total of 0, or seq
// 0 or above total, gives ErrBadSegment; a total different from the set's
// gives ErrTotalMismatch, and the set is kept as it was. A segment that
// would pass a limit gives ErrReassemblyFull and is not kept. A set older
// than the timeout is dropped (counted as expired) before a segment for
// the same key and reference starts a new one.
func (r *Reassembler) Add(key string, ref uint16, total, seq uint8, data []byte, now time.Time) (parts [][]byte, complete bool, err error) {
	if total == 0 || seq == 0 || seq > total {
		return nil, false, fmt.Errorf("coding: %w: segment %d of %d", ErrBadSegment, seq, total)
	}
	if total == 1 {
		r.mu.Lock()
		r.stats.Completed++
		r.mu.Unlock()
		return [][]byte{clone(data)}, true, nil
	}
	k := setKey{key, ref}

	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.sets[k]
	if set != nil && now.Sub(set.started) >= r.cfg.Timeout {
		r.drop(k, set)
		r.stats.Expired++
		set = nil
	}
	if set != nil {
		if set.total != total {
			return nil, false, fmt.Errorf("coding: %w: segment %d of %d for a set of %d (reference %d)", ErrTotalMismatch, seq, total, set.total, ref)
		}
		if set.parts[seq-1] != nil {
			r.stats.Duplicates++
			return nil, false, nil
		}
	}
	if r.bytes+len(data) > r.cfg.MaxPendingBytes {
		r.stats.Rejected++
		return nil, false, fmt.Errorf("coding: %w: %d octets held", ErrReassemblyFull, r.bytes)
	}
	if set == nil {
		if len(r.sets) >= r.cfg.MaxPendingSets {
			r.stats.Rejected++
			return nil, false, fmt.Errorf("coding: %w: %d sets pending", ErrReassemblyFull, len(r.sets))
		}
		if r.perKey[key] >= r.cfg.MaxSetsPerKey {
			r.stats.Rejected++
			return nil, false, fmt.Errorf("coding: %w: %d sets pending for this sender", ErrReassemblyFull, r.perKey[key])
		}
		set = &pendingSet{total: total, started: now, parts: make([][]byte, total)}
		r.sets[k] = set
		r.perKey[key]++
	}
	// A non-nil empty slice marks an arrived segment with no data.
	set.parts[seq-1] = append(make([]byte, 0, len(data)), data...)
	set.received++
	set.bytes += len(data)
	r.bytes += len(data)
	if set.received < int(total) {
		return nil, false, nil
	}
	r.drop(k, set)
	r.stats.Completed++
	return set.parts, true, nil
}

// drop forgets a set; r.mu is held.
func (r *Reassembler) drop(k setKey, set *pendingSet) {
	delete(r.sets, k)
	if r.perKey[k.key]--; r.perKey[k.key] <= 0 {
		delete(r.perKey, k.key)
	}
	r.bytes -= set.bytes
}

// Expire drops the incomplete sets whose first segment arrived at least the
// timeout before now and returns them, oldest first. Call it from time to
// time (the Reassembler runs no goroutine).
func (r *Reassembler) Expire(now time.Time) []Incomplete {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Incomplete
	for k, set := range r.sets {
		if now.Sub(set.started) >= r.cfg.Timeout {
			r.drop(k, set)
			r.stats.Expired++
			out = append(out, Incomplete{Key: k.key, Ref: k.ref, Total: set.total, Started: set.started, Parts: set.parts})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Ref < out[j].Ref
	})
	return out
}

// Stats returns the counters.
func (r *Reassembler) Stats() ReassemblyStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.PendingSets = len(r.sets)
	s.PendingBytes = r.bytes
	return s
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
