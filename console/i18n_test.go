package console

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/desktop"
	"github.com/popbridge/popbridge/uninstall"
)

// TestCatalogComplete: every text the templates and console.js use exists
// in every language, and so does every text picked by a code at run time
// (problem kinds, migration states, error codes, upstream failures).
func TestCatalogComplete(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{}
	tmplKey := regexp.MustCompile(`\.T "([a-zA-Z0-9_.\-]+)"|In \. "([a-zA-Z0-9_.\-]+)"`)
	jsKey := regexp.MustCompile(`\bt\('([a-zA-Z0-9_.\-]+)'`)
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(p)
		var re *regexp.Regexp
		switch {
		case strings.HasSuffix(p, ".html"):
			re = tmplKey
		case strings.HasSuffix(p, ".js"):
			re = jsKey
		default:
			return nil
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			k := m[1]
			if k == "" && len(m) > 2 {
				k = m[2]
			}
			if strings.HasSuffix(k, ".") {
				continue // a family picked at run time: listed below
			}
			used[k] = p
		}
		// Keys listed in arrays: ['move.col.from', …].
		for _, m := range regexp.MustCompile(`'(move\.col\.[a-zA-Z]+)'`).FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = p
		}
		return nil
	})
	if len(used) < 150 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
	for _, p := range pageNames {
		used["page."+p+".title"] = "pages.go"
	}
	for _, n := range nav {
		used[n.Key] = "pages.go nav"
	}
	for _, k := range []string{"auth", "connect", "tls", "timeout"} {
		used["error.upstream-"+k] = "MigrationState codes"
	}
	for _, k := range []string{"archive", "archive-locked", "login-refused", "upstream", "pop3", "start", "migrate", "verify", "sign-in"} {
		used["problem."+k] = "control.Problem kinds"
	}
	for _, k := range []string{"idle", "running", "pausing", "paused", "done", "incomplete", "failed"} {
		used["move.state."+k] = "control.MigrationState states"
	}
	for _, k := range []string{"network", "internal", "bad-request", "no-upstream", "not-running", "busy", "nothing", "not-found", "outside-home",
		"no-settings", "invalid", "over-quota", "unsupported", "unauthorized", "weak-password", "csrf", "autostart", "refused", "sign-in"} {
		used["error."+k] = "control error codes"
	}
	for _, k := range []string{"auth", "tls", "connect", "timeout", "login-disabled", "privacy-required", "protocol", "disconnected", "credentials", "config", "sign-in"} {
		used["upstream."+k] = "upstream.ErrorKind"
	}
	for _, k := range []string{"auth", "tls", "connect", "timeout", "protocol", "credentials", "config"} {
		used["pop."+k] = "control.POPResult kinds"
	}
	for _, k := range []string{autostart.ProblemMissingExe, autostart.ProblemMissingConfig, autostart.ProblemOtherExe, autostart.ProblemDisabledByOS,
		autostart.ProblemNotLoaded, autostart.ProblemNotEnabled, autostart.ProblemUnrecorded, autostart.ProblemEdited} {
		used["autostart.problem."+k] = "autostart.Problem codes"
	}
	for _, k := range []string{autostart.NoteNotLoaded, autostart.NoteNextLogin, autostart.NoteStillRunning, autostart.NoteConsoleWindow,
		autostart.NoteStartupEnabled, autostart.NoteXDGFallback, autostart.NoteNothing, autostart.NoteEdited} {
		used["autostart.note."+k] = "autostart.Note codes"
	}
	for _, k := range []string{desktop.ReasonNoUserSystemd, desktop.ReasonUnsupported, desktop.ReasonProgram, desktop.ReasonFailed} {
		used["autostart.error."+k] = "desktop autostart error reasons"
	}
	for _, k := range []string{uninstall.RefusedPath, uninstall.RefusedRoot, uninstall.RefusedHome, uninstall.RefusedArchive, uninstall.RefusedRunning} {
		used["uninstall.refused."+k] = "uninstall.Plan refusal codes"
	}
	for _, k := range []string{"microsoft", "google"} {
		used["setup.mb.oauthClientHelp."+k] = "sign-in providers"
	}
	for _, k := range []string{"Sent", "Drafts", "Trash", "Junk", "Archive"} {
		used["special."+k] = "special-use attributes"
	}
	for _, k := range []string{"imaps", "imap"} {
		used["dev.listener."+k] = "listener kinds"
	}
	for _, k := range []string{"microsoft", "google"} {
		used["setup.mb.signIn."+k] = "sign-in providers"
	}
	for k, where := range used {
		for _, lang := range languages {
			if _, ok := cat[lang][k]; !ok {
				t.Errorf("%s uses %q, which has no %s text", where, k, lang)
			}
		}
	}
	// And nothing in the catalog is left over.
	for _, k := range cat.keys() {
		if _, ok := used[k]; !ok && k != "lang.name" {
			t.Errorf("text %q is not used", k)
		}
	}
	// Placeholders match between languages.
	ph := regexp.MustCompile(`\{[a-zA-Z]+\}`)
	for _, k := range cat.keys() {
		en, ja := ph.FindAllString(cat["en"][k], -1), ph.FindAllString(cat["ja"][k], -1)
		if strings.Join(sorted(en), ",") != strings.Join(sorted(ja), ",") {
			t.Errorf("%q: placeholders %v in English, %v in Japanese", k, en, ja)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestDeviceSteps: the certificate steps name the places on each device
// as the device names them, in both languages.
func TestDeviceSteps(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, en, ja string }{
		{"dev.apple.step3", "Settings > General > About > Certificate Trust Settings", "「設定」>「一般」>「情報」>「証明書信頼設定」"},
		{"dev.android.ca2", "Settings > Security > Encryption & credentials > Install a certificate > CA certificate", "「設定」>「セキュリティ」>「暗号化と認証情報」>「証明書のインストール」>「CA 証明書」"},
		{"dev.android.ca3", "accept the certificate in the app", "アプリで証明書を受け入れて"},
		{"dev.tb.ca1", "Settings > Privacy & Security", "「設定」>「プライバシーとセキュリティ」"},
		{"dev.tb.ca2", "Authorities tab", "「認証局証明書」タブ"},
		{"dev.win.ca2", "Trusted Root Certification Authorities", "「信頼されたルート証明機関」"},
		{"set.quitStart", "popbridgew.exe", "popbridgew.exe"},
		{"stopped.text", "popbridge has stopped; you can close this tab.", "このタブを閉じてかまいません"},
	} {
		if !strings.Contains(cat["en"][c.key], c.en) || !strings.Contains(cat["ja"][c.key], c.ja) {
			t.Errorf("%s: en %q, ja %q", c.key, cat["en"][c.key], cat["ja"][c.key])
		}
	}
}
