package bus

// Headers the adapters set on a dead-lettered message, besides the message's own headers. The
// first three are the contract named by SubscribeOptions.DeadLetterTopic; the others help an
// operator decide what to do with it.
const (
	// HeaderDLQReason says why the message was dead-lettered: the handler's last error, "malformed
	// entry: ..." for an entry the adapter could not decode, or "delivered N times without ack".
	HeaderDLQReason = "dlq-reason"
	// HeaderDLQSourceTopic is the topic the message was published to.
	HeaderDLQSourceTopic = "dlq-source-topic"
	// HeaderDLQSourceID is the message's id in its source topic.
	HeaderDLQSourceID = "dlq-source-id"
	// HeaderDLQGroup is the consumer group that gave up on the message.
	HeaderDLQGroup = "dlq-group"
	// HeaderDLQDeliveries is how many times the group had delivered the message.
	HeaderDLQDeliveries = "dlq-deliveries"
)
