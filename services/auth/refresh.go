package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
)

// refreshTokenBytes is the entropy of a refresh token; its text is the unpadded base64url of
// these bytes (43 characters).
const refreshTokenBytes = 32

// refreshTokenLen is the length of a refresh token's text.
var refreshTokenLen = base64.RawURLEncoding.EncodedLen(refreshTokenBytes)

// Revocation reasons stored with a family.
const (
	revokeReuse     = "reuse"
	revokeLogout    = "logout"
	revokeLogoutAll = "logout_all_devices"
	revokeInactive  = "account_inactive"
)

// newRefreshToken returns a new refresh token and the SHA-256 it is stored by.
func newRefreshToken() (raw string, hash []byte, err error) {
	b := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("auth: random refresh token: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, sum[:], nil
}

// hashRefreshToken returns the SHA-256 a presented token is looked up by, or false when it cannot
// be one of ours (wrong length or alphabet): such a token is refused without a database read.
func hashRefreshToken(raw string) ([]byte, bool) {
	if len(raw) != refreshTokenLen {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(raw)
	if err != nil || len(b) != refreshTokenBytes {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	return sum[:], true
}

// refresh exchanges a refresh token for a new pair. The presented token is spent; presenting a
// spent token again is reuse and ends its family. The new access token carries the teacher's
// current role and school.
func (s *Service) refresh(ctx context.Context, raw string) (tokenPair, Teacher, error) {
	pair, t, err := s.rotate(ctx, raw)
	s.m.refresh(err)
	return pair, t, err
}

func (s *Service) rotate(ctx context.Context, raw string) (tokenPair, Teacher, error) {
	if raw == "" {
		return tokenPair{}, Teacher{}, errRefreshMissing
	}
	hash, ok := hashRefreshToken(raw)
	if !ok {
		return tokenPair{}, Teacher{}, errRefreshInvalid
	}
	tok, fam, err := s.store.LookupRefreshToken(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return tokenPair{}, Teacher{}, errRefreshInvalid
	}
	if err != nil {
		return tokenPair{}, Teacher{}, err
	}
	if !tok.RotatedAt.IsZero() {
		return tokenPair{}, Teacher{}, s.reuseDetected(ctx, tok, fam)
	}
	if !fam.RevokedAt.IsZero() || !tok.RevokedAt.IsZero() {
		return tokenPair{}, Teacher{}, errRefreshRevoked
	}
	now := s.now()
	if !now.Before(fam.ExpiresAt) || !now.Before(tok.IdleExpiresAt) {
		return tokenPair{}, Teacher{}, errRefreshExpired
	}
	t, err := s.store.GetTeacher(ctx, tok.TeacherID)
	if errors.Is(err, ErrNotFound) {
		_, _ = s.store.RevokeFamily(ctx, fam.ID, now, revokeInactive)
		return tokenPair{}, Teacher{}, errRefreshRevoked
	}
	if err != nil {
		return tokenPair{}, Teacher{}, err
	}
	if t.Status != StatusActive {
		if _, err := s.store.RevokeFamily(ctx, fam.ID, now, revokeInactive); err != nil {
			return tokenPair{}, Teacher{}, err
		}
		return tokenPair{}, Teacher{}, errAccountSuspended
	}
	school, err := s.store.GetSchool(ctx, t.SchoolID)
	if err != nil {
		return tokenPair{}, Teacher{}, err
	}
	if !schoolAdmits(school) {
		return tokenPair{}, Teacher{}, errSchoolInactive
	}
	nextRaw, nextHash, err := newRefreshToken()
	if err != nil {
		return tokenPair{}, Teacher{}, err
	}
	next := RefreshToken{
		ID: uuid.NewString(), Hash: nextHash, FamilyID: fam.ID, ParentID: tok.ID, TeacherID: t.ID,
		IssuedAt: now, ExpiresAt: fam.ExpiresAt, IdleExpiresAt: minTime(now.Add(s.cfg.RefreshIdleTTL), fam.ExpiresAt),
	}
	if err := s.store.RotateRefreshToken(ctx, tok.ID, next, now); err != nil {
		if !errors.Is(err, ErrStale) {
			return tokenPair{}, Teacher{}, err
		}
		// Between the lookup and the rotation the token was rotated (a concurrent refresh won) or
		// its family revoked. Which one decides the answer.
		tok, fam, err = s.store.LookupRefreshToken(ctx, hash)
		if err != nil {
			return tokenPair{}, Teacher{}, errRefreshRevoked.WithCause(err)
		}
		if !tok.RotatedAt.IsZero() {
			return tokenPair{}, Teacher{}, s.reuseDetected(ctx, tok, fam)
		}
		return tokenPair{}, Teacher{}, errRefreshRevoked
	}
	access, err := s.issueAccess(ctx, t)
	if err != nil {
		return tokenPair{}, Teacher{}, err
	}
	return tokenPair{Access: access, Refresh: nextRaw, RefreshExpiresIn: next.IdleExpiresAt.Sub(now)}, t, nil
}

// reuseDetected handles a rotated token presented again (RFC 9700 section 4.14.2): whoever holds
// it, the legitimate client or a thief, the family is compromised, so it is revoked and every
// holder must sign in again. The event is audited as critical.
func (s *Service) reuseDetected(ctx context.Context, tok RefreshToken, fam Family) error {
	live, err := s.store.RevokeFamily(ctx, fam.ID, s.now(), revokeReuse)
	if err != nil {
		return err
	}
	ev := auditlog.Event{
		ActorID:      tok.TeacherID,
		ActorType:    auditlog.ActorTeacher,
		EventType:    "auth.refresh_token_reuse",
		Category:     auditlog.CategoryAuthentication,
		ResourceType: "refresh_token_family",
		ResourceID:   fam.ID,
		Description:  "a rotated refresh token was presented again; its family was revoked",
		Priority:     auditlog.PriorityCritical,
		Metadata:     map[string]string{"familyRevokedNow": boolString(live)},
	}
	if t, err := s.store.GetTeacher(ctx, tok.TeacherID); err == nil {
		ev.ActorType, ev.SchoolID = actorType(t.Role), t.SchoolID
	}
	s.auditLog(ctx, ev)
	s.logger.WarnContext(ctx, "refresh token reuse: family revoked", "teacherId", tok.TeacherID, "familyId", fam.ID,
		"familyRevokedNow", live)
	return errRefreshReused
}

// logout revokes the family of raw, or with allDevices every family of the caller. The caller is
// the staff principal of a valid access token, or else the teacher of raw when raw is still valid.
// Like token revocation (RFC 7009), a token that is unknown, expired or already revoked is no
// error: there is nothing left to revoke.
func (s *Service) logout(ctx context.Context, raw string, allDevices bool) (int, error) {
	p, signedIn := authn.FromContext(ctx)
	if signedIn && !p.Role.IsStaff() {
		signedIn = false // students and services hold no refresh tokens
	}
	var (
		tok   RefreshToken
		fam   Family
		found bool
	)
	if raw != "" {
		if hash, ok := hashRefreshToken(raw); ok {
			var err error
			tok, fam, err = s.store.LookupRefreshToken(ctx, hash)
			switch {
			case err == nil:
				found = true
			case !errors.Is(err, ErrNotFound):
				return 0, err
			}
		}
	}
	if signedIn && found && tok.TeacherID != p.Subject {
		return 0, authn.ErrForbidden.WithCause(errors.New("logout: the refresh token belongs to another teacher"))
	}
	now := s.now()
	teacherID := ""
	switch {
	case signedIn:
		teacherID = p.Subject
	case found && tok.RotatedAt.IsZero() && fam.RevokedAt.IsZero() && now.Before(fam.ExpiresAt) && now.Before(tok.IdleExpiresAt):
		teacherID = tok.TeacherID
	}

	revoked := 0
	switch {
	case allDevices:
		if teacherID == "" {
			if raw != "" {
				return 0, errRefreshInvalid
			}
			return 0, authn.ErrUnauthenticated
		}
		n, err := s.store.RevokeTeacherFamilies(ctx, teacherID, now, revokeLogoutAll)
		if err != nil {
			return 0, err
		}
		revoked = n
	case raw == "":
		if signedIn {
			return 0, errLogoutTarget
		}
		return 0, errRefreshMissing
	case found:
		live, err := s.store.RevokeFamily(ctx, fam.ID, now, revokeLogout)
		if err != nil {
			return 0, err
		}
		if live {
			revoked = 1
		}
	}
	actor := teacherID
	if actor == "" && found {
		actor = tok.TeacherID
	}
	if actor != "" {
		ev := auditlog.Event{
			ActorID:      actor,
			ActorType:    auditlog.ActorTeacher,
			EventType:    "auth.logout",
			Category:     auditlog.CategoryAuthentication,
			ResourceType: "teacher",
			ResourceID:   actor,
			Description:  "teacher signed out",
			Metadata:     map[string]string{"allDevices": boolString(allDevices), "revokedFamilies": fmt.Sprint(revoked)},
		}
		if signedIn {
			ev.ActorType, ev.SchoolID = actorType(string(p.Role)), p.SchoolID
		}
		s.auditLog(ctx, ev)
	}
	return revoked, nil
}
