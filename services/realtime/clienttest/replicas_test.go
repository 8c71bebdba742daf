package clienttest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	guidancev1 "github.com/classwaves/classwaves/pkg/api/classwaves/guidance/v1"
	sessionv1 "github.com/classwaves/classwaves/pkg/api/classwaves/session/v1"
	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/testenv"
	"github.com/classwaves/classwaves/services/auth/token"
	"github.com/classwaves/classwaves/services/realtime/edge"
)

const (
	replicaSessionID = "0193a5c0-0000-7000-8000-00000000c001"
	replicaGroupID   = "0193a5c0-0000-7000-8000-00000000c0a1"
	replicaSchoolID  = "school-c"
)

// sessionService allows everyone into replicaSessionID and its groups, and echoes group status updates:
// the edge's authorization calls, served over real gRPC.
type sessionService struct {
	sessionv1.UnimplementedSessionServiceServer
}

func (sessionService) AuthorizeRealtimeJoin(_ context.Context, r *sessionv1.AuthorizeRealtimeJoinRequest) (*sessionv1.AuthorizeRealtimeJoinResponse, error) {
	if r.GetSessionId() != replicaSessionID {
		return &sessionv1.AuthorizeRealtimeJoinResponse{Allowed: false, Reason: "SESSION_FORBIDDEN"}, nil
	}
	return &sessionv1.AuthorizeRealtimeJoinResponse{Allowed: true, SessionStatus: "active", SchoolId: replicaSchoolID}, nil
}

func (sessionService) UpdateGroupStatus(_ context.Context, r *sessionv1.UpdateGroupStatusRequest) (*sessionv1.UpdateGroupStatusResponse, error) {
	return &sessionv1.UpdateGroupStatusResponse{Group: &sessionv1.Group{Id: r.GetGroupId(), Status: r.GetStatus(), IsReady: r.GetIsReady()}}, nil
}

// TestEdgeReplicas runs replicas.test.mjs with the official client against two edge replicas that share
// one Redis (the bus and the recovery store), behind a TCP proxy that the test can cut and point at
// either replica. The Node test drives the scenario through a control endpoint: /publish puts an event
// on a replica's bus, /cut drops every proxied connection and refuses new ones, /route?to=A|B lets
// connections through again to that replica.
func TestEdgeReplicas(t *testing.T) {
	node := requireNode(t)
	renv := testenv.Redis(t)
	rdb := renv.Client(t)
	ctx := context.Background()

	keys, err := token.NewKeySet(ctx, token.DefaultConfig(), authn.DefaultConfig(), token.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	sessionv1.RegisterSessionServiceServer(gs, sessionService{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })

	type replica struct {
		addr string
		bus  bus.Bus
	}
	start := func() replica {
		b, err := redisbus.New(redisbus.Options{Prefix: renv.Prefix, ReadBlock: 200 * time.Millisecond}, rdb)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		cfg := edge.DefaultConfig()
		cfg.PingInterval, cfg.PingTimeout = time.Second, 5*time.Second
		e, err := edge.New(cfg, keys.Verifier(), sessionv1.NewSessionServiceClient(cc), sttv1.NewSttServiceClient(cc),
			b, nil, nil, edge.WithRedis(rdb, renv.Prefix))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(e.Handler())
		t.Cleanup(func() {
			if err := e.Stop(context.Background()); err != nil {
				t.Errorf("edge Stop: %v", err)
			}
			hs.Close()
		})
		return replica{addr: hs.Listener.Addr().String(), bus: b}
	}
	replicas := map[string]replica{"A": start(), "B": start()}
	proxy := newSwitchProxy(t)

	iss, err := keys.Issue(ctx, authn.Principal{Subject: "teacher-c", Role: authn.RoleTeacher, SchoolID: replicaSchoolID}, "t@example.com")
	if err != nil {
		t.Fatal(err)
	}

	control := http.NewServeMux()
	control.HandleFunc("POST /cut", func(w http.ResponseWriter, _ *http.Request) { proxy.cut() })
	control.HandleFunc("POST /route", func(w http.ResponseWriter, r *http.Request) {
		rep, ok := replicas[r.URL.Query().Get("to")]
		if !ok {
			http.Error(w, "unknown replica", http.StatusBadRequest)
			return
		}
		proxy.route(rep.addr)
	})
	control.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rep, ok := replicas[q.Get("replica")]
		if !ok {
			http.Error(w, "unknown replica", http.StatusBadRequest)
			return
		}
		topic, ev, err := controlEvent(q.Get("type"), q.Get("value"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := rep.bus.Publish(r.Context(), topic, bus.Outgoing{Key: ev.GetKey(), Payload: data}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	ctl := httptest.NewServer(control)
	t.Cleanup(ctl.Close)

	runNode(t, node, "replicas.test.mjs",
		"PROXY_URL=http://"+proxy.addr(),
		"A_URL=http://"+replicas["A"].addr,
		"B_URL=http://"+replicas["B"].addr,
		"CONTROL_URL="+ctl.URL,
		"TEACHER_TOKEN="+iss.Token,
		"SESSION_ID="+replicaSessionID,
		"GROUP_ID="+replicaGroupID,
	)
}

// controlEvent builds the bus event a /publish request names: a transcript with text value, or a Tier 1
// insight with id value.
func controlEvent(typ, value string) (string, *eventsv1.Event, error) {
	ev := &eventsv1.Event{Id: uuid.NewString(), SessionId: replicaSessionID, GroupId: replicaGroupID,
		SchoolId: replicaSchoolID, Key: replicaGroupID, TraceId: "trace-" + value, OccurredAt: timestamppb.Now()}
	switch typ {
	case "transcript":
		ev.Type = edge.EventTranscript
		ev.Payload = &eventsv1.Event_TranscriptReady{TranscriptReady: &eventsv1.TranscriptReady{TranscriptId: value, Text: value}}
		return edge.DefaultSTTEventsTopic, ev, nil
	case "insight":
		body, err := protojson.Marshal(&guidancev1.Tier1Insight{Id: value, SessionId: replicaSessionID, GroupId: replicaGroupID,
			Observations: []string{"building on ideas"}, Confidence: 0.7})
		if err != nil {
			return "", nil, err
		}
		ev.Type = edge.EventInsightProduced
		ev.Payload = &eventsv1.Event_InsightProduced{InsightProduced: &eventsv1.InsightProduced{
			InsightId: value, Tier: 1, InsightJson: string(body)}}
		return edge.DefaultGuidanceEventsTopic, ev, nil
	}
	return "", nil, errors.New("type must be transcript or insight")
}

// switchProxy is a TCP proxy whose target can change: cut closes every connection through it and
// refuses new ones until route names the next target.
type switchProxy struct {
	l net.Listener

	mu     sync.Mutex
	target string // "" refuses connections
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newSwitchProxy(t *testing.T) *switchProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *switchProxy) addr() string { return p.l.Addr().String() }

func (p *switchProxy) route(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *switchProxy) cut() {
	p.mu.Lock()
	p.target = ""
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

func (p *switchProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		if target == "" {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c, target)
		}()
	}
}

// pipe copies between c and a new connection to target until either side closes or cut.
func (p *switchProxy) pipe(c net.Conn, target string) {
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.target != target { // cut or rerouted while dialing
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// requireNode returns the node binary, failing the test when Node.js or the locked npm packages are
// missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js 20+) is required to run the socket.io-client tests: %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "socket.io-client", "package.json")); err != nil {
		t.Fatalf("the npm packages are not installed: run `npm ci --prefix services/realtime/clienttest` "+
			"from the repository root first (%v)", err)
	}
	return node
}

// runNode runs `node --test file` with env added, passing only if node passes.
func runNode(t *testing.T, node, file string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", file)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || testing.Verbose() {
		t.Logf("node --test %s output:\n%s", file, strings.TrimSpace(string(out)))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node --test %s did not finish in time", file)
	}
	if err != nil {
		t.Fatalf("node --test %s failed: %v", file, err)
	}
}
