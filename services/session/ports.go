package session

import (
	"context"
	"time"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
)

// TokenIssuer issues a student's token scoped to one session and group (the auth service).
type TokenIssuer interface {
	IssueStudentToken(ctx context.Context, studentID, sessionID, groupID, schoolID, displayName string) (token string, expiresIn int32, err error)
}

// AudioDrainer drains a session's open audio windows (the stt service).
type AudioDrainer interface {
	FlushGroups(ctx context.Context, sessionID string, timeout time.Duration) (timedOutGroupIDs []string, err error)
}

// AuthTokenIssuer is the TokenIssuer over the auth service's gRPC client. The connection must
// carry service credentials (IssueStudentToken is internal).
type AuthTokenIssuer struct{ Client authv1.AuthServiceClient }

var _ TokenIssuer = AuthTokenIssuer{}

// IssueStudentToken implements TokenIssuer.
func (a AuthTokenIssuer) IssueStudentToken(ctx context.Context, studentID, sessionID, groupID, schoolID, displayName string) (string, int32, error) {
	resp, err := a.Client.IssueStudentToken(ctx, &authv1.IssueStudentTokenRequest{
		StudentId: studentID, SessionId: sessionID, GroupId: groupID, SchoolId: schoolID, DisplayName: displayName,
	})
	if err != nil {
		return "", 0, err
	}
	return resp.GetAccessToken(), resp.GetExpiresIn(), nil
}

// SttAudioDrainer is the AudioDrainer over the stt service's gRPC client.
type SttAudioDrainer struct{ Client sttv1.SttServiceClient }

var _ AudioDrainer = SttAudioDrainer{}

// FlushGroups implements AudioDrainer: every group of the session, bounded by timeout.
func (d SttAudioDrainer) FlushGroups(ctx context.Context, sessionID string, timeout time.Duration) ([]string, error) {
	resp, err := d.Client.FlushGroups(ctx, &sttv1.FlushGroupsRequest{SessionId: sessionID, TimeoutMs: int32(timeout / time.Millisecond)})
	if err != nil {
		return nil, err
	}
	return resp.GetTimedOutGroupIds(), nil
}
