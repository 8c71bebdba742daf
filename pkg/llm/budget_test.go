package llm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/pkg/testenv"
)

type budgetWithUsed interface {
	llm.Budget
	used(t *testing.T, key string) int
}

type memBudget struct{ *llm.MemoryBudget }

func (b memBudget) used(_ *testing.T, key string) int {
	u, r := b.Used(key)
	return u + r
}

type redisBudget struct{ *llm.RedisBudget }

func (b redisBudget) used(t *testing.T, key string) int {
	n, err := b.Used(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBudgetContract runs the same checks on both Budget adapters.
func TestBudgetContract(t *testing.T) {
	t.Parallel()
	adapters := map[string]func(t *testing.T, limit int, now func() time.Time) budgetWithUsed{
		"memory": func(_ *testing.T, limit int, now func() time.Time) budgetWithUsed {
			return memBudget{llm.NewMemoryBudget(limit, now)}
		},
		"redis": func(t *testing.T, limit int, now func() time.Time) budgetWithUsed {
			env := testenv.Redis(t)
			return redisBudget{llm.NewRedisBudget(env.Client(t), env.Key("llm:budget:"), limit, now)}
		},
	}
	for name, newBudget := range adapters {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var mu sync.Mutex
			now := time.Date(2025, 3, 4, 23, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			b := newBudget(t, 1000, clock)

			if err := b.Reserve(ctx, "s1", 600); err != nil {
				t.Fatal(err)
			}
			if err := b.Reserve(ctx, "s1", 500); !errors.Is(err, llm.ErrBudgetExhausted) {
				t.Fatalf("Reserve over the limit = %v, want ErrBudgetExhausted", err)
			}
			if got := b.used(t, "s1"); got != 600 {
				t.Errorf("after a refused reservation: %d counted, want 600", got)
			}
			b.Settle(ctx, "s1", 600, 150)
			if got := b.used(t, "s1"); got != 150 {
				t.Errorf("after settling: %d counted, want 150", got)
			}
			if err := b.Reserve(ctx, "s1", 850); err != nil {
				t.Errorf("Reserve up to the limit: %v", err)
			}
			if err := b.Reserve(ctx, "s1", 1); !errors.Is(err, llm.ErrBudgetExhausted) {
				t.Errorf("Reserve past the limit = %v, want ErrBudgetExhausted", err)
			}
			if err := b.Reserve(ctx, "s2", 1000); err != nil {
				t.Errorf("another key: %v", err)
			}

			// Concurrent reservations never overshoot together.
			var wg sync.WaitGroup
			var okCount sync.Map
			for i := range 20 {
				wg.Go(func() {
					if b.Reserve(ctx, "s3", 100) == nil {
						okCount.Store(i, true)
					}
				})
			}
			wg.Wait()
			n := 0
			okCount.Range(func(any, any) bool { n++; return true })
			if n != 10 || b.used(t, "s3") != 1000 {
				t.Errorf("%d of 20 concurrent reservations of 100 passed (%d counted), want 10 (1000)", n, b.used(t, "s3"))
			}

			// A new UTC day starts afresh; a reservation of yesterday settled today does not
			// drive the count below zero.
			mu.Lock()
			now = now.Add(2 * time.Hour)
			mu.Unlock()
			if got := b.used(t, "s1"); got != 0 {
				t.Errorf("next day: %d counted, want 0", got)
			}
			b.Settle(ctx, "s1", 850, 0)
			if got := b.used(t, "s1"); got != 0 {
				t.Errorf("late settle: %d counted, want 0", got)
			}
			if err := b.Reserve(ctx, "s1", 1000); err != nil {
				t.Errorf("next day: %v", err)
			}
		})
	}
}

func TestUnlimitedBudgetCounts(t *testing.T) {
	t.Parallel()
	b := llm.NewMemoryBudget(0, nil)
	if err := b.Reserve(context.Background(), "s", 1<<30); err != nil {
		t.Fatal(err)
	}
	b.Settle(context.Background(), "s", 1<<30, 42)
	if used, reserved := b.Used("s"); used != 42 || reserved != 0 {
		t.Errorf("used %d reserved %d, want 42 and 0", used, reserved)
	}
}
