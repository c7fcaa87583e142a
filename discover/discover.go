// Package discover finds the legacy mail stores on this machine without
// being told where they are: the console's setup step "Old mail" lists what
// it returns, and `popbridge import` can suggest it.
//
// Implementation notes:
//
//   - Every mail program popbridge reads has a Finder, registered from an
//     init function in its own file (thunderbird.go, pst.go, becky.go, …).
//   - Finders only look: they stat and read small index files (profiles.ini,
//     Folders.dbx headers, Mailbox.ini) read-only, never open an archive for
//     writing and never lock it. A store its program holds open is still
//     listed; Scan reports it as locked with a plain explanation.
//   - Finders take everything from Env (home directory, %APPDATA%,
//     %LOCALAPPDATA%, a registry reader), so tests plant a fake home with
//     stores for every OS and run each finder against it on any OS.
package discover

import (
	"sort"
	"sync"
)

// Store is one legacy mail store found on this machine.
type Store struct {
	// Path is what goes into [[archive.sources]] path.
	Path string `json:"path"`
	// Format is the archive format name as in the config
	// (thunderbird, pst, mbox, maildir, eml, becky, dbx, wlm, applemail, …).
	Format string `json:"format"`
	// Client is the mail program's name as users know it
	// ("Thunderbird", "Outlook", "Becky!", "Outlook Express", …).
	Client string `json:"client"`
	// Name is a suggested source name (profile or account name); may be "".
	Name string `json:"name,omitempty"`
}

// Env says where to look. Zero fields are simply not searched.
type Env struct {
	GOOS         string // "windows", "darwin", "linux"
	Home         string // the user's home directory
	AppData      string // %APPDATA% (Windows)
	LocalAppData string // %LOCALAPPDATA% (Windows)
	// Registry reads a string value under HKEY_CURRENT_USER (key without the
	// hive, e.g. `Software\RimArts\B2\Settings`); nil off Windows. Values
	// may be CP932 on old installs: the reader returns UTF-8.
	Registry func(key, value string) (string, bool)
}

// Finder returns the stores of one mail program found under env.
type Finder func(env Env) []Store

var (
	mu      sync.Mutex
	finders = map[string]Finder{}
)

// Register adds a finder under a unique name (the format it finds). It is
// called from init functions.
func Register(name string, f Finder) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := finders[name]; dup {
		panic("discover: finder " + name + " registered twice")
	}
	finders[name] = f
}

// Find runs every registered finder and returns what they found, without
// duplicates (by path), sorted by client then path.
func Find(env Env) []Store {
	mu.Lock()
	fs := make([]Finder, 0, len(finders))
	for _, f := range finders {
		fs = append(fs, f)
	}
	mu.Unlock()
	seen := map[string]bool{}
	var out []Store
	for _, f := range fs {
		for _, s := range f(env) {
			if seen[s.Path] {
				continue
			}
			seen[s.Path] = true
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Client != out[j].Client {
			return out[i].Client < out[j].Client
		}
		return out[i].Path < out[j].Path
	})
	return out
}
