package backend

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

// indexPST indexes one folder of an Outlook .pst. A PST holds properties,
// not MIME: each item is rebuilt once, at index time, and the rebuilt
// bytes are cached in the bridge's data dir (SrcCache), so FETCH never
// rebuilds and sizes, UIDs and fingerprints stay stable. The PST itself is
// only read. A PST that changed (size or mtime) is re-read; items keep
// their UIDs by PST item ID.
func (a *Account) indexPST(ctx context.Context, b *mailbox, f *store.Folder, af archive.Folder, fr *FolderReport, pr *Progress, progress func(Progress)) error {
	fi, err := os.Stat(af.Loc)
	if err != nil {
		return fmt.Errorf("pst %s: %w", af.Loc, err)
	}
	size, mtime := fi.Size(), fi.ModTime().UnixNano()
	if f.ScanEnd > 0 && f.FileSize == size && f.FileMtime == mtime {
		return nil
	}
	byID := map[string]*store.Message{}
	err = a.db.View(func(tx *store.Tx) error {
		return tx.ForEachMessage(f.ID, func(m *store.Message) error {
			if m.Src == store.SrcCache && m.Ext != "" {
				byID[m.Ext] = m
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var (
		adds    []pendingMsg
		written []string
		addB    int64
	)
	seen := map[string]bool{}
	stats, probs, err := archive.ScanPST(af.Loc, af.Ref, func(pm archive.PSTMessage) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		seen[pm.ID] = true
		pr.Bytes += int64(len(pm.Raw))
		if _, ok := byID[pm.ID]; ok {
			return nil // already indexed: same UID, cached bytes
		}
		m, env := describe(pm.Raw, time.Time{}, archive.Meta{Flags: pm.Flags})
		if !pm.Received.IsZero() {
			_, off := pm.Received.Zone()
			m.Date, m.DateZone = pm.Received.Unix(), int32(off)
		}
		rel, err := a.owned.write(f.ID, pm.Raw)
		if err != nil {
			return err
		}
		written = append(written, rel)
		m.Src, m.Path, m.Ext = store.SrcCache, rel, pm.ID
		adds = append(adds, pendingMsg{m: m, env: env})
		addB += int64(len(pm.Raw))
		pr.Messages++
		if progress != nil && pr.Messages%64 == 0 {
			progress(*pr)
		}
		if len(adds) >= batchMessages || addB >= batchBytes {
			if err := a.commitBatch(b, fr, adds, nil, nil, nil); err != nil {
				return err
			}
			adds, written, addB = nil, nil, 0
		}
		return nil
	})
	for _, p := range probs {
		a.report(p)
	}
	if stats.NonMail > 0 {
		a.report(archive.Problem{Path: af.Loc, Offset: -1, Err: fmt.Errorf("%d non-mail items (contacts, calendar, tasks…) skipped in folder %q", stats.NonMail, f.Name)})
	}
	if err != nil {
		for _, rel := range written {
			_ = a.owned.remove(rel)
		}
		return fmt.Errorf("pst %s: %w", af.Loc, err)
	}
	var deletes []uint32
	for id, m := range byID {
		if !seen[id] {
			deletes = append(deletes, m.UID)
		}
	}
	return a.commitBatch(b, fr, adds, nil, deletes, func(sf *store.Folder) {
		sf.ScanEnd, sf.FileSize, sf.FileMtime = size, size, mtime
	})
}
