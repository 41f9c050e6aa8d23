package otpd

import (
	"database/sql"
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

const challengeCols = `id, phone, code_hmac, status, attempts, max_attempts, sends, length, locale, key_id, message_id, template, sender, created_at, expires_at, last_sent_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanChallenge(r scanner) (*Challenge, error) {
	var c Challenge
	var created, expires, last, updated int64
	err := r.Scan(&c.ID, &c.Phone, &c.CodeHMAC, &c.Status, &c.Attempts, &c.MaxAttempts, &c.Sends, &c.Length, &c.Locale, &c.KeyID, &c.MessageID, &c.Template, &c.Sender, &created, &expires, &last, &updated)
	if err == sql.ErrNoRows {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.LastSentAt, c.UpdatedAt = fromMS(created), fromMS(expires), fromMS(last), fromMS(updated)
	return &c, nil
}

func insertChallenge(tx *Tx, c *Challenge) error {
	_, err := tx.Exec(`INSERT INTO challenges (`+challengeCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, c.Phone, c.CodeHMAC, c.Status, c.Attempts, c.MaxAttempts, c.Sends, c.Length, c.Locale, c.KeyID, c.MessageID, c.Template, c.Sender,
		ms(c.CreatedAt), ms(c.ExpiresAt), ms(c.LastSentAt), ms(c.UpdatedAt))
	return err
}

const messageCols = `id, challenge_id, phone, sender, sealed, state, attempts, uncertain, ref, segments, next_attempt_at, deadline, stat, err, reason, key_id, created_at, updated_at, lease_until`

func scanMessage(r scanner) (*Message, error) {
	var m Message
	var next, deadline, created, updated, lease int64
	err := r.Scan(&m.ID, &m.ChallengeID, &m.Phone, &m.Sender, &m.Sealed, &m.State, &m.Attempts, &m.Uncertain, &m.Ref, &m.Segments,
		&next, &deadline, &m.Stat, &m.Err, &m.Reason, &m.KeyID, &created, &updated, &lease)
	if err == sql.ErrNoRows {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m.NextAttemptAt, m.Deadline, m.CreatedAt, m.UpdatedAt, m.LeaseUntil = fromMS(next), fromMS(deadline), fromMS(created), fromMS(updated), fromMS(lease)
	return &m, nil
}

func insertMessage(tx *Tx, m *Message) error {
	_, err := tx.Exec(`INSERT INTO messages (`+messageCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		m.ID, m.ChallengeID, m.Phone, m.Sender, m.Sealed, m.State, m.Attempts, m.Uncertain, m.Ref, m.Segments,
		ms(m.NextAttemptAt), ms(m.Deadline), m.Stat, m.Err, m.Reason, m.KeyID, ms(m.CreatedAt), ms(m.UpdatedAt), ms(m.LeaseUntil))
	return err
}
