package otpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// APIKey is a client of the HTTP API. Only a hash of the key is stored.
type APIKey struct {
	ID       string
	Name     string
	Networks []netip.Prefix // empty: any client address
	// Scopes are what the key may do: otp (challenges), messages (plain
	// SMS), events (the delivery stream), admin (all of them, on every
	// key's data).
	Scopes []string
	// Senders are the sender addresses ("from") the key may ask for; the
	// configured source address is always allowed.
	Senders    []string
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while not revoked
	ExpiresAt  time.Time // zero: no end; set by a rotation
	LastUsedAt time.Time
}

// The scopes of a key.
const (
	ScopeOTP      = "otp"
	ScopeMessages = "messages"
	ScopeEvents   = "events"
	ScopeAdmin    = "admin"
)

// DefaultScopes are a new key's scopes unless it is given others.
var DefaultScopes = []string{ScopeOTP, ScopeMessages, ScopeEvents}

// Has reports whether the key has scope (admin has them all).
func (k *APIKey) Has(scope string) bool {
	return slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, ScopeAdmin)
}

// Active reports whether the key may be used at now.
func (k *APIKey) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// State is active, revoked, or expired (a rotated key past its overlap).
func (k *APIKey) State(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	case !k.ExpiresAt.IsZero():
		return "rotating"
	}
	return "active"
}

// Allows reports whether a client address may use the key.
func (k *APIKey) Allows(addr netip.Addr) bool {
	if len(k.Networks) == 0 {
		return true
	}
	for _, p := range k.Networks {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// ParseNetworks reads a comma-separated CIDR list ("10.0.0.0/8,::1/128").
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("network %q: %w", f, err)
			}
			f = fmt.Sprintf("%s/%d", a, a.BitLen())
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// KeyOptions are what a new key may do.
type KeyOptions struct {
	Name     string
	Networks string   // comma-separated CIDRs
	Scopes   []string // nil: DefaultScopes
	Senders  []string // sender addresses beyond the configured one
}

// ParseScopes reads a comma-separated scope list and checks each name.
func ParseScopes(s string) ([]string, error) {
	out := splitList(s)
	for _, sc := range out {
		switch sc {
		case ScopeOTP, ScopeMessages, ScopeEvents, ScopeAdmin:
		default:
			return nil, fmt.Errorf("scope %q: want otp, messages, events or admin", sc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("at least one scope: otp, messages, events or admin")
	}
	return out, nil
}

// CreateKey stores a new API key with the default scopes and returns it;
// the key itself is shown once and never stored.
func CreateKey(ctx context.Context, st *Store, name, networks string) (id, key string, err error) {
	return CreateKeyWith(ctx, st, KeyOptions{Name: name, Networks: networks})
}

// CreateKeyWith stores a new API key made as opt says.
func CreateKeyWith(ctx context.Context, st *Store, opt KeyOptions) (id, key string, err error) {
	k, err := newKey(opt)
	if err != nil {
		return "", "", err
	}
	id, key = NewAPIKey()
	k.ID = id
	err = st.Write(ctx, func(tx *Tx) error { return storeKey(tx, k, HashAPIKey(key)) })
	return id, key, err
}

func newKey(opt KeyOptions) (*APIKey, error) {
	nets, err := ParseNetworks(opt.Networks)
	if err != nil {
		return nil, err
	}
	scopes := opt.Scopes
	if scopes == nil {
		scopes = DefaultScopes
	}
	for _, snd := range opt.Senders {
		if err := senderError(snd); err != "" {
			return nil, fmt.Errorf("sender %q: %s", snd, err)
		}
	}
	return &APIKey{Name: opt.Name, Networks: nets, Scopes: scopes, Senders: opt.Senders, CreatedAt: time.Now().UTC()}, nil
}

// ErrNoSuchKey: no key of that id is in force.
var ErrNoSuchKey = errors.New("no such API key in force (unknown, or revoked already)")

// RevokeKey ends a key at once. Running otpd instances refuse it within
// keyCacheTTL.
func RevokeKey(ctx context.Context, st *Store, id string) error {
	var ok bool
	err := st.Write(ctx, func(tx *Tx) error {
		var err error
		ok, err = endKey(tx, id, ms(time.Now()), 0)
		return err
	})
	if err == nil && !ok {
		err = ErrNoSuchKey
	}
	return err
}

// RotateKey makes a new key like id (name, networks, scopes, senders) and
// lets the old one work for overlap more, so that clients can move over.
func RotateKey(ctx context.Context, st *Store, id string, overlap time.Duration) (newID, key string, err error) {
	old, err := st.KeyByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return "", "", ErrNoSuchKey
	}
	if err != nil {
		return "", "", err
	}
	now := time.Now().UTC()
	if !old.Active(now) {
		return "", "", ErrNoSuchKey
	}
	k := *old
	newID, key = NewAPIKey()
	k.ID, k.CreatedAt, k.ExpiresAt, k.LastUsedAt = newID, now, time.Time{}, time.Time{}
	var ok bool
	err = st.Write(ctx, func(tx *Tx) error {
		var err error
		if ok, err = endKey(tx, id, 0, ms(now.Add(max(overlap, time.Millisecond)))); err != nil || !ok {
			return err
		}
		return storeKey(tx, &k, HashAPIKey(key))
	})
	if err == nil && !ok {
		err = ErrNoSuchKey
	}
	if err != nil {
		return "", "", err
	}
	return newID, key, nil
}

// ListKeys lists the keys, never their secrets.
func ListKeys(ctx context.Context, st *Store) ([]*APIKey, error) { return st.Keys(ctx) }

// keyCacheTTL is how long a key read from the store is trusted: a key
// revoked by another process stops working within it.
const keyCacheTTL = 2 * time.Second

type cachedKey struct {
	k  *APIKey // nil: no such key
	at time.Time
}

// LookupKey finds the key a client presented; nil when unknown. A
// revoked or expired key is returned too: the caller says why it fails.
func (s *Service) LookupKey(ctx context.Context, key string) (*APIKey, error) {
	if key == "" || len(key) > 128 {
		return nil, nil
	}
	h := HashAPIKey(key)
	return s.cachedKey(ctx, "h:"+string(h), func() (*APIKey, error) { return s.store.keyByHash(ctx, h) })
}

// keyByID is the key of an id (for the checks of the service's methods).
func (s *Service) keyByID(ctx context.Context, id string) (*APIKey, error) {
	return s.cachedKey(ctx, "i:"+id, func() (*APIKey, error) { return s.store.KeyByID(ctx, id) })
}

func (s *Service) cachedKey(ctx context.Context, ck string, load func() (*APIKey, error)) (*APIKey, error) {
	now := time.Now()
	s.keysMu.Lock()
	e, ok := s.keys[ck]
	s.keysMu.Unlock()
	if ok && now.Sub(e.at) < keyCacheTTL {
		return e.k, nil
	}
	k, err := load()
	if errors.Is(err, ErrNotFound) {
		k, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if k != nil && k.Active(now) && now.Sub(k.LastUsedAt) > time.Minute {
		// At most once a minute per key and instance: a write.
		if err := s.store.Write(ctx, func(tx *Tx) error { return touchKey(tx, k.ID, ms(now)) }); err == nil {
			k.LastUsedAt = now.UTC()
		}
	}
	s.keysMu.Lock()
	if len(s.keys) > 10000 {
		clear(s.keys)
	}
	s.keys[ck] = cachedKey{k: k, at: now}
	s.keysMu.Unlock()
	return k, nil
}

// clientAddr is the address of the HTTP client.
func clientAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a
}
