package backend

// Folder counts for the console's dashboard, maintained rather than
// recomputed. Status reads every message record and looks each one up in
// every upstream folder: correct, but about a second for 100k messages and
// a handful of server folders. FolderCounts keeps, per folder, the counts
// and the list of legacy messages not yet known on the server ("to go"),
// and redoes only what changed since it last ran:
//
//   - a folder whose messages were added or removed (appendLocked,
//     removeLocked: every such change goes through them) is counted again;
//   - a legacy folder whose upload records changed, or any legacy folder
//     when a server folder gained messages, has only its to-go list checked
//     again (against the upload records and the fingerprints the server
//     folders gained, in memory): a message found on the server stays
//     found;
//   - the first call reads every server folder once and counts the legacy
//     folders against the fingerprints it collected, without a lookup per
//     message;
//   - when a server folder lost messages (or disappeared), or the bridge
//     learned the content of server messages it had (learnFPs), every
//     legacy folder is counted again.
//
// "On the server" means the content is there (content fingerprints, as
// Status and migrate decide); a server message whose content the bridge
// has not seen proves nothing yet.
//
// Nothing runs in the background: the work happens in the FolderCounts
// call that follows a change. Flag changes do not count.

import (
	"errors"
	"sync"

	"github.com/popbridge/popbridge/store"
)

// FolderCount is one folder's line on the dashboard. For a legacy folder
// OnServer + ToGo = Messages; OnServer counts what the bridge uploaded or
// found on the server by fingerprint (as Status does).
type FolderCount struct {
	Name       string `json:"name"`
	Source     string `json:"source,omitempty"`
	SpecialUse string `json:"special_use,omitempty"`
	Remote     bool   `json:"remote,omitempty"`
	NoSelect   bool   `json:"noselect,omitempty"`
	Missing    bool   `json:"missing,omitempty"`
	Messages   int    `json:"messages"`
	Bytes      int64  `json:"bytes"`
	OnServer   int    `json:"on_server"`
	ToGo       int    `json:"to_go"`
	ToGoBytes  int64  `json:"to_go_bytes"`
}

// countCache is Account.counts. noteMu guards the change notes (taken
// under mailbox locks, so it is never held for long); mu serialises
// FolderCounts.
type countCache struct {
	noteMu  sync.Mutex
	dirty   map[uint32]bool // folders whose messages changed
	uploads map[uint32]bool // legacy folders whose upload records changed
	learned bool            // server messages' content became known
	changed chan struct{}   // closed and replaced by every note

	mu      sync.Mutex
	folders map[uint32]*folderCount
}

type folderCount struct {
	sig   folderSig
	c     FolderCount
	toGo  []toGoMsg // legacy: visible messages not yet known on the server
	maxID uint32    // server folder: highest UID counted
}

// folderSig is what a folder record says about its contents; a change in
// it means counting again even without a note.
type folderSig struct {
	name        string
	uidValidity uint32
	uidNext     uint32
	missing     bool
	noSelect    bool
}

type toGoMsg struct {
	uid  uint32
	size int64
	fp   [16]byte // content fingerprint
}

func sigOf(f *store.Folder) folderSig {
	return folderSig{f.Name, f.UIDValidity, f.UIDNext, f.Missing, f.NoSelect}
}

// note records that folder id's messages changed. Called with the
// mailbox lock held.
func (c *countCache) note(id uint32) {
	c.noteMu.Lock()
	if c.dirty == nil {
		c.dirty = map[uint32]bool{}
	}
	c.dirty[id] = true
	c.broadcastLocked()
	c.noteMu.Unlock()
}

// noteUploads records that legacy folder id's upload records changed.
func (c *countCache) noteUploads(id uint32) {
	c.noteMu.Lock()
	if c.uploads == nil {
		c.uploads = map[uint32]bool{}
	}
	c.uploads[id] = true
	c.broadcastLocked()
	c.noteMu.Unlock()
}

func (c *countCache) broadcastLocked() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// noteLearned records that the content of some server messages became
// known.
func (c *countCache) noteLearned() {
	c.noteMu.Lock()
	c.learned = true
	c.broadcastLocked()
	c.noteMu.Unlock()
}

// Changes returns a channel that is closed at the next change of any
// folder's messages or upload records (not flags). Ask again after it
// fired. Nothing is computed for it: it only wakes a watcher.
func (a *Account) Changes() <-chan struct{} {
	c := &a.counts
	c.noteMu.Lock()
	defer c.noteMu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// FolderCounts returns every folder's counts, in the store's folder order,
// redoing only what changed since the last call (see the notes at the top
// of this file). The first call counts everything.
func (a *Account) FolderCounts() ([]FolderCount, error) {
	c := &a.counts
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.folders == nil {
		c.folders = map[uint32]*folderCount{}
	}
	c.noteMu.Lock()
	dirty, uploads, learned := c.dirty, c.uploads, c.learned
	c.dirty, c.uploads, c.learned = nil, nil, false
	c.noteMu.Unlock()
	// On failure the notes go back, so the next call redoes the work.
	ok := false
	defer func() {
		if ok {
			return
		}
		for id := range dirty {
			c.note(id)
		}
		for id := range uploads {
			c.noteUploads(id)
		}
		if learned {
			c.noteLearned()
		}
	}()

	folders, err := a.db.Folders()
	if err != nil {
		return nil, err
	}
	seen := make(map[uint32]bool, len(folders))
	var remotes []uint32
	for i := range folders {
		f := &folders[i]
		seen[f.ID] = true
		if f.Remote && !f.NoSelect {
			remotes = append(remotes, f.ID)
		}
	}
	// Server folders first: which ones gained messages (and which
	// fingerprints they gained), and did any lose some (or vanish)? On the
	// first call every server fingerprint is collected, so that counting
	// the legacy folders needs no lookups.
	cold := len(c.folders) == 0
	var all map[[16]byte]struct{}
	if cold {
		all = map[[16]byte]struct{}{}
	}
	grown := map[[16]byte]struct{}{}
	anyGrown := false
	shrank := learned
	for id, fc := range c.folders {
		if !seen[id] {
			if fc.c.Remote && fc.c.Messages > 0 {
				shrank = true
			}
			delete(c.folders, id)
		}
	}
	err = a.db.View(func(tx *store.Tx) error {
		for i := range folders {
			f := &folders[i]
			if !f.Remote {
				continue
			}
			fc := c.folders[f.ID]
			if fc != nil && !dirty[f.ID] && fc.sig == sigOf(f) {
				continue
			}
			n, added, err := a.countRemote(tx, f, fc, grown, all)
			if err != nil {
				return err
			}
			if fc != nil && fc.sig.uidValidity == f.UIDValidity && !fc.c.NoSelect {
				// Messages that were there and are no longer.
				if fc.c.Messages+added > n.c.Messages {
					shrank = true
				}
			} else if fc != nil && fc.c.Messages > 0 {
				shrank = true
			}
			anyGrown = anyGrown || added > 0
			c.folders[f.ID] = n
		}
		for i := range folders {
			f := &folders[i]
			if f.Remote {
				continue
			}
			fc := c.folders[f.ID]
			switch {
			case fc == nil || dirty[f.ID] || fc.sig != sigOf(f) || shrank:
				n, err := a.countLocal(tx, f, remotes, all)
				if err != nil {
					return err
				}
				c.folders[f.ID] = n
			case uploads[f.ID] || anyGrown:
				if err := a.recheckLocal(tx, f, fc, grown, uploads[f.ID]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok = true
	out := make([]FolderCount, 0, len(folders))
	for i := range folders {
		if fc := c.folders[folders[i].ID]; fc != nil {
			fc.c.Name, fc.c.Source, fc.c.SpecialUse = folders[i].Name, folders[i].Source, folders[i].SpecialUse
			out = append(out, fc.c)
		}
	}
	return out, nil
}

// countRemote counts a server folder. The fingerprints of the messages
// with a UID above the highest one counted before go into grown (their
// number is added), and every fingerprint into all when it is not nil.
func (a *Account) countRemote(tx *store.Tx, f *store.Folder, old *folderCount, grown, all map[[16]byte]struct{}) (*folderCount, int, error) {
	n := &folderCount{sig: sigOf(f), c: FolderCount{Remote: true, NoSelect: f.NoSelect, Missing: f.Missing}}
	if f.NoSelect {
		return n, 0, nil
	}
	var prevMax uint32
	if old != nil && old.sig.uidValidity == f.UIDValidity {
		prevMax = old.maxID
	}
	added := 0
	err := tx.ForEachMessage(f.ID, func(m *store.Message) error {
		if m.Hidden {
			return nil
		}
		n.c.Messages++
		n.c.Bytes += m.Size
		var fp [16]byte
		known := len(m.FP) == len(fp)
		copy(fp[:], m.FP)
		if m.UID > prevMax {
			added++
			if known {
				grown[fp] = struct{}{}
			}
		}
		if all != nil && known {
			all[fp] = struct{}{}
		}
		n.maxID = max(n.maxID, m.UID)
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNoFolder) {
		return nil, 0, err
	}
	return n, added, nil
}

// countLocal counts a legacy folder and builds its to-go list. With all
// (every server fingerprint) it needs no lookups in the server folders.
func (a *Account) countLocal(tx *store.Tx, f *store.Folder, remotes []uint32, all map[[16]byte]struct{}) (*folderCount, error) {
	n := &folderCount{sig: sigOf(f), c: FolderCount{NoSelect: f.NoSelect, Missing: f.Missing}}
	if f.NoSelect {
		return n, nil
	}
	var ups map[uint32][]store.Upload
	if len(remotes) > 0 {
		var err error
		if ups, err = tx.Uploads(f.ID); err != nil {
			return nil, err
		}
	}
	err := tx.ForEachMessage(f.ID, func(m *store.Message) error {
		if m.Hidden {
			return nil
		}
		n.c.Messages++
		n.c.Bytes += m.Size
		fp := contentOf(m)
		on := len(ups[m.UID]) > 0
		if !on && all != nil && len(remotes) > 0 {
			_, on = all[fp]
		} else {
			for _, rid := range remotes {
				if on {
					break
				}
				if u, _ := tx.FindFP(rid, fp[:]); len(u) > 0 {
					on = true
				}
			}
		}
		if on {
			n.c.OnServer++
			return nil
		}
		n.toGo = append(n.toGo, toGoMsg{uid: m.UID, size: m.Size, fp: fp})
		n.c.ToGo++
		n.c.ToGoBytes += m.Size
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNoFolder) {
		return nil, err
	}
	return n, nil
}

// recheckLocal looks for the to-go messages of a legacy folder among the
// fingerprints the server folders gained and, when they changed, in its
// upload records.
func (a *Account) recheckLocal(tx *store.Tx, f *store.Folder, fc *folderCount, grown map[[16]byte]struct{}, uploadsChanged bool) error {
	if len(fc.toGo) == 0 {
		return nil
	}
	var ups map[uint32][]store.Upload
	if uploadsChanged {
		var err error
		if ups, err = tx.Uploads(f.ID); err != nil {
			return err
		}
	}
	kept := fc.toGo[:0]
	for _, g := range fc.toGo {
		on := len(ups[g.uid]) > 0
		if !on && len(grown) > 0 {
			_, on = grown[g.fp]
		}
		if on {
			fc.c.OnServer++
			fc.c.ToGo--
			fc.c.ToGoBytes -= g.size
			continue
		}
		kept = append(kept, g)
	}
	clear(fc.toGo[len(kept):])
	fc.toGo = kept
	return nil
}
