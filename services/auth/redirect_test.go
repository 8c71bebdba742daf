package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
	"github.com/classwaves/classwaves/pkg/config"
)

// startFlow starts the redirect flow and returns the provider URL and the binding cookie.
func (h *harness) startFlow() (*url.URL, *http.Cookie) {
	h.t.Helper()
	var hdr metadata.MD
	resp, err := h.auth.GoogleCallback(context.Background(), &authv1.GoogleCallbackRequest{}, grpc.Header(&hdr))
	if err != nil {
		h.t.Fatal(err)
	}
	u, err := url.Parse(resp.GetRedirectUrl())
	if err != nil {
		h.t.Fatal(err)
	}
	sc := hdr.Get("set-cookie")
	if len(sc) != 1 {
		h.t.Fatalf("set-cookie = %q, want one binding cookie", sc)
	}
	c, err := http.ParseSetCookie(sc[0])
	if err != nil {
		h.t.Fatal(err)
	}
	return u, c
}

// authorize visits the provider's authorization endpoint as the browser would and returns the
// query the provider redirects back with.
func (h *harness) authorize(authURL *url.URL) url.Values {
	h.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL.String())
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		h.t.Fatalf("authorization endpoint answered %d", resp.StatusCode)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	if got := back.Scheme + "://" + back.Host + back.Path; got != testRedirectURI {
		h.t.Fatalf("provider redirected to %s, want %s", got, testRedirectURI)
	}
	return back.Query()
}

// callback calls GoogleCallback as the browser coming back, with cookie (when not nil), and
// returns where it is sent and the Set-Cookie it gets.
func (h *harness) callback(q url.Values, cookie *http.Cookie) (*url.URL, []string) {
	h.t.Helper()
	ctx := context.Background()
	if cookie != nil {
		ctx = metadata.AppendToOutgoingContext(ctx, "cookie", cookie.Name+"="+cookie.Value)
	}
	var hdr metadata.MD
	resp, err := h.auth.GoogleCallback(ctx, &authv1.GoogleCallbackRequest{Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error")}, grpc.Header(&hdr))
	if err != nil {
		h.t.Fatalf("GoogleCallback() = %v", err)
	}
	u, err := url.Parse(resp.GetRedirectUrl())
	if err != nil {
		h.t.Fatal(err)
	}
	return u, hdr.Get("set-cookie")
}

// landing checks that u is the dashboard's callback page and returns its fragment parameters and
// its error parameter.
func landing(t *testing.T, u *url.URL) (fragment url.Values, errReason string) {
	t.Helper()
	if got := u.Scheme + "://" + u.Host + u.Path; got != testFrontendURL+DefaultFrontendCallbackPath {
		t.Fatalf("sent to %s, want the dashboard's %s", u, testFrontendURL+DefaultFrontendCallbackPath)
	}
	f, err := url.ParseQuery(u.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	return f, u.Query().Get("error")
}

func TestRedirectFlow(t *testing.T) {
	h := newHarness(t, nil, nil)
	email := "redirect@" + testSchoolDomain

	authURL, cookie := h.startFlow()
	q := authURL.Query()
	if got := authURL.Scheme + "://" + authURL.Host + authURL.Path; got != h.op.Issuer()+"/authorize" {
		t.Errorf("flow starts at %s, want the provider's authorization endpoint", got)
	}
	for k, want := range map[string]string{
		"client_id": h.op.ClientID(), "redirect_uri": testRedirectURI, "response_type": "code",
		"code_challenge_method": "S256", "scope": "openid email profile", "prompt": "select_account",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "code_challenge", "nonce"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorization request %s = %q, want a random value", k, q.Get(k))
		}
	}
	wantCookie := http.Cookie{Name: bindingCookie, Value: cookie.Value, Path: "/api/v1/auth/google/callback", MaxAge: 600,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode, Raw: cookie.Raw}
	if diff := cmp.Diff(wantCookie, *cookie); diff != "" || len(cookie.Value) < 43 {
		t.Errorf("binding cookie (-want +got):\n%s", diff)
	}

	h.op.SetLogin(h.claims(email, testSchoolDomain))
	back := h.authorize(authURL)
	dest, setCookie := h.callback(back, cookie)
	frag, errReason := landing(t, dest)
	if errReason != "" || frag.Get("expires_in") != "120" || frag.Get("first_sign_in") != "true" || dest.RawQuery != "" {
		t.Fatalf("landed on %s, want a hand-off refresh token", dest)
	}
	if len(setCookie) != 1 || !strings.Contains(setCookie[0], "Max-Age=0") {
		t.Errorf("completion Set-Cookie = %q, want the binding cookie cleared", setCookie)
	}
	pair, err := h.refresh(frag.Get("refresh_token"))
	if err != nil {
		t.Fatalf("exchanging the hand-off token: %v", err)
	}
	me, err := h.auth.GetCurrentUser(bearer(pair.GetAccessToken()), &authv1.GetCurrentUserRequest{})
	if err != nil || me.GetTeacher().GetEmail() != email {
		t.Errorf("GetCurrentUser() = %v, %v", me, err)
	}
	if ev := h.auditEvents("auth.login"); len(ev) != 1 || ev[0].GetMetadata()["method"] != methodRedirect {
		t.Errorf("auth.login audit events = %v", ev)
	}

	t.Run("the state is single use", func(t *testing.T) {
		dest, _ := h.callback(back, cookie)
		if _, reason := landing(t, dest); reason != ReasonOAuthStateInvalid {
			t.Errorf("replayed callback: error %q, want %s", reason, ReasonOAuthStateInvalid)
		}
	})

	failures := []struct {
		name       string
		run        func(t *testing.T) *url.URL
		wantReason string
	}{
		{"no binding cookie", func(t *testing.T) *url.URL {
			u, c := h.startFlow()
			h.op.SetLogin(h.claims(email, testSchoolDomain))
			back := h.authorize(u)
			dest, _ := h.callback(back, nil)
			if again, _ := h.callback(back, c); again.Query().Get("error") != ReasonOAuthStateInvalid {
				t.Errorf("the state survived a failed callback: %s", again)
			}
			return dest
		}, ReasonOAuthStateInvalid},
		{"another browser's cookie", func(t *testing.T) *url.URL {
			u, _ := h.startFlow()
			_, mine := h.startFlow()
			h.op.SetLogin(h.claims(email, testSchoolDomain))
			dest, _ := h.callback(h.authorize(u), mine)
			return dest
		}, ReasonOAuthStateInvalid},
		{"unknown state", func(t *testing.T) *url.URL {
			_, c := h.startFlow()
			dest, _ := h.callback(url.Values{"code": {"x"}, "state": {"made-up"}}, c)
			return dest
		}, ReasonOAuthStateInvalid},
		{"expired state", func(t *testing.T) *url.URL {
			u, c := h.startFlow()
			h.op.SetLogin(h.claims(email, testSchoolDomain))
			back := h.authorize(u)
			h.clk.Advance(DefaultOAuthStateTTL + time.Second)
			defer h.clk.Advance(-DefaultOAuthStateTTL - time.Second)
			dest, _ := h.callback(back, c)
			return dest
		}, ReasonOAuthStateInvalid},
		{"consent refused", func(t *testing.T) *url.URL {
			u, c := h.startFlow()
			h.op.DenyNextLogin()
			dest, _ := h.callback(h.authorize(u), c)
			return dest
		}, ReasonAccessDenied},
		{"domain no school registered", func(t *testing.T) *url.URL {
			u, c := h.startFlow()
			h.op.SetLogin(h.claims("x@elsewhere.example.org", "elsewhere.example.org"))
			dest, _ := h.callback(h.authorize(u), c)
			return dest
		}, ReasonSchoolNotRegistered},
		{"nonce of another flow", func(t *testing.T) *url.URL {
			u, c := h.startFlow()
			claims := h.claims(email, testSchoolDomain)
			claims.Nonce = "another-flow"
			code := h.op.IssueCode(claims, testRedirectURI, u.Query().Get("code_challenge"), "S256")
			dest, _ := h.callback(url.Values{"code": {code}, "state": {u.Query().Get("state")}}, c)
			return dest
		}, ReasonGoogleTokenInvalid},
		{"code of another PKCE challenge", func(t *testing.T) *url.URL {
			u, c := h.startFlow()
			code := h.op.IssueCode(h.claims(email, testSchoolDomain), testRedirectURI, strings.Repeat("x", 43), "S256")
			dest, _ := h.callback(url.Values{"code": {code}, "state": {u.Query().Get("state")}}, c)
			return dest
		}, ReasonGoogleCodeInvalid},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			families := h.familyCount()
			frag, reason := landing(t, tt.run(t))
			if reason != tt.wantReason || frag.Get("refresh_token") != "" {
				t.Errorf("landed with error %q and fragment %v, want error %s", reason, frag, tt.wantReason)
			}
			if got := h.familyCount(); got != families {
				t.Errorf("a failed flow started %d refresh token families", got-families)
			}
		})
	}

	t.Run("the hand-off token lapses unused", func(t *testing.T) {
		u, c := h.startFlow()
		h.op.SetLogin(h.claims(email, testSchoolDomain))
		dest, _ := h.callback(h.authorize(u), c)
		frag, _ := landing(t, dest)
		h.clk.Advance(handoffTTL + time.Second)
		_, err := h.refresh(frag.Get("refresh_token"))
		wantErr(t, err, codes.Unauthenticated, ReasonRefreshTokenExpired)
	})
}

// TestRedirectFlowDevFallback: with the dev fallback, starting the flow signs in the dev teacher.
func TestRedirectFlowDevFallback(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.Environment, c.GoogleClientID = config.Development, "" })
	resp, err := h.auth.GoogleCallback(context.Background(), &authv1.GoogleCallbackRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dest, _ := url.Parse(resp.GetRedirectUrl())
	frag, reason := landing(t, dest)
	if reason != "" || frag.Get("degraded_mode") != "true" {
		t.Fatalf("landed on %s", dest)
	}
	pair, err := h.refresh(frag.Get("refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := h.keys.Verifier().VerifyToken(context.Background(), pair.GetAccessToken()); p.Subject != DevTeacherID {
		t.Errorf("signed in %q, want the dev teacher", p.Subject)
	}
}
