package guidance

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// Errors the service answers, with their stable reasons (REST error.code).
var (
	// ErrSessionNotFound: the session does not exist, or the caller may not see it (nothing leaks).
	ErrSessionNotFound = apperr.New(codes.NotFound, "SESSION_NOT_FOUND", "session not found")
	// ErrGroupNotFound: the group is not one of the session's.
	ErrGroupNotFound = apperr.New(codes.NotFound, "GROUP_NOT_FOUND", "group not found in this session")
	// ErrPromptNotFound: the prompt does not exist, or the caller may not act on it.
	ErrPromptNotFound = apperr.New(codes.NotFound, "PROMPT_NOT_FOUND", "prompt not found")
	// ErrPromptAlreadyActed: the prompt was acknowledged or dismissed already.
	ErrPromptAlreadyActed = apperr.New(codes.FailedPrecondition, "PROMPT_ALREADY_ACTED", "the prompt has already been acknowledged or dismissed")
	// ErrPromptExpired: the prompt expired (or was superseded, or its session ended).
	ErrPromptExpired = apperr.New(codes.FailedPrecondition, "PROMPT_EXPIRED", "the prompt has expired")
	// ErrNoTranscript: there is nothing to analyse yet.
	ErrNoTranscript = apperr.New(codes.FailedPrecondition, "NO_TRANSCRIPT", "there is no discussion to analyse yet")
	// ErrAnalysisDisabled: AI analysis is off for the session.
	ErrAnalysisDisabled = apperr.New(codes.FailedPrecondition, "AI_ANALYSIS_DISABLED", "AI analysis is disabled for this session")
	// ErrAnalysisFailed: the analyzer failed (the cause goes to the log).
	ErrAnalysisFailed = apperr.New(codes.Unavailable, "ANALYSIS_FAILED", "the analysis could not be completed; try again shortly")
	// ErrStoreUnavailable: the database cannot be reached.
	ErrStoreUnavailable = apperr.New(codes.Unavailable, "GUIDANCE_STORE_UNAVAILABLE", "guidance data is temporarily unavailable")
	// ErrSessionServiceUnavailable: the session service cannot be asked about the session.
	ErrSessionServiceUnavailable = apperr.New(codes.Unavailable, "SESSION_SERVICE_UNAVAILABLE", "session details are temporarily unavailable")
	// ErrNotRunning: the service is not started, or is stopping.
	ErrNotRunning = apperr.New(codes.Unavailable, "GUIDANCE_NOT_READY", "the guidance service is not ready")
)

// storeError maps a store failure: the caller's cancellation stays what it is, anything else is
// the database being unavailable (the cause goes to the log, not the client).
func storeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrStoreUnavailable.WithCause(err)
}

// isAppErr says whether err is already a client-ready *apperr.Error.
func isAppErr(err error) bool {
	var ae *apperr.Error
	return errors.As(err, &ae)
}
