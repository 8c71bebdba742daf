// Package session is the session service: sessions, groups, rosters with parental consent, the
// REST-first session lifecycle (created -> active <-> paused -> ended), student joins by access
// code, and retention.
//
// The domain (domain.go, service.go) knows nothing of gRPC or SQL: the gRPC server below is a thin
// port that converts messages, and the Store port (store.go) has one SQL adapter (sqlstore.go) for
// SQLite and PostgreSQL, tested by one contract suite. Collaborators are ports declared here:
// TokenIssuer (auth) and AudioDrainer (stt), with gRPC adapters in ports.go.
package session

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// server is the gRPC port. The interceptors have authenticated the caller, enforced the access
// policy and validated the request; errors are mapped by grpcserver through apperr.
type server struct {
	sessionv1.UnimplementedSessionServiceServer
	svc *Service
}

var _ sessionv1.SessionServiceServer = (*server)(nil)

func principal(ctx context.Context) (authn.Principal, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return authn.Principal{}, authn.ErrUnauthenticated
	}
	return p, nil
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func tsTime(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime().UTC()
	return &v
}

func toProtoSession(s Session, now time.Time) *sessionv1.Session {
	out := &sessionv1.Session{
		Id: s.ID, TeacherId: s.TeacherID, SchoolId: s.SchoolID, Title: s.Title, Description: s.Description,
		Status: string(s.Status), ScheduledStart: ts(s.ScheduledStart), ActualStart: ts(s.ActualStart), ActualEnd: ts(s.ActualEnd),
		TargetGroupSize: int32(s.TargetGroupSize), LearningObjectives: s.LearningObjectives, AccessCode: s.AccessCode,
		GroupCount: int32(s.GroupCount), StudentCount: int32(s.StudentCount), ParticipationRate: s.ParticipationRate(),
		EngagementScore: s.EngagementScore, CreatedAt: timestamppb.New(s.CreatedAt), UpdatedAt: timestamppb.New(s.UpdatedAt),
		AiAnalysisEnabled: s.AIAnalysisEnabled, TranscriptionEnabled: s.TranscriptionEnabled, DurationSeconds: s.ActiveSeconds(now),
	}
	for _, g := range s.Groups {
		out.Groups = append(out.Groups, toProtoGroup(g))
	}
	return out
}

func toProtoGroup(g Group) *sessionv1.Group {
	out := &sessionv1.Group{
		Id: g.ID, SessionId: g.SessionID, Name: g.Name, GroupNumber: int32(g.GroupNumber), Status: g.Status,
		IsReady: g.IsReady, LeaderId: g.LeaderID, MemberCount: int32(g.MemberCount), MaxSize: int32(g.MaxSize), ReadyAt: ts(g.ReadyAt),
	}
	for _, m := range g.Members {
		out.Members = append(out.Members, toProtoMember(m))
	}
	return out
}

func toProtoMember(m Member) *sessionv1.GroupMember {
	return &sessionv1.GroupMember{StudentId: m.StudentID, DisplayName: m.DisplayName, IsLeader: m.IsLeader, JoinedAt: ts(m.JoinedAt)}
}

func toDashboard(s Session) *sessionv1.DashboardSession {
	return &sessionv1.DashboardSession{
		Id: s.ID, Status: string(s.Status), TeacherId: s.TeacherID, SchoolId: s.SchoolID, Title: s.Title,
		Description: s.Description, ScheduledStart: ts(s.ScheduledStart), ActualStart: ts(s.ActualStart),
		CreatedAt: timestamppb.New(s.CreatedAt), TargetGroupSize: int32(s.TargetGroupSize), GroupCount: int32(s.GroupCount),
		StudentCount: int32(s.StudentCount), ParticipationRate: s.ParticipationRate(), EngagementScore: s.EngagementScore,
		AccessCode: s.AccessCode,
	}
}

func toStats(st Stats) *sessionv1.SessionStats {
	return &sessionv1.SessionStats{DurationSeconds: st.DurationSeconds, GroupCount: int32(st.GroupCount),
		StudentCount: int32(st.StudentCount), ReadyGroupCount: int32(st.ReadyGroupCount), JoinedStudentCount: int32(st.JoinedCount)}
}

func (x *server) ListSessions(ctx context.Context, req *sessionv1.ListSessionsRequest) (*sessionv1.ListSessionsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	dashboard := req.GetView() == "dashboard"
	list, total, next, err := x.svc.List(ctx, p, ListParams{Limit: int(req.GetLimit()), PageToken: req.GetPageToken(),
		Status: Status(req.GetStatus()), Dashboard: dashboard})
	if err != nil {
		return nil, err
	}
	resp := &sessionv1.ListSessionsResponse{NextPageToken: next, Total: int32(total)}
	now := x.svc.now()
	for _, s := range list {
		if dashboard {
			resp.Dashboard = append(resp.Dashboard, toDashboard(s))
		} else {
			resp.Sessions = append(resp.Sessions, toProtoSession(s, now))
		}
	}
	return resp, nil
}

func (x *server) CreateSession(ctx context.Context, req *sessionv1.CreateSessionRequest) (*sessionv1.CreateSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	in := CreateInput{
		Title: req.GetTitle(), Description: req.GetDescription(), ScheduledStart: tsTime(req.GetScheduledStart()),
		TargetGroupSize: int(req.GetTargetGroupSize()), LearningObjectives: req.GetLearningObjectives(),
		AIAnalysisEnabled:    req.AiAnalysisEnabled == nil || req.GetAiAnalysisEnabled(),
		TranscriptionEnabled: req.TranscriptionEnabled == nil || req.GetTranscriptionEnabled(),
	}
	for _, g := range req.GetGroups() {
		gi := GroupInput{Name: g.GetName(), LeaderIndex: int(g.GetLeaderIndex()), MaxSize: int(g.GetMaxSize())}
		if len(g.GetMembers()) == 0 && g.GetLeaderIndex() == 0 {
			gi.LeaderIndex = -1 // absent leader_index on a group without members
		}
		for _, m := range g.GetMembers() {
			gi.Members = append(gi.Members, Student{ID: m.GetStudentId(), DisplayName: m.GetDisplayName(), Email: m.GetEmail(), Under13: m.GetUnder_13()})
		}
		in.Groups = append(in.Groups, gi)
	}
	s, err := x.svc.Create(ctx, p, in)
	if err != nil {
		return nil, err
	}
	return &sessionv1.CreateSessionResponse{Session: toProtoSession(s, x.svc.now())}, nil
}

func (x *server) GetSession(ctx context.Context, req *sessionv1.GetSessionRequest) (*sessionv1.GetSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	s, err := x.svc.Get(ctx, p, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return &sessionv1.GetSessionResponse{Session: toProtoSession(s, x.svc.now())}, nil
}

func (x *server) UpdateSession(ctx context.Context, req *sessionv1.UpdateSessionRequest) (*sessionv1.UpdateSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	patch := SessionPatch{Title: req.Title, Description: req.Description, ScheduledStart: tsTime(req.GetScheduledStart()),
		LearningObjectives: req.GetLearningObjectives(), AIAnalysisEnabled: req.AiAnalysisEnabled, TranscriptionEnabled: req.TranscriptionEnabled}
	if req.TargetGroupSize != nil {
		v := int(req.GetTargetGroupSize())
		patch.TargetGroupSize = &v
	}
	s, err := x.svc.Update(ctx, p, req.GetSessionId(), patch)
	if err != nil {
		return nil, err
	}
	return &sessionv1.UpdateSessionResponse{Session: toProtoSession(s, x.svc.now())}, nil
}

func (x *server) StartSession(ctx context.Context, req *sessionv1.StartSessionRequest) (*sessionv1.StartSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := x.svc.StartSession(ctx, p, req.GetSessionId(), req.GetForce())
	if err != nil {
		return nil, err
	}
	return &sessionv1.StartSessionResponse{Session: toProtoSession(r.Session, x.svc.now()), NotReadyGroupIds: r.NotReady}, nil
}

func (x *server) PauseSession(ctx context.Context, req *sessionv1.PauseSessionRequest) (*sessionv1.PauseSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := x.svc.PauseSession(ctx, p, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return &sessionv1.PauseSessionResponse{Session: toProtoSession(r.Session, x.svc.now())}, nil
}

func (x *server) ResumeSession(ctx context.Context, req *sessionv1.ResumeSessionRequest) (*sessionv1.ResumeSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := x.svc.ResumeSession(ctx, p, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return &sessionv1.ResumeSessionResponse{Session: toProtoSession(r.Session, x.svc.now())}, nil
}

func (x *server) EndSession(ctx context.Context, req *sessionv1.EndSessionRequest) (*sessionv1.EndSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := x.svc.EndSession(ctx, p, req.GetSessionId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &sessionv1.EndSessionResponse{Session: toProtoSession(r.Session, x.svc.now()), Stats: toStats(r.Stats),
		DrainTimedOutGroupIds: r.DrainTimedOut}, nil
}

func groupsStatus(sessionID string, groups []Group) *sessionv1.GetGroupsStatusResponse {
	resp := &sessionv1.GetGroupsStatusResponse{SessionId: sessionID, TotalCount: int32(len(groups))}
	for _, g := range groups {
		resp.Groups = append(resp.Groups, toProtoGroup(g))
		if g.IsReady {
			resp.ReadyCount++
		}
	}
	resp.AllReady = len(groups) > 0 && resp.ReadyCount == resp.TotalCount
	return resp
}

func (x *server) GetGroupsStatus(ctx context.Context, req *sessionv1.GetGroupsStatusRequest) (*sessionv1.GetGroupsStatusResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := x.svc.GroupsStatus(ctx, p, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return groupsStatus(req.GetSessionId(), groups), nil
}

func (x *server) JoinSession(ctx context.Context, req *sessionv1.JoinSessionRequest) (*sessionv1.JoinSessionResponse, error) {
	a, err := x.svc.Join(ctx, JoinRequest{AccessCode: req.GetAccessCode(), DisplayName: req.GetDisplayName(),
		GroupID: req.GetGroupId(), StudentID: req.GetStudentId(), Under13: req.GetUnder_13()})
	if err != nil {
		return nil, err
	}
	// A student sees the session without the roster of other groups.
	sess := a.Session
	sess.Groups = nil
	return &sessionv1.JoinSessionResponse{Session: toProtoSession(sess, x.svc.now()), Group: toProtoGroup(a.Group),
		Student: toProtoMember(a.Member), Token: a.Token, ExpiresIn: a.ExpiresIn}, nil
}

func (x *server) RecordParentalConsent(ctx context.Context, req *sessionv1.RecordParentalConsentRequest) (*sessionv1.RecordParentalConsentResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	c := Consent{StudentID: req.GetStudentId(), GuardianName: req.GetGuardianName(), Method: req.GetMethod()}
	if t := tsTime(req.GetConsentedAt()); t != nil {
		c.ConsentedAt = *t
	}
	out, err := x.svc.RecordConsent(ctx, p, req.GetSessionId(), c)
	if err != nil {
		return nil, err
	}
	return &sessionv1.RecordParentalConsentResponse{Consent: &sessionv1.ConsentRecord{StudentId: out.StudentID,
		GuardianName: out.GuardianName, Method: out.Method, ConsentedAt: timestamppb.New(out.ConsentedAt), RecordedBy: out.RecordedBy}}, nil
}

func (x *server) UpdateGroupStatus(ctx context.Context, req *sessionv1.UpdateGroupStatusRequest) (*sessionv1.UpdateGroupStatusResponse, error) {
	traceID := req.GetTraceId()
	if traceID == "" {
		traceID = traceid.FromContext(ctx)
	}
	g, err := x.svc.UpdateGroupStatus(ctx, req.GetSessionId(), req.GetGroupId(), req.GetStatus(), req.GetIsReady(), traceID)
	if err != nil {
		return nil, err
	}
	return &sessionv1.UpdateGroupStatusResponse{Group: toProtoGroup(g)}, nil
}

func (x *server) AuthorizeRealtimeJoin(ctx context.Context, req *sessionv1.AuthorizeRealtimeJoinRequest) (*sessionv1.AuthorizeRealtimeJoinResponse, error) {
	p := authn.Principal{Subject: req.GetSubject(), Role: authn.Role(req.GetRole()), SchoolID: req.GetSchoolId()}
	d, err := x.svc.AuthorizeRealtimeJoin(ctx, p, req.GetSessionId(), req.GetGroupId())
	if err != nil {
		return nil, err
	}
	return &sessionv1.AuthorizeRealtimeJoinResponse{Allowed: d.Allowed, Reason: d.Reason, SessionStatus: string(d.Session.Status),
		SchoolId: d.Session.SchoolID, TeacherId: d.Session.TeacherID}, nil
}

func (x *server) GetSessionContext(ctx context.Context, req *sessionv1.GetSessionContextRequest) (*sessionv1.GetSessionContextResponse, error) {
	s, err := x.svc.SessionContext(ctx, req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return &sessionv1.GetSessionContextResponse{Session: toProtoSession(s, x.svc.now())}, nil
}

func (x *server) PurgeExpiredSessions(ctx context.Context, req *sessionv1.PurgeExpiredSessionsRequest) (*sessionv1.PurgeExpiredSessionsResponse, error) {
	p, _ := authn.FromContext(ctx) // a service principal; absent when run as a command
	ids, err := x.svc.Purge(ctx, p, req.GetDryRun(), int(req.GetRetentionDays()))
	if err != nil {
		return nil, err
	}
	return &sessionv1.PurgeExpiredSessionsResponse{PurgedSessionIds: ids, PurgedCount: int32(len(ids))}, nil
}
