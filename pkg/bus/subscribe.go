package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// SubscribeAll subscribes h to each of topics in group with opts. When one subscription fails, those
// made so far are closed, and the error names the topic.
func SubscribeAll(ctx context.Context, b Bus, topics []string, group string, h BatchHandler, opts SubscribeOptions) ([]Subscription, error) {
	subs := make([]Subscription, 0, len(topics))
	for _, topic := range topics {
		sub, err := b.Subscribe(ctx, topic, group, h, opts)
		if err != nil {
			_ = CloseAll(subs)
			return nil, fmt.Errorf("subscribing to %s: %w", topic, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// CloseAll closes subs together (each Close waits for its read in flight, up to the subscription's
// MaxWait) and returns their errors joined.
func CloseAll(subs []Subscription) error {
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() { errs[i] = sub.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
