package otpd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Event is one delivery report, as GET /v1/events and otpd tail show it.
type Event struct {
	MessageID   string    `json:"message_id"`
	ChallengeID string    `json:"challenge_id,omitempty"`
	Phone       string    `json:"phone"` // masked
	State       string    `json:"state"`
	Stat        string    `json:"stat,omitempty"`
	Err         string    `json:"err,omitempty"`
	SMSCID      string    `json:"smsc_id,omitempty"`
	Segment     int       `json:"segment,omitempty"`
	Segments    int       `json:"segments,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at"`

	keyID string // whose message: the stream shows a key its own
	phone string // E.164, for ?phone=
	// unhooked: the message is known to have no callback, so no report
	// is queued for it (a receipt's lookup read it with the message).
	unhooked bool
}

// Broker fans events out to subscribers. A subscriber that does not keep
// up loses events (counted) rather than slowing delivery down.
type Broker struct {
	mu      sync.Mutex
	closed  bool
	subs    map[chan Event]struct{}
	dropped func()
	// last is how far the events published per message went. The writes
	// of one message commit in order, but the goroutines that publish
	// after them wake in any order (and run on any instance): a receipt's
	// "delivered" can come out before the sender's "submitted" it
	// followed. An event behind one already published for its message is
	// stale and dropped, so a stream never moves a message back. By state,
	// not by time: the times come from the clocks of several instances, and
	// a receipt's from before the sender wrote its "submitted".
	last  map[string]published
	count int
	// relay, when the store is shared, hands the events published here to
	// the other instances (eventFeed); it never blocks.
	relay func(Event)
}

type published struct {
	rank int       // eventRank of the furthest event
	at   time.Time // when (this clock), to forget it
}

// eventRank orders a message's events: "submitted" (and receipts of
// states that are not final) before the final ones.
func eventRank(state string) int {
	if finalState(state) {
		return 1
	}
	return 0
}

// staleAfter bounds how long the broker remembers a message's last event.
const staleAfter = time.Minute

// NewBroker returns an empty broker; dropped is called per lost event.
func NewBroker(dropped func()) *Broker {
	return &Broker{subs: map[chan Event]struct{}{}, dropped: dropped, last: map[string]published{}}
}

// Subscribe returns a channel of events and a function that ends the
// subscription.
func (b *Broker) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
		b.mu.Unlock()
	}
}

// Publish sends e, an event of this instance, to every subscriber
// without blocking, and to the other instances when the store is shared.
func (b *Broker) Publish(e Event) { b.publish(e, true) }

// publishRemote sends e, an event another instance published, to every
// subscriber without blocking.
func (b *Broker) publishRemote(e Event) { b.publish(e, false) }

// setRelay sets (nil: unsets) where the local events go besides.
func (b *Broker) setRelay(f func(Event)) {
	b.mu.Lock()
	b.relay = f
	b.mu.Unlock()
}

func (b *Broker) publish(e Event, local bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A stale event is not relayed either: the newer one that made it
	// stale reached the other instances already, from here or from its own.
	rank := eventRank(e.State)
	if p, ok := b.last[e.MessageID]; ok && rank < p.rank {
		return
	}
	if local && b.relay != nil {
		b.relay(e)
	}
	now := time.Now()
	b.last[e.MessageID] = published{rank: rank, at: now}
	if b.count++; b.count%1024 == 0 {
		cut := now.Add(-staleAfter)
		for id, p := range b.last {
			if p.at.Before(cut) {
				delete(b.last, id)
			}
		}
	}
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			if b.dropped != nil {
				b.dropped()
			}
		}
	}
}

// Close ends every subscription.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// streamPing is how often an idle stream sends a comment, so that proxies
// and browsers keep the connection open.
const streamPing = 15 * time.Second

// streamEvents serves the broker's delivery reports that keep accepts as
// server-sent events named name, until the client goes or the broker
// closes. GET /v1/events and the console's stream are this one loop; each
// route brings its own filter (a key's scope, ?state=, ?phone=).
func streamEvents(w http.ResponseWriter, r *http.Request, b *Broker, name string, keep func(Event) bool) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, apiErr(http.StatusInternalServerError, "internal", "streaming unsupported"))
		return
	}
	ch, stop := b.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": otpd delivery reports\n\n")
	fl.Flush()
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return
			}
			if keep != nil && !keep(e) {
				continue
			}
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
			fl.Flush()
		}
	}
}
