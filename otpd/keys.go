package otpd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// APIKey is a client of the HTTP API. Only a hash of the key is stored.
type APIKey struct {
	ID       string
	Name     string
	Networks []netip.Prefix // empty: any client address
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

// CreateKey stores a new API key and returns it; the key itself is shown
// once and never stored.
func CreateKey(ctx context.Context, st *Store, name, networks string) (id, key string, err error) {
	nets, err := ParseNetworks(networks)
	if err != nil {
		return "", "", err
	}
	var parts []string
	for _, n := range nets {
		parts = append(parts, n.String())
	}
	id, key = NewAPIKey()
	err = st.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO api_keys (id, hash, name, networks, created_at) VALUES (?,?,?,?,?)`,
			id, HashAPIKey(key), name, strings.Join(parts, ","), ms(time.Now()))
		return err
	})
	return id, key, err
}

// LookupKey finds the key a client presented; nil when unknown.
func (s *Service) LookupKey(ctx context.Context, key string) (*APIKey, error) {
	if key == "" || len(key) > 128 {
		return nil, nil
	}
	h := string(HashAPIKey(key))
	s.keysMu.Lock()
	k, ok := s.keys[h]
	s.keysMu.Unlock()
	if ok {
		return k, nil
	}
	var id, name, nets string
	err := s.store.QueryRow(ctx, `SELECT id, name, networks FROM api_keys WHERE hash = ?`, []byte(h)).Scan(&id, &name, &nets)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	k = &APIKey{ID: id, Name: name}
	if k.Networks, err = ParseNetworks(nets); err != nil {
		return nil, err
	}
	s.keysMu.Lock()
	if len(s.keys) > 10000 {
		clear(s.keys)
	}
	s.keys[h] = k
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
