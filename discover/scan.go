package discover

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popbridge/popbridge/backend/archive"
)

// Scan is a quick look at one store: its folders with their message
// counts and sizes, before the user decides to include it.
type Scan struct {
	Store    Store           `json:"store"`
	Folders  []ScannedFolder `json:"folders"`
	Messages int             `json:"messages"`
	Bytes    int64           `json:"bytes"`
	// Locked: the store's mail program holds it open (Outlook keeps its
	// .pst open while it runs, on Windows). Close the program, then scan
	// again; nothing was read.
	Locked bool `json:"locked,omitempty"`
	// Error says why the store could not be read at all.
	Error string `json:"error,omitempty"`
	// Problems are the parts that were skipped.
	Problems []string      `json:"problems,omitempty"`
	Elapsed  time.Duration `json:"elapsed"`
}

// ScannedFolder is one folder of a Scan. Bytes is 0 where the store does
// not say (folders inside a .pst; Scan.Bytes is the file's size then).
type ScannedFolder struct {
	Name     string `json:"name"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
}

// ErrLocked is what a scan of a store held open by its mail program
// reports (wrapped in the open error on Windows: a sharing violation).
var ErrLocked = errors.New("the file is in use by its mail program")

// IsLocked reports whether err means that another program holds the file
// open so that it cannot be read (a Windows sharing or lock violation).
func IsLocked(err error) bool { return errors.Is(err, ErrLocked) || isLockedErr(err) }

// openForScan opens a store file for the scan; tests replace it to play a
// mail program holding the file.
var openForScan = os.Open

// ScanStore counts the folders and messages of st. It reads the store
// (read-only; mbox files are read through once, a .pst only its folder
// tables) and never fails: what went wrong is in Locked, Error and
// Problems.
func ScanStore(ctx context.Context, st Store) Scan {
	start := time.Now()
	sc := Scan{Store: st, Folders: []ScannedFolder{}}
	defer func() { sc.Elapsed = time.Since(start) }()
	fi, err := os.Stat(st.Path)
	if err != nil {
		sc.Error = err.Error()
		return sc
	}
	if fi.Mode().IsRegular() {
		// A file the mail program holds open cannot even be opened.
		f, err := openForScan(st.Path)
		if err != nil {
			if IsLocked(err) {
				sc.Locked = true
			}
			sc.Error = err.Error()
			return sc
		}
		f.Close()
	}
	format, err := archive.ParseFormat(st.Format)
	if err != nil {
		format = archive.FormatAuto
	}
	folders, problems, err := archive.Walk(st.Path, format)
	for _, p := range problems {
		sc.noteProblem(p)
	}
	if err != nil {
		sc.Locked = IsLocked(err)
		sc.Error = err.Error()
		return sc
	}
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		if ctx.Err() != nil {
			sc.Error = ctx.Err().Error()
			return sc
		}
		name := strings.Join(f.Path, "/")
		if name == "" {
			name = st.Name
			if name == "" {
				name = filepath.Base(st.Path)
			}
		}
		sf := ScannedFolder{Name: name}
		var ferr error
		switch f.Kind {
		case archive.KindMbox:
			sf.Messages, sf.Bytes, ferr = scanCountMbox(ctx, f.Loc)
		case archive.KindMaildir, archive.KindEML:
			files, probs, err := archive.ListFiles(f)
			for _, p := range probs {
				sc.noteProblem(p)
			}
			ferr = err
			for _, fe := range files {
				sf.Messages++
				sf.Bytes += fe.Size
			}
		case archive.KindPST:
			sf.Messages, ferr = archive.CountPST(f.Loc, f.Ref)
		}
		if ferr != nil {
			if IsLocked(ferr) {
				sc.Locked = true
				sc.Error = ferr.Error()
				return sc
			}
			sc.Problems = append(sc.Problems, fmt.Sprintf("%s: %v", name, ferr))
			continue
		}
		sc.Folders = append(sc.Folders, sf)
		sc.Messages += sf.Messages
		sc.Bytes += sf.Bytes
	}
	if fi.Mode().IsRegular() && sc.Bytes == 0 {
		sc.Bytes = fi.Size()
	}
	return sc
}

func (sc *Scan) noteProblem(p archive.Problem) {
	if IsLocked(p.Err) {
		sc.Locked = true
	}
	if len(sc.Problems) < 100 {
		sc.Problems = append(sc.Problems, p.Error())
	}
}

// countMbox counts the messages of an mbox file (not those Thunderbird
// marked expunged) and their bytes.
func scanCountMbox(ctx context.Context, path string) (int, int64, error) {
	f, err := openForScan(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	n, size := 0, int64(0)
	_, _, err = archive.ScanMbox(f, path, 0, fi.Size(), func(e archive.MboxEntry) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if archive.ParseMeta(e.Raw).Expunged {
			return nil
		}
		n++
		size += e.Length
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrClosed) {
		return n, size, err
	}
	return n, size, nil
}
