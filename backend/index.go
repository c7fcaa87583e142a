package backend

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Progress is reported while indexing.
type Progress struct {
	Folder                    string
	FoldersDone, FoldersTotal int
	Messages                  int64 // messages indexed so far in this run
	Bytes                     int64 // archive bytes read so far
	TotalBytes                int64 // archive bytes to read (estimate)
}

// FolderReport summarises one folder after an index run.
type FolderReport struct {
	Name    string
	New     int
	Updated int
	Removed int
	Total   int // visible messages
	Bytes   int64
}

// IndexReport summarises an index run.
type IndexReport struct {
	Folders  []FolderReport
	Problems []string // everything skipped, with the reason
	Bytes    int64    // archive bytes read
	Messages int64    // messages indexed (new or updated)
	Elapsed  time.Duration
}

type plannedFolder struct {
	name   string
	source Source
	af     archive.Folder
}

// plan walks every source and computes the IMAP name of each archive folder.
func (a *Account) plan() ([]plannedFolder, []archive.Problem) {
	var out []plannedFolder
	var probs []archive.Problem
	for _, src := range a.opts.Sources {
		format := src.Format
		if format == "" {
			format = archive.FormatAuto
		}
		if format == archive.FormatAuto {
			f, err := archive.Detect(src.Path)
			if err != nil {
				probs = append(probs, archive.Problem{Path: src.Path, Offset: -1, Err: fmt.Errorf("source %q: %w", src.Name, err)})
				continue
			}
			format = f
		}
		folders, ps, err := archive.Walk(src.Path, format)
		probs = append(probs, ps...)
		if err != nil {
			probs = append(probs, archive.Problem{Path: src.Path, Offset: -1, Err: fmt.Errorf("source %q: %w", src.Name, err)})
			continue
		}
		// A Thunderbird profile with one account: drop the account level.
		if format == archive.FormatThunderbird && len(folders) > 0 {
			first := ""
			same := true
			for _, f := range folders {
				if len(f.Path) < 2 {
					same = false
					break
				}
				if first == "" {
					first = f.Path[0]
				} else if f.Path[0] != first {
					same = false
					break
				}
			}
			if same && first != "" {
				for i := range folders {
					folders[i].Path = folders[i].Path[1:]
				}
			}
		}
		if format == archive.FormatMaildir {
			folders = inboxChildren(folders)
		}
		multi := len(folders) > 1 || (len(folders) == 1 && len(folders[0].Path) > 0)
		flatten := a.opts.Flatten && len(a.opts.Sources) == 1 && multi
		for _, f := range folders {
			comps := append([]string(nil), f.Path...)
			// "Work.mbox" is the folder "Work" (the extension is the file's,
			// and servers refuse "." in names).
			for i, c := range comps {
				if ext := strings.ToLower(filepath.Ext(c)); (ext == ".mbox" || ext == ".mbx") && len(c) > len(ext) {
					comps[i] = c[:len(c)-len(ext)]
				}
			}
			if len(comps) == 0 && multi && f.Kind == archive.KindMaildir {
				comps = []string{"Inbox"}
			}
			var parts []string
			parts = append(parts, a.opts.Prefix)
			if !flatten || len(comps) == 0 {
				parts = append(parts, src.Name)
			}
			parts = append(parts, comps...)
			out = append(out, plannedFolder{name: strings.Join(parts, "/"), source: src, af: f})
		}
	}
	return out, probs
}

// inboxChildren makes a Maildir++ ".INBOX.X" folder a child of the
// Maildir's own inbox (the root, served as "Inbox"): Path ["INBOX", "X"]
// becomes ["Inbox", "X"] and the NoSelect "INBOX" container goes, unless
// the Maildir has a real folder of that name.
func inboxChildren(folders []archive.Folder) []archive.Folder {
	root, realInbox := false, false
	for _, f := range folders {
		if len(f.Path) == 0 && !f.NoSelect {
			root = true
		}
		if len(f.Path) == 1 && strings.EqualFold(f.Path[0], "INBOX") && !f.NoSelect {
			realInbox = true
		}
	}
	if !root || realInbox {
		return folders
	}
	out := folders[:0]
	for _, f := range folders {
		if len(f.Path) > 0 && strings.EqualFold(f.Path[0], "INBOX") {
			if len(f.Path) == 1 {
				continue // the container
			}
			f.Path = append([]string{"Inbox"}, f.Path[1:]...)
		}
		out = append(out, f)
	}
	return out
}

// Index brings the index up to date with every source: new folders and
// messages are added, grown mbox files are read from where they ended,
// rewritten ones are re-read with surviving messages keeping their UIDs.
// It never writes to an archive.
func (a *Account) Index(ctx context.Context, progress func(Progress)) (*IndexReport, error) {
	a.indexMu.Lock()
	defer a.indexMu.Unlock()
	start := time.Now()
	rep := &IndexReport{}
	planned, probs := a.plan()
	for _, p := range probs {
		a.report(p)
		rep.Problems = append(rep.Problems, p.Error())
	}
	var total int64
	for _, p := range planned {
		if p.af.Kind == archive.KindMbox {
			if fi, err := os.Stat(p.af.Loc); err == nil {
				total += fi.Size()
			}
		}
	}
	pr := Progress{FoldersTotal: len(planned), TotalBytes: total}
	seen := map[string]bool{}
	for i, p := range planned {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		seen[p.name] = true
		pr.Folder = p.name
		pr.FoldersDone = i
		if progress != nil {
			progress(pr)
		}
		fr, err := a.indexFolder(ctx, p, &pr, progress)
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			prob := archive.Problem{Path: p.af.Loc, Offset: -1, Err: err}
			a.report(prob)
			rep.Problems = append(rep.Problems, prob.Error())
		}
		if fr != nil {
			rep.Folders = append(rep.Folders, *fr)
			rep.Messages += int64(fr.New + fr.Updated)
		}
	}
	pr.FoldersDone = len(planned)
	if progress != nil {
		progress(pr)
	}
	// Archive folders that vanished from their source are kept (their
	// overlay and UIDs may matter when the drive comes back) but flagged.
	folders, err := a.db.Folders()
	if err == nil {
		for _, f := range folders {
			if f.Source == "" || f.Kind == 0 || seen[f.Name] || f.Missing {
				continue
			}
			f := f
			f.Missing = true
			_ = a.db.Update(func(tx *store.Tx) error { return tx.PutFolder(&f) })
			prob := archive.Problem{Path: f.Loc, Offset: -1, Err: fmt.Errorf("folder %q is no longer in the archive", f.Name)}
			a.report(prob)
			rep.Problems = append(rep.Problems, prob.Error())
		}
	}
	rep.Bytes = pr.Bytes
	rep.Elapsed = time.Since(start)
	a.probMu.Lock()
	a.lastIndexed = time.Now()
	a.probMu.Unlock()
	return rep, nil
}

// ensureFolder returns the store folder for a planned archive folder,
// creating it and any missing parents.
func (a *Account) ensureFolder(p plannedFolder) (*store.Folder, error) {
	var f *store.Folder
	err := a.db.Update(func(tx *store.Tx) error {
		// parents
		parts := strings.Split(p.name, "/")
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], "/")
			if _, err := tx.Folder(parent); err == nil {
				continue
			}
			if err := tx.CreateFolder(&store.Folder{Name: parent, NoSelect: true, Subscribed: true, Source: p.source.Name}); err != nil {
				return err
			}
		}
		existing, err := tx.Folder(p.name)
		if err == nil {
			changed := false
			kind := int(p.af.Kind)
			if p.af.NoSelect {
				kind = 0
			}
			if existing.Missing || existing.Loc != p.af.Loc || existing.Kind != kind || existing.SpecialUse != p.af.SpecialUse || existing.NoSelect != p.af.NoSelect || existing.Source != p.source.Name {
				changed = true
			}
			if existing.Loc != p.af.Loc || existing.Kind != kind {
				existing.ScanEnd = 0 // different backing: full rescan, UIDs matched by fingerprint
				existing.FileSize = -1
			}
			existing.Missing = false
			existing.Loc = p.af.Loc
			existing.Kind = kind
			existing.SpecialUse = p.af.SpecialUse
			existing.NoSelect = p.af.NoSelect
			existing.Source = p.source.Name
			f = existing
			if changed {
				return tx.PutFolder(existing)
			}
			return nil
		}
		if !errors.Is(err, store.ErrNoFolder) {
			return err
		}
		nf := &store.Folder{Name: p.name, Source: p.source.Name, Kind: int(p.af.Kind), Loc: p.af.Loc, SpecialUse: p.af.SpecialUse, NoSelect: p.af.NoSelect, Subscribed: true}
		if p.af.NoSelect {
			nf.Kind = 0
		}
		if err := tx.CreateFolder(nf); err != nil {
			return err
		}
		f = nf
		return nil
	})
	return f, err
}

func (a *Account) indexFolder(ctx context.Context, p plannedFolder, pr *Progress, progress func(Progress)) (*FolderReport, error) {
	f, err := a.ensureFolder(p)
	if err != nil {
		return nil, err
	}
	fr := &FolderReport{Name: p.name}
	if f.NoSelect {
		return fr, nil
	}
	b, err := a.box(f)
	if err != nil {
		return nil, err
	}
	switch p.af.Kind {
	case archive.KindMbox:
		err = a.indexMbox(ctx, b, f, fr, pr, progress)
	case archive.KindMaildir, archive.KindEML:
		err = a.indexFiles(ctx, b, f, p.af, fr, pr, progress)
	case archive.KindPST:
		err = a.indexPST(ctx, b, f, p.af, fr, pr, progress)
	case archive.KindBecky, archive.KindDBX, archive.KindEMLX:
		err = a.indexItems(ctx, b, f, p.af, fr, pr, progress)
	}
	b.mu.Lock()
	fr.Total = len(b.msgs)
	for _, m := range b.msgs {
		fr.Bytes += m.size
	}
	b.mu.Unlock()
	return fr, err
}

// describe builds the index record of one archive message from its served
// bytes.
func describe(served []byte, fromDate time.Time, meta archive.Meta) (*store.Message, []byte) {
	hdr, _ := message.SplitHeader(served)
	date, _ := message.InternalDate(hdr, fromDate)
	if date.IsZero() {
		date = time.Unix(0, 0).UTC()
	}
	_, off := date.Zone()
	fp := message.ContentFP(served)
	hfp := message.HeaderFP(hdr)
	m := &store.Message{
		CRC:       crc(served),
		Size:      int64(len(served)),
		Date:      date.Unix(),
		DateZone:  int32(off),
		Flags:     meta.Flags,
		ArchFlags: meta.Flags,
		FP:        fp[:],
		HFP:       hfp[:],
		MsgID:     message.MessageID(hdr),
		UIDL:      meta.UIDL,
	}
	env := message.EncodeEnvelope(message.Envelope(hdr))
	return m, env
}

const batchMessages = 1000
const batchBytes = 32 << 20

type pendingMsg struct {
	m   *store.Message
	env []byte
}

// commitBatch writes new and updated messages of one folder, then updates
// the shared mailbox and notifies sessions.
func (a *Account) commitBatch(b *mailbox, fr *FolderReport, adds []pendingMsg, updates []*store.Message, deletes []uint32, folderUpdate func(f *store.Folder)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var added []*store.Message
	var uidNext uint32
	err := a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder(b.name)
		if err != nil {
			return err
		}
		if f.ID != b.id {
			return fmt.Errorf("folder %q changed identity during indexing", b.name)
		}
		for _, m := range updates {
			if err := tx.PutMessage(f.ID, m); err != nil {
				return err
			}
		}
		for _, uid := range deletes {
			if err := tx.DeleteMessage(f.ID, uid); err != nil && !errors.Is(err, store.ErrNoMessage) {
				return err
			}
		}
		for _, p := range adds {
			if err := tx.AddMessage(f, p.m); err != nil {
				return err
			}
			if p.env != nil {
				if err := tx.PutEnvelope(f.ID, p.m.UID, p.env); err != nil {
					return err
				}
			}
			added = append(added, p.m)
		}
		if folderUpdate != nil {
			folderUpdate(f)
		}
		uidNext = f.UIDNext
		return tx.PutFolder(f)
	})
	if err != nil {
		return err
	}
	if len(deletes) > 0 {
		del := make(map[imap.UID]gone, len(deletes))
		for _, u := range deletes {
			del[imap.UID(u)] = gone{}
		}
		b.removeLocked(del)
	}
	for _, m := range updates {
		if seq := b.seqOfLocked(imap.UID(m.UID)); seq != 0 {
			b.msgs[seq-1].size = m.Size
			b.msgs[seq-1].date = message.ClampDate(m.InternalDate())
		}
	}
	b.appendLocked(added, uidNext)
	fr.New += len(adds)
	fr.Updated += len(updates)
	fr.Removed += len(deletes)
	return nil
}

// indexMbox indexes one mbox file: incrementally when it only grew, fully
// (matching survivors by fingerprint) when it was rewritten.
func (a *Account) indexMbox(ctx context.Context, b *mailbox, f *store.Folder, fr *FolderReport, pr *Progress, progress func(Progress)) error {
	fi, err := os.Stat(f.Loc)
	if err != nil {
		return fmt.Errorf("mbox %s: %w", f.Loc, err)
	}
	size, mtime := fi.Size(), fi.ModTime().UnixNano()
	if f.ScanEnd > 0 && size == f.FileSize && mtime == f.FileMtime && f.ScanEnd == size {
		pr.Bytes += size
		return nil
	}
	file, err := os.Open(f.Loc) // read-only: the archive is sealed
	if err != nil {
		return fmt.Errorf("mbox %s: %w", f.Loc, err)
	}
	defer file.Close()

	incremental := false
	if f.ScanEnd > 0 && size >= f.ScanEnd && f.LastLen > 0 {
		raw := make([]byte, f.LastLen)
		if _, err := file.ReadAt(raw, f.LastOff); err == nil && crc(archive.ServeMbox(raw)) == f.LastCRC {
			incremental = true
		}
	}

	var (
		adds    []pendingMsg
		updates []*store.Message
		addB    int64
		buf     []byte
		// The last entry seen: its record (UID assigned at commit for new ones).
		lastMsg          *store.Message
		lastOff, lastLen int64
	)
	// Existing mbox-backed messages, for the full rescan: fingerprint → records.
	byFP := map[string][]*store.Message{}
	var existing []*store.Message
	if !incremental {
		err := a.db.View(func(tx *store.Tx) error {
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if m.Src == store.SrcMbox {
					existing = append(existing, m)
					byFP[string(m.FP)] = append(byFP[string(m.FP)], m)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	used := map[uint32]bool{}
	startOff := int64(0)
	if incremental {
		startOff = f.LastOff
	}
	_, probs, err := archive.ScanMbox(file, f.Loc, startOff, size, func(e archive.MboxEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		pr.Bytes += e.Length
		buf = archive.AppendServedMbox(buf[:0], e.Raw)
		meta := archive.ParseMeta(e.Raw)
		if incremental && e.Offset == f.LastOff {
			// The entry we ended on last time: unchanged, or still being written.
			var old *store.Message
			_ = a.db.View(func(tx *store.Tx) error {
				var err error
				old, err = tx.Message(f.ID, f.LastUID)
				return err
			})
			if old == nil {
				return nil
			}
			lastMsg, lastOff, lastLen = old, e.Offset, e.Length
			if e.Length == f.LastLen {
				return nil
			}
			m, _ := describe(buf, e.FromDate, meta)
			m.UID, m.Src, m.Offset, m.Length = old.UID, store.SrcMbox, e.Offset, e.Length
			m.Flags, m.Hidden = old.Flags, old.Hidden
			updates = append(updates, m)
			lastMsg = m
			return nil
		}
		if meta.Expunged {
			return nil // Thunderbird's expunged bit: not shown
		}
		m, env := describe(buf, e.FromDate, meta)
		m.Src, m.Offset, m.Length = store.SrcMbox, e.Offset, e.Length
		lastOff, lastLen = e.Offset, e.Length
		if !incremental {
			for _, old := range byFP[string(m.FP)] {
				if used[old.UID] {
					continue
				}
				used[old.UID] = true
				m.UID = old.UID
				m.Flags, m.Hidden = old.Flags, old.Hidden
				if old.Offset != m.Offset || old.Length != m.Length || old.CRC != m.CRC || old.Size != m.Size {
					updates = append(updates, m)
				}
				lastMsg = m
				return nil
			}
		}
		adds = append(adds, pendingMsg{m: m, env: env})
		lastMsg = m
		addB += e.Length
		pr.Messages++
		if progress != nil && pr.Messages%256 == 0 {
			progress(*pr)
		}
		if len(adds) >= batchMessages || addB >= batchBytes {
			if err := a.commitBatch(b, fr, adds, updates, nil, nil); err != nil {
				return err
			}
			adds, updates, addB = nil, nil, 0
		}
		return nil
	})
	for _, p := range probs {
		a.report(p)
	}
	if err != nil {
		return fmt.Errorf("mbox %s: %w", f.Loc, err)
	}
	var deletes []uint32
	if !incremental {
		for _, m := range existing {
			if !used[m.UID] {
				deletes = append(deletes, m.UID)
			}
		}
	}
	return a.commitBatch(b, fr, adds, updates, deletes, func(sf *store.Folder) {
		sf.ScanEnd, sf.FileSize, sf.FileMtime = size, size, mtime
		if lastMsg != nil {
			sf.LastOff, sf.LastLen, sf.LastCRC, sf.LastUID = lastOff, lastLen, lastMsg.CRC, lastMsg.UID
		} else if !incremental {
			sf.LastOff, sf.LastLen, sf.LastCRC, sf.LastUID = 0, 0, 0, 0
		}
	})
}

// indexFiles indexes a Maildir or .eml folder: one message per file, keyed
// by the file's unique name (Maildir flag changes rename files).
func (a *Account) indexFiles(ctx context.Context, b *mailbox, f *store.Folder, af archive.Folder, fr *FolderReport, pr *Progress, progress func(Progress)) error {
	files, probs, err := archive.ListFiles(af)
	for _, p := range probs {
		a.report(p)
	}
	if err != nil {
		return err
	}
	byKey := map[string]*store.Message{}
	err = a.db.View(func(tx *store.Tx) error {
		return tx.ForEachMessage(f.ID, func(m *store.Message) error {
			if m.Src == store.SrcFile {
				byKey[fileKey(m.Path)] = m
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var (
		adds    []pendingMsg
		updates []*store.Message
		addB    int64
	)
	present := map[string]bool{}
	for _, fe := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := fileKey(fe.Path)
		present[key] = true
		if old, ok := byKey[key]; ok {
			if old.Path != fe.Path {
				// Renamed by the old client (Maildir flags changed).
				m := *old
				m.Path = fe.Path
				if sameStrings(old.Flags, old.ArchFlags) {
					m.Flags = fe.Flags
				}
				m.ArchFlags = fe.Flags
				updates = append(updates, &m)
			}
			continue
		}
		raw, err := readFileLimited(fe.Path)
		if err != nil {
			a.report(archive.Problem{Path: fe.Path, Offset: -1, Err: err})
			continue
		}
		pr.Bytes += int64(len(raw))
		served := archive.ServeFile(raw)
		meta := archive.ParseMeta(raw)
		if meta.Expunged {
			continue
		}
		if af.Kind == archive.KindMaildir {
			meta.Flags = mergeFlags(meta.Flags, fe.Flags)
		}
		m, env := describe(served, time.Time{}, meta)
		if m.Date == 0 && !fe.ModTime.IsZero() {
			m.Date = fe.ModTime.Unix()
		}
		m.Src, m.Path = store.SrcFile, fe.Path
		adds = append(adds, pendingMsg{m: m, env: env})
		addB += int64(len(raw))
		pr.Messages++
		if progress != nil && pr.Messages%256 == 0 {
			progress(*pr)
		}
		if len(adds) >= batchMessages || addB >= batchBytes {
			if err := a.commitBatch(b, fr, adds, updates, nil, nil); err != nil {
				return err
			}
			adds, updates, addB = nil, nil, 0
		}
	}
	var deletes []uint32
	for key, m := range byKey {
		if !present[key] {
			deletes = append(deletes, m.UID)
		}
	}
	return a.commitBatch(b, fr, adds, updates, deletes, nil)
}

// fileKey is the identity of a Maildir/eml file across flag renames.
func fileKey(p string) string {
	dir, base := filepath.Split(p)
	if i := strings.IndexAny(base, ":!"); i > 0 && strings.Contains(base[i:], "2,") {
		base = base[:i]
	}
	// Maildir moves files from new/ to cur/.
	d := filepath.Base(filepath.Clean(dir))
	if d == "new" || d == "cur" {
		dir = filepath.Dir(filepath.Clean(dir))
	}
	return filepath.Join(dir, base)
}

// maxMessageSize bounds what the bridge reads into memory for one message.
const maxMessageSize = 256 << 20

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path) // read-only: the archive is sealed
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxMessageSize {
		return nil, fmt.Errorf("message file is %d bytes, more than the %d MiB limit", fi.Size(), maxMessageSize>>20)
	}
	buf := make([]byte, fi.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return buf[:n], nil
}

func mergeFlags(a, b []string) []string {
	out := append([]string{}, a...)
	for _, f := range b {
		found := false
		for _, x := range out {
			if x == f {
				found = true
				break
			}
		}
		if !found {
			out = append(out, f)
		}
	}
	return fromFlags(toFlags(out))
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
