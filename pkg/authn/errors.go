package authn

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// Stable reasons of token failures (the REST error.code). Clients branch on them: TOKEN_EXPIRED
// means "refresh and retry", the others mean "sign in again".
const (
	ReasonTokenMissing = "TOKEN_MISSING"
	ReasonTokenExpired = "TOKEN_EXPIRED"
	ReasonTokenInvalid = "TOKEN_INVALID"
)

// Errors answered by the Verifier and the Interceptor. The cause attached with WithCause (which
// check failed) goes to the log only; a client learns no more than the reason.
var (
	// ErrTokenMissing: the call needs a token and none was sent.
	ErrTokenMissing = apperr.New(codes.Unauthenticated, ReasonTokenMissing, "an access token is required")
	// ErrTokenExpired: the token is genuine but past its expiry.
	ErrTokenExpired = apperr.New(codes.Unauthenticated, ReasonTokenExpired, "the access token has expired")
	// ErrTokenInvalid: the token is malformed, forged, of another issuer or audience, or lacks a
	// required claim.
	ErrTokenInvalid = apperr.New(codes.Unauthenticated, ReasonTokenInvalid, "the access token is not valid")
	// ErrKeysUnavailable: the verification keys cannot be obtained right now (auth unreachable),
	// so a token whose key is not cached cannot be checked. Retrying later may succeed.
	ErrKeysUnavailable = apperr.New(codes.Unavailable, apperr.ReasonUnavailable, "cannot verify the access token right now")
	// ErrWrongSchool: the data belongs to another school than the caller's.
	ErrWrongSchool = apperr.New(codes.PermissionDenied, apperr.ReasonForbidden, "this belongs to another school")
	// ErrOutOfScope: a student token opens only its own session and group.
	ErrOutOfScope = apperr.New(codes.PermissionDenied, apperr.ReasonForbidden, "your token does not open this session or group")
	// ErrNoRule: the RPC has no access rule; nothing without a rule is served.
	ErrNoRule = apperr.New(codes.PermissionDenied, apperr.ReasonForbidden, "this method has no access rule")
)

// ErrUnknownKey is returned (wrapped) by a KeySource that publishes no key with the requested id.
var ErrUnknownKey = errors.New("authn: unknown signing key id")
