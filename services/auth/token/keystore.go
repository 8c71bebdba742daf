package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// StoredKey is a signing key as a KeyStore keeps it: the private key as a PKCS#8 PEM block
// ("PRIVATE KEY"), so a persistent store holds text it can also encrypt or hand to an operator.
type StoredKey struct {
	// ID is the key id (kid): the RFC 7638 JWK thumbprint of the public key.
	ID string
	// PrivateKeyPEM is the Ed25519 private key, PKCS#8, PEM-encoded.
	PrivateKeyPEM []byte
	// CreatedAt is when the key was made. It signs from CreatedAt plus the publish delay on, so
	// verifiers see it before any token it signed.
	CreatedAt time.Time
	// RetiredAt is when the key stops signing; zero while it is the current key. A retired key stays
	// published until every token it may have signed has expired.
	RetiredAt time.Time
}

// ErrRotationConflict is returned by KeyStore.RotateKey when the current key is not the one the
// caller saw: another replica rotated first.
var ErrRotationConflict = errors.New("token: signing key rotated concurrently")

// KeyStore is the KeySet's port to persistent key storage. MemoryStore implements it; the auth
// store's SQL adapter is the persistent one (a table keys(id primary key, private_key_pem,
// created_at, retired_at null), with at most one row whose retired_at is null).
type KeyStore interface {
	// LoadKeys returns every stored key, in any order.
	LoadKeys(ctx context.Context) ([]StoredKey, error)
	// RotateKey makes next the current key and sets retireAt on the key that was current,
	// atomically, provided that the current key is currentID ("" for a store without one).
	// Otherwise it changes nothing and returns ErrRotationConflict. (SQL: in one transaction,
	// UPDATE ... SET retired_at = $retireAt WHERE id = $currentID AND retired_at IS NULL must touch
	// one row, or none when currentID is "" and no row is current, then INSERT next.)
	RotateKey(ctx context.Context, currentID string, next StoredKey, retireAt time.Time) error
	// DeleteRetiredBefore deletes the keys retired before cutoff and returns how many it deleted.
	DeleteRetiredBefore(ctx context.Context, cutoff time.Time) (int, error)
}

// MarshalPrivateKeyPEM encodes an Ed25519 private key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalPrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM decodes a PKCS#8 "PRIVATE KEY" PEM block holding an Ed25519 key.
func ParsePrivateKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PRIVATE KEY PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PKCS#8: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("PKCS#8 key is %T, not Ed25519", k)
	}
	return ek, nil
}

// MemoryStore is a KeyStore in memory: keys live as long as the process. It suits tests and a
// single-process deployment that accepts that a restart signs every user out.
type MemoryStore struct {
	mu   sync.Mutex
	keys []StoredKey
}

var _ KeyStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// LoadKeys implements KeyStore.
func (s *MemoryStore) LoadKeys(context.Context) ([]StoredKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StoredKey, len(s.keys))
	for i, k := range s.keys {
		k.PrivateKeyPEM = slices.Clone(k.PrivateKeyPEM)
		out[i] = k
	}
	return out, nil
}

// RotateKey implements KeyStore.
func (s *MemoryStore) RotateKey(_ context.Context, currentID string, next StoredKey, retireAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := -1
	for i, k := range s.keys {
		if k.RetiredAt.IsZero() {
			cur = i
		}
		if k.ID == next.ID {
			return fmt.Errorf("token: key %q already stored", next.ID)
		}
	}
	switch {
	case cur < 0 && currentID != "", cur >= 0 && s.keys[cur].ID != currentID:
		return ErrRotationConflict
	}
	if cur >= 0 {
		s.keys[cur].RetiredAt = retireAt
	}
	next.PrivateKeyPEM = slices.Clone(next.PrivateKeyPEM)
	next.RetiredAt = time.Time{}
	s.keys = append(s.keys, next)
	return nil
}

// DeleteRetiredBefore implements KeyStore.
func (s *MemoryStore) DeleteRetiredBefore(_ context.Context, cutoff time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.keys)
	s.keys = slices.DeleteFunc(s.keys, func(k StoredKey) bool {
		return !k.RetiredAt.IsZero() && k.RetiredAt.Before(cutoff)
	})
	return n - len(s.keys), nil
}
