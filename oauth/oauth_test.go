package oauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/oauthtest"
	"github.com/popbridge/popbridge/internal/testenv"
)

// logBuf captures every log record of a test, to check that no token
// ever reaches one.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	fake  *oauthtest.Server
	cfg   Config
	store *Store
	dir   string
	logs  *logBuf
	log   *slog.Logger
	errs  []error // every error a test saw, checked for tokens at the end
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{fake: oauthtest.Start(t, "client-123"), dir: t.TempDir(), logs: &logBuf{}}
	f.cfg = Config{Provider: Microsoft, ClientID: "client-123", Override: &Preset{
		Name: "Microsoft", AuthURL: f.fake.AuthURL(), TokenURL: f.fake.TokenURL(),
		Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}, RedirectHost: "127.0.0.1",
	}}
	f.store = NewStore(f.dir)
	f.log = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() { f.checkNoTokens(t) })
	return f
}

// checkNoTokens fails if any token the fake server issued appears in the
// logs or an error text.
func (f *fixture) checkNoTokens(t *testing.T) {
	t.Helper()
	logs := f.logs.String()
	for _, tok := range f.fake.Tokens() {
		if strings.Contains(logs, tok) {
			t.Errorf("a token appears in the log:\n%s", logs)
		}
		for _, err := range f.errs {
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("a token appears in an error: %v", err)
			}
		}
	}
}

func (f *fixture) login(t *testing.T, account string) {
	t.Helper()
	fl, err := Start(context.Background(), LoginOptions{Config: f.cfg, Store: f.store, Account: account, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	status, body, err := oauthtest.Authorize(fl.AuthURL)
	if err != nil || status != http.StatusOK || !strings.Contains(body, "Signed in") || !strings.Contains(body, "サインインしました") {
		t.Fatalf("browser: %d %v\n%s", status, err, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	fl, err := Start(context.Background(), LoginOptions{Config: f.cfg, Store: f.store, Account: "taro@example.com", Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(fl.AuthURL)
	q := u.Query()
	for k, want := range map[string]string{
		"client_id": "client-123", "response_type": "code", "code_challenge_method": "S256",
		"redirect_uri": fl.RedirectURL, "login_hint": "taro@example.com",
		"scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
	} {
		if q.Get(k) != want {
			t.Errorf("auth URL %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 40 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q / code_challenge %q too short", q.Get("state"), q.Get("code_challenge"))
	}
	if !strings.HasPrefix(fl.RedirectURL, "http://127.0.0.1:") {
		t.Errorf("redirect %s is not loopback", fl.RedirectURL)
	}
	status, body, err := oauthtest.Authorize(fl.AuthURL)
	if err != nil || status != 200 || !strings.Contains(body, "Signed in") {
		t.Fatalf("callback: %d %v %s", status, err, body)
	}
	if err := fl.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	saved, err := f.store.Load(Microsoft, "taro@example.com")
	if err != nil || saved == nil || saved.RefreshToken == "" || saved.AccessToken == "" || saved.ClientID != "client-123" {
		t.Fatalf("stored: %v, %v", saved, err)
	}
	if f.fake.Exchanges != 1 {
		t.Errorf("exchanges = %d", f.fake.Exchanges)
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(f.store.Path(Microsoft, "taro@example.com"))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("token file mode %04o, want 0600", st.Mode().Perm())
		}
		st, _ = os.Stat(f.store.Dir)
		if st.Mode().Perm() != 0o700 {
			t.Errorf("token dir mode %04o, want 0700", st.Mode().Perm())
		}
	}
	// The listener is gone after Wait.
	if _, err := http.Get(fl.RedirectURL + "/"); err == nil {
		t.Error("the loopback listener still answers after the sign-in")
	}
	if s := fmt.Sprint(saved); strings.Contains(s, saved.RefreshToken) || strings.Contains(s, saved.AccessToken) {
		t.Errorf("Saved prints its tokens: %s", s)
	}
	f.log.Info("stored", "saved", saved)
}

// TestWrongState: a callback with another state is refused and does not
// end the sign-in; the real one then completes it.
func TestWrongState(t *testing.T) {
	f := newFixture(t)
	fl, err := Start(context.Background(), LoginOptions{Config: f.cfg, Store: f.store, Account: "alice", Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := oauthtest.Callback(fl.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	forged := *cb
	q := forged.Query()
	q.Set("state", "not-the-state")
	forged.RawQuery = q.Encode()
	resp, err := http.Get(forged.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong state answered %s", resp.Status)
	}
	q.Del("state")
	forged.RawQuery = q.Encode()
	resp, _ = http.Get(forged.String())
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no state answered %s", resp.Status)
	}
	select {
	case <-fl.done:
		t.Fatalf("a forged callback ended the sign-in: %v", fl.result)
	default:
	}
	if s, _ := f.store.Load(Microsoft, "alice"); s != nil {
		t.Fatal("a token was stored from a forged callback")
	}
	resp, err = http.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("real callback: %s", resp.Status)
	}
	if err := fl.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs.String(), "wrong state") {
		t.Errorf("the refused callback was not logged:\n%s", f.logs.String())
	}
}

// TestPKCEVerifierChecked: the fake server refuses a code exchanged with
// another verifier; the sign-in fails in words, without storing a token.
func TestPKCEVerifierChecked(t *testing.T) {
	f := newFixture(t)
	fl, err := Start(context.Background(), LoginOptions{Config: f.cfg, Store: f.store, Account: "alice", Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	fl.verifier = "a-different-verifier-a-different-verifier-xx"
	status, body, _ := oauthtest.Authorize(fl.AuthURL)
	if status != 200 || !strings.Contains(body, "did not complete") {
		t.Errorf("page: %d %s", status, body)
	}
	err = fl.Wait(context.Background())
	f.errs = append(f.errs, err)
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Reason != ReasonFailed || !strings.Contains(err.Error(), "PKCE verification failed") {
		t.Errorf("Wait = %v, want a failed sign-in naming the PKCE check", err)
	}
	if s, _ := f.store.Load(Microsoft, "alice"); s != nil {
		t.Error("a token was stored")
	}
}

func TestDeclined(t *testing.T) {
	f := newFixture(t)
	f.fake.SetDeny(true)
	fl, err := Start(context.Background(), LoginOptions{Config: f.cfg, Store: f.store, Account: "alice", Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	status, body, _ := oauthtest.Authorize(fl.AuthURL)
	if status != 200 || !strings.Contains(body, "cancelled") {
		t.Errorf("page: %d %s", status, body)
	}
	err = fl.Wait(context.Background())
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Reason != ReasonDeclined || !errors.Is(err, ErrConsentNeeded) {
		t.Fatalf("Wait = %v", err)
	}
	if !strings.Contains(ce.Text("ja"), "取り消され") || !strings.Contains(ce.Text("en"), "cancelled") {
		t.Errorf("texts: %q / %q", ce.Text("ja"), ce.Text("en"))
	}
}

// TestRefresh: the stored access token is used while it has more than
// RefreshBefore left, renewed after that or when the server rejected it,
// and a rotated refresh token is kept.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	f.login(t, "alice")
	saved, _ := f.store.Load(Microsoft, "alice")
	src := NewSource(f.cfg, f.store, "alice", f.log)
	ctx := context.Background()

	tok, err := src.Token(ctx, false)
	if err != nil || tok != saved.AccessToken || f.fake.Refreshes != 0 {
		t.Fatalf("fresh token: %v, refreshes %d", err, f.fake.Refreshes)
	}
	// Four minutes before expiry: renewed ahead of time.
	src.Now = func() time.Time { return saved.Expiry.Add(-4 * time.Minute) }
	tok2, err := src.Token(ctx, false)
	if err != nil || tok2 == tok || f.fake.Refreshes != 1 {
		t.Fatalf("near expiry: %v, same token %v, refreshes %d", err, tok2 == tok, f.fake.Refreshes)
	}
	src.Now = time.Now
	if tok3, _ := src.Token(ctx, false); tok3 != tok2 || f.fake.Refreshes != 1 {
		t.Errorf("the renewed token was not stored and reused")
	}
	// The server rejected it: renewed although it looks valid.
	if tok4, err := src.Token(ctx, true); err != nil || tok4 == tok2 || f.fake.Refreshes != 2 {
		t.Errorf("forced refresh: %v, refreshes %d", err, f.fake.Refreshes)
	}
	// Rotation: the new refresh token is saved; the old one is dead.
	f.fake.SetRotate(true)
	before, _ := f.store.Load(Microsoft, "alice")
	if _, err := src.Token(ctx, true); err != nil {
		t.Fatal(err)
	}
	after, _ := f.store.Load(Microsoft, "alice")
	if after.RefreshToken == before.RefreshToken {
		t.Error("the rotated refresh token was not saved")
	}
	if _, err := src.Token(ctx, true); err != nil {
		t.Errorf("refresh with the rotated token: %v", err)
	}
	if !strings.Contains(f.logs.String(), "OAuth2 access token renewed") {
		t.Error("renewal not logged")
	}
}

// TestRevoked: a revoked refresh token asks for a new sign-in in plain
// words (English and Japanese).
func TestRevoked(t *testing.T) {
	f := newFixture(t)
	f.login(t, "alice")
	f.fake.RevokeRefreshTokens()
	src := NewSource(f.cfg, f.store, "alice", f.log)
	_, err := src.Token(context.Background(), true)
	f.errs = append(f.errs, err)
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Reason != ReasonRevoked || !errors.Is(err, ErrConsentNeeded) {
		t.Fatalf("Token = %v, want a revoked ConsentError", err)
	}
	for _, want := range []string{"no longer accepts", "sign in again", "popbridge login", "invalid_grant"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if ja := ce.Text("ja"); !strings.Contains(ja, "もう一度サインイン") {
		t.Errorf("Japanese text: %s", ja)
	}
}

func TestNotSignedInAndClientChanged(t *testing.T) {
	f := newFixture(t)
	src := NewSource(f.cfg, f.store, "alice", f.log)
	_, err := src.Token(context.Background(), false)
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Reason != ReasonNotSignedIn || !strings.Contains(err.Error(), "popbridge login") {
		t.Errorf("not signed in: %v", err)
	}
	f.login(t, "alice")
	other := f.cfg
	other.ClientID = "client-456"
	_, err = NewSource(other, f.store, "alice", f.log).Token(context.Background(), false)
	if !errors.As(err, &ce) || ce.Reason != ReasonClientChanged {
		t.Errorf("client changed: %v", err)
	}
}

func TestPresets(t *testing.T) {
	ms, err := PresetFor(Microsoft, "")
	if err != nil {
		t.Fatal(err)
	}
	if ms.AuthURL != "https://login.microsoftonline.com/common/oauth2/v2.0/authorize" || ms.TokenURL != "https://login.microsoftonline.com/common/oauth2/v2.0/token" {
		t.Errorf("microsoft endpoints: %+v", ms)
	}
	if got := strings.Join(ms.Scopes, " "); got != "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All offline_access" {
		t.Errorf("microsoft scopes: %s", got)
	}
	if ms2, _ := PresetFor(Microsoft, "contoso.onmicrosoft.com"); !strings.Contains(ms2.AuthURL, "/contoso.onmicrosoft.com/") {
		t.Errorf("tenant: %s", ms2.AuthURL)
	}
	g, _ := PresetFor(Google, "")
	if strings.Join(g.Scopes, " ") != "https://mail.google.com/" || g.AuthParams["access_type"] != "offline" || g.IMAPHost != "imap.gmail.com" {
		t.Errorf("google: %+v", g)
	}
	if _, err := PresetFor("yahoo", ""); err == nil {
		t.Error("unknown provider accepted")
	}
}

// TestDovecotXOAUTH2: a real IMAP server (Dovecot, its oauth2 passdb asking
// the fake server's introspection endpoint) accepts the upstream pool's
// XOAUTH2 login only with a current token: after the access token expired
// the pool's retry renews it; with the refresh token revoked the login
// fails with the re-consent message.
func TestDovecotXOAUTH2(t *testing.T) {
	testenv.RequireDovecot(t)
	f := newFixture(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{OAuth2IntrospectURL: f.fake.IntrospectURL()})
	f.login(t, "alice")
	src := NewSource(f.cfg, f.store, "alice", f.log)
	pool := func(mech upstream.AuthMech) *upstream.Pool {
		p, err := upstream.New(upstream.Options{Host: dc.Host, Port: dc.IMAPPort, TLS: upstream.TLSNone, Username: "alice",
			Auth: mech, Token: src.Token, Logger: f.log, MaxConnections: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pool(upstream.AuthXOAuth2).Check(ctx); err != nil {
		t.Fatalf("XOAUTH2 with a fresh token: %v", err)
	}
	if err := pool(upstream.AuthOAuthBearer).Check(ctx); err != nil {
		t.Fatalf("OAUTHBEARER with a fresh token: %v", err)
	}
	if f.fake.Refreshes != 0 {
		t.Errorf("refreshed %d times with a fresh token", f.fake.Refreshes)
	}
	// A token Dovecot does not accept is really refused (the server checks).
	bad, _ := upstream.New(upstream.Options{Host: dc.Host, Port: dc.IMAPPort, TLS: upstream.TLSNone, Username: "alice", Auth: upstream.AuthXOAuth2,
		Token: func(context.Context, bool) (string, error) { return "at-forged", nil }, Logger: f.log, MaxConnections: 1})
	defer bad.Close()
	if err := bad.Check(ctx); !upstream.IsAuth(err) {
		t.Fatalf("a forged token was not refused: %v", err)
	}

	f.fake.ExpireAccessTokens()
	if err := pool(upstream.AuthXOAuth2).Check(ctx); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if f.fake.Refreshes != 1 {
		t.Errorf("refreshes after expiry = %d, want 1", f.fake.Refreshes)
	}

	f.fake.RevokeRefreshTokens()
	f.fake.ExpireAccessTokens()
	err := pool(upstream.AuthXOAuth2).Check(ctx)
	f.errs = append(f.errs, err)
	if err == nil || !errors.Is(err, ErrConsentNeeded) || !strings.Contains(err.Error(), "sign in again") || strings.Contains(err.Error(), "oauth2_token_command") {
		t.Fatalf("after revocation: %v, want the re-consent message", err)
	}
	t.Logf("after revocation: %v", err)
}
