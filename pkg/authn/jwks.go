package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
)

// JWK field values of an Ed25519 signing key (RFC 8037 section 2, RFC 7517 section 4).
const (
	jwkKeyType = "OKP"
	jwkCurve   = "Ed25519"
	jwkUse     = "sig"
)

// NewJWK returns the public JWK of an Ed25519 key: kty OKP, crv Ed25519, x (base64url, no
// padding), kid, alg EdDSA, use sig.
func NewJWK(kid string, pub ed25519.PublicKey) *authv1.Jwk {
	return &authv1.Jwk{
		Kty: jwkKeyType,
		Crv: jwkCurve,
		X:   base64.RawURLEncoding.EncodeToString(pub),
		Kid: kid,
		Alg: Algorithm,
		Use: jwkUse,
	}
}

// PublicKeyFromJWK returns the Ed25519 public key of k. It refuses anything but an Ed25519
// signing key: another kty or crv, an alg other than EdDSA, a use other than sig, private
// material, a missing kid or an x that is not 32 bytes of base64url.
func PublicKeyFromJWK(k *authv1.Jwk) (ed25519.PublicKey, error) {
	switch {
	case k.GetKty() != jwkKeyType || k.GetCrv() != jwkCurve:
		return nil, fmt.Errorf("jwk %q: kty %q crv %q is not an Ed25519 key", k.GetKid(), k.GetKty(), k.GetCrv())
	case k.GetAlg() != "" && k.GetAlg() != Algorithm:
		return nil, fmt.Errorf("jwk %q: alg %q", k.GetKid(), k.GetAlg())
	case k.GetUse() != "" && k.GetUse() != jwkUse:
		return nil, fmt.Errorf("jwk %q: use %q", k.GetKid(), k.GetUse())
	case k.GetKid() == "" || len(k.GetKid()) > maxKeyIDLen:
		return nil, errors.New("jwk without a usable kid")
	case k.GetY() != "" || k.GetN() != "" || k.GetE() != "":
		return nil, fmt.Errorf("jwk %q: unexpected y, n or e", k.GetKid())
	}
	x, err := base64.RawURLEncoding.Strict().DecodeString(k.GetX())
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("jwk %q: x is not a base64url Ed25519 public key", k.GetKid())
	}
	return ed25519.PublicKey(x), nil
}

// JWKSFetcher fetches the published key set.
type JWKSFetcher interface {
	FetchJWKS(ctx context.Context) ([]*authv1.Jwk, error)
}

// JWKSFetcherFunc adapts a function to JWKSFetcher.
type JWKSFetcherFunc func(ctx context.Context) ([]*authv1.Jwk, error)

// FetchJWKS calls f.
func (f JWKSFetcherFunc) FetchJWKS(ctx context.Context) ([]*authv1.Jwk, error) { return f(ctx) }

// RemoteJWKS fetches the key set from the auth service over gRPC (AuthService.GetJwks).
type RemoteJWKS struct {
	Client authv1.AuthServiceClient
}

var _ JWKSFetcher = RemoteJWKS{}

// FetchJWKS calls GetJwks.
func (r RemoteJWKS) FetchJWKS(ctx context.Context) ([]*authv1.Jwk, error) {
	resp, err := r.Client.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetKeys(), nil
}

// fetchTimeout bounds one key set fetch, whatever the caller's deadline.
const fetchTimeout = 5 * time.Second

// CachedKeys is a KeySource over a JWKSFetcher: it caches the fetched keys and fetches again when
// asked for a kid it does not know or when its keys are older than cfg.JWKSCacheTTL. Fetches are
// rate-limited to one per cfg.JWKSMinRefreshInterval, whatever the number of callers, so tokens
// with made-up kids cannot turn into a flood of GetJwks calls; concurrent callers wait for the one
// fetch in flight. When a fetch fails, keys already known keep verifying.
type CachedKeys struct {
	fetcher     JWKSFetcher
	minInterval time.Duration
	ttl         time.Duration
	now         func() time.Time

	fetchMu     sync.Mutex // held during a fetch; guards lastAttempt
	lastAttempt time.Time

	mu        sync.RWMutex // guards the fields below
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time // of the last successful fetch; zero before
	lastErr   error     // of the last failed fetch since the last success
}

var _ KeySource = (*CachedKeys)(nil)

// NewCachedKeys returns a KeySource caching what f fetches, with cfg's refresh interval and TTL.
// Nothing is fetched until the first lookup (or Refresh).
func NewCachedKeys(cfg Config, f JWKSFetcher, opts ...Option) *CachedKeys {
	o := buildOptions(opts)
	return &CachedKeys{fetcher: f, minInterval: cfg.JWKSMinRefreshInterval, ttl: cfg.JWKSCacheTTL, now: o.now}
}

// NewRemoteKeys returns the KeySource of a service that does not run auth: the auth service's
// GetJwks, cached.
func NewRemoteKeys(cfg Config, client authv1.AuthServiceClient, opts ...Option) *CachedKeys {
	return NewCachedKeys(cfg, RemoteJWKS{Client: client}, opts...)
}

// PublicKey implements KeySource.
func (c *CachedKeys) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	k, fresh := c.lookup(kid)
	if k != nil && fresh {
		return k, nil
	}
	if k != nil {
		// Known but stale: refresh unless a fetch is already running, and verify with the key
		// either way, so an auth outage never queues requests behind a failing fetch.
		if c.fetchMu.TryLock() {
			c.refreshLocked(ctx)
			c.fetchMu.Unlock()
		}
		if k, _ := c.lookup(kid); k != nil {
			return k, nil
		}
	} else {
		c.refresh(ctx)
		if k, _ := c.lookup(kid); k != nil {
			return k, nil
		}
	}
	c.mu.RLock()
	fetched, lastErr := !c.fetchedAt.IsZero(), c.lastErr
	c.mu.RUnlock()
	if !fetched {
		if lastErr == nil {
			lastErr = errors.New("no key set fetched yet")
		}
		return nil, fmt.Errorf("authn: key set unavailable: %w", lastErr)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// lookup returns the cached key of kid (nil if none) and whether the cache is within its TTL.
func (c *CachedKeys) lookup(kid string) (ed25519.PublicKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fresh := !c.fetchedAt.IsZero() && c.now().Sub(c.fetchedAt) < c.ttl
	return c.keys[kid], fresh
}

// Refresh fetches the key set now unless a fetch was attempted less than JWKSMinRefreshInterval
// ago, e.g. to warm the cache at start. It returns the error of the last fetch, if it failed.
func (c *CachedKeys) Refresh(ctx context.Context) error {
	c.refresh(ctx)
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lastErr
}

// refresh fetches the key set unless the rate limit says not yet. Callers arriving while a fetch
// runs wait for it and then find the attempt too recent to fetch again.
func (c *CachedKeys) refresh(ctx context.Context) {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	c.refreshLocked(ctx)
}

// refreshLocked is refresh for a caller holding fetchMu.
func (c *CachedKeys) refreshLocked(ctx context.Context) {
	now := c.now()
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minInterval {
		return
	}
	c.lastAttempt = now
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	jwks, err := c.fetcher.FetchJWKS(ctx)
	if err == nil && len(jwks) == 0 {
		err = errors.New("the key set is empty")
	}
	var keys map[string]ed25519.PublicKey
	if err == nil {
		keys = make(map[string]ed25519.PublicKey, len(jwks))
		for _, k := range jwks {
			// A key of another kind is skipped, not fatal: the set may carry keys for other uses.
			if pub, perr := PublicKeyFromJWK(k); perr == nil {
				keys[k.GetKid()] = pub
			}
		}
		if len(keys) == 0 {
			err = errors.New("the key set has no Ed25519 signing key")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = err
		return
	}
	c.keys, c.fetchedAt, c.lastErr = keys, now, nil
}
