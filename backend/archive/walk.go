package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Walk finds the folders of the archive at root. format FormatAuto (or "")
// means Detect. err is returned only when root itself is unusable (missing,
// unreadable, not a recognised archive, a corrupt or password-protected
// PST) and names it; everything skipped or suspicious below root is a
// Problem and the rest is walked.
// Folders are sorted by Path; see the package notes for their invariants.
//
// Layouts:
//   - mbox file: one folder, empty Path.
//   - Thunderbird profile (prefs.js or Mail/): every account directory under
//     Mail/ ("Local Folders", "pop.example.com", …) is the first Path
//     component; ImapMail/ and News/ are ignored. A directory holding
//     "Local Folders" is walked the same way.
//   - Thunderbird mail directory (or a directory of mbox files with
//     FormatMbox): each mbox file is a folder, "<name>.sbd/" holds the
//     subfolders of <name> (a NoSelect container if the <name> file is
//     missing), a directory holding cur/ is a Maildir-store folder.
//   - Maildir: the root is the folder with empty Path (INBOX); Maildir++
//     ".A.B" directories are the folders A and A/B, names decoded from
//     modified UTF-7; plain subdirectories holding cur/ (Dovecot's fs
//     layout) are subfolders too.
//   - eml: every directory holding *.eml files is a folder (the root with
//     empty Path).
//   - pst: the mail folders below the PST's top folder (KindPST, Loc the
//     file, Ref for ScanPST); see walkPST.
//   - becky, dbx, wlm, applemail: see walkBecky, walkDBX, walkWLM,
//     walkAppleMail. Eudora mail directories ("*.mbx" mbox files, "*.fol"
//     folder directories, descmap.pce names) are Thunderbird-style mail
//     directories.
//
// Symbolic links to directories are not followed (reported as Problems).
func Walk(root string, format Format) (folders []Folder, problems []Problem, err error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, fmt.Errorf("archive %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	if format == "" || format == FormatAuto {
		if format, err = Detect(abs); err != nil {
			return nil, nil, err
		}
	}
	w := &walker{}
	switch format {
	case FormatMbox:
		if fi.Mode().IsRegular() {
			// Leading junk, or no message at all, is ScanMbox's to report.
			if _, err := readHead(abs, 5); err != nil {
				return nil, nil, fmt.Errorf("archive: %w", err)
			}
			w.folders = append(w.folders, Folder{Kind: KindMbox, Loc: abs})
			break
		}
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %s: neither a regular file nor a directory", ErrUnknownFormat, abs)
		}
		if _, err := os.ReadDir(abs); err != nil {
			return nil, nil, fmt.Errorf("archive: %w", err)
		}
		w.mailDir(abs, nil, 0)
	case FormatThunderbird:
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %s: a Thunderbird source must be a profile or mail directory", ErrUnknownFormat, abs)
		}
		switch {
		case isProfile(abs):
			mail := filepath.Join(abs, "Mail")
			if !isDir(mail) {
				w.problems = append(w.problems, problem(abs, -1, "Thunderbird profile without a Mail directory: no local folders"))
				break
			}
			if err := w.accounts(mail); err != nil {
				return nil, nil, fmt.Errorf("archive %q: %w", abs, err)
			}
		case isDir(filepath.Join(abs, "Local Folders")) && filepath.Base(abs) != "Local Folders":
			if err := w.accounts(abs); err != nil {
				return nil, nil, fmt.Errorf("archive %q: %w", abs, err)
			}
		default:
			if _, err := os.ReadDir(abs); err != nil {
				return nil, nil, fmt.Errorf("archive: %w", err)
			}
			w.mailDir(abs, nil, 0)
		}
	case FormatMaildir:
		if !fi.IsDir() || !isMaildir(abs) {
			return nil, nil, fmt.Errorf("%w: %s: not a Maildir (no cur/ and new/ directories)", ErrUnknownFormat, abs)
		}
		w.folders = append(w.folders, Folder{Kind: KindMaildir, Loc: abs})
		w.maildir(abs, nil, 0)
	case FormatEML:
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %s: an eml source must be a directory of .eml files", ErrUnknownFormat, abs)
		}
		if _, err := os.ReadDir(abs); err != nil {
			return nil, nil, fmt.Errorf("archive: %w", err)
		}
		w.emlDir(abs, nil, 0)
	case FormatPST:
		return walkPST(abs)
	case FormatBecky:
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %s: a Becky! source must be its data directory (Settings > Data folder)", ErrUnknownFormat, abs)
		}
		return walkBecky(abs)
	case FormatDBX:
		return walkDBX(abs)
	case FormatWLM:
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %s: a Windows Live Mail source must be its store folder", ErrUnknownFormat, abs)
		}
		return walkWLM(abs)
	case FormatAppleMail:
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %s: an Apple Mail source must be a directory (~/Library/Mail, or an .mbox mailbox)", ErrUnknownFormat, abs)
		}
		return walkAppleMail(abs)
	default:
		return nil, nil, fmt.Errorf("archive %s: unknown format %q", abs, format)
	}
	return w.finish(), w.problems, nil
}

type walker struct {
	folders  []Folder
	problems []Problem
}

func (w *walker) report(path string, err error) {
	w.problems = append(w.problems, Problem{Path: path, Offset: -1, Err: err})
}

// component cleans one on-disk name, reporting a Problem when it had to.
func (w *walker) component(path, raw string) string {
	name, err := cleanName(raw)
	if err != nil {
		w.report(path, err)
	}
	return name
}

func (w *walker) add(path []string, kind Kind, loc string) {
	f := Folder{Path: path, Kind: kind, Loc: loc}
	if len(path) > 0 {
		f.SpecialUse = SpecialUse(path[len(path)-1])
	}
	w.folders = append(w.folders, f)
}

func (w *walker) addContainer(path []string) {
	w.folders = append(w.folders, Folder{Path: path, NoSelect: true})
}

// finish sorts, drops duplicate paths (a selectable folder wins over a
// container) and adds a NoSelect container for every missing parent.
func (w *walker) finish() []Folder {
	sortFolders(w.folders)
	out := w.folders[:0]
	for _, f := range w.folders {
		if n := len(out); n > 0 && comparePath(out[n-1].Path, f.Path) == 0 {
			if !f.NoSelect {
				w.report(f.Loc, fmt.Errorf("folder %q has the same name as %s; skipped", strings.Join(f.Path, "/"), out[n-1].Loc))
			}
			continue
		}
		out = append(out, f)
	}
	have := make(map[string]bool, len(out))
	for _, f := range out {
		have[pathKey(f.Path)] = true
	}
	for _, f := range out {
		for i := 1; i < len(f.Path); i++ {
			if k := pathKey(f.Path[:i]); !have[k] {
				have[k] = true
				out = append(out, Folder{Path: slices.Clone(f.Path[:i]), NoSelect: true})
			}
		}
	}
	sortFolders(out)
	return out
}

func pathKey(p []string) string { return strings.Join(p, "\x00") }

func sortFolders(fs []Folder) {
	slices.SortStableFunc(fs, func(a, b Folder) int {
		if c := comparePath(a.Path, b.Path); c != 0 {
			return c
		}
		// Selectable before container, so de-duplication keeps it.
		switch {
		case !a.NoSelect && b.NoSelect:
			return -1
		case a.NoSelect && !b.NoSelect:
			return 1
		}
		return strings.Compare(a.Loc, b.Loc)
	})
}

func appendPath(prefix []string, name string) []string {
	p := make([]string, len(prefix), len(prefix)+1)
	copy(p, prefix)
	return append(p, name)
}

// readDir lists dir, reporting a Problem when it cannot.
func (w *walker) readDir(dir string) ([]fs.DirEntry, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		w.report(dir, fmt.Errorf("cannot read directory: %w", unwrapPath(err)))
		if len(entries) == 0 {
			return nil, false
		}
	}
	return entries, true
}

// unwrapPath strips the *fs.PathError wrapper (the Problem names the path).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// entryType returns the type of a directory entry, following a symbolic
// link to a regular file. Symbolic links to directories are reported and
// not followed; broken links are reported.
func (w *walker) entryType(dir string, e fs.DirEntry) (fs.FileMode, bool) {
	t := e.Type()
	if t&fs.ModeSymlink == 0 {
		return t, true
	}
	full := filepath.Join(dir, e.Name())
	fi, err := os.Stat(full)
	switch {
	case err != nil:
		w.report(full, fmt.Errorf("unreadable symbolic link: %w", unwrapPath(err)))
		return 0, false
	case fi.IsDir():
		w.report(full, errors.New("symbolic link to a directory not followed"))
		return 0, false
	}
	return fi.Mode().Type(), true
}

// accounts walks a Thunderbird Mail/ directory: one mail directory per
// account, the account directory's name as the first Path component.
func (w *walker) accounts(mail string) error {
	entries, err := os.ReadDir(mail)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, ok := w.entryType(mail, e)
		if !ok || !t.IsDir() {
			continue
		}
		full := filepath.Join(mail, e.Name())
		w.mailDir(full, []string{w.component(full, e.Name())}, 1)
	}
	return nil
}

// mailDir walks a Thunderbird mail directory (mbox files, .sbd directories,
// Maildir-store folders).
func (w *walker) mailDir(dir string, prefix []string, depth int) {
	if depth > maxDepth {
		w.report(dir, errors.New("folders nested too deeply; skipped"))
		return
	}
	entries, ok := w.readDir(dir)
	if !ok {
		return
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	folders := make(map[string]bool)
	var sbds, fols []string
	cleaned := make(map[string]string)
	// Eudora names its mailboxes in descmap.pce (file names may be 8.3).
	var descmap map[string]string
	if name, ok := findFold(entries, "descmap.pce"); ok {
		if data, err := readLimited(filepath.Join(dir, name), 1<<20); err == nil {
			descmap = parseDescmap(data)
		}
	}
	clean := func(full, raw string) string {
		if c, ok := cleaned[raw]; ok {
			return c
		}
		disp := raw
		if d := descmap[asciiLower(raw)]; d != "" {
			disp = d
		}
		c := w.component(full, disp)
		cleaned[raw] = c
		return c
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(dir, name)
		t, ok := w.entryType(dir, e)
		if !ok {
			continue
		}
		switch {
		case t.IsDir():
			if strings.HasSuffix(name, ".sbd") && len(name) > len(".sbd") {
				sbds = append(sbds, name)
			} else if strings.EqualFold(filepath.Ext(name), ".fol") && len(name) > len(".fol") {
				fols = append(fols, name) // a Eudora folder
			} else if isDir(filepath.Join(full, "cur")) {
				folders[name] = true
				w.add(appendPath(prefix, clean(full, name)), KindMaildir, full)
			}
		case t.IsRegular():
			if ignoredMailFile(name) {
				continue
			}
			head, err := readHead(full, 5)
			if err != nil {
				w.report(full, fmt.Errorf("cannot read: %w", unwrapPath(err)))
				continue
			}
			ext := filepath.Ext(name)
			switch {
			case string(head) == "From ":
			case len(head) == 0 && (ext == "" || names[name+".msf"] || names[name+".sbd"]):
			case len(head) == 0:
				continue
			case ext == "":
				w.report(full, errors.New("not an mbox file (it does not start with \"From \"); skipped"))
				continue
			default:
				continue
			}
			folders[name] = true
			w.add(appendPath(prefix, clean(full, name)), KindMbox, full)
			if strings.EqualFold(name, "Out.mbx") && (descmap != nil || names["Out.toc"] || names["OUT.TOC"]) {
				w.folders[len(w.folders)-1].SpecialUse = `\Sent` // Eudora's sent mail
			}
		}
	}
	for _, fol := range fols {
		full := filepath.Join(dir, fol)
		name := fol
		if d := descmap[asciiLower(fol)]; d == "" {
			name = fol[:len(fol)-len(".fol")]
		}
		w.mailDir(full, appendPath(prefix, clean(full, name)), depth+1)
	}
	for _, sbd := range sbds {
		name := strings.TrimSuffix(sbd, ".sbd")
		full := filepath.Join(dir, sbd)
		path := appendPath(prefix, clean(filepath.Join(dir, name), name))
		if !folders[name] {
			w.addContainer(path)
		}
		w.mailDir(full, path, depth+1)
	}
}

// maildir walks the subfolders of a Maildir: Maildir++ ".A.B" siblings and
// fs-layout subdirectories.
func (w *walker) maildir(dir string, prefix []string, depth int) {
	if depth > maxDepth {
		w.report(dir, errors.New("folders nested too deeply; skipped"))
		return
	}
	entries, ok := w.readDir(dir)
	if !ok {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if name == "cur" || name == "new" || name == "tmp" || name == "." || name == ".." {
			continue
		}
		full := filepath.Join(dir, name)
		if e.Type()&fs.ModeSymlink != 0 {
			if isDir(full) {
				w.report(full, errors.New("symbolic link to a directory not followed"))
			}
			continue
		}
		if !e.IsDir() || !isDir(filepath.Join(full, "cur")) {
			continue
		}
		if !strings.HasPrefix(name, ".") {
			// Dovecot LAYOUT=fs: a plain subdirectory is a subfolder.
			path := appendPath(prefix, w.mailboxName(full, name))
			w.add(path, KindMaildir, full)
			w.maildir(full, path, depth+1)
			continue
		}
		parts := strings.Split(name[1:], ".")
		if slices.Contains(parts, "") {
			w.report(full, errors.New("Maildir++ folder name has an empty level; skipped"))
			continue
		}
		path := slices.Clone(prefix)
		for _, p := range parts {
			path = append(path, w.mailboxName(full, p))
		}
		w.add(path, KindMaildir, full)
	}
}

// mailboxName decodes one Maildir folder name level: modified UTF-7 when
// valid, else kept as it is.
func (w *walker) mailboxName(full, raw string) string {
	if s, ok := decodeMUTF7(raw); ok {
		raw = s
	}
	return w.component(full, raw)
}

// emlDir walks a tree of .eml files.
func (w *walker) emlDir(dir string, prefix []string, depth int) {
	if depth > maxDepth {
		w.report(dir, errors.New("folders nested too deeply; skipped"))
		return
	}
	entries, ok := w.readDir(dir)
	if !ok {
		return
	}
	hasMsgs := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(dir, name)
		t, ok := w.entryType(dir, e)
		if !ok {
			continue
		}
		switch {
		case t.IsDir():
			w.emlDir(full, appendPath(prefix, w.component(full, name)), depth+1)
		case t.IsRegular() && isEMLName(name):
			hasMsgs = true
		}
	}
	if hasMsgs {
		w.add(prefix, KindEML, dir)
	}
}

// parseDescmap reads a Eudora descmap.pce: lines "Name,FILE.MBX,Type,Flag"
// (Type S system, M mailbox, F folder). It returns file name (lower case)
// → display name.
func parseDescmap(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), ",")
		if len(f) < 4 {
			continue
		}
		file := strings.TrimSpace(f[len(f)-3])
		name := strings.Join(f[:len(f)-3], ",")
		if file == "" || strings.TrimSpace(name) == "" || strings.ContainsFunc(file, unicode.IsControl) {
			continue
		}
		out[asciiLower(file)] = name
	}
	return out
}
