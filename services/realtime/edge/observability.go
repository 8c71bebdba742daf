package edge

import (
	"context"
	"crypto/subtle"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	realtimev1 "github.com/classwaves/classwaves/pkg/api/classwaves/realtime/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// DevObservabilityTokenHeader is the gRPC metadata key carrying DEV_OBSERVABILITY_TOKEN.
const DevObservabilityTokenHeader = "x-dev-observability-token"

var (
	errObservabilityDenied = apperr.New(codes.PermissionDenied, apperr.ReasonForbidden,
		"a valid dev observability token is required")
	errEdgeUnavailable = apperr.New(codes.Unavailable, apperr.ReasonUnavailable, "realtime edge is not running")
)

// ActiveConnections counts this replica's connected sockets per namespace (/sessions, /guidance) and
// the distinct rooms they are in (the sockets' own id rooms excluded), with the total of sockets.
func (e *Edge) ActiveConnections() *realtimev1.GetActiveConnectionsResponse {
	resp := &realtimev1.GetActiveConnectionsResponse{}
	for _, ns := range []*socketio.Namespace{e.sessNS, e.guideNS} {
		socks := ns.Sockets()
		rooms := map[string]struct{}{}
		for _, s := range socks {
			for _, r := range s.Rooms() {
				if r != s.ID() {
					rooms[r] = struct{}{}
				}
			}
		}
		resp.Namespaces = append(resp.Namespaces, &realtimev1.NamespaceConnections{
			Namespace: ns.Name(), Sockets: int32(len(socks)), Rooms: int32(len(rooms)),
		})
		resp.Total += int32(len(socks))
	}
	sort.Slice(resp.Namespaces, func(i, j int) bool { return resp.Namespaces[i].Namespace < resp.Namespaces[j].Namespace })
	return resp
}

// RealtimeServer serves RealtimeService over gRPC for Edge. GetActiveConnections is open when the edge's
// DevObservabilityToken is empty; set, the caller must send it as x-dev-observability-token metadata.
type RealtimeServer struct {
	realtimev1.UnimplementedRealtimeServiceServer
	Edge *Edge
}

// GetActiveConnections answers Edge.ActiveConnections after the dev observability token check.
func (s *RealtimeServer) GetActiveConnections(ctx context.Context, _ *realtimev1.GetActiveConnectionsRequest) (*realtimev1.GetActiveConnectionsResponse, error) {
	if s == nil || s.Edge == nil {
		return nil, errEdgeUnavailable
	}
	if want := s.Edge.cfg.DevObservabilityToken; want != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		got := md.Get(DevObservabilityTokenHeader)
		if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) != 1 {
			return nil, errObservabilityDenied
		}
	}
	return s.Edge.ActiveConnections(), nil
}
