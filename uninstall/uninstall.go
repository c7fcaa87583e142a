// Package uninstall takes popbridge off this computer, leaving only what
// the user chooses to keep: `popbridge uninstall` and the console's button
// call Plan (to show what will happen) and Run.
//
// Implementation notes:
//
//   - Always removed: the autostart entry (exactly what autostart made).
//   - Removed only when asked (RemoveData): the data dir — the index, the
//     bridge's own Maildir (messages copied or moved into Local/… that
//     exist nowhere else: Plan counts them so the confirmation can say so),
//     sign-in tokens, certificates and logs.
//   - Never removed: the archives. The data dir is refused when it is, or
//     contains, or lies inside an [[archive.sources]] path (symlinks
//     resolved), when it is a home or root directory, and while a bridge
//     runs on it. os.RemoveAll does not follow symbolic links, so a link
//     inside the data dir never takes its target with it.
//   - Also never removed: the config file and the program itself (it may be
//     running this); the report lists them as left.
package uninstall

import (
	"context"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/units"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/control"
)

// Options say what to uninstall.
type Options struct {
	// DataDir is the bridge's data dir ("" when there is no config).
	DataDir string
	// Sources are the [[archive.sources]] paths: never deleted.
	Sources []string
	// Config is the config file's path (left in place; reported).
	Config string
	// Exe is the program (left in place; reported).
	Exe string
	// RemoveData deletes the data dir too.
	RemoveData bool
	// Autostart is the system the autostart entry is on; nil: DefaultEnv.
	Autostart *autostart.Env
	// Self: the caller is the popbridge running on DataDir (the console's
	// button), which stops before the data dir is removed; Check does not
	// refuse the data dir for it.
	Self bool
}

// Plan is what Run would do.
type Plan struct {
	Autostart  *autostart.Status `json:"autostart"`
	DataDir    string            `json:"data_dir,omitempty"`
	DataExists bool              `json:"data_exists"`
	DataBytes  int64             `json:"data_bytes"`
	// OwnMessages are messages in the bridge's own Maildir (copied or
	// moved into Local/…): deleted with the data dir.
	OwnMessages int `json:"own_messages"`
	// Refused says why the data dir will not be deleted ("" when it can);
	// RefusedCode says which reason: one of the Refused… constants.
	Refused     string `json:"refused,omitempty"`
	RefusedCode string `json:"refused_code,omitempty"`
	// Kept lists what stays, with why.
	Kept []string `json:"kept"`
}

// Report is what Run did.
type Report struct {
	Removed []string `json:"removed"`
	Kept    []string `json:"kept"`
	Notes   []string `json:"notes,omitempty"`
}

// Reasons a data dir is not deleted (Plan.RefusedCode).
const (
	RefusedPath    = "path"    // its path cannot be resolved
	RefusedRoot    = "root"    // the root of a file system
	RefusedHome    = "home"    // the home directory, or a directory holding it
	RefusedArchive = "archive" // an archive source, holds one or lies inside one
	RefusedRunning = "running" // a popbridge runs on it
)

// ErrRefused wraps the reason the data dir cannot be deleted.
var ErrRefused = errors.New("will not delete the data dir")

func (o *Options) env() (autostart.Env, error) {
	if o.Autostart != nil {
		return *o.Autostart, nil
	}
	return autostart.DefaultEnv()
}

// Check returns the plan for opts.
func Check(ctx context.Context, opts Options) (*Plan, error) {
	env, err := opts.env()
	if err != nil {
		return nil, err
	}
	st, err := autostart.Check(ctx, env, "")
	if err != nil {
		return nil, err
	}
	p := &Plan{Autostart: st, DataDir: opts.DataDir}
	for _, s := range opts.Sources {
		p.Kept = append(p.Kept, "archive "+s+" (never deleted)")
	}
	if opts.Config != "" {
		p.Kept = append(p.Kept, "config file "+opts.Config+" (delete it yourself if you no longer need it)")
	}
	if opts.Exe != "" {
		p.Kept = append(p.Kept, "the program "+opts.Exe+" (delete it, or the folder you unpacked it in, yourself)")
	}
	if opts.DataDir == "" {
		return p, nil
	}
	p.RefusedCode, p.Refused = refuse(ctx, opts)
	if _, err := os.Lstat(opts.DataDir); err == nil {
		p.DataExists = true
		// Not worth walking a home or root directory that stays anyway.
		if p.Refused == "" || p.RefusedCode == RefusedRunning {
			p.DataBytes, p.OwnMessages = measure(opts.DataDir)
		}
	}
	if !opts.RemoveData || p.Refused != "" {
		if p.DataExists {
			p.Kept = append(p.Kept, "data dir "+opts.DataDir+" (index, your own Local/ messages, sign-ins, logs)")
		}
	}
	return p, nil
}

// Run removes the autostart entry and, if asked, the data dir. It refuses
// (ErrRefused) before changing anything when the data dir may not go.
func Run(ctx context.Context, opts Options) (*Report, error) {
	p, err := Check(ctx, opts)
	if err != nil {
		return nil, err
	}
	if opts.RemoveData && p.Refused != "" && p.DataExists {
		return nil, fmt.Errorf("%w %s: %s", ErrRefused, opts.DataDir, p.Refused)
	}
	env, _ := opts.env()
	rep := &Report{Kept: p.Kept}
	res, err := autostart.Disable(ctx, env)
	if err != nil {
		return rep, fmt.Errorf("remove autostart: %w", err)
	}
	if len(res.Changed) > 0 {
		rep.Removed = append(rep.Removed, "autostart entry ("+strings.Join(res.Changed, "; ")+")")
	}
	for _, n := range res.Notes {
		rep.Notes = append(rep.Notes, n.Text)
	}
	if opts.RemoveData && p.DataExists {
		if err := os.RemoveAll(opts.DataDir); err != nil {
			return rep, fmt.Errorf("delete the data dir %s: %w (some files may be in use: stop popbridge and try again)", opts.DataDir, err)
		}
		rep.Removed = append(rep.Removed, fmt.Sprintf("data dir %s (%s)", opts.DataDir, humanBytes(p.DataBytes)))
	}
	return rep, nil
}

// refuse returns why the data dir must not be deleted (a Refused… code
// and the words), or "", "".
func refuse(ctx context.Context, opts Options) (code, why string) {
	dd, err := canonical(opts.DataDir)
	if err != nil {
		return RefusedPath, "cannot resolve its path: " + err.Error()
	}
	if dd == filepath.Dir(dd) {
		return RefusedRoot, "it is the root of a file system"
	}
	if home, err := os.UserHomeDir(); err == nil {
		if h, err := canonical(home); err == nil && (h == dd || within(dd, h)) {
			return RefusedHome, "it is your home directory or contains it"
		}
	}
	for _, s := range opts.Sources {
		sp, err := canonical(s)
		if err != nil {
			continue // a source that is gone cannot be harmed
		}
		switch {
		case sp == dd:
			return RefusedArchive, "it is the archive source " + s
		case within(dd, sp):
			return RefusedArchive, "it contains the archive source " + s
		case within(sp, dd):
			return RefusedArchive, "it is inside the archive source " + s
		}
	}
	if opts.Self {
		return "", ""
	}
	if pid, held := control.Held(opts.DataDir); held {
		if pid == 0 {
			return RefusedRunning, "popbridge is running on it: quit it first"
		}
		return RefusedRunning, fmt.Sprintf("popbridge is running on it (pid %d): quit it first", pid)
	}
	if c, err := control.Dial(ctx, opts.DataDir); err == nil {
		return RefusedRunning, fmt.Sprintf("popbridge is running on it (pid %d): quit it first", c.PID())
	}
	return "", ""
}

// canonical is the absolute path with symlinks resolved as far as it
// exists.
func canonical(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	// Resolve the part that exists.
	dir, base := filepath.Split(p)
	if dir == p || dir == "" {
		return p, nil
	}
	d, err := canonical(filepath.Clean(dir))
	if err != nil {
		return "", err
	}
	return filepath.Join(d, base), nil
}

// within reports whether child is strictly inside parent.
func within(parent, child string) bool {
	rel, err := filepath.Rel(parent, child)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// measure returns the data dir's size and the messages in the bridge's
// own Maildir (files under maildir/**/cur and new).
func measure(dir string) (bytes int64, own int) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				bytes += info.Size()
			}
			parent := filepath.Base(filepath.Dir(p))
			if (parent == "cur" || parent == "new") && strings.Contains(p, string(filepath.Separator)+"maildir"+string(filepath.Separator)) {
				own++
			}
		}
		return nil
	})
	return bytes, own
}

func humanBytes(n int64) string { return units.Bytes(n) }
