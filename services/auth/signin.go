package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/services/auth/token"
)

// Sign-in methods (the method label of classwaves_auth_sign_ins_total and the audit metadata).
const (
	methodIDToken     = "google_id_token"
	methodCode        = "google_code"
	methodRedirect    = "google_redirect"
	methodDevFallback = "dev_fallback"
	methodTestToken   = "test_token"
)

// tokenPair is a signed access token with the refresh token of its family.
type tokenPair struct {
	Access  token.Issued
	Refresh string
	// RefreshExpiresIn is how long the refresh token stays usable if unused.
	RefreshExpiresIn time.Duration
}

// signInResult is what a successful sign-in answers.
type signInResult struct {
	Teacher     Teacher
	School      School
	Tokens      tokenPair
	Degraded    bool
	FirstSignIn bool
}

// googleSignIn signs a teacher in with a Google ID token (credential) or an authorization code
// (exchanged with verifier, at redirectURI or GOOGLE_REDIRECT_URI). With the dev fallback on, it
// signs in the dev teacher whatever the request holds.
func (s *Service) googleSignIn(ctx context.Context, code, credential, verifier, redirectURI string) (signInResult, error) {
	if trigger := s.cfg.devFallbackTrigger(); trigger != "" {
		return s.devSignIn(ctx, trigger, s.cfg.RefreshIdleTTL)
	}
	if s.cfg.GoogleClientID == "" {
		return signInResult{}, errGoogleNotConfigured
	}
	var (
		raw    string
		method string
		err    error
	)
	switch {
	case credential != "":
		raw, method = credential, methodIDToken
	case code != "":
		method = methodCode
		if redirectURI == "" {
			redirectURI = s.cfg.GoogleRedirectURI
		}
		raw, err = s.google.exchange(ctx, code, verifier, redirectURI)
	default:
		return signInResult{}, errSignInMissing
	}
	if err == nil {
		var id googleIdentity
		if id, err = s.google.verify(ctx, raw); err == nil {
			return s.completeSignIn(ctx, id, method, s.cfg.RefreshIdleTTL)
		}
	}
	s.m.signIn(method, err)
	return signInResult{}, err
}

// completeSignIn admits a verified Google identity: a verified e-mail, a hosted domain that is a
// registered, active school's, and an active teacher (created on first sign-in). The first refresh
// token of the new family is usable unused for idle.
func (s *Service) completeSignIn(ctx context.Context, id googleIdentity, method string, idle time.Duration) (signInResult, error) {
	res, err := s.admit(ctx, id, idle)
	s.m.signIn(method, err)
	if err != nil {
		ev := auditlog.Event{
			ActorID:   "google:" + id.Subject,
			ActorType: auditlog.ActorTeacher,
			EventType: "auth.login_failed",
			Category:  auditlog.CategoryAuthentication,
			SchoolID:  res.School.ID,
			Metadata:  map[string]string{"method": method, "reason": reasonOf(err), "hostedDomain": id.HostedDomain},
		}
		if res.Teacher.ID != "" {
			ev.ActorID, ev.ActorType = res.Teacher.ID, actorType(res.Teacher.Role)
		}
		s.auditLog(ctx, ev)
		return signInResult{}, err
	}
	s.auditLogin(ctx, res, method)
	return res, nil
}

func (s *Service) admit(ctx context.Context, id googleIdentity, idle time.Duration) (signInResult, error) {
	if !id.EmailVerified {
		return signInResult{}, errEmailNotVerified
	}
	if id.HostedDomain == "" {
		return signInResult{}, errSchoolNotRegistered.WithCause(errors.New("no hosted domain (not a Workspace account)"))
	}
	school, err := s.store.SchoolByDomain(ctx, id.HostedDomain)
	if errors.Is(err, ErrNotFound) {
		return signInResult{}, errSchoolNotRegistered
	}
	if err != nil {
		return signInResult{}, err
	}
	res := signInResult{School: school}
	if !schoolAdmits(school) {
		return res, errSchoolInactive
	}
	t, created, err := s.store.SignInTeacher(ctx, SignIn{
		GoogleID: id.Subject, Email: id.Email, Name: id.Name, Picture: id.Picture,
		SchoolID: school.ID, At: s.now(), NewID: uuid.NewString(),
	})
	if err != nil {
		return res, storeError(err, errSchoolNotRegistered)
	}
	res.Teacher, res.FirstSignIn = t, created
	if created {
		res.School.TeacherCount++
	}
	if t.Status != StatusActive {
		return res, errAccountSuspended
	}
	res.Tokens, err = s.startSession(ctx, t, idle)
	return res, err
}

// devSignIn signs in the seeded dev teacher (the dev fallback; never in production).
func (s *Service) devSignIn(ctx context.Context, trigger string, idle time.Duration) (signInResult, error) {
	if s.cfg.Environment.IsProduction() { // devFallbackTrigger already says so; never rely on one check
		return signInResult{}, errGoogleNotConfigured
	}
	t, err := s.store.GetTeacher(ctx, DevTeacherID)
	if err != nil {
		return signInResult{}, fmt.Errorf("auth: the dev teacher is missing (was Start called?): %w", err)
	}
	school, err := s.store.GetSchool(ctx, t.SchoolID)
	if err != nil {
		return signInResult{}, fmt.Errorf("auth: the dev school is missing: %w", err)
	}
	if t.Status != StatusActive {
		return signInResult{}, errAccountSuspended
	}
	pair, err := s.startSession(ctx, t, idle)
	if err != nil {
		return signInResult{}, err
	}
	s.m.devFallback.WithLabelValues(s.cfg.Environment.String(), trigger).Inc()
	s.m.signIn(methodDevFallback, nil)
	res := signInResult{Teacher: t, School: school, Tokens: pair, Degraded: true}
	s.auditLogin(ctx, res, methodDevFallback)
	return res, nil
}

// schoolAdmits reports whether a school's teachers may sign in: its subscription is active or in
// trial.
func schoolAdmits(s School) bool {
	return s.SubscriptionStatus == SubscriptionActive || s.SubscriptionStatus == SubscriptionTrial
}

// startSession starts a refresh token family for t and issues the first pair. The refresh token
// lapses after idle unused (never after the family's absolute expiry).
func (s *Service) startSession(ctx context.Context, t Teacher, idle time.Duration) (tokenPair, error) {
	now := s.now()
	fam := Family{
		ID: uuid.NewString(), TeacherID: t.ID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL), LastUsedAt: now,
	}
	raw, hash, err := newRefreshToken()
	if err != nil {
		return tokenPair{}, err
	}
	rt := RefreshToken{
		ID: uuid.NewString(), Hash: hash, FamilyID: fam.ID, TeacherID: t.ID,
		IssuedAt: now, ExpiresAt: fam.ExpiresAt, IdleExpiresAt: minTime(now.Add(idle), fam.ExpiresAt),
	}
	if err := s.store.CreateFamily(ctx, fam, rt); err != nil {
		return tokenPair{}, err
	}
	access, err := s.issueAccess(ctx, t)
	if err != nil {
		return tokenPair{}, err
	}
	return tokenPair{Access: access, Refresh: raw, RefreshExpiresIn: rt.IdleExpiresAt.Sub(now)}, nil
}

// issueAccess signs t's access token with its current role and school.
func (s *Service) issueAccess(ctx context.Context, t Teacher) (token.Issued, error) {
	return s.keys.Issue(ctx, authn.Principal{Subject: t.ID, Role: authn.Role(t.Role), SchoolID: t.SchoolID}, t.Email)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// --- audit ---

// auditLog enqueues e with the request's user agent (hashed by the client). It never blocks for
// long and never fails the request.
func (s *Service) auditLog(ctx context.Context, e auditlog.Event) {
	if e.UserAgent == "" {
		e.UserAgent = userAgent(ctx)
	}
	if e.ComplianceBasis == "" {
		e.ComplianceBasis = "legitimate_interest"
	}
	s.audit.Log(ctx, e)
}

// auditLogin records a successful sign-in.
func (s *Service) auditLogin(ctx context.Context, res signInResult, method string) {
	s.auditLog(ctx, auditlog.Event{
		ActorID:      res.Teacher.ID,
		ActorType:    actorType(res.Teacher.Role),
		EventType:    "auth.login",
		Category:     auditlog.CategoryAuthentication,
		ResourceType: "teacher",
		ResourceID:   res.Teacher.ID,
		SchoolID:     res.Teacher.SchoolID,
		Description:  "teacher signed in",
		Metadata: map[string]string{
			"method":       method,
			"firstSignIn":  boolString(res.FirstSignIn),
			"degradedMode": boolString(res.Degraded),
		},
	})
}

// actorType is the audit actor type of a teacher role.
func actorType(role string) string {
	switch role {
	case RoleAdmin:
		return auditlog.ActorAdmin
	case RoleSuperAdmin:
		return auditlog.ActorSuperAdmin
	}
	return auditlog.ActorTeacher
}

// reasonOf is the stable reason of err ("INTERNAL_ERROR" for unexpected ones).
func reasonOf(err error) string {
	if ae, ok := errors.AsType[*apperr.Error](err); ok {
		return ae.Reason
	}
	return apperr.ReasonInternal
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// normalizeEmail is how e-mail addresses are compared and stored.
func normalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
