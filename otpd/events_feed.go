package otpd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The event feed carries delivery reports between the instances of a
// shared (PostgreSQL) store, so that each one's event stream shows every
// instance's: a receipt lands on whichever instance's bind the SMSC picks,
// not on the one that sent the SMS. It is PostgreSQL's LISTEN/NOTIFY
// rather than a polled table: a notification arrives at once, costs the
// database no polling, and the stream is best effort anyway (a slow
// subscriber loses events); the store and the webhooks keep what is
// durable. A notification missed while a listener reconnects is lost.
//
// The relay batches the events published here into notifications of at
// most feedPayloadMax bytes, each sent feedFlushEvery after its first
// event or as soon as it is full. Every instance hears every notification,
// its own too, and publishes the other instances' into its broker.

const (
	feedPayloadMax = 7000 // bytes of one notification; PostgreSQL refuses 8000
	feedFlushEvery = 20 * time.Millisecond
	feedQueue      = 4096             // events waiting for the relay; more are dropped (counted)
	feedTimeout    = 5 * time.Second  // a NOTIFY, a ping, a relay's dial
	feedIdle       = 30 * time.Second // a listener idle this long pings its connection
	feedBackoffMin = 100 * time.Millisecond
	feedBackoffMax = 10 * time.Second
	feedStable     = time.Minute // a connection up this long resets the backoff
)

// wireEvent is an event as a notification carries it: with the key and
// the full number that the streams filter on, which an Event keeps to
// itself. Its Phone shadows the Event's masked one, left out: the
// receiver masks the full number again.
type wireEvent struct {
	Event
	Phone string `json:"phone,omitempty"`
	Key   string `json:"k,omitempty"`
	E164  string `json:"p,omitempty"`
}

// wireBatch is one notification: the sending instance and its events.
type wireBatch struct {
	Instance string      `json:"i"`
	Events   []wireEvent `json:"e"`
}

// eventFeed is one instance's relay and listener.
type eventFeed struct {
	id    string // this instance's, random per start
	store *Store
	b     *Broker
	m     *Metrics
	log   *zap.Logger

	q    chan Event
	quit chan struct{} // closed: the relay flushes what it has and ends
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once

	// The relay goroutine's own.
	rc      *feedConn // nil while lost
	retryAt time.Time // no dial before
	backoff time.Duration
	lost    bool // an outage is logged once

	badLogged time.Time // the listener logs undecodable notifications once a minute

	listenPID, relayPID atomic.Uint32 // the connections' server processes (tests)
}

// newInstanceID draws an instance's id.
func newInstanceID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startEventFeed opens the feed's two connections, LISTENs, and starts
// relaying b's local events; it fails when PostgreSQL cannot be reached.
func startEventFeed(store *Store, b *Broker, m *Metrics, log *zap.Logger) (*eventFeed, error) {
	f := &eventFeed{id: newInstanceID(), store: store, b: b, m: m, log: log.Named("events"),
		q: make(chan Event, feedQueue), quit: make(chan struct{}), backoff: feedBackoffMin}
	f.ctx, f.stop = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	defer cancel()
	lc, err := f.dialListener(ctx)
	if err != nil {
		return nil, err
	}
	if f.rc, err = store.dialFeed(ctx, "events relay"); err != nil {
		lc.close()
		return nil, err
	}
	f.relayPID.Store(f.rc.pid())
	f.wg.Add(2)
	go f.listen(lc)
	go f.relay()
	b.setRelay(f.enqueue)
	f.log.Info("sharing delivery events with the other instances", zap.String("instance", f.id), zap.String("channel", lc.channel))
	return f, nil
}

// enqueue hands a local event to the relay, or counts it lost when the
// relay's queue is full: Publish never waits for PostgreSQL.
func (f *eventFeed) enqueue(e Event) {
	select {
	case f.q <- e:
	default:
		f.m.EventsRelayDropped.Inc()
	}
}

// Close stops relaying (after sending what is queued) and listening.
func (f *eventFeed) Close() {
	if f == nil {
		return
	}
	f.once.Do(func() {
		f.b.setRelay(nil)
		close(f.quit)
		f.stop()
		f.wg.Wait()
	})
}

// relay batches the queued events into notifications.
func (f *eventFeed) relay() {
	defer f.wg.Done()
	defer func() {
		if f.rc != nil {
			f.rc.close()
		}
	}()
	head := `{"i":"` + f.id + `","e":[`
	const tail = `]}`
	buf := []byte(head)
	n := 0 // events in buf
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if n == 0 {
			return
		}
		timer.Stop()
		f.send(string(append(buf, tail...)), n)
		buf, n = append(buf[:0], head...), 0
	}
	add := func(e Event) {
		data, err := json.Marshal(wireEvent{Event: e, Key: e.keyID, E164: e.phone})
		if err != nil || len(head)+len(data)+len(tail) > feedPayloadMax {
			f.m.EventsRelayDropped.Inc() // one event too large for a notification
			return
		}
		if len(buf)+1+len(data)+len(tail) > feedPayloadMax {
			flush()
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, data...)
		if n++; n == 1 {
			timer.Reset(feedFlushEvery)
		}
	}
	for {
		select {
		case e := <-f.q:
			add(e)
		case <-timer.C:
			flush()
		case <-f.quit:
			for {
				select {
				case e := <-f.q:
					add(e)
				default:
					flush()
					return
				}
			}
		}
	}
}

// send notifies payload (n events); a lost connection is dialled again
// and the payload sent once more. What cannot be sent is counted lost: a
// connection that keeps failing is dialled again after a backoff.
func (f *eventFeed) send(payload string, n int) {
	for try := 0; try < 2; try++ {
		if f.rc == nil {
			if time.Now().Before(f.retryAt) {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), feedTimeout)
			rc, err := f.store.dialFeed(ctx, "events relay")
			cancel()
			if err != nil {
				f.retryAt = time.Now().Add(f.backoff)
				f.backoff = min(2*f.backoff, feedBackoffMax)
				if !f.lost {
					f.lost = true
					f.log.Warn("event relay cannot reach PostgreSQL: other instances miss this one's delivery reports until it does", zap.Error(err))
				}
				break
			}
			f.rc = rc
			f.relayPID.Store(rc.pid())
		}
		ctx, cancel := context.WithTimeout(context.Background(), feedTimeout)
		err := f.rc.notify(ctx, payload)
		cancel()
		if err == nil {
			f.m.EventsRelayed.Add(float64(n))
			if f.lost {
				f.lost = false
				f.log.Info("event relay reaches PostgreSQL again")
			}
			f.backoff = feedBackoffMin
			return
		}
		if !f.lost {
			f.lost = true
			f.log.Warn("event relay lost its PostgreSQL connection; dialling again", zap.Error(err))
		}
		f.rc.close()
		f.rc = nil
	}
	f.m.EventsRelayDropped.Add(float64(n))
}

// dialListener opens the listener's connection and LISTENs on it.
func (f *eventFeed) dialListener(ctx context.Context) (*feedConn, error) {
	lc, err := f.store.dialFeed(ctx, "events listen")
	if err != nil {
		return nil, err
	}
	if err := lc.listen(ctx); err != nil {
		lc.close()
		return nil, err
	}
	f.listenPID.Store(lc.pid())
	return lc, nil
}

// listen receives the notifications until the feed closes, dialling its
// connection again, with a backoff, whenever it is lost.
func (f *eventFeed) listen(lc *feedConn) {
	defer f.wg.Done()
	backoff := feedBackoffMin
	for {
		up := time.Now()
		err := f.receive(lc)
		lc.close()
		if f.ctx.Err() != nil {
			return
		}
		f.log.Warn("event listener lost its PostgreSQL connection: the other instances' delivery reports are missed until it reconnects", zap.Error(err))
		if time.Since(up) >= feedStable {
			backoff = feedBackoffMin
		}
		for {
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, feedBackoffMax)
			ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
			lc, err = f.dialListener(ctx)
			cancel()
			if err == nil {
				break
			}
			if f.ctx.Err() != nil {
				return
			}
			f.log.Warn("event listener cannot reconnect to PostgreSQL", zap.Error(err), zap.Duration("retry_in", backoff))
		}
		f.m.EventsListenReconnects.Inc()
		f.log.Info("event listener reconnected to PostgreSQL")
	}
}

// receive publishes the notifications of lc until it fails or the feed
// closes; an idle connection is pinged, so that a dead one is noticed.
func (f *eventFeed) receive(lc *feedConn) error {
	for {
		ctx, cancel := context.WithTimeout(f.ctx, feedIdle)
		payload, err := lc.wait(ctx)
		cancel()
		switch {
		case err == nil:
			f.deliver(payload)
			continue
		case f.ctx.Err() != nil:
			return err
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		ctx, cancel = context.WithTimeout(f.ctx, feedTimeout)
		err = lc.ping(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// deliver publishes another instance's events into the local broker.
func (f *eventFeed) deliver(payload string) {
	var b wireBatch
	if err := json.Unmarshal([]byte(payload), &b); err != nil || b.Instance == "" {
		if time.Since(f.badLogged) > time.Minute {
			f.badLogged = time.Now()
			f.log.Warn("event listener: a notification that is no otpd's events; ignored", zap.Error(err))
		}
		return
	}
	if b.Instance == f.id {
		return // published here already
	}
	for _, w := range b.Events {
		e := w.Event
		e.keyID, e.phone = w.Key, w.E164
		if w.E164 != "" {
			e.Phone = MaskPhone(w.E164)
		}
		f.m.EventsReceived.Inc()
		f.b.publishRemote(e)
	}
}
