// Package oauthtest is a fake OAuth2 authorization server for tests: real
// HTTP on loopback, the authorization code grant with PKCE (S256 checked),
// refresh tokens (revocable), access tokens that can be expired at will,
// and an RFC 7662 introspection endpoint that a private Dovecot's oauth2
// passdb asks, so that a real IMAP/POP3 server accepts XOAUTH2 only with a
// current token.
//
// The "browser" of a test is Authorize: it follows the authorization URL
// the way a user who clicks "Accept" would, ending at the app's loopback
// redirect.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the fake authorization server.
type Server struct {
	URL      string // base URL
	ClientID string
	// Secret, when set, is required at the token endpoint.
	Secret string
	// User is who signs in (the introspection username) unless a
	// login_hint names someone else.
	User string

	srv *httptest.Server

	mu        sync.Mutex
	lifetime  time.Duration
	codes     map[string]codeGrant
	access    map[string]accessToken
	refresh   map[string]string // refresh token → user
	rotate    bool
	deny      bool
	Refreshes int // successful refresh grants
	Exchanges int // successful code exchanges
	// Requests logs every request's path and form (tests grep it).
	requests []string
}

type codeGrant struct {
	challenge, method, redirect, user, scope string
}

type accessToken struct {
	user    string
	expires time.Time
}

// Start starts a server for clientID; it is closed at cleanup.
func Start(t testing.TB, clientID string) *Server {
	s := &Server{ClientID: clientID, User: "alice", lifetime: time.Hour,
		codes: map[string]codeGrant{}, access: map[string]accessToken{}, refresh: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", s.authorize)
	mux.HandleFunc("/token", s.token)
	mux.HandleFunc("/introspect", s.introspect)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// AuthURL and TokenURL are the endpoints.
func (s *Server) AuthURL() string       { return s.URL + "/authorize" }
func (s *Server) TokenURL() string      { return s.URL + "/token" }
func (s *Server) IntrospectURL() string { return s.URL + "/introspect" }

// SetLifetime sets the expires_in of access tokens issued from now on.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	s.lifetime = d
	s.mu.Unlock()
}

// SetRotate makes refresh grants issue a new refresh token (Microsoft
// does) and revoke the old one.
func (s *Server) SetRotate(on bool) {
	s.mu.Lock()
	s.rotate = on
	s.mu.Unlock()
}

// SetDeny makes the user decline consent.
func (s *Server) SetDeny(on bool) {
	s.mu.Lock()
	s.deny = on
	s.mu.Unlock()
}

// ExpireAccessTokens makes every access token issued so far expired.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, a := range s.access {
		a.expires = time.Now().Add(-time.Second)
		s.access[k] = a
	}
}

// RevokeRefreshTokens revokes every refresh token (the user changed the
// password, or removed the app's access).
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = map[string]string{}
}

// Tokens returns every access and refresh token issued (tests check none
// leaks into logs).
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.access {
		out = append(out, k)
	}
	for k := range s.refresh {
		out = append(out, k)
	}
	return out
}

// CurrentAccessToken returns a valid access token for user, issuing one
// directly (for tests that need a token without a login).
func (s *Server) CurrentAccessToken(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := "at-" + random()
	s.access[tok] = accessToken{user: user, expires: time.Now().Add(s.lifetime)}
	return tok
}

func random() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	ru, err := url.Parse(redirect)
	if err != nil || ru.Scheme != "http" || (ru.Hostname() != "127.0.0.1" && ru.Hostname() != "localhost" && ru.Hostname() != "::1") {
		http.Error(w, "redirect_uri must be a loopback http URL", http.StatusBadRequest)
		return
	}
	switch {
	case q.Get("client_id") != s.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case q.Get("state") == "":
		http.Error(w, "state required", http.StatusBadRequest)
		return
	}
	back := ru.Query()
	back.Set("state", q.Get("state"))
	s.mu.Lock()
	deny := s.deny
	if !deny {
		user := s.User
		if h := q.Get("login_hint"); h != "" {
			user = h
		}
		code := "code-" + random()
		s.codes[code] = codeGrant{challenge: q.Get("code_challenge"), method: "S256", redirect: redirect, user: user, scope: q.Get("scope")}
		back.Set("code", code)
	}
	s.mu.Unlock()
	if deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user declined.")
	}
	ru.RawQuery = back.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		tokenError(w, 400, "invalid_request", "POST a form")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || (s.Secret != "" && secret != s.Secret) {
		tokenError(w, 401, "invalid_client", "unknown client or wrong secret")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var user string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		g, ok := s.codes[code]
		delete(s.codes, code) // one use
		if !ok {
			tokenError(w, 400, "invalid_grant", "unknown or used code")
			return
		}
		if r.PostForm.Get("redirect_uri") != g.redirect {
			tokenError(w, 400, "invalid_grant", "redirect_uri differs from the authorization request")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			tokenError(w, 400, "invalid_grant", "PKCE verification failed")
			return
		}
		user = g.user
		s.Exchanges++
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		u, ok := s.refresh[rt]
		if !ok {
			tokenError(w, 400, "invalid_grant", "AADSTS70008: The refresh token has expired or been revoked.")
			return
		}
		user = u
		if s.rotate {
			delete(s.refresh, rt)
		}
		s.Refreshes++
	default:
		tokenError(w, 400, "unsupported_grant_type", "")
		return
	}
	at := "at-" + random()
	s.access[at] = accessToken{user: user, expires: time.Now().Add(s.lifetime)}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(s.lifetime.Seconds())}
	if r.PostForm.Get("grant_type") == "authorization_code" || s.rotate {
		rt := "rt-" + random()
		s.refresh[rt] = user
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// introspect answers RFC 7662 (token=… in a POST form) for Dovecot.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	tok := r.PostForm.Get("token")
	if tok == "" {
		tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	s.mu.Lock()
	a, ok := s.access[tok]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok || time.Now().After(a.expires) {
		json.NewEncoder(w).Encode(map[string]any{"active": "false"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"active": "true", "username": a.user})
}

// Authorize plays the user's browser: it opens authURL at the server,
// "accepts", and follows the redirect to the app's loopback callback,
// returning the callback's status and page.
func Authorize(authURL string) (int, string, error) {
	resp, err := http.Get(authURL)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Callback is where Authorize's first hop redirects to, without following
// it (to forge or replay callbacks).
func Callback(authURL string) (*url.URL, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("authorize: %s", resp.Status)
	}
	return url.Parse(resp.Header.Get("Location"))
}
