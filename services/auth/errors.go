package auth

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// Stable reasons of the auth service (the REST error.code). Clients branch on them: every
// REFRESH_TOKEN_* means "sign in again"; the 403 sign-in reasons are shown to the user.
const (
	ReasonGoogleTokenInvalid  = "GOOGLE_TOKEN_INVALID"
	ReasonGoogleCodeInvalid   = "GOOGLE_CODE_INVALID"
	ReasonGoogleUnavailable   = "GOOGLE_UNAVAILABLE"
	ReasonGoogleNotConfigured = "GOOGLE_SIGN_IN_NOT_CONFIGURED"
	ReasonEmailNotVerified    = "EMAIL_NOT_VERIFIED"
	ReasonSchoolNotRegistered = "SCHOOL_NOT_REGISTERED"
	ReasonSchoolInactive      = "SCHOOL_INACTIVE"
	ReasonSchoolMismatch      = "SCHOOL_MISMATCH"
	ReasonAccountSuspended    = "ACCOUNT_SUSPENDED"
	ReasonAccountConflict     = "ACCOUNT_CONFLICT"
	ReasonTeacherLimit        = "TEACHER_LIMIT_REACHED"
	ReasonAccessDenied        = "ACCESS_DENIED"
	ReasonOAuthStateInvalid   = "OAUTH_STATE_INVALID"
	ReasonRefreshTokenInvalid = "REFRESH_TOKEN_INVALID"
	ReasonRefreshTokenExpired = "REFRESH_TOKEN_EXPIRED"
	ReasonRefreshTokenReused  = "REFRESH_TOKEN_REUSED"
	ReasonRefreshTokenRevoked = "REFRESH_TOKEN_REVOKED"
	ReasonSchoolNotFound      = "SCHOOL_NOT_FOUND"
	ReasonTeacherNotFound     = "TEACHER_NOT_FOUND"
	ReasonSchoolDomainTaken   = "SCHOOL_DOMAIN_TAKEN"
	ReasonCannotChangeOwnRole = "CANNOT_CHANGE_OWN_ROLE"
	ReasonRouteNotFound       = "ROUTE_NOT_FOUND"
	reasonValidation          = apperr.ReasonValidation
)

// Errors the auth service answers. Messages are safe for users; causes go to the log.
var (
	errSignInMissing = apperr.New(codes.InvalidArgument, reasonValidation,
		"a Google authorization code or ID token (credential) is required").
		WithField("code", "set code (with code_verifier when PKCE was used) or credential")
	errGoogleTokenInvalid = apperr.New(codes.Unauthenticated, ReasonGoogleTokenInvalid,
		"the Google sign-in could not be verified")
	errGoogleCodeInvalid = apperr.New(codes.Unauthenticated, ReasonGoogleCodeInvalid,
		"Google refused the authorization code; sign in again")
	errGoogleUnavailable = apperr.New(codes.Unavailable, ReasonGoogleUnavailable,
		"Google sign-in is unavailable right now; try again")
	errGoogleNotConfigured = apperr.New(codes.Unavailable, ReasonGoogleNotConfigured,
		"Google sign-in is not configured on this server")
	errEmailNotVerified = apperr.New(codes.PermissionDenied, ReasonEmailNotVerified,
		"your Google account's e-mail address is not verified")
	errSchoolNotRegistered = apperr.New(codes.PermissionDenied, ReasonSchoolNotRegistered,
		"your school is not registered with ClassWaves; sign in with your school's Google Workspace account")
	errSchoolInactive = apperr.New(codes.PermissionDenied, ReasonSchoolInactive,
		"your school's ClassWaves subscription is not active")
	errSchoolMismatch = apperr.New(codes.PermissionDenied, ReasonSchoolMismatch,
		"your account belongs to another school; contact your administrator")
	errAccountSuspended = apperr.New(codes.PermissionDenied, ReasonAccountSuspended,
		"your ClassWaves account is not active; contact your administrator")
	errAccountConflict = apperr.New(codes.PermissionDenied, ReasonAccountConflict,
		"this e-mail address is linked to another Google account; contact your administrator")
	errTeacherLimit = apperr.New(codes.PermissionDenied, ReasonTeacherLimit,
		"your school has used all its teacher seats; contact your administrator")
	errAccessDenied = apperr.New(codes.PermissionDenied, ReasonAccessDenied,
		"Google sign-in was cancelled")
	errOAuthState = apperr.New(codes.InvalidArgument, ReasonOAuthStateInvalid,
		"the sign-in link expired or was already used; sign in again")

	errRefreshMissing = apperr.New(codes.InvalidArgument, reasonValidation, "a refresh token is required").
				WithField("refresh_token", "required")
	errRefreshInvalid = apperr.New(codes.Unauthenticated, ReasonRefreshTokenInvalid,
		"the refresh token is not valid; sign in again")
	errRefreshExpired = apperr.New(codes.Unauthenticated, ReasonRefreshTokenExpired,
		"the refresh token has expired; sign in again")
	errRefreshReused = apperr.New(codes.Unauthenticated, ReasonRefreshTokenReused,
		"the refresh token was already used; every session of this sign-in has been ended, sign in again")
	errRefreshRevoked = apperr.New(codes.Unauthenticated, ReasonRefreshTokenRevoked,
		"the refresh token was revoked; sign in again")
	errLogoutTarget = apperr.New(codes.InvalidArgument, reasonValidation,
		"a refresh token is required, or all_devices with a signed-in caller").
		WithField("refresh_token", "required unless all_devices is set by a signed-in caller")

	errBlankName = apperr.New(codes.InvalidArgument, reasonValidation, "the school name must not be blank").
			WithField("name", "must not be blank")
	errSchoolNotFound  = apperr.New(codes.NotFound, ReasonSchoolNotFound, "school not found")
	errTeacherNotFound = apperr.New(codes.NotFound, ReasonTeacherNotFound, "teacher not found")
	errDomainTaken     = apperr.New(codes.AlreadyExists, ReasonSchoolDomainTaken,
		"another school already uses this Workspace domain")
	errOwnRole = apperr.New(codes.FailedPrecondition, ReasonCannotChangeOwnRole,
		"you cannot change your own role or status")
	errPageToken = apperr.New(codes.InvalidArgument, reasonValidation, "the page token is not valid").
			WithField("page_token", "not a token this listing returned")
)

// routeNotFound is what the test-token RPCs answer when they do not exist here (production, or no
// E2E_TEST_SECRET, or the wrong one): the very answer the gateway gives a route it does not know,
// code, reason and message, so the two cannot be told apart.
func routeNotFound(method, path string) *apperr.Error {
	return apperr.New(codes.NotFound, ReasonRouteNotFound, "Route "+method+" "+path+" not found")
}

// storeError maps the store's sentinel errors to answers; anything else is internal.
func storeError(err error, notFound *apperr.Error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound) && notFound != nil:
		return notFound
	case errors.Is(err, ErrDomainTaken):
		return errDomainTaken
	case errors.Is(err, ErrTeacherLimit):
		return errTeacherLimit
	case errors.Is(err, ErrSchoolMismatch):
		return errSchoolMismatch
	case errors.Is(err, ErrIdentityConflict):
		return errAccountConflict
	}
	return err
}
