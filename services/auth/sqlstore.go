package auth

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/store"
)

// migrationsFS holds the auth service's migrations: migrations/postgres/NNN_*.sql and
// migrations/sqlite/NNN_*.sql.
//
//go:embed migrations
var migrationsFS embed.FS

// MigrationService is the name the auth service's migrations are recorded under.
const MigrationService = "auth"

// Migrations returns the service's embedded migrations, rooted so that store.Migrate finds the
// "postgres" and "sqlite" directories (for `classwaves db migrate`).
func Migrations() fs.FS { return store.EmbeddedMigrations(migrationsFS) }

// Migrate applies the auth service's migrations to db. Start does it too; call it first when the
// KeyStore is needed before the service starts (the KeySet is built before New).
func Migrate(ctx context.Context, db *store.DB) error {
	return db.Migrate(ctx, MigrationService, Migrations())
}

// sqlStore is the Store adapter over *store.DB for SQLite and PostgreSQL. The dialects differ in
// column types only (UUID/TEXT, TIMESTAMPTZ/Unix microseconds, BOOLEAN/0-1, BYTEA/BLOB); every
// query is one text, with ? placeholders rebound for PostgreSQL.
type sqlStore struct {
	db       *store.DB
	postgres bool

	schools, teachers, families, tokens, states string
	schoolCols, teacherCols                     string
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db *store.DB) *sqlStore {
	s := &sqlStore{
		db:       db,
		postgres: db.Provider() == store.Postgres,
		schools:  db.Table("users", "schools"),
		teachers: db.Table("users", "teachers"),
		families: db.Table("auth", "refresh_families"),
		tokens:   db.Table("auth", "refresh_tokens"),
		states:   db.Table("auth", "oauth_states"),
	}
	s.schoolCols = "s.id, s.name, s.domain, s.subscription_tier, s.subscription_status, s.max_teachers, " +
		"s.stt_minutes_per_day, s.ferpa_agreement, s.coppa_compliant, s.created_at, s.updated_at, " +
		"(SELECT COUNT(*) FROM " + s.teachers + " c WHERE c.school_id = s.id)"
	s.teacherCols = "t.id, t.google_id, t.email, t.name, t.picture, t.school_id, t.role, t.status, " +
		"t.last_login_at, t.created_at, t.updated_at"
	return s
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// --- dialect helpers ---

// at is t as the dialect's time columns hold it: UTC to the microsecond (PostgreSQL's precision),
// or Unix microseconds in SQLite.
func (s *sqlStore) at(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.postgres {
		return t
	}
	return t.UnixMicro()
}

// nullAt is at for a nullable column: NULL for the zero time.
func (s *sqlStore) nullAt(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.at(t)
}

// nullStr is NULL for "".
func nullStr(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// dbTime scans a time column in either dialect; NULL scans as the zero time.
type dbTime struct{ t *time.Time }

func (d dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d.t = time.Time{}
	case time.Time:
		*d.t = x.UTC()
	case int64:
		*d.t = time.UnixMicro(x).UTC()
	default:
		return fmt.Errorf("auth store: time column of type %T", v)
	}
	return nil
}

// dbStr scans a nullable text column; NULL scans as "".
type dbStr struct{ s *string }

func (d dbStr) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d.s = ""
	case string:
		*d.s = x
	case []byte:
		*d.s = string(x)
	default:
		return fmt.Errorf("auth store: text column of type %T", v)
	}
	return nil
}

// isUUID reports whether id can be a row id. PostgreSQL refuses a malformed UUID with an error;
// looking one up must simply find nothing, in both dialects.
func isUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == strings.ToLower(id)
}

func (s *sqlStore) q(query string) string { return s.db.Rebind(query) }

// rowsAffected returns the rows an Exec changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// --- schools ---

func scanSchool(sc interface{ Scan(...any) error }) (School, error) {
	var x School
	err := sc.Scan(&x.ID, &x.Name, &x.Domain, &x.SubscriptionTier, &x.SubscriptionStatus, &x.MaxTeachers,
		&x.STTMinutesPerDay, &x.FERPAAgreement, &x.COPPACompliant, dbTime{&x.CreatedAt}, dbTime{&x.UpdatedAt},
		&x.TeacherCount)
	return x, err
}

// CreateSchool implements Store.
func (s *sqlStore) CreateSchool(ctx context.Context, x School) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO "+s.schools+
		" (id, name, domain, subscription_tier, subscription_status, max_teachers, stt_minutes_per_day,"+
		" ferpa_agreement, coppa_compliant, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		x.ID, x.Name, x.Domain, x.SubscriptionTier, x.SubscriptionStatus, x.MaxTeachers, x.STTMinutesPerDay,
		x.FERPAAgreement, x.COPPACompliant, s.at(x.CreatedAt), s.at(x.UpdatedAt))
	if store.IsUniqueViolation(err) {
		return ErrDomainTaken
	}
	if err != nil {
		return fmt.Errorf("auth store: create school: %w", err)
	}
	return nil
}

// UpdateSchool implements Store.
func (s *sqlStore) UpdateSchool(ctx context.Context, id string, u SchoolUpdate, at time.Time) (School, error) {
	if !isUUID(id) {
		return School{}, ErrNotFound
	}
	var sets []string
	var args []any
	set := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
	}
	if u.Name != nil {
		set("name", *u.Name)
	}
	if u.Domain != nil {
		set("domain", *u.Domain)
	}
	if u.SubscriptionTier != nil {
		set("subscription_tier", *u.SubscriptionTier)
	}
	if u.SubscriptionStatus != nil {
		set("subscription_status", *u.SubscriptionStatus)
	}
	if u.MaxTeachers != nil {
		set("max_teachers", *u.MaxTeachers)
	}
	if u.STTMinutesPerDay != nil {
		set("stt_minutes_per_day", *u.STTMinutesPerDay)
	}
	if u.FERPAAgreement != nil {
		set("ferpa_agreement", *u.FERPAAgreement)
	}
	if u.COPPACompliant != nil {
		set("coppa_compliant", *u.COPPACompliant)
	}
	set("updated_at", s.at(at))
	args = append(args, id)
	var out School
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.schools+" SET "+strings.Join(sets, ", ")+" WHERE id = ?"), args...))
		if store.IsUniqueViolation(err) {
			return ErrDomainTaken
		}
		if err != nil {
			return fmt.Errorf("auth store: update school: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		out, err = s.schoolWhere(ctx, tx, "s.id = ?", id)
		return err
	})
	return out, err
}

func (s *sqlStore) schoolWhere(ctx context.Context, q queryer, where string, args ...any) (School, error) {
	x, err := scanSchool(q.QueryRowContext(ctx, s.q("SELECT "+s.schoolCols+" FROM "+s.schools+" s WHERE "+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return School{}, ErrNotFound
	}
	if err != nil {
		return School{}, fmt.Errorf("auth store: get school: %w", err)
	}
	return x, nil
}

// GetSchool implements Store.
func (s *sqlStore) GetSchool(ctx context.Context, id string) (School, error) {
	if !isUUID(id) {
		return School{}, ErrNotFound
	}
	return s.schoolWhere(ctx, s.db, "s.id = ?", id)
}

// SchoolByDomain implements Store.
func (s *sqlStore) SchoolByDomain(ctx context.Context, domain string) (School, error) {
	return s.schoolWhere(ctx, s.db, "s.domain = ?", domain)
}

// likePattern is a LIKE pattern matching sub anywhere, with LIKE's wildcards in sub escaped (ESCAPE '\').
func likePattern(sub string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(sub)) + "%"
}

// ListSchools implements Store.
func (s *sqlStore) ListSchools(ctx context.Context, q SchoolQuery) ([]School, int, error) {
	var where []string
	var args []any
	if q.Query != "" {
		p := likePattern(q.Query)
		where = append(where, `(LOWER(s.name) LIKE ? ESCAPE '\' OR s.domain LIKE ? ESCAPE '\')`)
		args = append(args, p, p)
	}
	filter := ""
	if len(where) > 0 {
		filter = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM "+s.schools+" s"+filter), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("auth store: count schools: %w", err)
	}
	if q.After != nil {
		if !isUUID(q.After.ID) {
			return nil, total, nil
		}
		where = append(where, "(s.name > ? OR (s.name = ? AND s.id > ?))")
		args = append(args, q.After.Key, q.After.Key, q.After.ID)
	}
	query := "SELECT " + s.schoolCols + " FROM " + s.schools + " s"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY s.name, s.id LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("auth store: list schools: %w", err)
	}
	defer rows.Close()
	var out []School
	for rows.Next() {
		x, err := scanSchool(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("auth store: list schools: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("auth store: list schools: %w", err)
	}
	return out, total, nil
}

// --- teachers ---

func scanTeacher(sc interface{ Scan(...any) error }) (Teacher, error) {
	var t Teacher
	err := sc.Scan(&t.ID, dbStr{&t.GoogleID}, &t.Email, &t.Name, &t.Picture, &t.SchoolID, &t.Role, &t.Status,
		dbTime{&t.LastLoginAt}, dbTime{&t.CreatedAt}, dbTime{&t.UpdatedAt})
	return t, err
}

func (s *sqlStore) teacherWhere(ctx context.Context, q queryer, where string, args ...any) (Teacher, error) {
	t, err := scanTeacher(q.QueryRowContext(ctx, s.q("SELECT "+s.teacherCols+" FROM "+s.teachers+" t WHERE "+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Teacher{}, ErrNotFound
	}
	if err != nil {
		return Teacher{}, fmt.Errorf("auth store: get teacher: %w", err)
	}
	return t, nil
}

// GetTeacher implements Store.
func (s *sqlStore) GetTeacher(ctx context.Context, id string) (Teacher, error) {
	if !isUUID(id) {
		return Teacher{}, ErrNotFound
	}
	return s.teacherWhere(ctx, s.db, "t.id = ?", id)
}

// TeacherByEmail implements Store.
func (s *sqlStore) TeacherByEmail(ctx context.Context, email string) (Teacher, error) {
	return s.teacherWhere(ctx, s.db, "t.email = ?", email)
}

func (s *sqlStore) insertTeacher(ctx context.Context, q queryer, t Teacher) error {
	_, err := q.ExecContext(ctx, s.q("INSERT INTO "+s.teachers+
		" (id, google_id, email, name, picture, school_id, role, status, last_login_at, created_at, updated_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		t.ID, nullStr(t.GoogleID), t.Email, t.Name, t.Picture, t.SchoolID, t.Role, t.Status,
		s.nullAt(t.LastLoginAt), s.at(t.CreatedAt), s.at(t.UpdatedAt))
	return err
}

// CreateTeacher implements Store.
func (s *sqlStore) CreateTeacher(ctx context.Context, t Teacher) error {
	err := s.insertTeacher(ctx, s.db, t)
	if store.IsUniqueViolation(err) {
		return ErrIdentityConflict
	}
	if err != nil {
		return fmt.Errorf("auth store: create teacher: %w", err)
	}
	return nil
}

// errRetrySignIn is a unique violation on creating a teacher: a concurrent first sign-in of the
// same person won. The sign-in is tried once more, and then finds that teacher.
var errRetrySignIn = errors.New("auth store: concurrent first sign-in")

// SignInTeacher implements Store.
func (s *sqlStore) SignInTeacher(ctx context.Context, in SignIn) (Teacher, bool, error) {
	for attempt := 0; ; attempt++ {
		t, created, err := s.signInOnce(ctx, in)
		if errors.Is(err, errRetrySignIn) && attempt == 0 {
			continue
		}
		if errors.Is(err, errRetrySignIn) {
			err = ErrIdentityConflict
		}
		return t, created, err
	}
}

func (s *sqlStore) signInOnce(ctx context.Context, in SignIn) (Teacher, bool, error) {
	var (
		out     Teacher
		created bool
	)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := s.teacherWhere(ctx, tx, "t.google_id = ?", in.GoogleID)
		if errors.Is(err, ErrNotFound) {
			t, err = s.teacherWhere(ctx, tx, "t.email = ?", in.Email)
			if err == nil && t.GoogleID != "" && t.GoogleID != in.GoogleID {
				return ErrIdentityConflict
			}
		}
		switch {
		case err == nil:
			if t.SchoolID != in.SchoolID {
				return ErrSchoolMismatch
			}
			t.GoogleID, t.Email, t.LastLoginAt, t.UpdatedAt = in.GoogleID, in.Email, in.At, in.At
			if in.Name != "" {
				t.Name = in.Name
			}
			if in.Picture != "" {
				t.Picture = in.Picture
			}
			_, err := tx.ExecContext(ctx, s.q("UPDATE "+s.teachers+
				" SET google_id = ?, email = ?, name = ?, picture = ?, last_login_at = ?, updated_at = ? WHERE id = ?"),
				t.GoogleID, t.Email, t.Name, t.Picture, s.at(in.At), s.at(in.At), t.ID)
			if store.IsUniqueViolation(err) {
				return ErrIdentityConflict // the account's new e-mail belongs to another teacher
			}
			if err != nil {
				return fmt.Errorf("auth store: update teacher: %w", err)
			}
			out = t
			return nil
		case !errors.Is(err, ErrNotFound):
			return err
		}
		// A new teacher takes a seat: the school row is locked first (a no-op update), so
		// concurrent first sign-ins of one school count seats one after the other.
		n, err := rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.schools+" SET updated_at = updated_at WHERE id = ?"), in.SchoolID))
		if err != nil {
			return fmt.Errorf("auth store: lock school: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		var limit, count int
		if err := tx.QueryRowContext(ctx, s.q("SELECT s.max_teachers, (SELECT COUNT(*) FROM "+s.teachers+
			" c WHERE c.school_id = s.id) FROM "+s.schools+" s WHERE s.id = ?"), in.SchoolID).Scan(&limit, &count); err != nil {
			return fmt.Errorf("auth store: count seats: %w", err)
		}
		if limit > 0 && count >= limit {
			return ErrTeacherLimit
		}
		t = Teacher{
			ID: in.NewID, GoogleID: in.GoogleID, Email: in.Email, Name: in.Name, Picture: in.Picture,
			SchoolID: in.SchoolID, Role: RoleTeacher, Status: StatusActive,
			LastLoginAt: in.At, CreatedAt: in.At, UpdatedAt: in.At,
		}
		err = s.insertTeacher(ctx, tx, t)
		if store.IsUniqueViolation(err) {
			return errRetrySignIn
		}
		if err != nil {
			return fmt.Errorf("auth store: create teacher: %w", err)
		}
		out, created = t, true
		return nil
	})
	if err != nil {
		return Teacher{}, false, err
	}
	return normalizeTeacher(out), created, nil
}

// normalizeTeacher gives a teacher built in Go the precision a read would give it.
func normalizeTeacher(t Teacher) Teacher {
	for _, p := range []*time.Time{&t.LastLoginAt, &t.CreatedAt, &t.UpdatedAt} {
		if !p.IsZero() {
			*p = p.UTC().Truncate(time.Microsecond)
		}
	}
	return t
}

// ListTeachers implements Store.
func (s *sqlStore) ListTeachers(ctx context.Context, q TeacherQuery) ([]Teacher, error) {
	var where []string
	var args []any
	if q.SchoolID != "" {
		if !isUUID(q.SchoolID) {
			return nil, nil
		}
		where = append(where, "t.school_id = ?")
		args = append(args, q.SchoolID)
	}
	if q.After != nil {
		if !isUUID(q.After.ID) {
			return nil, nil
		}
		where = append(where, "(t.email > ? OR (t.email = ? AND t.id > ?))")
		args = append(args, q.After.Key, q.After.Key, q.After.ID)
	}
	query := "SELECT " + s.teacherCols + " FROM " + s.teachers + " t"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY t.email, t.id LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("auth store: list teachers: %w", err)
	}
	defer rows.Close()
	var out []Teacher
	for rows.Next() {
		t, err := scanTeacher(rows)
		if err != nil {
			return nil, fmt.Errorf("auth store: list teachers: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth store: list teachers: %w", err)
	}
	return out, nil
}

// UpdateTeacherRole implements Store.
func (s *sqlStore) UpdateTeacherRole(ctx context.Context, id, role, status string, at time.Time) (Teacher, error) {
	if !isUUID(id) {
		return Teacher{}, ErrNotFound
	}
	var out Teacher
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.teachers+
			" SET role = ?, status = COALESCE(?, status), updated_at = ? WHERE id = ?"),
			role, nullStr(status), s.at(at), id))
		if err != nil {
			return fmt.Errorf("auth store: update teacher role: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		out, err = s.teacherWhere(ctx, tx, "t.id = ?", id)
		return err
	})
	return out, err
}

// --- refresh tokens ---

func (s *sqlStore) insertToken(ctx context.Context, q queryer, t RefreshToken) error {
	_, err := q.ExecContext(ctx, s.q("INSERT INTO "+s.tokens+
		" (id, token_hash, family_id, parent_id, teacher_id, issued_at, expires_at, idle_expires_at, rotated_at, revoked_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"),
		t.ID, t.Hash, t.FamilyID, nullStr(t.ParentID), t.TeacherID, s.at(t.IssuedAt), s.at(t.ExpiresAt), s.at(t.IdleExpiresAt))
	if err != nil {
		return fmt.Errorf("auth store: insert refresh token: %w", err)
	}
	return nil
}

// CreateFamily implements Store.
func (s *sqlStore) CreateFamily(ctx context.Context, f Family, first RefreshToken) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO "+s.families+
			" (id, teacher_id, created_at, expires_at, last_used_at, revoked_at, revoke_reason) VALUES (?, ?, ?, ?, ?, NULL, '')"),
			f.ID, f.TeacherID, s.at(f.CreatedAt), s.at(f.ExpiresAt), s.at(f.LastUsedAt)); err != nil {
			return fmt.Errorf("auth store: insert refresh family: %w", err)
		}
		return s.insertToken(ctx, tx, first)
	})
}

// LookupRefreshToken implements Store.
func (s *sqlStore) LookupRefreshToken(ctx context.Context, hash []byte) (RefreshToken, Family, error) {
	var (
		t RefreshToken
		f Family
	)
	err := s.db.QueryRowContext(ctx, s.q("SELECT t.id, t.token_hash, t.family_id, t.parent_id, t.teacher_id, t.issued_at,"+
		" t.expires_at, t.idle_expires_at, t.rotated_at, t.revoked_at,"+
		" f.id, f.teacher_id, f.created_at, f.expires_at, f.last_used_at, f.revoked_at, f.revoke_reason"+
		" FROM "+s.tokens+" t JOIN "+s.families+" f ON f.id = t.family_id WHERE t.token_hash = ?"), hash).Scan(
		&t.ID, &t.Hash, &t.FamilyID, dbStr{&t.ParentID}, &t.TeacherID, dbTime{&t.IssuedAt},
		dbTime{&t.ExpiresAt}, dbTime{&t.IdleExpiresAt}, dbTime{&t.RotatedAt}, dbTime{&t.RevokedAt},
		&f.ID, &f.TeacherID, dbTime{&f.CreatedAt}, dbTime{&f.ExpiresAt}, dbTime{&f.LastUsedAt}, dbTime{&f.RevokedAt}, &f.RevokeReason)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, Family{}, ErrNotFound
	}
	if err != nil {
		return RefreshToken{}, Family{}, fmt.Errorf("auth store: lookup refresh token: %w", err)
	}
	return t, f, nil
}

// RotateRefreshToken implements Store. The family row is updated first: in PostgreSQL that locks
// it, so a concurrent rotation or revocation of the family waits for this transaction and then
// re-reads the row; in SQLite the transaction holds the database's write lock from its start.
func (s *sqlStore) RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, at time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.families+
			" SET last_used_at = ? WHERE id = ? AND revoked_at IS NULL"), s.at(at), next.FamilyID))
		if err != nil {
			return fmt.Errorf("auth store: lock refresh family: %w", err)
		}
		if n == 0 {
			return ErrStale
		}
		n, err = rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.tokens+
			" SET rotated_at = ? WHERE id = ? AND family_id = ? AND rotated_at IS NULL AND revoked_at IS NULL"),
			s.at(at), oldID, next.FamilyID))
		if err != nil {
			return fmt.Errorf("auth store: rotate refresh token: %w", err)
		}
		if n == 0 {
			return ErrStale
		}
		return s.insertToken(ctx, tx, next)
	})
}

// RevokeFamily implements Store.
func (s *sqlStore) RevokeFamily(ctx context.Context, familyID string, at time.Time, reason string) (bool, error) {
	var live bool
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.families+
			" SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL"), s.at(at), reason, familyID))
		if err != nil {
			return fmt.Errorf("auth store: revoke refresh family: %w", err)
		}
		live = n > 0
		if _, err := tx.ExecContext(ctx, s.q("UPDATE "+s.tokens+
			" SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL"), s.at(at), familyID); err != nil {
			return fmt.Errorf("auth store: revoke refresh tokens: %w", err)
		}
		return nil
	})
	return live, err
}

// RevokeTeacherFamilies implements Store.
func (s *sqlStore) RevokeTeacherFamilies(ctx context.Context, teacherID string, at time.Time, reason string) (int, error) {
	if !isUUID(teacherID) {
		return 0, nil
	}
	var count int
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, s.q("UPDATE "+s.families+
			" SET revoked_at = ?, revoke_reason = ? WHERE teacher_id = ? AND revoked_at IS NULL"), s.at(at), reason, teacherID))
		if err != nil {
			return fmt.Errorf("auth store: revoke refresh families: %w", err)
		}
		count = int(n)
		if _, err := tx.ExecContext(ctx, s.q("UPDATE "+s.tokens+
			" SET revoked_at = ? WHERE teacher_id = ? AND revoked_at IS NULL"), s.at(at), teacherID); err != nil {
			return fmt.Errorf("auth store: revoke refresh tokens: %w", err)
		}
		return nil
	})
	return count, err
}

// DeleteExpiredFamilies implements Store. Tokens go with their family (ON DELETE CASCADE).
func (s *sqlStore) DeleteExpiredFamilies(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := rowsAffected(s.db.ExecContext(ctx, s.q("DELETE FROM "+s.families+" WHERE expires_at < ?"), s.at(cutoff)))
	if err != nil {
		return 0, fmt.Errorf("auth store: delete expired refresh families: %w", err)
	}
	return int(n), nil
}

// --- redirect-flow states ---

// SaveOAuthState implements Store.
func (s *sqlStore) SaveOAuthState(ctx context.Context, st OAuthState) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO "+s.states+
		" (state_hash, binding_hash, code_verifier, nonce, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)"),
		st.StateHash, st.BindingHash, st.CodeVerifier, st.Nonce, s.at(st.CreatedAt), s.at(st.ExpiresAt))
	if err != nil {
		return fmt.Errorf("auth store: save oauth state: %w", err)
	}
	return nil
}

// TakeOAuthState implements Store: DELETE ... RETURNING, so of concurrent callers only one gets
// the row.
func (s *sqlStore) TakeOAuthState(ctx context.Context, stateHash []byte, now time.Time) (OAuthState, error) {
	var st OAuthState
	err := s.db.QueryRowContext(ctx, s.q("DELETE FROM "+s.states+" WHERE state_hash = ?"+
		" RETURNING state_hash, binding_hash, code_verifier, nonce, created_at, expires_at"), stateHash).Scan(
		&st.StateHash, &st.BindingHash, &st.CodeVerifier, &st.Nonce, dbTime{&st.CreatedAt}, dbTime{&st.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthState{}, ErrNotFound
	}
	if err != nil {
		return OAuthState{}, fmt.Errorf("auth store: take oauth state: %w", err)
	}
	if !now.Before(st.ExpiresAt) {
		return OAuthState{}, ErrNotFound
	}
	return st, nil
}

// DeleteExpiredOAuthStates implements Store.
func (s *sqlStore) DeleteExpiredOAuthStates(ctx context.Context, now time.Time) (int, error) {
	n, err := rowsAffected(s.db.ExecContext(ctx, s.q("DELETE FROM "+s.states+" WHERE expires_at <= ?"), s.at(now)))
	if err != nil {
		return 0, fmt.Errorf("auth store: delete expired oauth states: %w", err)
	}
	return int(n), nil
}

// --- dev seed ---

// SeedDev implements Store.
func (s *sqlStore) SeedDev(ctx context.Context, school School, teacher Teacher) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO "+s.schools+
			" (id, name, domain, subscription_tier, subscription_status, max_teachers, stt_minutes_per_day,"+
			" ferpa_agreement, coppa_compliant, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"+
			" ON CONFLICT (id) DO NOTHING"),
			school.ID, school.Name, school.Domain, school.SubscriptionTier, school.SubscriptionStatus, school.MaxTeachers,
			school.STTMinutesPerDay, school.FERPAAgreement, school.COPPACompliant, s.at(school.CreatedAt), s.at(school.UpdatedAt)); err != nil {
			return fmt.Errorf("auth store: seed dev school: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO "+s.teachers+
			" (id, google_id, email, name, picture, school_id, role, status, last_login_at, created_at, updated_at)"+
			" VALUES (?, NULL, ?, ?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (id) DO NOTHING"),
			teacher.ID, teacher.Email, teacher.Name, teacher.Picture, teacher.SchoolID, teacher.Role, teacher.Status,
			s.at(teacher.CreatedAt), s.at(teacher.UpdatedAt)); err != nil {
			return fmt.Errorf("auth store: seed dev teacher: %w", err)
		}
		return nil
	})
}
