package delivery

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/bus"
)

func TestFailed(t *testing.T) {
	msgs := []bus.Message{{ID: "1-0"}, {ID: "2-0"}, {ID: "3-0"}}
	tests := []struct {
		name string
		err  error
		want map[string]bool
	}{
		{"nil acks all", nil, nil},
		{"plain error fails all", errors.New("x"), map[string]bool{"1-0": true, "2-0": true, "3-0": true}},
		{"batch error fails those listed", &bus.BatchError{Failed: []string{"2-0", "9-0"}}, map[string]bool{"2-0": true}},
		{"wrapped batch error", fmt.Errorf("db: %w", &bus.BatchError{Failed: []string{"3-0"}}), map[string]bool{"3-0": true}},
		{"empty batch error fails none", &bus.BatchError{}, map[string]bool{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Failed(tt.err, msgs)); diff != "" {
				t.Errorf("Failed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got := Defaults("audit:log", bus.SubscribeOptions{Consumer: "c", MaxDeliveries: -1})
	want := bus.SubscribeOptions{
		Consumer: "c", BatchSize: 100, MaxWait: DefaultMaxWait, ClaimIdle: DefaultClaimIdle,
		MaxDeliveries: -1, DeadLetterTopic: "audit:log:dlq", Retry: DefaultRetry,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Defaults (-want +got):\n%s", diff)
	}
	if Defaults("t", bus.SubscribeOptions{}).Consumer == "" {
		t.Error("no default consumer name")
	}
}

func TestDeadLetter(t *testing.T) {
	m := bus.Message{ID: "5-0", Topic: "t", Key: "k", Payload: []byte("p"), Headers: map[string]string{"trace-id": "x"}, Deliveries: 5}
	got := DeadLetter(m, "g", "boom")
	want := bus.Outgoing{Key: "k", Payload: []byte("p"), Headers: map[string]string{
		"trace-id": "x", bus.HeaderDLQReason: "boom", bus.HeaderDLQSourceTopic: "t",
		bus.HeaderDLQSourceID: "5-0", bus.HeaderDLQGroup: "g", bus.HeaderDLQDeliveries: "5",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DeadLetter (-want +got):\n%s", diff)
	}
	if m.Headers[bus.HeaderDLQReason] != "" {
		t.Error("DeadLetter modified the message's headers")
	}
}

func TestCallRecoversPanic(t *testing.T) {
	err := Call(t.Context(), func(context.Context, []bus.Message) error { panic("bad") }, nil)
	if err == nil {
		t.Fatal("Call returned nil after a panic")
	}
}
