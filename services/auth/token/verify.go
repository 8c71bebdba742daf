package token

import "github.com/classwaves/classwaves/pkg/authn"

// Verifier returns an authn.Verifier over ks, with the claim settings (issuer, audience, clock
// skew) and clock ks signs with: how a process that runs the auth service verifies access tokens
// without a network round trip (the auth service's VerifyToken, the interceptor of its server).
func (ks *KeySet) Verifier(opts ...authn.Option) *authn.Verifier {
	return authn.NewVerifier(ks.jwt, ks, append([]authn.Option{authn.WithClock(ks.now)}, opts...)...)
}
