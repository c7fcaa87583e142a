package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// One popbridge per data dir.
//
// The shell that runs a bridge claims the data dir for its whole life: an
// exclusive lock (flock; LockFileEx on Windows) on data_dir/popbridge.lock.
// The kernel drops the lock when the process ends, however it ends, so a
// bridge killed with SIGKILL or a power cut leaves nothing to clean up: its
// control.json stays behind, but the next start claims the data dir and
// writes a new one. The lock is taken before control.json is written, so
// of two popbridges started at the same moment one runs and the other
// finds it (Dial, once its endpoint answers) instead of both starting.

// LockFile is the claim's file in the data dir.
const LockFile = "popbridge.lock"

// ErrClaimed means another process holds the data dir (a popbridge that
// runs or is starting).
var ErrClaimed = errors.New("another popbridge holds this data directory")

// Claim is this process's hold on a data dir.
type Claim struct {
	f *os.File
}

// ClaimDataDir takes the data dir (creating it, mode 0700) for this process
// until Release. It fails with ErrClaimed when another process holds it.
func ClaimDataDir(dataDir string) (*Claim, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dataDir, err)
	}
	p := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("claim the data dir: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, ErrClaimed
		}
		return nil, fmt.Errorf("claim the data dir (%s): %w", p, err)
	}
	// The pid, for people who look (and for Held on systems where a
	// locked file can be read).
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Claim{f: f}, nil
}

// Release gives the data dir up.
func (c *Claim) Release() {
	if c == nil || c.f == nil {
		return
	}
	unlockFile(c.f)
	c.f.Close()
	c.f = nil
}

// Held reports whether a process holds dataDir, and its pid when it can
// be read (0 otherwise). It creates nothing.
func Held(dataDir string) (pid int, held bool) {
	p := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false
		}
		return 0, false
	}
	defer f.Close()
	if err := lockFile(f); err == nil {
		unlockFile(f)
		return 0, false
	} else if !errors.Is(err, errWouldBlock) {
		return 0, false
	}
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return pid, true
}
