package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/pkg/store/storetest"
	"github.com/classwaves/classwaves/services/auth/token"
)

// t0 is the contract's clock start (whole seconds: every dialect holds it exactly).
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// migratedStore returns the SQL store on a migrated db.
func migratedStore(t *testing.T, db *store.DB) *sqlStore {
	t.Helper()
	if err := Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	return newSQLStore(db)
}

// TestStoreContract runs the Store contract against every provider.
func TestStoreContract(t *testing.T) {
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		st := migratedStore(t, db)
		t.Run("migrate again", func(t *testing.T) {
			if err := Migrate(t.Context(), db); err != nil {
				t.Fatalf("second Migrate() = %v, want nil", err)
			}
		})
		t.Run("schools", func(t *testing.T) { testSchools(t, st) })
		t.Run("teachers", func(t *testing.T) { testTeachers(t, st) })
		t.Run("seat limit under concurrency", func(t *testing.T) { testSeatLimit(t, st) })
		t.Run("same first sign-in twice at once", func(t *testing.T) { testConcurrentFirstSignIn(t, st) })
		t.Run("refresh families", func(t *testing.T) { testFamilies(t, st) })
		t.Run("concurrent rotations", func(t *testing.T) { testConcurrentRotations(t, st) })
		t.Run("rotation against revocation", func(t *testing.T) { testRotateVsRevoke(t, st) })
		t.Run("oauth states", func(t *testing.T) { testOAuthStates(t, st) })
		t.Run("dev seed", func(t *testing.T) { testSeedDev(t, st) })
	})
}

// newTestSchool stores a school of domain and returns it.
func newTestSchool(t *testing.T, st Store, name, domain string, maxTeachers int) School {
	t.Helper()
	s := School{
		ID: uuid.NewString(), Name: name, Domain: domain, SubscriptionTier: TierFree,
		SubscriptionStatus: SubscriptionActive, MaxTeachers: maxTeachers, CreatedAt: t0, UpdatedAt: t0,
	}
	if err := st.CreateSchool(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func testSchools(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	a := newTestSchool(t, st, "Lincoln High", "lincoln.example.org", 0)
	b := newTestSchool(t, st, "Adams_Middle 100%", "adams.example.org", 5)

	if err := st.CreateSchool(ctx, School{ID: uuid.NewString(), Name: "X", Domain: a.Domain, SubscriptionTier: TierFree,
		SubscriptionStatus: SubscriptionActive, CreatedAt: t0, UpdatedAt: t0}); !errors.Is(err, ErrDomainTaken) {
		t.Errorf("CreateSchool(taken domain) = %v, want ErrDomainTaken", err)
	}
	got, err := st.GetSchool(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("GetSchool() mismatch (-want +got):\n%s", diff)
	}
	if got, err := st.SchoolByDomain(ctx, "adams.example.org"); err != nil || got.ID != b.ID {
		t.Errorf("SchoolByDomain() = %v, %v, want %s", got.ID, err, b.ID)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		if _, err := st.GetSchool(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSchool(%q) = %v, want ErrNotFound", id, err)
		}
	}

	t.Run("update", func(t *testing.T) {
		name, status, limit, ferpa := "Lincoln High School", SubscriptionTrial, 40, true
		got, err := st.UpdateSchool(ctx, a.ID, SchoolUpdate{Name: &name, SubscriptionStatus: &status, MaxTeachers: &limit, FERPAAgreement: &ferpa}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.Name, want.SubscriptionStatus, want.MaxTeachers, want.FERPAAgreement, want.UpdatedAt = name, status, limit, ferpa, t0.Add(time.Hour)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateSchool() mismatch (-want +got):\n%s", diff)
		}
		taken := b.Domain
		if _, err := st.UpdateSchool(ctx, a.ID, SchoolUpdate{Domain: &taken}, t0); !errors.Is(err, ErrDomainTaken) {
			t.Errorf("UpdateSchool(taken domain) = %v, want ErrDomainTaken", err)
		}
		if _, err := st.UpdateSchool(ctx, uuid.NewString(), SchoolUpdate{Name: &name}, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateSchool(unknown) = %v, want ErrNotFound", err)
		}
		if again, _ := st.GetSchool(ctx, a.ID); again.Domain != a.Domain {
			t.Errorf("a refused update changed the domain to %q", again.Domain)
		}
	})

	t.Run("list", func(t *testing.T) {
		c := newTestSchool(t, st, "Carver Elementary", "carver.example.org", 0)
		tests := []struct {
			query     string
			wantIDs   []string
			wantTotal int
		}{
			{"", []string{b.ID, c.ID, a.ID}, 3},
			{"LINCOLN", []string{a.ID}, 1},
			{"example.org", []string{b.ID, c.ID, a.ID}, 3},
			{"100%", []string{b.ID}, 1},
			{"_", []string{b.ID}, 1}, // a literal underscore, not LIKE's any-character
			{"%", []string{b.ID}, 1},
			{"nothing", nil, 0},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				got, total, err := st.ListSchools(ctx, SchoolQuery{Query: tt.query, Page: Page{Limit: 10}})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantIDs, schoolIDs(got)); diff != "" || total != tt.wantTotal {
					t.Errorf("ListSchools(%q) ids (-want +got):\n%s total %d, want %d", tt.query, diff, total, tt.wantTotal)
				}
			})
		}
		first, _, err := st.ListSchools(ctx, SchoolQuery{Page: Page{Limit: 2}})
		if err != nil {
			t.Fatal(err)
		}
		last := first[len(first)-1]
		rest, total, err := st.ListSchools(ctx, SchoolQuery{Page: Page{Limit: 2, After: &Cursor{Key: last.Name, ID: last.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{a.ID}, schoolIDs(rest)); diff != "" || total != 3 {
			t.Errorf("second page (-want +got):\n%s total %d", diff, total)
		}
	})
}

func schoolIDs(s []School) []string {
	var ids []string
	for _, x := range s {
		ids = append(ids, x.ID)
	}
	return ids
}

func signIn(school School, sub, email string, at time.Time) SignIn {
	return SignIn{GoogleID: sub, Email: email, Name: "T " + sub, Picture: "https://example.com/" + sub, SchoolID: school.ID, At: at, NewID: uuid.NewString()}
}

func testTeachers(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	school := newTestSchool(t, st, "Teachers High", "teachers.example.org", 0)
	other := newTestSchool(t, st, "Other High", "other.example.org", 0)

	in := signIn(school, "sub-1", "ann@teachers.example.org", t0)
	ann, created, err := st.SignInTeacher(ctx, in)
	if err != nil || !created {
		t.Fatalf("first SignInTeacher() = %v, created %v, want created", err, created)
	}
	want := Teacher{ID: in.NewID, GoogleID: "sub-1", Email: in.Email, Name: in.Name, Picture: in.Picture, SchoolID: school.ID,
		Role: RoleTeacher, Status: StatusActive, LastLoginAt: t0, CreatedAt: t0, UpdatedAt: t0}
	if diff := cmp.Diff(want, ann); diff != "" {
		t.Errorf("SignInTeacher() mismatch (-want +got):\n%s", diff)
	}
	if got, err := st.GetTeacher(ctx, ann.ID); err != nil || !cmp.Equal(want, got) {
		t.Errorf("GetTeacher() = %+v, %v, want %+v", got, err, want)
	}

	t.Run("again", func(t *testing.T) {
		again := signIn(school, "sub-1", "ann.new@teachers.example.org", t0.Add(time.Hour))
		again.Name, again.Picture = "", ""
		got, created, err := st.SignInTeacher(ctx, again)
		if err != nil || created {
			t.Fatalf("second SignInTeacher() = %v, created %v, want found", err, created)
		}
		w := want
		w.Email, w.LastLoginAt, w.UpdatedAt = again.Email, again.At, again.At
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("second SignInTeacher() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("provisioned teacher is linked", func(t *testing.T) {
		prov := Teacher{ID: uuid.NewString(), Email: "boss@teachers.example.org", SchoolID: school.ID, Role: RoleSuperAdmin,
			Status: StatusActive, CreatedAt: t0, UpdatedAt: t0}
		if err := st.CreateTeacher(ctx, prov); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateTeacher(ctx, prov); !errors.Is(err, ErrIdentityConflict) {
			t.Errorf("CreateTeacher(again) = %v, want ErrIdentityConflict", err)
		}
		got, created, err := st.SignInTeacher(ctx, signIn(school, "sub-boss", prov.Email, t0))
		if err != nil || created || got.ID != prov.ID || got.GoogleID != "sub-boss" || got.Role != RoleSuperAdmin {
			t.Errorf("SignInTeacher(provisioned) = %+v, created %v, %v; want the provisioned super admin, linked", got, created, err)
		}
		if byEmail, err := st.TeacherByEmail(ctx, prov.Email); err != nil || byEmail.ID != prov.ID {
			t.Errorf("TeacherByEmail() = %v, %v", byEmail.ID, err)
		}
	})

	refusals := []struct {
		name string
		in   SignIn
		want error
	}{
		{"e-mail linked to another account", signIn(school, "sub-other", "ann.new@teachers.example.org", t0), ErrIdentityConflict},
		{"teacher of another school", signIn(other, "sub-1", "ann.new@teachers.example.org", t0), ErrSchoolMismatch},
		{"unknown school", SignIn{GoogleID: "x", Email: "x@y.z", SchoolID: uuid.NewString(), At: t0, NewID: uuid.NewString()}, ErrNotFound},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := st.SignInTeacher(ctx, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("SignInTeacher() = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("new e-mail taken by another teacher", func(t *testing.T) {
		bob, _, err := st.SignInTeacher(ctx, signIn(school, "sub-bob", "bob@teachers.example.org", t0))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.SignInTeacher(ctx, signIn(school, "sub-bob", "ann.new@teachers.example.org", t0)); !errors.Is(err, ErrIdentityConflict) {
			t.Errorf("SignInTeacher(e-mail of ann) = %v, want ErrIdentityConflict", err)
		}
		if got, _ := st.GetTeacher(ctx, bob.ID); got.Email != "bob@teachers.example.org" {
			t.Errorf("refused sign-in changed the e-mail to %q", got.Email)
		}
	})

	t.Run("list and role", func(t *testing.T) {
		if _, _, err := st.SignInTeacher(ctx, signIn(other, "sub-zed", "zed@other.example.org", t0)); err != nil {
			t.Fatal(err)
		}
		all, err := st.ListTeachers(ctx, TeacherQuery{SchoolID: school.ID, Page: Page{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := emails(all), []string{"ann.new@teachers.example.org", "bob@teachers.example.org", "boss@teachers.example.org"}; !cmp.Equal(want, got) {
			t.Errorf("ListTeachers(school) = %v, want %v", got, want)
		}
		page, err := st.ListTeachers(ctx, TeacherQuery{SchoolID: school.ID, Page: Page{Limit: 2, After: &Cursor{Key: all[0].Email, ID: all[0].ID}}})
		if err != nil || len(page) != 2 || page[0].ID != all[1].ID {
			t.Errorf("ListTeachers(after first) = %v, %v", emails(page), err)
		}
		everyone, err := st.ListTeachers(ctx, TeacherQuery{Page: Page{Limit: 100}})
		if err != nil || len(everyone) < 4 {
			t.Errorf("ListTeachers(every school) = %d teachers, %v", len(everyone), err)
		}
		if none, err := st.ListTeachers(ctx, TeacherQuery{SchoolID: "nope", Page: Page{Limit: 10}}); err != nil || len(none) != 0 {
			t.Errorf("ListTeachers(malformed school id) = %v, %v, want none", none, err)
		}

		got, err := st.UpdateTeacherRole(ctx, ann.ID, RoleAdmin, "", t0.Add(2*time.Hour))
		if err != nil || got.Role != RoleAdmin || got.Status != StatusActive || !got.UpdatedAt.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("UpdateTeacherRole(admin) = %+v, %v", got, err)
		}
		got, err = st.UpdateTeacherRole(ctx, ann.ID, RoleAdmin, StatusSuspended, t0)
		if err != nil || got.Status != StatusSuspended {
			t.Errorf("UpdateTeacherRole(suspend) = %+v, %v", got, err)
		}
		if _, err := st.UpdateTeacherRole(ctx, uuid.NewString(), RoleAdmin, "", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateTeacherRole(unknown) = %v, want ErrNotFound", err)
		}
		s, _ := st.GetSchool(ctx, school.ID)
		if s.TeacherCount != 3 {
			t.Errorf("TeacherCount = %d, want 3", s.TeacherCount)
		}
	})
}

func emails(ts []Teacher) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Email)
	}
	return out
}

// testSeatLimit: more first sign-ins at once than the school has seats; exactly the seats are
// taken.
func testSeatLimit(t *testing.T, st *sqlStore) {
	school := newTestSchool(t, st, "Small School", "small.example.org", 3)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = st.SignInTeacher(context.Background(), signIn(school, fmt.Sprint("seat-", i), fmt.Sprintf("t%d@small.example.org", i), t0))
		})
	}
	wg.Wait()
	ok, limited := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrTeacherLimit):
			limited++
		default:
			t.Errorf("SignInTeacher() = %v", err)
		}
	}
	if ok != 3 || limited != n-3 {
		t.Errorf("%d signed in and %d refused, want 3 and %d", ok, limited, n-3)
	}
}

// testConcurrentFirstSignIn: the same person's first sign-in twice at once (a double click) both
// succeed, one of them creating the teacher.
func testConcurrentFirstSignIn(t *testing.T, st *sqlStore) {
	school := newTestSchool(t, st, "Double Click", "double.example.org", 0)
	for round := range 5 {
		sub, email := fmt.Sprint("dc-", round), fmt.Sprintf("dc%d@double.example.org", round)
		var wg sync.WaitGroup
		var created [2]bool
		var ids [2]string
		var errs [2]error
		for i := range 2 {
			wg.Go(func() {
				var tt Teacher
				tt, created[i], errs[i] = st.SignInTeacher(context.Background(), signIn(school, sub, email, t0))
				ids[i] = tt.ID
			})
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || created[0] == created[1] || ids[0] != ids[1] {
			t.Fatalf("round %d: errors %v, created %v, ids %v; want both signed in as one teacher, created once", round, errs, created, ids)
		}
	}
}

// newTestFamily stores a family of teacher with its first token and returns them.
func newTestFamily(t *testing.T, st Store, teacherID string, at time.Time) (Family, RefreshToken) {
	t.Helper()
	f := Family{ID: uuid.NewString(), TeacherID: teacherID, CreatedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour), LastUsedAt: at}
	tok := newTestToken(f, "", at)
	if err := st.CreateFamily(t.Context(), f, tok); err != nil {
		t.Fatal(err)
	}
	return f, tok
}

func newTestToken(f Family, parent string, at time.Time) RefreshToken {
	_, hash, _ := newRefreshToken()
	return RefreshToken{ID: uuid.NewString(), Hash: hash, FamilyID: f.ID, ParentID: parent, TeacherID: f.TeacherID,
		IssuedAt: at, ExpiresAt: f.ExpiresAt, IdleExpiresAt: at.Add(7 * 24 * time.Hour)}
}

func newTestTeacher(t *testing.T, st Store, school School) Teacher {
	t.Helper()
	sub := uuid.NewString()
	tt, _, err := st.SignInTeacher(t.Context(), signIn(school, sub, sub+"@"+school.Domain, t0))
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func testFamilies(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	school := newTestSchool(t, st, "Family School", "family.example.org", 0)
	teacher := newTestTeacher(t, st, school)
	fam, first := newTestFamily(t, st, teacher.ID, t0)

	gotTok, gotFam, err := st.LookupRefreshToken(ctx, first.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, gotTok); diff != "" {
		t.Errorf("LookupRefreshToken() token (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fam, gotFam); diff != "" {
		t.Errorf("LookupRefreshToken() family (-want +got):\n%s", diff)
	}
	if _, _, err := st.LookupRefreshToken(ctx, make([]byte, 32)); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupRefreshToken(unknown) = %v, want ErrNotFound", err)
	}

	second := newTestToken(fam, first.ID, t0.Add(time.Hour))
	if err := st.RotateRefreshToken(ctx, first.ID, second, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	third := newTestToken(fam, first.ID, t0.Add(2*time.Hour))
	if err := st.RotateRefreshToken(ctx, first.ID, third, t0.Add(2*time.Hour)); !errors.Is(err, ErrStale) {
		t.Errorf("RotateRefreshToken(rotated token) = %v, want ErrStale", err)
	}
	if _, _, err := st.LookupRefreshToken(ctx, third.Hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused rotation stored its token: %v", err)
	}
	old, f, _ := st.LookupRefreshToken(ctx, first.Hash)
	if !old.RotatedAt.Equal(t0.Add(time.Hour)) || !f.LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after rotation: rotated_at %v, last_used_at %v, want %v", old.RotatedAt, f.LastUsedAt, t0.Add(time.Hour))
	}
	if got, _, _ := st.LookupRefreshToken(ctx, second.Hash); got.ParentID != first.ID {
		t.Errorf("successor parent = %q, want %q", got.ParentID, first.ID)
	}

	live, err := st.RevokeFamily(ctx, fam.ID, t0.Add(3*time.Hour), revokeReuse)
	if err != nil || !live {
		t.Fatalf("RevokeFamily() = %v, %v, want live", live, err)
	}
	if live, _ := st.RevokeFamily(ctx, fam.ID, t0.Add(4*time.Hour), revokeLogout); live {
		t.Error("RevokeFamily(revoked) reported a live family")
	}
	tok, f, _ := st.LookupRefreshToken(ctx, second.Hash)
	if !f.RevokedAt.Equal(t0.Add(3*time.Hour)) || f.RevokeReason != revokeReuse || !tok.RevokedAt.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("after revocation: family %+v, token revoked_at %v", f, tok.RevokedAt)
	}
	if err := st.RotateRefreshToken(ctx, second.ID, third, t0.Add(5*time.Hour)); !errors.Is(err, ErrStale) {
		t.Errorf("RotateRefreshToken(revoked family) = %v, want ErrStale", err)
	}

	t.Run("revoke all of a teacher", func(t *testing.T) {
		other := newTestTeacher(t, st, school)
		newTestFamily(t, st, teacher.ID, t0)
		newTestFamily(t, st, teacher.ID, t0)
		_, keep := newTestFamily(t, st, other.ID, t0)
		n, err := st.RevokeTeacherFamilies(ctx, teacher.ID, t0, revokeLogoutAll)
		if err != nil || n != 2 {
			t.Errorf("RevokeTeacherFamilies() = %d, %v, want 2 (the third family was revoked already)", n, err)
		}
		if _, f, _ := st.LookupRefreshToken(ctx, keep.Hash); !f.RevokedAt.IsZero() {
			t.Error("another teacher's family was revoked")
		}
		if n, err := st.RevokeTeacherFamilies(ctx, "nope", t0, revokeLogoutAll); err != nil || n != 0 {
			t.Errorf("RevokeTeacherFamilies(malformed id) = %d, %v", n, err)
		}
	})

	t.Run("expired families are deleted with their tokens", func(t *testing.T) {
		other := newTestTeacher(t, st, school)
		_, expired := newTestFamily(t, st, other.ID, t0.Add(-31*24*time.Hour))
		_, live := newTestFamily(t, st, other.ID, t0)
		n, err := st.DeleteExpiredFamilies(ctx, t0)
		if err != nil || n < 1 {
			t.Fatalf("DeleteExpiredFamilies() = %d, %v", n, err)
		}
		if _, _, err := st.LookupRefreshToken(ctx, expired.Hash); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of a deleted family: %v, want ErrNotFound", err)
		}
		if _, _, err := st.LookupRefreshToken(ctx, live.Hash); err != nil {
			t.Errorf("token of a live family: %v", err)
		}
	})
}

// testConcurrentRotations: many rotations of one token at once; exactly one wins.
func testConcurrentRotations(t *testing.T, st *sqlStore) {
	school := newTestSchool(t, st, "Race School", "race.example.org", 0)
	teacher := newTestTeacher(t, st, school)
	for round := range 5 {
		fam, first := newTestFamily(t, st, teacher.ID, t0)
		const n = 6
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = st.RotateRefreshToken(context.Background(), first.ID, newTestToken(fam, first.ID, t0), t0)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrStale):
				t.Errorf("round %d: RotateRefreshToken() = %v", round, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d rotations won, want exactly 1", round, won)
		}
	}
}

// testRotateVsRevoke: a rotation racing a revocation of its family never leaves a live token.
func testRotateVsRevoke(t *testing.T, st *sqlStore) {
	school := newTestSchool(t, st, "Revoke Race", "revoke-race.example.org", 0)
	teacher := newTestTeacher(t, st, school)
	for round := range 10 {
		fam, first := newTestFamily(t, st, teacher.ID, t0)
		next := newTestToken(fam, first.ID, t0)
		var wg sync.WaitGroup
		var rotErr, revErr error
		wg.Go(func() { rotErr = st.RotateRefreshToken(context.Background(), first.ID, next, t0) })
		wg.Go(func() { _, revErr = st.RevokeFamily(context.Background(), fam.ID, t0, revokeLogout) })
		wg.Wait()
		if revErr != nil || (rotErr != nil && !errors.Is(rotErr, ErrStale)) {
			t.Fatalf("round %d: rotate %v, revoke %v", round, rotErr, revErr)
		}
		if rotErr == nil {
			tok, f, err := st.LookupRefreshToken(context.Background(), next.Hash)
			if err != nil || f.RevokedAt.IsZero() || tok.RevokedAt.IsZero() {
				t.Fatalf("round %d: the rotated-in token survived the revocation: %+v %+v %v", round, tok, f, err)
			}
		}
	}
}

func testOAuthStates(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	mk := func(s string, expires time.Time) OAuthState {
		sum := sha256.Sum256([]byte(s))
		bind := sha256.Sum256([]byte("bind-" + s))
		return OAuthState{StateHash: sum[:], BindingHash: bind[:], CodeVerifier: "v-" + s, Nonce: "n-" + s, CreatedAt: t0, ExpiresAt: expires}
	}
	live, expired := mk("live", t0.Add(10*time.Minute)), mk("expired", t0.Add(time.Minute))
	for _, s := range []OAuthState{live, expired} {
		if err := st.SaveOAuthState(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.TakeOAuthState(ctx, live.StateHash, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(live, got); diff != "" {
		t.Errorf("TakeOAuthState() mismatch (-want +got):\n%s", diff)
	}
	if _, err := st.TakeOAuthState(ctx, live.StateHash, t0.Add(5*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("second TakeOAuthState() = %v, want ErrNotFound (single use)", err)
	}
	if _, err := st.TakeOAuthState(ctx, expired.StateHash, t0.Add(5*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("TakeOAuthState(expired) = %v, want ErrNotFound", err)
	}

	race := mk("race", t0.Add(10*time.Minute))
	if err := st.SaveOAuthState(ctx, race); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() { _, errs[i] = st.TakeOAuthState(context.Background(), race.StateHash, t0) })
	}
	wg.Wait()
	taken := 0
	for _, err := range errs {
		if err == nil {
			taken++
		} else if !errors.Is(err, ErrNotFound) {
			t.Error(err)
		}
	}
	if taken != 1 {
		t.Errorf("concurrent TakeOAuthState(): %d succeeded, want 1", taken)
	}

	if err := st.SaveOAuthState(ctx, mk("old", t0)); err != nil {
		t.Fatal(err)
	}
	if n, err := st.DeleteExpiredOAuthStates(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredOAuthStates() = %d, %v, want 1", n, err)
	}
}

func testSeedDev(t *testing.T, st *sqlStore) {
	ctx := t.Context()
	s := &Service{store: st, now: func() time.Time { return t0 }}
	for range 2 {
		if err := s.seedDev(ctx); err != nil {
			t.Fatalf("seedDev() = %v", err)
		}
	}
	teacher, err := st.GetTeacher(ctx, DevTeacherID)
	if err != nil || teacher.SchoolID != DevSchoolID || teacher.Email != DevTeacherEmail || teacher.Role != RoleTeacher {
		t.Errorf("dev teacher = %+v, %v", teacher, err)
	}
	school, err := st.SchoolByDomain(ctx, DevSchoolDomain)
	if err != nil || school.ID != DevSchoolID {
		t.Errorf("dev school = %+v, %v", school, err)
	}
}

// TestKeyStoreContract runs the token.KeyStore contract against the SQL KeyStore on every
// provider, and against token.MemoryStore, so the two behave alike.
func TestKeyStoreContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testKeyStore(t, token.NewMemoryStore()) })
	storetest.ForEachProvider(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		migratedStore(t, db)
		testKeyStore(t, NewKeyStore(db))
		t.Run("replicas", func(t *testing.T) { testKeySetReplicas(t, db) })
	})
}

func testKeyStore(t *testing.T, s token.KeyStore) {
	ctx := t.Context()
	k := func(id string, created time.Time) token.StoredKey {
		return token.StoredKey{ID: id, PrivateKeyPEM: []byte("pem-" + id), CreatedAt: created}
	}
	if err := s.RotateKey(ctx, "x", k("a", t0), t0); !errors.Is(err, token.ErrRotationConflict) {
		t.Fatalf("RotateKey(empty store, current x) = %v, want ErrRotationConflict", err)
	}
	if err := s.RotateKey(ctx, "", k("a", t0), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateKey(ctx, "", k("b", t0), t0); !errors.Is(err, token.ErrRotationConflict) {
		t.Fatalf("RotateKey(stale current \"\") = %v, want ErrRotationConflict", err)
	}
	if err := s.RotateKey(ctx, "a", k("b", t0.Add(time.Hour)), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateKey(ctx, "a", k("c", t0.Add(time.Hour)), t0); !errors.Is(err, token.ErrRotationConflict) {
		t.Fatalf("RotateKey(retired current) = %v, want ErrRotationConflict", err)
	}
	if err := s.RotateKey(ctx, "b", k("a", t0), t0); err == nil || errors.Is(err, token.ErrRotationConflict) {
		t.Fatalf("RotateKey(duplicate id) = %v, want a non-conflict error", err)
	}
	keys, err := s.LoadKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []token.StoredKey{
		{ID: "a", PrivateKeyPEM: []byte("pem-a"), CreatedAt: t0, RetiredAt: t0.Add(2 * time.Hour)},
		{ID: "b", PrivateKeyPEM: []byte("pem-b"), CreatedAt: t0.Add(time.Hour)},
	}
	if diff := cmp.Diff(want, keys, cmpopts.SortSlices(func(x, y token.StoredKey) bool { return x.ID < y.ID })); diff != "" {
		t.Errorf("LoadKeys() mismatch (-want +got):\n%s", diff)
	}
	if n, err := s.DeleteRetiredBefore(ctx, t0.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("DeleteRetiredBefore(retirement time) = %d, %v, want 0", n, err)
	}
	if n, err := s.DeleteRetiredBefore(ctx, t0.Add(3*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteRetiredBefore(later) = %d, %v, want 1 (the current key is never deleted)", n, err)
	}

	// Concurrent rotations from the same current key: one wins.
	fresh := []string{"r1", "r2", "r3", "r4"}
	cur := "b"
	var wg sync.WaitGroup
	errs := make([]error, len(fresh))
	for i, id := range fresh {
		wg.Go(func() { errs[i] = s.RotateKey(context.Background(), cur, k(id, t0), t0.Add(5*time.Hour)) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !errors.Is(err, token.ErrRotationConflict) {
			t.Errorf("concurrent RotateKey() = %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent rotations won, want 1", won)
	}
}

// testKeySetReplicas: two KeySets on one SQL store sign and verify each other's tokens.
func testKeySetReplicas(t *testing.T, db *store.DB) {
	ctx := t.Context()
	fresh := db.Table("auth", "signing_keys")
	if _, err := db.ExecContext(ctx, "DELETE FROM "+fresh); err != nil {
		t.Fatal(err)
	}
	a, err := token.NewKeySet(ctx, token.DefaultConfig(), jwtConfig(), NewKeyStore(db))
	if err != nil {
		t.Fatal(err)
	}
	b, err := token.NewKeySet(ctx, token.DefaultConfig(), jwtConfig(), NewKeyStore(db))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	iss, err := a.Issue(ctx, testPrincipal(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verifier().VerifyToken(ctx, iss.Token); err != nil {
		t.Errorf("replica b verifying a's token: %v", err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := len(b.JWKS()), 2; got != want {
		t.Errorf("replica b publishes %d keys, want %d", got, want)
	}
}
