package ratelimit

import (
	"context"
	"strconv"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
)

// Errors of UserLimiter.Check.
var (
	// ErrRateLimited: the caller did this too often. Metadata retryAfterSeconds says when to retry.
	ErrRateLimited = apperr.New(codes.ResourceExhausted, apperr.ReasonRateLimited, Message)
	// ErrLimiterUnavailable: the limiter cannot be asked (Redis down); sensitive actions are
	// refused rather than let through unlimited.
	ErrLimiterUnavailable = apperr.New(codes.Unavailable, apperr.ReasonUnavailable, "please try again shortly")
)

// UserLimiter limits one sensitive action per user (the seed's createUserRateLimiter(prefix,
// points, duration)): for example NewUserLimiter(l, "end-session", PerPeriod(10, time.Minute)).
// Services call Check at the top of the handler.
type UserLimiter struct {
	limiter Limiter
	name    string
	limit   Limit
}

// NewUserLimiter returns the per-user limiter of action name.
func NewUserLimiter(l Limiter, name string, limit Limit) *UserLimiter {
	return &UserLimiter{limiter: l, name: name, limit: limit}
}

// Allow counts one action by subject.
func (u *UserLimiter) Allow(ctx context.Context, subject string) (Result, error) {
	return u.limiter.Allow(ctx, "user:"+u.name+":"+subject, u.limit)
}

// Check counts one action by the principal of ctx. It answers authn.ErrUnauthenticated without a
// principal, ErrRateLimited (metadata retryAfterSeconds) over the limit, and ErrLimiterUnavailable
// when the limiter fails: unlike the HTTP limits, a sensitive action fails closed.
func (u *UserLimiter) Check(ctx context.Context) error {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return authn.ErrUnauthenticated
	}
	res, err := u.Allow(ctx, string(p.Role)+":"+p.Subject)
	if err != nil {
		return ErrLimiterUnavailable.WithCause(err)
	}
	if !res.Allowed {
		return ErrRateLimited.WithMetadata("retryAfterSeconds", strconv.FormatInt(max(seconds(res.RetryAfter), 1), 10))
	}
	return nil
}
