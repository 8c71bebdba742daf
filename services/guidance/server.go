package guidance

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/traceid"
)

// Default and largest GetInsights page sizes; ListPrompts answers at most maxPrompts.
const (
	DefaultInsightsLimit = 50
	MaxInsightsLimit     = 500
	maxPrompts           = 500
)

// server is the gRPC port: requests arrive authenticated and validated (interceptors; the access
// policy admits staff only), it checks what the caller may see, calls the domain and maps errors
// once.
type server struct {
	guidancev1.UnimplementedGuidanceServiceServer
	svc *Service
}

var _ guidancev1.GuidanceServiceServer = (*server)(nil)

// domainError maps what the domain answered to what the client sees: apperr values as they are,
// the caller's cancellation as it is, an analyzer failure as ANALYSIS_FAILED, nothing to analyse
// as NO_TRANSCRIPT, anything else as the store being unavailable.
func domainError(ctx context.Context, err error) error {
	var ae *analysisError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errNothingToAnalyse):
		return ErrNoTranscript
	case errors.As(err, &ae):
		return ErrAnalysisFailed.WithCause(err)
	case isAppErr(err):
		return err
	}
	return storeError(ctx, err)
}

func (s *server) ready() error {
	if !s.svc.running() {
		return ErrNotRunning
	}
	return nil
}

func requestTrace(ctx context.Context) string {
	if t := traceid.FromContext(ctx); t != "" {
		return t
	}
	return traceid.New()
}

// AnalyzeDiscussion runs Tier 1 for one group now: over the transcript lines sent when there are
// any (stored and published, no prompts), else over the group's stored discussion (the span not
// analysed yet, or the latest interval), raising prompts like a scheduled analysis.
func (s *server) AnalyzeDiscussion(ctx context.Context, req *guidancev1.AnalyzeDiscussionRequest) (*guidancev1.AnalyzeDiscussionResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	sessionID, groupID := strings.ToLower(req.GetSessionId()), strings.ToLower(req.GetGroupId())
	_, info, err := s.svc.authorize(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if !info.AIEnabled {
		return nil, ErrAnalysisDisabled
	}
	if _, ok := info.Groups[groupID]; !ok {
		return nil, ErrGroupNotFound.WithMetadata("groupId", groupID)
	}
	trace := requestTrace(ctx)
	var ins *guidancev1.Tier1Insight
	if hasText(req.GetTranscripts()) {
		ins, err = s.svc.analyseLines(ctx, info, groupID, req.GetTranscripts(), req.GetFocusAreas(), trace)
	} else {
		ins, err = s.svc.analyseLatest(ctx, info, groupID, req.GetFocusAreas(), trace)
	}
	if err != nil {
		return nil, domainError(ctx, err)
	}
	return &guidancev1.AnalyzeDiscussionResponse{Insights: ins}, nil
}

func hasText(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return true
		}
	}
	return false
}

// GenerateInsights runs Tier 2 for the session now (all groups, or those named).
func (s *server) GenerateInsights(ctx context.Context, req *guidancev1.GenerateInsightsRequest) (*guidancev1.GenerateInsightsResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	_, info, err := s.svc.authorize(ctx, strings.ToLower(req.GetSessionId()))
	if err != nil {
		return nil, err
	}
	if !info.AIEnabled {
		return nil, ErrAnalysisDisabled
	}
	var groups []string
	for _, g := range req.GetGroupIds() {
		g = strings.ToLower(g)
		if _, ok := info.Groups[g]; !ok {
			return nil, ErrGroupNotFound.WithMetadata("groupId", g)
		}
		if !containsString(groups, g) {
			groups = append(groups, g)
		}
	}
	unlock := s.svc.locks.lock("s:" + info.ID)
	defer unlock()
	ins, err := s.svc.runTier2(ctx, info, groups, req.GetAnalysisDepth(), requestTrace(ctx))
	if err != nil {
		return nil, domainError(ctx, err)
	}
	return &guidancev1.GenerateInsightsResponse{Insights: ins}, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// GetInsights answers a session's stored insights (newest first) and prompts (newest first,
// every status, expiry applied).
func (s *server) GetInsights(ctx context.Context, req *guidancev1.GetInsightsRequest) (*guidancev1.GetInsightsResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	_, info, err := s.svc.authorize(ctx, strings.ToLower(req.GetSessionId()))
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = DefaultInsightsLimit
	}
	limit = min(limit, MaxInsightsLimit)
	q := InsightQuery{SessionID: info.ID, GroupID: strings.ToLower(req.GetGroupId()), Limit: limit}
	if req.GetSince() != nil {
		q.Since = req.GetSince().AsTime()
	}
	resp := &guidancev1.GetInsightsResponse{SessionId: info.ID}
	st := s.svc.store
	if req.GetTier() != 2 {
		if resp.Tier1, err = st.ListTier1(ctx, q); err != nil {
			return nil, storeError(ctx, err)
		}
	}
	if req.GetTier() != 1 {
		if resp.Tier2, err = st.ListTier2(ctx, q); err != nil {
			return nil, storeError(ctx, err)
		}
	}
	now := s.svc.now()
	prompts, err := st.ListPrompts(ctx, PromptQuery{SessionID: info.ID, GroupID: q.GroupID, Since: q.Since, Now: now, Limit: limit})
	if err != nil {
		return nil, storeError(ctx, err)
	}
	for _, p := range prompts {
		resp.Prompts = append(resp.Prompts, promptToProto(p, now))
	}
	return resp, nil
}

// ListPrompts lists a session's prompts with the status asked (pending by default), newest first.
func (s *server) ListPrompts(ctx context.Context, req *guidancev1.ListPromptsRequest) (*guidancev1.ListPromptsResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	_, info, err := s.svc.authorize(ctx, strings.ToLower(req.GetSessionId()))
	if err != nil {
		return nil, err
	}
	now := s.svc.now()
	q := PromptQuery{SessionID: info.ID, Now: now, Limit: maxPrompts}
	switch st := req.GetStatus(); st {
	case "":
		q.Statuses = []string{StatusPending}
	case "all":
	default:
		q.Statuses = []string{st}
	}
	prompts, err := s.svc.store.ListPrompts(ctx, q)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	resp := &guidancev1.ListPromptsResponse{Prompts: make([]*guidancev1.Prompt, 0, len(prompts))}
	for _, p := range prompts {
		resp.Prompts = append(resp.Prompts, promptToProto(p, now))
	}
	return resp, nil
}

// AcknowledgePrompt marks a pending prompt acknowledged (the owning teacher, an admin of the
// school, or a super admin).
func (s *server) AcknowledgePrompt(ctx context.Context, req *guidancev1.AcknowledgePromptRequest) (*guidancev1.AcknowledgePromptResponse, error) {
	p, err := s.act(ctx, req.GetPromptId(), StatusAcknowledged, "")
	if err != nil {
		return nil, err
	}
	return &guidancev1.AcknowledgePromptResponse{Prompt: p}, nil
}

// DismissPrompt dismisses a pending prompt; the group's prompts of that category are held back
// for GUIDANCE_DISMISS_COOLDOWN_FACTOR times the cooldown.
func (s *server) DismissPrompt(ctx context.Context, req *guidancev1.DismissPromptRequest) (*guidancev1.DismissPromptResponse, error) {
	p, err := s.act(ctx, req.GetPromptId(), StatusDismissed, strings.TrimSpace(req.GetReason()))
	if err != nil {
		return nil, err
	}
	return &guidancev1.DismissPromptResponse{Prompt: p}, nil
}

func (s *server) act(ctx context.Context, id, status, reason string) (*guidancev1.Prompt, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	id = strings.ToLower(id)
	svc := s.svc
	p, err := svc.store.GetPrompt(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, ErrPromptNotFound
	}
	if err != nil {
		return nil, storeError(ctx, err)
	}
	who, err := authorizePrompt(ctx, p)
	if err != nil {
		return nil, err
	}
	now := svc.now()
	acted, err := svc.store.ActOnPrompt(ctx, id, status, who.Subject, reason, now)
	switch {
	case errors.Is(err, errNotFound):
		return nil, ErrPromptNotFound
	case errors.Is(err, errAlreadyActed):
		return nil, ErrPromptAlreadyActed.WithMetadata("status", acted.Status)
	case errors.Is(err, errExpired):
		return nil, ErrPromptExpired
	case err != nil:
		return nil, storeError(ctx, err)
	}
	md := map[string]string{"kind": acted.Kind, "category": acted.Category, "priority": acted.Priority, "tier": tierLabel(acted.Tier)}
	if acted.GroupID != "" {
		md["groupId"] = acted.GroupID
	}
	if reason != "" {
		md["reason"] = reason
	}
	svc.audit.Log(ctx, auditlog.Event{
		ActorID: who.Subject, ActorType: actorType(who.Role), EventType: "guidance.prompt_" + status,
		Category: auditlog.CategoryAIAnalysis, ResourceType: "prompt", ResourceID: acted.ID, SchoolID: acted.SchoolID,
		SessionID: acted.SessionID, Description: "teacher prompt " + status, ComplianceBasis: "legitimate_interest", Metadata: md,
	})
	svc.publishActed(ctx, acted, requestTrace(ctx))
	return promptToProto(acted, now), nil
}

func actorType(r authn.Role) string {
	switch r {
	case authn.RoleTeacher:
		return auditlog.ActorTeacher
	case authn.RoleAdmin:
		return auditlog.ActorAdmin
	case authn.RoleSuperAdmin:
		return auditlog.ActorSuperAdmin
	}
	return auditlog.ActorSystem
}

// GetTier1Status answers the Tier 1 system's state (this process's counters).
func (s *server) GetTier1Status(context.Context, *guidancev1.GetTier1StatusRequest) (*guidancev1.GetTier1StatusResponse, error) {
	return &guidancev1.GetTier1StatusResponse{Status: s.svc.tierStatus(1)}, nil
}

// GetTier2Status answers the Tier 2 system's state (this process's counters).
func (s *server) GetTier2Status(context.Context, *guidancev1.GetTier2StatusRequest) (*guidancev1.GetTier2StatusResponse, error) {
	return &guidancev1.GetTier2StatusResponse{Status: s.svc.tierStatus(2)}, nil
}

// GetGuidanceHealth answers the detailed health: both tiers, the database, and delivery.
func (s *server) GetGuidanceHealth(ctx context.Context, _ *guidancev1.GetGuidanceHealthRequest) (*guidancev1.GetGuidanceHealthResponse, error) {
	return s.svc.health(ctx), nil
}

func promptToProto(p Prompt, now time.Time) *guidancev1.Prompt {
	out := &guidancev1.Prompt{
		Id: p.ID, SessionId: p.SessionID, GroupId: p.GroupID, Kind: p.Kind, Category: p.Category, Priority: p.Priority,
		Message: p.Message, Reason: p.Reason, InsightId: p.InsightID, Status: p.effectiveStatus(now),
		CreatedAt: timestamppb.New(p.CreatedAt), ExpiresAt: timestamppb.New(p.ExpiresAt), Tier: int32(p.Tier),
	}
	if !p.ActedAt.IsZero() {
		out.ActedAt = timestamppb.New(p.ActedAt)
	}
	return out
}
