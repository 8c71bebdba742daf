package inproc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/testenv"
)

// refusingBus is an in-process bus whose subscriptions to one topic fail.
type refusingBus struct {
	bus.Bus
	refuse string
}

var errRefused = errors.New("refused")

func (b refusingBus) Subscribe(ctx context.Context, topic, group string, h bus.BatchHandler, opts bus.SubscribeOptions) (bus.Subscription, error) {
	if topic == b.refuse {
		return nil, errRefused
	}
	return b.Bus.Subscribe(ctx, topic, group, h, opts)
}

func TestSubscribeAll(t *testing.T) {
	b := newBus(t, inproc.Options{})
	var mu sync.Mutex
	got := map[string]int{}
	h := func(_ context.Context, msgs []bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[m.Topic]++
		}
		return nil
	}
	subs, err := bus.SubscribeAll(context.Background(), b, []string{"a", "b"}, "g", h, bus.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"a", "b", "b"} {
		if _, err := publish(t, b, topic, "x"); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "both topics", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["a"] == 1 && got["b"] == 2
	})
	if err := bus.CloseAll(subs); err != nil {
		t.Fatal(err)
	}
	// A failure on the second topic undoes the first subscription and names the topic.
	subs, err = bus.SubscribeAll(context.Background(), refusingBus{Bus: b, refuse: "b"}, []string{"a", "b"}, "g2", h, bus.SubscribeOptions{})
	if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "subscribing to b") || subs != nil {
		t.Fatalf("SubscribeAll = %v, %v; want nil and the refusal of b", subs, err)
	}
}
