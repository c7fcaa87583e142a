package discover

import (
	"path/filepath"
	"reflect"
	"testing"
)

// TestPSTFinder plants .pst files where Outlook keeps them (and a few it
// must not take) and checks exactly which are found.
func TestPSTFinder(t *testing.T) {
	home := t.TempDir()
	local := filepath.Join(home, "AppData", "Local")
	plantStores(t, home, map[string]string{
		"Documents/Outlook Files/Outlook.pst":         "!BDN",
		"Documents/Outlook Files/~$Outlook.pst":       "lock file",
		"Documents/Outlook Files/me@example.com.ost":  "!BDN",
		"Documents/Outlook Files/archive.pst/":        "",
		"Documents/export-2015.PST":                   "!BDN",
		"OneDrive/ドキュメント/Outlook Files/会社.pst":        "!BDN",
		"AppData/Local/Microsoft/Outlook/Outlook.pst": "!BDN",
		"AppData/Local/Microsoft/Outlook/extend.dat":  "",
		"Documents/Outlook Files/sub/deeper.pst":      "!BDN",
		"Desktop/not-looked-at.pst":                   "!BDN",
	})
	pst := func(name string, parts ...string) Store {
		return Store{Path: filepath.Join(append([]string{home}, parts...)...), Format: "pst", Client: "Outlook", Name: name}
	}
	win := []Store{
		pst("Outlook", "Documents", "Outlook Files", "Outlook.pst"),
		pst("export-2015", "Documents", "export-2015.PST"),
		pst("会社", "OneDrive", "ドキュメント", "Outlook Files", "会社.pst"),
		pst("Outlook", "AppData", "Local", "Microsoft", "Outlook", "Outlook.pst"),
	}
	for _, c := range []struct {
		env  Env
		want []Store
	}{
		{Env{GOOS: "windows", Home: home, LocalAppData: local}, win},
		{Env{GOOS: "windows", Home: home}, win},
		{Env{GOOS: "darwin", Home: home}, []Store{
			pst("Outlook", "Documents", "Outlook Files", "Outlook.pst"),
			pst("export-2015", "Documents", "export-2015.PST"),
		}},
		{Env{GOOS: "linux", Home: filepath.Join(home, "nobody")}, nil},
	} {
		if got := findPST(c.env); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q:\n got %+v\nwant %+v", c.env.GOOS, c.env.LocalAppData, got, c.want)
		}
	}
}
