package otpd

import (
	"time"
)

// Challenge statuses (Twilio Verify's).
const (
	StatusPending     = "pending"
	StatusApproved    = "approved"
	StatusCanceled    = "canceled"
	StatusExpired     = "expired"
	StatusMaxAttempts = "max_attempts_reached"
)

// Delivery states of a message.
const (
	StateQueued        = "queued"
	StateSending       = "sending" // claimed by the sender, or handed to it when created; shown as queued
	StateSubmitted     = "submitted"
	StateDelivered     = "delivered"
	StateUndeliverable = "undeliverable"
	StateExpired       = "expired"
	StateRejected      = "rejected"
	StateFailed        = "failed"
)

// finalState reports whether a delivery state is final.
func finalState(s string) bool {
	switch s {
	case StateDelivered, StateUndeliverable, StateExpired, StateRejected, StateFailed:
		return true
	}
	return false
}

// Challenge is one OTP challenge. The code is never stored: only its HMAC.
type Challenge struct {
	ID          string
	Phone       string
	CodeHMAC    []byte
	Status      string
	Attempts    int
	MaxAttempts int
	Sends       int
	Length      int
	Locale      string
	KeyID       string
	MessageID   string // the latest message carrying a code
	Template    string // the caller's own template, "" for the locale's
	Sender      string // the caller's sender address, "" for the default
	CreatedAt   time.Time
	ExpiresAt   time.Time
	LastSentAt  time.Time
	UpdatedAt   time.Time
}

// effectiveStatus is the status as of now: a pending challenge past its
// expiry is expired.
func (c *Challenge) effectiveStatus(now time.Time) string {
	if c.Status == StatusPending && !now.Before(c.ExpiresAt) {
		return StatusExpired
	}
	return c.Status
}

// Message is one SMS in the outbox and after.
type Message struct {
	ID            string
	ChallengeID   string
	Phone         string
	Sender        string
	Sealed        []byte // the encrypted text until submitted; nil after
	State         string
	Attempts      int
	Uncertain     int // submits whose outcome was unknown
	Ref           int // concatenation reference, stable across retries
	Segments      int
	NextAttemptAt time.Time
	Deadline      time.Time // never submitted after this
	LeaseUntil    time.Time // while being sent: when another claim may take it up
	Stat, Err     string
	Reason        string
	KeyID         string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Parts         []Segment
}

// Segment is one submitted short message of a Message.
type Segment struct {
	Seq         int
	SMSCID      string
	State       string
	Stat, Err   string
	SubmittedAt time.Time
	DoneAt      time.Time
}
