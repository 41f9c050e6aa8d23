package otpd

import (
	"testing"
	"time"
)

// TestBrokerDropsStaleEvents: a message's event behind one already
// published (a "submitted" whose publisher woke after the receipt's
// "delivered") is not sent, whatever the times say (a receipt's can be the
// earlier, or come from another instance's clock); one as far or further is.
func TestBrokerDropsStaleEvents(t *testing.T) {
	b := NewBroker(nil)
	ch, stop := b.Subscribe()
	defer stop()
	t0 := time.Now()
	b.Publish(Event{MessageID: "msg_1", State: StateDelivered, At: t0})
	b.Publish(Event{MessageID: "msg_1", State: StateSubmitted, At: t0.Add(time.Millisecond)})
	b.Publish(Event{MessageID: "msg_2", State: StateSubmitted, At: t0})
	b.Publish(Event{MessageID: "msg_1", State: StateDelivered, Segment: 2, At: t0.Add(-time.Second)})
	b.Publish(Event{MessageID: "msg_2", State: StateUndeliverable, At: t0.Add(-time.Second)})
	var got []string
	for len(ch) > 0 {
		e := <-ch
		got = append(got, e.MessageID+":"+e.State)
	}
	want := []string{"msg_1:delivered", "msg_2:submitted", "msg_1:delivered", "msg_2:undeliverable"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
