package auth

import (
	"context"
	"errors"
	"time"
)

// Roles and statuses a teacher row holds.
const (
	RoleTeacher    = "teacher"
	RoleAdmin      = "admin"
	RoleSuperAdmin = "super_admin"

	StatusActive    = "active"
	StatusInactive  = "inactive"
	StatusSuspended = "suspended"
)

// School subscription values: a school whose status is active or trial admits sign-ins.
const (
	TierFree = "free"

	SubscriptionActive    = "active"
	SubscriptionTrial     = "trial"
	SubscriptionExpired   = "expired"
	SubscriptionSuspended = "suspended"
)

// School is a registered school (users.schools). Domain is its Google Workspace domain, lower case.
type School struct {
	ID                 string
	Name               string
	Domain             string
	SubscriptionTier   string
	SubscriptionStatus string
	// MaxTeachers is the seat limit; 0 means unlimited.
	MaxTeachers      int
	STTMinutesPerDay int
	FERPAAgreement   bool
	COPPACompliant   bool
	// TeacherCount is computed when read: the school's teachers.
	TeacherCount int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// SchoolUpdate lists the fields of a school to change; nil fields stay as they are.
type SchoolUpdate struct {
	Name               *string
	Domain             *string
	SubscriptionTier   *string
	SubscriptionStatus *string
	MaxTeachers        *int
	STTMinutesPerDay   *int
	FERPAAgreement     *bool
	COPPACompliant     *bool
}

// Teacher is a staff member (users.teachers). GoogleID is the Google subject; empty for a teacher
// provisioned ahead of their first sign-in (Bootstrap, the dev seed). Email is lower case.
type Teacher struct {
	ID          string
	GoogleID    string
	Email       string
	Name        string
	Picture     string
	SchoolID    string
	Role        string
	Status      string
	LastLoginAt time.Time // zero before the first sign-in
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// SignIn is a verified Google identity signing in to the school of its hosted domain.
type SignIn struct {
	GoogleID string
	Email    string
	Name     string
	Picture  string
	SchoolID string
	At       time.Time
	// NewID is the id a teacher created by this sign-in gets.
	NewID string
}

// Family is a refresh token family (auth.refresh_families): every refresh token descending from
// one sign-in. Revocation and the absolute expiry are the family's.
type Family struct {
	ID           string
	TeacherID    string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	LastUsedAt   time.Time
	RevokedAt    time.Time // zero while live
	RevokeReason string
}

// RefreshToken is one refresh token (auth.refresh_tokens), stored by the SHA-256 of its value.
type RefreshToken struct {
	ID        string
	Hash      []byte
	FamilyID  string
	ParentID  string // the token this one replaced; "" for the first of a family
	TeacherID string
	IssuedAt  time.Time
	// ExpiresAt is the family's absolute expiry; IdleExpiresAt is when it lapses unused (never
	// later than ExpiresAt).
	ExpiresAt     time.Time
	IdleExpiresAt time.Time
	RotatedAt     time.Time // zero until it is exchanged for its successor
	RevokedAt     time.Time // zero until its family is revoked
}

// OAuthState is a started redirect flow (auth.oauth_states), found by the SHA-256 of its state
// parameter and usable once.
type OAuthState struct {
	StateHash []byte
	// BindingHash is the SHA-256 of the value of the browser's binding cookie.
	BindingHash  []byte
	CodeVerifier string
	Nonce        string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// Page asks for one page of a listing. After is the cursor of the previous page's last row ("" for
// the first page).
type Page struct {
	Limit int
	After *Cursor
}

// Cursor is a position in a listing ordered by (Key, ID): schools by name, teachers by e-mail.
type Cursor struct {
	Key string
	ID  string
}

// SchoolQuery selects schools: Query is a case-insensitive substring of name or domain.
type SchoolQuery struct {
	Query string
	Page
}

// TeacherQuery selects teachers; SchoolID "" means every school.
type TeacherQuery struct {
	SchoolID string
	Page
}

// Store errors.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("auth store: not found")
	// ErrDomainTaken: another school has this Workspace domain.
	ErrDomainTaken = errors.New("auth store: domain already registered")
	// ErrTeacherLimit: the school has as many teachers as its seat limit.
	ErrTeacherLimit = errors.New("auth store: teacher limit reached")
	// ErrSchoolMismatch: the signing-in teacher exists in another school.
	ErrSchoolMismatch = errors.New("auth store: teacher belongs to another school")
	// ErrIdentityConflict: the e-mail belongs to a teacher linked to another Google account, or the
	// Google account's new e-mail belongs to another teacher.
	ErrIdentityConflict = errors.New("auth store: e-mail and Google account disagree")
	// ErrStale: a rotation found its token already rotated or its family revoked.
	ErrStale = errors.New("auth store: refresh token already rotated or revoked")
)

// Store is the auth service's persistence port. The SQL adapter (sqlstore.go) serves SQLite and
// PostgreSQL; one contract suite (store_contract_test.go) runs against both.
type Store interface {
	// CreateSchool stores s (ID, timestamps and defaults set by the caller). ErrDomainTaken when
	// the domain is registered.
	CreateSchool(ctx context.Context, s School) error
	// UpdateSchool applies u to the school id at time at and returns it. ErrNotFound, ErrDomainTaken.
	UpdateSchool(ctx context.Context, id string, u SchoolUpdate, at time.Time) (School, error)
	// GetSchool returns a school. ErrNotFound.
	GetSchool(ctx context.Context, id string) (School, error)
	// SchoolByDomain returns the school of a (lower-case) domain. ErrNotFound.
	SchoolByDomain(ctx context.Context, domain string) (School, error)
	// ListSchools returns up to q.Limit schools by name, then id, after q.After, and how many match.
	ListSchools(ctx context.Context, q SchoolQuery) (schools []School, total int, err error)

	// GetTeacher returns a teacher. ErrNotFound.
	GetTeacher(ctx context.Context, id string) (Teacher, error)
	// TeacherByEmail returns the teacher with a (lower-case) e-mail. ErrNotFound.
	TeacherByEmail(ctx context.Context, email string) (Teacher, error)
	// SignInTeacher records a sign-in, atomically: it finds the teacher by Google subject, else by
	// e-mail (linking a provisioned teacher to the account), refreshes e-mail, name, picture and
	// last sign-in; or creates the teacher (role teacher, status active) when the school's seat
	// limit allows. created reports the latter. Errors: ErrSchoolMismatch, ErrIdentityConflict,
	// ErrTeacherLimit, ErrNotFound (no such school).
	SignInTeacher(ctx context.Context, in SignIn) (t Teacher, created bool, err error)
	// CreateTeacher stores t as is (provisioning). ErrIdentityConflict when the e-mail or Google
	// subject is taken.
	CreateTeacher(ctx context.Context, t Teacher) error
	// ListTeachers returns up to q.Limit teachers by e-mail, then id, after q.After.
	ListTeachers(ctx context.Context, q TeacherQuery) ([]Teacher, error)
	// UpdateTeacherRole sets a teacher's role and, when status is not "", its status. ErrNotFound.
	UpdateTeacherRole(ctx context.Context, id, role, status string, at time.Time) (Teacher, error)

	// CreateFamily stores a new family with its first token.
	CreateFamily(ctx context.Context, f Family, first RefreshToken) error
	// LookupRefreshToken returns the token with this hash and its family. ErrNotFound.
	LookupRefreshToken(ctx context.Context, hash []byte) (RefreshToken, Family, error)
	// RotateRefreshToken marks the token oldID rotated at at and stores next in the same family,
	// atomically, provided the token was not rotated and its family is not revoked; otherwise it
	// changes nothing and returns ErrStale. Concurrent rotations of one token: exactly one
	// succeeds. A rotation and a revocation of one family are serialized: once RevokeFamily has
	// returned, no rotation can add a live token to the family.
	RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, at time.Time) error
	// RevokeFamily revokes a family and every token in it; it reports whether the family was live.
	RevokeFamily(ctx context.Context, familyID string, at time.Time, reason string) (bool, error)
	// RevokeTeacherFamilies revokes every live family of a teacher and returns how many.
	RevokeTeacherFamilies(ctx context.Context, teacherID string, at time.Time, reason string) (int, error)
	// DeleteExpiredFamilies deletes the families (with their tokens) whose absolute expiry is
	// before cutoff, and returns how many.
	DeleteExpiredFamilies(ctx context.Context, cutoff time.Time) (int, error)

	// SaveOAuthState stores a started redirect flow.
	SaveOAuthState(ctx context.Context, s OAuthState) error
	// TakeOAuthState deletes and returns the flow with this state hash: a state is usable once,
	// also by concurrent callers. An expired state is deleted and reported as ErrNotFound.
	TakeOAuthState(ctx context.Context, stateHash []byte, now time.Time) (OAuthState, error)
	// DeleteExpiredOAuthStates deletes the flows expired at now and returns how many.
	DeleteExpiredOAuthStates(ctx context.Context, now time.Time) (int, error)

	// SeedDev creates school and teacher unless rows with their ids exist (dev seed, idempotent).
	SeedDev(ctx context.Context, school School, teacher Teacher) error
}
