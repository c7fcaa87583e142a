package discover

import (
	"os"
	"path/filepath"
	"strconv"
)

// Apple Mail keeps its mail in ~/Library/Mail/V<n> (n grows with macOS
// versions; an upgrade copies the older data into the new directory).

func init() { Register("applemail", findAppleMail) }

func findAppleMail(env Env) []Store {
	if env.Home == "" {
		return nil
	}
	root := filepath.Join(env.Home, "Library", "Mail")
	best, bestN := "", -1
	for _, e := range lgList(root) {
		n := e.Name()
		if !e.IsDir() || len(n) < 2 || n[0] != 'V' {
			continue
		}
		v, err := strconv.Atoi(n[1:])
		if err != nil || v <= bestN {
			continue
		}
		dir := filepath.Join(root, n)
		if lgHas(dir, func(f os.DirEntry) bool { return f.IsDir() && (f.Name() == "Mailboxes" || f.Name() == "MailData") }) {
			best, bestN = dir, v
		}
	}
	if best == "" {
		return nil
	}
	return []Store{{Path: best, Format: "applemail", Client: "Apple Mail", Name: "Apple Mail"}}
}
