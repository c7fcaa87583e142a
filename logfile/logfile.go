// Package logfile is where popbridge writes its log when no terminal shows
// it (started by autostart, or by a double-click): a size-rotated file in
// the data dir that the console shows with Tail.
//
// Implementation notes:
//   - The file is data_dir/logs/popbridge.log. When it would grow past
//     MaxSize it is renamed to popbridge-<UTC time>.log and a new one is
//     started; only the Keep newest of those are kept (rotation by
//     gopkg.in/natefinch/lumberjack.v2). The directory is 0700 and the
//     files 0600: logs name folders and addresses, never secrets, but they
//     are still nobody else's business.
//   - Tail reads from the end of the files, newest first, so showing the
//     last lines of a large log costs a few reads, not the whole file.
package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Name is the current log file's name in Dir; rotated files are
// popbridge-<time>.log beside it.
const Name = "popbridge.log"

// Defaults.
const (
	DefaultMaxSizeMB = 5
	DefaultKeep      = 3
)

// Dir returns the log directory of a data dir.
func Dir(dataDir string) string { return filepath.Join(dataDir, "logs") }

// Path returns the current log file of a data dir.
func Path(dataDir string) string { return filepath.Join(Dir(dataDir), Name) }

// Options configures Open. The zero value means the defaults.
type Options struct {
	// MaxSizeMB is the size in MiB at which the file is rotated; 0:
	// DefaultMaxSizeMB.
	MaxSizeMB int
	// Keep is how many rotated files are kept; 0: DefaultKeep.
	Keep int
}

// Writer is the rotating log file. It is safe for concurrent use.
type Writer struct {
	l *lumberjack.Logger
}

// Open opens (creating) the log of dataDir for appending.
func Open(dataDir string, opts Options) (*Writer, error) {
	if opts.MaxSizeMB <= 0 {
		opts.MaxSizeMB = DefaultMaxSizeMB
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	dir := Dir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("log directory %s: %w", dir, err)
	}
	l := &lumberjack.Logger{Filename: filepath.Join(dir, Name), MaxSize: opts.MaxSizeMB, MaxBackups: opts.Keep}
	// Open now, so that a directory we cannot write is reported at start,
	// not lost with the first record.
	if _, err := l.Write(nil); err != nil {
		return nil, fmt.Errorf("log file %s: %w", l.Filename, err)
	}
	return &Writer{l: l}, nil
}

// Write appends p (one log record) to the file, rotating first if needed.
func (w *Writer) Write(p []byte) (int, error) { return w.l.Write(p) }

// Close closes the file.
func (w *Writer) Close() error { return w.l.Close() }

// Rotate starts a new file now.
func (w *Writer) Rotate() error { return w.l.Rotate() }

// NewLogger returns a slog text logger writing to w and, when also is not
// nil (a terminal), to also as well.
func NewLogger(w io.Writer, also io.Writer, level slog.Leveler) *slog.Logger {
	if also != nil {
		w = io.MultiWriter(w, also)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Files returns the log files of dataDir, newest first: the current file,
// then rotated ones.
func Files(dataDir string) ([]string, error) {
	dir := Dir(dataDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var rotated []string
	cur := false
	prefix, ext := strings.TrimSuffix(Name, ".log")+"-", ".log"
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == Name:
			cur = true
		case strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ext) && e.Type().IsRegular():
			rotated = append(rotated, n)
		}
	}
	// The timestamp format sorts as text.
	sort.Sort(sort.Reverse(sort.StringSlice(rotated)))
	var out []string
	if cur {
		out = append(out, filepath.Join(dir, Name))
	}
	for _, n := range rotated {
		out = append(out, filepath.Join(dir, n))
	}
	return out, nil
}

// Tail returns up to n last lines of the log of dataDir, oldest first,
// continuing into rotated files when the current one has fewer. Lines have
// no line end. No log yet is no lines and no error.
func Tail(dataDir string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	files, err := Files(dataDir)
	if err != nil {
		return nil, err
	}
	var lines []string // newest first
	for _, f := range files {
		got, err := tailFile(f, n-len(lines))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // rotated away while we looked
			}
			return nil, err
		}
		lines = append(lines, got...)
		if len(lines) >= n {
			break
		}
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return lines, nil
}

// TailFile returns up to n last lines of one log file (a [log] file of
// the user's choosing), oldest first, without line ends.
func TailFile(path string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	lines, err := tailFile(path, n)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return lines, nil
}

// tailFile returns up to n last lines of path, newest first.
func tailFile(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	const chunk = 32 << 10
	end := st.Size()
	var buf []byte // the bytes from pos to end
	pos := end
	for pos > 0 && bytes.Count(buf, []byte{'\n'}) <= n {
		step := int64(chunk)
		if pos < step {
			step = pos
		}
		pos -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, pos); err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		buf = append(b, buf...)
	}
	text := strings.TrimSuffix(string(buf), "\n")
	if text == "" {
		return nil, nil
	}
	all := strings.Split(text, "\n")
	if pos > 0 {
		all = all[1:] // the first one may be cut
	}
	var out []string
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, strings.TrimSuffix(all[i], "\r"))
	}
	return out, nil
}
