package control

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/discover"
	"github.com/popbridge/popbridge/server"
)

// Settings implements API.
func (s *Service) Settings(ctx context.Context) (*Settings, error) {
	return s.settings()
}

// SaveSettings implements API.
func (s *Service) SaveSettings(ctx context.Context, ch SettingsChange) (*Settings, error) {
	if s.opts.Host == nil {
		return nil, errNoSettings
	}
	if err := checkChange(ch); err != nil {
		return nil, err
	}
	s.mu.Lock()
	starts := s.starts
	s.mu.Unlock()
	restart, err := s.opts.Host.SaveSettings(ctx, ch)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, &Error{Code: CodeInvalid, Message: err.Error(), Status: 400}
	}
	if restart {
		// Answer once the bridge runs with the new settings, so that what
		// the console asks next sees them.
		s.waitStart(ctx, starts, time.Minute)
	}
	s.hub.publish(Event{Type: "settings"})
	return s.opts.Host.Settings()
}

// checkChange catches what the console's forms can get wrong, with a
// field name the console can point at.
func checkChange(ch SettingsChange) error {
	bad := func(field, format string, args ...any) error {
		e := errorf(CodeBadRequest, format, args...)
		e.Params = map[string]string{"field": field}
		return e
	}
	if u := ch.Upstream; u != nil && !u.Remove {
		if strings.TrimSpace(u.Host) == "" {
			return bad("host", "the server name is missing")
		}
		if strings.ContainsAny(u.Host, " /:") && !strings.HasPrefix(u.Host, "[") {
			return bad("host", "%q is not a server name", u.Host)
		}
		if u.Port < 0 || u.Port > 65535 {
			return bad("port", "port %d: must be 1-65535", u.Port)
		}
		if strings.TrimSpace(u.Username) == "" {
			return bad("username", "the user name is missing")
		}
		switch u.TLS {
		case "", "implicit", "starttls", "none":
		default:
			return bad("tls", "%q is not a security mode", u.TLS)
		}
		if o := u.OAuth2; o != nil {
			switch strings.ToLower(strings.TrimSpace(o.Provider)) {
			case "microsoft", "google":
			default:
				return bad("oauth_provider", "%q is not a sign-in provider: microsoft or google", o.Provider)
			}
			id := strings.TrimSpace(o.ClientID)
			if id == "" {
				return bad("oauth_client_id", "the application (client) ID of the app registration is missing")
			}
			if strings.ContainsAny(id, " /?#&") {
				return bad("oauth_client_id", "%q is not a client ID: copy the Application (client) ID from the registration", id)
			}
		}
	}
	if ch.POP3 != nil {
		for _, p := range *ch.POP3 {
			if strings.TrimSpace(p.Host) == "" {
				return bad("pop_host", "the POP server name is missing")
			}
			if strings.TrimSpace(p.Username) == "" {
				return bad("pop_username", "the POP user name is missing")
			}
			if p.DeleteAfterDays < 0 {
				return bad("pop_delete_after", "delete after %d days: must be positive", p.DeleteAfterDays)
			}
		}
	}
	if ch.Sources != nil {
		for _, src := range *ch.Sources {
			if !filepath.IsAbs(src.Path) {
				return bad("sources", "%q is not a full path", src.Path)
			}
		}
	}
	return nil
}

// FindStores implements API.
func (s *Service) FindStores(ctx context.Context) ([]discover.Store, error) {
	out := discover.Find(*s.opts.Env)
	if out == nil {
		out = []discover.Store{}
	}
	return out, nil
}

// ScanStore implements API. The path must be in the user's files (the
// stores FindStores returns are).
func (s *Service) ScanStore(ctx context.Context, st discover.Store) (*discover.Scan, error) {
	if st.Path == "" || !filepath.IsAbs(st.Path) {
		return nil, errorf(CodeBadRequest, "%q is not a full path", st.Path)
	}
	sc := discover.ScanStore(ctx, st)
	return &sc, nil
}

// Browse implements API: a directory of the user's home, with what looks
// like mail marked. Nothing outside the home is listed.
func (s *Service) Browse(ctx context.Context, dir string) (*Listing, error) {
	home, err := filepath.EvalSymlinks(s.opts.Home)
	if err != nil || s.opts.Home == "" {
		return nil, errorf(CodeNotFound, "no home directory to browse")
	}
	if dir == "" {
		dir = home
	}
	if !filepath.IsAbs(dir) {
		return nil, errorf(CodeBadRequest, "%q is not a full path", dir)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(dir))
	if err != nil {
		return nil, &Error{Code: CodeNotFound, Message: err.Error(), Status: 404}
	}
	if !within(home, real) {
		return nil, &Error{Code: CodeOutsideHome, Message: "the folder picker only shows your own files (" + home + ")", Status: 400}
	}
	ents, err := os.ReadDir(real)
	if err != nil {
		return nil, &Error{Code: CodeNotFound, Message: err.Error(), Status: 404}
	}
	l := &Listing{Dir: real, Home: home, Entries: []Entry{}}
	if real != home {
		l.Parent = filepath.Dir(real)
	}
	const maxEntries = 1000
	for _, de := range ents {
		if len(l.Entries) == maxEntries {
			break
		}
		p := filepath.Join(real, de.Name())
		info, err := os.Stat(p) // follows links: a link out of the home is left out below
		if err != nil {
			continue
		}
		if de.Type()&os.ModeSymlink != 0 {
			if t, err := filepath.EvalSymlinks(p); err != nil || !within(home, t) {
				continue
			}
		}
		e := Entry{Name: de.Name(), Path: p, Dir: info.IsDir()}
		if e.Dir {
			e.Format = looksLikeMailDir(p)
		} else {
			if !info.Mode().IsRegular() {
				continue
			}
			e.Format = looksLikeMailFile(p)
			if e.Format == "" {
				continue
			}
			e.Size = info.Size()
		}
		l.Entries = append(l.Entries, e)
	}
	sort.Slice(l.Entries, func(i, j int) bool {
		a, b := l.Entries[i], l.Entries[j]
		if a.Dir != b.Dir {
			return a.Dir
		}
		ha, hb := strings.HasPrefix(a.Name, "."), strings.HasPrefix(b.Name, ".")
		if ha != hb {
			return hb
		}
		return strings.ToLower(a.Name) < strings.ToLower(b.Name)
	})
	return l, nil
}

// within reports whether p is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// looksLikeMailDir is a cheap look (no walk) at a directory.
func looksLikeMailDir(p string) string {
	isDir := func(n string) bool { st, err := os.Stat(filepath.Join(p, n)); return err == nil && st.IsDir() }
	isFile := func(n string) bool {
		st, err := os.Stat(filepath.Join(p, n))
		return err == nil && st.Mode().IsRegular()
	}
	switch {
	case isDir("cur") && isDir("new"):
		return "maildir"
	case isFile("prefs.js") && isDir("Mail"), filepath.Base(p) == "Local Folders":
		return "thunderbird"
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return ""
	}
	for i, e := range ents {
		if i > 200 {
			break
		}
		n := strings.ToLower(e.Name())
		switch {
		case strings.HasSuffix(n, ".msf"), e.IsDir() && strings.HasSuffix(n, ".sbd"):
			return "thunderbird"
		case strings.HasSuffix(n, ".eml"):
			return "eml"
		}
	}
	return ""
}

// looksLikeMailFile recognises an mbox (starts with "From ") or a .pst.
func looksLikeMailFile(p string) string {
	if strings.EqualFold(filepath.Ext(p), ".pst") {
		return "pst"
	}
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	var head [5]byte
	if n, _ := io.ReadFull(f, head[:]); n == 5 && string(head[:]) == "From " {
		return "mbox"
	}
	if string(head[:4]) == "!BDN" {
		return "pst"
	}
	return ""
}

// TestUpstream implements API: it logs in with the given settings and
// reads the quota, the folder count and the special-use folders.
func (s *Service) TestUpstream(ctx context.Context, t UpstreamTest) (*UpstreamResult, error) {
	start := time.Now()
	t.Host = strings.TrimSpace(t.Host)
	t.Username = strings.TrimSpace(t.Username)
	if t.TLS == "" {
		t.TLS = "implicit"
	}
	if t.Port == 0 {
		t.Port = 143
		if t.TLS == "implicit" {
			t.Port = 993
		}
	}
	res := &UpstreamResult{Host: t.Host, Port: t.Port}
	if t.Host == "" || t.Username == "" {
		return nil, errorf(CodeBadRequest, "the server name and the user name are needed")
	}
	var tlsCfg *tls.Config
	pw := t.Password
	if set, err := s.settings(); err == nil && set.Upstream != nil && strings.EqualFold(set.Upstream.Host, t.Host) {
		same := set.Upstream.Username == t.Username
		if same && set.Upstream.OAuth2 != nil && pw == "" && t.Auth == "" {
			// A browser sign-in: the stored token logs in.
			t.Auth = set.Upstream.Auth
		}
		if pw == "" && same && (set.Upstream.PasswordSet || set.Upstream.OAuth2 != nil) {
			if pw, err = s.opts.Host.Secret(ctx, "upstream"); err != nil {
				res.Kind, res.Detail = "credentials", err.Error()
				if texts := ConsentTexts(err); texts != nil {
					res.Kind, res.Texts = "sign-in", texts
				}
				return res, nil
			}
		}
		if set.Upstream.CACert != "" || set.Upstream.Insecure {
			tlsCfg = &tls.Config{ServerName: t.Host, InsecureSkipVerify: set.Upstream.Insecure}
			if set.Upstream.CACert != "" {
				pem, err := os.ReadFile(set.Upstream.CACert)
				if err == nil {
					tlsCfg.RootCAs = x509.NewCertPool()
					tlsCfg.RootCAs.AppendCertsFromPEM(pem)
				}
			}
		}
	}
	if pw == "" {
		res.Kind, res.Detail = "credentials", "no password given: type the password (or app password) of the mailbox"
		if t.Auth == string(upstream.AuthXOAuth2) || t.Auth == string(upstream.AuthOAuthBearer) {
			res.Kind, res.Detail = "sign-in", "not signed in yet: sign in with the provider first"
		}
		return res, nil
	}
	auth := upstream.AuthMech(t.Auth)
	if auth == "" {
		auth = upstream.AuthPlain
	}
	pool, err := upstream.New(upstream.Options{
		Host: t.Host, Port: t.Port, TLS: upstream.TLSMode(t.TLS), TLSConfig: tlsCfg, Username: t.Username, Auth: auth,
		Password:       func(context.Context) (string, error) { return pw, nil },
		Token:          func(context.Context, bool) (string, error) { return pw, nil },
		MaxConnections: 1,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		res.Kind, res.Detail = "config", err.Error()
		return res, nil
	}
	defer pool.Close()
	cctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := pool.Check(cctx); err != nil {
		res.Kind, res.Detail = upstreamKind(err), err.Error()
		res.Elapsed = time.Since(start)
		return res, nil
	}
	err = pool.Do(cctx, func(c *imapclient.Client) error {
		caps := c.Caps()
		var opts *imap.ListOptions
		if caps.Has(imap.CapSpecialUse) {
			opts = &imap.ListOptions{ReturnSpecialUse: true}
		}
		list, err := c.List("", "*", opts).Collect()
		if err != nil {
			return err
		}
		res.SpecialUse = map[string]string{}
		for _, l := range list {
			noSelect := false
			for _, a := range l.Attrs {
				switch a {
				case imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent:
					noSelect = true
				case imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrArchive:
					if _, dup := res.SpecialUse[string(a)]; !dup {
						res.SpecialUse[string(a)] = l.Mailbox
					}
				}
			}
			if !noSelect {
				res.Folders++
			}
		}
		if caps.Has(imap.CapQuota) {
			roots, err := c.GetQuotaRoot("INBOX").Wait()
			if err == nil {
				for _, q := range roots {
					if r, ok := q.Resources[imap.QuotaResourceStorage]; ok && r.Limit > 0 {
						res.Quota = &Quota{Used: r.Usage * 1024, Limit: r.Limit * 1024, Checked: time.Now()}
						break
					}
				}
			}
		}
		if res.Quota == nil {
			res.Quota = &Quota{None: true, Checked: time.Now()}
		}
		return nil
	})
	res.Elapsed = time.Since(start)
	if err != nil {
		res.Kind, res.Detail = upstreamKind(err), err.Error()
		return res, nil
	}
	res.OK = true
	return res, nil
}

// upstreamKind names the class of an upstream failure.
func upstreamKind(err error) string {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return ue.Kind.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "protocol"
}

// passwordAlphabet leaves out letters and digits people confuse (0/o, 1/l/i)
// when typing a password on a phone.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// NewDevicePassword returns a random password of four groups of four
// characters ("k7mp-x2qa-9tdr-h4wn", about 79 bits).
func NewDevicePassword() string {
	var b strings.Builder
	buf := make([]byte, 16)
	rand.Read(buf)
	for i, c := range buf {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(passwordAlphabet[int(c)%len(passwordAlphabet)])
	}
	return b.String()
}

// minDevicePassword is the shortest password a user may choose.
const minDevicePassword = 8

// SetDevicePassword implements API.
func (s *Service) SetDevicePassword(ctx context.Context, req DevicePasswordRequest) (*DevicePassword, error) {
	set, err := s.settings()
	if err != nil {
		return nil, err
	}
	user := strings.TrimSpace(req.User)
	if user == "" && len(set.Users) > 0 {
		user = set.Users[0].Name
	}
	if user == "" {
		// The address the user gave: the name they know.
		user = s.deviceAccount(set).Email
	}
	if user == "" {
		user = "me"
	}
	pw := req.Password
	if pw == "" {
		pw = NewDevicePassword()
	} else if len([]rune(pw)) < minDevicePassword {
		return nil, &Error{Code: CodeWeakPassword, Message: "the password is too short: use at least 8 characters", Status: 400, Params: map[string]string{"min": "8"}}
	}
	hash, err := server.HashPassword(pw)
	if err != nil {
		return nil, &Error{Code: CodeWeakPassword, Message: err.Error(), Status: 400}
	}
	var users []UserChange
	found := false
	for _, u := range set.Users {
		if u.Name == user {
			users = append(users, UserChange{Name: user, OldName: user, PasswordHash: hash})
			found = true
			continue
		}
		users = append(users, UserChange{Name: u.Name, OldName: u.Name})
	}
	if !found {
		// The first user is the device user: renaming it keeps one login.
		if len(users) > 0 && req.User != "" {
			users[0] = UserChange{Name: user, OldName: users[0].OldName, PasswordHash: hash}
		} else {
			users = append(users, UserChange{Name: user, PasswordHash: hash})
		}
	}
	if _, err := s.SaveSettings(ctx, SettingsChange{Users: &users}); err != nil {
		return nil, err
	}
	return &DevicePassword{User: user, Password: pw}, nil
}
