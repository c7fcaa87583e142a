package backend

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

// indexItems indexes a Becky!, Outlook Express or Apple Mail folder
// (archive.ScanItems). Messages stay where the archive keeps them (SrcItem:
// read back with archive.ReadItem and checked by CRC before serving),
// except Apple Mail's partial messages, rebuilt once from their parts and
// cached in the bridge's data dir (SrcCache).
//
// UIDs: a message keeps its UID while its item ID and place stay the same
// (flags follow the archive unless a client changed them); when the
// program rewrote or compacted its files, a message whose ID or place
// changed keeps its UID if its content is that of a message that is gone
// from its old ID. A folder whose files did not change (archive.Signature)
// is not read at all; one marked for a full rescan (ScanEnd 0, after a
// failed CRC check) is read completely.
func (a *Account) indexItems(ctx context.Context, b *mailbox, f *store.Folder, af archive.Folder, fr *FolderReport, pr *Progress, progress func(Progress)) error {
	size, sum, err := archive.Signature(af)
	if err != nil {
		return fmt.Errorf("%v folder %s: %w", af.Kind, af.Loc, err)
	}
	if f.ScanEnd > 0 && f.FileSize == size && f.FileMtime == int64(sum) {
		return nil
	}
	full := f.ScanEnd == 0
	byExt := map[string]*store.Message{}
	byFP := map[string][]*store.Message{}
	err = a.db.View(func(tx *store.Tx) error {
		return tx.ForEachMessage(f.ID, func(m *store.Message) error {
			if (m.Src == store.SrcItem || m.Src == store.SrcCache) && m.Ext != "" {
				byExt[m.Ext] = m
				byFP[string(m.FP)] = append(byFP[string(m.FP)], m)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	type deferred struct {
		m   *store.Message
		env []byte
	}
	var (
		adds     []pendingMsg
		updates  []*store.Message
		later    []deferred
		addB     int64
		garbage  []string // cache files to remove once committed
		written  []string // cache files written by this run
		flagsNew = map[uint32][]string{}
	)
	seenIDs := map[string]bool{}
	matched := map[uint32]bool{}
	known := func(it *archive.Item) bool {
		seenIDs[it.ID] = true
		old := byExt[it.ID]
		if full || old == nil || matched[old.UID] {
			return false
		}
		if it.Rebuilt {
			return false // rebuilt again: its parts may have arrived since
		}
		return old.Src == store.SrcItem && old.Path == storePath(it.Path) && old.Offset == it.Offset && (it.Length == 0 || it.Length == old.Length)
	}
	probs, err := archive.ScanItems(af, known, func(it *archive.Item) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		unchanged := func(old *store.Message) {
			matched[old.UID] = true
			if !sameStrings(old.ArchFlags, it.Flags) {
				m := *old
				if sameStrings(old.Flags, old.ArchFlags) {
					m.Flags = it.Flags
					flagsNew[m.UID] = it.Flags
				}
				m.ArchFlags = it.Flags
				updates = append(updates, &m)
			}
		}
		if it.Served == nil {
			unchanged(byExt[it.ID])
			return nil
		}
		pr.Bytes += int64(len(it.Served))
		if old := byExt[it.ID]; it.Rebuilt && old != nil && !matched[old.UID] && old.Src == store.SrcCache && old.CRC == crc(it.Served) && old.Size == int64(len(it.Served)) {
			unchanged(old) // rebuilt the same as last time: keep the cached copy
			return nil
		}
		m, env := describe(it.Served, time.Time{}, archive.Meta{Flags: it.Flags})
		if !it.Received.IsZero() {
			m.Date, m.DateZone = it.Received.Unix(), 0
		}
		m.Ext = it.ID
		if it.Rebuilt {
			rel, err := a.owned.write(f.ID, it.Served)
			if err != nil {
				return err
			}
			written = append(written, rel)
			m.Src, m.Path = store.SrcCache, rel
		} else {
			m.Src, m.Path, m.Offset, m.Length = store.SrcItem, storePath(it.Path), it.Offset, it.Length
		}
		if old := byExt[it.ID]; old != nil && !matched[old.UID] || len(byFP[string(m.FP)]) > 0 {
			later = append(later, deferred{m, env})
			return nil
		}
		adds = append(adds, pendingMsg{m: m, env: env})
		addB += int64(len(it.Served))
		pr.Messages++
		if progress != nil && pr.Messages%256 == 0 {
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
	if err != nil {
		for _, rel := range written {
			_ = a.owned.remove(rel)
		}
		return fmt.Errorf("%v folder %s: %w", af.Kind, af.Loc, err)
	}
	// Messages whose ID or place changed, or that look like a message the
	// folder had: keep the old UID when the content is the same.
	keep := func(old *store.Message, d deferred) {
		m := d.m
		m.UID, m.Hidden = old.UID, old.Hidden
		if sameStrings(old.Flags, old.ArchFlags) {
			if !sameStrings(old.Flags, m.ArchFlags) {
				flagsNew[m.UID] = m.ArchFlags
			}
		} else {
			m.Flags = old.Flags
		}
		matched[old.UID] = true
		updates = append(updates, m)
		if old.Src == store.SrcCache && old.Path != m.Path {
			garbage = append(garbage, old.Path)
		}
	}
	for _, d := range later {
		if old := byExt[d.m.Ext]; old != nil && !matched[old.UID] && bytes.Equal(old.FP, d.m.FP) {
			keep(old, d)
			continue
		}
		found := false
		for _, old := range byFP[string(d.m.FP)] {
			if !matched[old.UID] && !seenIDs[old.Ext] {
				keep(old, d)
				found = true
				break
			}
		}
		if !found {
			adds = append(adds, pendingMsg{m: d.m, env: d.env})
			pr.Messages++
		}
	}
	var deletes []uint32
	for _, m := range byExt {
		if !matched[m.UID] {
			deletes = append(deletes, m.UID)
			if m.Src == store.SrcCache {
				garbage = append(garbage, m.Path)
			}
		}
	}
	err = a.commitBatch(b, fr, adds, updates, deletes, func(sf *store.Folder) {
		sf.ScanEnd, sf.FileSize, sf.FileMtime = max(size, 1), size, int64(sum)
	})
	if err != nil {
		for _, rel := range written {
			_ = a.owned.remove(rel)
		}
		return err
	}
	for _, rel := range garbage {
		_ = a.owned.remove(rel)
	}
	if len(flagsNew) > 0 {
		b.mu.Lock()
		for uid, fl := range flagsNew {
			b.setFlagsLocked(imap.UID(uid), toFlags(fl), nil)
		}
		b.mu.Unlock()
	}
	return nil
}

// storePath encodes an archive file's path for the store, whose JSON
// records cannot hold bytes that are not UTF-8 (names copied from old
// Windows disks may be CP932): such a path is kept as "base64:" and its
// bytes. An absolute path never starts that way.
func storePath(p string) string {
	if utf8.ValidString(p) {
		return p
	}
	return "base64:" + base64.StdEncoding.EncodeToString([]byte(p))
}

// archivePath decodes storePath.
func archivePath(s string) string {
	if rest, ok := strings.CutPrefix(s, "base64:"); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return s
}
