// Package oauth signs popbridge in to Microsoft and Google mailboxes in the
// browser and keeps the tokens fresh: `popbridge login` and the console's
// "New mailbox" step call Start; the upstream IMAP pool and the POP3
// fetcher take their XOAUTH2 access tokens from a Source.
//
// Implementation notes:
//
//   - The OAuth 2.0 authorization code grant for native apps (RFC 8252)
//     with PKCE S256 (RFC 7636) and a loopback redirect: a one-shot HTTP
//     listener on 127.0.0.1 and a random port. The state parameter is
//     random and compared in constant time; a callback with the wrong
//     state is refused and the sign-in keeps waiting for the real one (a
//     forged request cannot cancel it). Provider presets (Preset) fill in
//     endpoints, scopes and the redirect's host: Microsoft Entra registers
//     `http://localhost` for "Mobile and desktop applications" (any port
//     matches), Google's desktop clients take http://127.0.0.1:<port>.
//   - Tokens (the refresh token included) are kept in data_dir/oauth/
//     <provider>-<account>.json, mode 0600 in a 0700 directory, written
//     atomically. Not in the OS credential store: macOS's keychain asks the
//     user to allow every new build of an unsigned program, the Secret
//     Service is missing where popbridge runs as a systemd user service or
//     headless, and the data dir is already the user's private directory
//     holding the mail index.
//   - Source.Token returns the stored access token while it has more than
//     RefreshBefore left, and refreshes it otherwise (or when the server
//     rejected it); a refresh token the provider rotates is saved. A
//     refresh answered with invalid_grant (revoked, expired, password
//     changed) becomes a *ConsentError: plain words, in English and
//     Japanese, saying to sign in again.
//   - Tokens never appear in a log record or an error text: errors carry
//     the provider's error code and description, never a request or
//     response body.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Providers.
const (
	Microsoft = "microsoft"
	Google    = "google"
)

// Preset is what a provider needs beyond the client's registration.
type Preset struct {
	Name     string // "Microsoft", "Google": for messages
	AuthURL  string
	TokenURL string
	Scopes   []string
	// RedirectHost is the loopback redirect's host: "localhost" or
	// "127.0.0.1" (the listener is on 127.0.0.1 either way).
	RedirectHost string
	// AuthParams are extra authorization request parameters.
	AuthParams map[string]string
	// IMAPHost and POPHost are the provider's servers (port 993 / 995).
	IMAPHost, POPHost string
}

// PresetFor returns the preset of a provider; tenant is Microsoft's
// ("common" when empty: personal and work accounts).
func PresetFor(provider, tenant string) (Preset, error) {
	switch provider {
	case Microsoft:
		if tenant == "" {
			tenant = "common"
		}
		base := "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0"
		return Preset{
			Name:     "Microsoft",
			AuthURL:  base + "/authorize",
			TokenURL: base + "/token",
			Scopes: []string{
				"https://outlook.office.com/IMAP.AccessAsUser.All",
				"https://outlook.office.com/POP.AccessAsUser.All",
				"offline_access",
			},
			RedirectHost: "localhost",
			AuthParams:   map[string]string{"prompt": "select_account"},
			IMAPHost:     "outlook.office365.com",
			POPHost:      "outlook.office365.com",
		}, nil
	case Google:
		return Preset{
			Name:         "Google",
			AuthURL:      "https://accounts.google.com/o/oauth2/v2/auth",
			TokenURL:     "https://oauth2.googleapis.com/token",
			Scopes:       []string{"https://mail.google.com/"},
			RedirectHost: "127.0.0.1",
			// offline: a refresh token; consent: a new one at every sign-in
			// (Google sends it only with consent).
			AuthParams: map[string]string{"access_type": "offline", "prompt": "consent"},
			IMAPHost:   "imap.gmail.com",
			POPHost:    "pop.gmail.com",
		}, nil
	}
	return Preset{}, fmt.Errorf("oauth: unknown provider %q (use %q or %q)", provider, Microsoft, Google)
}

// Config is one client registration: [upstream.oauth2] or [pop3.oauth2].
type Config struct {
	Provider     string // Microsoft or Google
	ClientID     string
	ClientSecret string // Google desktop clients have one; Microsoft public clients none
	Tenant       string // Microsoft: "common", "consumers", "organizations" or a tenant id
	// Override, when not nil, replaces the preset (tests: a fake server).
	Override *Preset
}

// Preset returns the provider preset (or the override).
func (c Config) Preset() (Preset, error) {
	if c.Override != nil {
		return *c.Override, nil
	}
	return PresetFor(c.Provider, c.Tenant)
}

func (c Config) oauth2(p Preset, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  redirect,
		Scopes:       p.Scopes,
	}
}

// ---------------------------------------------------------------------------
// Sign-in

// LoginOptions configure Start.
type LoginOptions struct {
	Config Config
	Store  *Store
	// Account is the mailbox's login (the e-mail address); it names the
	// stored token and is the login hint.
	Account string
	Log     *slog.Logger
}

// Flow is one sign-in in progress.
type Flow struct {
	// AuthURL is the page to open in the browser.
	AuthURL string
	// RedirectURL is the loopback address the provider sends the browser
	// back to.
	RedirectURL string

	opts     LoginOptions
	preset   Preset
	cfg      *oauth2.Config
	state    string
	verifier string
	srv      *http.Server
	lns      []net.Listener
	once     sync.Once
	done     chan struct{}
	result   error
	closed   sync.Once
}

// Start begins a sign-in: it listens on a loopback port and returns the
// authorization URL to open. Wait waits for the browser to come back.
func Start(ctx context.Context, opts LoginOptions) (*Flow, error) {
	if opts.Store == nil || opts.Account == "" || opts.Config.ClientID == "" {
		return nil, errors.New("oauth: sign-in needs a token store, an account and a client_id")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p, err := opts.Config.Preset()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("oauth: cannot listen on a loopback port for the browser's return: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{ln}
	if p.RedirectHost == "localhost" {
		// "localhost" may resolve to ::1 first.
		if l6, err := net.Listen("tcp", "[::1]:"+strconv.Itoa(port)); err == nil {
			lns = append(lns, l6)
		}
	}
	f := &Flow{
		RedirectURL: "http://" + net.JoinHostPort(p.RedirectHost, strconv.Itoa(port)),
		opts:        opts,
		preset:      p,
		state:       randomString(),
		verifier:    oauth2.GenerateVerifier(),
		lns:         lns,
		done:        make(chan struct{}),
	}
	f.cfg = opts.Config.oauth2(p, f.RedirectURL)
	params := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oauth2.SetAuthURLParam("login_hint", opts.Account)}
	for k, v := range p.AuthParams {
		params = append(params, oauth2.SetAuthURLParam(k, v))
	}
	f.AuthURL = f.cfg.AuthCodeURL(f.state, params...)
	f.srv = &http.Server{Handler: http.HandlerFunc(f.callback), ReadHeaderTimeout: 10 * time.Second}
	for _, l := range lns {
		go f.srv.Serve(l)
	}
	opts.Log.Info("OAuth2 sign-in started", "provider", p.Name, "account", opts.Account, "redirect", f.RedirectURL)
	return f, nil
}

func randomString() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Wait waits until the sign-in completes (the token is stored), fails, or
// ctx ends, then stops listening.
func (f *Flow) Wait(ctx context.Context) error {
	defer f.Close()
	select {
	case <-f.done:
		return f.result
	case <-ctx.Done():
		return fmt.Errorf("oauth: sign-in to %s was not completed in the browser: %w", f.preset.Name, ctx.Err())
	}
}

// Close stops listening (Wait does it too).
func (f *Flow) Close() {
	f.closed.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f.srv.Shutdown(sctx)
	})
}

func (f *Flow) finish(err error) {
	f.once.Do(func() {
		f.result = err
		close(f.done)
	})
}

func (f *Flow) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// callback is the browser's return from the provider.
func (f *Flow) callback(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "/callback" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
		// Not the answer to our request (an old tab, or forged): refuse,
		// and keep waiting for the real one.
		f.opts.Log.Warn("OAuth2 sign-in: refused a callback with the wrong state", "provider", f.preset.Name)
		page(w, http.StatusBadRequest, pageWrongState)
		return
	}
	if f.finished() {
		page(w, http.StatusGone, pageDone)
		return
	}
	if e := q.Get("error"); e != "" {
		err := &ConsentError{Provider: f.preset.Name, Account: f.opts.Account, Reason: ReasonDeclined, Detail: describe(e, q.Get("error_description"))}
		if e != "access_denied" {
			err.Reason = ReasonFailed
		}
		f.finish(err)
		page(w, http.StatusOK, pageDeclined)
		return
	}
	code := q.Get("code")
	if code == "" {
		page(w, http.StatusBadRequest, pageWrongState)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		err = tokenError(f.preset.Name, f.opts.Account, "exchanging the sign-in code", err)
		if ce := (*ConsentError)(nil); errors.As(err, &ce) {
			ce.Reason = ReasonFailed // invalid_grant here: a bad code, not a revoked sign-in
		}
		f.finish(err)
		page(w, http.StatusOK, pageFailed)
		return
	}
	if tok.RefreshToken == "" {
		f.finish(fmt.Errorf("oauth: %s signed you in but sent no refresh token, so popbridge could not stay signed in; check that the scopes include offline access and sign in again", f.preset.Name))
		page(w, http.StatusOK, pageFailed)
		return
	}
	if err := f.opts.Store.Save(f.opts.Config, f.opts.Account, tok); err != nil {
		f.finish(err)
		page(w, http.StatusOK, pageFailed)
		return
	}
	f.opts.Log.Info("OAuth2 sign-in completed", "provider", f.preset.Name, "account", f.opts.Account, "expires", tok.Expiry.Format(time.RFC3339))
	f.finish(nil)
	page(w, http.StatusOK, pageSignedIn)
}

// describe makes a provider's error code and description one line.
func describe(code, desc string) string {
	desc = strings.Join(strings.Fields(desc), " ")
	if len(desc) > 300 {
		desc = desc[:300] + "…"
	}
	if desc == "" {
		return code
	}
	return code + ": " + desc
}

// tokenError turns a token endpoint failure into an error without the
// response body (which may echo what was sent).
func tokenError(provider, account, doing string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "invalid_grant" {
			return &ConsentError{Provider: provider, Account: account, Reason: ReasonRevoked, Detail: describe(re.ErrorCode, re.ErrorDescription)}
		}
		status := ""
		if re.Response != nil {
			status = re.Response.Status
		}
		code := re.ErrorCode
		if code == "" {
			code = "HTTP " + status
		}
		return fmt.Errorf("oauth: %s refused %s for %s (%s)", provider, doing, account, describe(code, re.ErrorDescription))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Op and URL name the token endpoint (no secrets: they are in
		// the POST body); the cause says what failed.
		return fmt.Errorf("oauth: cannot reach %s for %s: %v", provider, doing, ue.Err)
	}
	return fmt.Errorf("oauth: %s: %s failed", provider, doing)
}

// ---------------------------------------------------------------------------
// Access tokens

// RefreshBefore is how long before its expiry an access token is
// refreshed.
const RefreshBefore = 5 * time.Minute

// Source hands out current access tokens for one account.
type Source struct {
	cfg     Config
	store   *Store
	account string
	log     *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// tokenLocks serialises the Sources of one account in this process (the
// bridge's connections and the console's check): two refreshes with the
// same refresh token at once would make a provider that rotates them
// (Microsoft) see the old one again and refuse it.
var tokenLocks sync.Map // token file path → *sync.Mutex

func lockFor(path string) *sync.Mutex {
	m, _ := tokenLocks.LoadOrStore(path, new(sync.Mutex))
	return m.(*sync.Mutex)
}

// NewSource returns the token source of account.
func NewSource(cfg Config, store *Store, account string, log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, store: store, account: account, log: log, Now: time.Now}
}

// Token returns a current access token; refresh asks for a new one even
// if the stored one looks valid (the server rejected it). It has the
// signature of upstream.Options.Token and pop3.Account.Token.
func (s *Source) Token(ctx context.Context, refresh bool) (string, error) {
	mu := lockFor(s.store.Path(s.cfg.Provider, s.account))
	mu.Lock()
	defer mu.Unlock()
	p, err := s.cfg.Preset()
	if err != nil {
		return "", err
	}
	saved, err := s.store.Load(s.cfg.Provider, s.account)
	if err != nil {
		return "", err
	}
	if saved == nil {
		return "", &ConsentError{Provider: p.Name, Account: s.account, Reason: ReasonNotSignedIn}
	}
	if saved.ClientID != s.cfg.ClientID {
		return "", &ConsentError{Provider: p.Name, Account: s.account, Reason: ReasonClientChanged}
	}
	tok := saved.Token()
	if !refresh && tok.AccessToken != "" && tok.Expiry.After(s.Now().Add(RefreshBefore)) {
		return tok.AccessToken, nil
	}
	if tok.RefreshToken == "" {
		return "", &ConsentError{Provider: p.Name, Account: s.account, Reason: ReasonRevoked, Detail: "no refresh token stored"}
	}
	// The oauth2 package refreshes when the token it holds is not valid:
	// hand it the refresh token only.
	nt, err := s.cfg.oauth2(p, "").TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		err = tokenError(p.Name, s.account, "renewing the sign-in", err)
		var ce *ConsentError
		if errors.As(err, &ce) {
			s.log.Warn("OAuth2 refresh token refused; the user must sign in again", "provider", p.Name, "account", s.account, "reason", ce.Detail)
		}
		return "", err
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = tok.RefreshToken
	}
	if err := s.store.Save(s.cfg, s.account, nt); err != nil {
		return "", err
	}
	s.log.Info("OAuth2 access token renewed", "provider", p.Name, "account", s.account, "expires", nt.Expiry.Format(time.RFC3339), "rotated", nt.RefreshToken != tok.RefreshToken)
	return nt.AccessToken, nil
}
