package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/authn"
)

// Page sizes of the admin listings.
const (
	defaultPageSize = 50
	maxPageSize     = 200
	// maxPageTokenLen bounds a page token before it is decoded (the proto allows 256).
	maxPageTokenLen = 256
)

// pageLimit is the page size a request asks for.
func pageLimit(requested int32) int {
	switch {
	case requested <= 0:
		return defaultPageSize
	case requested > maxPageSize:
		return maxPageSize
	}
	return int(requested)
}

// encodePageToken renders a cursor as an opaque token: base64url of the JSON array [key, id].
func encodePageToken(c Cursor) string {
	b, _ := json.Marshal([2]string{c.Key, c.ID}) // two strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken parses a token made by encodePageToken; "" is the first page.
func decodePageToken(tok string) (*Cursor, error) {
	if tok == "" {
		return nil, nil
	}
	if len(tok) > maxPageTokenLen {
		return nil, errPageToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		return nil, errPageToken
	}
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) != 2 {
		return nil, errPageToken
	}
	if u, err := uuid.Parse(parts[1]); err != nil || u.String() != parts[1] {
		return nil, errPageToken
	}
	return &Cursor{Key: parts[0], ID: parts[1]}, nil
}

// principal is the caller of an admin RPC (the interceptor has checked its role).
func principal(ctx context.Context) (authn.Principal, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return authn.Principal{}, authn.ErrUnauthenticated
	}
	return p, nil
}

// auditAdmin records an admin action by p.
func (s *Service) auditAdmin(ctx context.Context, p authn.Principal, e auditlog.Event) {
	e.ActorID, e.ActorType = p.Subject, actorType(string(p.Role))
	if e.Category == "" {
		e.Category = auditlog.CategoryConfiguration
	}
	s.auditLog(ctx, e)
}

// listSchools lists schools by name (super admins; the policy checks the role).
func (s *Service) listSchools(ctx context.Context, query string, pageSize int32, pageToken string) ([]School, string, int, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, "", 0, err
	}
	after, err := decodePageToken(pageToken)
	if err != nil {
		return nil, "", 0, err
	}
	limit := pageLimit(pageSize)
	schools, total, err := s.store.ListSchools(ctx, SchoolQuery{Query: strings.TrimSpace(query), Page: Page{Limit: limit + 1, After: after}})
	if err != nil {
		return nil, "", 0, err
	}
	next := ""
	if len(schools) > limit {
		schools = schools[:limit]
		last := schools[limit-1]
		next = encodePageToken(Cursor{Key: last.Name, ID: last.ID})
	}
	s.auditAdmin(ctx, p, auditlog.Event{
		EventType: "admin.schools.list", Category: auditlog.CategoryDataAccess, ResourceType: "school",
		Metadata: map[string]string{"returned": fmt.Sprint(len(schools))},
	})
	return schools, next, total, nil
}

// newSchool is a school to register.
type newSchool struct {
	Name, Domain, Tier            string
	MaxTeachers, STTMinutesPerDay int
	FERPA, COPPA                  bool
}

// createSchool registers a school and its Workspace domain.
func (s *Service) createSchool(ctx context.Context, in newSchool) (School, error) {
	p, err := principal(ctx)
	if err != nil {
		return School{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	x := School{
		ID: uuid.NewString(), Name: strings.TrimSpace(in.Name), Domain: normalizeDomain(in.Domain),
		SubscriptionTier: in.Tier, SubscriptionStatus: SubscriptionActive,
		MaxTeachers: in.MaxTeachers, STTMinutesPerDay: in.STTMinutesPerDay,
		FERPAAgreement: in.FERPA, COPPACompliant: in.COPPA, CreatedAt: now, UpdatedAt: now,
	}
	if x.SubscriptionTier == "" {
		x.SubscriptionTier = TierFree
	}
	if x.Name == "" {
		return School{}, errBlankName
	}
	if err := s.store.CreateSchool(ctx, x); err != nil {
		return School{}, storeError(err, nil)
	}
	s.auditAdmin(ctx, p, auditlog.Event{
		EventType: "admin.school.create", ResourceType: "school", ResourceID: x.ID, SchoolID: x.ID,
		Description: "school registered", Priority: auditlog.PriorityCritical,
		Metadata: map[string]string{"domain": x.Domain, "subscriptionTier": x.SubscriptionTier,
			"maxTeachers": fmt.Sprint(x.MaxTeachers)},
	})
	return x, nil
}

// updateSchool changes the fields u sets.
func (s *Service) updateSchool(ctx context.Context, id string, u SchoolUpdate) (School, error) {
	p, err := principal(ctx)
	if err != nil {
		return School{}, err
	}
	var fields []string
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		if n == "" {
			return School{}, errBlankName
		}
		u.Name = &n
		fields = append(fields, "name")
	}
	if u.Domain != nil {
		d := normalizeDomain(*u.Domain)
		u.Domain = &d
		fields = append(fields, "domain")
	}
	for name, set := range map[string]bool{
		"subscriptionTier": u.SubscriptionTier != nil, "subscriptionStatus": u.SubscriptionStatus != nil,
		"maxTeachers": u.MaxTeachers != nil, "sttMinutesPerDay": u.STTMinutesPerDay != nil,
		"ferpaAgreement": u.FERPAAgreement != nil, "coppaCompliant": u.COPPACompliant != nil,
	} {
		if set {
			fields = append(fields, name)
		}
	}
	slices.Sort(fields)
	x, err := s.store.UpdateSchool(ctx, id, u, s.now())
	if err != nil {
		return School{}, storeError(err, errSchoolNotFound)
	}
	md := map[string]string{"fields": strings.Join(fields, ",")}
	if u.Domain != nil {
		md["domain"] = x.Domain
	}
	if u.SubscriptionStatus != nil {
		md["subscriptionStatus"] = x.SubscriptionStatus
	}
	s.auditAdmin(ctx, p, auditlog.Event{
		EventType: "admin.school.update", ResourceType: "school", ResourceID: x.ID, SchoolID: x.ID,
		Description: "school updated", Priority: auditlog.PriorityCritical, Metadata: md,
	})
	return x, nil
}

// listTeachers lists teachers by e-mail: an admin those of its own school (whatever schoolID
// says), a super admin those of schoolID, or of every school when it is "".
func (s *Service) listTeachers(ctx context.Context, schoolID string, pageSize int32, pageToken string) ([]Teacher, string, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, "", err
	}
	if p.Role != authn.RoleSuperAdmin {
		schoolID = p.SchoolID
	}
	after, err := decodePageToken(pageToken)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(pageSize)
	teachers, err := s.store.ListTeachers(ctx, TeacherQuery{SchoolID: strings.ToLower(schoolID), Page: Page{Limit: limit + 1, After: after}})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(teachers) > limit {
		teachers = teachers[:limit]
		last := teachers[limit-1]
		next = encodePageToken(Cursor{Key: last.Email, ID: last.ID})
	}
	s.auditAdmin(ctx, p, auditlog.Event{
		EventType: "admin.teachers.list", Category: auditlog.CategoryDataAccess, ResourceType: "teacher",
		SchoolID: schoolID, Metadata: map[string]string{"returned": fmt.Sprint(len(teachers))},
	})
	return teachers, next, nil
}

// updateTeacherRole sets a teacher's role and optionally status. Nobody changes their own (a
// super admin cannot lock the platform out by demoting itself). A teacher made inactive or
// suspended loses every refresh token family at once; its access tokens lapse within their TTL.
// Role changes reach the teacher at its next refresh.
func (s *Service) updateTeacherRole(ctx context.Context, id, role, status string) (Teacher, error) {
	p, err := principal(ctx)
	if err != nil {
		return Teacher{}, err
	}
	if strings.EqualFold(id, p.Subject) {
		return Teacher{}, errOwnRole
	}
	before, err := s.store.GetTeacher(ctx, strings.ToLower(id))
	if err != nil {
		return Teacher{}, storeError(err, errTeacherNotFound)
	}
	now := s.now()
	after, err := s.store.UpdateTeacherRole(ctx, before.ID, role, status, now)
	if err != nil {
		return Teacher{}, storeError(err, errTeacherNotFound)
	}
	revoked := 0
	if after.Status != StatusActive {
		if revoked, err = s.store.RevokeTeacherFamilies(ctx, after.ID, now, revokeInactive); err != nil {
			return Teacher{}, err
		}
	}
	s.auditAdmin(ctx, p, auditlog.Event{
		EventType: "admin.teacher.update_role", ResourceType: "teacher", ResourceID: after.ID, SchoolID: after.SchoolID,
		Description: "teacher role or status changed", Priority: auditlog.PriorityCritical,
		Metadata: map[string]string{
			"oldRole": before.Role, "newRole": after.Role, "oldStatus": before.Status, "newStatus": after.Status,
			"revokedFamilies": fmt.Sprint(revoked),
		},
	})
	return after, nil
}

// normalizeDomain is how Workspace domains are stored and compared: lower case, without a
// trailing dot.
func normalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}
