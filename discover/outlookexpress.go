package discover

import (
	"os"
	"path/filepath"
	"strings"
)

// Outlook Express 5/6 keeps one store per identity: the path is
// HKCU\Identities\<id>\Software\Microsoft\Outlook Express\5.0\Store Root
// (the identity from HKCU\Identities\Default User ID or Last User ID), by
// default %LOCALAPPDATA%\Identities\<id>\Microsoft\Outlook Express (XP:
// %USERPROFILE%\Local Settings\Application Data\Identities\…). A store
// holds Folders.dbx and one .dbx file per folder.

func init() { Register("dbx", findOutlookExpress) }

func findOutlookExpress(env Env) []Store {
	var candidates []string
	if env.Registry != nil {
		for _, which := range []string{"Default User ID", "Last User ID"} {
			id, ok := env.Registry(`Identities`, which)
			if !ok || strings.TrimSpace(id) == "" {
				continue
			}
			key := `Identities\` + strings.TrimSpace(id) + `\Software\Microsoft\Outlook Express\5.0`
			if v, ok := env.Registry(key, "Store Root"); ok && strings.TrimSpace(v) != "" {
				candidates = append(candidates, lgExpandPath(env, v))
			}
		}
	}
	var roots []string
	if env.LocalAppData != "" {
		roots = append(roots, filepath.Join(env.LocalAppData, "Identities"))
	}
	if env.Home != "" {
		roots = append(roots, filepath.Join(env.Home, "Local Settings", "Application Data", "Identities"))
	}
	for _, r := range roots {
		for _, e := range lgList(r) {
			if e.IsDir() {
				candidates = append(candidates, filepath.Join(r, e.Name(), "Microsoft", "Outlook Express"))
			}
		}
	}
	var out []Store
	for _, dir := range candidates {
		if lgHas(dir, func(e os.DirEntry) bool { return !e.IsDir() && lgExt(e.Name(), ".dbx") }) {
			out = lgAddStore(out, Store{Path: dir, Format: "dbx", Client: "Outlook Express", Name: "Outlook Express"})
		}
	}
	return out
}
