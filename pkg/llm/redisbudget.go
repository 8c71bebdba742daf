package llm

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBudget is a Budget shared by every replica through Redis: one counter of reserved plus
// used tokens per key and UTC day ("<prefix><YYYY-MM-DD>:<key>", expiring after two days),
// checked and increased atomically by a script.
type RedisBudget struct {
	rdb    redis.UniversalClient
	prefix string
	limit  int
	now    func() time.Time
	// settleTimeout bounds Settle, which has no caller to report to.
	settleTimeout time.Duration
}

var _ Budget = (*RedisBudget)(nil)

// NewRedisBudget returns a budget of limitPerDay tokens per key and UTC day (0 or less:
// unlimited, use is still counted) kept under keys starting with prefix (e.g.
// "classwaves:llm:budget:"). now is the clock (nil: time.Now).
func NewRedisBudget(rdb redis.UniversalClient, prefix string, limitPerDay int, now func() time.Time) *RedisBudget {
	if now == nil {
		now = time.Now
	}
	return &RedisBudget{rdb: rdb, prefix: prefix, limit: limitPerDay, now: now, settleTimeout: 2 * time.Second}
}

const budgetTTL = 48 * time.Hour

// reserveScript: KEYS[1] counter; ARGV tokens, limit (<= 0: none), ttl seconds. Answers the
// new count, or -1 (with the current count) when the limit would be exceeded.
var reserveScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit > 0 and cur + n > limit then return {-1, cur} end
local v = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {v, cur}
`)

// settleScript: KEYS[1] counter; ARGV delta, ttl seconds. The count never goes below zero (a
// reservation of the previous day settled after midnight).
var settleScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = cur + tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], v, 'EX', ARGV[2])
return v
`)

func (b *RedisBudget) key(key string) string {
	return b.prefix + b.now().UTC().Format(time.DateOnly) + ":" + key
}

// Reserve implements Budget.
func (b *RedisBudget) Reserve(ctx context.Context, key string, tokens int) error {
	res, err := reserveScript.Run(ctx, b.rdb, []string{b.key(key)}, max(tokens, 0), b.limit, int(budgetTTL/time.Second)).Int64Slice()
	if err != nil {
		return fmt.Errorf("llm: redis budget: %w", err)
	}
	if len(res) == 2 && res[0] < 0 {
		return fmt.Errorf("%w: %d of %d tokens used or reserved today, %d more asked", ErrBudgetExhausted, res[1], b.limit, tokens)
	}
	return nil
}

// Settle implements Budget. It is best effort: when Redis cannot be reached the reservation
// stays counted as used (the budget errs on the safe side).
func (b *RedisBudget) Settle(ctx context.Context, key string, reserved, used int) {
	delta := max(used, 0) - max(reserved, 0)
	if delta == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.settleTimeout)
	defer cancel()
	_ = settleScript.Run(ctx, b.rdb, []string{b.key(key)}, delta, int(budgetTTL/time.Second)).Err()
}

// Used returns key's tokens used and reserved today.
func (b *RedisBudget) Used(ctx context.Context, key string) (int, error) {
	n, err := b.rdb.Get(ctx, b.key(key)).Int()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}
