package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)

// testID returns a stable UUID for n.
func testID(n int) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "audit-test-%d", n)).String()
}

// rec returns a plain record n seconds after t0.
func rec(n int) Record {
	return Record{
		ID:         testID(n),
		OccurredAt: t0.Add(time.Duration(n) * time.Second),
		ActorID:    "teacher-1",
		ActorType:  "teacher",
		EventType:  "session.start",
		Category:   "session",
		SchoolID:   "school-a",
		Priority:   "normal",
		Count:      1,
	}
}

// openStore migrates db and returns its store.
func openStore(t testing.TB, db *store.DB) *sqlStore {
	t.Helper()
	s := newSQLStore(db)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// all pages through q and returns every record.
func all(t testing.TB, s Store, q Query) []Record {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	var out []Record
	for range 10000 {
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		out = append(out, p.Records...)
		if p.Next == nil {
			return out
		}
		q.After = p.Next
	}
	t.Fatal("Query never reached the last page")
	return nil
}

func ids(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// TestStoreContract is the Store contract, run against every adapter: SQLite and PostgreSQL.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := openStore(t, db)
		ctx := context.Background()

		t.Run("round trip keeps every field", func(t *testing.T) {
			r := Record{
				ID:              testID(1000),
				OccurredAt:      time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
				ActorID:         "admin-1",
				ActorType:       "admin",
				EventType:       "consent.update",
				Category:        "compliance",
				ResourceType:    "student",
				ResourceID:      "student-9",
				SchoolID:        "school-rt",
				SessionID:       "session-rt",
				Description:     "consent recorded for [REDACTED_EMAIL] — naïve ☃",
				UserAgentHash:   strings.Repeat("ab", 32),
				ComplianceBasis: "consent",
				Priority:        "critical",
				Metadata:        map[string]string{"route": "/api/v1/x", "quote": `"x"`},
				Count:           3,
			}
			n, err := s.Insert(ctx, []Record{r})
			if err != nil || n != 1 {
				t.Fatalf("Insert = %d, %v; want 1, nil", n, err)
			}
			got := all(t, s, Query{SchoolID: "school-rt"})
			want := r
			want.OccurredAt = r.OccurredAt.Truncate(time.Microsecond)
			if diff := cmp.Diff([]Record{want}, got); diff != "" {
				t.Errorf("Query mismatch (-want +got):\n%s", diff)
			}
		})

		t.Run("insert is idempotent by id", func(t *testing.T) {
			batch := []Record{withSchool(rec(1), "school-idem"), withSchool(rec(2), "school-idem"), withSchool(rec(3), "school-idem")}
			tests := []struct {
				name string
				recs []Record
				want int
			}{
				{"new", batch, 3},
				{"same again", batch, 0},
				{"one new among old ones", append(append([]Record{}, batch...), withSchool(rec(4), "school-idem")), 1},
				{"duplicates within one call count once", []Record{withSchool(rec(5), "school-idem"), withSchool(rec(5), "school-idem")}, 1},
				{"empty", nil, 0},
			}
			for _, tt := range tests {
				n, err := s.Insert(ctx, tt.recs)
				if err != nil || n != tt.want {
					t.Errorf("%s: Insert = %d, %v; want %d, nil", tt.name, n, err, tt.want)
				}
			}
			if got := len(all(t, s, Query{SchoolID: "school-idem"})); got != 5 {
				t.Errorf("stored %d records, want 5", got)
			}
		})

		t.Run("a batch larger than one statement", func(t *testing.T) {
			var batch []Record
			for i := range 2*insertChunk + 7 {
				batch = append(batch, withSchool(rec(10000+i), "school-big"))
			}
			n, err := s.Insert(ctx, batch)
			if err != nil || n != len(batch) {
				t.Fatalf("Insert = %d, %v; want %d, nil", n, err, len(batch))
			}
			if got := len(all(t, s, Query{SchoolID: "school-big", Limit: 333})); got != len(batch) {
				t.Errorf("stored %d records, want %d", got, len(batch))
			}
		})

		t.Run("filters", func(t *testing.T) {
			mk := func(n int, mod func(*Record)) Record {
				r := withSchool(rec(20000+n), "school-f")
				mod(&r)
				return r
			}
			recs := []Record{
				mk(0, func(r *Record) {}),
				mk(1, func(r *Record) { r.ActorID = "teacher-2" }),
				mk(2, func(r *Record) { r.EventType = "auth.login"; r.Category = "authentication" }),
				mk(3, func(r *Record) { r.SessionID = "session-x" }),
				mk(4, func(r *Record) { r.SchoolID = "school-g" }),
				mk(5, func(r *Record) { r.SessionID = "session-x"; r.ActorID = "teacher-2" }),
			}
			if _, err := s.Insert(ctx, recs); err != nil {
				t.Fatal(err)
			}
			at := func(n int) time.Time { return recs[n].OccurredAt }
			tests := []struct {
				name string
				q    Query
				want []int // indexes into recs, newest first
			}{
				{"school", Query{SchoolID: "school-f"}, []int{5, 3, 2, 1, 0}},
				{"other school", Query{SchoolID: "school-g"}, []int{4}},
				{"actor", Query{SchoolID: "school-f", ActorID: "teacher-2"}, []int{5, 1}},
				{"event type", Query{SchoolID: "school-f", EventType: "auth.login"}, []int{2}},
				{"category", Query{SchoolID: "school-f", Category: "authentication"}, []int{2}},
				{"session", Query{SessionID: "session-x"}, []int{5, 3}},
				{"from is inclusive", Query{SchoolID: "school-f", From: at(3)}, []int{5, 3}},
				{"to is exclusive", Query{SchoolID: "school-f", To: at(2)}, []int{1, 0}},
				{"range", Query{SchoolID: "school-f", From: at(1), To: at(5)}, []int{3, 2, 1}},
				{"combined", Query{SchoolID: "school-f", ActorID: "teacher-2", SessionID: "session-x"}, []int{5}},
				{"nothing", Query{SchoolID: "school-none"}, nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var want []string
					for _, i := range tt.want {
						want = append(want, recs[i].ID)
					}
					if diff := cmp.Diff(want, ids(all(t, s, tt.q)), cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("Query(%s) ids mismatch (-want +got):\n%s", tt.name, diff)
					}
				})
			}
		})

		t.Run("keyset paging: newest first, ties by id, every record once", func(t *testing.T) {
			var recs []Record
			for i := range 23 {
				r := withSchool(rec(30000+i), "school-p")
				r.OccurredAt = t0.Add(time.Duration(i/4) * time.Minute) // groups of 4 share a time
				recs = append(recs, r)
			}
			if _, err := s.Insert(ctx, recs); err != nil {
				t.Fatal(err)
			}
			want := all(t, s, Query{SchoolID: "school-p", Limit: 1000})
			for i := 1; i < len(want); i++ {
				a, b := want[i-1], want[i]
				if a.OccurredAt.Before(b.OccurredAt) || (a.OccurredAt.Equal(b.OccurredAt) && a.ID <= b.ID) {
					t.Fatalf("records %d and %d are out of (occurred_at desc, id desc) order", i-1, i)
				}
			}
			for _, size := range []int{1, 3, 4, 5, 22, 23, 24} {
				var got []Record
				q := Query{SchoolID: "school-p", Limit: size}
				pages := 0
				for {
					p, err := s.Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if len(p.Records) > size {
						t.Fatalf("page of %d records, limit %d", len(p.Records), size)
					}
					got = append(got, p.Records...)
					if p.Next == nil {
						break
					}
					q.After = p.Next
				}
				if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
					t.Errorf("page size %d: ids mismatch (-want +got):\n%s", size, diff)
				}
				if wantPages := (len(want) + size - 1) / size; pages != wantPages {
					t.Errorf("page size %d: %d pages, want %d", size, pages, wantPages)
				}
			}
		})

		t.Run("limit must be positive", func(t *testing.T) {
			if _, err := s.Query(ctx, Query{}); err == nil {
				t.Error("Query with Limit 0 succeeded")
			}
		})

		t.Run("migrating again changes nothing", func(t *testing.T) {
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
		})

		t.Run("a closed database is not a rejection", func(t *testing.T) {
			db2 := reopen(t, db)
			s2 := newSQLStore(db2)
			db2.Close()
			_, err := s2.Insert(ctx, []Record{rec(40000)})
			if err == nil || errors.Is(err, ErrRejected) {
				t.Errorf("Insert on a closed database = %v, want a transient error", err)
			}
			if err := s2.Ping(ctx); err == nil {
				t.Error("Ping on a closed database succeeded")
			}
		})
	})
}

func withSchool(r Record, school string) Record {
	r.SchoolID = school
	return r
}

// reopen opens a second pool on db's database.
func reopen(t *testing.T, db *store.DB) *store.DB {
	t.Helper()
	if db.Provider() == store.Postgres {
		return storetest.OpenPostgres(t)
	}
	return storetest.OpenSQLite(t)
}

// TestPostgresRejectsNUL checks the classification of a row PostgreSQL refuses for its content:
// a NUL byte in text. (SQLite stores it, so this is PostgreSQL only; the worker scrubs NULs out
// anyway, this is the last line.)
func TestPostgresRejectsNUL(t *testing.T) {
	t.Parallel()
	s := openStore(t, storetest.OpenPostgres(t))
	r := rec(1)
	r.Description = "a\x00b"
	_, err := s.Insert(context.Background(), []Record{r})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("Insert with NUL = %v, want ErrRejected", err)
	}
}

func TestPageToken(t *testing.T) {
	c := Cursor{OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ID: testID(1)}
	got, err := DecodePageToken(EncodePageToken(c))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "!!", "djF8MXwy", EncodePageToken(Cursor{ID: "not-a-uuid"}), EncodePageToken(Cursor{ID: strings.ToUpper(testID(1))})} {
		if _, err := DecodePageToken(bad); err == nil {
			t.Errorf("DecodePageToken(%q) succeeded", bad)
		}
	}
}
