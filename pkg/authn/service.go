package authn

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
)

// TokenSource yields the access token a service presents on its outgoing internal calls, with its
// expiry. services/auth/token.KeySet.ServiceTokenSource is the one that mints service tokens.
type TokenSource interface {
	Token(ctx context.Context) (token string, expiresAt time.Time, err error)
}

// renewBefore is how long before expiry a cached service token is replaced.
const renewBefore = time.Minute

// ServiceCredentials attaches "authorization: Bearer <service token>" to every outgoing call of a
// gRPC connection (grpc.WithPerRPCCredentials), so the callee's Interceptor sees a service
// principal and admits Internal RPCs. A call whose context already carries an authorization value
// (a request forwarded on behalf of a user) keeps it. Tokens are cached until shortly before they
// expire.
//
// RequireTransportSecurity is false: internal calls go over loopback (monolithic mode) or the
// cluster network. Binding them to mTLS identities is the planned hardening for microservices mode.
type ServiceCredentials struct {
	src TokenSource
	now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ credentials.PerRPCCredentials = (*ServiceCredentials)(nil)

// NewServiceCredentials returns per-RPC credentials that present src's tokens.
func NewServiceCredentials(src TokenSource, opts ...Option) *ServiceCredentials {
	return &ServiceCredentials{src: src, now: buildOptions(opts).now}
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *ServiceCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(MetadataKey)) > 0 {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || !c.now().Before(c.expires.Add(-renewBefore)) {
		tok, exp, err := c.src.Token(ctx)
		if err != nil {
			return nil, err
		}
		c.token, c.expires = tok, exp
	}
	return map[string]string{MetadataKey: "Bearer " + c.token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials; see ServiceCredentials.
func (c *ServiceCredentials) RequireTransportSecurity() bool { return false }

// RemoteServiceTokens is the TokenSource of a service running in its own process: it exchanges
// the shared INTERNAL_SERVICE_SECRET with the auth service (AuthService.IssueServiceToken) for a
// short-lived service token. Wrap it in NewServiceCredentials, which caches the token until shortly
// before it expires. Client must not itself carry these credentials (the exchange would recurse).
type RemoteServiceTokens struct {
	Client  authv1.AuthServiceClient
	Service string
	Secret  string
}

// Token implements TokenSource.
func (r RemoteServiceTokens) Token(ctx context.Context) (string, time.Time, error) {
	resp, err := r.Client.IssueServiceToken(ctx, &authv1.IssueServiceTokenRequest{Service: r.Service, Secret: r.Secret})
	if err != nil {
		return "", time.Time{}, err
	}
	return resp.GetAccessToken(), resp.GetExpiresAt().AsTime(), nil
}
