// Package oidctest is a local OpenID Connect provider that stands in for Google in tests. It speaks
// the wire protocol the auth service's real go-oidc and golang.org/x/oauth2 code talks to, on a
// loopback httptest server:
//
//   - GET /.well-known/openid-configuration: the discovery document (issuer, endpoints, RS256);
//   - GET /jwks: the RSA public keys (RFC 7517), with key ids;
//   - GET /authorize: the authorization endpoint. It does not show a consent screen: it signs in the
//     identity queued with SetLogin (or answers error=access_denied after DenyNextLogin) and
//     redirects to redirect_uri with code and state, remembering the PKCE challenge and the nonce;
//   - POST /token: the token endpoint for grant_type=authorization_code. It authenticates the
//     client (client_secret_basic or client_secret_post), checks that the code is known, unused,
//     unexpired, issued to this client for this redirect_uri, and that code_verifier matches the
//     S256 (or plain) challenge, then answers an access token and an ID token. Errors are RFC 6749
//     JSON errors (invalid_grant, invalid_client, ...) with the status codes Google uses.
//
// Tests mint ID tokens with chosen claims (MintIDToken), including ones that must fail: a foreign
// audience, an expired token, a token signed by a key the JWKS does not publish (Forge).
//
// Nothing here patches the verifier under test: the service discovers this provider by its issuer
// URL and verifies signatures against its JWKS exactly as it would against accounts.google.com.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Default client credentials of a Provider.
const (
	DefaultClientID     = "classwaves-test.apps.googleusercontent.com"
	DefaultClientSecret = "test-client-secret"
)

// codeTTL is how long an authorization code may be exchanged (Google: about 10 minutes).
const codeTTL = 10 * time.Minute

// Claims are the claims of an ID token. Zero fields are left out of the token, except where Mint
// fills a default (see Provider.Claims).
type Claims struct {
	Issuer        string
	Subject       string
	Audience      []string
	AuthorizedFor string // azp
	IssuedAt      time.Time
	ExpiresAt     time.Time
	Nonce         string
	Email         string
	// EmailVerified is sent as a JSON boolean; EmailVerifiedString, when set, replaces it with a
	// string ("true"/"false"), as some Google tokens carry it.
	EmailVerified       bool
	EmailVerifiedString string
	// HostedDomain is Google's hd claim: the Workspace domain of the account ("" for consumer
	// accounts, which then carry no hd).
	HostedDomain string
	Name         string
	Picture      string
	// Extra claims, merged last (they may override the ones above).
	Extra map[string]any
}

func (c Claims) jwtClaims() jwt.MapClaims {
	m := jwt.MapClaims{}
	set := func(k string, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("iss", c.Issuer)
	set("sub", c.Subject)
	switch len(c.Audience) {
	case 0:
	case 1:
		m["aud"] = c.Audience[0]
	default:
		m["aud"] = c.Audience
	}
	set("azp", c.AuthorizedFor)
	if !c.IssuedAt.IsZero() {
		m["iat"] = c.IssuedAt.Unix()
	}
	if !c.ExpiresAt.IsZero() {
		m["exp"] = c.ExpiresAt.Unix()
	}
	set("nonce", c.Nonce)
	set("email", c.Email)
	if c.Email != "" {
		m["email_verified"] = c.EmailVerified
	}
	if c.EmailVerifiedString != "" {
		m["email_verified"] = c.EmailVerifiedString
	}
	set("hd", c.HostedDomain)
	set("name", c.Name)
	set("picture", c.Picture)
	for k, v := range c.Extra {
		m[k] = v
	}
	return m
}

// signingKey is an RSA key and its kid.
type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

// authCode is an issued authorization code.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	method      string
	claims      Claims
	expiresAt   time.Time
	used        bool
}

// Provider is the local OpenID provider. Its methods are safe for concurrent use.
type Provider struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string

	mu          sync.Mutex
	keys        []signingKey // keys[len-1] signs
	codes       map[string]*authCode
	nextLogin   *Claims
	denyNext    bool
	tokenCalls  int
	discoveries int
}

// Option configures a Provider.
type Option func(*Provider)

// WithClient sets the client id and secret the token endpoint accepts.
func WithClient(id, secret string) Option {
	return func(p *Provider) { p.clientID, p.clientSecret = id, secret }
}

// New starts a provider on a loopback port; it stops when t ends.
func New(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	p := &Provider{
		clientID:     DefaultClientID,
		clientSecret: DefaultClientSecret,
		codes:        map[string]*authCode{},
	}
	for _, o := range opts {
		o(p)
	}
	p.RotateKey()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// Issuer is the provider's issuer URL (GOOGLE_ISSUER for the service under test).
func (p *Provider) Issuer() string { return p.srv.URL }

// ClientID is the client id the provider issues tokens to (GOOGLE_CLIENT_ID).
func (p *Provider) ClientID() string { return p.clientID }

// ClientSecret is the client's secret (GOOGLE_CLIENT_SECRET).
func (p *Provider) ClientSecret() string { return p.clientSecret }

// TokenRequests is how many requests reached the token endpoint.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenCalls
}

// Discoveries is how many times the discovery document was fetched.
func (p *Provider) Discoveries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.discoveries
}

// RotateKey adds a new signing key; it signs from now on and the old ones stay published.
func (p *Provider) RotateKey() {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, signingKey{id: "k" + rand.Text()[:10], priv: priv})
}

// Claims returns the claims of a verified Workspace account of domain: issuer and audience this
// provider's, issued now and valid for an hour, email verified, subject derived from the e-mail.
func (p *Provider) Claims(email, domain string) Claims {
	now := time.Now()
	sum := sha256.Sum256([]byte(email))
	return Claims{
		Issuer:        p.Issuer(),
		Subject:       new(big.Int).SetBytes(sum[:10]).String(),
		Audience:      []string{p.clientID},
		AuthorizedFor: p.clientID,
		IssuedAt:      now,
		ExpiresAt:     now.Add(time.Hour),
		Email:         email,
		EmailVerified: true,
		HostedDomain:  domain,
		Name:          "Test Teacher",
		Picture:       "https://example.com/p.png",
	}
}

// MintIDToken signs c with the provider's current key (RS256, with its kid).
func (p *Provider) MintIDToken(c Claims) string {
	p.mu.Lock()
	k := p.keys[len(p.keys)-1]
	p.mu.Unlock()
	return sign(k, c)
}

// Forge signs c with a fresh key the JWKS does not publish, under the current key's kid: a token
// whose signature must not verify.
func (p *Provider) Forge(c Claims) string {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p.mu.Lock()
	kid := p.keys[len(p.keys)-1].id
	p.mu.Unlock()
	return sign(signingKey{id: kid, priv: priv}, c)
}

func sign(k signingKey, c Claims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c.jwtClaims())
	t.Header["kid"] = k.id
	s, err := t.SignedString(k.priv)
	if err != nil {
		panic(err)
	}
	return s
}

// IssueCode issues an authorization code for c, as if the user had consented at the authorization
// endpoint with the given redirect URI and PKCE challenge (method "S256" or "plain"; "" for none).
// It is the popup flow, where the browser talks to Google and hands the code to the backend.
func (p *Provider) IssueCode(c Claims, redirectURI, challenge, method string) string {
	code := rand.Text()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[code] = &authCode{
		clientID: p.clientID, redirectURI: redirectURI, challenge: challenge, method: method,
		claims: c, expiresAt: time.Now().Add(codeTTL),
	}
	return code
}

// SetLogin makes the next visit to the authorization endpoint sign in c (its nonce is replaced by
// the one the request carries).
func (p *Provider) SetLogin(c Claims) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextLogin, p.denyNext = &c, false
}

// DenyNextLogin makes the next visit to the authorization endpoint answer error=access_denied, as
// when the user refuses consent.
func (p *Provider) DenyNextLogin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.denyNext = true
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.discoveries++
	p.mu.Unlock()
	iss := p.Issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"jwks_uri":                              iss + "/jwks",
		"response_types_supported":              []string{"code", "id_token", "code id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "hd", "iat", "iss", "name", "picture", "sub"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"grant_types_supported":                 []string{"authorization_code"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	keys := make([]map[string]string, 0, len(p.keys))
	for _, k := range p.keys {
		keys = append(keys, map[string]string{
			"kty": "RSA",
			"kid": k.id,
			"use": "sig",
			"alg": "RS256",
			"n":   base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
		})
	}
	p.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// authorize is the authorization endpoint: it validates the request as Google does (client,
// response_type, redirect_uri) and redirects back with a code or an error.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		http.Error(w, "invalid redirect_uri", http.StatusBadRequest)
		return
	}
	if q.Get("client_id") != p.clientID {
		http.Error(w, "invalid_client", http.StatusUnauthorized)
		return
	}
	back := redirect.Query()
	if s := q.Get("state"); s != "" {
		back.Set("state", s)
	}
	p.mu.Lock()
	login, deny := p.nextLogin, p.denyNext
	p.nextLogin, p.denyNext = nil, false
	p.mu.Unlock()
	method := q.Get("code_challenge_method")
	if method == "" && q.Get("code_challenge") != "" {
		method = "plain"
	}
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case deny || login == nil:
		back.Set("error", "access_denied")
	case method != "" && method != "S256" && method != "plain":
		back.Set("error", "invalid_request")
	default:
		c := *login
		c.Nonce = q.Get("nonce")
		back.Set("code", p.IssueCode(c, redirect.String(), q.Get("code_challenge"), method))
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token is the token endpoint (RFC 6749 section 4.1.3, RFC 7636 section 4.6).
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokenCalls++
	p.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// client_secret_basic form-encodes both before base64 (RFC 6749 section 2.3.1).
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.clientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	p.mu.Lock()
	code, ok := p.codes[r.PostForm.Get("code")]
	var c Claims
	valid := ok && !code.used && time.Now().Before(code.expiresAt) && code.clientID == id &&
		code.redirectURI == r.PostForm.Get("redirect_uri") && pkceOK(code, r.PostForm.Get("code_verifier"))
	if ok {
		code.used = true // a code is spent by its first presentation, right or wrong
		c = code.claims
	}
	p.mu.Unlock()
	if !valid {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": "ya29." + rand.Text(),
		"token_type":   "Bearer",
		"expires_in":   3599,
		"scope":        "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
		"id_token":     p.MintIDToken(c),
	})
}

// pkceOK checks code_verifier against the code's challenge. A code issued without a challenge
// refuses a verifier, and a code with one requires it.
func pkceOK(c *authCode, verifier string) bool {
	switch c.method {
	case "":
		return verifier == ""
	case "plain":
		return verifier != "" && subtle.ConstantTimeCompare([]byte(verifier), []byte(c.challenge)) == 1
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		got := base64.RawURLEncoding.EncodeToString(sum[:])
		return verifier != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.challenge)) == 1
	}
	return false
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
