package authn

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	analyticsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/analytics/v1"
	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	systemv1 "github.com/classwaves/classwaves/pkg/api/classwaves/system/v1"
	"github.com/classwaves/classwaves/pkg/grpcserver"
)

// registerAll registers every service of pkg/api on s, unimplemented.
func registerAll(s grpc.ServiceRegistrar) {
	authv1.RegisterAuthServiceServer(s, authv1.UnimplementedAuthServiceServer{})
	authv1.RegisterAdminServiceServer(s, authv1.UnimplementedAdminServiceServer{})
	sessionv1.RegisterSessionServiceServer(s, sessionv1.UnimplementedSessionServiceServer{})
	sttv1.RegisterSttServiceServer(s, sttv1.UnimplementedSttServiceServer{})
	guidancev1.RegisterGuidanceServiceServer(s, guidancev1.UnimplementedGuidanceServiceServer{})
	analyticsv1.RegisterAnalyticsServiceServer(s, analyticsv1.UnimplementedAnalyticsServiceServer{})
	auditv1.RegisterAuditServiceServer(s, auditv1.UnimplementedAuditServiceServer{})
	realtimev1.RegisterRealtimeServiceServer(s, realtimev1.UnimplementedRealtimeServiceServer{})
	systemv1.RegisterSystemServiceServer(s, systemv1.UnimplementedSystemServiceServer{})
}

// generatedServices lists the ServiceName of every grpc.ServiceDesc generated under pkg/api, read
// from the files, so a new service that registerAll forgets fails the test.
func generatedServices(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../api/classwaves/*/v1/*_grpc.pb.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated gRPC files found: %v", err)
	}
	re := regexp.MustCompile(`ServiceName:\s+"([^"]+)"`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
	}
	slices.Sort(out)
	return out
}

// httpPaths returns the paths of a method's google.api.http bindings.
func httpPaths(m protoreflect.MethodDescriptor) []string {
	rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
	if rule == nil {
		return nil
	}
	var out []string
	for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
		for _, p := range []string{r.GetGet(), r.GetPost(), r.GetPut(), r.GetPatch(), r.GetDelete(), r.GetCustom().GetPath()} {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func TestEveryRegisteredMethodHasARule(t *testing.T) {
	srv := grpcserver.New(grpcserver.Config{}, nil)
	registerAll(srv.GRPC())
	policy := DefaultPolicy()

	var registered []string
	methods := map[string]bool{}
	for name, info := range srv.GRPC().GetServiceInfo() {
		if strings.HasPrefix(name, "classwaves.") {
			registered = append(registered, name)
		}
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			methods[full] = true
			rule, ok := policy[full]
			if !ok || rule.kind == 0 {
				t.Errorf("%s has no rule in DefaultPolicy", full)
			}
		}
	}
	slices.Sort(registered)
	if want := generatedServices(t); !slices.Equal(registered, want) {
		t.Errorf("registered services = %v, want every generated one %v (add the new service to registerAll)", registered, want)
	}
	for full := range policy {
		if !methods[full] {
			t.Errorf("DefaultPolicy has a rule for %s, which no registered service has", full)
		}
	}
	for _, m := range []string{"/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		if !methods[m] || !policy[m].IsPublic() {
			t.Errorf("%s: registered %v, rule %v; want a registered public method", m, methods[m], policy[m])
		}
	}
}

// Admin routes need super_admin unless their rule admits admin; RPCs without an HTTP binding are
// the internal ones, and nothing routed by the gateway is internal.
func TestPolicyShape(t *testing.T) {
	policy := DefaultPolicy()
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "classwaves.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				full := "/" + string(sd.FullName()) + "/" + string(md.Name())
				rule := policy[full]
				paths := httpPaths(md)
				admin := slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, "/api/v1/admin/") })
				if admin {
					onlyAdmins := !slices.ContainsFunc(rule.roles, func(r Role) bool { return r != RoleAdmin && r != RoleSuperAdmin })
					if rule.kind != kindRoles || !rule.Admits(RoleSuperAdmin) || !onlyAdmins {
						t.Errorf("%s (%v) is an admin route with rule %v, want Roles(super_admin) or Roles(admin, super_admin)", full, paths, rule)
					}
				}
				// The one exception: the service-token exchange has no route and is Public (its caller
				// has no token yet; the shared secret is checked by the auth service).
				exchange := full == authv1.AuthService_IssueServiceToken_FullMethodName && rule.kind == kindPublic && len(paths) == 0
				if !exchange && (len(paths) == 0) != (rule.kind == kindInternal) {
					t.Errorf("%s has HTTP bindings %v and rule %v: RPCs without a binding are Internal, and only they", full, paths, rule)
				}
			}
		}
		return true
	})
}

func TestPolicySpotChecks(t *testing.T) {
	policy := DefaultPolicy()
	tests := []struct {
		method string
		want   string
	}{
		{sessionv1.SessionService_CreateSession_FullMethodName, "Roles(teacher, admin, super_admin)"},
		{sessionv1.SessionService_JoinSession_FullMethodName, "Public"},
		{sessionv1.SessionService_PurgeExpiredSessions_FullMethodName, "Internal"},
		{authv1.AdminService_ListSchools_FullMethodName, "Roles(super_admin)"},
		{authv1.AdminService_ListTeachers_FullMethodName, "Roles(admin, super_admin)"},
		{authv1.AuthService_GetCurrentUser_FullMethodName, "Authenticated"},
		{authv1.AuthService_IssueStudentToken_FullMethodName, "Internal"},
		{authv1.AuthService_GetJwks_FullMethodName, "Public"},
		{sttv1.SttService_StreamAudio_FullMethodName, "Internal"},
		{analyticsv1.AnalyticsService_GetPlatformAnalytics_FullMethodName, "Roles(super_admin)"},
		{systemv1.SystemService_GetHealth_FullMethodName, "Public"},
		{"/classwaves.session.v1.SessionService/DropAllTables", "Deny"},
	}
	for _, tt := range tests {
		if got := policy[tt.method].String(); got != tt.want {
			t.Errorf("rule of %s = %s, want %s", tt.method, got, tt.want)
		}
	}
}

func TestRolesCopiesItsArguments(t *testing.T) {
	roles := []Role{RoleAdmin}
	r := Roles(roles...)
	roles[0] = RoleStudent
	if !r.Admits(RoleAdmin) || r.Admits(RoleStudent) {
		t.Errorf("Roles() shares its argument slice: %v", r)
	}
}
