package otpd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The event feed's side of PostgreSQL: the instances of one store pass
// their delivery reports to each other with NOTIFY on a channel of the
// store's schema, each on connections of its own (pgx, not database/sql:
// a LISTEN lives on one session, which the pools would hand around).

// eventChannelBase is the notification channel of a store in the schema
// public; a store in another schema adds the schema's name, so that two
// deployments in one database (or two tests) do not hear each other.
const eventChannelBase = "otpd_events"

// eventChannel names the channel of the store in schema. A channel is an
// identifier: at most 63 bytes, beyond which a long schema's name is
// replaced by its hash.
func eventChannel(schema string) string {
	if schema == "" || schema == "public" {
		return eventChannelBase
	}
	name := eventChannelBase + "." + schema
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(schema))
		name = eventChannelBase + "." + hex.EncodeToString(sum[:12])
	}
	return name
}

// feedConn is one dedicated connection of the event feed: the relay's,
// which notifies, or the listener's, which listens.
type feedConn struct {
	c       *pgx.Conn
	channel string
}

// errNoFeedURL is dialFeed's error on a store that is not PostgreSQL.
var errNoFeedURL = errors.New("the event feed needs a PostgreSQL store")

// dialFeed opens a feed connection to the store's server; role names it
// in pg_stat_activity (application_name) unless the URL names one.
func (s *Store) dialFeed(ctx context.Context, role string) (*feedConn, error) {
	if s.url == "" {
		return nil, errNoFeedURL
	}
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", s.path, err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "otpd " + role
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", s.path, err)
	}
	var schema *string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("PostgreSQL at %s: %w", s.path, err)
	}
	fc := &feedConn{c: c, channel: eventChannelBase}
	if schema != nil {
		fc.channel = eventChannel(*schema)
	}
	return fc, nil
}

// listen subscribes the connection to the store's channel.
func (f *feedConn) listen(ctx context.Context) error {
	_, err := f.c.Exec(ctx, `LISTEN `+pgx.Identifier{f.channel}.Sanitize())
	return err
}

// notify sends payload to every connection listening on the channel, this
// instance's listener included.
func (f *feedConn) notify(ctx context.Context, payload string) error {
	_, err := f.c.Exec(ctx, `SELECT pg_notify($1, $2)`, f.channel, payload)
	return err
}

// wait returns the payload of the next notification on the channel. A
// context that times out leaves the connection usable (pgx's deadline
// handler), so the caller may ping it and wait again.
func (f *feedConn) wait(ctx context.Context) (string, error) {
	for {
		n, err := f.c.WaitForNotification(ctx)
		if err != nil {
			return "", err
		}
		if n.Channel == f.channel {
			return n.Payload, nil
		}
	}
}

// ping makes a round trip, to find out that an idle connection died.
func (f *feedConn) ping(ctx context.Context) error { return f.c.Ping(ctx) }

// pid is the connection's server process (pg_stat_activity.pid).
func (f *feedConn) pid() uint32 { return f.c.PgConn().PID() }

// close ends the connection (and with it any LISTEN).
func (f *feedConn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	f.c.Close(ctx)
}
