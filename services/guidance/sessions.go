package guidance

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
)

// Session statuses (session service).
const (
	sessionActive = "active"
	sessionPaused = "paused"
	sessionEnded  = "ended"
)

// sessionInfo is what analysis and authorization need of a session (GetSessionContext).
type sessionInfo struct {
	ID         string
	TeacherID  string
	SchoolID   string
	Status     string
	AIEnabled  bool
	Objectives []string
	// Groups maps a group id to its name, GroupOrder lists the ids in session order.
	Groups     map[string]string
	GroupOrder []string
	// Names are the members' display names (an LLM analyzer removes them from what it sends).
	Names   []string
	fetched time.Time
}

func (i *sessionInfo) groupName(id string) string {
	if n := i.Groups[id]; n != "" {
		return n
	}
	return "The group"
}

func infoFromProto(s *sessionv1.Session, at time.Time) *sessionInfo {
	info := &sessionInfo{
		ID: s.GetId(), TeacherID: s.GetTeacherId(), SchoolID: s.GetSchoolId(), Status: s.GetStatus(),
		AIEnabled: s.GetAiAnalysisEnabled(), Objectives: s.GetLearningObjectives(),
		Groups: map[string]string{}, fetched: at,
	}
	for _, g := range s.GetGroups() {
		info.Groups[g.GetId()] = g.GetName()
		info.GroupOrder = append(info.GroupOrder, g.GetId())
		for _, m := range g.GetMembers() {
			if m.GetDisplayName() != "" {
				info.Names = append(info.Names, m.GetDisplayName())
			}
		}
	}
	return info
}

// sessionLookupTimeout bounds one GetSessionContext call.
const sessionLookupTimeout = 5 * time.Second

// maxCachedSessions is the cache size past which stale entries are dropped.
const maxCachedSessions = 1024

// sessionCache keeps sessions' contexts for SessionCacheTTL; a status change drops the entry.
type sessionCache struct {
	client sessionv1.SessionServiceClient
	ttl    time.Duration
	now    func() time.Time
	// fetched is told every context answered by the session service (the service records it).
	fetched func(ctx context.Context, info *sessionInfo) error

	mu sync.Mutex
	m  map[string]*sessionInfo
}

// get answers the session's context, from the cache when fresh. It answers ErrSessionNotFound
// when the session service does not know the session and ErrSessionServiceUnavailable when it
// cannot be asked.
func (c *sessionCache) get(ctx context.Context, id string) (*sessionInfo, error) {
	now := c.now()
	c.mu.Lock()
	if info, ok := c.m[id]; ok && now.Sub(info.fetched) < c.ttl && !now.Before(info.fetched) {
		c.mu.Unlock()
		return info, nil
	}
	c.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, sessionLookupTimeout)
	defer cancel()
	resp, err := c.client.GetSessionContext(cctx, &sessionv1.GetSessionContextRequest{SessionId: id})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, ErrSessionNotFound.WithCause(err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrSessionServiceUnavailable.WithCause(err)
	}
	info := infoFromProto(resp.GetSession(), now)
	if info.ID == "" {
		info.ID = id
	}
	if c.fetched != nil {
		if err := c.fetched(ctx, info); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedSessions {
		for k, v := range c.m {
			if now.Sub(v.fetched) >= c.ttl {
				delete(c.m, k)
			}
		}
	}
	c.m[id] = info
	c.mu.Unlock()
	return info, nil
}

// invalidate drops a session's context, so the next get asks the session service.
func (c *sessionCache) invalidate(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
