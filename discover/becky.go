package discover

import (
	"os"
	"path/filepath"
	"strings"
)

// Becky! Internet Mail 2 keeps its data folder in
// HKCU\Software\RimArts\B2\Settings\DataDir; by default C:\Becky!\<user>\
// or Documents\Becky. A data folder holds one "<hex>.mb" directory per
// mailbox.

func init() { Register("becky", findBecky) }

func findBecky(env Env) []Store {
	var candidates []string
	if env.Registry != nil {
		if v, ok := env.Registry(`Software\RimArts\B2\Settings`, "DataDir"); ok && strings.TrimSpace(v) != "" {
			candidates = append(candidates, lgExpandPath(env, v))
		}
	}
	if env.Home != "" {
		candidates = append(candidates, filepath.Join(env.Home, "Documents", "Becky"), filepath.Join(env.Home, "My Documents", "Becky"))
		if vol := filepath.VolumeName(env.Home); vol != "" {
			// C:\Becky!\<user>\: one data folder per Becky! user.
			root := vol + string(filepath.Separator) + "Becky!"
			candidates = append(candidates, root)
			for _, e := range lgList(root) {
				if e.IsDir() {
					candidates = append(candidates, filepath.Join(root, e.Name()))
				}
			}
		}
	}
	if env.AppData != "" {
		candidates = append(candidates, filepath.Join(env.AppData, "RimArts", "B2"))
	}
	var out []Store
	for _, dir := range candidates {
		if isBeckyDataDir(dir) {
			out = lgAddStore(out, Store{Path: dir, Format: "becky", Client: "Becky!", Name: "Becky"})
		}
	}
	return out
}

// isBeckyDataDir reports whether dir holds a Becky! mailbox: a "*.mb"
// directory with Mailbox.ini.
func isBeckyDataDir(dir string) bool {
	return lgHas(dir, func(e os.DirEntry) bool {
		if !e.IsDir() || !lgExt(e.Name(), ".mb") {
			return false
		}
		return lgHas(filepath.Join(dir, e.Name()), func(f os.DirEntry) bool {
			return !f.IsDir() && strings.EqualFold(f.Name(), "Mailbox.ini")
		})
	})
}
