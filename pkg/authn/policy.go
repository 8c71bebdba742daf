package authn

import (
	"slices"
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
)

// ruleKind is what a Rule asks of the caller.
type ruleKind int

const (
	kindPublic ruleKind = iota + 1
	kindAuthenticated
	kindRoles
	kindStudentScoped
	kindInternal
)

// Rule says who may call an RPC. The zero Rule admits nobody.
type Rule struct {
	kind  ruleKind
	roles []Role // kindRoles: the roles admitted; kindStudentScoped: the staff roles admitted
}

// The rules without parameters.
var (
	// Public admits everyone. A valid token, if one is sent, still puts its principal in the
	// context (so Logout can find the caller); an invalid or expired one is ignored, so a stale
	// token never blocks signing in or refreshing.
	Public = Rule{kind: kindPublic}
	// Authenticated admits any signed-in person: staff of any role and students. Not services.
	Authenticated = Rule{kind: kindAuthenticated}
	// Internal admits only service principals (role service): calls between ClassWaves services,
	// never a browser.
	Internal = Rule{kind: kindInternal}
)

// Roles admits the given roles. There is no role hierarchy: a rule that admits super_admin says so.
func Roles(roles ...Role) Rule { return Rule{kind: kindRoles, roles: slices.Clone(roles)} }

// StudentScoped admits students whose token opens the request's session (its session_id field) and,
// when the request names one (group_id), its group; and the given staff roles without that check.
func StudentScoped(staff ...Role) Rule {
	return Rule{kind: kindStudentScoped, roles: slices.Clone(staff)}
}

// String describes the rule, for test output and logs.
func (r Rule) String() string {
	names := make([]string, len(r.roles))
	for i, role := range r.roles {
		names[i] = string(role)
	}
	switch r.kind {
	case kindPublic:
		return "Public"
	case kindAuthenticated:
		return "Authenticated"
	case kindInternal:
		return "Internal"
	case kindRoles:
		return "Roles(" + strings.Join(names, ", ") + ")"
	case kindStudentScoped:
		return "StudentScoped(" + strings.Join(names, ", ") + ")"
	}
	return "Deny"
}

// IsPublic reports whether r admits callers without a token.
func (r Rule) IsPublic() bool { return r.kind == kindPublic }

// Admits reports whether r's roles include role (false for Public, Authenticated and Internal,
// which are not role lists).
func (r Rule) Admits(role Role) bool {
	return (r.kind == kindRoles || r.kind == kindStudentScoped) && slices.Contains(r.roles, role)
}

// Policy maps a full gRPC method name ("/classwaves.session.v1.SessionService/CreateSession") to
// its rule. A method that is not in the policy is denied (ErrNoRule).
type Policy map[string]Rule

// Staff roles, the most common rule.
var staff = []Role{RoleTeacher, RoleAdmin, RoleSuperAdmin}

// DefaultPolicy returns the access policy of ClassWaves: the one place that says who may call each
// RPC. A test checks that every method of every service in pkg/api (plus health and reflection)
// has a rule, that no rule names a method that does not exist, and that every /api/v1/admin/**
// route requires super_admin, admitting admin only where its rule says so.
//
// Rules say who may call at all; what a caller may see is the service's to check: a teacher only
// their own school's data (SameSchool) and their own sessions, a student only its session and group
// (InScope).
//
// Internal RPCs are called by other ClassWaves services with a service token (role service)
// minted by services/auth/token and attached by ServiceCredentials; they are never routed by the
// gateway (they have no HTTP binding).
func DefaultPolicy() Policy {
	staffRule := Roles(staff...)
	adminRule := Roles(RoleAdmin, RoleSuperAdmin)
	superAdmin := Roles(RoleSuperAdmin)
	return Policy{
		// Probes and tooling.
		healthpb.Health_Check_FullMethodName:                             Public,
		healthpb.Health_Watch_FullMethodName:                             Public,
		healthpb.Health_List_FullMethodName:                              Public,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      Public,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Public,
		systemv1.SystemService_GetHealth_FullMethodName:                  Public,
		systemv1.SystemService_GetReadiness_FullMethodName:               Public,

		// Auth: signing in and refreshing carry their own credentials (Google code, refresh
		// token, E2E_TEST_SECRET), so they are public; the test-token RPCs answer 404 in
		// production themselves.
		authv1.AuthService_GoogleSignIn_FullMethodName:      Public,
		authv1.AuthService_GoogleCallback_FullMethodName:    Public,
		authv1.AuthService_RefreshToken_FullMethodName:      Public,
		authv1.AuthService_Logout_FullMethodName:            Public,
		authv1.AuthService_GetJwks_FullMethodName:           Public,
		authv1.AuthService_GenerateTestToken_FullMethodName: Public,
		authv1.AuthService_IssueTestToken_FullMethodName:    Public,
		authv1.AuthService_GetCurrentUser_FullMethodName:    Authenticated,
		authv1.AuthService_GetCsrfToken_FullMethodName:      Authenticated,
		authv1.AuthService_VerifyToken_FullMethodName:       Internal,
		authv1.AuthService_IssueStudentToken_FullMethodName: Internal,
		// The caller has no token yet: it proves itself with INTERNAL_SERVICE_SECRET.
		authv1.AuthService_IssueServiceToken_FullMethodName: Public,

		// Admin (/api/v1/admin/**): super_admin, except where admin is named.
		authv1.AdminService_ListSchools_FullMethodName:       superAdmin,
		authv1.AdminService_CreateSchool_FullMethodName:      superAdmin,
		authv1.AdminService_UpdateSchool_FullMethodName:      superAdmin,
		authv1.AdminService_ListTeachers_FullMethodName:      adminRule, // admin: own school
		authv1.AdminService_UpdateTeacherRole_FullMethodName: superAdmin,

		// Sessions.
		sessionv1.SessionService_ListSessions_FullMethodName:          staffRule,
		sessionv1.SessionService_CreateSession_FullMethodName:         staffRule,
		sessionv1.SessionService_GetSession_FullMethodName:            staffRule,
		sessionv1.SessionService_UpdateSession_FullMethodName:         staffRule,
		sessionv1.SessionService_StartSession_FullMethodName:          staffRule,
		sessionv1.SessionService_PauseSession_FullMethodName:          staffRule,
		sessionv1.SessionService_ResumeSession_FullMethodName:         staffRule,
		sessionv1.SessionService_EndSession_FullMethodName:            staffRule,
		sessionv1.SessionService_GetGroupsStatus_FullMethodName:       staffRule,
		sessionv1.SessionService_RecordParentalConsent_FullMethodName: staffRule,
		// Students join with the session's access code and receive their scoped token.
		sessionv1.SessionService_JoinSession_FullMethodName:           Public,
		sessionv1.SessionService_UpdateGroupStatus_FullMethodName:     StudentScoped(RoleTeacher, RoleAdmin, RoleSuperAdmin, RoleService),
		sessionv1.SessionService_AuthorizeRealtimeJoin_FullMethodName: Internal,
		sessionv1.SessionService_GetSessionContext_FullMethodName:     Internal,
		sessionv1.SessionService_PurgeExpiredSessions_FullMethodName:  Internal,

		// Speech to text.
		sttv1.SttService_StreamAudio_FullMethodName:     Internal,
		sttv1.SttService_FlushGroups_FullMethodName:     Internal,
		sttv1.SttService_ListTranscripts_FullMethodName: staffRule,
		sttv1.SttService_GetBudgetUsage_FullMethodName:  staffRule,

		// Guidance.
		guidancev1.GuidanceService_AnalyzeDiscussion_FullMethodName: staffRule,
		guidancev1.GuidanceService_GenerateInsights_FullMethodName:  staffRule,
		guidancev1.GuidanceService_GetInsights_FullMethodName:       staffRule,
		guidancev1.GuidanceService_GetTier1Status_FullMethodName:    staffRule,
		guidancev1.GuidanceService_GetTier2Status_FullMethodName:    staffRule,
		guidancev1.GuidanceService_ListPrompts_FullMethodName:       staffRule,
		guidancev1.GuidanceService_AcknowledgePrompt_FullMethodName: staffRule,
		guidancev1.GuidanceService_DismissPrompt_FullMethodName:     staffRule,
		guidancev1.GuidanceService_GetGuidanceHealth_FullMethodName: staffRule,

		// Analytics.
		analyticsv1.AnalyticsService_GetSessionAnalytics_FullMethodName:    staffRule,
		analyticsv1.AnalyticsService_ExportSessionAnalytics_FullMethodName: staffRule,
		analyticsv1.AnalyticsService_GetSessionSummaries_FullMethodName:    staffRule,
		analyticsv1.AnalyticsService_GetGroupSummary_FullMethodName:        staffRule,
		analyticsv1.AnalyticsService_GetSystemAnalytics_FullMethodName:     adminRule,
		analyticsv1.AnalyticsService_GetComponentsHealth_FullMethodName:    adminRule,
		analyticsv1.AnalyticsService_GetPlatformAnalytics_FullMethodName:   superAdmin,
		analyticsv1.AnalyticsService_RetryFinalization_FullMethodName:      adminRule, // admin: own school

		// Audit.
		auditv1.AuditService_RecordEvents_FullMethodName:  Internal,
		auditv1.AuditService_QueryAuditLog_FullMethodName: adminRule, // admin: own school

		// Realtime: the seed's dev observability endpoint is open outside production and gated by
		// DEV_OBSERVABILITY_TOKEN in production, which the realtime service checks itself.
		realtimev1.RealtimeService_GetActiveConnections_FullMethodName: Public,
	}
}
