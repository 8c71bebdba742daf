// Package bus is the event bus port: publish, consume as a consumer group with ack, fan out to every
// subscriber, and replay from an offset. Two adapters implement it: Redis Streams (microservices
// mode) and in-process (monolithic mode). One conformance suite (bustest) runs against both.
//
// Delivery is at least once: a message is acknowledged only after its handler returned nil, so a
// consumer that dies mid-batch has its messages delivered again, to itself on restart or to another
// member of the group once they have been idle for ClaimIdle. Handlers must therefore be idempotent
// (messages carry ids). Messages with the same key are handled in publish order within a group.
package bus

import (
	"context"
	"errors"
	"time"
)

// Outgoing is a message to publish.
type Outgoing struct {
	// Key orders messages: a group handles messages with the same key in publish order. Use the
	// group id, or the session id for session-wide events.
	Key string
	// Payload is the opaque body (events are protobuf classwaves.events.v1.Event, audit records JSON).
	Payload []byte
	// Headers are small string attributes (content type, trace id).
	Headers map[string]string
}

// Message is a delivered message.
type Message struct {
	// ID is the bus-assigned offset, increasing within a topic partition. For Redis it is the stream
	// entry id ("1700000000000-0").
	ID string
	// Topic the message was published to.
	Topic   string
	Key     string
	Payload []byte
	Headers map[string]string
	// Deliveries counts how many times this message has been delivered to the group, 1 the first time.
	Deliveries int
}

// BatchHandler handles a batch of messages (in order). Returning nil acknowledges them all. Returning
// a *BatchError acknowledges all but the failed ones; any other error acknowledges none. Messages not
// acknowledged are delivered again later, and after SubscribeOptions.MaxDeliveries they are moved to
// the dead-letter topic.
type BatchHandler func(ctx context.Context, msgs []Message) error

// Handler handles one message (fan-out subscribers: no acknowledgement, no redelivery).
type Handler func(ctx context.Context, msg Message)

// BatchError reports which messages of a batch failed; the others are acknowledged.
type BatchError struct {
	// Failed lists the ids of the messages that were not handled.
	Failed []string
	// Err is the cause (logged).
	Err error
}

func (e *BatchError) Error() string {
	if e.Err == nil {
		return "bus: batch partly failed"
	}
	return "bus: batch partly failed: " + e.Err.Error()
}

func (e *BatchError) Unwrap() error { return e.Err }

// SubscribeOptions tune a group subscription. Zero values take the defaults noted.
type SubscribeOptions struct {
	// Consumer names this member of the group (default: hostname-pid). A restarted consumer with the
	// same name re-reads its pending (delivered, unacknowledged) messages first.
	Consumer string
	// BatchSize is the most messages per handler call (default 100).
	BatchSize int
	// MaxWait is how long to wait for a batch to fill before handling what arrived (default 2s;
	// the seed's AUDIT_LOG_BLOCK_MS).
	MaxWait time.Duration
	// ClaimIdle is how long a delivered message may stay unacknowledged before another member of
	// the group claims it (default 30s).
	ClaimIdle time.Duration
	// MaxDeliveries is how many deliveries a message gets before it is moved to the dead-letter
	// topic (default 5; 0 takes the default, negative never dead-letters).
	MaxDeliveries int
	// DeadLetterTopic receives messages that exhausted MaxDeliveries, with headers "dlq-reason",
	// "dlq-source-topic" and "dlq-source-id" (default topic + ":dlq").
	DeadLetterTopic string
	// Retry is the pause after a failed batch before the messages are offered again (default 1s).
	Retry time.Duration
}

// Subscription is a running subscription.
type Subscription interface {
	// Close stops receiving, waits for the handler in flight to return, and releases resources.
	Close() error
}

// Bus is the port.
type Bus interface {
	// Publish appends a message to topic and returns its id. It honours ctx's deadline (the audit
	// client enqueues with a 50 ms timeout). ErrBacklogFull is returned when the topic's backlog cap
	// is reached and the adapter refuses rather than trims (see the adapter's options).
	Publish(ctx context.Context, topic string, msg Outgoing) (string, error)
	// Subscribe joins group on topic (creating the group if needed, starting from the oldest message
	// for a new group) and calls h with batches until ctx ends or the subscription is closed. Load is
	// shared across members of a group; each message is handled by one member.
	Subscribe(ctx context.Context, topic, group string, h BatchHandler, opts SubscribeOptions) (Subscription, error)
	// FanOut calls h for every message published to topic after the call, on every subscriber (each
	// edge replica sees every event). Order is publish order per topic.
	FanOut(ctx context.Context, topic string, h Handler) (Subscription, error)
	// Replay returns up to limit messages of topic with ids greater than after ("" or "0" for the
	// start), in order. It does not affect any group.
	Replay(ctx context.Context, topic, after string, limit int) ([]Message, error)
	// Delete removes messages from topic by id (used to drain a dead-letter topic after replay).
	Delete(ctx context.Context, topic string, ids ...string) error
	// Len reports how many messages topic holds (its backlog).
	Len(ctx context.Context, topic string) (int64, error)
	// Close stops every subscription and releases the adapter.
	Close() error
}

// Errors.
var (
	// ErrClosed is returned by operations on a closed bus.
	ErrClosed = errors.New("bus: closed")
	// ErrBacklogFull is returned by Publish when the topic holds its maximum backlog.
	ErrBacklogFull = errors.New("bus: backlog full")
)
