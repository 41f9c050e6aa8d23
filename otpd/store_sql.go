package otpd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The front doors' statements (door_*.go and webhooks.go hold no SQL).

func insertDoorMessage(tx *Tx, messageID, keyID, accountSid string, created time.Time) error {
	_, err := tx.Exec(`INSERT INTO door_messages (message_id, key_id, account_sid, created_at) VALUES (?,?,?,?)`,
		messageID, keyID, accountSid, ms(created))
	return err
}

// listDoorMessages gives the ids of the messages a key sent for an account
// through the Twilio-shaped doors, newest first.
func (s *Store) listDoorMessages(ctx context.Context, keyID, accountSid string, limit, offset int) ([]string, error) {
	return s.queryIDs(ctx, `SELECT message_id FROM door_messages WHERE key_id = ? AND account_sid = ? ORDER BY created_at DESC, message_id DESC LIMIT ? OFFSET ?`,
		keyID, accountSid, limit, offset)
}

// doorMessageAccount is the account a door message was sent for; "" when
// it was not sent through a Twilio-shaped door.
func (s *Store) doorMessageAccount(ctx context.Context, messageID string) (string, error) {
	var acc string
	err := s.QueryRow(ctx, `SELECT account_sid FROM door_messages WHERE message_id = ?`, messageID).Scan(&acc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return acc, err
}

func insertVerifyChallenge(tx *Tx, challengeID, serviceSid, keyID, phone string, created time.Time) error {
	_, err := tx.Exec(`INSERT INTO verify_challenges (challenge_id, service_sid, key_id, phone, created_at) VALUES (?,?,?,?,?)`,
		challengeID, serviceSid, keyID, phone, ms(created))
	return err
}

// verifyChallengeService is the Verify service a challenge was made for;
// "" when it was not made through the Verify door.
func (s *Store) verifyChallengeService(ctx context.Context, challengeID string) (string, error) {
	var svc string
	err := s.QueryRow(ctx, `SELECT service_sid FROM verify_challenges WHERE challenge_id = ?`, challengeID).Scan(&svc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return svc, err
}

// latestVerifyChallenge is the newest challenge of a Verify service for a
// number and key; "" when there is none.
func (s *Store) latestVerifyChallenge(ctx context.Context, serviceSid, keyID, phone string) (string, error) {
	var id string
	err := s.QueryRow(ctx, `SELECT challenge_id FROM verify_challenges WHERE service_sid = ? AND phone = ? AND key_id = ? ORDER BY created_at DESC, challenge_id DESC LIMIT 1`,
		serviceSid, phone, keyID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

func insertCallback(tx *Tx, messageID, kind, url string, secret []byte, accountSid, keyID string) error {
	_, err := tx.Exec(`INSERT INTO callbacks (message_id, kind, url, secret, account_sid, key_id) VALUES (?,?,?,?,?,?)`,
		messageID, kind, url, secret, accountSid, keyID)
	return err
}

// callbackTarget is a message's callback with what a report on it says.
type callbackTarget struct {
	Kind, URL, AccountSid, KeyID string
	Secret                       []byte
	Phone, Sender, State         string
	Stat, Err, ChallengeID       string
	CreatedAt, UpdatedAt         time.Time
}

// callbackFor reads a message's callback and its current state; nil when
// it has none.
func callbackFor(tx *Tx, messageID string) (*callbackTarget, error) {
	var c callbackTarget
	var created, updated int64
	err := tx.QueryRow(`SELECT c.kind, c.url, c.secret, c.account_sid, c.key_id, m.phone, m.sender, m.state, m.stat, m.err, m.challenge_id, m.created_at, m.updated_at
		FROM callbacks c JOIN messages m ON m.id = c.message_id WHERE c.message_id = ?`, messageID).
		Scan(&c.Kind, &c.URL, &c.Secret, &c.AccountSid, &c.KeyID, &c.Phone, &c.Sender, &c.State, &c.Stat, &c.Err, &c.ChallengeID, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return &c, nil
}

// queuedCallback is one report in the durable queue.
type queuedCallback struct {
	ID                   int64
	MessageID, Status    string
	Kind, URL            string
	ContentType          string
	Body                 []byte
	Signature, KeyID     string
	State                string
	Attempts             int
	NextAttemptAt        time.Time
	LastError            string
	CreatedAt, UpdatedAt time.Time
}

// enqueueCallback queues a report once per message and status.
func enqueueCallback(tx *Tx, q *queuedCallback) error {
	_, err := tx.Exec(`INSERT INTO callback_queue (message_id, status, kind, url, content_type, body, signature, key_id, state, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?,?,?,?,?,?,?,?,?,0,?,?,?) ON CONFLICT (message_id, status) DO NOTHING`,
		q.MessageID, q.Status, q.Kind, q.URL, q.ContentType, q.Body, q.Signature, q.KeyID, callbackPending, ms(q.NextAttemptAt), ms(q.CreatedAt), ms(q.CreatedAt))
	return err
}

const callbackCols = `id, message_id, status, kind, url, content_type, body, signature, key_id, state, attempts, next_attempt_at, last_error, created_at, updated_at`

func scanCallback(r scanner) (*queuedCallback, error) {
	var q queuedCallback
	var next, created, updated int64
	if err := r.Scan(&q.ID, &q.MessageID, &q.Status, &q.Kind, &q.URL, &q.ContentType, &q.Body, &q.Signature, &q.KeyID, &q.State, &q.Attempts,
		&next, &q.LastError, &created, &updated); err != nil {
		return nil, err
	}
	q.NextAttemptAt, q.CreatedAt, q.UpdatedAt = fromMS(next), fromMS(created), fromMS(updated)
	return &q, nil
}

// claimCallbacks takes up to n due reports, leasing them until lease (a
// report whose post outlives the lease, or whose instance died, is due
// again then). The state is inline so that the partial index
// callback_due serves the query.
func claimCallbacks(tx *Tx, now, lease time.Time, n int) ([]*queuedCallback, error) {
	rows, err := tx.Query(`SELECT `+callbackCols+` FROM callback_queue WHERE state = '`+callbackPending+`' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED`,
		ms(now), n)
	out, err := collect(rows, err, scanCallback)
	if err != nil {
		return nil, err
	}
	for _, q := range out {
		if _, err := tx.Exec(`UPDATE callback_queue SET next_attempt_at = ? WHERE id = ?`, ms(lease), q.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// finishCallback records the outcome of one post.
func finishCallback(tx *Tx, id int64, state string, attempts int, next time.Time, lastErr string, now time.Time) error {
	_, err := tx.Exec(`UPDATE callback_queue SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		state, attempts, ms(next), lastErr, ms(now), id)
	return err
}

// ListCallbacks gives the queued reports, newest first: only those that
// failed at least once unless all is set.
func (s *Store) ListCallbacks(ctx context.Context, all bool, limit int) ([]*queuedCallback, error) {
	q := `SELECT ` + callbackCols + ` FROM callback_queue WHERE state = 'failed' OR (state = 'pending' AND attempts > 0) ORDER BY id DESC LIMIT ?`
	if all {
		q = `SELECT ` + callbackCols + ` FROM callback_queue ORDER BY id DESC LIMIT ?`
	}
	rows, err := s.Query(ctx, q, limit)
	return collect(rows, err, scanCallback)
}

// CountCallbacks counts the queued reports by state.
func (s *Store) CountCallbacks(ctx context.Context) (map[string]int, error) {
	rows, err := s.Query(ctx, `SELECT state, COUNT(*) FROM callback_queue GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// RetryCallbacks makes failed reports due again now; it returns how many.
func (s *Store) RetryCallbacks(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE callback_queue SET state = ?, next_attempt_at = ?, updated_at = ? WHERE state = ?`,
			callbackPending, ms(now), ms(now), callbackFailed)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// keySettings reads a key's door settings (JSON); "" when it has none.
func (s *Store) keySettings(ctx context.Context, keyID string) (string, error) {
	var v string
	err := s.QueryRow(ctx, `SELECT settings FROM key_settings WHERE key_id = ?`, keyID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// setKeySettings stores a key's door settings; the key must exist.
func (s *Store) setKeySettings(ctx context.Context, keyID, settings string) error {
	return s.Write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE id = ?`, keyID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no API key %q", keyID)
		}
		_, err := tx.Exec(`INSERT INTO key_settings (key_id, settings) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET settings = excluded.settings`, keyID, settings)
		return err
	})
}

// openCallbacks gives the messages with a callback and no final report
// queued yet.
func (s *Store) openCallbacks(ctx context.Context) ([]string, error) {
	return s.queryIDs(ctx, `SELECT c.message_id FROM callbacks c
		WHERE NOT EXISTS (SELECT 1 FROM callback_queue q WHERE q.message_id = c.message_id)`)
}

func (s *Store) insertSMPPAccount(ctx context.Context, systemID string, hash []byte, keyID string, tps float64) error {
	return s.Write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE id = ?`, keyID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no API key %q", keyID)
		}
		if err := tx.QueryRow(`SELECT COUNT(*) FROM smpp_accounts WHERE system_id = ?`, systemID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("smpp system_id %q is taken", systemID)
		}
		_, err := tx.Exec(`INSERT INTO smpp_accounts (system_id, password_hash, key_id, tps) VALUES (?,?,?,?)`, systemID, hash, keyID, tps)
		return err
	})
}

// smppAccount reads an SMPP account; nil when unknown.
func (s *Store) smppAccount(ctx context.Context, systemID string) (*SMPPAccount, error) {
	a := SMPPAccount{SystemID: systemID}
	err := s.QueryRow(ctx, `SELECT password_hash, key_id, tps FROM smpp_accounts WHERE system_id = ?`, systemID).Scan(&a.hash, &a.KeyID, &a.TPS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// copyCallback registers message from's callback for message to as well
// (callbacks without a sealed secret: a secret is bound to its message).
func copyCallback(tx *Tx, from, to string) (int64, error) {
	res, err := tx.Exec(`INSERT INTO callbacks (message_id, kind, url, secret, account_sid, key_id)
		SELECT ?, kind, url, secret, account_sid, key_id FROM callbacks WHERE message_id = ? AND secret IS NULL`, to, from)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// keyNetworks reads the networks an API key may be used from.
func (s *Store) keyNetworks(ctx context.Context, keyID string) ([]netip.Prefix, error) {
	var nets string
	if err := s.QueryRow(ctx, `SELECT networks FROM api_keys WHERE id = ?`, keyID).Scan(&nets); err != nil {
		return nil, err
	}
	return ParseNetworks(nets)
}

// smppPart is one stored segment of an SMPP application's long message.
type smppPart struct {
	Seq, Total int
	PartID     string
	Sealed     []byte
	Receipts   bool
}

// storeSMPPPart keeps a segment (again, when an application resends it)
// and returns all the segments of its message once every one is there.
func storeSMPPPart(tx *Tx, systemID, key string, p smppPart, now time.Time) ([]smppPart, error) {
	if _, err := tx.Exec(`INSERT INTO smpp_parts (system_id, part_key, seq, total, part_id, sealed, receipts, created_at) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (system_id, part_key, seq) DO UPDATE SET part_id = excluded.part_id, sealed = excluded.sealed, receipts = excluded.receipts`,
		systemID, key, p.Seq, p.Total, p.PartID, p.Sealed, b2i(p.Receipts), ms(now)); err != nil {
		return nil, err
	}
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM smpp_parts WHERE system_id = ? AND part_key = ?`, systemID, key).Scan(&n); err != nil {
		return nil, err
	}
	if n < p.Total {
		return nil, nil
	}
	rows, err := tx.Query(`SELECT seq, total, part_id, sealed, receipts FROM smpp_parts WHERE system_id = ? AND part_key = ? ORDER BY seq`, systemID, key)
	return collect(rows, err, func(r scanner) (q smppPart, err error) {
		err = r.Scan(&q.Seq, &q.Total, &q.PartID, &q.Sealed, &q.Receipts)
		return
	})
}

// dropSMPPParts deletes a long message's segments once it is queued; false
// when they were gone (queued by another submit already).
func dropSMPPParts(tx *Tx, systemID, key string) (bool, error) {
	res, err := tx.Exec(`DELETE FROM smpp_parts WHERE system_id = ? AND part_key = ?`, systemID, key)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// dueHeldReceipts makes the receipts held for an SMPP application due now.
func dueHeldReceipts(tx *Tx, systemID string, now time.Time) error {
	_, err := tx.Exec(`UPDATE callback_queue SET next_attempt_at = ? WHERE kind = 'smpp' AND url = ? AND state = 'pending' AND next_attempt_at > ?`,
		ms(now), systemID, ms(now))
	return err
}

// smppSet is a long message whose segments all came.
type smppSet struct {
	SystemID, Key string
	Parts         []smppPart
}

// completeSMPPSets reads the long messages whose segments all came.
func (s *Store) completeSMPPSets(ctx context.Context) ([]smppSet, error) {
	rows, err := s.Query(ctx, `SELECT system_id, part_key, seq, total, part_id, sealed, receipts FROM smpp_parts ORDER BY system_id, part_key, seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []smppSet
	for rows.Next() {
		var sys, key string
		var p smppPart
		if err := rows.Scan(&sys, &key, &p.Seq, &p.Total, &p.PartID, &p.Sealed, &p.Receipts); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].SystemID != sys || out[n-1].Key != key {
			out = append(out, smppSet{SystemID: sys, Key: key})
		}
		out[len(out)-1].Parts = append(out[len(out)-1].Parts, p)
	}
	complete := out[:0]
	for _, set := range out {
		if len(set.Parts) == set.Parts[0].Total {
			complete = append(complete, set)
		}
	}
	return complete, rows.Err()
}

// dropStaleSMPPParts deletes segments stored before t.
func dropStaleSMPPParts(tx *Tx, before time.Time) error {
	_, err := tx.Exec(`DELETE FROM smpp_parts WHERE created_at < ?`, ms(before))
	return err
}

// The statements of the service, the sender and the key commands that are
// not inline in their callers. Every one is covered by TestQueryPlans.

// sweepBatch is how many rows one retention write deletes: small enough
// that the writes queued behind it wait milliseconds, not seconds.
const sweepBatch = 500

// sweepOrphans deletes up to n receipts that never found their message,
// received before cut; it returns how many.
func sweepOrphans(tx *Tx, cut int64, n int) (int64, error) {
	res, err := tx.Exec(`DELETE FROM orphan_receipts WHERE rowid IN (SELECT rowid FROM orphan_receipts WHERE received_at < ? LIMIT ?)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepMessages deletes up to n finished messages created before cut, with
// their segments.
func sweepMessages(tx *Tx, cut int64, n int) (int64, error) {
	const old = `SELECT id FROM messages WHERE created_at < ?1 AND state <> '` + StateQueued + `' AND state <> '` + StateSending + `' LIMIT ?2`
	// A message's rows in other tables go with it: its segments, and what
	// the front doors keep of it (its callback, its queued reports, its
	// entry in a Twilio account's list).
	for _, table := range []string{"segments", "callbacks", "callback_queue", "door_messages"} {
		if _, err := tx.Exec(`DELETE FROM `+table+` WHERE message_id IN (`+old+`)`, cut, n); err != nil {
			return 0, err
		}
	}
	res, err := tx.Exec(`DELETE FROM messages WHERE id IN (`+old+`)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepChallenges deletes up to n challenges created before cut that no
// message refers to any more.
func sweepChallenges(tx *Tx, cut int64, n int) (int64, error) {
	const old = `SELECT c.id FROM challenges c WHERE c.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.challenge_id = c.id) LIMIT ?2`
	if _, err := tx.Exec(`DELETE FROM verify_challenges WHERE challenge_id IN (`+old+`)`, cut, n); err != nil {
		return 0, err
	}
	res, err := tx.Exec(`DELETE FROM challenges WHERE id IN (`+old+`)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepPhoneFailures forgets failure counts last raised before cut.
func sweepPhoneFailures(tx *Tx, cut int64, n int) (int64, error) {
	res, err := tx.Exec(`DELETE FROM phone_failures WHERE phone IN (SELECT phone FROM phone_failures WHERE updated_at < ? LIMIT ?)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// phoneFailures is the count of failed verifications in a row for phone,
// and when the last one was.
func (s *Store) phoneFailures(ctx context.Context, phone string) (n int, at int64, err error) {
	err = s.QueryRow(ctx, `SELECT failures, updated_at FROM phone_failures WHERE phone = ?`, phone).Scan(&n, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return n, at, err
}

func txPhoneFailures(tx *Tx, phone string) (n int, at int64, err error) {
	err = tx.QueryRow(`SELECT failures, updated_at FROM phone_failures WHERE phone = ? FOR UPDATE`, phone).Scan(&n, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return n, at, err
}

// setPhoneFailures records the failures in a row for phone; 0 forgets them.
func setPhoneFailures(tx *Tx, phone string, n int, now int64) error {
	if n == 0 {
		_, err := tx.Exec(`DELETE FROM phone_failures WHERE phone = ?`, phone)
		return err
	}
	_, err := tx.Exec(`INSERT INTO phone_failures (phone, failures, updated_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (phone) DO UPDATE SET failures = ?2, updated_at = ?3`, phone, n, now)
	return err
}

// supersedePending cancels the pending challenges of phone made by keyID
// and withdraws their SMS not sent yet; it returns how many it canceled.
func supersedePending(tx *Tx, phone, keyID string, now int64) (int64, error) {
	// The challenges first, returning their messages: a phone with none
	// pending (most) costs one statement.
	rows, err := tx.Query(`UPDATE challenges SET status = '`+StatusCanceled+`', updated_at = ?3 WHERE phone = ?1 AND status = '`+StatusPending+`' AND key_id = ?2
		RETURNING message_id`, phone, keyID, now)
	ids, err := collect(rows, err, scanOne[string])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	args := []any{now}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err = tx.Exec(`UPDATE messages SET state = '`+StateFailed+`', sealed = NULL, reason = 'superseded by a newer challenge before it was sent', updated_at = ?
		WHERE state = '`+StateQueued+`' AND id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	return int64(len(ids)), err
}

// queryIDs runs a query of one text column and gives its values.
func (s *Store) queryIDs(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.Query(ctx, q, args...)
	return collect(rows, err, scanOne[string])
}

// expiredLeases lists up to n messages being sent whose lease ended
// before now.
func (s *Store) expiredLeases(ctx context.Context, now int64, n int) ([]string, error) {
	return s.queryIDs(ctx, `SELECT id FROM messages WHERE state = '`+StateSending+`' AND lease_until < ? LIMIT ?`, now, n)
}

// matchableOrphans returns the keys of orphan receipts received since
// then whose segment is recorded by now: on a shared store, a receipt and
// its segment written at once by two instances each miss the other's
// uncommitted row.
func (s *Store) matchableOrphans(ctx context.Context, since int64, n int) ([]string, error) {
	return s.queryIDs(ctx, `SELECT DISTINCT o.smsc_key FROM orphan_receipts o JOIN segments g ON g.smsc_key = o.smsc_key
		WHERE o.received_at >= ? LIMIT ?`, since, n)
}

// matchableOrphanKeys returns those of keys under which an orphan
// receipt and a segment are both recorded.
func (s *Store) matchableOrphanKeys(ctx context.Context, keys []string) ([]string, error) {
	var out []string
	for _, k := range keys { // one by one, as segmentsByKey
		found, err := s.queryIDs(ctx, `SELECT o.smsc_key FROM orphan_receipts o WHERE o.smsc_key = ?
			AND EXISTS (SELECT 1 FROM segments g WHERE g.smsc_key = o.smsc_key) LIMIT 1`, k)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

// reclaim puts a message whose lease ended back into the outbox, counted
// uncertain (its last submit may have reached the SMSC); false when it is
// not being sent under an expired lease any more.
func reclaim(tx *Tx, id string, now int64) (bool, error) {
	res, err := tx.Exec(`UPDATE messages SET state = '`+StateQueued+`', uncertain = uncertain + 1, next_attempt_at = ?2, lease_until = 0, updated_at = ?2
		WHERE id = ?1 AND state = '`+StateSending+`' AND lease_until < ?2`, id, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Meta reads a fact about the data directory; ok is false when unset.
func (s *Store) Meta(ctx context.Context, k string) (v string, ok bool, err error) {
	err = s.QueryRow(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

// SetMeta records a fact about the data directory.
func (s *Store) SetMeta(ctx context.Context, k, v string) error {
	return s.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = ?2`, k, v)
		return err
	})
}

// hasData reports whether the store holds any challenge or message.
func (s *Store) hasData(ctx context.Context) (bool, error) {
	var n int
	err := s.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM challenges LIMIT 1) c) + (SELECT COUNT(*) FROM (SELECT 1 FROM messages LIMIT 1) m)`).Scan(&n)
	return n > 0, err
}

const keyCols = `id, name, networks, scopes, senders, created_at, revoked_at, expires_at, last_used_at`

func scanKey(r scanner) (*APIKey, error) {
	var k APIKey
	var nets, scopes, senders string
	var created, revoked, expires, used int64
	if err := r.Scan(&k.ID, &k.Name, &nets, &scopes, &senders, &created, &revoked, &expires, &used); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	var err error
	if k.Networks, err = ParseNetworks(nets); err != nil {
		return nil, err
	}
	k.Scopes, k.Senders = splitList(scopes), splitList(senders)
	k.CreatedAt, k.RevokedAt, k.ExpiresAt, k.LastUsedAt = fromMS(created), fromMS(revoked), fromMS(expires), fromMS(used)
	return &k, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func storeKey(tx *Tx, k *APIKey, hash []byte) error {
	var nets []string
	for _, n := range k.Networks {
		nets = append(nets, n.String())
	}
	_, err := tx.Exec(`INSERT INTO api_keys (id, hash, name, networks, scopes, senders, created_at, revoked_at, expires_at, last_used_at) VALUES (?,?,?,?,?,?,?,0,?,0)`,
		k.ID, hash, k.Name, strings.Join(nets, ","), strings.Join(k.Scopes, ","), strings.Join(k.Senders, ","), ms(k.CreatedAt), ms(k.ExpiresAt))
	return err
}

// keyByHash finds a key by the hash of its secret.
func (s *Store) keyByHash(ctx context.Context, hash []byte) (*APIKey, error) {
	return scanKey(s.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE hash = ?`, hash))
}

// KeyByID finds a key by its id.
func (s *Store) KeyByID(ctx context.Context, id string) (*APIKey, error) {
	return scanKey(s.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = ?`, id))
}

// Keys lists every key, oldest first.
func (s *Store) Keys(ctx context.Context) ([]*APIKey, error) {
	rows, err := s.Query(ctx, `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`)
	return collect(rows, err, scanKey)
}

// endKey revokes a key (now) or lets it expire at a time (rotation);
// false when there is no such key still in force.
func endKey(tx *Tx, id string, revokedAt, expiresAt int64) (bool, error) {
	// CAST: PostgreSQL would read a bare ?2 > 0 as a 32-bit integer.
	res, err := tx.Exec(`UPDATE api_keys SET revoked_at = CASE WHEN CAST(?2 AS BIGINT) > 0 THEN ?2 ELSE revoked_at END,
		expires_at = CASE WHEN CAST(?3 AS BIGINT) > 0 AND (expires_at = 0 OR expires_at > ?3) THEN ?3 ELSE expires_at END
		WHERE id = ?1 AND revoked_at = 0`, id, revokedAt, expiresAt)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// touchKey records when a key was last used.
func touchKey(tx *Tx, id string, at int64) error {
	_, err := tx.Exec(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`, at, id)
	return err
}

// The statements of challenges, messages, segments and receipts.

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

// countOrphans counts the receipts kept for messages not known yet.
func (s *Store) countOrphans(ctx context.Context) (int64, error) {
	var n int64
	err := s.QueryRow(ctx, `SELECT COUNT(*) FROM orphan_receipts`).Scan(&n)
	return n, err
}

// Challenge reads a challenge; ErrNotFound when there is none.
func (s *Store) Challenge(ctx context.Context, id string) (*Challenge, error) {
	return scanChallenge(s.QueryRow(ctx, `SELECT `+challengeCols+` FROM challenges WHERE id = ? FOR UPDATE`, id))
}

func txChallenge(tx *Tx, id string) (*Challenge, error) {
	return scanChallenge(tx.QueryRow(`SELECT `+challengeCols+` FROM challenges WHERE id = ? FOR UPDATE`, id))
}

func setChallengeStatus(tx *Tx, id, status string, now int64) error {
	_, err := tx.Exec(`UPDATE challenges SET status = ?, updated_at = ? WHERE id = ?`, status, now, id)
	return err
}

func recordAttempt(tx *Tx, id string, attempts int, status string, now int64) error {
	_, err := tx.Exec(`UPDATE challenges SET attempts = ?, status = ?, updated_at = ? WHERE id = ?`, attempts, status, now, id)
	return err
}

// recordResend gives a challenge the code and message of its resend.
func recordResend(tx *Tx, c *Challenge, now int64) error {
	_, err := tx.Exec(`UPDATE challenges SET code_hmac = ?, sends = ?, last_sent_at = ?, message_id = ?, updated_at = ? WHERE id = ?`,
		c.CodeHMAC, c.Sends, ms(c.LastSentAt), c.MessageID, now, c.ID)
	return err
}

// withdrawQueued fails a message that is still queued (its text dropped).
func withdrawQueued(tx *Tx, id, reason string, now int64) error {
	_, err := tx.Exec(`UPDATE messages SET state = ?, sealed = NULL, reason = ?, updated_at = ? WHERE id = ? AND state = ?`,
		StateFailed, reason, now, id, StateQueued)
	return err
}

// Message reads a message with its segments; ErrNotFound when there is
// none.
func (s *Store) Message(ctx context.Context, id string) (*Message, error) {
	m, err := scanMessage(s.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	rows, err := s.Query(ctx, `SELECT seq, smsc_id, state, stat, err, submitted_at, done_at FROM segments WHERE message_id = ? ORDER BY seq`, id)
	m.Parts, err = collect(rows, err, func(r scanner) (g Segment, err error) {
		var sub, done int64
		err = r.Scan(&g.Seq, &g.SMSCID, &g.State, &g.Stat, &g.Err, &sub, &done)
		g.SubmittedAt, g.DoneAt = fromMS(sub), fromMS(done)
		return
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// recoverSending settles the messages a previous process left mid-submit:
// failed with reason when fail, else queued again at now. It returns how
// many.
func recoverSending(tx *Tx, fail bool, reason string, now int64) (int64, error) {
	var res sql.Result
	var err error
	if fail {
		res, err = tx.Exec(`UPDATE messages SET state = ?, sealed = NULL, reason = ?, uncertain = uncertain + 1, updated_at = ? WHERE state = ?`,
			StateFailed, reason, now, StateSending)
	} else {
		res, err = tx.Exec(`UPDATE messages SET state = ?, uncertain = uncertain + 1, next_attempt_at = ?, updated_at = ? WHERE state = ?`,
			StateQueued, now, now, StateSending)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// claimDue takes up to n due queued messages for sending, leased until
// lease, and returns them as taken. 'queued' as a literal, so that the
// partial index messages_due serves.
func claimDue(tx *Tx, now, lease int64, n int) ([]*Message, error) {
	rows, err := tx.Query(`UPDATE messages SET state = '`+StateSending+`', attempts = attempts + 1, updated_at = ?, lease_until = ?
		WHERE id IN (SELECT id FROM messages WHERE state = '`+StateQueued+`' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
		RETURNING `+messageCols, now, lease, now, n)
	return collect(rows, err, scanMessage)
}

// segmentsSent gives the numbers of a message's recorded segments.
func segmentsSent(tx *Tx, messageID string) (map[int]bool, error) {
	rows, err := tx.Query(`SELECT seq FROM segments WHERE message_id = ?`, messageID)
	seqs, err := collect(rows, err, scanOne[int])
	done := map[int]bool{}
	for _, seq := range seqs {
		done[seq] = true
	}
	return done, err
}

// requeueSending queues a message being sent again, due at next.
func requeueSending(tx *Tx, m *Message, next int64, reason string, now int64) error {
	_, err := tx.Exec(`UPDATE messages SET state = ?, next_attempt_at = ?, reason = ?, uncertain = ?, lease_until = 0, updated_at = ? WHERE id = ? AND state = ?`,
		StateQueued, next, reason, m.Uncertain, now, m.ID, StateSending)
	return err
}

// endMessage gives a message a final state that no receipt brings (its
// text dropped).
func endMessage(tx *Tx, m *Message, state, reason string, now int64) error {
	_, err := tx.Exec(`UPDATE messages SET state = ?, sealed = NULL, reason = ?, uncertain = ?, updated_at = ? WHERE id = ?`,
		state, reason, m.Uncertain, now, m.ID)
	return err
}

func setSegmentCount(tx *Tx, messageID string, total int) error {
	_, err := tx.Exec(`UPDATE messages SET segments = ? WHERE id = ?`, total, messageID)
	return err
}

// putSegment records an acknowledged segment (again, for a resubmit).
func putSegment(tx *Tx, messageID string, seq int, smscID, key string, now int64) error {
	_, err := tx.Exec(`INSERT INTO segments (message_id, seq, smsc_id, smsc_key, state, submitted_at) VALUES (?,?,?,?,?,?)
		ON CONFLICT (message_id, seq) DO UPDATE SET smsc_id = excluded.smsc_id, smsc_key = excluded.smsc_key, state = excluded.state,
		stat = '', err = '', submitted_at = excluded.submitted_at, done_at = 0`,
		messageID, seq, smscID, key, StateSubmitted, now)
	return err
}

// markSubmitted records that the SMSC acknowledged every segment of m (a
// receipt may have moved it on already); its text is dropped.
func markSubmitted(tx *Tx, m *Message, segments int, now int64) error {
	_, err := tx.Exec(`UPDATE messages SET state = CASE WHEN state = ? THEN ? ELSE state END, sealed = NULL, segments = ?, reason = '', uncertain = ?, updated_at = ? WHERE id = ?`,
		StateSending, StateSubmitted, segments, m.Uncertain, now, m.ID)
	return err
}

// orphan is a receipt kept before its segment was known.
type orphanReceipt struct {
	stat, err, state, id string
	done                 int64
}

func insertOrphan(tx *Tx, key string, o orphanReceipt, now int64) error {
	_, err := tx.Exec(`INSERT INTO orphan_receipts (smsc_key, stat, err, state, done_at, received_at, receipt_id) VALUES (?,?,?,?,?,?,?)`,
		key, o.stat, o.err, o.state, o.done, now, o.id)
	return err
}

// orphansFor reads the orphans under key, locked on PostgreSQL: of two
// writes applying them at once, one applies them and the other skips them
// (waiting instead, two batches that lock keys in their own orders
// deadlock). Should the first roll back, the janitor's rematch applies them.
func orphansFor(tx *Tx, key string) ([]orphanReceipt, error) {
	rows, err := tx.Query(`SELECT stat, err, state, done_at, receipt_id FROM orphan_receipts WHERE smsc_key = ? FOR UPDATE SKIP LOCKED`, key)
	return collect(rows, err, func(r scanner) (o orphanReceipt, err error) {
		err = r.Scan(&o.stat, &o.err, &o.state, &o.done, &o.id)
		return
	})
}

// dropOrphans deletes the orphans under key (of receipt id, when given);
// it returns how many.
func dropOrphans(tx *Tx, key, receiptID string) (int64, error) {
	var res sql.Result
	var err error
	if receiptID == "" {
		res, err = tx.Exec(`DELETE FROM orphan_receipts WHERE smsc_key = ?`, key)
	} else {
		res, err = tx.Exec(`DELETE FROM orphan_receipts WHERE smsc_key = ? AND receipt_id = ?`, key, receiptID)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// segmentHit is a segment a receipt names, with its message.
type segmentHit struct {
	msg, smscID, state, stat, challenge, phone, key string
	seq, segments                                   int
	hooked                                          bool // the message has a callback
}

// segmentsByKey finds the segments with these receipt keys, each with
// its message. Lookups by index, each by one key: PostgreSQL plans a
// prepared statement once for all its runs, and one planned while the
// tables were small (no statistics yet) keeps what was cheapest then. A
// join then hash-joins a full scan of messages for every receipt; "IN
// (?, ?)" scans all of segments.
func segmentsByKey(tx *Tx, keys []string) ([]segmentHit, error) {
	one := `SELECT message_id, seq, smsc_id, state, stat FROM segments WHERE smsc_key = ?`
	q := one + strings.Repeat(" UNION ALL "+one, len(keys)-1)
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := tx.Query(q, args...)
	hits, err := collect(rows, err, func(r scanner) (h segmentHit, err error) {
		err = r.Scan(&h.msg, &h.seq, &h.smscID, &h.state, &h.stat)
		return
	})
	for i := range hits {
		if err != nil {
			break
		}
		h := &hits[i]
		err = tx.QueryRow(`SELECT m.challenge_id, m.phone, m.segments, m.key_id, EXISTS (SELECT 1 FROM callbacks c WHERE c.message_id = m.id) FROM messages m WHERE m.id = ?`, h.msg).
			Scan(&h.challenge, &h.phone, &h.segments, &h.key, &h.hooked)
	}
	return hits, err
}

func setSegmentState(tx *Tx, messageID string, seq int, state, stat, errCode string, done int64) error {
	_, err := tx.Exec(`UPDATE segments SET state = ?, stat = ?, err = ?, done_at = ? WHERE message_id = ? AND seq = ?`,
		state, stat, errCode, done, messageID, seq)
	return err
}

// settleMessage gives a message the final state its receipts make, unless
// another final state came first.
func settleMessage(tx *Tx, messageID, state, stat, errCode string, now int64) error {
	// Not "state IN (...)": SQLite would build a temporary table for the
	// list on every run.
	_, err := tx.Exec(`UPDATE messages SET state = ?1, stat = ?2, err = ?3, updated_at = ?4 WHERE id = ?5 AND (state = ?1 OR state = ?6 OR state = ?7)`,
		state, stat, errCode, now, messageID, StateSubmitted, StateSending)
	return err
}

// noteReceipt records a receipt's status on a message it does not settle.
func noteReceipt(tx *Tx, messageID, stat, errCode string, now int64) error {
	_, err := tx.Exec(`UPDATE messages SET stat = ?, err = ?, updated_at = ? WHERE id = ?`, stat, errCode, now, messageID)
	return err
}

// segmentStates gives a message's segment states in order.
func segmentStates(tx *Tx, messageID string) ([]string, error) {
	if tx.s.d.Name() == "postgres" {
		// The message's row first: two receipts of its segments applied
		// at once (by two writers, two instances) would each read the
		// other's segment as still open, and neither settle the message.
		// Locked, the second reads the first's committed.
		if _, err := tx.Exec(`SELECT 1 FROM messages WHERE id = ? FOR UPDATE`, messageID); err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(`SELECT state FROM segments WHERE message_id = ? ORDER BY seq`, messageID)
	return collect(rows, err, scanOne[string])
}

// b2i stores a flag as 0 or 1 (an INTEGER column in SQLite, BIGINT in
// PostgreSQL).
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// collect scans every row of a query with scan and closes the rows; err
// is the query's own, returned as it is.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

// scanOne reads a row of one column.
func scanOne[T any](r scanner) (v T, err error) {
	err = r.Scan(&v)
	return
}

// The rate limits' shared buckets (PostgreSQL: every instance counts in
// the same rows). A bucket holds up to burst tokens and refills at rate
// a second; times are Unix milliseconds.

// takeToken takes a token of bucket (name, key) in one statement, which
// the row's lock makes atomic across instances; ok false, with the tokens
// the bucket holds, when it has less than one.
func (s *Store) takeToken(ctx context.Context, name, key string, rate float64, burst int, now int64) (ok bool, left float64, err error) {
	err = s.queryRowOn(ctx, s.limitsDB(), `INSERT INTO rate_buckets AS b (name, key, tokens, updated_at) VALUES (?1, ?2, CAST(?4 AS DOUBLE PRECISION) - 1, ?5)
		ON CONFLICT (name, key) DO UPDATE SET
			tokens = LEAST(CAST(?4 AS DOUBLE PRECISION), b.tokens + (CAST(?5 AS BIGINT) - b.updated_at) * CAST(?3 AS DOUBLE PRECISION) / 1000) - 1,
			updated_at = GREATEST(b.updated_at, ?5)
		WHERE LEAST(CAST(?4 AS DOUBLE PRECISION), b.tokens + (CAST(?5 AS BIGINT) - b.updated_at) * CAST(?3 AS DOUBLE PRECISION) / 1000) >= 1
		RETURNING tokens`, name, key, rate, burst, now).Scan(&left)
	if errors.Is(err, sql.ErrNoRows) {
		// Refused: read what the bucket holds, for the wait.
		var tokens float64
		var at int64
		if err := s.QueryRow(ctx, `SELECT tokens, updated_at FROM rate_buckets WHERE name = ? AND key = ?`, name, key).Scan(&tokens, &at); err != nil {
			return false, 0, err
		}
		return false, min(float64(burst), tokens+float64(now-at)*rate/1000), nil
	}
	return err == nil, left, err
}

// giveToken returns a token taken for a send that did not happen.
func (s *Store) giveToken(ctx context.Context, name, key string, burst int) error {
	_, err := s.limitsDB().ExecContext(ctx, s.sql(`UPDATE rate_buckets SET tokens = LEAST(CAST(?3 AS DOUBLE PRECISION), tokens + 1) WHERE name = ?1 AND key = ?2`), name, key, burst)
	return err
}

// sweepBuckets deletes up to n buckets idle since before cut (full again
// by then); it returns how many.
func sweepBuckets(tx *Tx, cut int64, n int) (int64, error) {
	res, err := tx.Exec(`DELETE FROM rate_buckets WHERE ctid IN (SELECT ctid FROM rate_buckets WHERE updated_at < ? LIMIT ?)`, cut, n)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// The bind budget's leases: a row (account, slot) per session an
// instance holds, until expires_at on the database's clock (now_ms());
// lease in milliseconds. Each statement is one, atomic on its own: two
// instances claiming the same free slot meet at its key, and the second
// finds the first's lease unexpired. A holder names one lease (a claim),
// so that a statement whose answer was lost, arriving late, touches no
// later lease of the same slot.

// claimBindSlot leases the lowest slot in [lo, hi) that no row holds
// unexpired to holder; ok false when none is free.
func (s *Store) claimBindSlot(ctx context.Context, account, holder string, lo, hi int, lease time.Duration) (slot int, ok bool, err error) {
	got, err := s.leaseQuery(ctx, `WITH RECURSIVE slots(n) AS (SELECT CAST(?3 AS BIGINT) UNION ALL SELECT n + 1 FROM slots WHERE n + 1 < ?4)
		INSERT INTO bind_slots AS b (account, slot, holder, expires_at)
		SELECT ?1, n, ?2, now_ms() + ?5 FROM slots
		WHERE NOT EXISTS (SELECT 1 FROM bind_slots h WHERE h.account = ?1 AND h.slot = n AND h.expires_at > now_ms())
		ORDER BY n LIMIT 1
		ON CONFLICT (account, slot) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE b.expires_at <= now_ms()
		RETURNING slot`, account, holder, lo, hi, lease.Milliseconds())
	if err != nil || len(got) == 0 {
		return 0, false, err
	}
	return got[0], true, nil
}

// renewBindSlot extends holder's lease of a slot by lease from now; ok
// false when holder's lease had expired (another instance may hold the
// slot already) or was released.
func (s *Store) renewBindSlot(ctx context.Context, account, holder string, slot int, lease time.Duration) (ok bool, err error) {
	got, err := s.leaseQuery(ctx, `UPDATE bind_slots SET expires_at = now_ms() + ?4 WHERE account = ?1 AND slot = ?2 AND holder = ?3 AND expires_at > now_ms() RETURNING slot`,
		account, slot, holder, lease.Milliseconds())
	return len(got) > 0, err
}

// releaseBindSlot ends holder's lease of a slot (if it still has it).
func (s *Store) releaseBindSlot(ctx context.Context, account, holder string, slot int) error {
	_, err := s.leaseQuery(ctx, `DELETE FROM bind_slots WHERE account = ? AND slot = ? AND holder = ? RETURNING slot`, account, slot, holder)
	return err
}

// BindSlot is one lease of the bind budget.
type BindSlot struct {
	Slot      int
	Holder    string
	ExpiresAt time.Time
}

// BindSlots lists the unexpired leases of account, by slot.
func (s *Store) BindSlots(ctx context.Context, account string) ([]BindSlot, error) {
	rows, err := s.Query(ctx, `SELECT slot, holder, expires_at FROM bind_slots WHERE account = ? AND expires_at > now_ms() ORDER BY slot`, account)
	return collect(rows, err, func(r scanner) (b BindSlot, err error) {
		var exp int64
		err = r.Scan(&b.Slot, &b.Holder, &exp)
		b.ExpiresAt = fromMS(exp)
		return
	})
}
