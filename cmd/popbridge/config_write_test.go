package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/control"
)

// TestRenderConfigRoundTrip: every key of the uncommented example, and
// the defaults alone, survive render → parse unchanged.
func TestRenderConfigRoundTrip(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "xdg"))
	cfgMkdir(t, filepath.Join(home, ".thunderbird", "abcd1234.default-release", "Mail", "Local Folders"))
	full := uncommentExample(data)
	hashLine := regexp.MustCompile(`(?m)^password_hash = ".*"$`)
	// The [….oauth2] tables replace the passwords: two documents.
	doc := regexp.MustCompile(`(?ms)^\[(upstream|pop3)\.oauth2\]\n.*?\n\n`).ReplaceAll(full, nil)
	doc = hashLine.ReplaceAllLiteral(doc, []byte(`password_hash = "`+testHash()+`"`))
	oauthDoc := regexp.MustCompile(`(?m)^(password|password_file|password_command|oauth2_token_command|auth) = .*$`).ReplaceAll(full, nil)
	oauthDoc = hashLine.ReplaceAllLiteral(oauthDoc, []byte(`password_hash = "`+testHash()+`"`))
	path := filepath.Join(t.TempDir(), "popbridge.toml")
	for name, text := range map[string][]byte{
		"example":  doc,
		"oauth2":   oauthDoc,
		"defaults": nil,
		"odd": []byte(`data_dir = 'C:\odd "dir"` + "\t" + `x'
[listen]
imap = "off"
imaps = "0.0.0.0:1993"
[console]
listen = "off"
[archive]
prefix = "古いメール"
[[archive.sources]]
path = "` + filepath.Join(home, ".thunderbird") + `"
name = "it's \"quoted\""
[[pop3]]
host = "pop.example.net"
username = "me"
password = "p'w\"\\"
leave_on_server = false
[migrate]
before = 2020-01-01
daily_limit = "2GB"
`),
	} {
		t.Run(name, func(t *testing.T) {
			want, _, err := ParseConfig(text, path)
			if err != nil {
				t.Fatal(err)
			}
			out := renderConfig(want, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
			got, warnings, err := ParseConfig(out, path)
			if err != nil {
				t.Fatalf("rendered config does not parse: %v\n%s", err, out)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the config:\n got %v\nwant %v\n%s", got, want, out)
			}
			if name == "defaults" && (!strings.Contains(string(out), "\n#imap = \"127.0.0.1:1143\"\n") || !strings.Contains(string(out), "\n#listen = \"127.0.0.1:8143\"\n")) {
				t.Errorf("defaults are not written commented out:\n%s", out)
			}
		})
	}
}

// TestSaveSettings: what the console saves lands in the file the CLI
// reads; passwords go to private files, never into the config or back out.
func TestSaveSettings(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg"))
	path := filepath.Join(dir, "conf", "popbridge.toml")
	if _, err := newConfigFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("new config mode %v", st.Mode().Perm())
	}
	cfg, _, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	reloads := 0
	h := &configHost{path: path, cfg: cfg, reload: func() { reloads++ }, now: time.Now}
	set, _ := h.Settings()
	if set.Configured || set.Upstream != nil || len(set.Sources) != 0 || set.Console != defaultConsole {
		t.Fatalf("fresh settings %+v", set)
	}
	mbox := filepath.Join(dir, "old.mbox")
	cfgWriteFile(t, mbox, "From a@b Thu Jan  1 00:00:00 2015\n\nhi\n", 0o644)
	const upPW, popPW = "upstream-secret-Z7q", "pop-secret-K3w"
	hash := testHash()
	lan := true
	_, err = h.SaveSettings(context.Background(), control.SettingsChange{
		Sources:  &[]control.SourceSetting{{Path: mbox}},
		Upstream: &control.UpstreamChange{Host: "imap.example.com", TLS: "implicit", Username: "me@example.com", Password: upPW},
		POP3:     &[]control.POPChange{{Host: "pop.example.net", Username: "me", Password: popPW, LeaveOnServer: true, DeleteAfterDays: 30}},
		LAN:      &lan,
		Users:    &[]control.UserChange{{Name: "me@example.com", PasswordHash: hash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	if strings.Contains(string(text), upPW) || strings.Contains(string(text), popPW) {
		t.Fatalf("a password was written into the config:\n%s", text)
	}
	got, _, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("saved config: %v\n%s", err, text)
	}
	if reloads != 1 || len(got.Archive.Sources) != 1 || got.Archive.Sources[0].Path != mbox || got.Upstream == nil || got.Upstream.Port != 993 ||
		len(got.POP3) != 1 || got.POP3[0].DeleteAfter != Duration(30*24*time.Hour) || got.Listen.IMAPS != "0.0.0.0:1993" ||
		len(got.Users) != 1 || got.Users[0].PasswordHash != hash {
		t.Fatalf("saved config %v (reloads %d)", got, reloads)
	}
	for _, c := range []struct {
		file, want string
	}{{got.Upstream.PasswordFile, upPW}, {got.POP3[0].PasswordFile, popPW}} {
		b, err := os.ReadFile(c.file)
		st, _ := os.Stat(c.file)
		if err != nil || strings.TrimSpace(string(b)) != c.want || st.Mode().Perm() != 0o600 {
			t.Errorf("secret file %s: %q %v %v", c.file, b, err, st.Mode())
		}
	}
	if _, err := os.Stat(path + ".bak"); err != nil {
		t.Errorf("no backup of the previous file: %v", err)
	}
	// Revisiting a step without retyping the password keeps it.
	if _, err := h.SaveSettings(context.Background(), control.SettingsChange{
		Upstream: &control.UpstreamChange{Host: "imap2.example.com", TLS: "starttls", Username: "me@example.com"},
		POP3:     &[]control.POPChange{{OldName: "pop.example.net", Host: "pop.example.net", Username: "me", LeaveOnServer: false}},
	}); err != nil {
		t.Fatal(err)
	}
	if pw, err := h.Secret(context.Background(), "upstream"); err != nil || pw != upPW {
		t.Errorf("upstream password after an edit: %q %v", pw, err)
	}
	if pw, err := h.Secret(context.Background(), "pop3:pop.example.net"); err != nil || pw != popPW {
		t.Errorf("POP password after an edit: %q %v", pw, err)
	}
	set, _ = h.Settings()
	if set.Upstream.Port != 143 || set.Upstream.TLS != "starttls" || !set.Upstream.PasswordSet || set.POP3[0].LeaveOnServer || !set.Listen.LAN || !set.Configured {
		t.Errorf("settings after an edit: %+v %+v", set.Upstream, set.POP3)
	}
	// Two Thunderbird profiles: the second is numbered, not refused.
	for _, p := range []string{"p1", "p2"} {
		cfgWriteFile(t, filepath.Join(dir, p, "prefs.js"), "", 0o644)
		cfgMkdir(t, filepath.Join(dir, p, "Mail", "Local Folders"))
	}
	if _, err := h.SaveSettings(context.Background(), control.SettingsChange{Sources: &[]control.SourceSetting{
		{Path: filepath.Join(dir, "p1")}, {Path: filepath.Join(dir, "p2")}, {Path: mbox}}}); err != nil {
		t.Fatal(err)
	}
	if set, _ = h.Settings(); len(set.Sources) != 3 || set.Sources[0].Name != "Thunderbird" || set.Sources[1].Name != "Thunderbird 2" || set.Sources[2].Name != "old" {
		t.Errorf("sources %+v", set.Sources)
	}

	// A new mailbox without a password is refused, naming the field.
	_, err = h.SaveSettings(context.Background(), control.SettingsChange{Upstream: &control.UpstreamChange{Remove: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.SaveSettings(context.Background(), control.SettingsChange{Upstream: &control.UpstreamChange{Host: "imap.example.com", Username: "x"}})
	var ce *control.Error
	if !asControlError(err, &ce) || ce.Params["field"] != "password" {
		t.Errorf("no password: %v", err)
	}
}

// TestSaveSettingsOAuth2: the console's "Sign in with Microsoft/Google"
// writes [upstream.oauth2] (no password); the client secret is write-only
// and kept when not retyped; an edit without a password keeps the
// sign-in; a typed password replaces it.
func TestSaveSettingsOAuth2(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg"))
	path := filepath.Join(dir, "popbridge.toml")
	cfg, err := newConfigFile(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := &configHost{path: path, cfg: cfg, now: time.Now}
	ctx := context.Background()
	const secret = "google-client-Secret-9x"
	if _, err := h.SaveSettings(ctx, control.SettingsChange{Upstream: &control.UpstreamChange{Host: "imap.gmail.com", TLS: "implicit", Username: "taro@gmail.com",
		OAuth2: &control.OAuth2Change{Provider: "google", ClientID: "123-abc.apps.googleusercontent.com", ClientSecret: secret}}}); err != nil {
		t.Fatal(err)
	}
	got, _, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if u := got.Upstream; u == nil || u.OAuth2 == nil || u.OAuth2.Provider != "google" || u.OAuth2.ClientSecret != secret || u.Auth != AuthXOAuth2 || u.IsSet() {
		t.Fatalf("saved upstream %+v", got.Upstream)
	}
	set, _ := h.Settings()
	if o := set.Upstream.OAuth2; o == nil || o.ClientID != "123-abc.apps.googleusercontent.com" || !o.ClientSecretSet || set.Upstream.PasswordFrom != "oauth2" {
		t.Fatalf("settings %+v", set.Upstream)
	}
	if b, _ := json.Marshal(set); strings.Contains(string(b), secret) {
		t.Fatalf("the client secret is in the settings: %s", b)
	}
	// The same client again without the secret: it stays.
	if _, err := h.SaveSettings(ctx, control.SettingsChange{Upstream: &control.UpstreamChange{Host: "imap.gmail.com", TLS: "implicit", Username: "taro@gmail.com",
		OAuth2: &control.OAuth2Change{Provider: "google", ClientID: "123-abc.apps.googleusercontent.com"}}}); err != nil {
		t.Fatal(err)
	}
	// Another step saved without touching the mailbox's sign-in.
	if _, err := h.SaveSettings(ctx, control.SettingsChange{Upstream: &control.UpstreamChange{Host: "imap.gmail.com", TLS: "implicit", Username: "taro@gmail.com"}}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = LoadConfig(path); got.Upstream.OAuth2 == nil || got.Upstream.OAuth2.ClientSecret != secret {
		t.Fatalf("the sign-in after edits: %+v", got.Upstream.OAuth2)
	}
	// An app password instead.
	if _, err := h.SaveSettings(ctx, control.SettingsChange{Upstream: &control.UpstreamChange{Host: "imap.gmail.com", TLS: "implicit", Username: "taro@gmail.com", Password: "app-pw-abcd"}}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = LoadConfig(path); got.Upstream.OAuth2 != nil || !got.Upstream.IsSet() || got.Upstream.Auth != AuthPlain {
		t.Fatalf("after an app password: %+v", got.Upstream)
	}
	// Microsoft without a client ID: the field is named.
	_, err = h.SaveSettings(ctx, control.SettingsChange{Upstream: &control.UpstreamChange{Host: "outlook.office365.com", Username: "me@outlook.com",
		OAuth2: &control.OAuth2Change{Provider: "microsoft"}}})
	var ce *control.Error
	if !asControlError(err, &ce) || ce.Params["field"] != "client_id" && !strings.Contains(err.Error(), "client_id") {
		t.Errorf("no client ID: %v", err)
	}
}

func asControlError(err error, e **control.Error) bool {
	ce, ok := err.(*control.Error)
	if ok {
		*e = ce
	}
	return ok
}

func TestConsoleListenConfig(t *testing.T) {
	env := newCfgEnv(t)
	for doc, want := range map[string]string{
		"":                                       defaultConsole,
		"[console]\nlisten = \"off\"\n":          "",
		"[console]\nlisten = \"[::1]:9000\"\n":   "[::1]:9000",
		"[console]\nlisten = \"localhost:0\"\n":  "localhost:0",
		"[console]\nlisten = \"0.0.0.0:8143\"\n": "error:must be on a loopback address",
		"[console]\nlisten = \"8143\"\n":         "error:is not host:port",
	} {
		cfg, _, err := env.parse(doc)
		if w, ok := strings.CutPrefix(want, "error:"); ok {
			if err == nil || !strings.Contains(err.Error(), "console.listen") || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: err %v, want %q", doc, err, w)
			}
			continue
		}
		if err != nil || cfg.Console.Listen != want {
			t.Errorf("%q: %v %q, want %q", doc, err, cfg.Console.Listen, want)
		}
	}
}

// TestSaveSettingsKeepsPOPAccounts: the console's setup shows one POP
// account and sends the others back as they are; saving keeps every
// account with its secret, its interval and its browser sign-in
// ([pop3.oauth2]), which an edit without a password leaves in place.
func TestSaveSettingsKeepsPOPAccounts(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg"))
	path := filepath.Join(dir, "popbridge.toml")
	if _, err := newConfigFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, `
[[pop3]]
name = "isp"
host = "pop.example.net"
username = "taro"
password = "isp-pw-1"
interval = "10m"

[[pop3]]
name = "outlook"
host = "outlook.office365.com"
username = "taro@outlook.com"
[pop3.oauth2]
provider = "microsoft"
client_id = "11111111-2222-3333-4444-555555555555"
`)
	f.Close()
	cfg, _, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &configHost{path: path, cfg: cfg, now: time.Now}
	set, _ := h.Settings()
	if len(set.POP3) != 2 || set.POP3[1].OAuth2 != "microsoft" || set.POP3[0].OAuth2 != "" || !set.POP3[0].PasswordSet {
		t.Fatalf("settings %+v", set.POP3)
	}
	// What console.js sends: the shown account edited, the other as it is.
	keep := func(p control.POPSetting) control.POPChange {
		return control.POPChange{OldName: p.Name, Name: p.Name, Host: p.Host, Port: p.Port, TLS: p.TLS, Username: p.Username,
			LeaveOnServer: p.LeaveOnServer, DeleteAfterDays: p.DeleteAfterDays, DeliverTo: p.DeliverTo}
	}
	edited := keep(set.POP3[0])
	edited.LeaveOnServer, edited.DeleteAfterDays = true, 14
	if _, err := h.SaveSettings(context.Background(), control.SettingsChange{POP3: &[]control.POPChange{edited, keep(set.POP3[1])}}); err != nil {
		t.Fatal(err)
	}
	// The Microsoft account shown alone, saved without a password.
	set, _ = h.Settings()
	if _, err := h.SaveSettings(context.Background(), control.SettingsChange{POP3: &[]control.POPChange{keep(set.POP3[1]), keep(set.POP3[0])}}); err != nil {
		t.Fatalf("saving the browser sign-in account without a password: %v", err)
	}
	got, _, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]POP3Config{}
	for _, p := range got.POP3 {
		byName[p.Name] = p
	}
	isp, ms := byName["isp"], byName["outlook"]
	if len(got.POP3) != 2 || !isp.IsSet() || isp.Interval.Duration() != 10*time.Minute || isp.DeleteAfter.Duration() != 14*24*time.Hour {
		t.Errorf("the ISP account after the saves: %+v", isp)
	}
	if ms.OAuth2 == nil || ms.OAuth2.Provider != "microsoft" || ms.OAuth2.ClientID != "11111111-2222-3333-4444-555555555555" || ms.IsSet() {
		t.Errorf("the Microsoft account after the saves: %+v (oauth2 %+v)", ms, ms.OAuth2)
	}
}
