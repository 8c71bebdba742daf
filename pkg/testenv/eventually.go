package testenv

import (
	"testing"
	"time"
)

// EventuallyTimeout bounds Eventually's wait: a guard against hangs, not a speed assertion.
const EventuallyTimeout = 90 * time.Second

// Eventually polls cond until it holds, failing the test with "timed out waiting for <what>" after
// EventuallyTimeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
