package discover

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// plantStores writes files under root ("dir/" makes a directory).
func plantStores(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const tbOneMessage = "From a@example.com Mon Jan  2 15:04:05 2006\nFrom: a@example.com\nSubject: hi\n\nbody\n"

// TestThunderbirdProfiles plants the profiles.ini layouts of every system
// in a fake home and checks exactly which stores are found.
func TestThunderbirdProfiles(t *testing.T) {
	home := t.TempDir()
	moved := filepath.Join(home, "MailArchive", "Local Folders")
	plantStores(t, home, map[string]string{
		// Linux, the default location: a relative profile with local
		// mail, an absolute one, one without local mail, one that is gone.
		".thunderbird/profiles.ini": "[General]\nStartWithLastProfile=1\n\n" +
			"[Profile1]\nName=work\nIsRelative=1\nPath=def.work\n\n" +
			"[Profile0]\nName=default\nIsRelative=1\nPath=abc.default-release\nDefault=1\n\n" +
			"[Profile2]\nName=imap-only\nIsRelative=1\nPath=imap.only\n\n" +
			"[Profile3]\nName=gone\nIsRelative=1\nPath=gone.profile\n\n" +
			"[Profile4]\nName=elsewhere\nIsRelative=0\nPath=" + filepath.Join(home, "tb-elsewhere") + "\n\n" +
			"[Install4F96D1932A9F858E]\nDefault=abc.default-release\nLocked=1\n",
		".thunderbird/abc.default-release/Mail/Local Folders/Inbox": tbOneMessage,
		".thunderbird/abc.default-release/prefs.js": "// Mozilla User Preferences\n" +
			`user_pref("mail.server.server1.directory", "` + strings.ReplaceAll(moved, `\`, `\\`) + `");` + "\n" +
			`user_pref("mail.server.server1.directory-rel", "[ProfD]Mail/Local Folders");` + "\n" +
			`user_pref("mail.server.server2.directory", "` + filepath.Join(home, ".thunderbird", "abc.default-release", "Mail", "pop.example.com") + `");` + "\n" +
			`user_pref("mail.server.server3.directory", "/nonexistent/dir");` + "\n",
		"MailArchive/Local Folders/Inbox":                        tbOneMessage,
		".thunderbird/def.work/Mail/Local Folders/":              "",
		".thunderbird/imap.only/ImapMail/imap.example.com/INBOX": tbOneMessage,
		"tb-elsewhere/Mail/Local Folders/Sent":                   tbOneMessage,
		// The snap and the flatpak.
		"snap/thunderbird/common/.thunderbird/profiles.ini":                   "[Profile0]\nName=snappy\nIsRelative=1\nPath=s1.default\n",
		"snap/thunderbird/common/.thunderbird/s1.default/Mail/Local Folders/": "",
		".var/app/org.mozilla.Thunderbird/.thunderbird/profiles.ini":          "[Profile0]\nName=flat\nIsRelative=1\nPath=f1.default\n",
		".var/app/org.mozilla.Thunderbird/.thunderbird/f1.default/Mail/":      "",
		// macOS and Windows (CRLF, a byte order mark, forward slashes).
		"Library/Thunderbird/profiles.ini":                      "[Profile0]\r\nName=mac\r\nIsRelative=1\r\nPath=Profiles/m1.default\r\n",
		"Library/Thunderbird/Profiles/m1.default/Mail/":         "",
		"AppData/Roaming/Thunderbird/profiles.ini":              "\xef\xbb\xbf[Profile0]\r\nName=既定\r\nIsRelative=1\r\nPath=Profiles/w1.default\r\nDefault=1\r\n",
		"AppData/Roaming/Thunderbird/Profiles/w1.default/Mail/": "",
	})
	tb := func(name string, parts ...string) Store {
		return Store{Path: filepath.Join(append([]string{home}, parts...)...), Format: "thunderbird", Client: "Thunderbird", Name: name}
	}
	cases := []struct {
		env  Env
		want []Store
	}{
		{Env{GOOS: "linux", Home: home}, []Store{
			tb("default", ".thunderbird", "abc.default-release"),
			{Path: moved, Format: "thunderbird", Client: "Thunderbird", Name: "default – Local Folders"},
			tb("work", ".thunderbird", "def.work"),
			tb("elsewhere", "tb-elsewhere"),
			tb("snappy", "snap", "thunderbird", "common", ".thunderbird", "s1.default"),
			tb("flat", ".var", "app", "org.mozilla.Thunderbird", ".thunderbird", "f1.default"),
		}},
		{Env{GOOS: "darwin", Home: home}, []Store{tb("mac", "Library", "Thunderbird", "Profiles", "m1.default")}},
		{Env{GOOS: "windows", Home: home, AppData: filepath.Join(home, "AppData", "Roaming")}, []Store{tb("既定", "AppData", "Roaming", "Thunderbird", "Profiles", "w1.default")}},
		{Env{GOOS: "windows", Home: home}, []Store{tb("既定", "AppData", "Roaming", "Thunderbird", "Profiles", "w1.default")}},
		{Env{GOOS: "linux", Home: filepath.Join(home, "nobody")}, nil},
	}
	for _, c := range cases {
		got := findThunderbird(c.env)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s:\n got %+v\nwant %+v", c.env.GOOS, c.env.AppData, got, c.want)
		}
	}
}

func TestParseProfiles(t *testing.T) {
	got := parseProfiles([]byte("junk before\n[Profile1]\nPath=b\nName=B\n; comment\n# comment\n[profile0]\nPATH = a \nname=A\nDefault=1\nPath=ignored\n[Profile2]\nName=no path\n[General]\nPath=not a profile\n"))
	want := []tbProfile{{name: "A", path: "a", relative: true, isDefault: true}, {name: "B", path: "b", relative: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMailDirectories(t *testing.T) {
	prefs := `user_pref("mail.server.server1.directory", "C:\\Users\\\u592a\u90ce\\Mail");
user_pref("mail.server.server2.directory", "/home/me/\"q\"");
user_pref("mail.server.server3.directory-rel", "[ProfD]Mail/x");
user_pref("mail.server.server4.hostname", "/not/a/dir");
user_pref("mail.server.server5.directory", "broken\u12");
`
	got := tbMailDirectories([]byte(prefs))
	want := []string{`C:\Users\太郎\Mail`, `/home/me/"q"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// FuzzProfilesINI: any profiles.ini parses without a panic into profiles
// with a usable path.
func FuzzProfilesINI(f *testing.F) {
	f.Add([]byte("[Profile0]\nName=default\nIsRelative=1\nPath=Profiles/abc.default\nDefault=1\n"))
	f.Add([]byte("\xef\xbb\xbf[Profile0]\r\nName=既定\r\nIsRelative=0\r\nPath=C:\\Users\\me\\tb\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range parseProfiles(data) {
			if p.path == "" || strings.ContainsRune(p.path, 0) {
				t.Fatalf("profile with path %q", p.path)
			}
		}
	})
}

// FuzzPrefsJS: any prefs.js gives directories that, written back as a
// prefs.js string, read the same.
func FuzzPrefsJS(f *testing.F) {
	f.Add([]byte(`user_pref("mail.server.server1.directory", "C:\\Users\\me\\Mail\\Local Folders");` + "\n"))
	f.Add([]byte(`user_pref("mail.server.server2.directory", "/home/\u592a\u90ce/\"mail\"");`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range tbMailDirectories(data) {
			if d == "" || strings.ContainsRune(d, 0) {
				t.Fatalf("directory %q", d)
			}
			lit := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(d) + `"`
			back, ok := tbJSString(lit)
			if !ok || back != d {
				t.Fatalf("%q → %s → %q (%v)", d, lit, back, ok)
			}
		}
	})
}
