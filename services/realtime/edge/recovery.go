package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/classwaves/classwaves/pkg/authn"
)

// connState is what a socket's conn keeps across a recovery on another replica: the authenticated
// principal, the trace id and the sessions and groups the session service authorized it to join. Audio
// streams are not kept: they end with the transport, and the client starts them again.
type connState struct {
	Subject   string            `json:"sub"`
	Role      string            `json:"role"`
	SchoolID  string            `json:"school,omitempty"`
	SessionID string            `json:"session,omitempty"` // a student token's session scope
	GroupID   string            `json:"group,omitempty"`   // a student token's group scope
	TraceID   string            `json:"trace,omitempty"`
	Sessions  map[string]string `json:"sessions,omitempty"` // session id -> school id
	Groups    map[string]string `json:"groups,omitempty"`   // group id -> session id
}

// encodeConn is the socket data encoder of the Redis recovery store.
func encodeConn(v any) ([]byte, error) {
	c, ok := v.(*conn)
	if !ok || c == nil {
		return nil, fmt.Errorf("edge: socket data is %T, not a connection", v)
	}
	c.mu.Lock()
	st := connState{
		Subject: c.principal.Subject, Role: string(c.principal.Role), SchoolID: c.principal.SchoolID,
		SessionID: c.principal.SessionID, GroupID: c.principal.GroupID, TraceID: c.traceID,
		Sessions: maps.Clone(c.sessions), Groups: maps.Clone(c.groups),
	}
	c.mu.Unlock()
	return json.Marshal(st)
}

// decodeConn is the socket data decoder of the Redis recovery store.
func decodeConn(b []byte) (any, error) {
	var st connState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("edge: stored connection: %w", err)
	}
	if st.Subject == "" || st.Role == "" {
		return nil, errors.New("edge: stored connection has no principal")
	}
	c := newConn(authn.Principal{
		Subject: st.Subject, Role: authn.Role(st.Role), SchoolID: st.SchoolID, SessionID: st.SessionID, GroupID: st.GroupID,
	}, st.TraceID)
	maps.Copy(c.sessions, st.Sessions)
	maps.Copy(c.groups, st.Groups)
	return c, nil
}

func newConn(p authn.Principal, traceID string) *conn {
	return &conn{principal: p, traceID: traceID, sessions: map[string]string{}, groups: map[string]string{},
		audio: map[string]*audioStream{}}
}

// samePrincipal reports whether a recovered socket's principal is the one its new token names.
func samePrincipal(a, b authn.Principal) bool {
	return a.Subject == b.Subject && a.Role == b.Role && a.SchoolID == b.SchoolID &&
		a.SessionID == b.SessionID && a.GroupID == b.GroupID
}
