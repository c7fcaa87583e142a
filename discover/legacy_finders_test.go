package discover

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// lgPlant creates files (a name ending in "/" is a directory) below root.
func lgPlant(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if f[len(f)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// lgRegistry is a fake HKCU: key → value name → string.
func lgRegistry(m map[string]map[string]string) func(key, value string) (string, bool) {
	return func(key, value string) (string, bool) {
		v, ok := m[key][value]
		return v, ok
	}
}

func lgPaths(stores []Store) []string {
	var out []string
	for _, s := range stores {
		out = append(out, s.Format+" "+s.Client+" "+s.Path)
	}
	slices.Sort(out)
	return out
}

// TestLegacyFindersWindows: a fake Windows home with Becky! (registry and
// Documents), Outlook Express (the identity's store root from the
// registry, and an XP-style one found by scanning), Windows Live Mail and
// Windows Mail.
func TestLegacyFindersWindows(t *testing.T) {
	home := t.TempDir()
	local := filepath.Join(home, "AppData", "Local")
	roaming := filepath.Join(home, "AppData", "Roaming")
	lgPlant(t, home,
		"BeckyData/4a5b6c7d.mb/Mailbox.ini", "BeckyData/4a5b6c7d.mb/!!!!Inbox/Folder.idx",
		"Documents/Becky/0badf00d.mb/Mailbox.ini",
		"Documents/NotBecky/x.mb/", // a .mb directory without Mailbox.ini
		"AppData/Local/Identities/{11111111-2222-3333-4444-555555555555}/Microsoft/Outlook Express/Folders.dbx",
		"AppData/Local/Identities/{11111111-2222-3333-4444-555555555555}/Microsoft/Outlook Express/Inbox.dbx",
		"Local Settings/Application Data/Identities/{AAAAAAAA-2222-3333-4444-555555555555}/Microsoft/Outlook Express/Inbox.dbx",
		"AppData/Local/Identities/{EMPTY}/Microsoft/Outlook Express/",
		"AppData/Local/Microsoft/Windows Live Mail/Mail.MSMessageStore", "AppData/Local/Microsoft/Windows Live Mail/Inbox/{A}.eml",
		"AppData/Local/Microsoft/Windows Mail/Local Folders/Inbox/{B}.eml",
		"D-drive/Mail Store/Inbox/{C}.eml",
	)
	env := Env{GOOS: "windows", Home: home, AppData: roaming, LocalAppData: local, Registry: lgRegistry(map[string]map[string]string{
		`Software\RimArts\B2\Settings`: {"DataDir": filepath.Join(home, "BeckyData") + `\`},
		`Identities`:                   {"Default User ID": "{11111111-2222-3333-4444-555555555555}"},
		`Identities\{11111111-2222-3333-4444-555555555555}\Software\Microsoft\Outlook Express\5.0`: {
			"Store Root": `%UserProfile%\AppData\Local\Identities\{11111111-2222-3333-4444-555555555555}\Microsoft\Outlook Express`},
		`Software\Microsoft\Windows Live Mail`: {"Store Root": filepath.Join(home, "D-drive", "Mail Store")},
	})}
	got := lgPaths(append(append(append(findBecky(env), findOutlookExpress(env)...), findWindowsLiveMail(env)...), findAppleMail(env)...))
	want := []string{
		"becky Becky! " + filepath.Join(home, "BeckyData"),
		"becky Becky! " + filepath.Join(home, "Documents", "Becky"),
		"dbx Outlook Express " + filepath.Join(local, "Identities", "{11111111-2222-3333-4444-555555555555}", "Microsoft", "Outlook Express"),
		"dbx Outlook Express " + filepath.Join(home, "Local Settings", "Application Data", "Identities", "{AAAAAAAA-2222-3333-4444-555555555555}", "Microsoft", "Outlook Express"),
		"wlm Windows Live Mail " + filepath.Join(home, "D-drive", "Mail Store"),
		"wlm Windows Live Mail " + filepath.Join(local, "Microsoft", "Windows Live Mail"),
		"wlm Windows Mail " + filepath.Join(local, "Microsoft", "Windows Mail"),
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("found\n%q\nwant\n%q", got, want)
	}
	// Through Find: every store once.
	all := Find(env)
	for _, w := range want {
		found := false
		for _, s := range all {
			if s.Format+" "+s.Client+" "+s.Path == w {
				found = true
			}
		}
		if !found {
			t.Errorf("Find does not list %s", w)
		}
	}
}

// TestLegacyFindersMac: Apple Mail's newest V<n> directory is found;
// nothing is found in an empty home.
func TestLegacyFindersMac(t *testing.T) {
	home := t.TempDir()
	lgPlant(t, home, "Library/Mail/V2/MailData/x", "Library/Mail/V10/MailData/Envelope Index", "Library/Mail/V10/Mailboxes/A.mbox/Info.plist",
		"Library/Mail/V11/", "Library/Mail/Vx/MailData/")
	env := Env{GOOS: "darwin", Home: home}
	got := findAppleMail(env)
	if len(got) != 1 || got[0].Path != filepath.Join(home, "Library", "Mail", "V10") || got[0].Format != "applemail" || got[0].Client != "Apple Mail" {
		t.Errorf("Apple Mail: %+v", got)
	}
	empty := Env{GOOS: "darwin", Home: t.TempDir()}
	for name, f := range map[string]Finder{"becky": findBecky, "dbx": findOutlookExpress, "wlm": findWindowsLiveMail, "applemail": findAppleMail} {
		if s := f(empty); len(s) != 0 {
			t.Errorf("%s in an empty home: %+v", name, s)
		}
		if s := f(Env{}); len(s) != 0 {
			t.Errorf("%s with no env: %+v", name, s)
		}
	}
}

func TestLgExpandPath(t *testing.T) {
	env := Env{Home: "/home/taro", AppData: "/home/taro/AppData/Roaming", LocalAppData: "/home/taro/AppData/Local"}
	if filepath.Separator != '/' {
		t.Skip("slash paths")
	}
	for in, want := range map[string]string{
		`%USERPROFILE%\Local Settings\x`: "/home/taro/Local Settings/x",
		`%LocalAppData%\Identities\`:     "/home/taro/AppData/Local/Identities",
		`%appdata%\RimArts`:              "/home/taro/AppData/Roaming/RimArts",
	} {
		if got := lgExpandPath(env, in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
