package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FileEntry is one message file of a Maildir or eml folder.
type FileEntry struct {
	Path    string // absolute
	Size    int64
	ModTime time.Time
	// Flags come from the Maildir info in the file name (nil for eml files
	// and for names without info, e.g. in new/ or Thunderbird's Maildir
	// store, whose flags are X-Mozilla-Status headers: see ParseMeta).
	Flags []string
}

// ListFiles lists the messages of a Maildir folder (cur/ and new/; tmp/ and
// dotfiles ignored; sorted by the delivery-time prefix of the unique name,
// then by name) or of an eml folder (its *.eml files, extension
// case-insensitive, subdirectories excluded; natural sort by name, so
// "2.eml" comes before "10.eml"). Unreadable entries are Problems; err is
// returned when the folder itself cannot be read or is not file-based.
func ListFiles(f Folder) ([]FileEntry, []Problem, error) {
	if f.NoSelect {
		return nil, nil, fmt.Errorf("folder %q is a container and holds no messages", strings.Join(f.Path, "/"))
	}
	fi, err := os.Stat(f.Loc)
	if err != nil {
		return nil, nil, fmt.Errorf("folder %q: %w", strings.Join(f.Path, "/"), err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("folder %q: %s is not a directory", strings.Join(f.Path, "/"), f.Loc)
	}
	switch f.Kind {
	case KindMaildir:
		return listMaildir(f.Loc)
	case KindEML:
		return listEML(f.Loc)
	}
	return nil, nil, fmt.Errorf("folder %q is a %v folder, not a file-based one", strings.Join(f.Path, "/"), f.Kind)
}

func listMaildir(dir string) ([]FileEntry, []Problem, error) {
	kw := ReadDovecotKeywords(dir)
	var files []FileEntry
	var problems []Problem
	for _, sub := range []string{"cur", "new"} {
		d := filepath.Join(dir, sub)
		entries, err := os.ReadDir(d)
		if err != nil {
			problems = append(problems, Problem{Path: d, Offset: -1, Err: fmt.Errorf("cannot read directory: %w", unwrapPath(err))})
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			fe, ok, p := fileEntry(d, e)
			if p != nil {
				problems = append(problems, *p)
			}
			if !ok {
				continue
			}
			fe.Flags, _ = ParseMaildirInfo(e.Name(), kw)
			files = append(files, fe)
		}
	}
	slices.SortFunc(files, func(a, b FileEntry) int {
		an, bn := filepath.Base(a.Path), filepath.Base(b.Path)
		if c := compareDeliveryTime(an, bn); c != 0 {
			return c
		}
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return files, problems, nil
}

func listEML(dir string) ([]FileEntry, []Problem, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("eml folder: %w", err)
	}
	var files []FileEntry
	var problems []Problem
	for _, e := range entries {
		if !isEMLName(e.Name()) {
			continue
		}
		fe, ok, p := fileEntry(dir, e)
		if p != nil {
			problems = append(problems, *p)
		}
		if ok {
			files = append(files, fe)
		}
	}
	slices.SortFunc(files, func(a, b FileEntry) int {
		an, bn := filepath.Base(a.Path), filepath.Base(b.Path)
		if c := naturalCompare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(an, bn)
	})
	return files, problems, nil
}

// fileEntry stats a directory entry, following a symbolic link to a regular
// file; directories and other non-regular files are skipped silently.
func fileEntry(dir string, e fs.DirEntry) (FileEntry, bool, *Problem) {
	full := filepath.Join(dir, e.Name())
	if e.IsDir() {
		return FileEntry{}, false, nil
	}
	var fi fs.FileInfo
	var err error
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err = os.Stat(full)
	} else {
		fi, err = e.Info()
	}
	if err != nil {
		return FileEntry{}, false, &Problem{Path: full, Offset: -1, Err: fmt.Errorf("cannot read: %w", unwrapPath(err))}
	}
	if !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return FileEntry{}, false, nil
		}
		return FileEntry{}, false, &Problem{Path: full, Offset: -1, Err: errors.New("not a regular file; skipped")}
	}
	return FileEntry{Path: full, Size: fi.Size(), ModTime: fi.ModTime()}, true, nil
}

// compareDeliveryTime orders Maildir unique names by their leading decimal
// seconds ("1262304000.M1P2.host"); names without one sort after all others.
func compareDeliveryTime(a, b string) int {
	da, db := leadingDigits(a), leadingDigits(b)
	switch {
	case da == "" && db == "":
		return 0
	case da == "":
		return 1
	case db == "":
		return -1
	}
	return compareDecimal(da, db)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// compareDecimal compares two digit strings by numeric value, whatever
// their length.
func compareDecimal(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// naturalCompare compares names treating runs of digits as numbers:
// "msg2.eml" < "msg10.eml". Non-digit runs compare byte-wise.
func naturalCompare(a, b string) int {
	for len(a) > 0 && len(b) > 0 {
		if isDigit(a[0]) && isDigit(b[0]) {
			da, db := leadingDigits(a), leadingDigits(b)
			if c := compareDecimal(da, db); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
