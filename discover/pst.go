package discover

import (
	"os"
	"path/filepath"
	"strings"
)

// Outlook keeps the .pst files of POP accounts (and the ones it exports)
// in Documents\Outlook Files since Outlook 2010 (also under OneDrive when
// Documents is backed up there: OneDrive\Documents, OneDrive\ドキュメント),
// and in %LOCALAPPDATA%\Microsoft\Outlook in older versions. Exports often
// land in Documents itself. Off Windows a .pst is an export someone
// copied: Documents and Documents/Outlook Files are looked at.
//
// Outlook holds the .pst of a running profile open; it is still listed
// here, and ScanStore reports it as locked.

func init() { Register("pst", findPST) }

// pstDirs lists the directories whose .pst files are stores.
func pstDirs(env Env) []string {
	var dirs []string
	add := func(parts ...string) {
		for _, p := range parts {
			if p == "" {
				return
			}
		}
		dirs = append(dirs, filepath.Join(parts...))
	}
	switch env.GOOS {
	case "windows":
		for _, docs := range []string{"Documents", "My Documents", filepath.Join("OneDrive", "Documents"), filepath.Join("OneDrive", "ドキュメント")} {
			add(env.Home, docs, "Outlook Files")
			add(env.Home, docs)
		}
		if env.LocalAppData != "" {
			add(env.LocalAppData, "Microsoft", "Outlook")
		} else {
			add(env.Home, "AppData", "Local", "Microsoft", "Outlook")
		}
	default:
		add(env.Home, "Documents", "Outlook Files")
		add(env.Home, "Documents")
	}
	return dirs
}

func findPST(env Env) []Store {
	var out []Store
	seen := map[string]bool{}
	for _, dir := range pstDirs(env) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if !strings.EqualFold(filepath.Ext(name), ".pst") || strings.HasPrefix(name, "~") {
				continue
			}
			p := filepath.Join(dir, name)
			if seen[p] {
				continue
			}
			// Stat, not Open: a .pst Outlook holds is still found.
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				continue
			}
			seen[p] = true
			out = append(out, Store{Path: p, Format: "pst", Client: "Outlook", Name: strings.TrimSuffix(name, filepath.Ext(name))})
		}
	}
	return out
}
