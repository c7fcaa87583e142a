package discover

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Helpers shared by the finders of Becky!, Outlook Express, Windows Live
// Mail and Apple Mail. They only stat and list directories.

// lgList returns the entries of dir (nil if it cannot be read).
func lgList(dir string) []os.DirEntry {
	entries, _ := os.ReadDir(dir)
	return entries
}

// lgHas reports whether dir holds an entry for which match is true.
func lgHas(dir string, match func(os.DirEntry) bool) bool {
	return slices.ContainsFunc(lgList(dir), match)
}

// lgExt reports whether name has the extension ext (case-insensitive).
func lgExt(name, ext string) bool {
	return strings.EqualFold(filepath.Ext(name), ext)
}

// lgExpandPath turns a registry path value into a path of this
// machine: %USERPROFILE%, %APPDATA% and %LOCALAPPDATA% from env, and, off
// Windows (tests), backslashes as slashes.
func lgExpandPath(env Env, v string) string {
	v = strings.TrimSpace(v)
	for _, r := range []struct{ name, val string }{
		{"%USERPROFILE%", env.Home}, {"%APPDATA%", env.AppData}, {"%LOCALAPPDATA%", env.LocalAppData},
	} {
		if r.val == "" {
			continue
		}
		for {
			i := strings.Index(strings.ToUpper(v), r.name)
			if i < 0 {
				break
			}
			v = v[:i] + r.val + v[i+len(r.name):]
		}
	}
	if filepath.Separator == '/' {
		v = strings.ReplaceAll(v, `\`, "/")
	}
	return filepath.Clean(v)
}

// lgAddStore appends s unless its path is already listed or empty.
func lgAddStore(out []Store, s Store) []Store {
	if s.Path == "" || slices.ContainsFunc(out, func(o Store) bool { return o.Path == s.Path }) {
		return out
	}
	return append(out, s)
}
