package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// bindingCookie ties a started redirect flow to the browser that started it: without it, an
// attacker could complete their own flow in a victim's browser (login CSRF, RFC 9700 section
// 4.7). It holds a random value whose SHA-256 is stored with the state; HttpOnly, SameSite=Lax
// (sent on the top-level redirect back from Google), scoped to the callback path.
const bindingCookie = "cw_oauth_binding"

// handoffTTL is how long the refresh token handed to the dashboard in the final redirect stays
// usable: it travels in a URL fragment, so it must be spent (rotated) at once.
const handoffTTL = 2 * time.Minute

// callbackResult is how GoogleCallback answers: where the browser goes, and a Set-Cookie value.
type callbackResult struct {
	RedirectURL string
	SetCookie   string
}

// googleCallback is GET /api/v1/auth/google/callback. Without code, state or error it starts the
// redirect flow; otherwise it completes it. Completion never answers an error to the browser: it
// redirects to the dashboard with ?error=REASON (or #refresh_token=... on success).
func (s *Service) googleCallback(ctx context.Context, code, state, providerErr string, cookies []*http.Cookie) (callbackResult, error) {
	if code == "" && state == "" && providerErr == "" {
		return s.startRedirect(ctx)
	}
	clearCookie := (&http.Cookie{Name: bindingCookie, Value: "", Path: s.cfg.callbackPath(), MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.cookieSecure(), SameSite: http.SameSiteLaxMode}).String()
	res, err := s.completeRedirect(ctx, code, state, providerErr, cookies)
	if err != nil {
		if _, ok := errors.AsType[*apperr.Error](err); !ok {
			s.logger.ErrorContext(ctx, "google redirect sign-in failed", "err", err)
		}
		return callbackResult{RedirectURL: s.errorRedirect(err), SetCookie: clearCookie}, nil
	}
	return callbackResult{RedirectURL: s.successRedirect(res), SetCookie: clearCookie}, nil
}

// startRedirect stores a new state (with its PKCE verifier, nonce and the binding cookie's hash)
// and answers the provider's authorization URL. With the dev fallback on it signs the dev teacher
// in straight away and answers the dashboard URL.
func (s *Service) startRedirect(ctx context.Context) (callbackResult, error) {
	if trigger := s.cfg.devFallbackTrigger(); trigger != "" {
		res, err := s.devSignIn(ctx, trigger, handoffTTL)
		if err != nil {
			return callbackResult{RedirectURL: s.errorRedirect(err)}, nil
		}
		return callbackResult{RedirectURL: s.successRedirect(res)}, nil
	}
	if s.cfg.GoogleClientID == "" {
		return callbackResult{RedirectURL: s.errorRedirect(errGoogleNotConfigured)}, nil
	}
	state, binding, nonce := randomValue(), randomValue(), randomValue()
	verifier := oauth2.GenerateVerifier()
	authURL, err := s.google.authURL(ctx, state, verifier, nonce)
	if err != nil {
		return callbackResult{RedirectURL: s.errorRedirect(err)}, nil
	}
	now := s.now()
	if err := s.store.SaveOAuthState(ctx, OAuthState{
		StateHash: sha256Sum(state), BindingHash: sha256Sum(binding), CodeVerifier: verifier, Nonce: nonce,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.OAuthStateTTL),
	}); err != nil {
		return callbackResult{}, err
	}
	cookie := &http.Cookie{
		Name: bindingCookie, Value: binding, Path: s.cfg.callbackPath(),
		MaxAge: int(s.cfg.OAuthStateTTL / time.Second), HttpOnly: true, Secure: s.cfg.cookieSecure(),
		SameSite: http.SameSiteLaxMode,
	}
	return callbackResult{RedirectURL: authURL, SetCookie: cookie.String()}, nil
}

// completeRedirect checks the state (known, unexpired, unused, bound to this browser), exchanges
// the code with the state's PKCE verifier, checks the ID token's nonce, and signs in. The state is
// spent whatever happens next.
func (s *Service) completeRedirect(ctx context.Context, code, state, providerErr string, cookies []*http.Cookie) (signInResult, error) {
	if state == "" {
		return signInResult{}, errOAuthState
	}
	st, err := s.store.TakeOAuthState(ctx, sha256Sum(state), s.now())
	if errors.Is(err, ErrNotFound) {
		return signInResult{}, errOAuthState
	}
	if err != nil {
		return signInResult{}, err
	}
	bound := false
	for _, c := range cookies {
		if c.Name == bindingCookie && subtle.ConstantTimeCompare(sha256Sum(c.Value), st.BindingHash) == 1 {
			bound = true
		}
	}
	if !bound {
		return signInResult{}, errOAuthState.WithCause(errors.New("binding cookie missing or not the state's"))
	}
	if providerErr != "" {
		if providerErr == "access_denied" {
			return signInResult{}, errAccessDenied
		}
		return signInResult{}, errGoogleCodeInvalid.WithCause(errors.New("provider answered error " + strconv.Quote(providerErr)))
	}
	if code == "" {
		return signInResult{}, errOAuthState.WithCause(errors.New("no code"))
	}
	raw, err := s.google.exchange(ctx, code, st.CodeVerifier, s.cfg.GoogleRedirectURI)
	if err != nil {
		s.m.signIn(methodRedirect, err)
		return signInResult{}, err
	}
	id, err := s.google.verify(ctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(st.Nonce)) != 1 {
		err = errGoogleTokenInvalid.WithCause(errors.New("nonce mismatch"))
	}
	if err != nil {
		s.m.signIn(methodRedirect, err)
		return signInResult{}, err
	}
	return s.completeSignIn(ctx, id, methodRedirect, handoffTTL)
}

// successRedirect is the dashboard URL carrying the hand-off refresh token in the fragment.
func (s *Service) successRedirect(res signInResult) string {
	u := s.cfg.frontendCallback()
	f := url.Values{}
	f.Set("refresh_token", res.Tokens.Refresh)
	f.Set("expires_in", strconv.Itoa(int(res.Tokens.RefreshExpiresIn/time.Second)))
	if res.Degraded {
		f.Set("degraded_mode", "true")
	}
	if res.FirstSignIn {
		f.Set("first_sign_in", "true")
	}
	return u.String() + "#" + f.Encode()
}

// errorRedirect is the dashboard URL carrying err's reason.
func (s *Service) errorRedirect(err error) string {
	u := s.cfg.frontendCallback()
	u.RawQuery = url.Values{"error": {reasonOf(err)}}.Encode()
	return u.String()
}

// randomValue is 32 random bytes, base64url: states, nonces, cookie values, CSRF tokens.
func randomValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+: it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
