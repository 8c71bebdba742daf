package ratelimit

import (
	"context"
	"sync"
	"time"
)

// sweepEvery is how many Allow calls pass between two sweeps of fully replenished keys.
const sweepEvery = 1024

// Memory is a Limiter in process memory, for monolithic mode. It keeps one theoretical arrival
// time (TAT) per key, exactly as the Redis GCRA script does, and forgets keys once they are back to
// their full burst, so a flood of distinct keys costs memory only for as long as it lasts.
type Memory struct {
	now func() time.Time

	mu    sync.Mutex
	tat   map[string]time.Time
	calls int
}

var _ Limiter = (*Memory)(nil)

// MemoryOption configures a Memory limiter.
type MemoryOption func(*Memory)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// NewMemory returns an empty in-memory limiter.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{now: time.Now, tat: map[string]time.Time{}}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// Allow implements Limiter (GCRA, cost 1).
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.calls++
	if m.calls%sweepEvery == 0 {
		for k, t := range m.tat {
			if !t.After(now) {
				delete(m.tat, k)
			}
		}
	}
	e := l.emission()
	tat, ok := m.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(e)
	allowAt := newTAT.Add(-e * time.Duration(l.Burst))
	diff := now.Sub(allowAt)
	if diff < 0 {
		return Result{Limit: l, RetryAfter: -diff, ResetAfter: tat.Sub(now)}, nil
	}
	m.tat[key] = newTAT
	return Result{Limit: l, Allowed: true, Remaining: int(diff / e), ResetAfter: newTAT.Sub(now)}, nil
}

// Len returns the number of keys held, for tests and metrics.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}
