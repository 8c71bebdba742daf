package session

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

// TestStoreContract runs the Store contract on SQLite and PostgreSQL. Joins under concurrency are
// covered by TestConcurrentJoins on both databases.
func TestStoreContract(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		s := newSQLStore(db)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		mk := func(code string) Session {
			return Session{ID: newID(), TeacherID: teacher1, SchoolID: schoolA, Title: "t", Status: StatusCreated,
				TargetGroupSize: 4, LearningObjectives: []string{"a"}, AccessCode: code, CreatedAt: at, UpdatedAt: at,
				AIAnalysisEnabled: true}
		}
		first := mk("ABCDEF")
		g := NewGroup{Group: Group{ID: newID(), Name: "G", GroupNumber: 1, MaxSize: 4}, LeaderIndex: 0,
			Roster: []Student{{ID: newID(), DisplayName: "Ava", Under13: true}}}
		if err := s.CreateSession(t.Context(), first, []NewGroup{g}); err != nil {
			t.Fatal(err)
		}
		// The access code is unique among sessions that have not ended, and freed by ending.
		if err := s.CreateSession(t.Context(), mk("ABCDEF"), nil); !errors.Is(err, errCodeTaken) {
			t.Fatalf("second open session with the same code: %v, want errCodeTaken", err)
		}
		got, err := s.GetSession(t.Context(), first.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := first
		want.GroupCount, want.StudentCount = 1, 1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetSession (-want +got):\n%s", diff)
		}
		// Conditional status changes.
		if _, err := s.ChangeStatus(t.Context(), first.ID, StatusChange{From: StatusActive, To: StatusPaused, At: at}); !errors.Is(err, errStatusChanged) {
			t.Errorf("ChangeStatus from a status it is not in: %v, want errStatusChanged", err)
		}
		if _, err := s.ChangeStatus(t.Context(), newID(), StatusChange{From: StatusCreated, To: StatusActive, At: at}); !errors.Is(err, errNotFound) {
			t.Errorf("ChangeStatus of a missing session: %v, want errNotFound", err)
		}
		end := at.Add(time.Hour)
		ended, err := s.ChangeStatus(t.Context(), first.ID, StatusChange{From: StatusCreated, To: StatusEnded, At: end, ActualEnd: &end})
		if err != nil || ended.Status != StatusEnded || !ended.ActualEnd.Equal(end) {
			t.Fatalf("ChangeStatus to ended = %v, %v", ended, err)
		}
		if err := s.CreateSession(t.Context(), mk("ABCDEF"), nil); err != nil {
			t.Errorf("reusing an ended session's code: %v", err)
		}
		title := "new"
		if _, err := s.UpdateSession(t.Context(), first.ID, SessionPatch{Title: &title}, end); !errors.Is(err, ErrAlreadyEnded) {
			t.Errorf("UpdateSession of an ended session: %v, want ErrAlreadyEnded", err)
		}
		// Consent lives with the roster.
		c := Consent{StudentID: g.Roster[0].ID, GuardianName: "Pat", Method: "email", ConsentedAt: at, RecordedBy: teacher1}
		if _, err := s.RecordConsent(t.Context(), first.ID, c); err != nil {
			t.Fatal(err)
		}
		st, err := s.getStudent(t.Context(), db, g.Roster[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&c, st.Consent); diff != "" {
			t.Errorf("consent (-want +got):\n%s", diff)
		}
		if _, err := s.RecordConsent(t.Context(), first.ID, Consent{StudentID: newID(), ConsentedAt: at}); !errors.Is(err, errNotFound) {
			t.Errorf("consent for a non-member: %v, want errNotFound", err)
		}
		// Expiry and purge.
		ids, err := s.ExpiredSessions(t.Context(), end.Add(time.Second), 10)
		if err != nil || !cmp.Equal(ids, []string{first.ID}) {
			t.Fatalf("ExpiredSessions = %v, %v", ids, err)
		}
		if err := s.DeleteSessions(t.Context(), ids); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(t.Context(), first.ID); !errors.Is(err, errNotFound) {
			t.Errorf("GetSession after delete: %v", err)
		}
		if st, err := s.getStudent(t.Context(), db, g.Roster[0].ID); err != nil || st != nil {
			t.Errorf("student after purge = %v, %v; want deleted", st, err)
		}
	})
}

func TestTransition(t *testing.T) {
	tests := []struct {
		from Status
		a    Action
		to   Status
		err  error
	}{
		{StatusCreated, ActionStart, StatusActive, nil},
		{StatusActive, ActionStart, "", ErrAlreadyActive},
		{StatusPaused, ActionStart, "", ErrAlreadyStarted},
		{StatusActive, ActionPause, StatusPaused, nil},
		{StatusCreated, ActionPause, "", ErrNotActive},
		{StatusPaused, ActionResume, StatusActive, nil},
		{StatusActive, ActionResume, "", ErrNotPaused},
		{StatusCreated, ActionEnd, StatusEnded, nil},
		{StatusPaused, ActionEnd, StatusEnded, nil},
		{StatusEnded, ActionEnd, "", ErrAlreadyEnded},
		{StatusEnded, ActionStart, "", ErrAlreadyEnded},
	}
	for _, tc := range tests {
		got, err := Transition(tc.from, tc.a)
		if got != tc.to || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Transition(%s, %s) = %q, %v; want %q, %v", tc.from, tc.a, got, err, tc.to, tc.err)
		}
	}
}

func TestDeletionDate(t *testing.T) {
	// 2555 days = 7 × 365 days; 2028 and 2032 are leap years, so two days short of 7 calendar years.
	end := time.Date(2026, 1, 31, 15, 0, 0, 0, time.UTC)
	if got, want := DeletionDate(end, 2555), time.Date(2033, 1, 29, 15, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("DeletionDate = %v, want %v", got, want)
	}
}
