package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/popbridge/popbridge/control"
)

// contentSecurityPolicy allows the console's own scripts, styles and
// images only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Lifetimes.
const (
	loginTokenTTL = 15 * time.Minute // a login URL works once, for this long
	sessionIdle   = 24 * time.Hour   // a session unused this long is gone
	maxSessions   = 64
	maxTokens     = 64
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// session is one logged-in browser.
type session struct {
	id       string
	csrf     string
	lastSeen time.Time
}

// gate holds the one-time login tokens and the sessions.
type gate struct {
	now      func() time.Time
	mu       sync.Mutex
	tokens   map[string]time.Time // token → expiry
	sessions map[string]*session
}

func newGate(now func() time.Time) *gate {
	return &gate{now: now, tokens: map[string]time.Time{}, sessions: map[string]*session{}}
}

// mint returns a new one-time login token.
func (g *gate) mint() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for t, exp := range g.tokens {
		if now.After(exp) {
			delete(g.tokens, t)
		}
	}
	if len(g.tokens) >= maxTokens {
		var oldest string
		for t, exp := range g.tokens {
			if oldest == "" || exp.Before(g.tokens[oldest]) {
				oldest = t
			}
		}
		delete(g.tokens, oldest)
	}
	t := randomHex(24)
	g.tokens[t] = now.Add(loginTokenTTL)
	return t
}

// redeem uses up a login token and opens a session.
func (g *gate) redeem(token string) (*session, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var found string
	for t, exp := range g.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 && !now.After(exp) {
			found = t
		}
	}
	if found == "" {
		return nil, false
	}
	delete(g.tokens, found)
	for id, s := range g.sessions {
		if now.Sub(s.lastSeen) > sessionIdle {
			delete(g.sessions, id)
		}
	}
	if len(g.sessions) >= maxSessions {
		var oldest *session
		for _, s := range g.sessions {
			if oldest == nil || s.lastSeen.Before(oldest.lastSeen) {
				oldest = s
			}
		}
		delete(g.sessions, oldest.id)
	}
	s := &session{id: randomHex(32), csrf: randomHex(32), lastSeen: now}
	g.sessions[s.id] = s
	return s, true
}

// lookup returns the live session with id.
func (g *gate) lookup(id string) *session {
	if id == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sessions[id]
	if s == nil {
		return nil
	}
	now := g.now()
	if now.Sub(s.lastSeen) > sessionIdle {
		delete(g.sessions, id)
		return nil
	}
	s.lastSeen = now
	return s
}

func (g *gate) end(id string) {
	g.mu.Lock()
	delete(g.sessions, id)
	g.mu.Unlock()
}

// hostAllowed reports whether a Host header names this machine:
// localhost or a loopback address, with any port.
func hostAllowed(hostport string) bool {
	if hostport == "" {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return control.IsLoopbackHost(host)
}

// sameOrigin reports whether a state-changing request comes from the
// console itself: Sec-Fetch-Site (when the browser sends it) is
// same-origin or none, and Origin (when sent) is the console's.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		if o == "null" {
			// A privacy-preserving browser may hide the origin; then
			// only its own word that the request is same-origin counts.
			return r.Header.Get("Sec-Fetch-Site") == "same-origin"
		}
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host || u.Scheme != "http" {
			return false
		}
	}
	return true
}

// safeMethod: requests that change nothing.
func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// csrfOK checks the session's CSRF token on a state-changing request.
func csrfOK(r *http.Request, s *session) bool {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

// setSecurityHeaders sets the headers every response carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin: no referrer ever leaves the console, and the browser
	// still names the console as the Origin of its own form posts.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}
