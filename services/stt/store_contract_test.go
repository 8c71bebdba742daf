package stt

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// TestStoreContract is the Store contract, run against every adapter: SQLite and PostgreSQL.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := newSQLStore(db)
		ctx := context.Background()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil { // idempotent
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

		t.Run("transcripts round trip, idempotently, in window order", func(t *testing.T) {
			session, group := newID(), newID()
			full := Transcript{
				ID: newID(), SessionID: session, GroupID: group, SchoolID: schoolA,
				WindowStart: t0.Add(15*time.Second + 123456789), WindowEnd: t0.Add(30 * time.Second),
				Text: "Plants need water — naïve ☃ \"quoted\"", Confidence: 0.875, Language: "en",
				Segments: []Segment{
					{Start: 0, End: 4.5, Text: "Plants need water", Confidence: 0.9, AvgLogprob: -0.1, NoSpeechProb: 0.01},
					{Start: 4.5, End: 6, Text: "— naïve ☃ \"quoted\"", Confidence: 0.8, AvgLogprob: -0.2, NoSpeechProb: 0.05},
				},
				SpeechSeconds: 12.5, CreatedAt: t0.Add(31 * time.Second),
			}
			bare := Transcript{ID: newID(), SessionID: session, GroupID: newID(), SchoolID: schoolA,
				WindowStart: t0, WindowEnd: t0.Add(15 * time.Second), Text: "first", CreatedAt: t0}
			for _, tr := range []Transcript{full, bare, full} {
				if err := s.InsertTranscript(ctx, tr); err != nil {
					t.Fatal(err)
				}
			}
			changed := full
			changed.Text = "not stored: the id exists"
			if err := s.InsertTranscript(ctx, changed); err != nil {
				t.Fatal(err)
			}
			page, err := s.ListTranscripts(ctx, TranscriptQuery{SessionID: session, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			wantFull := full
			wantFull.WindowStart = full.WindowStart.Truncate(time.Microsecond)
			if diff := cmp.Diff(TranscriptPage{Transcripts: []Transcript{bare, wantFull}}, page); diff != "" {
				t.Errorf("ListTranscripts mismatch (-want +got):\n%s", diff)
			}
			school, found, err := s.SessionSchool(ctx, session)
			if err != nil || !found || school != schoolA {
				t.Errorf("SessionSchool = %q, %v, %v", school, found, err)
			}
			if _, found, err := s.SessionSchool(ctx, newID()); err != nil || found {
				t.Errorf("SessionSchool(unknown) found %v, %v", found, err)
			}
		})

		t.Run("paging, groups and since", func(t *testing.T) {
			session, g1, g2 := newID(), newID(), newID()
			var ids []string
			for i := range 7 {
				g := g1
				if i%3 == 2 {
					g = g2
				}
				// Two windows share a start: the id breaks the tie.
				start := t0.Add(time.Duration(i/2) * 15 * time.Second)
				tr := Transcript{ID: newID(), SessionID: session, GroupID: g, SchoolID: schoolA,
					WindowStart: start, WindowEnd: start.Add(15 * time.Second), Text: "t", CreatedAt: t0}
				if err := s.InsertTranscript(ctx, tr); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, tr.ID)
			}
			all := func(q TranscriptQuery) []string {
				var out []string
				for range 20 {
					p, err := s.ListTranscripts(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for _, tr := range p.Transcripts {
						out = append(out, tr.ID)
					}
					if p.Next == nil {
						return out
					}
					q.After = p.Next
				}
				t.Fatal("never reached the last page")
				return nil
			}
			got := all(TranscriptQuery{SessionID: session, Limit: 2})
			if len(got) != 7 {
				t.Fatalf("listed %d of 7", len(got))
			}
			seen := map[string]bool{}
			for _, id := range got {
				seen[id] = true
			}
			if len(seen) != 7 {
				t.Errorf("paging repeated or skipped: %v", got)
			}
			g2only := all(TranscriptQuery{SessionID: session, GroupID: g2, Limit: 1})
			if diff := cmp.Diff([]string{ids[2], ids[5]}, g2only); diff != "" {
				t.Errorf("group filter mismatch (-want +got):\n%s", diff)
			}
			since := all(TranscriptQuery{SessionID: session, Since: t0.Add(45 * time.Second), Limit: 5})
			if diff := cmp.Diff([]string{ids[6]}, since); diff != "" {
				t.Errorf("since filter mismatch (-want +got):\n%s", diff)
			}
		})

		t.Run("usage is added atomically up to the limit", func(t *testing.T) {
			school, today := newID(), "2026-11-25"
			used, added, err := s.AddUsage(ctx, school, today, 15, 40)
			if err != nil || !added || used != 15 {
				t.Fatalf("AddUsage = %v, %v, %v; want 15, true", used, added, err)
			}
			var wg sync.WaitGroup
			results := make(chan bool, 10)
			for range 10 {
				wg.Go(func() {
					_, added, err := s.AddUsage(ctx, school, today, 10, 40)
					if err != nil {
						t.Error(err)
					}
					results <- added
				})
			}
			wg.Wait()
			close(results)
			n := 0
			for a := range results {
				if a {
					n++
				}
			}
			// 15 -> 25 -> 35 -> 45: three adds while under 40, then refused.
			if n != 3 {
				t.Errorf("%d concurrent adds accepted, want 3", n)
			}
			used, added, err = s.AddUsage(ctx, school, today, 10, 40)
			if err != nil || added || used != 45 {
				t.Errorf("AddUsage over the limit = %v, %v, %v; want 45, false", used, added, err)
			}
			if _, added, _ := s.AddUsage(ctx, school, today, 10, 0); !added {
				t.Error("AddUsage without a limit refused")
			}
			if err := s.RefundUsage(ctx, school, today, 20); err != nil {
				t.Fatal(err)
			}
			if err := s.RefundUsage(ctx, school, "2026-11-26", 20); err != nil { // no row: nothing
				t.Fatal(err)
			}
			u, err := s.Usage(ctx, school, today)
			if err != nil || u.Seconds != 35 {
				t.Errorf("Usage = %+v, %v; want 35 s", u, err)
			}
			if err := s.RefundUsage(ctx, school, today, 1000); err != nil {
				t.Fatal(err)
			}
			if u, _ := s.Usage(ctx, school, today); u.Seconds != 0 {
				t.Errorf("refund went below zero: %v", u.Seconds)
			}
			if u, err := s.Usage(ctx, newID(), today); err != nil || u.Seconds != 0 || u.AlertsSent != nil {
				t.Errorf("Usage(unknown) = %+v, %v", u, err)
			}
		})

		t.Run("alerts are claimed once", func(t *testing.T) {
			school, today := newID(), "2026-11-25"
			var wg sync.WaitGroup
			claims := make(chan bool, 8)
			for range 8 {
				wg.Go(func() {
					c, err := s.ClaimAlert(ctx, school, today, 75)
					if err != nil {
						t.Error(err)
					}
					claims <- c
				})
			}
			wg.Wait()
			close(claims)
			n := 0
			for c := range claims {
				if c {
					n++
				}
			}
			if n != 1 {
				t.Errorf("alert claimed %d times, want once", n)
			}
			for _, p := range []int{100, 50} {
				if c, err := s.ClaimAlert(ctx, school, today, p); err != nil || !c {
					t.Errorf("ClaimAlert(%d) = %v, %v", p, c, err)
				}
			}
			if c, _ := s.ClaimAlert(ctx, school, "2026-11-26", 75); !c {
				t.Error("the next day's alert was already claimed")
			}
			u, err := s.Usage(ctx, school, today)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int{50, 75, 100}, u.AlertsSent); diff != "" {
				t.Errorf("AlertsSent mismatch (-want +got):\n%s", diff)
			}
		})
	})
}
