package discover

import (
	"os"
	"path/filepath"
	"strings"
)

// Windows Live Mail keeps its store in %LOCALAPPDATA%\Microsoft\Windows
// Live Mail (moved: HKCU\Software\Microsoft\Windows Live Mail\Store Root);
// Windows Mail (Vista) in %LOCALAPPDATA%\Microsoft\Windows Mail (HKCU\
// Software\Microsoft\Windows Mail\Store Root). One .eml file per message.

func init() { Register("wlm", findWindowsLiveMail) }

func findWindowsLiveMail(env Env) []Store {
	type cand struct{ dir, client string }
	var candidates []cand
	for _, p := range []struct{ key, client, dir string }{
		{`Software\Microsoft\Windows Live Mail`, "Windows Live Mail", "Windows Live Mail"},
		{`Software\Microsoft\Windows Mail`, "Windows Mail", "Windows Mail"},
	} {
		if env.Registry != nil {
			if v, ok := env.Registry(p.key, "Store Root"); ok && strings.TrimSpace(v) != "" {
				candidates = append(candidates, cand{lgExpandPath(env, v), p.client})
			}
		}
		if env.LocalAppData != "" {
			candidates = append(candidates, cand{filepath.Join(env.LocalAppData, "Microsoft", p.dir), p.client})
		}
	}
	var out []Store
	for _, c := range candidates {
		if isWLMStore(c.dir) {
			out = lgAddStore(out, Store{Path: c.dir, Format: "wlm", Client: c.client, Name: c.client})
		}
	}
	return out
}

// isWLMStore reports whether dir looks like a Windows (Live) Mail store:
// its database, an account file, or folders of .eml files.
func isWLMStore(dir string) bool {
	entries := lgList(dir)
	for _, e := range entries {
		n := strings.ToLower(e.Name())
		if !e.IsDir() && (n == "mail.msmessagestore" || strings.HasSuffix(n, ".oeaccount")) {
			return true
		}
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if lgHas(sub, func(f os.DirEntry) bool { return !f.IsDir() && lgExt(f.Name(), ".eml") }) {
			return true
		}
		if strings.EqualFold(e.Name(), "Local Folders") || strings.EqualFold(e.Name(), "Storage Folders") {
			return true
		}
	}
	return false
}
