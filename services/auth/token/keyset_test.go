package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/pkg/grpcserver"
)

var parser = jwt.NewParser()

func kids(jwks []*authv1.Jwk) []string {
	out := make([]string, len(jwks))
	for i, k := range jwks {
		out[i] = k.GetKid()
	}
	return out
}

func TestNewKeySetMakesOneKey(t *testing.T) {
	clk := newClock()
	store := NewMemoryStore()
	ks := newTestKeySet(t, store, clk)
	jwks := ks.JWKS()
	if len(jwks) != 1 {
		t.Fatalf("JWKS() has %d keys, want 1", len(jwks))
	}
	k := jwks[0]
	if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != "EdDSA" || k.GetUse() != "sig" {
		t.Errorf("JWK = %v, want kty OKP, crv Ed25519, alg EdDSA, use sig", k)
	}
	x, err := base64.RawURLEncoding.DecodeString(k.GetX())
	if err != nil || len(x) != ed25519.PublicKeySize {
		t.Fatalf("x = %q: %v", k.GetX(), err)
	}
	if want := thumbprint(x); k.GetKid() != want {
		t.Errorf("kid = %q, want the RFC 7638 thumbprint %q", k.GetKid(), want)
	}
	stored, _ := store.LoadKeys(context.Background())
	if len(stored) != 1 || !stored[0].CreatedAt.Equal(start) || !stored[0].RetiredAt.IsZero() {
		t.Errorf("store = %+v, want one current key created at the start", stored)
	}
	// A second replica on the same store uses the key it finds.
	again := newTestKeySet(t, store, clk)
	if diff := cmp.Diff(kids(jwks), kids(again.JWKS())); diff != "" {
		t.Errorf("second KeySet keys (-want +got):\n%s", diff)
	}
}

// RFC 8037 appendix A.3: the thumbprint of the example key.
func TestThumbprintRFC8037(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint() = %q, want %q", got, want)
	}
}

func TestIssue(t *testing.T) {
	clk := newClock()
	ks := newTestKeySet(t, NewMemoryStore(), clk)
	v := verifier(ks, clk)
	tests := []struct {
		name    string
		p       authn.Principal
		email   string
		wantTTL time.Duration
	}{
		{"teacher", authn.Principal{Subject: "t1", Role: authn.RoleTeacher, SchoolID: "school-a"}, "t1@school-a.example", 15 * time.Minute},
		{"admin", authn.Principal{Subject: "a1", Role: authn.RoleAdmin, SchoolID: "school-a"}, "", 15 * time.Minute},
		{"super admin", authn.Principal{Subject: "s1", Role: authn.RoleSuperAdmin}, "", 15 * time.Minute},
		{"student", authn.Principal{Subject: "k1", Role: authn.RoleStudent, SchoolID: "school-a", SessionID: "sess", GroupID: "grp"}, "", 4 * time.Hour},
		{"service", authn.Principal{Subject: "session", Role: authn.RoleService}, "", 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := ks.Issue(context.Background(), tt.p, tt.email)
			if err != nil {
				t.Fatal(err)
			}
			if iss.ExpiresIn != tt.wantTTL {
				t.Errorf("ExpiresIn = %v, want %v", iss.ExpiresIn, tt.wantTTL)
			}
			got, err := v.VerifyClaims(context.Background(), iss.Token)
			if err != nil {
				t.Fatalf("VerifyClaims() = %v", err)
			}
			if diff := cmp.Diff(iss.Claims, got); diff != "" {
				t.Errorf("verified claims differ from issued (-issued +verified):\n%s", diff)
			}
			want := &authn.Claims{
				RegisteredClaims: jwt.RegisteredClaims{
					Issuer: "classwaves", Subject: tt.p.Subject, Audience: jwt.ClaimStrings{"classwaves-api"},
					IssuedAt: jwt.NewNumericDate(start), NotBefore: jwt.NewNumericDate(start),
					ExpiresAt: jwt.NewNumericDate(start.Add(tt.wantTTL)),
				},
				Role: tt.p.Role, SchoolID: tt.p.SchoolID, SessionID: tt.p.SessionID, GroupID: tt.p.GroupID, Email: tt.email,
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(jwt.RegisteredClaims{}, "ID")); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if len(got.ID) < 16 {
				t.Errorf("jti = %q, want a random id", got.ID)
			}
			tok, _, err := parser.ParseUnverified(iss.Token, &authn.Claims{})
			if err != nil {
				t.Fatal(err)
			}
			wantHeader := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": ks.JWKS()[0].GetKid()}
			if diff := cmp.Diff(wantHeader, tok.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("unique jti", func(t *testing.T) {
		p := authn.Principal{Subject: "t1", Role: authn.RoleTeacher, SchoolID: "school-a"}
		a, _ := ks.Issue(context.Background(), p, "")
		b, _ := ks.Issue(context.Background(), p, "")
		if a.Claims.ID == b.Claims.ID {
			t.Errorf("two tokens share jti %q", a.Claims.ID)
		}
	})

	refused := map[string]struct {
		p     authn.Principal
		email string
	}{
		"student without group":   {authn.Principal{Subject: "k", Role: authn.RoleStudent, SchoolID: "a", SessionID: "s"}, ""},
		"student with an email":   {authn.Principal{Subject: "k", Role: authn.RoleStudent, SchoolID: "a", SessionID: "s", GroupID: "g"}, "k@a.example"},
		"teacher without school":  {authn.Principal{Subject: "t", Role: authn.RoleTeacher}, ""},
		"unknown role":            {authn.Principal{Subject: "t", Role: "root", SchoolID: "a"}, ""},
		"service without a name":  {authn.Principal{Role: authn.RoleService}, ""},
		"teacher with a group id": {authn.Principal{Subject: "t", Role: authn.RoleTeacher, SchoolID: "a", GroupID: "g"}, ""},
	}
	for name, tt := range refused {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := ks.Issue(context.Background(), tt.p, tt.email); err == nil {
				t.Error("Issue() = nil error, want a refusal")
			}
		})
	}
}

// TestRotation follows one rotation: the new key is published before it signs, and the old key
// stays published until every token it signed has expired (plus the clock skew).
func TestRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	store := NewMemoryStore()
	ks := newTestKeySet(t, store, clk)
	v := verifier(ks, clk)
	k1 := ks.JWKS()[0].GetKid()
	student := authn.Principal{Subject: "k", Role: authn.RoleStudent, SchoolID: "a", SessionID: "s", GroupID: "g"}
	issue := func() Issued {
		t.Helper()
		iss, err := ks.Issue(ctx, student, "")
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}

	clk.Advance(time.Hour)
	if err := ks.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	jwks := kids(ks.JWKS())
	if len(jwks) != 2 || jwks[1] != k1 {
		t.Fatalf("JWKS after rotation = %v, want [new, %s]", jwks, k1)
	}
	k2 := jwks[0]
	delay := ks.publishDelay()
	if delay != time.Minute+5*time.Second {
		t.Errorf("publish delay = %v, want reload interval + JWKS min refresh interval", delay)
	}

	clk.Advance(delay - time.Second)
	last := issue() // the last token k1 signs, valid 4h
	if got := kidOf(t, last.Token); got != k1 {
		t.Fatalf("during the publish delay the signer is %q, want the old key %q", got, k1)
	}
	clk.Advance(time.Second)
	if got := kidOf(t, issue().Token); got != k2 {
		t.Fatalf("after the publish delay the signer is %q, want the new key %q", got, k2)
	}

	clk.Advance(4*time.Hour - 2*time.Second) // one second before the last k1 token expires
	if _, err := v.VerifyToken(ctx, last.Token); err != nil {
		t.Fatalf("the last token of the old key, before its expiry: %v", err)
	}
	if err := ks.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(ks.JWKS()); !slices.Contains(got, k1) {
		t.Fatalf("JWKS before the old key's tokens all expired = %v, want %s still published", got, k1)
	}

	// retiredAt + longest TTL + skew + reload interval: the old key goes.
	retiredAt := start.Add(time.Hour + delay)
	clk.Advance(retiredAt.Add(ks.retention()).Sub(clk.Now()) + time.Second)
	if got := kids(ks.JWKS()); !slices.Equal(got, []string{k2}) {
		t.Fatalf("JWKS after retention = %v, want only %s", got, k2)
	}
	if err := ks.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	stored, _ := store.LoadKeys(ctx)
	if len(stored) != 1 || stored[0].ID != k2 {
		t.Errorf("store after Maintain = %v keys, want only %s", len(stored), k2)
	}
	_, err := v.VerifyToken(ctx, last.Token)
	if st := apperr.ToStatus(err); st.Code() != codes.Unauthenticated {
		t.Errorf("old key's token after pruning: %v, want Unauthenticated", err)
	}
}

func TestMaintainRotatesWhenDue(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	ks := newTestKeySet(t, NewMemoryStore(), clk)
	clk.Advance(DefaultConfig().RotationInterval - time.Second)
	if err := ks.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(ks.JWKS()); n != 1 {
		t.Fatalf("before the rotation interval: %d keys, want 1", n)
	}
	clk.Advance(time.Second)
	if err := ks.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(ks.JWKS()); n != 2 {
		t.Fatalf("at the rotation interval: %d keys, want 2", n)
	}
}

// TestReplicas: two auth replicas on one store see each other's rotations.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	store := NewMemoryStore()
	a := newTestKeySet(t, store, clk)
	b := newTestKeySet(t, store, clk)
	clk.Advance(time.Hour)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(a.publishDelay())
	p := authn.Principal{Subject: "t", Role: authn.RoleTeacher, SchoolID: "s"}
	iss, err := a.Issue(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	// b has not reloaded; the unknown kid makes it.
	if _, err := verifier(b, clk).VerifyToken(ctx, iss.Token); err != nil {
		t.Fatalf("replica b verifying a's new key: %v", err)
	}
	if got, want := kidOf(t, mustIssue(t, b, p)), kidOf(t, iss.Token); got != want {
		t.Errorf("replica b signs with %q, want the rotated key %q", got, want)
	}

	// Both rotate from the same view: one wins, the other takes the winner's key.
	clk.Advance(time.Hour)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Rotate(ctx); err != nil {
		t.Fatalf("losing rotation: %v, want nil", err)
	}
	stored, _ := store.LoadKeys(ctx)
	current := 0
	for _, k := range stored {
		if k.RetiredAt.IsZero() {
			current++
		}
	}
	if current != 1 {
		t.Errorf("store has %d current keys, want 1", current)
	}
}

func mustIssue(t *testing.T, ks *KeySet, p authn.Principal) string {
	t.Helper()
	iss, err := ks.Issue(context.Background(), p, "")
	if err != nil {
		t.Fatal(err)
	}
	return iss.Token
}

// brokenStore fails what it is told to.
type brokenStore struct {
	*MemoryStore
	load error
}

func (s brokenStore) LoadKeys(ctx context.Context) ([]StoredKey, error) {
	if s.load != nil {
		return nil, s.load
	}
	return s.MemoryStore.LoadKeys(ctx)
}

func TestNewKeySetFailures(t *testing.T) {
	ctx := context.Background()
	if _, err := NewKeySet(ctx, DefaultConfig(), authn.DefaultConfig(), brokenStore{MemoryStore: NewMemoryStore(), load: errors.New("db down")}); err == nil {
		t.Error("NewKeySet(store failing) = nil error")
	}
	forged := NewMemoryStore()
	_, priv, _ := ed25519.GenerateKey(nil)
	pemBytes, _ := MarshalPrivateKeyPEM(priv)
	if err := forged.RotateKey(ctx, "", StoredKey{ID: "chosen-kid", PrivateKeyPEM: pemBytes, CreatedAt: start}, start); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeySet(ctx, DefaultConfig(), authn.DefaultConfig(), forged); err == nil {
		t.Error("NewKeySet(kid that is not the key's thumbprint) = nil error")
	}
}

func TestRunStops(t *testing.T) {
	clk := newClock()
	ks := newTestKeySet(t, NewMemoryStore(), clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ks.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil after cancel", err)
	}
}

// authServer is the part of the auth service this package feeds: GetJwks answered from the
// KeySet, and one Internal RPC that reports the principal that reached it.
type authServer struct {
	authv1.UnimplementedAuthServiceServer
	ks *KeySet
}

func (s authServer) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{Keys: s.ks.JWKS()}, nil
}

func (s authServer) VerifyToken(ctx context.Context, _ *authv1.VerifyTokenRequest) (*authv1.VerifyTokenResponse, error) {
	c, ok := authn.ClaimsFromContext(ctx)
	if !ok {
		return nil, errors.New("no claims")
	}
	return &authv1.VerifyTokenResponse{Claims: c.Proto()}, nil
}

// TestEndToEnd: the auth service serves GetJwks from its KeySet and verifies locally; another
// service verifies remotely; internal calls carry a service token.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	ks := newTestKeySet(t, NewMemoryStore(), clk)
	jwtCfg := authn.DefaultConfig()

	ic := authn.NewInterceptor(verifier(ks, clk))
	srv := grpcserver.New(grpcserver.Config{}, nil, grpcserver.WithServerOptions(ic.ServerOptions()...))
	authv1.RegisterAuthServiceServer(srv.GRPC(), authServer{ks: ks})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Shutdown(ctx) })

	dial := func(opts ...grpc.DialOption) *grpc.ClientConn {
		conn, err := grpc.NewClient(lis.Addr().String(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	plain := dial()

	t.Run("remote verification through GetJwks", func(t *testing.T) {
		remote := authn.NewRemoteKeys(jwtCfg, authv1.NewAuthServiceClient(plain), authn.WithClock(clk.Now))
		tok := mustIssue(t, ks, authn.Principal{Subject: "t", Role: authn.RoleTeacher, SchoolID: "s"})
		p, err := verifier(remote, clk).VerifyToken(ctx, tok)
		if err != nil || p.Subject != "t" {
			t.Fatalf("VerifyToken() = %+v, %v", p, err)
		}
	})

	t.Run("internal call with a service token", func(t *testing.T) {
		svc := dial(grpc.WithPerRPCCredentials(authn.NewServiceCredentials(ks.ServiceTokenSource("session"), authn.WithClock(clk.Now))))
		resp, err := authv1.NewAuthServiceClient(svc).VerifyToken(ctx, &authv1.VerifyTokenRequest{Token: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.GetClaims(); c.GetRole() != "service" || c.GetSubject() != "session" {
			t.Errorf("principal = %v, want service session", c)
		}
	})

	t.Run("internal call without one", func(t *testing.T) {
		_, err := authv1.NewAuthServiceClient(plain).VerifyToken(ctx, &authv1.VerifyTokenRequest{Token: "x"})
		if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || apperr.ReasonOf(st) != authn.ReasonTokenMissing {
			t.Errorf("VerifyToken() = %v, want Unauthenticated TOKEN_MISSING", err)
		}
	})
}
