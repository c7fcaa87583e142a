package main

// Configuration: the TOML file, its defaults and its validation.
//
// Implementation notes:
//   - Decoding is strict: a key that popbridge does not know is an error that
//     names the key and its line, so a typo never silently falls back to a
//     default. Type errors name the key and line too.
//   - Decoding and validation are separate steps. ParseConfig decodes, then
//     validates onto defaults: every default is applied here and nowhere else,
//     and every error names its key (`upstream.port: must be 1-65535`).
//     All errors are reported at once (errors.Join), in file order.
//   - Relative paths resolve against the config file's directory, and `~`
//     expands to the home directory, so the file means the same thing
//     whichever directory popbridge is started from.
//   - Secrets (secrets.go) are never part of an error, a warning, String()
//     or a log record.

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"github.com/popbridge/popbridge/oauth"
	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge/backend/archive"
)

// Config is a validated popbridge configuration. After LoadConfig or
// ParseConfig every default is filled in and every path is absolute.
type Config struct {
	// Path is the absolute path of the file the config came from ("" when
	// parsed from memory without a name).
	Path string `toml:"-"`
	// DataDir holds the bridge's own state (bbolt index, local Maildir).
	// Default: the platform data directory (see defaultDataDir).
	DataDir  string          `toml:"data_dir"`
	Listen   ListenConfig    `toml:"listen"`
	Users    []UserConfig    `toml:"users"`
	Archive  ArchiveConfig   `toml:"archive"`
	Upstream *UpstreamConfig `toml:"upstream"` // nil: no upstream (archive-only bridge)
	POP3     []POP3Config    `toml:"pop3"`
	Migrate  MigrateConfig   `toml:"migrate"`
	Log      LogConfig       `toml:"log"`
	Console  ConsoleConfig   `toml:"console"`
}

// ListenConfig says where the bridge accepts IMAP clients.
type ListenConfig struct {
	// IMAP is the plaintext/STARTTLS listener. Default "127.0.0.1:1143";
	// "" when the file says "off".
	IMAP string `toml:"imap"`
	// IMAPS is the implicit-TLS listener. Default "127.0.0.1:1993"; "" when
	// the file says "off".
	IMAPS string `toml:"imaps"`
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TrustedNets are the networks (CIDR prefixes, normalised) from which
	// plaintext authentication is allowed. Default: loopback.
	TrustedNets []string `toml:"trusted_networks"`
	// Control is the local control endpoint (loopback host:port) used by
	// status/fetch/migrate/verify while serve runs. Default "127.0.0.1:0".
	Control string `toml:"control"`
}

// TrustedPrefixes returns TrustedNets parsed. Validation guarantees they
// parse; an invalid entry (in a hand-built Config) is skipped.
func (l ListenConfig) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range l.TrustedNets {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// UserConfig is one account allowed to log in to the bridge.
type UserConfig struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"` // bcrypt, from `popbridge passwd`
}

// ArchiveConfig describes the legacy store.
type ArchiveConfig struct {
	// Prefix is the folder under which legacy folders appear. Default
	// "Local"; no "/" inside, not "INBOX".
	Prefix  string         `toml:"prefix"`
	Sources []SourceConfig `toml:"sources"`
}

// SourceConfig is one legacy archive.
type SourceConfig struct {
	Path   string `toml:"path"`   // absolute after validation
	Format string `toml:"format"` // auto|mbox|thunderbird|maildir|eml|pst|becky|dbx|wlm|applemail
	Name   string `toml:"name"`   // folder name under the prefix; unique
}

// Source formats.
const (
	FormatAuto        = "auto"
	FormatMbox        = "mbox"
	FormatThunderbird = "thunderbird"
	FormatMaildir     = "maildir"
	FormatEML         = "eml"
	FormatPST         = "pst"
	FormatBecky       = "becky"     // Becky! Internet Mail 2 data folder
	FormatDBX         = "dbx"       // Outlook Express 5/6 store folder or one .dbx file
	FormatWLM         = "wlm"       // Windows Live Mail / Windows Mail store folder
	FormatAppleMail   = "applemail" // Apple Mail: ~/Library/Mail, a V<n> folder or .mbox mailboxes
)

// TLS modes for upstream and POP3 connections.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// Upstream authentication mechanisms.
const (
	AuthPlain       = "plain"
	AuthLogin       = "login"
	AuthXOAuth2     = "xoauth2"
	AuthOAuthBearer = "oauthbearer"
)

// UpstreamConfig is the real IMAP account.
type UpstreamConfig struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"` // default 993 (implicit) or 143
	TLS      string `toml:"tls"`  // implicit|starttls|none
	Username string `toml:"username"`
	Secret          // password | password_file | password_command
	// OAuth2TokenCommand prints an OAuth2 access token (first line of
	// stdout); see OAuth2Token.
	OAuth2TokenCommand string `toml:"oauth2_token_command"`
	Auth               string `toml:"auth"`            // plain|login|xoauth2|oauthbearer
	MaxConnections     int    `toml:"max_connections"` // 1..32, default 4
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
	CACert             string `toml:"ca_cert"` // PEM file, absolute after validation
	// OAuth2 signs in in the browser (popbridge login) instead of a
	// password or a token command; nil: not used.
	OAuth2  *OAuth2Config `toml:"oauth2"`
	dataDir string        // where OAuth2 tokens are kept (set by validation)
}

// OAuth2Config is [upstream.oauth2] or [pop3.oauth2]: the app registration
// that `popbridge login` signs in with (see the README for the steps at
// Microsoft Entra and Google Cloud).
type OAuth2Config struct {
	Provider     string `toml:"provider"`      // microsoft|google
	ClientID     string `toml:"client_id"`     // the registration's application (client) ID
	ClientSecret string `toml:"client_secret"` // optional (Google desktop clients have one)
	Tenant       string `toml:"tenant"`        // microsoft only; default "common"
}

// POP3Config is one old POP account that the bridge keeps fetching.
type POP3Config struct {
	Name     string `toml:"name"` // unique; default: host
	Host     string `toml:"host"`
	Port     int    `toml:"port"` // default 995 (implicit) or 110
	TLS      string `toml:"tls"`  // implicit|starttls|none
	Username string `toml:"username"`
	Secret
	Interval       Duration `toml:"interval"`        // default 5m, at least 30s
	LeaveOnServer  *bool    `toml:"leave_on_server"` // never nil after validation; default true
	DeleteAfter    Duration `toml:"delete_after"`    // 0: never
	DeliverTo      string   `toml:"deliver_to"`      // default "<prefix>/Inbox"
	MaxMessageSize ByteSize `toml:"max_message_size"`
	// OAuth2 signs in with AUTH XOAUTH2 (Microsoft and Google POP) instead
	// of a password; nil: not used.
	OAuth2  *OAuth2Config `toml:"oauth2"`
	key     string        // "pop3[i]", for messages
	dataDir string        // where OAuth2 tokens are kept (set by validation)
}

// MigrateConfig limits what `migrate` moves and where it goes.
type MigrateConfig struct {
	Since      Date              `toml:"since"`   // zero: no lower bound
	Before     Date              `toml:"before"`  // zero: no upper bound
	Folders    map[string]string `toml:"folders"` // legacy full name → upstream folder
	DailyLimit ByteSize          `toml:"daily_limit"`
}

// LogConfig controls logging.
type LogConfig struct {
	Level  string `toml:"level"`  // debug|info|warn|error
	Format string `toml:"format"` // text|json
	File   string `toml:"file"`   // "": stderr; absolute after validation
	Trace  bool   `toml:"trace"`  // protocol traces, credentials redacted
}

// SlogLevel returns Level as a slog.Level (info for an unknown level).
func (l LogConfig) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Defaults.
const (
	defaultIMAP           = "127.0.0.1:1143"
	defaultIMAPS          = "127.0.0.1:1993"
	defaultControl        = "127.0.0.1:0"
	defaultPrefix         = "Local"
	defaultMaxConnections = 4
	maxMaxConnections     = 32
	defaultInterval       = Duration(5 * time.Minute)
	minInterval           = Duration(30 * time.Second)
	defaultMaxMessageSize = ByteSize(50 << 20)
	configFileName        = "popbridge.toml"
	configEnv             = "POPBRIDGE_CONFIG"
)

var defaultTrustedNets = []string{"127.0.0.0/8", "::1/128"}

// ---------------------------------------------------------------------------
// Value types

// Duration is a time.Duration that reads Go durations ("90s", "1h30m") and
// days ("30d", "1d12h") from TOML strings.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

var daysPrefix = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)d`)

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return errors.New(`empty duration; use e.g. "5m", "30s" or "30d"`)
	}
	var total float64
	rest := s
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		days, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		total = days * 24 * float64(time.Hour)
		rest = s[len(m[0]):]
	}
	if rest != "" {
		v, err := time.ParseDuration(rest)
		if err != nil {
			if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
				return fmt.Errorf(`duration %s has no unit; write it as a string with a unit, e.g. "%ss" or "%sm"`, s, s, s)
			}
			return fmt.Errorf(`invalid duration %q; use e.g. "5m", "30s", "1h30m" or "30d"`, s)
		}
		total += float64(v)
	}
	if total > math.MaxInt64 || total < math.MinInt64 {
		return fmt.Errorf("duration %q is out of range", s)
	}
	*d = Duration(total)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats whole days as "30d", anything else as time.Duration does.
func (d Duration) String() string {
	day := Duration(24 * time.Hour)
	if d != 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return time.Duration(d).String()
}

// ByteSize is a size in bytes. In TOML it is an integer (bytes) or a string
// with a unit: B, kB/KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024), e.g. "50MB", "50MiB", "1.5GB".
type ByteSize int64

var byteUnits = map[string]float64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

var byteSizeRe = regexp.MustCompile(`^([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)$`)

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	m := byteSizeRe.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf(`invalid size %q; use a number of bytes or e.g. "50MB", "50MiB", "2GB"`, s)
	}
	mult, ok := byteUnits[strings.ToLower(m[2])]
	if !ok {
		return fmt.Errorf(`invalid size %q: unknown unit %q; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB`, s, m[2])
	}
	num := strings.ReplaceAll(m[1], "_", "")
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && mult == 1 {
		*b = ByteSize(n)
		return nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return fmt.Errorf("invalid size %q", s)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = ByteSize(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String uses the largest unit that divides b exactly ("50MiB", "2GB",
// "123B").
func (b ByteSize) String() string {
	units := []struct {
		name string
		size int64
	}{
		{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
		{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
	}
	if b != 0 {
		for _, u := range units {
			if int64(b)%u.size == 0 {
				return strconv.FormatInt(int64(b)/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Date is a calendar date ("2006-01-02"), written in TOML as a string or a
// local date (since = 2019-01-01).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Date) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("invalid date %q; use YYYY-MM-DD, e.g. 2019-01-31", s)
	}
	*d = Date{t.Year(), t.Month(), t.Day()}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// IsZero reports whether the date is unset.
func (d Date) IsZero() bool { return d == Date{} }

// String returns "YYYY-MM-DD", or "" for the zero date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Time returns midnight at the start of the date in loc (UTC when nil).
func (d Date) Time(loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool {
	return d.Time(nil).Before(e.Time(nil))
}

// ---------------------------------------------------------------------------
// Finding and loading

// ErrNoConfig means no config file was found. FindConfig wraps it with the
// places it looked.
var ErrNoConfig = errors.New("no config file found")

// FindConfig resolves the config file's path: the -config flag value if
// given, else $POPBRIDGE_CONFIG, else ./popbridge.toml if it exists, else
// popbridge/popbridge.toml in the user's config directory. A path that was
// asked for explicitly (flag or environment) must exist. When nothing is
// found the error wraps ErrNoConfig and lists the places looked.
func FindConfig(flagValue string) (string, error) {
	explicit := func(p, from string) (string, error) {
		p, err := expandHome(p)
		if err != nil {
			return "", fmt.Errorf("config file %q (%s): %w", p, from, err)
		}
		st, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%w: %s (%s) does not exist", ErrNoConfig, p, from)
			}
			return "", fmt.Errorf("config file %s (%s): %w", p, from, err)
		}
		if st.IsDir() {
			return "", fmt.Errorf("config file %s (%s) is a directory", p, from)
		}
		return p, nil
	}
	if flagValue != "" {
		return explicit(flagValue, "from -config")
	}
	if env := os.Getenv(configEnv); env != "" {
		return explicit(env, "from $"+configEnv)
	}
	var looked []string
	candidates := []string{configFileName}
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "popbridge", configFileName))
	}
	for _, c := range candidates {
		looked = append(looked, c)
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w (looked for %s); create one from config.example.toml, or pass -config or set $%s",
		ErrNoConfig, strings.Join(looked, " and "), configEnv)
}

// LoadConfig reads, parses and validates the file at path. Besides
// ParseConfig's warnings it warns about inline passwords in a file that
// other users can read.
func LoadConfig(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	cfg, warnings, err := ParseConfig(data, path)
	if err != nil {
		return nil, warnings, err
	}
	warnings = append(warnings, permissionWarnings(cfg, path)...)
	return cfg, warnings, nil
}

// permissionWarnings warns about secrets that other local users can read:
// an inline password in a group/world readable config file, or such a
// password_file. Unix only: Windows file modes say nothing about this.
func permissionWarnings(cfg *Config, path string) []string {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		return nil
	}
	var warnings []string
	type secretAt struct {
		key string
		s   Secret
	}
	var secrets []secretAt
	if cfg.Upstream != nil {
		secrets = append(secrets, secretAt{"upstream", cfg.Upstream.Secret})
	}
	for i := range cfg.POP3 {
		secrets = append(secrets, secretAt{fmt.Sprintf("pop3[%d]", i), cfg.POP3[i].Secret})
	}
	st, err := os.Stat(path)
	for _, s := range secrets {
		if s.s.Password != "" && err == nil && st.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf(
				"%s: %s.password is stored inline and %s is readable by other users (mode %04o); "+
					"use password_file or password_command instead, or run: chmod 600 %s",
				path, s.key, path, st.Mode().Perm(), path))
		}
		if s.s.PasswordFile != "" {
			if fst, ferr := os.Stat(s.s.PasswordFile); ferr == nil && fst.Mode().Perm()&0o077 != 0 {
				warnings = append(warnings, fmt.Sprintf(
					"%s: %s.password_file %s is readable by other users (mode %04o); run: chmod 600 %s",
					path, s.key, s.s.PasswordFile, fst.Mode().Perm(), s.s.PasswordFile))
			}
		}
	}
	return warnings
}

// ConfigError is one problem in a config file.
type ConfigError struct {
	File    string // as given to ParseConfig/LoadConfig
	Line    int    // 0 when unknown (e.g. a missing key)
	Key     string // dotted key, e.g. "upstream.port", "archive.sources[1].path"
	Msg     string
	unknown bool // Key is not a known key
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.unknown {
		b.WriteString(e.Msg)
		return b.String()
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseConfig decodes and validates a config document. path names the
// document in messages and anchors relative paths (its directory; the
// working directory when path is "").
func ParseConfig(data []byte, path string) (*Config, []string, error) {
	name := path
	if name == "" {
		name = "config"
	}
	dir, err := os.Getwd()
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	abs := ""
	if path != "" {
		if abs, err = filepath.Abs(path); err != nil {
			return nil, nil, fmt.Errorf("config %s: %w", path, err)
		}
		dir = filepath.Dir(abs)
	}
	// Windows editors may start the file with a byte order mark, which
	// TOML does not allow.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	idx := indexDocument(data)

	var cfg Config
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, nil, decodeError(name, idx, err)
	}
	cfg.Path = abs

	v := &validator{file: name, dir: dir, idx: idx}
	v.validate(&cfg)
	if len(v.errs) > 0 {
		// In file order; problems with no line (missing keys at top
		// level) last.
		sort.SliceStable(v.errs, func(i, j int) bool {
			li, lj := v.errs[i].Line, v.errs[j].Line
			return li != 0 && (lj == 0 || li < lj)
		})
		errs := make([]error, len(v.errs))
		for i, e := range v.errs {
			errs[i] = e
		}
		return nil, v.warnings, errors.Join(errs...)
	}
	return &cfg, v.warnings, nil
}

// CheckServe reports what `serve` needs beyond a valid config: at least one
// user, and at least one listener.
func (c *Config) CheckServe() error {
	name := c.Path
	if name == "" {
		name = "config"
	}
	var errs []error
	if len(c.Users) == 0 {
		errs = append(errs, &ConfigError{File: name, Key: "users",
			Msg: `no [[users]] configured: add one with a name and the password_hash printed by "popbridge passwd"`})
	}
	if c.Listen.IMAP == "" && c.Listen.IMAPS == "" {
		errs = append(errs, &ConfigError{File: name, Key: "listen",
			Msg: `imap and imaps are both "off": clients could not connect`})
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Decode errors with keys and lines

// docKey is one key of the document with its position.
type docKey struct {
	path   string // dotted, array elements indexed: archive.sources[1].path
	offset int    // byte offset of the key's first component
	line   int
	kv     bool // key = value, not a [table] header
	// bare is the text of a date/time or boolean value. go-toml reports
	// some errors in those values without a position, so they are found by
	// their text.
	bare string
}

type docIndex struct {
	keys       []docKey // in document order
	lineStarts []int
	// syntaxAt is the offset of the first syntax error, -1 if none.
	syntaxAt int
}

func bareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// keyComp quotes a key component when it is not a bare TOML key.
func keyComp(s string) string {
	if bareKey(s) {
		return s
	}
	return strconv.Quote(s)
}

// indexDocument records every key of data with its annotated dotted path and
// line. It stops quietly at a syntax error: the decoder reports that one.
func indexDocument(data []byte) *docIndex {
	idx := &docIndex{lineStarts: []int{0}, syntaxAt: -1}
	for i, c := range data {
		if c == '\n' {
			idx.lineStarts = append(idx.lineStarts, i+1)
		}
	}
	defer func() {
		// The unstable parser panics on malformed trees it should never
		// build; an index is a nicety, never worth a crash.
		_ = recover()
		sort.SliceStable(idx.keys, func(i, j int) bool { return idx.keys[i].offset < idx.keys[j].offset })
	}()

	var p unstable.Parser
	p.Reset(data)
	arrayCount := map[string]int{} // raw array-table path → elements so far
	var table []string             // current table, annotated components

	annotate := func(raw []string) []string {
		out := make([]string, len(raw))
		for i := range raw {
			out[i] = keyComp(raw[i])
			if n, ok := arrayCount[strings.Join(raw[:i+1], "\x00")]; ok {
				out[i] += "[" + strconv.Itoa(n-1) + "]"
			}
		}
		return out
	}
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			raw, off := rawKey(n.Key())
			if n.Kind == unstable.ArrayTable {
				arrayCount[strings.Join(raw, "\x00")]++
			}
			table = annotate(raw)
			idx.add(table, off, false)
		case unstable.KeyValue:
			idx.addKeyValue(table, n)
		}
	}
	var perr *unstable.ParserError
	if errors.As(p.Error(), &perr) {
		// Highlight is a subslice of data: both run to the end of the
		// same backing array.
		idx.syntaxAt = cap(data) - cap(perr.Highlight)
		if perr.Highlight == nil || idx.syntaxAt < 0 || idx.syntaxAt > len(data) {
			idx.syntaxAt = 0
		}
	}
	return idx
}

func rawKey(it unstable.Iterator) ([]string, int) {
	var raw []string
	off := -1
	for it.Next() {
		k := it.Node()
		if off < 0 {
			off = int(k.Raw.Offset)
		}
		raw = append(raw, string(k.Data))
	}
	return raw, off
}

func (idx *docIndex) add(comps []string, offset int, kv bool) {
	line := sort.Search(len(idx.lineStarts), func(i int) bool { return idx.lineStarts[i] > offset })
	idx.keys = append(idx.keys, docKey{
		path: strings.Join(comps, "."), offset: offset, line: line, kv: kv,
	})
}

func (idx *docIndex) addKeyValue(prefix []string, n *unstable.Node) {
	raw, off := rawKey(n.Key())
	comps := append(append([]string(nil), prefix...), make([]string, len(raw))...)
	for i, r := range raw {
		comps[len(prefix)+i] = keyComp(r)
	}
	idx.add(comps, off, true)
	switch v := n.Value(); v.Kind {
	case unstable.LocalDate, unstable.LocalDateTime, unstable.DateTime, unstable.LocalTime, unstable.Bool:
		idx.keys[len(idx.keys)-1].bare = string(v.Data)
	default:
		idx.addValue(comps, v)
	}
}

func (idx *docIndex) addValue(comps []string, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				idx.addKeyValue(comps, c)
			}
		}
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			if c := it.Node(); c.Kind == unstable.InlineTable || c.Kind == unstable.Array {
				elem := append([]string(nil), comps...)
				elem[len(elem)-1] += "[" + strconv.Itoa(i) + "]"
				idx.addValue(elem, c)
			}
		}
	}
}

// offset converts a 1-based line and byte column to a byte offset.
func (idx *docIndex) offset(line, col int) int {
	if line < 1 || line > len(idx.lineStarts) {
		return -1
	}
	return idx.lineStarts[line-1] + col - 1
}

// at returns the key that starts exactly at offset.
func (idx *docIndex) at(offset int) (docKey, bool) {
	for _, k := range idx.keys {
		if k.offset == offset {
			return k, true
		}
	}
	return docKey{}, false
}

// before returns the last key = value whose key starts at or before offset:
// the one whose value the offset is in.
func (idx *docIndex) before(offset int) (docKey, bool) {
	var best docKey
	found := false
	for _, k := range idx.keys {
		if k.offset > offset {
			break
		}
		if k.kv {
			best, found = k, true
		}
	}
	return best, found
}

// find returns the first occurrence of key (a dotted, indexed path).
func (idx *docIndex) find(key string) (docKey, bool) {
	for _, k := range idx.keys {
		if k.path == key {
			return k, true
		}
	}
	return docKey{}, false
}

// has reports whether key appears in the document.
func (idx *docIndex) has(key string) bool {
	_, ok := idx.find(key)
	return ok
}

// lineOf returns the line of key or, when it is absent, of its nearest
// enclosing table that is present; 0 when none is.
func (idx *docIndex) lineOf(key string) int {
	for key != "" {
		if k, ok := idx.find(key); ok {
			return k.line
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// trimComps keeps the first n dotted components of an annotated path.
func trimComps(path string, n int) string {
	comps := splitPath(path)
	if n < len(comps) {
		comps = comps[:n]
	}
	return strings.Join(comps, ".")
}

// splitPath splits an annotated path at dots outside quotes.
func splitPath(path string) []string {
	var comps []string
	start, quoted := 0, false
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case '.':
			if !quoted {
				comps = append(comps, path[start:i])
				start = i + 1
			}
		}
	}
	return append(comps, path[start:])
}

func stripTOMLPrefix(msg string) string { return strings.TrimPrefix(msg, "toml: ") }

func decodeError(name string, idx *docIndex, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, col := de.Position()
			keyParts := []string(de.Key())
			key := ""
			isTable := strings.Contains(de.Error(), "table")
			if k, ok := idx.at(idx.offset(line, col)); ok {
				key = trimComps(k.path, len(keyParts))
				isTable = !k.kv
			} else {
				comps := make([]string, len(keyParts))
				for j, p := range keyParts {
					comps[j] = keyComp(p)
				}
				key = strings.Join(comps, ".")
			}
			what := "key"
			if isTable {
				what = "table"
			}
			msg := fmt.Sprintf("unknown %s %q", what, key)
			if s := suggestKey(keyParts); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &ConfigError{File: name, Line: line, Key: key, Msg: msg, unknown: true})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		off := idx.offset(line, col)
		msg := stripTOMLPrefix(de.Error())
		if idx.syntaxAt >= 0 && off >= idx.syntaxAt {
			return &ConfigError{File: name, Line: line, Msg: "syntax error: " + msg}
		}
		if off == 0 {
			// Our UnmarshalText errors in date/time and boolean values come
			// without a position; they quote the value.
			for _, k := range idx.keys {
				t := fieldTypeOf(k.path)
				if k.bare != "" && t != nil && reflect.PointerTo(t).Implements(textUnmarshalerType) &&
					strings.Contains(msg, strconv.Quote(k.bare)) {
					return &ConfigError{File: name, Line: k.line, Key: k.path, Msg: msg}
				}
			}
		}
		key := ""
		if k, ok := idx.before(off); ok {
			key = k.path
		}
		return &ConfigError{File: name, Line: line, Key: key, Msg: friendlyTypeError(msg, key)}
	}
	// A few decoder errors carry no position.
	msg := stripTOMLPrefix(err.Error())
	if dupErrorRe.MatchString(msg) {
		if k, first, ok := idx.duplicate(); ok {
			return &ConfigError{File: name, Line: k.line, Key: k.path, Msg: fmt.Sprintf("defined more than once (first on line %d)", first.line)}
		}
	}
	if m := typeErrorRe.FindStringSubmatch(msg); m != nil && m[2] != "" {
		if key, line := keyForField(idx, m[2]); key != "" {
			return &ConfigError{File: name, Line: line, Key: key, Msg: friendlyTypeError(msg, key)}
		}
	}
	if strings.HasPrefix(msg, "unhandled kv part") {
		if k, prefix, ok := idx.throughValue(); ok {
			return &ConfigError{File: name, Line: k.line, Key: k.path,
				Msg: fmt.Sprintf("%s is %s, not a table", prefix, describeType(fieldTypeOf(prefix)))}
		}
	}
	return &ConfigError{File: name, Msg: friendlyTypeError(msg, "")}
}

var dupErrorRe = regexp.MustCompile(`is already defined|already exists|should be a table, not a value`)

// duplicate returns the first key that the document defines twice, and
// its first definition.
func (idx *docIndex) duplicate() (dup, first docKey, ok bool) {
	seen := map[string]docKey{}
	for _, k := range idx.keys {
		if f, found := seen[k.path]; found {
			return k, f, true
		}
		seen[k.path] = k
	}
	return docKey{}, docKey{}, false
}

var typeErrorRe = regexp.MustCompile(`cannot decode TOML ([a-z ]+?) into (?:struct field (\S+)|a Go value) of type (\S+)`)

// gotKindRes find the TOML kind a go-toml type error complains about.
var gotKindRes = []struct {
	re   *regexp.Regexp
	kind string // "" means the regexp's first group
}{
	{typeErrorRe, ""},
	{regexp.MustCompile(`^cannot assign boolean`), "boolean"},
	{regexp.MustCompile(`^float cannot be assigned`), "float"},
	{regexp.MustCompile(`^cannot store inline table`), "inline table"},
	{regexp.MustCompile(`^cannot store a table`), "table"},
}

// friendlyTypeError rewrites go-toml's Go-centric type errors in the
// user's terms, "expected an integer, got a string", from the type of the
// field behind key. Other messages pass through.
func friendlyTypeError(msg, key string) string {
	got := ""
	for _, g := range gotKindRes {
		if m := g.re.FindStringSubmatch(msg); m != nil {
			got = g.kind
			if got == "" {
				got = m[1]
			}
			break
		}
	}
	if got == "" {
		return msg
	}
	t := fieldTypeOf(key)
	if t == nil {
		if m := typeErrorRe.FindStringSubmatch(msg); m != nil && m[2] != "" {
			if i := strings.LastIndex(m[2], "."); i >= 0 {
				t = fieldTypeOf(firstOr(fieldPaths(reflect.TypeOf(Config{}), nil, m[2][:i], m[2][i+1:])))
			}
		}
	}
	if t == nil {
		return msg
	}
	article := "a "
	if strings.ContainsRune("aeiou", rune(got[0])) {
		article = "an "
	}
	return fmt.Sprintf("expected %s, got %s%s", describeType(t), article, got)
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[Duration]()
	byteSizeType        = reflect.TypeFor[ByteSize]()
	dateType            = reflect.TypeFor[Date]()
)

// describeType names what a value of t looks like in TOML.
func describeType(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration such as "5m" or "30d"`
	case byteSizeType:
		return `a size such as "50MB" or 52428800`
	case dateType:
		return "a date such as 2019-01-31"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "an array of tables ([[...]] sections)"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map:
		return `a table such as { "a" = "b" }`
	}
	return "a table"
}

// fieldTypeOf returns the Go type behind a document key (annotated path),
// nil when the key is not part of Config.
func fieldTypeOf(key string) reflect.Type {
	if key == "" {
		return nil
	}
	t := reflect.TypeOf(Config{})
	for _, comp := range splitPath(stripIndexes(key)) {
		if strings.HasPrefix(comp, `"`) {
			if u, err := strconv.Unquote(comp); err == nil {
				comp = u
			}
		}
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			if t == dateType {
				return nil
			}
			f, ok := fieldByTOMLName(t, comp)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	return t
}

// throughValue finds a dotted key that continues past a value that is not
// a table (upstream.host.x = 1): the returned prefix is that value's key.
func (idx *docIndex) throughValue() (k docKey, prefix string, ok bool) {
	for _, k := range idx.keys {
		comps := splitPath(k.path)
		for n := 1; n < len(comps); n++ {
			p := strings.Join(comps[:n], ".")
			t := fieldTypeOf(p)
			for t != nil && t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t != nil && t.Kind() != reflect.Struct && t.Kind() != reflect.Map && t.Kind() != reflect.Slice || t == dateType {
				return k, p, true
			}
		}
	}
	return docKey{}, "", false
}

// keyForField finds the document key for a Go field named like
// "main.UpstreamConfig.Host".
func keyForField(idx *docIndex, field string) (string, int) {
	i := strings.LastIndex(field, ".")
	if i < 0 {
		return "", 0
	}
	typeName, fieldName := field[:i], field[i+1:]
	for _, cand := range fieldPaths(reflect.TypeOf(Config{}), nil, typeName, fieldName) {
		for _, k := range idx.keys {
			if stripIndexes(k.path) == cand {
				return k.path, k.line
			}
		}
	}
	return "", 0
}

var indexRe = regexp.MustCompile(`\[[0-9]+\]`)

func stripIndexes(p string) string { return indexRe.ReplaceAllString(p, "") }

// fieldPaths returns the dotted TOML paths (without indexes) of the field
// fieldName of the struct type named typeName within t.
func fieldPaths(t reflect.Type, prefix []string, typeName, fieldName string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			if t.String() == typeName || f.Type.String() == typeName {
				if sf, ok := f.Type.FieldByName(fieldName); ok {
					out = append(out, strings.Join(append(append([]string(nil), prefix...), tomlName(sf)), "."))
				}
			}
			continue
		}
		name := tomlName(f)
		if name == "-" {
			continue
		}
		if t.String() == typeName && f.Name == fieldName {
			out = append(out, strings.Join(append(append([]string(nil), prefix...), name), "."))
		}
		out = append(out, fieldPaths(f.Type, append(append([]string(nil), prefix...), name), typeName, fieldName)...)
	}
	return out
}

func tomlName(f reflect.StructField) string {
	tag := f.Tag.Get("toml")
	if i := strings.IndexByte(tag, ','); i >= 0 {
		tag = tag[:i]
	}
	if tag == "" {
		return f.Name
	}
	return tag
}

// knownKeys lists the keys allowed in the table at path (raw components,
// no indexes); nil when path is not a table of Config.
func knownKeys(path []string) []string {
	t := reflect.TypeOf(Config{})
	for _, comp := range path {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldByTOMLName(t, comp)
		if !ok {
			return nil
		}
		t = f.Type
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			switch {
			case !f.IsExported():
			case f.Anonymous && f.Type.Kind() == reflect.Struct:
				collect(f.Type)
			case tomlName(f) != "-":
				keys = append(keys, tomlName(f))
			}
		}
	}
	collect(t)
	return keys
}

func fieldByTOMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if sf, ok := fieldByTOMLName(f.Type, name); ok {
				return sf, true
			}
			continue
		}
		if tomlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggestKey proposes the known key closest to an unknown one.
func suggestKey(keyParts []string) string {
	if len(keyParts) == 0 {
		return ""
	}
	unknown := strings.ToLower(keyParts[len(keyParts)-1])
	best, bestDist := "", 3
	for _, k := range knownKeys(keyParts[:len(keyParts)-1]) {
		d := editDistance(unknown, k)
		if len(unknown) >= 3 && (strings.HasPrefix(k, unknown) || strings.HasPrefix(unknown, k)) && d > 1 {
			d = 2
		}
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---------------------------------------------------------------------------
// Validation onto defaults

type validator struct {
	file     string // for messages
	dir      string // config file's directory, anchors relative paths
	idx      *docIndex
	errs     []*ConfigError
	warnings []string
}

func (v *validator) errf(key, format string, args ...any) {
	v.errs = append(v.errs, &ConfigError{File: v.file, Line: v.idx.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(key, format string, args ...any) {
	e := &ConfigError{File: v.file, Line: v.idx.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)}
	v.warnings = append(v.warnings, e.Error())
}

func (v *validator) validate(c *Config) {
	v.dataDir(c)
	v.listen(&c.Listen)
	v.users(c.Users)
	v.archive(&c.Archive)
	if c.Upstream != nil {
		c.Upstream.dataDir = c.DataDir
		v.upstream(c.Upstream)
	}
	for i := range c.POP3 {
		c.POP3[i].dataDir = c.DataDir
	}
	v.pop3(c.POP3, c.Archive.Prefix, c.Upstream != nil)
	v.migrate(&c.Migrate, c.Archive.Prefix)
	v.log(&c.Log)
	v.console(&c.Console)
}

// path resolves a path from the file: ~ expanded, relative to the config
// file's directory.
func (v *validator) path(key, p string) (string, bool) {
	p, err := expandHome(p)
	if err != nil {
		v.errf(key, "%v", err)
		return "", false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(v.dir, p)
	}
	return filepath.Clean(p), true
}

// existing resolves a path that must exist.
func (v *validator) existing(key, p string) (string, fs.FileInfo, bool) {
	p, ok := v.path(key, p)
	if !ok {
		return "", nil, false
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			v.errf(key, "%s does not exist", p)
		} else {
			v.errf(key, "%v", err)
		}
		return "", nil, false
	}
	return p, st, true
}

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") && !(runtime.GOOS == "windows" && strings.HasPrefix(p, `~\`)) {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot expand ~ in %q: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}

// defaultDataDir is the platform's per-user data directory for popbridge:
// $XDG_DATA_HOME/popbridge or ~/.local/share/popbridge on Unix,
// %LocalAppData%\popbridge on Windows, ~/Library/Application
// Support/popbridge on macOS.
func defaultDataDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		d := os.Getenv("LocalAppData")
		if d == "" {
			return "", errors.New("%LocalAppData% is not set; set data_dir")
		}
		return filepath.Join(d, "popbridge"), nil
	case "darwin", "ios":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%w; set data_dir", err)
		}
		return filepath.Join(home, "Library", "Application Support", "popbridge"), nil
	default:
		if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
			return filepath.Join(x, "popbridge"), nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%w; set data_dir", err)
		}
		return filepath.Join(home, ".local", "share", "popbridge"), nil
	}
}

func (v *validator) dataDir(c *Config) {
	if !v.idx.has("data_dir") {
		d, err := defaultDataDir()
		if err != nil {
			v.errf("data_dir", "no default: %v", err)
			return
		}
		c.DataDir = d
		return
	}
	if strings.TrimSpace(c.DataDir) == "" {
		v.errf("data_dir", "must not be empty; remove it to use the default")
		return
	}
	if p, ok := v.path("data_dir", c.DataDir); ok {
		c.DataDir = p
	}
}

// listenAddr validates host:port, with "off" disabling when allowed.
func (v *validator) listenAddr(key string, addr *string, def string, canDisable bool) {
	if !v.idx.has(key) {
		*addr = def
		return
	}
	s := strings.TrimSpace(*addr)
	if canDisable && strings.EqualFold(s, "off") {
		*addr = ""
		return
	}
	if s == "" {
		if canDisable {
			v.errf(key, `must not be empty; use "off" to disable it, or remove it for the default %q`, def)
		} else {
			v.errf(key, "must not be empty; remove it for the default %q", def)
		}
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errf(key, "%q is not host:port (e.g. %q)", s, def)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errf(key, "port %q must be 0-65535", port)
		return
	}
	*addr = s
}

func (v *validator) listen(l *ListenConfig) {
	v.listenAddr("listen.imap", &l.IMAP, defaultIMAP, true)
	v.listenAddr("listen.imaps", &l.IMAPS, defaultIMAPS, true)
	v.listenAddr("listen.control", &l.Control, defaultControl, false)
	if l.IMAP != "" && l.IMAP == l.IMAPS {
		v.errf("listen.imaps", "same address as listen.imap (%s)", l.IMAP)
	}
	if l.Control != "" {
		if host, _, err := net.SplitHostPort(l.Control); err == nil && !isLoopbackHost(host) {
			v.errf("listen.control", "%q must be on a loopback address (127.0.0.1, ::1 or localhost): it accepts commands without a password", l.Control)
		}
	}
	switch {
	case l.TLSCert != "" && l.TLSKey == "":
		v.errf("listen.tls_key", "required when listen.tls_cert is set")
	case l.TLSCert == "" && l.TLSKey != "":
		v.errf("listen.tls_cert", "required when listen.tls_key is set")
	case l.TLSCert != "":
		if p, _, ok := v.existing("listen.tls_cert", l.TLSCert); ok {
			l.TLSCert = p
		}
		if p, _, ok := v.existing("listen.tls_key", l.TLSKey); ok {
			l.TLSKey = p
		}
	}
	if !v.idx.has("listen.trusted_networks") {
		l.TrustedNets = append([]string(nil), defaultTrustedNets...)
		return
	}
	for i, s := range l.TrustedNets {
		key := fmt.Sprintf("listen.trusted_networks[%d]", i)
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			l.TrustedNets[i] = p.Masked().String()
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			l.TrustedNets[i] = netip.PrefixFrom(a, a.BitLen()).String()
			continue
		}
		v.errf(key, "%q is not a network (CIDR like 192.168.1.0/24) or an IP address", s)
	}
}

var bcryptRe = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

func (v *validator) users(users []UserConfig) {
	seen := map[string]int{}
	for i := range users {
		u := &users[i]
		key := fmt.Sprintf("users[%d]", i)
		if strings.TrimSpace(u.Name) == "" {
			v.errf(key+".name", "required: the login name IMAP clients use")
		} else if strings.IndexFunc(u.Name, unicode.IsControl) >= 0 {
			v.errf(key+".name", "must not contain control characters")
		} else if j, dup := seen[u.Name]; dup {
			v.errf(key+".name", "%q is also the name of users[%d]", u.Name, j)
		} else {
			seen[u.Name] = i
		}
		hint := `run "popbridge passwd" and paste the hash it prints`
		switch {
		case u.PasswordHash == "":
			v.errf(key+".password_hash", "required; %s", hint)
		case !bcryptRe.MatchString(u.PasswordHash):
			v.errf(key+".password_hash", "not a bcrypt hash ($2a$, $2b$ or $2y$…); %s", hint)
		default:
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				v.errf(key+".password_hash", "not a valid bcrypt hash (%v); %s", err, hint)
			}
		}
	}
}

func (v *validator) archive(a *ArchiveConfig) {
	if !v.idx.has("archive.prefix") {
		a.Prefix = defaultPrefix
	} else {
		switch p := a.Prefix; {
		case strings.TrimSpace(p) == "":
			v.errf("archive.prefix", `must not be empty; remove it for the default %q`, defaultPrefix)
		case strings.Contains(p, "/"):
			v.errf("archive.prefix", `%q must not contain "/" (it is a single top-level folder)`, p)
		case strings.EqualFold(p, "INBOX"):
			v.errf("archive.prefix", `must not be INBOX (that is the upstream inbox); e.g. %q`, defaultPrefix)
		case strings.ContainsAny(p, "*%") || strings.IndexFunc(p, unicode.IsControl) >= 0:
			v.errf("archive.prefix", `%q must not contain "*", "%%" or control characters`, p)
		case p != strings.TrimSpace(p):
			v.errf("archive.prefix", "%q must not start or end with spaces", p)
		}
	}

	names := map[string]int{} // lower-cased name → source index
	for i := range a.Sources {
		s := &a.Sources[i]
		key := fmt.Sprintf("archive.sources[%d]", i)
		s.Format = strings.ToLower(strings.TrimSpace(s.Format))
		switch s.Format {
		case "":
			s.Format = FormatAuto
		case FormatAuto, FormatMbox, FormatThunderbird, FormatMaildir, FormatEML, FormatPST,
			FormatBecky, FormatDBX, FormatWLM, FormatAppleMail:
		default:
			v.errf(key+".format", "%q is not a format; use auto, mbox, thunderbird, maildir, eml, pst, becky, dbx, wlm or applemail", s.Format)
		}
		if strings.TrimSpace(s.Path) == "" {
			v.errf(key+".path", "required: the archive's file or directory")
			continue
		}
		p, st, ok := v.existing(key+".path", s.Path)
		if !ok {
			continue
		}
		s.Path = p
		switch {
		case (s.Format == FormatThunderbird || s.Format == FormatMaildir) && !st.IsDir():
			v.errf(key+".path", "%s is a file, but format %q needs a directory", p, s.Format)
		case s.Format == FormatPST && st.IsDir():
			v.errf(key+".path", "%s is a directory, but format %q needs a .pst file", p, s.Format)
		case (s.Format == FormatBecky || s.Format == FormatWLM || s.Format == FormatAppleMail) && !st.IsDir():
			v.errf(key+".path", "%s is a file, but format %q needs the program's mail folder (a directory)", p, s.Format)
		}
		derived := !v.idx.has(key + ".name")
		if derived {
			s.Name = sourceName(p, st, s.Format)
		}
		switch n := s.Name; {
		case strings.TrimSpace(n) == "":
			v.errf(key+".name", "must not be empty")
			continue
		case strings.Contains(n, "/"):
			v.errf(key+".name", `%q must not contain "/"`, n)
			continue
		case strings.ContainsAny(n, "*%") || strings.IndexFunc(n, unicode.IsControl) >= 0:
			v.errf(key+".name", `%q must not contain "*", "%%" or control characters`, n)
			continue
		}
		lower := strings.ToLower(s.Name)
		if j, dup := names[lower]; dup {
			how := ""
			if derived {
				how = fmt.Sprintf(" (derived from the path %s)", p)
			}
			v.errf(key+".name", "%q%s is also the name of archive.sources[%d] (%s); set a distinct name for one of them",
				s.Name, how, j, a.Sources[j].Path)
			continue
		}
		names[lower] = i
	}
}

// sourceName derives a source's folder name from its path: the base name
// without extension for files, "Thunderbird" for a Thunderbird profile
// (or profiles) directory, the mail program's name for the stores of
// Becky!, Outlook Express, Windows Live Mail and Apple Mail, the
// directory's name otherwise.
func sourceName(p string, st fs.FileInfo, format string) string {
	base := filepath.Base(p)
	if st.IsDir() && (format == "" || format == FormatAuto) {
		if f, err := archive.Detect(p); err == nil {
			format = string(f)
		}
	}
	if st.IsDir() {
		switch {
		case format == FormatBecky:
			return "Becky"
		case format == FormatDBX:
			return "Outlook Express"
		case format == FormatWLM && strings.EqualFold(base, "Windows Mail"):
			return "Windows Mail"
		case format == FormatWLM:
			return "Windows Live Mail"
		case format == FormatAppleMail && !strings.EqualFold(filepath.Ext(base), ".mbox"):
			return "Apple Mail"
		case format == FormatAppleMail:
			return strings.TrimSuffix(base, filepath.Ext(base))
		}
	}
	if !st.IsDir() {
		if ext := filepath.Ext(base); ext != "" && ext != base {
			base = strings.TrimSuffix(base, ext)
		}
		return strings.TrimLeft(base, ".")
	}
	if isThunderbirdDir(p) {
		return "Thunderbird"
	}
	base = strings.TrimSuffix(base, ".sbd")
	if n := strings.TrimLeft(base, "."); n != "" {
		base = n
	}
	if base == string(filepath.Separator) || base == "." {
		return ""
	}
	return base
}

// isThunderbirdDir reports whether dir is a Thunderbird profile (prefs.js,
// Mail/) or the directory holding profiles (profiles.ini).
func isThunderbirdDir(dir string) bool {
	for _, f := range []string{"prefs.js", "profiles.ini"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && !st.IsDir() {
			return true
		}
	}
	st, err := os.Stat(filepath.Join(dir, "Mail", "Local Folders"))
	return err == nil && st.IsDir()
}

// isLoopbackHost reports whether host names this machine: localhost,
// 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// server validates and normalises the host/port/tls/username common to
// upstream and POP3.
func (v *validator) server(key string, host *string, port *int, tls *string, username, exampleHost string, implicitPort, plainPort int) {
	*host = strings.TrimSpace(*host)
	switch {
	case *host == "":
		v.errf(key+".host", "required: the server's host name, e.g. %q", exampleHost)
	case strings.ContainsAny(*host, " /"):
		v.errf(key+".host", "%q is not a host name", *host)
	default:
		if h, p, err := net.SplitHostPort(*host); err == nil {
			v.errf(key+".host", "%q includes a port; write host = %q and port = %s", *host, h, p)
		}
	}
	mode := strings.ToLower(strings.TrimSpace(*tls))
	switch mode {
	case "":
		mode = TLSImplicit
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if *host != "" && !isLoopbackHost(*host) {
			v.errf(key+".tls", `"none" is only allowed for a server on this machine (localhost, 127.0.0.1, ::1): `+
				`passwords must not cross the network in clear; use "implicit" (port %d) or "starttls" (port %d)`, implicitPort, plainPort)
		}
	default:
		v.errf(key+".tls", "%q is not a TLS mode; use implicit, starttls or none", *tls)
	}
	*tls = mode
	if !v.idx.has(key + ".port") {
		*port = plainPort
		if mode == TLSImplicit {
			*port = implicitPort
		}
	} else if *port < 1 || *port > 65535 {
		v.errf(key+".port", "must be 1-65535 (got %d)", *port)
	}
	if strings.TrimSpace(username) == "" {
		v.errf(key+".username", "required: your login at the server (often the e-mail address)")
	}
}

// secret validates the password / password_file / password_command
// siblings of the table at key.
func (v *validator) secret(key string, s *Secret, required bool, requiredMsg string) {
	s.dir = v.dir
	n := 0
	var set []string
	for _, f := range []struct {
		name string
		val  string
	}{{"password", s.Password}, {"password_file", s.PasswordFile}, {"password_command", s.PasswordCommand}} {
		if v.idx.has(key + "." + f.name) {
			n++
			set = append(set, f.name)
			if f.val == "" {
				v.errf(key+"."+f.name, "must not be empty")
			}
		}
	}
	if n > 1 {
		v.errf(key+"."+set[1], "set only one of password, password_file and password_command (found %s)", strings.Join(set, " and "))
	}
	if n == 0 && required {
		v.errf(key+".password", "%s", requiredMsg)
	}
	if s.PasswordFile != "" {
		if p, ok := v.path(key+".password_file", s.PasswordFile); ok {
			s.PasswordFile = p
		}
	}
}

func (v *validator) upstream(u *UpstreamConfig) {
	const key = "upstream"
	if u.OAuth2 != nil {
		v.oauth2(key+".oauth2", u.OAuth2)
		if strings.TrimSpace(u.Host) == "" && !v.idx.has(key+".host") {
			if p, err := oauth.PresetFor(u.OAuth2.Provider, u.OAuth2.Tenant); err == nil {
				u.Host = p.IMAPHost
			}
		}
	}
	v.server(key, &u.Host, &u.Port, &u.TLS, u.Username, "imap.example.com", 993, 143)

	u.Auth = strings.ToLower(strings.TrimSpace(u.Auth))
	if u.Auth == "" {
		u.Auth = AuthPlain
		if u.OAuth2TokenCommand != "" || u.OAuth2 != nil {
			u.Auth = AuthXOAuth2
		}
	}
	switch {
	case u.OAuth2 == nil:
		v.upstreamAuth(key, u)
	case u.Auth == AuthPlain || u.Auth == AuthLogin:
		v.errf(key+".auth", `%q does not sign in with a token; [upstream.oauth2] needs auth = "xoauth2" (the default) or "oauthbearer"`, u.Auth)
	case u.Auth == AuthXOAuth2 || u.Auth == AuthOAuthBearer:
		v.secret(key, &u.Secret, false, "")
		if u.IsSet() {
			v.errf(key+".password", "not used with [upstream.oauth2], which signs in in the browser (popbridge login); remove it")
		}
		if u.OAuth2TokenCommand != "" {
			v.errf(key+".oauth2_token_command", "set either oauth2_token_command or [upstream.oauth2], not both")
		}
	default:
		v.errf(key+".auth", "%q is not an auth mechanism; use xoauth2 or oauthbearer with [upstream.oauth2]", u.Auth)
	}
	v.upstreamRest(key, u)
}

// upstreamAuth validates auth and its secrets without [upstream.oauth2].
func (v *validator) upstreamAuth(key string, u *UpstreamConfig) {
	switch u.Auth {
	case AuthPlain, AuthLogin:
		v.secret(key, &u.Secret, true, `required: set password_file, password_command or password (an app password for Gmail/Microsoft 365), or sign in with [upstream.oauth2]`)
		if u.OAuth2TokenCommand != "" {
			v.errf(key+".oauth2_token_command", `only used with auth = "xoauth2" or "oauthbearer" (auth is %q)`, u.Auth)
		}
	case AuthXOAuth2, AuthOAuthBearer:
		v.secret(key, &u.Secret, false, "")
		if u.IsSet() {
			v.errf(key+".password", "not used with auth = %q, which takes its token from oauth2_token_command; remove it", u.Auth)
		}
		if strings.TrimSpace(u.OAuth2TokenCommand) == "" {
			v.errf(key+".oauth2_token_command", "required with auth = %q: a command that prints an access token (or sign in with [upstream.oauth2] instead)", u.Auth)
		}
	default:
		v.errf(key+".auth", "%q is not an auth mechanism; use plain, login, xoauth2 or oauthbearer", u.Auth)
	}
}

func (v *validator) upstreamRest(key string, u *UpstreamConfig) {
	if !v.idx.has(key + ".max_connections") {
		u.MaxConnections = defaultMaxConnections
	} else if u.MaxConnections < 1 || u.MaxConnections > maxMaxConnections {
		v.errf(key+".max_connections", "must be 1-%d (got %d)", maxMaxConnections, u.MaxConnections)
	}
	if u.CACert != "" {
		if p, _, ok := v.existing(key+".ca_cert", u.CACert); ok {
			u.CACert = p
		}
	}
	if u.InsecureSkipVerify && u.TLS != TLSNone {
		v.warnf(key+".insecure_skip_verify", "the server's TLS certificate is not checked, so anyone on the network path could read your password; prefer ca_cert")
	}
}

func (v *validator) pop3(accounts []POP3Config, prefix string, hasUpstream bool) {
	names := map[string]int{}
	for i := range accounts {
		p := &accounts[i]
		key := fmt.Sprintf("pop3[%d]", i)
		p.key = key
		if p.OAuth2 != nil {
			v.oauth2(key+".oauth2", p.OAuth2)
			if strings.TrimSpace(p.Host) == "" && !v.idx.has(key+".host") {
				if pr, err := oauth.PresetFor(p.OAuth2.Provider, p.OAuth2.Tenant); err == nil {
					p.Host = pr.POPHost
				}
			}
		}
		v.server(key, &p.Host, &p.Port, &p.TLS, p.Username, "pop.example.com", 995, 110)
		if p.OAuth2 != nil {
			v.secret(key, &p.Secret, false, "")
			if p.IsSet() {
				v.errf(key+".password", "not used with [pop3.oauth2], which signs in in the browser (popbridge login -pop3 %s); remove it", p.Name)
			}
		} else {
			v.secret(key, &p.Secret, true, "required: set password_file, password_command or password, or sign in with [pop3.oauth2]")
		}

		if !v.idx.has(key + ".name") {
			p.Name = p.Host
		}
		if strings.TrimSpace(p.Name) == "" {
			if v.idx.has(key + ".name") {
				v.errf(key+".name", "must not be empty")
			}
		} else if j, dup := names[strings.ToLower(p.Name)]; dup {
			v.errf(key+".name", "%q is also the name of pop3[%d]; give each [[pop3]] a distinct name", p.Name, j)
		} else {
			names[strings.ToLower(p.Name)] = i
		}

		if !v.idx.has(key + ".interval") {
			p.Interval = defaultInterval
		} else if p.Interval < minInterval {
			v.errf(key+".interval", "must be at least %s (got %s)", minInterval, p.Interval)
		}
		if p.LeaveOnServer == nil {
			t := true
			p.LeaveOnServer = &t
		}
		if p.DeleteAfter < 0 || (p.DeleteAfter == 0 && v.idx.has(key+".delete_after")) {
			v.errf(key+".delete_after", "must be positive, e.g. \"30d\" (remove it to keep messages on the server)")
		} else if p.DeleteAfter > 0 && !*p.LeaveOnServer {
			v.errf(key+".delete_after", "only applies with leave_on_server = true (with false, messages are deleted right after fetching)")
		}
		if !v.idx.has(key + ".deliver_to") {
			p.DeliverTo = prefix + "/Inbox"
		} else if d := p.DeliverTo; strings.HasPrefix(d, prefix+"/") && strings.TrimSpace(d[len(prefix)+1:]) == "" || strings.TrimSpace(d) == "" || d == prefix {
			v.errf(key+".deliver_to", "%q is not a folder: use a folder under %q (kept locally, e.g. %q) or an upstream folder such as \"INBOX\"", d, prefix+"/", prefix+"/Inbox")
		} else if !strings.HasPrefix(d, prefix+"/") && !hasUpstream && !strings.EqualFold(d, "INBOX") {
			v.errf(key+".deliver_to", "%q is an upstream folder, but there is no [upstream]: configure it, or deliver under %q", d, prefix+"/")
		}
		if !v.idx.has(key + ".max_message_size") {
			p.MaxMessageSize = defaultMaxMessageSize
		} else if p.MaxMessageSize <= 0 {
			v.errf(key+".max_message_size", "must be positive, e.g. \"50MB\"")
		}
	}
}

// oauth2 validates an [….oauth2] table.
func (v *validator) oauth2(key string, o *OAuth2Config) {
	o.Provider = strings.ToLower(strings.TrimSpace(o.Provider))
	switch o.Provider {
	case "":
		v.errf(key+".provider", `required: "microsoft" (Outlook.com, Microsoft 365) or "google" (Gmail, Google Workspace)`)
	case oauth.Microsoft, oauth.Google:
	default:
		v.errf(key+".provider", `%q is not a provider; use "microsoft" or "google"`, o.Provider)
	}
	o.ClientID = strings.TrimSpace(o.ClientID)
	if o.ClientID == "" {
		v.errf(key+".client_id", `required: the application (client) ID of your app registration (see "Signing in with Microsoft or Google" in the README)`)
	} else if strings.ContainsAny(o.ClientID, " /?#&") {
		v.errf(key+".client_id", "%q is not a client ID: copy the Application (client) ID from the registration", o.ClientID)
	}
	o.Tenant = strings.TrimSpace(o.Tenant)
	switch {
	case o.Provider == oauth.Google && o.Tenant != "":
		v.errf(key+".tenant", `only used with provider = "microsoft"; remove it`)
	case o.Provider == oauth.Microsoft && o.Tenant == "":
		o.Tenant = "common"
	case strings.ContainsAny(o.Tenant, " /?#&"):
		v.errf(key+".tenant", `%q is not a tenant; use "common", "consumers", "organizations", a domain such as "contoso.onmicrosoft.com" or the tenant ID`, o.Tenant)
	}
}

func (v *validator) migrate(m *MigrateConfig, prefix string) {
	if !m.Since.IsZero() && !m.Before.IsZero() && !m.Since.Before(m.Before) {
		v.errf("migrate.before", "%s must be after migrate.since (%s)", m.Before, m.Since)
	}
	if m.DailyLimit < 0 {
		v.errf("migrate.daily_limit", "must not be negative (0 means no limit)")
	}
	folders := make([]string, 0, len(m.Folders))
	for k := range m.Folders {
		folders = append(folders, k)
	}
	sort.Strings(folders)
	for _, from := range folders {
		to := m.Folders[from]
		key := "migrate.folders." + keyComp(from)
		if !strings.HasPrefix(from, prefix+"/") || len(from) == len(prefix)+1 {
			v.errf(key, "%q is not a legacy folder; legacy folders are named as clients see them, under %q (e.g. %q)", from, prefix+"/", prefix+"/Inbox")
		}
		switch {
		case strings.TrimSpace(to) == "":
			v.errf(key, "the upstream folder must not be empty")
		case to == prefix || strings.HasPrefix(to, prefix+"/"):
			v.errf(key, "%q is a legacy folder; the target must be an upstream folder such as \"INBOX\" or \"Archive/2019\"", to)
		}
	}
}

func (v *validator) log(l *LogConfig) {
	l.Level = strings.ToLower(strings.TrimSpace(l.Level))
	switch l.Level {
	case "":
		l.Level = "info"
	case "warning":
		l.Level = "warn"
	case "debug", "info", "warn", "error":
	default:
		v.errf("log.level", "%q is not a level; use debug, info, warn or error", l.Level)
	}
	l.Format = strings.ToLower(strings.TrimSpace(l.Format))
	switch l.Format {
	case "":
		l.Format = "text"
	case "text", "json":
	default:
		v.errf("log.format", "%q is not a format; use text or json", l.Format)
	}
	if l.File != "" {
		if p, ok := v.path("log.file", l.File); ok {
			l.File = p
		}
	}
}
