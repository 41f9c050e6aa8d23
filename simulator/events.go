package simulator

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event types of the event stream (GET /api/events).
const (
	// EventMessage: a message completed (all its segments came).
	EventMessage = "message"
	// EventReceipt: a receipt of the message was sent (each attempt,
	// each segment); the message's receipt field shows it.
	EventReceipt = "receipt"
)

// Event is one entry of the event stream: a message as it is after the
// event.
type Event struct {
	Type    string  `json:"type"`
	Message Message `json:"message"`
}

// hub fans events out to subscribers. A subscriber that falls a buffer
// behind is dropped (its channel closed) rather than slowing the submit
// path; a client reconnects and reads the store for what it missed.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	n    atomic.Int32
}

type subscriber struct {
	f  Filter
	ch chan Event
}

func (h *hub) active() bool { return h.n.Load() > 0 }

// Subscribe returns the events of the messages matching f (To, From and
// SystemID; the rest is ignored) from now on, and the function that ends
// the subscription. The channel is closed when the subscription ends, when
// the simulator closes, or when the subscriber has fallen buf events
// behind.
func (sim *Simulator) Subscribe(f Filter, buf int) (<-chan Event, func()) {
	f = Filter{To: f.To, From: f.From, SystemID: f.SystemID}
	sub := &subscriber{f: f, ch: make(chan Event, max(buf, 1))}
	h := &sim.hub
	h.mu.Lock()
	if sim.ctx.Err() != nil {
		h.mu.Unlock()
		close(sub.ch)
		return sub.ch, func() {}
	}
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[sub] = struct{}{}
	h.n.Add(1)
	h.mu.Unlock()
	return sub.ch, func() {
		h.mu.Lock()
		h.removeLocked(sub)
		h.mu.Unlock()
	}
}

func (h *hub) removeLocked(sub *subscriber) {
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		h.n.Add(-1)
		close(sub.ch)
	}
}

// publish sends an event about m (a copy) to the subscribers it matches.
func (sim *Simulator) publish(typ string, m *message) {
	h := &sim.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	var ev *Event
	for sub := range h.subs {
		if !m.matches(&sub.f) {
			continue
		}
		if ev == nil {
			ev = &Event{Type: typ, Message: sim.export(m, time.Now())}
		}
		select {
		case sub.ch <- *ev:
		default:
			h.removeLocked(sub)
		}
	}
}

// closeHub ends every subscription.
func (sim *Simulator) closeHub() {
	h := &sim.hub
	h.mu.Lock()
	for sub := range h.subs {
		h.removeLocked(sub)
	}
	h.mu.Unlock()
}
