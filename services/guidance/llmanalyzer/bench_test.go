package llmanalyzer_test

import (
	"context"
	"testing"
	"time"

	"github.com/classwaves/classwaves/pkg/llm"
	"github.com/classwaves/classwaves/pkg/llm/llmtest"
	"github.com/classwaves/classwaves/services/guidance/llmanalyzer"
)

// BenchmarkTier1 measures one Tier 1 analysis against the local server: prompt building and
// redaction, the HTTP round trip, and the answer's checks (the model's own time excluded).
func BenchmarkTier1(b *testing.B) {
	srv := llmtest.NewServer(b)
	answer := llmtest.JSON(tier1Answer())
	srv.Handle(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: answer} })
	c, err := llm.New(llm.Config{BaseURL: srv.URL(), Model: "gpt-4o-mini", Timeout: 5 * time.Second, Concurrency: 4, MaxTokens: 800})
	if err != nil {
		b.Fatal(err)
	}
	a, err := llmanalyzer.New(c, "llm:gpt-4o-mini", nil)
	if err != nil {
		b.Fatal(err)
	}
	in := tier1Input()
	for b.Loop() {
		if _, err := a.Tier1(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
