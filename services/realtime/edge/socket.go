package edge

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/traceid"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// Error codes sent in acks and error events.
const (
	CodeUnauthorized         = "UNAUTHORIZED"
	CodeInvalidPayload       = "INVALID_PAYLOAD"
	CodeForbidden            = "FORBIDDEN"
	CodeNotJoined            = "NOT_JOINED"
	CodeUnsupportedOperation = "UNSUPPORTED_OPERATION"
	CodeUnavailable          = "UNAVAILABLE"
	CodeInternal             = "INTERNAL"
)

const maxTraceIDLen = 128

// conn is the edge's state of one namespace socket.
type conn struct {
	principal authn.Principal
	traceID   string

	mu       sync.Mutex
	sessions map[string]string // joined session id -> school id
	groups   map[string]string // joined group id -> session id
	audio    map[string]*audioStream

	quota socketQuota // guarded by Edge.quotaMu
}

func (c *conn) joinedSession(id string) (schoolID string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	schoolID, ok = c.sessions[id]
	return schoolID, ok
}

func (c *conn) groupSession(groupID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sid, ok := c.groups[groupID]
	return sid, ok
}

func connOf(s *socketio.Socket) *conn {
	c, _ := s.Data().(*conn)
	return c
}

// studentsRoom holds every student socket of /sessions, so that teacher-only broadcasts to a session
// room (AI insights, analytics) can leave students out (Except). Rooms survive recovery.
const studentsRoom = "role:student"

// isStaff reports whether r is a staff role (teacher, admin, super admin).
func isStaff(r authn.Role) bool {
	return r == authn.RoleTeacher || r == authn.RoleAdmin || r == authn.RoleSuperAdmin
}

// authenticate is the namespace middleware: it verifies auth.token and attaches the principal. /guidance
// is for staff only: students are refused there. A recovered socket keeps the connection state it had
// (principal, trace id, authorized sessions and groups), provided the token it reconnects with names the
// same principal; a different one is refused.
func (e *Edge) authenticate(ctx context.Context, s *socketio.Socket) error {
	hs := s.Handshake()
	auth := hs.Auth()
	raw, _ := auth["token"].(string)
	if raw == "" {
		raw = strings.TrimPrefix(hs.HeaderValue("Authorization"), "Bearer ")
	}
	unauthorized := &socketio.ConnectError{Message: "unauthorized", Data: map[string]any{"code": CodeUnauthorized}}
	if raw == "" {
		return unauthorized
	}
	p, err := e.verifier.VerifyToken(ctx, raw)
	if err != nil || p.Role == authn.RoleService {
		e.logger.Debug("ws: refused handshake", "namespace", s.Namespace().Name(), "err", err)
		return unauthorized
	}
	if s.Namespace().Name() == NamespaceGuidance && !isStaff(p.Role) {
		e.logger.Debug("ws: refused non-staff on /guidance", "role", string(p.Role))
		return &socketio.ConnectError{Message: "forbidden", Data: map[string]any{"code": CodeForbidden}}
	}
	if s.Recovered() {
		prev := connOf(s)
		if prev == nil || !samePrincipal(prev.principal, p) {
			e.logger.Warn("ws: refused recovery with another principal", "namespace", s.Namespace().Name(),
				"socketId", s.ID())
			return unauthorized
		}
		return nil
	}
	tid, _ := auth["traceId"].(string)
	if tid == "" {
		tid = hs.HeaderValue("X-Trace-Id")
	}
	if tid == "" || len(tid) > maxTraceIDLen {
		tid = traceid.New()
	}
	s.SetData(newConn(p, tid))
	return nil
}

func (e *Edge) onConnection(ns string, s *socketio.Socket) {
	c := connOf(s)
	if c == nil {
		s.Disconnect(false)
		return
	}
	if !s.Recovered() && c.principal.Role == authn.RoleStudent {
		s.Join(studentsRoom)
	}
	e.metrics.connections.WithLabelValues(ns).Inc()
	e.logger.Info("ws:connect", "namespace", ns, "userId", c.principal.Subject, "socketId", s.ID(), "traceId", c.traceID,
		"recovered", s.Recovered())
	s.OnDisconnect(func(reason string) {
		e.metrics.disconnects.WithLabelValues(ns).Inc()
		e.logger.Info("ws:disconnect", "namespace", ns, "userId", c.principal.Subject, "socketId", s.ID(),
			"traceId", c.traceID, "reason", reason)
		e.closeSocketAudio(c)
	})
	s.On("session:join", func(ev *socketio.Event) { e.onSessionJoin(ev, c) })
	s.On("session:leave", func(ev *socketio.Event) { e.onSessionLeave(ev, c) })
	if ns == NamespaceSessions {
		s.On("group:join", func(ev *socketio.Event) { e.onGroupJoin(ev, c) })
		s.On("group:leave", func(ev *socketio.Event) { e.onGroupLeave(ev, c) })
		s.On("group:status_update", func(ev *socketio.Event) { e.onGroupStatusUpdate(ev, c) })
		s.On("session:update_status", func(ev *socketio.Event) {
			e.fail(ev, c, CodeUnsupportedOperation,
				"session status changes go through the REST API; WebSocket is notify-only")
		})
		s.On("audio:start", func(ev *socketio.Event) { e.onAudioStart(ev, c) })
		// audio:chunk borrows its attachment (the connection's read buffer, reused once the handler
		// returns) rather than getting a copy: ten chunks a second per student, the copies were most of
		// the edge's garbage. onAudioChunk keeps nothing of it: it passes the audio only to
		// audioStream.send, whose gRPC Send marshals the request into a buffer of its own before
		// returning (a transparent-retry replay resends that buffer, and the stats handler sees only
		// sizes); audioFail and dropAudio answer without it; base64 audio decodes into a new slice.
		s.OnBorrowed("audio:chunk", func(ev *socketio.Event) { e.onAudioChunk(ev, c) })
		s.On("audio:stop", func(ev *socketio.Event) { e.onAudioStop(ev, c) })
	}
	e.emit(s, "ws:connected", map[string]any{
		"traceId": c.traceID, "schemaVersion": SchemaVersion, "namespace": ns, "userId": c.principal.Subject,
		"role": string(c.principal.Role), "recovered": s.Recovered(),
	})
}

// emit sends one event to a socket, counting it.
func (e *Edge) emit(s *socketio.Socket, event string, payload map[string]any) {
	if err := s.Emit(event, payload); err != nil {
		e.logger.Debug("ws: emit failed", "event", event, "err", err)
		return
	}
	e.metrics.emitted.WithLabelValues(event).Inc()
}

// ok acknowledges ev with {ok:true, ...extra}.
func (e *Edge) ok(ev *socketio.Event, c *conn, extra map[string]any) {
	if !ev.HasAck() {
		return // nothing to answer (audio:chunk usually comes without an ack)
	}
	payload := map[string]any{"ok": true, "schemaVersion": SchemaVersion, "traceId": c.traceID}
	for k, v := range extra {
		payload[k] = v
	}
	_ = ev.Ack(payload)
}

// fail answers ev with {ok:false, code, message}: as the ack when the client asked for one, else as an
// "error" event.
func (e *Edge) fail(ev *socketio.Event, c *conn, code, message string) {
	payload := map[string]any{"ok": false, "code": code, "message": message, "event": ev.Name,
		"schemaVersion": SchemaVersion, "traceId": c.traceID}
	if ev.HasAck() {
		_ = ev.Ack(payload)
		return
	}
	e.emit(ev.Socket(), "error", payload)
}

func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

type idPayload struct {
	SessionID string `json:"sessionId"`
	GroupID   string `json:"groupId"`
}

// decodeIDs decodes the first argument of ev; an argument that is a bare string is taken as the id named
// by bare.
func decodeIDs(ev *socketio.Event, bare string) (idPayload, bool) {
	var p idPayload
	if ev.Args.Len() < 1 {
		return p, false
	}
	if err := ev.Args.Decode(0, &p); err != nil {
		var s string
		if ev.Args.Decode(0, &s) != nil {
			return p, false
		}
		switch bare {
		case "sessionId":
			p.SessionID = s
		case "groupId":
			p.GroupID = s
		}
	}
	return p, true
}

func (e *Edge) rpcContext(c *conn) (context.Context, context.CancelFunc) {
	ctx := traceid.NewContext(context.Background(), c.traceID)
	return context.WithTimeout(ctx, e.cfg.RPCTimeout)
}

// rpcFailure maps a session-service error to an ack code and message.
func rpcFailure(err error) (string, string) {
	switch status.Code(err) {
	case codes.InvalidArgument:
		return CodeInvalidPayload, "invalid request"
	case codes.NotFound:
		return "SESSION_NOT_FOUND", "session not found"
	case codes.PermissionDenied, codes.Unauthenticated:
		return CodeForbidden, "not allowed"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION", status.Convert(err).Message()
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return CodeUnavailable, "service temporarily unavailable"
	default:
		return CodeInternal, "internal error"
	}
}

// authorize asks the session service whether c may join sessionID (and groupID when not empty).
func (e *Edge) authorize(c *conn, sessionID, groupID string) (*sessionv1.AuthorizeRealtimeJoinResponse, string, string) {
	p := c.principal
	if p.Role == authn.RoleStudent {
		if p.SessionID != "" && p.SessionID != sessionID {
			return nil, CodeForbidden, "not allowed to join this session"
		}
		if groupID != "" && p.GroupID != "" && p.GroupID != groupID {
			return nil, "GROUP_FORBIDDEN", "not allowed to join this group"
		}
	}
	ctx, cancel := e.rpcContext(c)
	defer cancel()
	resp, err := e.sessions.AuthorizeRealtimeJoin(ctx, &sessionv1.AuthorizeRealtimeJoinRequest{
		Subject: p.Subject, Role: string(p.Role), SchoolId: p.SchoolID, SessionId: sessionID, GroupId: groupID,
	})
	if err != nil {
		code, msg := rpcFailure(err)
		e.logger.Warn("ws: authorize join", "err", err, "sessionId", sessionID, "groupId", groupID, "traceId", c.traceID)
		return nil, code, msg
	}
	if !resp.GetAllowed() {
		code := resp.GetReason()
		if code == "" {
			code = CodeForbidden
		}
		return nil, code, "join refused"
	}
	return resp, "", ""
}

func sessionRoom(id string) string { return "session:" + id }
func groupRoom(id string) string   { return "group:" + id }

func (e *Edge) onSessionJoin(ev *socketio.Event, c *conn) {
	p, ok := decodeIDs(ev, "sessionId")
	if !ok || !validID(p.SessionID) {
		e.fail(ev, c, CodeInvalidPayload, "sessionId must be a UUID")
		return
	}
	if ev.Socket().Namespace().Name() == NamespaceGuidance && !isStaff(c.principal.Role) {
		// Unreachable through the handshake (authenticate refuses students on /guidance); kept so that
		// teacher guidance can never reach a student socket.
		e.fail(ev, c, CodeForbidden, "guidance is for staff only")
		return
	}
	resp, code, msg := e.authorize(c, p.SessionID, "")
	if resp == nil {
		e.fail(ev, c, code, msg)
		return
	}
	school := resp.GetSchoolId()
	if school == "" {
		school = c.principal.SchoolID
	}
	c.mu.Lock()
	c.sessions[p.SessionID] = school
	c.mu.Unlock()
	ev.Socket().Join(sessionRoom(p.SessionID))
	e.ok(ev, c, map[string]any{"sessionId": p.SessionID, "sessionStatus": resp.GetSessionStatus()})
}

func (e *Edge) onSessionLeave(ev *socketio.Event, c *conn) {
	p, ok := decodeIDs(ev, "sessionId")
	if !ok || p.SessionID == "" {
		e.fail(ev, c, CodeInvalidPayload, "sessionId is required")
		return
	}
	s := ev.Socket()
	c.mu.Lock()
	delete(c.sessions, p.SessionID)
	var left []string
	for g, sid := range c.groups {
		if sid == p.SessionID {
			left = append(left, g)
			delete(c.groups, g)
		}
	}
	c.mu.Unlock()
	s.Leave(sessionRoom(p.SessionID))
	for _, g := range left {
		s.Leave(groupRoom(g))
		e.stopSocketAudio(c, g)
	}
	e.ok(ev, c, map[string]any{"sessionId": p.SessionID})
}

func (e *Edge) onGroupJoin(ev *socketio.Event, c *conn) {
	p, ok := decodeIDs(ev, "groupId")
	if !ok || !validID(p.GroupID) || !validID(p.SessionID) {
		e.fail(ev, c, CodeInvalidPayload, "groupId and sessionId must be UUIDs")
		return
	}
	resp, code, msg := e.authorize(c, p.SessionID, p.GroupID)
	if resp == nil {
		e.fail(ev, c, code, msg)
		return
	}
	school := resp.GetSchoolId()
	if school == "" {
		school = c.principal.SchoolID
	}
	c.mu.Lock()
	c.groups[p.GroupID] = p.SessionID
	if _, ok := c.sessions[p.SessionID]; !ok && c.principal.Role != authn.RoleStudent {
		// Staff authorized on a group are authorized on its session.
		c.sessions[p.SessionID] = school
	}
	c.mu.Unlock()
	ev.Socket().Join(groupRoom(p.GroupID))
	payload := map[string]any{
		"groupId": p.GroupID, "sessionId": p.SessionID,
		"groupInfo":     map[string]any{"id": p.GroupID, "sessionStatus": resp.GetSessionStatus()},
		"schemaVersion": SchemaVersion, "traceId": c.traceID,
	}
	e.emit(ev.Socket(), "group:joined", payload)
	e.ok(ev, c, map[string]any{"groupId": p.GroupID, "sessionId": p.SessionID})
}

func (e *Edge) onGroupLeave(ev *socketio.Event, c *conn) {
	p, ok := decodeIDs(ev, "groupId")
	if !ok || p.GroupID == "" {
		e.fail(ev, c, CodeInvalidPayload, "groupId is required")
		return
	}
	c.mu.Lock()
	delete(c.groups, p.GroupID)
	c.mu.Unlock()
	ev.Socket().Leave(groupRoom(p.GroupID))
	e.stopSocketAudio(c, p.GroupID)
	e.ok(ev, c, map[string]any{"groupId": p.GroupID})
}

var groupStatuses = map[string]bool{"waiting": true, "ready": true, "active": true, "paused": true, "issue": true}

func (e *Edge) onGroupStatusUpdate(ev *socketio.Event, c *conn) {
	var p struct {
		GroupID   string `json:"groupId"`
		SessionID string `json:"sessionId"`
		Status    string `json:"status"`
		IsReady   *bool  `json:"isReady"`
	}
	if ev.Args.Len() < 1 || ev.Args.Decode(0, &p) != nil || !validID(p.GroupID) || !groupStatuses[p.Status] {
		e.fail(ev, c, CodeInvalidPayload, "groupId (UUID) and status (waiting, ready, active, paused, issue) are required")
		return
	}
	sessionID, ok := c.groupSession(p.GroupID)
	if !ok && p.SessionID != "" {
		if _, joined := c.joinedSession(p.SessionID); joined && c.principal.Role != authn.RoleStudent {
			sessionID, ok = p.SessionID, true
		}
	}
	if !ok {
		e.fail(ev, c, CodeNotJoined, "join the group (or, as staff, its session) first")
		return
	}
	ready := p.Status == "ready"
	if p.IsReady != nil {
		ready = *p.IsReady
	}
	ctx, cancel := e.rpcContext(c)
	defer cancel()
	resp, err := e.sessions.UpdateGroupStatus(ctx, &sessionv1.UpdateGroupStatusRequest{
		SessionId: sessionID, GroupId: p.GroupID, Status: p.Status, IsReady: ready,
		ActorId: c.principal.Subject, TraceId: c.traceID,
	})
	if err != nil {
		code, msg := rpcFailure(err)
		e.logger.Warn("ws: update group status", "err", err, "groupId", p.GroupID, "traceId", c.traceID)
		e.fail(ev, c, code, msg)
		return
	}
	g := resp.GetGroup()
	e.ok(ev, c, map[string]any{"groupId": p.GroupID, "sessionId": sessionID, "status": g.GetStatus(), "isReady": g.GetIsReady()})
}

// now is the clock of transcript timestamps when an event carries none.
var now = time.Now
