package main

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testHash is a valid bcrypt hash (cost 4, to keep tests fast).
var testHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("bridge-pass"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// cfgEnv is a config directory with a few archives in it.
type cfgEnv struct {
	dir  string // the config file's directory
	path string // dir/popbridge.toml (not written unless asked)
}

func newCfgEnv(t *testing.T) cfgEnv {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg-data"))
	cfgMkdir(t, filepath.Join(dir, "maildir", "cur"))
	cfgMkdir(t, filepath.Join(dir, "Local Folders"))
	cfgWriteFile(t, filepath.Join(dir, "old.mbox"), "From a@b Thu Jan  1 00:00:00 2015\n\nhi\n", 0o600)
	cfgWriteFile(t, filepath.Join(dir, "outlook.pst"), "!BDN", 0o600)
	return cfgEnv{dir: dir, path: filepath.Join(dir, "popbridge.toml")}
}

func (e cfgEnv) parse(text string) (*Config, []string, error) {
	return ParseConfig([]byte(text), e.path)
}

func cfgMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func cfgWriteFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	cfgMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"top level", "data_dir = \"d\"\n\nhots = 1\n",
			`popbridge.toml:3: unknown key "hots"`},
		{"in upstream", "[upstream]\nhost = \"imap.example.com\"\nhots = \"x\"\n",
			`popbridge.toml:3: unknown key "upstream.hots" (did you mean "host"?)`},
		{"in second archive source", "[archive]\n[[archive.sources]]\npath = \"a\"\n\n[[archive.sources]]\npath = \"b\"\nformt = \"mbox\"\n",
			`popbridge.toml:7: unknown key "archive.sources[1].formt" (did you mean "format"?)`},
		{"in second pop3", "[[pop3]]\nhost = \"a\"\n[[pop3]]\nhost = \"b\"\n[[pop3]]\nhost = \"c\"\nintervall = \"5m\"\n",
			`popbridge.toml:7: unknown key "pop3[2].intervall" (did you mean "interval"?)`},
		{"dotted key", "listen.imapz = \"x\"\n",
			`popbridge.toml:1: unknown key "listen.imapz" (did you mean "imap"?)`},
		{"unknown table", "[upstreams]\nhost = \"x\"\n",
			`popbridge.toml:1: unknown table "upstreams" (did you mean "upstream"?)`},
		{"unknown subtable", "[upstream]\nhost = \"x\"\n[upstream.tls_opts]\na = 1\n",
			`popbridge.toml:3: unknown table "upstream.tls_opts" (did you mean "tls"?)`},
		{"inline array of tables", "[archive]\nsources = [\n  { path = \"a\" },\n  { path = \"b\", nme = \"x\" },\n]\n",
			`popbridge.toml:4: unknown key "archive.sources[1].nme" (did you mean "name"?)`},
		{"no suggestion when far", "[log]\nverbosity = 3\n",
			`popbridge.toml:2: unknown key "log.verbosity"`},
		{"two at once", "colour = 1\n[log]\nlevle = \"info\"\n",
			"popbridge.toml:1: unknown key \"colour\"\npopbridge.toml:3: unknown key \"log.levle\" (did you mean \"level\"?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseConfig([]byte(tt.doc), "popbridge.toml")
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Line == 0 || ce.Key == "" {
				t.Errorf("error is not a *ConfigError with line and key: %#v", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"string for int", "[upstream]\nhost = \"h\"\nport = \"993\"\n",
			`popbridge.toml:3: upstream.port: expected an integer, got a string`},
		{"int for string", "[listen]\nimap = 1143\n",
			`popbridge.toml:2: listen.imap: expected a string, got an integer`},
		{"float for int", "[upstream]\nmax_connections = 1.5\n",
			`popbridge.toml:2: upstream.max_connections: expected an integer, got a float`},
		{"string for bool", "[[pop3]]\nhost = \"h\"\nleave_on_server = \"yes\"\n",
			`popbridge.toml:3: pop3[0].leave_on_server: expected true or false, got a string`},
		{"array for string", "[upstream]\n\nhost = [\"a\", \"b\"]\n",
			`popbridge.toml:3: upstream.host: expected a string, got an array`},
		{"string for array of tables", "users = \"me\"\n",
			`popbridge.toml:1: users: expected an array of tables`},
		{"string for string array", "[listen]\ntrusted_networks = \"10.0.0.0/8\"\n",
			`popbridge.toml:2: listen.trusted_networks: expected an array of strings`},
		{"bad map value", "[migrate]\nfolders = { \"Local/A\" = 3 }\n",
			`popbridge.toml:2: migrate.folders."Local/A": expected a string, got an integer`},
		{"bool for string", "[upstream]\ntls = true\n",
			`popbridge.toml:2: upstream.tls: expected a string, got a boolean`},
		{"bool for duration", "[[pop3]]\ninterval = false\n",
			`popbridge.toml:2: pop3[0].interval: invalid duration "false"`},
		{"table for string", "[log]\nfile = { path = \"x\" }\n",
			`popbridge.toml:2: log.file: expected a string, got an inline table`},
		{"bool for date, not the first bool", "[log]\ntrace = true\n[migrate]\nsince = true\n",
			`popbridge.toml:4: migrate.since: invalid date "true"`},
		{"dotted key through a string", "[upstream]\nhost = \"h\"\n\nusername.first = \"x\"\n",
			`popbridge.toml:4: upstream.username.first: upstream.username is a string, not a table`},
		{"duration without unit", "[[pop3]]\nhost = \"h\"\ninterval = 300\n",
			`popbridge.toml:3: pop3[0].interval: duration 300 has no unit`},
		{"bad duration", "[[pop3]]\nhost = \"h\"\ndelete_after = \"a month\"\n",
			`popbridge.toml:3: pop3[0].delete_after: invalid duration "a month"`},
		{"bad size", "[migrate]\ndaily_limit = \"2 gigs\"\n",
			`popbridge.toml:2: migrate.daily_limit: invalid size "2 gigs": unknown unit "gigs"`},
		{"bad date", "[migrate]\nsince = \"2019-13-01\"\n",
			`popbridge.toml:2: migrate.since: invalid date "2019-13-01"; use YYYY-MM-DD`},
		{"datetime for date", "[migrate]\nbefore = 2019-01-01T10:00:00Z\n",
			`popbridge.toml:2: migrate.before: invalid date`},
		{"duplicate key", "data_dir = \"a\"\ndata_dir = \"b\"\n",
			`popbridge.toml:2: data_dir: defined more than once (first on line 1)`},
		{"duplicate key in array table", "[[users]]\nname = \"a\"\n[[users]]\nname = \"b\"\nname = \"c\"\n",
			`popbridge.toml:5: users[1].name: defined more than once (first on line 4)`},
		{"duplicate table", "[upstream]\nhost = \"a\"\n\n[upstream]\nport = 1\n",
			`popbridge.toml:4: upstream: defined more than once (first on line 1)`},
		{"table after inline table", "upstream = { host = \"a\" }\n[upstream]\nport = 1\n",
			`popbridge.toml:2: upstream: defined more than once (first on line 1)`},
		{"date in second key", "[migrate]\nsince = 2019-01-01\nbefore = 2019-01-01 10:00:00\n",
			`popbridge.toml:3: migrate.before: invalid date "2019-01-01 10:00:00"`},
		{"syntax error", "[upstream\nhost = \"x\"\n",
			`popbridge.toml:1: syntax error: `},
		{"syntax error after values", "[log]\nlevel = \"info\"\nformat = text\n",
			`popbridge.toml:3: syntax error: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseConfig([]byte(tt.doc), "popbridge.toml")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n%s\nwant prefix:\n%s", err, tt.want)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	env := newCfgEnv(t)
	hash := testHash()
	up := "[upstream]\nhost = \"imap.example.com\"\nusername = \"me\"\npassword = \"pw\"\n" // lines 1-4
	pop := "[[pop3]]\nhost = \"pop.example.com\"\nusername = \"me\"\npassword = \"pw\"\n"   // lines 1-4
	named := func(name, host string) string {                                               // 6 lines
		return "[[pop3]]\nname = \"" + name + "\"\nhost = \"" + host + "\"\nusername = \"me\"\npassword = \"pw\"\n\n"
	}
	tests := []struct {
		name, doc, want string
	}{
		{"data_dir empty", "data_dir = \"\"\n", `:1: data_dir: must not be empty`},
		{"imap empty", "[listen]\nimap = \"\"\n", `:2: listen.imap: must not be empty; use "off" to disable it`},
		{"imap not host:port", "[listen]\nimap = \"localhost\"\n", `:2: listen.imap: "localhost" is not host:port`},
		{"imap bad port", "[listen]\nimap = \"127.0.0.1:70000\"\n", `:2: listen.imap: port "70000" must be 0-65535`},
		{"imaps same as imap", "[listen]\nimap = \"127.0.0.1:1143\"\nimaps = \"127.0.0.1:1143\"\n", `:3: listen.imaps: same address as listen.imap`},
		{"control off", "[listen]\ncontrol = \"off\"\n", `:2: listen.control: "off" is not host:port`},
		{"control not loopback", "[listen]\ncontrol = \"0.0.0.0:7000\"\n", `:2: listen.control: "0.0.0.0:7000" must be on a loopback address`},
		{"tls_cert without key", "[listen]\ntls_cert = \"old.mbox\"\n", `:1: listen.tls_key: required when listen.tls_cert is set`},
		{"tls_key without cert", "[listen]\ntls_key = \"old.mbox\"\n", `:1: listen.tls_cert: required when listen.tls_key is set`},
		{"tls_cert missing", "[listen]\ntls_cert = \"nope.pem\"\ntls_key = \"old.mbox\"\n", `:2: listen.tls_cert: ` + filepath.Join(env.dir, "nope.pem") + ` does not exist`},
		{"trusted network bad", "[listen]\ntrusted_networks = [\"10.0.0.0/8\", \"lan\"]\n", `:2: listen.trusted_networks[1]: "lan" is not a network`},

		{"user without name", "[[users]]\npassword_hash = \"" + hash + "\"\n", `:1: users[0].name: required`},
		{"user duplicate", "[[users]]\nname = \"me\"\npassword_hash = \"" + hash + "\"\n[[users]]\nname = \"me\"\npassword_hash = \"" + hash + "\"\n",
			`:5: users[1].name: "me" is also the name of users[0]`},
		{"user plaintext password", "[[users]]\nname = \"me\"\npassword_hash = \"secret\"\n",
			`:3: users[0].password_hash: not a bcrypt hash ($2a$, $2b$ or $2y$…); run "popbridge passwd"`},
		{"user hash missing", "[[users]]\nname = \"me\"\n", `:1: users[0].password_hash: required; run "popbridge passwd"`},
		{"user hash bad cost", "[[users]]\nname = \"me\"\npassword_hash = \"$2a$99$" + strings.Repeat("a", 53) + "\"\n",
			`:3: users[0].password_hash: not a valid bcrypt hash`},

		{"prefix with slash", "[archive]\nprefix = \"Old/Mail\"\n", `:2: archive.prefix: "Old/Mail" must not contain "/"`},
		{"prefix INBOX", "[archive]\nprefix = \"inbox\"\n", `:2: archive.prefix: must not be INBOX`},
		{"prefix empty", "[archive]\nprefix = \"\"\n", `:2: archive.prefix: must not be empty`},
		{"prefix wildcard", "[archive]\nprefix = \"Old*\"\n", `:2: archive.prefix: "Old*" must not contain "*"`},
		{"source without path", "[[archive.sources]]\nformat = \"mbox\"\n", `:1: archive.sources[0].path: required`},
		{"source missing", "[[archive.sources]]\npath = \"old.mbox\"\n[[archive.sources]]\npath = \"gone.mbox\"\n",
			`:4: archive.sources[1].path: ` + filepath.Join(env.dir, "gone.mbox") + ` does not exist`},
		{"source bad format", "[[archive.sources]]\npath = \"old.mbox\"\nformat = \"outlook\"\n",
			`:3: archive.sources[0].format: "outlook" is not a format; use auto, mbox, thunderbird, maildir, eml, pst, becky, dbx, wlm or applemail`},
		{"maildir on a file", "[[archive.sources]]\npath = \"old.mbox\"\nformat = \"maildir\"\n",
			`:2: archive.sources[0].path: ` + filepath.Join(env.dir, "old.mbox") + ` is a file, but format "maildir" needs a directory`},
		{"pst on a dir", "[[archive.sources]]\npath = \"maildir\"\nformat = \"pst\"\n",
			`:2: archive.sources[0].path: ` + filepath.Join(env.dir, "maildir") + ` is a directory, but format "pst" needs a .pst file`},
		{"derived names collide", "[[archive.sources]]\npath = \"maildir\"\n[[archive.sources]]\npath = \"old.mbox\"\nname = \"Old\"\n[[archive.sources]]\npath = \"Local Folders/../maildir\"\nformat = \"maildir\"\n",
			`:6: archive.sources[2].name: "maildir" (derived from the path ` + filepath.Join(env.dir, "maildir") + `) is also the name of archive.sources[0] (` + filepath.Join(env.dir, "maildir") + `)`},
		{"explicit names collide", "[[archive.sources]]\npath = \"maildir\"\nname = \"Old\"\n[[archive.sources]]\npath = \"old.mbox\"\nname = \"old\"\n",
			`:6: archive.sources[1].name: "old" is also the name of archive.sources[0]`},
		{"name with slash", "[[archive.sources]]\npath = \"old.mbox\"\nname = \"a/b\"\n", `:3: archive.sources[0].name: "a/b" must not contain "/"`},

		{"upstream without host", "[upstream]\nusername = \"me\"\npassword = \"pw\"\n", `:1: upstream.host: required`},
		{"upstream host with port", "[upstream]\nhost = \"imap.example.com:993\"\nusername = \"me\"\npassword = \"pw\"\n",
			`:2: upstream.host: "imap.example.com:993" includes a port; write host = "imap.example.com" and port = 993`},
		{"upstream port zero", up + "port = 0\n", `:5: upstream.port: must be 1-65535 (got 0)`},
		{"upstream port high", up + "port = 99999\n", `:5: upstream.port: must be 1-65535 (got 99999)`},
		{"upstream tls bogus", up + "tls = \"ssl\"\n", `:5: upstream.tls: "ssl" is not a TLS mode; use implicit, starttls or none`},
		{"upstream tls none remote", up + "tls = \"none\"\n", `:5: upstream.tls: "none" is only allowed for a server on this machine`},
		{"upstream without username", "[upstream]\nhost = \"h\"\npassword = \"pw\"\n", `:1: upstream.username: required`},
		{"upstream without password", "[upstream]\nhost = \"h\"\nusername = \"me\"\n", `:1: upstream.password: required: set password_file, password_command or password`},
		{"upstream two secrets", up + "password_file = \"pw.txt\"\n", `:5: upstream.password_file: set only one of password, password_file and password_command (found password and password_file)`},
		{"upstream empty password", "[upstream]\nhost = \"h\"\nusername = \"me\"\npassword = \"\"\n", `:4: upstream.password: must not be empty`},
		{"upstream auth bogus", up + "auth = \"cram-md5\"\n", `:5: upstream.auth: "cram-md5" is not an auth mechanism; use plain, login, xoauth2 or oauthbearer`},
		{"upstream oauth with plain", up + "auth = \"plain\"\noauth2_token_command = \"tok\"\n", `:6: upstream.oauth2_token_command: only used with auth = "xoauth2" or "oauthbearer" (auth is "plain")`},
		{"upstream oauth with password", up + "oauth2_token_command = \"tok\"\n", `:4: upstream.password: not used with auth = "xoauth2", which takes its token from oauth2_token_command`},
		{"upstream xoauth2 with password", up + "auth = \"xoauth2\"\noauth2_token_command = \"tok\"\n", `:4: upstream.password: not used with auth = "xoauth2"`},
		{"upstream xoauth2 without command", "[upstream]\nhost = \"h\"\nusername = \"me\"\nauth = \"oauthbearer\"\n", `:1: upstream.oauth2_token_command: required with auth = "oauthbearer"`},
		{"upstream max_connections zero", up + "max_connections = 0\n", `:5: upstream.max_connections: must be 1-32 (got 0)`},
		{"upstream max_connections high", up + "max_connections = 33\n", `:5: upstream.max_connections: must be 1-32 (got 33)`},
		{"upstream ca_cert missing", up + "ca_cert = \"ca.pem\"\n", `:5: upstream.ca_cert: ` + filepath.Join(env.dir, "ca.pem") + ` does not exist`},

		{"pop3 without host", "[[pop3]]\nusername = \"me\"\npassword = \"pw\"\n", `:1: pop3[0].host: required`},
		{"pop3 without password", "[[pop3]]\nhost = \"h\"\nusername = \"me\"\n", `:1: pop3[0].password: required`},
		{"pop3 tls none remote", pop + "tls = \"none\"\n", `:5: pop3[0].tls: "none" is only allowed for a server on this machine`},
		{"pop3 default names collide", pop + pop, `:5: pop3[1].name: "pop.example.com" is also the name of pop3[0]; give each [[pop3]] a distinct name`},
		{"pop3 names collide", named("isp", "a") + named("ISP", "b"), `:8: pop3[1].name: "ISP" is also the name of pop3[0]`},
		{"pop3 interval short", pop + "interval = \"10s\"\n", `:5: pop3[0].interval: must be at least 30s (got 10s)`},
		{"pop3 delete_after without leave", pop + "leave_on_server = false\ndelete_after = \"30d\"\n", `:6: pop3[0].delete_after: only applies with leave_on_server = true`},
		{"pop3 delete_after zero", pop + "delete_after = \"0s\"\n", `:5: pop3[0].delete_after: must be positive`},
		{"pop3 deliver_to upstream without upstream", pop + "deliver_to = \"Archive\"\n", `:5: pop3[0].deliver_to: "Archive" is an upstream folder, but there is no [upstream]`},
		{"pop3 deliver_to empty", pop + "deliver_to = \"Local/\"\n", `:5: pop3[0].deliver_to: "Local/" is not a folder`},
		{"pop3 max size zero", pop + "max_message_size = 0\n", `:5: pop3[0].max_message_size: must be positive`},

		{"migrate before not after since", "[migrate]\nsince = 2020-01-01\nbefore = \"2020-01-01\"\n", `:3: migrate.before: 2020-01-01 must be after migrate.since (2020-01-01)`},
		{"migrate folder not legacy", "[migrate]\nfolders = { \"Inbox\" = \"INBOX\" }\n", `:2: migrate.folders.Inbox: "Inbox" is not a legacy folder`},
		{"migrate folder into legacy", "[migrate.folders]\n\"Local/Sent\" = \"Local/Old Sent\"\n", `:2: migrate.folders."Local/Sent": "Local/Old Sent" is a legacy folder`},
		{"migrate folder empty target", "[migrate.folders]\n\"Local/Sent\" = \"\"\n", `:2: migrate.folders."Local/Sent": the upstream folder must not be empty`},

		{"log level", "[log]\nlevel = \"verbose\"\n", `:2: log.level: "verbose" is not a level; use debug, info, warn or error`},
		{"log format", "[log]\nformat = \"xml\"\n", `:2: log.format: "xml" is not a format; use text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := env.parse(tt.doc)
			if err == nil {
				t.Fatalf("no error; config: %v", cfg)
			}
			want := "popbridge.toml" + tt.want
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, env.path+tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("error:\n%s\nwant a line starting with:\n%s", err, want)
			}
			if strings.Contains(err.Error(), "\"pw\"") {
				t.Errorf("error shows a password: %s", err)
			}
		})
	}
}

// TestWindowsEditorFile: a byte order mark and CRLF line ends, as Notepad
// writes them.
func TestWindowsEditorFile(t *testing.T) {
	env := newCfgEnv(t)
	cfg, _, err := env.parse("\xef\xbb\xbf[listen]\r\nimap = \"127.0.0.1:2143\"\r\n[log]\r\nlevel = \"debug\"\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.IMAP != "127.0.0.1:2143" || cfg.Log.Level != "debug" {
		t.Errorf("got %v", cfg)
	}
	_, _, err = env.parse("\xef\xbb\xbf[log]\r\nlevel = \"debug\"\r\nlevle = 1\r\n")
	if err == nil || err.Error() != env.path+`:3: unknown key "log.levle" (did you mean "level"?)` {
		t.Errorf("err = %v", err)
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	env := newCfgEnv(t)
	doc := "[log]\nlevel = \"loud\"\n[listen]\nimap = \"x\"\n[upstream]\nhost = \"h\"\ntls = \"ssl\"\nport = 0\n"
	_, _, err := env.parse(doc)
	if err == nil {
		t.Fatal("no error")
	}
	var prefixes []string
	for _, line := range strings.Split(err.Error(), "\n") {
		prefixes = append(prefixes, strings.SplitN(strings.TrimPrefix(line, env.path), ": ", 3)[0:2]...)
	}
	want := []string{":2", "log.level", ":4", "listen.imap", ":5", "upstream.username", ":5", "upstream.password", ":7", "upstream.tls", ":8", "upstream.port"}
	if !reflect.DeepEqual(prefixes, want) {
		t.Errorf("want every error, in file order; got:\n%s", err)
	}
}

func TestDefaults(t *testing.T) {
	env := newCfgEnv(t)
	doc := `
[[users]]
name = "me"
password_hash = "` + testHash() + `"

[[archive.sources]]
path = "old.mbox"

[upstream]
host = "imap.example.com"
username = "me@example.com"
password_command = "pass show imap"

[[pop3]]
host = "pop.example.com"
username = "me"
password = "pw"
`
	cfg, warnings, err := env.parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	yes := true
	want := &Config{
		Path:    env.path,
		DataDir: filepath.Join(env.dir, "xdg-data", "popbridge"),
		Listen: ListenConfig{
			IMAP:        "127.0.0.1:1143",
			IMAPS:       "127.0.0.1:1993",
			TrustedNets: []string{"127.0.0.0/8", "::1/128"},
			Control:     "127.0.0.1:0",
		},
		Users: []UserConfig{{Name: "me", PasswordHash: testHash()}},
		Archive: ArchiveConfig{
			Prefix:  "Local",
			Sources: []SourceConfig{{Path: filepath.Join(env.dir, "old.mbox"), Format: "auto", Name: "old"}},
		},
		Upstream: &UpstreamConfig{
			Host: "imap.example.com", Port: 993, TLS: "implicit", Username: "me@example.com",
			Secret: Secret{PasswordCommand: "pass show imap", dir: env.dir},
			Auth:   "plain", MaxConnections: 4, dataDir: filepath.Join(env.dir, "xdg-data", "popbridge"),
		},
		POP3: []POP3Config{{
			Name: "pop.example.com", Host: "pop.example.com", Port: 995, TLS: "implicit", Username: "me",
			Secret:   Secret{Password: "pw", dir: env.dir},
			Interval: Duration(5 * time.Minute), LeaveOnServer: &yes, DeliverTo: "Local/Inbox",
			MaxMessageSize: 52428800, key: "pop3[0]", dataDir: filepath.Join(env.dir, "xdg-data", "popbridge"),
		}},
		Log:     LogConfig{Level: "info", Format: "text"},
		Console: ConsoleConfig{Listen: defaultConsole},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %v\nwant %v", cfg, want)
	}
	if cfg.Log.SlogLevel() != slog.LevelInfo {
		t.Errorf("SlogLevel = %v", cfg.Log.SlogLevel())
	}
	if err := cfg.CheckServe(); err != nil {
		t.Errorf("CheckServe: %v", err)
	}
}

func TestDefaultsDependingOnOtherKeys(t *testing.T) {
	env := newCfgEnv(t)
	tests := []struct {
		name  string
		doc   string
		check func(*Config) string
	}{
		{"imap off", "[listen]\nimap = \"off\"\nimaps = \"OFF\"\n", func(c *Config) string {
			return fmt.Sprintf("%q %q", c.Listen.IMAP, c.Listen.IMAPS)
		}},
		{"starttls port", "[upstream]\nhost = \"h\"\ntls = \"STARTTLS\"\nusername = \"u\"\npassword = \"p\"\n", func(c *Config) string {
			return fmt.Sprintf("%s %d", c.Upstream.TLS, c.Upstream.Port)
		}},
		{"tls none on loopback", "[upstream]\nhost = \"127.0.0.2\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n[[pop3]]\nhost = \"::1\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n[[pop3]]\nhost = \"localhost\"\ntls = \"none\"\nport = 1110\nusername = \"u\"\npassword = \"p\"\n", func(c *Config) string {
			return fmt.Sprintf("%d %d %d", c.Upstream.Port, c.POP3[0].Port, c.POP3[1].Port)
		}},
		{"xoauth2 from token command", "[upstream]\nhost = \"h\"\nusername = \"u\"\noauth2_token_command = \"tok\"\n", func(c *Config) string {
			return c.Upstream.Auth
		}},
		{"pop3 deliver_to follows prefix", "[archive]\nprefix = \"Old Mail\"\n[[pop3]]\nname = \"isp\"\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\ninterval = \"30s\"\nleave_on_server = false\n", func(c *Config) string {
			return fmt.Sprintf("%s %s %s %v", c.POP3[0].Name, c.POP3[0].DeliverTo, c.POP3[0].Interval, *c.POP3[0].LeaveOnServer)
		}},
		{"sizes", "[[pop3]]\nhost = \"a\"\nusername = \"u\"\npassword = \"p\"\nmax_message_size = \"50MB\"\n[[pop3]]\nhost = \"b\"\nusername = \"u\"\npassword = \"p\"\nmax_message_size = 52_428_800\n[migrate]\ndaily_limit = \"1.5 GiB\"\n", func(c *Config) string {
			return fmt.Sprintf("%d %d %d", c.POP3[0].MaxMessageSize, c.POP3[1].MaxMessageSize, c.Migrate.DailyLimit)
		}},
		{"dates and delete_after", "[migrate]\nsince = 2015-01-01\nbefore = \"2020-06-30\"\n[[pop3]]\nhost = \"a\"\nusername = \"u\"\npassword = \"p\"\ndelete_after = \"30d\"\n", func(c *Config) string {
			return fmt.Sprintf("%s %s %s", c.Migrate.Since, c.Migrate.Before, c.POP3[0].DeleteAfter.Duration())
		}},
		{"trusted networks normalised", "[listen]\ntrusted_networks = [\"192.168.1.7/24\", \"10.0.0.1\", \"fe80::1\"]\n", func(c *Config) string {
			return fmt.Sprint(c.Listen.TrustedNets, len(c.Listen.TrustedPrefixes()))
		}},
		{"log level alias", "[log]\nlevel = \"WARNING\"\nformat = \"JSON\"\ntrace = true\n", func(c *Config) string {
			return fmt.Sprintf("%s %s %v %v", c.Log.Level, c.Log.Format, c.Log.Trace, c.Log.SlogLevel())
		}},
		{"migrate folders", "[migrate.folders]\n\"Local/Local Folders/Sent\" = \"Sent\"\n", func(c *Config) string {
			return fmt.Sprint(c.Migrate.Folders)
		}},
	}
	want := map[string]string{
		"imap off":                       `"" ""`,
		"starttls port":                  "starttls 143",
		"tls none on loopback":           "143 110 1110",
		"xoauth2 from token command":     "xoauth2",
		"pop3 deliver_to follows prefix": "isp Old Mail/Inbox 30s false",
		"sizes":                          "50000000 52428800 1610612736",
		"dates and delete_after":         "2015-01-01 2020-06-30 720h0m0s",
		"trusted networks normalised":    "[192.168.1.0/24 10.0.0.1/32 fe80::1/128] 3",
		"log level alias":                "warn json true WARN",
		"migrate folders":                "map[Local/Local Folders/Sent:Sent]",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := env.parse(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(cfg); got != want[tt.name] {
				t.Errorf("got %q, want %q", got, want[tt.name])
			}
		})
	}
}

func TestSourceNames(t *testing.T) {
	env := newCfgEnv(t)
	cfgWriteFile(t, filepath.Join(env.dir, "profile.default", "prefs.js"), "", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, ".thunderbird", "profiles.ini"), "", 0o600)
	cfgMkdir(t, filepath.Join(env.dir, "tb-mail", "Mail", "Local Folders"))
	cfgWriteFile(t, filepath.Join(env.dir, "Inbox"), "", 0o600)
	cfgMkdir(t, filepath.Join(env.dir, "Inbox.sbd"))
	cfgMkdir(t, filepath.Join(env.dir, ".maildir", "cur"))
	cfgWriteFile(t, filepath.Join(env.dir, "archive.2019.mbox"), "", 0o600)
	tests := []struct{ path, format, want string }{
		{"old.mbox", "", "old"},
		{"archive.2019.mbox", "mbox", "archive.2019"},
		{"Inbox", "", "Inbox"},
		{"Inbox.sbd", "", "Inbox"},
		{"outlook.pst", "pst", "outlook"},
		{"Local Folders", "thunderbird", "Local Folders"},
		{"profile.default", "thunderbird", "Thunderbird"},
		{"tb-mail", "", "Thunderbird"},
		{".thunderbird", "", "Thunderbird"},
		{".maildir", "maildir", "maildir"},
		{"maildir/", "", "maildir"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			doc := fmt.Sprintf("[[archive.sources]]\npath = %q\nformat = %q\n", tt.path, tt.format)
			cfg, _, err := env.parse(doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Archive.Sources[0].Name; got != tt.want {
				t.Errorf("name = %q, want %q", got, tt.want)
			}
		})
	}
	cfg, _, err := env.parse("[[archive.sources]]\npath = \"old.mbox\"\nname = \"Archive 2015\"\nformat = \"MBOX\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Archive.Sources[0]; s.Name != "Archive 2015" || s.Format != "mbox" {
		t.Errorf("explicit name/format: %+v", s)
	}
}

func TestRelativePaths(t *testing.T) {
	env := newCfgEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	cfgWriteFile(t, filepath.Join(home, "mail", "Sent.mbox"), "", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "tls", "cert.pem"), "x", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "tls", "key.pem"), "x", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "ca.pem"), "x", 0o600)
	doc := `data_dir = "state"
[listen]
tls_cert = "tls/cert.pem"
tls_key = "./tls/key.pem"
[[archive.sources]]
path = "old.mbox"
[[archive.sources]]
path = "~/mail/Sent.mbox"
[upstream]
host = "h"
username = "u"
password_file = "secrets/imap.pass"
ca_cert = "ca.pem"
[[pop3]]
host = "p"
username = "u"
password_file = "~/pop.pass"
[log]
file = "logs/popbridge.log"
`
	cfgWriteFile(t, env.path, doc, 0o600)
	// Start from elsewhere: paths follow the file, not the working directory.
	t.Chdir(t.TempDir())
	cfg, _, err := LoadConfig(env.path)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.DataDir, cfg.Listen.TLSCert, cfg.Listen.TLSKey, cfg.Archive.Sources[0].Path, cfg.Archive.Sources[1].Path,
		cfg.Upstream.PasswordFile, cfg.Upstream.CACert, cfg.POP3[0].PasswordFile, cfg.Log.File}
	want := []string{
		filepath.Join(env.dir, "state"),
		filepath.Join(env.dir, "tls", "cert.pem"),
		filepath.Join(env.dir, "tls", "key.pem"),
		filepath.Join(env.dir, "old.mbox"),
		filepath.Join(home, "mail", "Sent.mbox"),
		filepath.Join(env.dir, "secrets", "imap.pass"),
		filepath.Join(env.dir, "ca.pem"),
		filepath.Join(home, "pop.pass"),
		filepath.Join(env.dir, "logs", "popbridge.log"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths:\n got %q\nwant %q", got, want)
	}
	if cfg.Path != env.path {
		t.Errorf("Path = %q, want %q", cfg.Path, env.path)
	}
	if cfg.Archive.Sources[1].Name != "Sent" {
		t.Errorf("name of ~/mail/Sent.mbox = %q", cfg.Archive.Sources[1].Name)
	}

	// A relative config path anchors relative paths at its own directory.
	t.Chdir(filepath.Dir(env.dir))
	cfg, _, err = LoadConfig(filepath.Join(filepath.Base(env.dir), "popbridge.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(env.dir, "state") || cfg.Path != env.path {
		t.Errorf("from a relative config path: data_dir %q, path %q", cfg.DataDir, cfg.Path)
	}
}

func TestFindConfig(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	cfgMkdir(t, home)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("AppData", filepath.Join(home, "AppData"))
	t.Setenv(configEnv, "")
	work := filepath.Join(root, "work")
	cfgMkdir(t, work)
	t.Chdir(work)
	userDir, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	userCfg := filepath.Join(userDir, "popbridge", "popbridge.toml")
	envCfg := filepath.Join(root, "env.toml")
	flagCfg := filepath.Join(root, "flag.toml")

	// Nothing anywhere.
	_, err = FindConfig("")
	if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("no config: err = %v, want ErrNoConfig", err)
	}
	if !strings.Contains(err.Error(), "popbridge.toml and "+userCfg) {
		t.Errorf("error does not list the places looked: %v", err)
	}

	steps := []struct {
		name    string
		setup   func()
		flag    string
		want    string
		wantErr string
	}{
		{"user config dir", func() { cfgWriteFile(t, userCfg, "", 0o600) }, "", userCfg, ""},
		{"working directory beats user dir", func() { cfgWriteFile(t, filepath.Join(work, "popbridge.toml"), "", 0o600) }, "", "popbridge.toml", ""},
		{"missing $POPBRIDGE_CONFIG is an error", func() { t.Setenv(configEnv, envCfg) }, "", "", envCfg + " (from $POPBRIDGE_CONFIG) does not exist"},
		{"$POPBRIDGE_CONFIG beats working directory", func() { cfgWriteFile(t, envCfg, "", 0o600) }, "", envCfg, ""},
		{"missing -config is an error", func() {}, flagCfg, "", flagCfg + " (from -config) does not exist"},
		{"-config beats $POPBRIDGE_CONFIG", func() { cfgWriteFile(t, flagCfg, "", 0o600) }, flagCfg, flagCfg, ""},
		{"-config with ~", func() { cfgWriteFile(t, filepath.Join(home, "mine.toml"), "", 0o600) }, "~/mine.toml", filepath.Join(home, "mine.toml"), ""},
	}
	for _, st := range steps {
		st.setup()
		got, err := FindConfig(st.flag)
		if st.wantErr != "" {
			if !errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), st.wantErr) {
				t.Errorf("%s: err = %v, want ErrNoConfig mentioning %q", st.name, err, st.wantErr)
			}
			continue
		}
		if err != nil || got != st.want {
			t.Errorf("%s: FindConfig(%q) = %q, %v; want %q", st.name, st.flag, got, err, st.want)
		}
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.toml")
	_, _, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v, want one naming %s", err, p)
	}
}

func TestSecretResolve(t *testing.T) {
	env := newCfgEnv(t)
	cfgWriteFile(t, filepath.Join(env.dir, "crlf.pass"), "s3cret pass\r\nsecond line\r\n", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "bom.pass"), "\xef\xbb\xbfbom-pass", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "empty.pass"), "\n", 0o600)
	ctx := context.Background()

	tests := []struct {
		name    string
		secret  string // the keys in [[pop3]]
		want    string
		wantErr string
	}{
		{"inline", `password = " spaced pw "`, " spaced pw ", ""},
		{"file first line", `password_file = "crlf.pass"`, "s3cret pass", ""},
		{"file with BOM", `password_file = "bom.pass"`, "bom-pass", ""},
		{"empty file", `password_file = "empty.pass"`, "", "pop3[0].password_file: the first line of " + filepath.Join(env.dir, "empty.pass") + " is empty"},
		{"missing file", `password_file = "missing.pass"`, "", "pop3[0].password_file: open " + filepath.Join(env.dir, "missing.pass") + ": "},
	}
	if runtime.GOOS != "windows" {
		cfgWriteFile(t, filepath.Join(env.dir, "get-pass.sh"), "#!/bin/sh\nprintf 'cmd-secret\\nignored\\n'\n", 0o700)
		cfgWriteFile(t, filepath.Join(env.dir, "fail.sh"), "#!/bin/sh\necho leaked-stdout\necho 'gpg: decryption failed: No secret key' >&2\necho more >&2\nexit 3\n", 0o700)
		tests = append(tests, []struct {
			name    string
			secret  string
			want    string
			wantErr string
		}{
			{"command in config dir", `password_command = "./get-pass.sh"`, "cmd-secret", ""},
			{"command CRLF", `password_command = "printf 'crlf-secret\r\n'"`, "crlf-secret", ""},
			{"command fails", `password_command = "./fail.sh"`, "", "pop3[0].password_command failed: exit status 3: gpg: decryption failed: No secret key"},
			{"command not found", `password_command = "no-such-command-popbridge"`, "", "pop3[0].password_command failed: exit status 127: "},
			{"command prints nothing", `password_command = "true"`, "", "pop3[0].password_command printed nothing"},
		}...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := env.parse("[[pop3]]\nhost = \"h\"\nusername = \"u\"\n" + tt.secret + "\n")
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.POP3[0].ResolvePassword(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "leaked-stdout") || strings.Contains(err.Error(), "more") {
					t.Errorf("error shows more than stderr's first line: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolvePassword = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	if _, err := (Secret{}).Resolve(ctx, "upstream"); err == nil || !strings.Contains(err.Error(), "upstream: no password configured") {
		t.Errorf("empty secret: err = %v", err)
	}
}

func TestSecretCommandCancel(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses sh")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := Secret{PasswordCommand: "exec sleep 30"}
	_, err := s.Resolve(ctx, "upstream")
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "upstream.password_command: ") {
		t.Errorf("err = %v, want context.Canceled naming the key", err)
	}
}

func TestOAuth2Token(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses sh")
	}
	env := newCfgEnv(t)
	cfg, _, err := env.parse("[upstream]\nhost = \"h\"\nusername = \"u\"\noauth2_token_command = \"echo ya29.token; echo refresh-info\"\n")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Upstream.OAuth2Token(context.Background())
	if err != nil || tok != "ya29.token" {
		t.Errorf("OAuth2Token = %q, %v", tok, err)
	}
	if _, err := cfg.Upstream.ResolvePassword(context.Background()); err == nil {
		t.Error("ResolvePassword without a password succeeded")
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	env := newCfgEnv(t)
	secrets := []string{"hunter2-upstream", "pop-inline-secret", "echo pop-cmd-secret", "oauth-cmd-secret"}
	doc := `
[[users]]
name = "me"
password_hash = "` + testHash() + `"
[upstream]
host = "imap.example.com"
username = "me"
password = "hunter2-upstream"
[[pop3]]
host = "pop1.example.com"
username = "me"
password = "pop-inline-secret"
[[pop3]]
host = "pop2.example.com"
username = "me"
password_command = "echo pop-cmd-secret"
[[pop3]]
host = "pop3.example.com"
username = "me"
password_file = "pop.pass"
`
	cfg, _, err := env.parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	oauth := *cfg.Upstream
	oauth.Secret = Secret{}
	oauth.OAuth2TokenCommand = "oauth-cmd-secret"

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("loaded", "config", cfg, "upstream", cfg.Upstream, "pop3", cfg.POP3[0], "user", cfg.Users[0], "oauth", oauth)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("loaded", "config", *cfg, "secret", cfg.POP3[1].Secret)
	outputs := map[string]string{
		"%v":              fmt.Sprintf("%v", cfg),
		"%+v":             fmt.Sprintf("%+v", *cfg),
		"%#v":             fmt.Sprintf("%#v", cfg),
		"%v upstream":     fmt.Sprintf("%v", cfg.Upstream),
		"%+v upstream":    fmt.Sprintf("%+v", *cfg.Upstream),
		"%v oauth":        fmt.Sprintf("%v", oauth),
		"%v pop3":         fmt.Sprintf("%v", cfg.POP3),
		"%#v pop3":        fmt.Sprintf("%#v", cfg.POP3),
		"%v secret":       fmt.Sprintf("%v", cfg.POP3[1].Secret),
		"%+v secret":      fmt.Sprintf("%+v", cfg.Upstream.Secret),
		"%v users":        fmt.Sprintf("%v", cfg.Users),
		"slog text":       text.String(),
		"slog json":       js.String(),
		"String()":        cfg.String(),
		"Secret.String()": cfg.POP3[0].Secret.String(),
	}
	for name, out := range outputs {
		for _, s := range append(secrets, testHash()) {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s has no [redacted] marker:\n%s", name, out)
		}
	}
	// What is not secret stays visible, so the output is still useful.
	for _, want := range []string{"upstream.host=imap.example.com", "pop3[2].password_file=" + filepath.Join(env.dir, "pop.pass"), "users[0].name=me", "listen.imap=127.0.0.1:1143"} {
		if !strings.Contains(cfg.String(), want) {
			t.Errorf("String() lacks %q:\n%s", want, cfg.String())
		}
	}
	if !strings.Contains(text.String(), "config.upstream.host=imap.example.com") || !strings.Contains(js.String(), `"max_message_size":"50MiB"`) {
		t.Errorf("slog output lacks the config:\n%s\n%s", text.String(), js.String())
	}
}

func TestPermissionWarnings(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not express readability on Windows")
	}
	env := newCfgEnv(t)
	inline := "[upstream]\nhost = \"h\"\nusername = \"u\"\npassword = \"pw\"\n"
	cfgWriteFile(t, filepath.Join(env.dir, "open.pass"), "pw\n", 0o644)
	cfgWriteFile(t, filepath.Join(env.dir, "closed.pass"), "pw\n", 0o600)
	tests := []struct {
		name string
		doc  string
		mode os.FileMode
		want []string
	}{
		{"inline password, 0644", inline, 0o644, []string{
			env.path + ": upstream.password is stored inline and " + env.path + " is readable by other users (mode 0644); use password_file or password_command instead, or run: chmod 600 " + env.path}},
		{"inline password, 0640", inline, 0o640, []string{
			env.path + ": upstream.password is stored inline and " + env.path + " is readable by other users (mode 0640); use password_file or password_command instead, or run: chmod 600 " + env.path}},
		{"inline password, 0600", inline, 0o600, nil},
		{"no inline password, 0644", "[upstream]\nhost = \"h\"\nusername = \"u\"\npassword_file = \"closed.pass\"\n", 0o644, nil},
		{"readable password_file", "[[pop3]]\nhost = \"h\"\nusername = \"u\"\npassword_file = \"open.pass\"\n", 0o600, []string{
			env.path + ": pop3[0].password_file " + filepath.Join(env.dir, "open.pass") + " is readable by other users (mode 0644); run: chmod 600 " + filepath.Join(env.dir, "open.pass")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgWriteFile(t, env.path, tt.doc, tt.mode)
			_, warnings, err := LoadConfig(env.path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(warnings, tt.want) {
				t.Errorf("warnings:\n%q\nwant:\n%q", warnings, tt.want)
			}
		})
	}
}

func TestInsecureSkipVerifyWarning(t *testing.T) {
	env := newCfgEnv(t)
	_, warnings, err := env.parse("[upstream]\nhost = \"h\"\nusername = \"u\"\npassword_command = \"x\"\ninsecure_skip_verify = true\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], env.path+":5: upstream.insecure_skip_verify: the server's TLS certificate is not checked") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestCheckServe(t *testing.T) {
	env := newCfgEnv(t)
	cfg, _, err := env.parse("")
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckServe()
	if err == nil || err.Error() != env.path+`: users: no [[users]] configured: add one with a name and the password_hash printed by "popbridge passwd"` {
		t.Errorf("CheckServe = %v", err)
	}
	cfg, _, err = env.parse("[listen]\nimap = \"off\"\nimaps = \"off\"\n[[users]]\nname = \"me\"\npassword_hash = \"" + testHash() + "\"\n")
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckServe()
	if err == nil || err.Error() != env.path+`: listen: imap and imaps are both "off": clients could not connect` {
		t.Errorf("CheckServe = %v", err)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		str     string
		wantErr string
	}{
		{"5m", 5 * time.Minute, "5m0s", ""},
		{"90s", 90 * time.Second, "1m30s", ""},
		{"1h30m", 90 * time.Minute, "1h30m0s", ""},
		{"30d", 30 * 24 * time.Hour, "30d", ""},
		{"1d12h", 36 * time.Hour, "36h0m0s", ""},
		{"0.5d", 12 * time.Hour, "12h0m0s", ""},
		{" 2d ", 48 * time.Hour, "2d", ""},
		{"", 0, "", "empty duration"},
		{"300", 0, "", "duration 300 has no unit"},
		{"5 minutes", 0, "", `invalid duration "5 minutes"`},
		{"d", 0, "", `invalid duration "d"`},
		{"3dd", 0, "", `invalid duration "3dd"`},
		{"999999999d", 0, "", "out of range"},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || d.Duration() != tt.want || d.String() != tt.str {
			t.Errorf("%q: got %v (%s), %v; want %v (%s)", tt.in, d.Duration(), d, err, tt.want, tt.str)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		str     string
		wantErr string
	}{
		{"52428800", 52428800, "50MiB", ""},
		{"52_428_800", 52428800, "50MiB", ""},
		{"50MiB", 50 << 20, "50MiB", ""},
		{"50mib", 50 << 20, "50MiB", ""},
		{"50MB", 50_000_000, "50MB", ""},
		{"50 MB", 50_000_000, "50MB", ""},
		{"1.5GiB", 3 << 29, "1536MiB", ""},
		{"2GB", 2_000_000_000, "2GB", ""},
		{"1kB", 1000, "1KB", ""},
		{"123", 123, "123B", ""},
		{"123B", 123, "123B", ""},
		{"0", 0, "0B", ""},
		{"1TiB", 1 << 40, "1TiB", ""},
		{"-5MB", 0, "", `invalid size "-5MB"`},
		{"5XB", 0, "", `unknown unit "XB"`},
		{"MB", 0, "", `invalid size "MB"`},
		{"99999999999TB", 0, "", "too large"},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.UnmarshalText([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || int64(b) != tt.want || b.String() != tt.str {
			t.Errorf("%q: got %d (%s), %v; want %d (%s)", tt.in, int64(b), b, err, tt.want, tt.str)
		}
	}
}

func TestDate(t *testing.T) {
	var d Date
	if err := d.UnmarshalText([]byte("2019-02-28")); err != nil || d != (Date{2019, time.February, 28}) || d.String() != "2019-02-28" {
		t.Errorf("2019-02-28: %v %v", d, err)
	}
	if got := d.Time(time.UTC); !got.Equal(time.Date(2019, 2, 28, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Time = %v", got)
	}
	if !d.Before(Date{2019, time.March, 1}) || d.Before(d) || d.IsZero() || !(Date{}).IsZero() {
		t.Error("Before/IsZero wrong")
	}
	for _, bad := range []string{"2019-02-29", "2019/02/28", "28.02.2019", ""} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// ---------------------------------------------------------------------------
// config.example.toml

const examplePath = "../../config.example.toml"

func TestExampleConfigParses(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "data"))
	cfg, warnings, err := ParseConfig(data, examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if cfg.Listen.IMAP != defaultIMAP || cfg.Archive.Prefix != defaultPrefix || cfg.Upstream != nil || len(cfg.POP3) != 0 {
		t.Errorf("example as shipped is not the defaults: %v", cfg)
	}
}

// uncommentExample removes the "#" of every "#key = …" and "#[table]" line.
func uncommentExample(data []byte) []byte {
	return regexp.MustCompile(`(?m)^#(\[|[a-z0-9_]+ = )`).ReplaceAll(data, []byte("$1"))
}

func TestExampleConfigUncommented(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	cfgMkdir(t, filepath.Join(home, ".thunderbird", "abcd1234.default-release", "Mail", "Local Folders"))

	// The [….oauth2] tables replace the passwords: checked separately
	// below, without the password keys.
	full := uncommentExample(data)
	doc := regexp.MustCompile(`(?ms)^\[(upstream|pop3)\.oauth2\]\n.*?\n\n`).ReplaceAll(full, nil)
	hashLine := regexp.MustCompile(`(?m)^password_hash = ".*"$`)
	if len(hashLine.FindAll(doc, -1)) != 1 {
		t.Fatalf("want one password_hash line in the uncommented example")
	}
	doc = hashLine.ReplaceAllLiteral(doc, []byte(`password_hash = "`+testHash()+`"`))

	cfg, warnings, err := ParseConfig(doc, filepath.Join(t.TempDir(), "popbridge.toml"))
	if err != nil {
		t.Fatalf("uncommented example: %v\n%s", err, doc)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if cfg.Upstream == nil || cfg.Upstream.Host != "imap.example.com" || len(cfg.POP3) != 1 || cfg.POP3[0].Name != "old-isp" ||
		len(cfg.Users) != 1 || len(cfg.Archive.Sources) != 1 || len(cfg.Migrate.Folders) != 2 || cfg.Migrate.Since.IsZero() {
		t.Errorf("uncommented example misses sections: %v", cfg)
	}
	if err := cfg.CheckServe(); err != nil {
		t.Error(err)
	}

	oauthDoc := regexp.MustCompile(`(?m)^(password|password_file|password_command|oauth2_token_command|auth) = .*$`).ReplaceAll(full, nil)
	oauthDoc = hashLine.ReplaceAllLiteral(oauthDoc, []byte(`password_hash = "`+testHash()+`"`))
	cfg, _, err = ParseConfig(oauthDoc, filepath.Join(t.TempDir(), "popbridge.toml"))
	if err != nil {
		t.Fatalf("uncommented example with [upstream.oauth2] and [pop3.oauth2]: %v", err)
	}
	if o := cfg.Upstream.OAuth2; o == nil || o.Provider != "microsoft" || o.Tenant != "common" || cfg.Upstream.Auth != AuthXOAuth2 {
		t.Errorf("upstream oauth2: %+v, auth %s", o, cfg.Upstream.Auth)
	}
	if o := cfg.POP3[0].OAuth2; o == nil || o.ClientID == "" {
		t.Errorf("pop3 oauth2: %+v", o)
	}
}

// TestExampleDocumentsEveryKey walks the Config struct tree and checks that
// each key appears, as "key =" (maybe commented out), in its own table's
// section of config.example.toml, so the docs cannot drift from the code.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	// Split into sections by table header ("[x]", "[[x]]", maybe as "#[x]").
	sections := map[string]string{}
	var order []string
	header := regexp.MustCompile(`^#?\[\[?([a-z0-9_.]+)\]\]?\s*$`)
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			cur = m[1]
			order = append(order, cur)
		}
		sections[cur] += line + "\n"
	}
	wantOrder := []string{"listen", "users", "archive", "archive.sources", "upstream", "upstream.oauth2", "pop3", "pop3.oauth2", "migrate", "log", "console"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("sections in example: %q, want %q", order, wantOrder)
	}

	var walk func(table string, typ reflect.Type)
	count := 0
	walk = func(table string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous {
				walk(table, f.Type)
				continue
			}
			name := tomlName(f)
			if name == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			full := name
			if table != "" {
				full = table + "." + name
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
				if _, ok := sections[full]; !ok {
					t.Errorf("table [%s] is not in config.example.toml", full)
				}
				walk(full, ft)
				continue
			}
			count++
			keyLine := regexp.MustCompile(`(?m)^#? ?` + regexp.QuoteMeta(name) + ` = `)
			if !keyLine.MatchString(sections[table]) {
				t.Errorf("key %s is not documented in the [%s] section of config.example.toml", full, table)
			}
			// Documented means explained too: a comment naming the key
			// or a "Default:" nearby.
			if !strings.Contains(sections[table], "# "+name) && !strings.Contains(sections[table], name+":") {
				t.Errorf("key %s has no explanation in config.example.toml", full)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	if count < 40 {
		t.Errorf("walked only %d keys; the walk is broken", count)
	}
}
