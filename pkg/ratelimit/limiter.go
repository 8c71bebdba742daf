// Package ratelimit limits request rates with the generic cell rate algorithm (GCRA): on Redis
// (github.com/go-redis/redis_rate) when several processes share the limits (microservices mode),
// in memory when one process serves everything (monolithic mode). Both implement Limiter and pass
// the same tests.
//
// On top of a Limiter: Middleware, the HTTP limits of the seed (a global limit on /api/** per
// client IP, a stricter one on /api/v1/auth/**, health, readiness and metrics exempt, 429 answered
// with the REST envelope and the RateLimit headers), and UserLimiter, the per-user limit services
// put on sensitive actions (the seed's createUserRateLimiter).
package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Limit allows Rate events per Period, and up to Burst of them at once. Under GCRA an event is
// allowed every Period/Rate on average; Burst events may come together after a quiet time.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// PerPeriod is n events per period with a burst of n: the seed's "max n requests per window".
func PerPeriod(n int, period time.Duration) Limit {
	return Limit{Rate: n, Period: period, Burst: n}
}

// Validate reports a limit the algorithm cannot apply.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0 || l.Burst <= 0:
		return fmt.Errorf("ratelimit: rate %d and burst %d must be positive", l.Rate, l.Burst)
	case l.Period < time.Millisecond || l.Period/time.Duration(l.Rate) <= 0:
		return fmt.Errorf("ratelimit: period %v is too short for rate %d", l.Period, l.Rate)
	}
	return nil
}

// emission is the average time between two allowed events.
func (l Limit) emission() time.Duration { return l.Period / time.Duration(l.Rate) }

// Result is the outcome of one Allow.
type Result struct {
	// Limit is the limit applied.
	Limit Limit
	// Allowed says whether the event may happen; a refused event is not counted.
	Allowed bool
	// Remaining is how many more events would be allowed right now.
	Remaining int
	// RetryAfter is, for a refused event, how long until one would be allowed; 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to its full burst.
	ResetAfter time.Duration
}

// Limiter decides whether the event named by key may happen under limit. Keys are the caller's
// ("global:203.0.113.7"); an implementation may prefix them but keeps them apart otherwise.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit) (Result, error)
}
