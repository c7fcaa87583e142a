package main

// The control Service's Host: the configuration file, read and written
// for the console's setup.

import (
	"context"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/fsutil"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/popbridge/popbridge/control"
)

var statPath = os.Stat

// configHost implements control.Host over a config file.
type configHost struct {
	mu     sync.Mutex
	path   string
	cfg    *Config
	reload func() // restart the bridge with the file as it is now
	now    func() time.Time
}

func (h *configHost) current() *Config {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg
}

// Settings implements control.Host.
func (h *configHost) Settings() (*control.Settings, error) {
	return settingsOf(h.current()), nil
}

// settingsOf describes c without its secrets.
func settingsOf(c *Config) *control.Settings {
	s := &control.Settings{
		ConfigPath: c.Path, DataDir: c.DataDir, Configured: len(c.Users) > 0, Prefix: c.Archive.Prefix,
		Sources: []control.SourceSetting{}, POP3: []control.POPSetting{}, Users: []control.UserSetting{},
		Listen:  control.ListenSetting{IMAP: c.Listen.IMAP, IMAPS: c.Listen.IMAPS},
		Console: c.Console.Listen,
		Migrate: control.MigrateSetting{Since: c.Migrate.Since.String(), Before: c.Migrate.Before.String(), DailyLimit: int64(c.Migrate.DailyLimit)},
	}
	for _, a := range []string{c.Listen.IMAP, c.Listen.IMAPS} {
		if host, _, err := net.SplitHostPort(a); err == nil && !isLoopbackHost(host) {
			s.Listen.LAN = true
		}
	}
	for _, src := range c.Archive.Sources {
		s.Sources = append(s.Sources, control.SourceSetting{Path: src.Path, Format: src.Format, Name: src.Name})
	}
	if u := c.Upstream; u != nil {
		us := &control.UpstreamSetting{Host: u.Host, Port: u.Port, TLS: u.TLS, Username: u.Username, Auth: u.Auth,
			CACert: u.CACert, Insecure: u.InsecureSkipVerify}
		switch {
		case u.OAuth2TokenCommand != "":
			us.PasswordSet, us.PasswordFrom = true, "oauth2_token_command"
		case u.PasswordFile != "":
			us.PasswordSet, us.PasswordFrom = true, "password_file"
		case u.PasswordCommand != "":
			us.PasswordSet, us.PasswordFrom = true, "password_command"
		case u.Password != "":
			us.PasswordSet, us.PasswordFrom = true, "password"
		case u.OAuth2 != nil:
			us.PasswordFrom = "oauth2"
		}
		if o := u.OAuth2; o != nil {
			us.OAuth2 = &control.OAuth2Setting{Provider: o.Provider, ClientID: o.ClientID, Tenant: o.Tenant, ClientSecretSet: o.ClientSecret != ""}
		}
		s.Upstream = us
	}
	for _, p := range c.POP3 {
		ps := control.POPSetting{Name: p.Name, Host: p.Host, Port: p.Port, TLS: p.TLS, Username: p.Username, PasswordSet: p.IsSet(),
			LeaveOnServer: p.LeaveOnServer == nil || *p.LeaveOnServer, DeliverTo: p.DeliverTo, IntervalMinutes: int(p.Interval.Duration() / time.Minute)}
		if p.DeleteAfter > 0 {
			ps.DeleteAfterDays = int(p.DeleteAfter.Duration() / (24 * time.Hour))
		}
		if p.OAuth2 != nil {
			ps.OAuth2 = p.OAuth2.Provider
		}
		s.POP3 = append(s.POP3, ps)
	}
	for _, u := range c.Users {
		s.Users = append(s.Users, control.UserSetting{Name: u.Name, PasswordSet: u.PasswordHash != ""})
	}
	return s
}

// Secret implements control.Host.
func (h *configHost) Secret(ctx context.Context, which string) (string, error) {
	c := h.current()
	if which == "upstream" {
		if c.Upstream == nil {
			return "", errors.New("no [upstream] is configured")
		}
		if c.Upstream.OAuth2 != nil {
			// The browser sign-in's current access token.
			return c.Upstream.oauthSource(nil).Token(ctx, false)
		}
		return c.Upstream.ResolvePassword(ctx)
	}
	if name, ok := strings.CutPrefix(which, "pop3:"); ok {
		if p := findPOP3(c, name); p != nil {
			return p.ResolvePassword(ctx)
		}
	}
	return "", fmt.Errorf("no stored secret %q", which)
}

// SaveSettings implements control.Host: apply ch to the file as it is on
// disk now, write it (through a temporary file, mode 0600, the previous
// version kept as popbridge.toml.bak) and restart the bridge with it.
func (h *configHost) SaveSettings(ctx context.Context, ch control.SettingsChange) (bool, error) {
	if err := h.save(ch); err != nil {
		return false, err
	}
	if h.reload != nil {
		h.reload()
		return true, nil
	}
	return false, nil
}

func (h *configHost) save(ch control.SettingsChange) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg, _, err := LoadConfig(h.path)
	if err != nil {
		return &control.Error{Code: control.CodeInvalid, Message: "the configuration file has a mistake; fix it first (or move it away to start over): " + err.Error(), Status: 409}
	}
	if err := applyChange(cfg, ch); err != nil {
		return err
	}
	data := renderConfig(cfg, h.now())
	next, _, err := ParseConfig(data, h.path)
	if err != nil {
		return &control.Error{Code: control.CodeInvalid, Message: err.Error(), Status: 400}
	}
	if old, err := os.ReadFile(h.path); err == nil {
		if err := os.WriteFile(h.path+".bak", old, 0o600); err != nil {
			return fmt.Errorf("keep a copy of %s: %w", h.path, err)
		}
	}
	if err := writeConfigFile(h.path, data); err != nil {
		return err
	}
	h.cfg = next
	return nil
}

// writeConfigFile replaces path with data (mode 0600) atomically.
func writeConfigFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

// secretFile stores a password the console received in data_dir/secrets
// (mode 0600) and returns the file's path for password_file.
func secretFile(dataDir, name, secret string) (string, error) {
	dir := filepath.Join(dataDir, "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("store the password: %w", err)
	}
	p := filepath.Join(dir, name)
	if err := writeConfigFile(p, []byte(secret+"\n")); err != nil {
		return "", fmt.Errorf("store the password: %w", err)
	}
	return p, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func badField(field, format string, args ...any) error {
	return &control.Error{Code: control.CodeBadRequest, Message: fmt.Sprintf(format, args...), Params: map[string]string{"field": field}, Status: 400}
}

// applyChange applies ch to cfg (read from the file, validated).
func applyChange(cfg *Config, ch control.SettingsChange) error {
	if ch.Sources != nil {
		var srcs []SourceConfig
		taken := map[string]bool{}
		for _, s := range *ch.Sources {
			if s.Name != "" {
				taken[strings.ToLower(s.Name)] = true
			}
		}
		for _, s := range *ch.Sources {
			format := s.Format
			if format == "" {
				format = FormatAuto
			}
			name := s.Name
			if name == "" {
				// Two Thunderbird profiles would both be "Thunderbird":
				// number the second one rather than refuse it.
				if st, err := os.Stat(s.Path); err == nil {
					base := sourceName(s.Path, st, format)
					derived := base
					for i := 2; taken[strings.ToLower(derived)]; i++ {
						derived = fmt.Sprintf("%s %d", base, i)
					}
					taken[strings.ToLower(derived)] = true
					if derived != base {
						name = derived
					}
				}
			}
			srcs = append(srcs, SourceConfig{Path: s.Path, Format: format, Name: name})
		}
		cfg.Archive.Sources = srcs
	}
	if u := ch.Upstream; u != nil {
		if u.Remove {
			cfg.Upstream = nil
		} else {
			old := cfg.Upstream
			nu := &UpstreamConfig{Host: strings.TrimSpace(u.Host), Port: u.Port, TLS: u.TLS, Username: strings.TrimSpace(u.Username),
				Auth: u.Auth, MaxConnections: defaultMaxConnections}
			if nu.TLS == "" {
				nu.TLS = TLSImplicit
			}
			if nu.Port == 0 {
				nu.Port = 143
				if nu.TLS == TLSImplicit {
					nu.Port = 993
				}
			}
			if old != nil {
				nu.MaxConnections, nu.CACert, nu.InsecureSkipVerify = old.MaxConnections, old.CACert, old.InsecureSkipVerify
				if nu.Auth == "" {
					nu.Auth = old.Auth
				}
			}
			if nu.Auth == "" {
				nu.Auth = AuthPlain
			}
			switch {
			case u.OAuth2 != nil:
				// Signs in in the browser: no password.
				o := &OAuth2Config{Provider: strings.ToLower(strings.TrimSpace(u.OAuth2.Provider)), ClientID: strings.TrimSpace(u.OAuth2.ClientID),
					ClientSecret: u.OAuth2.ClientSecret, Tenant: strings.TrimSpace(u.OAuth2.Tenant)}
				if o.ClientSecret == "" && old != nil && old.OAuth2 != nil && old.OAuth2.Provider == o.Provider && old.OAuth2.ClientID == o.ClientID {
					o.ClientSecret = old.OAuth2.ClientSecret
				}
				nu.OAuth2 = o
				if u.Auth == "" || (u.Auth != AuthXOAuth2 && u.Auth != AuthOAuthBearer) {
					nu.Auth = AuthXOAuth2
				}
			case u.Password != "":
				p, err := secretFile(cfg.DataDir, "upstream.password", u.Password)
				if err != nil {
					return err
				}
				nu.Secret = Secret{PasswordFile: p}
				if nu.Auth != AuthPlain && nu.Auth != AuthLogin {
					nu.Auth = AuthPlain
				}
			case old != nil && old.OAuth2 != nil:
				// Still signs in in the browser.
				nu.OAuth2 = old.OAuth2
				if nu.Auth != AuthXOAuth2 && nu.Auth != AuthOAuthBearer {
					nu.Auth = old.Auth
				}
			case old != nil && (old.IsSet() || old.OAuth2TokenCommand != ""):
				nu.Secret, nu.OAuth2TokenCommand = old.Secret, old.OAuth2TokenCommand
				if nu.OAuth2TokenCommand != "" && u.Auth == "" {
					nu.Auth = old.Auth
				}
			default:
				return badField("password", "the password of the mailbox is needed")
			}
			cfg.Upstream = nu
		}
	}
	if ch.POP3 != nil {
		var pops []POP3Config
		for i, p := range *ch.POP3 {
			old := findPOP3(cfg, p.OldName)
			name := strings.TrimSpace(p.Name)
			if name == "" {
				name = strings.TrimSpace(p.Host)
			}
			leave := p.LeaveOnServer
			np := POP3Config{Name: name, Host: strings.TrimSpace(p.Host), Port: p.Port, TLS: p.TLS, Username: strings.TrimSpace(p.Username),
				LeaveOnServer: &leave, DeliverTo: p.DeliverTo, Interval: defaultInterval, MaxMessageSize: defaultMaxMessageSize}
			if np.TLS == "" {
				np.TLS = TLSImplicit
			}
			if np.Port == 0 {
				np.Port = 110
				if np.TLS == TLSImplicit {
					np.Port = 995
				}
			}
			if np.DeliverTo == "" {
				np.DeliverTo = cfg.Archive.Prefix + "/Inbox"
			}
			if p.DeleteAfterDays > 0 {
				if !leave {
					return badField("pop_delete_after", "delete after %d days only applies when messages are left on the server", p.DeleteAfterDays)
				}
				np.DeleteAfter = Duration(time.Duration(p.DeleteAfterDays) * 24 * time.Hour)
			}
			if old != nil {
				np.Interval, np.MaxMessageSize = old.Interval, old.MaxMessageSize
			}
			switch {
			case p.Password != "":
				f, err := secretFile(cfg.DataDir, fmt.Sprintf("pop3-%d-%s.password", i, unsafeName.ReplaceAllString(name, "_")), p.Password)
				if err != nil {
					return err
				}
				np.Secret = Secret{PasswordFile: f}
			case old != nil && old.OAuth2 != nil:
				// Still signs in in the browser ([pop3.oauth2]).
				np.OAuth2 = old.OAuth2
			case old != nil && old.IsSet():
				np.Secret = old.Secret
			default:
				return badField("pop_password", "the password of the POP account %q is needed", name)
			}
			pops = append(pops, np)
		}
		cfg.POP3 = pops
	}
	if ch.LAN != nil {
		rehost := func(addr string) string {
			if addr == "" {
				return ""
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return addr
			}
			if *ch.LAN {
				return net.JoinHostPort("0.0.0.0", port)
			}
			return net.JoinHostPort("127.0.0.1", port)
		}
		cfg.Listen.IMAP, cfg.Listen.IMAPS = rehost(cfg.Listen.IMAP), rehost(cfg.Listen.IMAPS)
	}
	if ch.Users != nil {
		var users []UserConfig
		for _, u := range *ch.Users {
			hash := u.PasswordHash
			if hash == "" {
				for _, o := range cfg.Users {
					if o.Name == u.OldName || o.Name == u.Name && u.OldName == "" {
						hash = o.PasswordHash
					}
				}
			}
			if hash == "" {
				return badField("device_password", "user %q has no password yet", u.Name)
			}
			users = append(users, UserConfig{Name: u.Name, PasswordHash: hash})
		}
		cfg.Users = users
	}
	return nil
}

// newConfigFile writes a first popbridge.toml for a user who has none
// (popbridge started by a double-click): data_dir and the defaults, no
// user yet: the console's setup fills it in.
func newConfigFile(path string, now time.Time) (*Config, error) {
	cfg, _, err := ParseConfig(nil, path)
	if err != nil {
		return nil, err
	}
	if err := writeConfigFile(path, renderConfig(cfg, now)); err != nil {
		return nil, err
	}
	cfg, _, err = LoadConfig(path)
	return cfg, err
}
