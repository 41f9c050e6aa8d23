package otpd

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Secrets holds the keys derived from the master secret: one for the HMAC
// of codes, one to seal outbox texts (which carry the code) until they are
// submitted.
type Secrets struct {
	codeKey []byte
	seal    cipher.AEAD
	id      string
}

// LoadSecrets reads the master secret from file, creating it (32 random
// octets, hex, mode 0600) on first start.
func LoadSecrets(file string) (*Secrets, error) { return loadSecrets(file, true) }

// ErrSecretLost: the data was written with a secret key that is missing or
// not the one in the file.
var ErrSecretLost = errors.New("secret key lost")

// loadSecrets reads the master secret; only with create does a missing
// file get a new one, written and synced with its directory before use
// (a crash must not leave data written under a key that is not on disk).
func loadSecrets(file string, create bool) (*Secrets, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, fmt.Errorf("%w: %s is missing, but the data directory was written with a secret key: restore the file from the backup of the data (without it no code of the stored challenges can be checked); otpd does not make a new one over existing data", ErrSecretLost, file)
	}
	if errors.Is(err, os.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, err
		}
		if err := writeSynced(file, []byte(hex.EncodeToString(raw)+"\n")); err != nil {
			return nil, fmt.Errorf("write secret: %w", err)
		}
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	master, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(master) < 16 {
		return nil, fmt.Errorf("secret file %s: want at least 16 octets in hex", file)
	}
	return newSecrets(master)
}

// writeSynced writes file through a temporary one, syncing the data and
// then the directory that names it.
func writeSynced(file string, data []byte) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(file))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ID names the secret without revealing it: stored beside the data, it
// tells a lost or replaced key file.
func (s *Secrets) ID() string { return s.id }

func newSecrets(master []byte) (*Secrets, error) {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("otpd outbox seal v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Secrets{codeKey: derive("otpd code hmac v1"), seal: aead, id: hex.EncodeToString(derive("otpd key id v1")[:8])}, nil
}

// CodeMAC is the HMAC-SHA256 of a code, bound to its challenge so that a
// MAC cannot be moved from one challenge to another.
func (s *Secrets) CodeMAC(challengeID, code string) []byte {
	m := hmac.New(sha256.New, s.codeKey)
	m.Write([]byte(challengeID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// CheckCode compares in constant time.
func (s *Secrets) CheckCode(challengeID, code string, mac []byte) bool {
	return subtle.ConstantTimeCompare(s.CodeMAC(challengeID, code), mac) == 1
}

// Seal encrypts an outbox text; the message id is the associated data.
func (s *Secrets) Seal(messageID string, text string) []byte {
	nonce := make([]byte, s.seal.NonceSize())
	rand.Read(nonce)
	return s.seal.Seal(nonce, nonce, []byte(text), []byte(messageID))
}

// Open decrypts an outbox text.
func (s *Secrets) Open(messageID string, sealed []byte) (string, error) {
	n := s.seal.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed text too short")
	}
	b, err := s.seal.Open(nil, sealed[:n], sealed[n:], []byte(messageID))
	if err != nil {
		return "", fmt.Errorf("open sealed text: %w", err)
	}
	return string(b), nil
}

// NewCode draws a code of n digits, uniform over 10^n, from crypto/rand.
func NewCode(n int) (string, error) {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*s", n, v.String()), nil
}

// idEncoding is base32 with its alphabet in ASCII order, so that IDs sort
// as their bytes do.
var idEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix_ and 26 base32 characters (128 bits).
func NewID(prefix string) string {
	// 48 bits of Unix milliseconds, then 80 random bits: unguessable, and in
	// creation order, so the store's inserts land on the last page of each
	// table instead of dirtying a random page apiece.
	b := make([]byte, 16)
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	rand.Read(b[6:])
	return prefix + "_" + idEncoding.EncodeToString(b)
}

// NewAPIKey returns a new API key and its id; only the hash is stored.
func NewAPIKey() (id, key string) {
	id = NewID("key")
	b := make([]byte, 32)
	rand.Read(b)
	return id, "otpd_" + idEncoding.EncodeToString(b)
}

// HashAPIKey is what is stored of a key.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte("otpd api key v1\x00" + key))
	return h[:]
}
