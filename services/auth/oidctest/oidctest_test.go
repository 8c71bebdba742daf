package oidctest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestProviderSpeaksOIDC drives the provider with the real go-oidc and oauth2 clients: discovery,
// key fetch, verification, and the code exchange with both client authentication styles.
func TestProviderSpeaksOIDC(t *testing.T) {
	p := New(t)
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	v := prov.Verifier(&oidc.Config{ClientID: p.ClientID()})
	c := p.Claims("a@school.example.org", "school.example.org")
	tok, err := v.Verify(ctx, p.MintIDToken(c))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Email string `json:"email"`
		HD    string `json:"hd"`
		EV    bool   `json:"email_verified"`
	}
	if err := tok.Claims(&got); err != nil || got.Email != c.Email || got.HD != c.HostedDomain || !got.EV {
		t.Errorf("claims = %+v, %v", got, err)
	}
	if _, err := v.Verify(ctx, p.Forge(c)); err == nil {
		t.Error("a forged token verified")
	}
	expired := c
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	if _, err := v.Verify(ctx, p.MintIDToken(expired)); !errors.As(err, new(*oidc.TokenExpiredError)) {
		t.Errorf("expired token: %v", err)
	}
	p.RotateKey()
	if _, err := v.Verify(ctx, p.MintIDToken(c)); err != nil {
		t.Errorf("token of a rotated key: %v", err)
	}

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := oauth2.Config{ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), RedirectURL: "https://app/cb",
			Endpoint: oauth2.Endpoint{AuthURL: prov.Endpoint().AuthURL, TokenURL: prov.Endpoint().TokenURL, AuthStyle: style}}
		verifier := oauth2.GenerateVerifier()
		code := p.IssueCode(c, "https://app/cb", oauth2.S256ChallengeFromVerifier(verifier), "S256")
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("auth style %v: %v", style, err)
		}
		if raw, _ := tok.Extra("id_token").(string); raw == "" {
			t.Errorf("auth style %v: no id_token", style)
		}
		if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
			t.Errorf("auth style %v: a code was exchanged twice", style)
		}
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	p := New(t)
	code := p.IssueCode(p.Claims("a@b.org", "b.org"), "https://app/cb", "plain-verifier-plain-verifier-plain-verifier", "plain")
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"wrong secret", url.Values{"client_id": {p.ClientID()}, "client_secret": {"x"}, "grant_type": {"authorization_code"}, "code": {code}},
			http.StatusUnauthorized, "invalid_client"},
		{"grant type", url.Values{"client_id": {p.ClientID()}, "client_secret": {p.ClientSecret()}, "grant_type": {"password"}},
			http.StatusBadRequest, "unsupported_grant_type"},
		{"wrong plain verifier", url.Values{"client_id": {p.ClientID()}, "client_secret": {p.ClientSecret()}, "grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {"https://app/cb"}, "code_verifier": {"nope"}}, http.StatusBadRequest, "invalid_grant"},
		{"spent by the wrong try", url.Values{"client_id": {p.ClientID()}, "client_secret": {p.ClientSecret()}, "grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {"https://app/cb"}, "code_verifier": {"plain-verifier-plain-verifier-plain-verifier"}}, http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(p.Issuer()+"/token", "application/x-www-form-urlencoded", strings.NewReader(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || body.Error != tt.wantError {
				t.Errorf("token endpoint = %d %q, want %d %q", resp.StatusCode, body.Error, tt.wantStatus, tt.wantError)
			}
		})
	}
}
