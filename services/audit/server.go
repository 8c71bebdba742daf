package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	auditv1 "github.com/classwaves/classwaves/pkg/api/classwaves/audit/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
)

// DefaultPageSize is QueryAuditLog's page size when the request names none.
const DefaultPageSize = 50

// Errors the gRPC server answers, with their stable reasons.
var (
	// ErrInvalidPageToken: page_token is not one this service issued.
	ErrInvalidPageToken = apperr.New(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "the page token is not valid")
	// ErrInvalidTimeRange: start_time is not before end_time.
	ErrInvalidTimeRange = apperr.New(codes.InvalidArgument, "INVALID_TIME_RANGE", "start time must be before end time")
	// ErrOtherSchool: an admin asked for another school's audit log.
	ErrOtherSchool = apperr.New(codes.PermissionDenied, apperr.ReasonForbidden, "admins can only read their own school's audit log")
	// ErrInvalidEvent: RecordEvents got an event that is not fit to store.
	ErrInvalidEvent = apperr.New(codes.InvalidArgument, "INVALID_AUDIT_EVENT", "an audit event is not valid")
	// ErrUnavailable: the audit database cannot be reached.
	ErrUnavailable = apperr.New(codes.Unavailable, "AUDIT_LOG_UNAVAILABLE", "the audit log is temporarily unavailable")
)

// server is the gRPC port: requests arrive validated (the protovalidate interceptor), it calls the
// store through the port and maps errors once.
type server struct {
	auditv1.UnimplementedAuditServiceServer
	svc *Service
}

var _ auditv1.AuditServiceServer = (*server)(nil)

// RecordEvents stores a batch synchronously, idempotently by id: events already stored count as
// duplicates. Events are scrubbed like the worker's (e-mail and IP redaction, size bounds) and
// are never sampled. Internal: it is not exposed over REST.
func (s *server) RecordEvents(ctx context.Context, req *auditv1.RecordEventsRequest) (*auditv1.RecordEventsResponse, error) {
	recs := make([]Record, 0, len(req.GetEvents()))
	for i, ev := range req.GetEvents() {
		ev = proto.CloneOf(ev)
		if reason := checkEvent(ev); reason != "" {
			return nil, ErrInvalidEvent.WithField(fmt.Sprintf("events[%d]", i), reason)
		}
		recs = append(recs, recordFromProto(ev))
	}
	n, err := s.svc.store.Insert(ctx, recs)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	return &auditv1.RecordEventsResponse{
		Stored:     int32(n),
		Duplicates: int32(len(recs) - n),
	}, nil
}

// QueryAuditLog lists records newest first. Admins and super admins only; an admin's query is
// always limited to its own school (asking for another is FORBIDDEN), a super admin's is limited
// to school_id when given.
func (s *server) QueryAuditLog(ctx context.Context, req *auditv1.QueryAuditLogRequest) (*auditv1.QueryAuditLogResponse, error) {
	p, err := authn.Require(ctx, authn.RoleAdmin, authn.RoleSuperAdmin)
	if err != nil {
		return nil, err
	}
	school := req.GetSchoolId()
	if p.Role == authn.RoleAdmin {
		if p.SchoolID == "" || (school != "" && !strings.EqualFold(school, p.SchoolID)) {
			return nil, ErrOtherSchool
		}
		school = p.SchoolID
	}
	q := Query{
		SchoolID:  school,
		ActorID:   req.GetActorId(),
		EventType: req.GetEventType(),
		Category:  req.GetEventCategory(),
		SessionID: req.GetSessionId(),
		Limit:     int(req.GetPageSize()),
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	if req.GetStartTime() != nil {
		q.From = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		q.To = req.GetEndTime().AsTime()
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, ErrInvalidTimeRange.WithField("start_time", "must be before end_time")
	}
	if tok := req.GetPageToken(); tok != "" {
		c, err := DecodePageToken(tok)
		if err != nil {
			return nil, ErrInvalidPageToken.WithCause(err).WithField("page_token", "not a token from a previous page")
		}
		q.After = &c
	}
	page, err := s.svc.store.Query(ctx, q)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	resp := &auditv1.QueryAuditLogResponse{Events: make([]*auditv1.AuditEvent, 0, len(page.Records))}
	for _, r := range page.Records {
		resp.Events = append(resp.Events, recordToProto(r))
	}
	if page.Next != nil {
		resp.NextPageToken = EncodePageToken(*page.Next)
	}
	return resp, nil
}

// storeError maps a store failure: the caller's cancellation stays what it is, a refused row is
// the request's fault, anything else is the database being unavailable.
func storeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, ErrRejected) {
		return ErrInvalidEvent.WithCause(err)
	}
	return ErrUnavailable.WithCause(err)
}
