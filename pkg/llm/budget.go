package llm

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Budget meters tokens per key (a school) and UTC day. The client reserves an upper estimate
// before each attempt and settles it with what was used once the attempt is over, so concurrent
// requests cannot together overshoot the limit by more than the estimates' error.
type Budget interface {
	// Reserve claims tokens for key, or fails with an error wrapping ErrBudgetExhausted when
	// the key's reserved and used tokens of the day would then exceed the limit.
	Reserve(ctx context.Context, key string, tokens int) error
	// Settle replaces a reservation of reserved tokens by used tokens.
	Settle(ctx context.Context, key string, reserved, used int)
}

// MemoryBudget is a Budget kept in this process (monolithic mode, tests). Its state is reset
// at each UTC midnight, so it holds at most a day's keys.
type MemoryBudget struct {
	limit int
	now   func() time.Time

	mu   sync.Mutex
	day  string
	keys map[string]*budgetEntry
}

type budgetEntry struct{ reserved, used int }

var _ Budget = (*MemoryBudget)(nil)

// NewMemoryBudget returns a budget of limitPerDay tokens per key and UTC day (0 or less:
// unlimited, use is still counted). now is the clock (nil: time.Now).
func NewMemoryBudget(limitPerDay int, now func() time.Time) *MemoryBudget {
	if now == nil {
		now = time.Now
	}
	return &MemoryBudget{limit: limitPerDay, now: now, keys: map[string]*budgetEntry{}}
}

// entry returns key's entry for today, emptying the map when the day changed. b.mu is held.
func (b *MemoryBudget) entry(key string) *budgetEntry {
	day := b.now().UTC().Format(time.DateOnly)
	if day != b.day {
		b.day = day
		clear(b.keys)
	}
	e := b.keys[key]
	if e == nil {
		e = &budgetEntry{}
		b.keys[key] = e
	}
	return e
}

// Reserve implements Budget.
func (b *MemoryBudget) Reserve(_ context.Context, key string, tokens int) error {
	tokens = max(tokens, 0)
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(key)
	if b.limit > 0 && e.reserved+e.used+tokens > b.limit {
		return fmt.Errorf("%w: %d of %d tokens used or reserved today, %d more asked", ErrBudgetExhausted, e.reserved+e.used, b.limit, tokens)
	}
	e.reserved += tokens
	return nil
}

// Settle implements Budget. A reservation made before midnight is forgotten with its day.
func (b *MemoryBudget) Settle(_ context.Context, key string, reserved, used int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(key)
	e.reserved = max(e.reserved-max(reserved, 0), 0)
	e.used += max(used, 0)
}

// Used returns key's tokens used and reserved today.
func (b *MemoryBudget) Used(key string) (used, reserved int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(key)
	return e.used, e.reserved
}
