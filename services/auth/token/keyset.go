// Package token issues ClassWaves access tokens: JWTs signed with Ed25519 (alg EdDSA), carrying
// the claims of authn.Claims, with a key id (kid) in the header. pkg/authn verifies them.
//
// A KeySet holds the signing keys. One key signs at a time; rotation makes a new key, publishes it
// (JWKS) for a while before it signs, and keeps every older key published until all the tokens it
// may have signed have expired, plus the clock skew. Keys live in a KeyStore (MemoryStore now; the
// auth store's SQL adapter persists them as PKCS#8 PEM with their created and retired times), so
// several auth replicas share them.
package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/authn"
)

// Option configures a KeySet.
type Option func(*KeySet)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(ks *KeySet) { ks.now = now } }

// WithLogger sets the logger of Run (rotation, pruning, reload failures).
func WithLogger(l *slog.Logger) Option { return func(ks *KeySet) { ks.logger = l } }

// signingKey is a loaded key.
type signingKey struct {
	id        string
	priv      ed25519.PrivateKey
	pub       ed25519.PublicKey
	createdAt time.Time
	retiredAt time.Time // zero while current
}

// KeySet signs tokens with the current key and publishes the public keys. It is safe for
// concurrent use and implements authn.KeySource and authn.JWKSFetcher, so a process that runs the
// auth service verifies against it directly.
type KeySet struct {
	cfg    Config
	jwt    authn.Config
	store  KeyStore
	now    func() time.Time
	logger *slog.Logger

	mu   sync.RWMutex
	keys []*signingKey // ordered by createdAt, oldest first

	reloadMu   sync.Mutex // serialises reloads and rotations; guards lastReload
	lastReload time.Time
}

var (
	_ authn.KeySource   = (*KeySet)(nil)
	_ authn.JWKSFetcher = (*KeySet)(nil)
)

// NewKeySet loads the keys of store and, when none is current, makes the first one. cfg and jwt
// are expected to be valid (Validate).
func NewKeySet(ctx context.Context, cfg Config, jwt authn.Config, store KeyStore, opts ...Option) (*KeySet, error) {
	ks := &KeySet{cfg: cfg, jwt: jwt, store: store, now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(ks)
	}
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	if err := ks.reloadLocked(ctx); err != nil {
		return nil, err
	}
	if ks.current() == nil {
		if err := ks.rotateLocked(ctx); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// publishDelay is how long a new key is published before it signs: long enough for the other
// auth replicas to reload it and for verifiers to be allowed a refresh.
func (ks *KeySet) publishDelay() time.Duration {
	return ks.cfg.ReloadInterval + ks.jwt.JWKSMinRefreshInterval
}

// retention is how long a key stays published after it stopped signing: the longest token
// lifetime, the clock skew verifiers allow, and one reload interval for a replica that has not
// seen the rotation yet.
func (ks *KeySet) retention() time.Duration {
	return ks.cfg.maxTTL() + ks.jwt.ClockSkew + ks.cfg.ReloadInterval
}

// current returns the key that is not retired (the newest), or nil. Callers hold mu or reloadMu.
func (ks *KeySet) current() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range slices.Backward(ks.keys) {
		if k.retiredAt.IsZero() {
			return k
		}
	}
	return nil
}

// signer returns the key that signs at now: the oldest key that has not stopped signing. After a
// rotation that is the previous key until its retirement (the new key's publish delay), then the
// new one.
func (ks *KeySet) signer(now time.Time) (*signingKey, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.retiredAt.IsZero() || now.Before(k.retiredAt) {
			return k, nil
		}
	}
	return nil, errors.New("token: no signing key")
}

// published reports whether k is still published at now.
func (ks *KeySet) published(k *signingKey, now time.Time) bool {
	return k.retiredAt.IsZero() || now.Before(k.retiredAt.Add(ks.retention()))
}

// JWKS returns the public keys verifiers must know now, newest first (RFC 7517, RFC 8037).
func (ks *KeySet) JWKS() []*authv1.Jwk {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var out []*authv1.Jwk
	for _, k := range slices.Backward(ks.keys) {
		if ks.published(k, now) {
			out = append(out, authn.NewJWK(k.id, k.pub))
		}
	}
	return out
}

// FetchJWKS implements authn.JWKSFetcher (GetJwks answers it).
func (ks *KeySet) FetchJWKS(context.Context) ([]*authv1.Jwk, error) { return ks.JWKS(), nil }

// PublicKey implements authn.KeySource. A kid it does not know makes it reload the store (at most
// once per JWKS_MIN_REFRESH_INTERVAL), since another replica may have rotated.
func (ks *KeySet) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k := ks.lookup(kid); k != nil {
		return k, nil
	}
	if err := ks.reloadIfDue(ctx); err != nil {
		return nil, err
	}
	if k := ks.lookup(kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", authn.ErrUnknownKey, kid)
}

func (ks *KeySet) lookup(kid string) ed25519.PublicKey {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.id == kid && ks.published(k, now) {
			return k.pub
		}
	}
	return nil
}

// reloadIfDue reloads the store unless it was reloaded less than JWKSMinRefreshInterval ago.
func (ks *KeySet) reloadIfDue(ctx context.Context) error {
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	if ks.now().Sub(ks.lastReload) < ks.jwt.JWKSMinRefreshInterval {
		return nil
	}
	return ks.reloadLocked(ctx)
}

// Reload replaces the loaded keys with the store's.
func (ks *KeySet) Reload(ctx context.Context) error {
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	return ks.reloadLocked(ctx)
}

func (ks *KeySet) reloadLocked(ctx context.Context) error {
	ks.lastReload = ks.now()
	stored, err := ks.store.LoadKeys(ctx)
	if err != nil {
		return fmt.Errorf("token: load keys: %w", err)
	}
	keys := make([]*signingKey, 0, len(stored))
	for _, s := range stored {
		priv, err := ParsePrivateKeyPEM(s.PrivateKeyPEM)
		if err != nil {
			return fmt.Errorf("token: key %q: %w", s.ID, err)
		}
		pub := priv.Public().(ed25519.PublicKey)
		if kid := thumbprint(pub); kid != s.ID {
			return fmt.Errorf("token: key %q: id is not the key's thumbprint %q", s.ID, kid)
		}
		keys = append(keys, &signingKey{id: s.ID, priv: priv, pub: pub, createdAt: s.CreatedAt, retiredAt: s.RetiredAt})
	}
	slices.SortStableFunc(keys, func(a, b *signingKey) int { return a.createdAt.Compare(b.createdAt) })
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
	return nil
}

// Rotate makes a new key current. The previous key keeps signing for the publish delay, so the
// new key is published before it is used, then retires. When another replica rotated first, Rotate
// takes its key instead and returns nil.
func (ks *KeySet) Rotate(ctx context.Context) error {
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	return ks.rotateLocked(ctx)
}

func (ks *KeySet) rotateLocked(ctx context.Context) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("token: generate key: %w", err)
	}
	pemBytes, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		return fmt.Errorf("token: encode key: %w", err)
	}
	now := ks.now()
	currentID := ""
	if cur := ks.current(); cur != nil {
		currentID = cur.id
	}
	next := StoredKey{
		ID:            thumbprint(priv.Public().(ed25519.PublicKey)),
		PrivateKeyPEM: pemBytes,
		CreatedAt:     now,
	}
	err = ks.store.RotateKey(ctx, currentID, next, now.Add(ks.publishDelay()))
	if err != nil && !errors.Is(err, ErrRotationConflict) {
		return fmt.Errorf("token: rotate key: %w", err)
	}
	return ks.reloadLocked(ctx)
}

// Maintain reloads the keys from the store, rotates when the current key is older than
// RotationInterval, and deletes keys no token can need any more. Run calls it every
// ReloadInterval.
func (ks *KeySet) Maintain(ctx context.Context) error {
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	if err := ks.reloadLocked(ctx); err != nil {
		return err
	}
	now := ks.now()
	if cur := ks.current(); cur == nil || now.Sub(cur.createdAt) >= ks.cfg.RotationInterval {
		if err := ks.rotateLocked(ctx); err != nil {
			return err
		}
		if cur := ks.current(); cur != nil {
			ks.logger.InfoContext(ctx, "token signing key rotated", slog.String("kid", cur.id))
		}
	}
	n, err := ks.store.DeleteRetiredBefore(ctx, now.Add(-ks.retention()))
	if err != nil {
		return fmt.Errorf("token: prune keys: %w", err)
	}
	if n > 0 {
		ks.logger.InfoContext(ctx, "expired token signing keys deleted", slog.Int("count", n))
		return ks.reloadLocked(ctx)
	}
	return nil
}

// Run calls Maintain every ReloadInterval until ctx ends; a failure is logged and retried at the
// next tick (the loaded keys keep signing and verifying meanwhile). It returns nil when ctx ends.
func (ks *KeySet) Run(ctx context.Context) error {
	t := time.NewTicker(ks.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := ks.Maintain(ctx); err != nil && ctx.Err() == nil {
				ks.logger.ErrorContext(ctx, "token signing key maintenance failed", slog.String("error", err.Error()))
			}
		}
	}
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key (RFC 8037 section 2): the
// base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":"<x>"}.
func thumbprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
