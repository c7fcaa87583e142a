package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// Deliver stores a message that arrived from outside (the POP fetcher) in
// folder: a Local/… folder (the bridge's own Maildir, fsynced before
// Deliver returns; created if missing) or an upstream folder (APPEND, with
// the same fingerprint dedup as a drag; mirrored once the server
// confirmed). dup reports that the folder already had the message and
// nothing was stored.
func (a *Account) Deliver(ctx context.Context, folder string, msg []byte, date time.Time) (uid imap.UID, dup bool, err error) {
	folder = normName(folder)
	if date.IsZero() {
		date = time.Now()
	}
	if !a.isLocal(folder) && a.pool == nil {
		return 0, false, fmt.Errorf("deliver to %q: no upstream server is configured", folder)
	}
	if a.isLocal(folder) {
		if err := a.ensureLocalFolder(folder); err != nil {
			return 0, false, err
		}
	} else if err := a.SyncFolders(ctx); err != nil {
		return 0, false, err
	}
	b, _, err := a.boxByName(folder)
	if err != nil {
		return 0, false, fmt.Errorf("deliver to %q: %w", folder, err)
	}
	if b.remote {
		b.mu.Lock()
		before := b.uidNext
		b.mu.Unlock()
		uids, err := a.uploadRemote(b, []uploadItem{newUploadItem(msg, nil, date)})
		if err != nil {
			return 0, false, err
		}
		if uids[0] == 0 {
			return 0, false, fmt.Errorf("deliver to %q: the server did not confirm the message", folder)
		}
		return uids[0], uint32(uids[0]) < before, nil
	}
	fp := message.ContentFP(msg)
	var existed bool
	_ = a.db.View(func(tx *store.Tx) error {
		u, _ := tx.FindFP(b.id, fp[:])
		for _, x := range u {
			if m, err := tx.Message(b.id, x); err == nil && !m.Hidden {
				existed = true
			}
		}
		return nil
	})
	uids, err := a.addLocal(b, []incoming{{served: msg, date: date}})
	if err != nil {
		return 0, false, err
	}
	return uids[0], existed, nil
}

// ensureLocalFolder creates a bridge-owned local folder (and parents).
func (a *Account) ensureLocalFolder(name string) error {
	return a.db.Update(func(tx *store.Tx) error {
		parts := splitName(name)
		for i := 1; i <= len(parts); i++ {
			n := joinName(parts[:i])
			f, err := tx.Folder(n)
			if err == nil {
				if i == len(parts) && f.NoSelect && f.Kind == 0 {
					f.NoSelect = false // a container becomes a folder of its own
					return tx.PutFolder(f)
				}
				continue
			}
			if !errors.Is(err, store.ErrNoFolder) {
				return err
			}
			if err := tx.CreateFolder(&store.Folder{Name: n, Created: true, Subscribed: true}); err != nil {
				return err
			}
		}
		return nil
	})
}

// KnownUIDL reports whether a message in the archive carries this X-UIDL
// (the old POP client downloaded it already).
func (a *Account) KnownUIDL(uidl string) bool {
	if uidl == "" {
		return false
	}
	found := false
	folders, err := a.db.Folders()
	if err != nil {
		return false
	}
	_ = a.db.View(func(tx *store.Tx) error {
		for _, f := range folders {
			if u, _ := tx.FindUIDL(f.ID, uidl); len(u) > 0 {
				found = true
				return nil
			}
		}
		return nil
	})
	return found
}

// KnownMessage reports whether msg's content is already in some folder
// (content fingerprint; for upstream folders, of the messages whose content
// the bridge has seen).
func (a *Account) KnownMessage(msg []byte) bool {
	fp := message.ContentFP(msg)
	folders, err := a.db.Folders()
	if err != nil {
		return false
	}
	found := false
	_ = a.db.View(func(tx *store.Tx) error {
		for _, f := range folders {
			// Upstream mirrors know the content fingerprints of what the
			// bridge uploaded or read; a header match alone is not proof.
			if u, _ := tx.FindFP(f.ID, fp[:]); len(u) > 0 {
				found = true
				return nil
			}
		}
		return nil
	})
	return found
}
