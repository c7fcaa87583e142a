package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

// errArchiveChanged is returned when the bytes at a recorded archive
// location are no longer the indexed message.
var errArchiveChanged = errors.New("the archive file changed since it was indexed")

// readServed returns the bytes served for m (CRLF, archive framing
// removed), after checking they are still the indexed message.
func (a *Account) readServed(f *store.Folder, m *store.Message) ([]byte, error) {
	served, _, err := a.readServedBuf(f, m, nil)
	return served, err
}

// scratch holds a session's reusable buffers for reading messages: serving
// many messages then allocates (and the GC collects) almost nothing.
type scratch struct{ raw, out []byte }

// maxScratch is the largest buffer a session keeps between messages.
const maxScratch = 1 << 20

func (s *scratch) trim() {
	if cap(s.raw) > maxScratch {
		s.raw = nil
	}
	if cap(s.out) > maxScratch {
		s.out = nil
	}
}

// readServedBuf is readServed reusing sc's buffers (sc may be nil); the
// result is valid until the next call with the same sc.
func (a *Account) readServedBuf(f *store.Folder, m *store.Message, sc *scratch) ([]byte, *scratch, error) {
	if sc == nil {
		sc = &scratch{}
	}
	var served []byte
	switch m.Src {
	case store.SrcMbox:
		file, err := os.Open(f.Loc) // read-only: the archive is sealed
		if err != nil {
			return nil, sc, a.unavailable(f, fmt.Errorf("open mbox %s: %w", f.Loc, err))
		}
		if int64(cap(sc.raw)) < m.Length {
			sc.raw = make([]byte, m.Length)
		}
		raw := sc.raw[:m.Length]
		_, err = file.ReadAt(raw, m.Offset)
		file.Close()
		if err != nil {
			return nil, sc, a.changed(f, fmt.Errorf("read mbox %s at offset %d: %w", f.Loc, m.Offset, err))
		}
		sc.out = archive.AppendServedMbox(sc.out[:0], raw)
		served = sc.out
	case store.SrcFile:
		raw, err := readFileLimited(m.Path)
		if err != nil && os.IsNotExist(err) {
			// The old client may have renamed it (Maildir flag change).
			if p := findMaildirFile(m.Path); p != "" {
				raw, err = readFileLimited(p)
			}
		}
		if err != nil {
			return nil, sc, a.changed(f, fmt.Errorf("read %s: %w", m.Path, err))
		}
		sc.out = archive.AppendServedFile(sc.out[:0], raw)
		served = sc.out
	case store.SrcItem:
		path := archivePath(m.Path)
		out, err := archive.ReadItem(archive.Kind(f.Kind), path, m.Offset, m.Length, sc.out[:0])
		if err != nil {
			return nil, sc, a.changed(f, fmt.Errorf("read %s: %w", strings.ToValidUTF8(path, "\uFFFD"), err))
		}
		sc.out = out
		served = sc.out
	case store.SrcRemote:
		if a.pool == nil {
			return nil, sc, a.unavailable(f, fmt.Errorf("message UID %d of %q is on the server, which is not configured", m.UID, f.Name))
		}
		ctx, cancel := a.remoteCtx()
		defer cancel()
		bodies, err := a.fetchRemoteBodies(ctx, f.Name, []imap.UID{imap.UID(m.UID)})
		if err != nil {
			return nil, sc, upstreamErr("FETCH", f.Name, err)
		}
		b, ok := bodies[imap.UID(m.UID)]
		if !ok {
			return nil, sc, a.unavailable(f, fmt.Errorf("message UID %d is no longer on the server", m.UID))
		}
		return b, sc, nil
	case store.SrcOwned, store.SrcCache:
		b, err := a.owned.read(m.Path)
		if err != nil {
			return nil, sc, a.unavailable(f, fmt.Errorf("read bridge maildir file %s: %w", m.Path, err))
		}
		served = b
	default:
		return nil, sc, fmt.Errorf("message %d has an unknown source %q", m.UID, m.Src)
	}
	if crc(served) != m.CRC {
		return nil, sc, a.changed(f, fmt.Errorf("message UID %d in %q: %w", m.UID, f.Name, errArchiveChanged))
	}
	return served, sc, nil
}

// changed schedules a full re-index of the folder and returns a NO that
// tells the client to try again.
func (a *Account) changed(f *store.Folder, err error) error {
	a.log.Warn("archive changed under the bridge; re-indexing", "mailbox", f.Name, "err", err)
	_ = a.db.Update(func(tx *store.Tx) error {
		sf, e := tx.Folder(f.Name)
		if e != nil {
			return e
		}
		sf.ScanEnd = 0 // forces a full rescan, survivors matched by fingerprint
		return tx.PutFolder(sf)
	})
	go func() {
		if _, err := a.Index(context.Background(), nil); err != nil {
			a.log.Error("re-index failed", "err", err)
		}
	}()
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: fmt.Sprintf("%v; the folder is being re-indexed, try again", err)}
}

func (a *Account) unavailable(f *store.Folder, err error) error {
	a.log.Warn("message unavailable", "mailbox", f.Name, "err", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: err.Error()}
}

// findMaildirFile looks for a Maildir file whose unique name matches p's
// in cur/ or new/.
func findMaildirFile(p string) string {
	key := filepath.Base(fileKey(p))
	dir := filepath.Dir(filepath.Dir(p))
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), key) {
				return filepath.Join(dir, sub, e.Name())
			}
		}
	}
	return ""
}
