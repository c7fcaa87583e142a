package backend

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ownedStore is the bridge's own Maildir (data_dir/maildir). Messages that
// clients append or copy into Local/… live here, one subdirectory per
// folder ID, so a RENAME never moves files. The user's archive is never
// written to.
type ownedStore struct {
	root string
}

func newOwnedStore(root string) (*ownedStore, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create bridge maildir %s: %w", root, err)
	}
	return &ownedStore{root: root}, nil
}

// write stores served bytes durably and returns the path relative to the
// root: the file is written to tmp/, fsynced, renamed into cur/, and cur/
// is fsynced, so that a crash after write returns leaves the message in
// place (design.md invariant 2).
func (o *ownedStore) write(folderID uint32, data []byte) (string, error) {
	dir := filepath.Join(o.root, strconv.FormatUint(uint64(folderID), 10))
	for _, sub := range []string{"tmp", "cur", "new"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return "", fmt.Errorf("bridge maildir: %w", err)
		}
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%d.%s.popbridge", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("bridge maildir: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("bridge maildir: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("bridge maildir: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	rel := filepath.Join(strconv.FormatUint(uint64(folderID), 10), "cur", name)
	if err := os.Rename(tmp, filepath.Join(o.root, rel)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("bridge maildir: %w", err)
	}
	syncDir(filepath.Join(dir, "cur"))
	return filepath.ToSlash(rel), nil
}

func (o *ownedStore) read(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(o.root, filepath.FromSlash(rel)))
}

func (o *ownedStore) remove(rel string) error {
	err := os.Remove(filepath.Join(o.root, filepath.FromSlash(rel)))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func (o *ownedStore) removeFolder(folderID uint32) error {
	return os.RemoveAll(filepath.Join(o.root, strconv.FormatUint(uint64(folderID), 10)))
}

// syncDir fsyncs a directory so a rename in it is durable (a no-op where
// the platform can't, e.g. Windows).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
