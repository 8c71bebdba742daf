// Package delivery holds what both bus adapters do the same way around a group subscription:
// option defaults, calling the handler safely, deciding which messages of a batch failed, and
// building dead-letter messages. It is internal to pkg/bus.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/classwaves/classwaves/pkg/bus"
)

// Defaults of bus.SubscribeOptions, as documented on its fields.
const (
	DefaultBatchSize     = 100
	DefaultMaxWait       = 2 * time.Second
	DefaultClaimIdle     = 30 * time.Second
	DefaultMaxDeliveries = 5
	DefaultRetry         = time.Second
	// DeadLetterSuffix is appended to a topic to name its default dead-letter topic.
	DeadLetterSuffix = ":dlq"
)

// maxReasonLen bounds the dlq-reason header: an error text can be arbitrarily long.
const maxReasonLen = 512

// Defaults fills the zero fields of o for a subscription on topic. MaxDeliveries stays negative
// when it is (never dead-letter).
func Defaults(topic string, o bus.SubscribeOptions) bus.SubscribeOptions {
	if o.Consumer == "" {
		o.Consumer = DefaultConsumer()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = DefaultClaimIdle
	}
	if o.MaxDeliveries == 0 {
		o.MaxDeliveries = DefaultMaxDeliveries
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = topic + DeadLetterSuffix
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	return o
}

// DefaultConsumer is hostname-pid, unique among the processes of a deployment.
func DefaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "consumer"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// Call runs h, turning a panic into an error so that one bad message cannot take the consumer
// (and the process) down; the messages are then treated as failed.
func Call(ctx context.Context, h bus.BatchHandler, msgs []bus.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bus: handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, msgs)
}

// Failed returns the ids of msgs that err says were not handled: none for nil, those listed by a
// *bus.BatchError (ids not in msgs are ignored), every one for any other error.
func Failed(err error, msgs []bus.Message) map[string]bool {
	if err == nil {
		return nil
	}
	failed := make(map[string]bool)
	var be *bus.BatchError
	if errors.As(err, &be) {
		in := make(map[string]bool, len(msgs))
		for _, m := range msgs {
			in[m.ID] = true
		}
		for _, id := range be.Failed {
			if in[id] {
				failed[id] = true
			}
		}
		return failed
	}
	for _, m := range msgs {
		failed[m.ID] = true
	}
	return failed
}

// Reason renders err for the dlq-reason header, bounded in length.
func Reason(err error) string {
	if err == nil {
		return "unknown"
	}
	var be *bus.BatchError
	if errors.As(err, &be) && be.Err != nil {
		err = be.Err
	}
	return Truncate(err.Error())
}

// Truncate bounds s to the dlq-reason header's length.
func Truncate(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	return s[:maxReasonLen] + "..."
}

// DeadLetter builds the message that moves m to a dead-letter topic: same key, payload and
// headers, plus the dlq-* headers.
func DeadLetter(m bus.Message, group, reason string) bus.Outgoing {
	h := make(map[string]string, len(m.Headers)+5)
	maps.Copy(h, m.Headers)
	h[bus.HeaderDLQReason] = Truncate(reason)
	h[bus.HeaderDLQSourceTopic] = m.Topic
	h[bus.HeaderDLQSourceID] = m.ID
	h[bus.HeaderDLQGroup] = group
	h[bus.HeaderDLQDeliveries] = strconv.Itoa(m.Deliveries)
	return bus.Outgoing{Key: m.Key, Payload: m.Payload, Headers: h}
}

// Exhausted says whether a message that failed on its deliveries-th delivery goes to the
// dead-letter topic rather than being delivered again.
func Exhausted(deliveries, maxDeliveries int) bool {
	return maxDeliveries > 0 && deliveries >= maxDeliveries
}
