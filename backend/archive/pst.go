package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outlook .pst files. Walk(path, FormatPST) lists the mail folders below
// the PST's "Top of Personal Folders" (the IPM subtree); ScanPST rebuilds
// the items of one folder as RFC 5322 / MIME messages (pst_message.go).
//
// Implementation notes:
//
//   - Sealed: the file is opened with os.Open and only read (ReadAt).
//   - A folder's Ref is its node ID (NID) in decimal. A message's ID is its
//     NID in decimal: stable for as long as the item exists in the file.
//   - Items are delivered in the order of the folder's contents table, the
//     same order on every run.
//   - Memory: go-pst keeps the file's node and block indexes in memory
//     (about 130 bytes per block, some 50 MB for a 2 GB file); items are
//     read and rebuilt one at a time. The last opened file's indexes are
//     kept for a short while, so Walk and the ScanPST calls that follow it
//     open the file once.

// ErrPSTPassword is returned (wrapped, naming the file) for a
// password-protected PST.
var ErrPSTPassword = errors.New("the .pst file is password-protected; popbridge cannot open password-protected .pst files (remove the password in Outlook: File > Account Settings > Data Files > Settings > Change Password, leave the new password empty)")

// ErrPSTCorrupt is wrapped by errors about a PST file's structure: not a
// PST, damaged, or a variant popbridge cannot read. Running Outlook's
// scanpst.exe on a copy of the file may repair it.
var ErrPSTCorrupt = errPSTCorrupt

// PSTMessage is one message rebuilt from a PST item.
type PSTMessage struct {
	// ID identifies the item within its PST (its node ID, in decimal).
	ID string
	// Raw is the rebuilt RFC 5322 message: CRLF line ends, the same bytes
	// on every run.
	Raw []byte
	// Flags are IMAP flags: \Seen, \Answered, $Forwarded, \Flagged, \Draft.
	Flags []string
	// Received is when the item was delivered (else submitted, else its
	// Date field); zero if unknown.
	Received time.Time
}

// PSTStats counts what ScanPST found in a folder.
type PSTStats struct {
	Messages int // delivered to fn
	NonMail  int // contacts, appointments, tasks, notes… skipped
}

// Property IDs ([MS-OXPROPS]).
const (
	prImportance           = 0x0017
	prMessageClass         = 0x001A
	prSubject              = 0x0037
	prClientSubmitTime     = 0x0039
	prSentRepName          = 0x0042
	prSentRepEmail         = 0x0065
	prTransportHeaders     = 0x007D
	prSenderName           = 0x0C1A
	prSenderAddrType       = 0x0C1E
	prSenderEmail          = 0x0C1F
	prRecipientType        = 0x0C15
	prDeliveryTime         = 0x0E06
	prMessageFlags         = 0x0E07
	prBody                 = 0x1000
	prRTFCompressed        = 0x1009
	prHTML                 = 0x1013
	prInternetMessageID    = 0x1035
	prInternetReferences   = 0x1039
	prInReplyTo            = 0x1042
	prIconIndex            = 0x1080
	prLastVerbExecuted     = 0x1081
	prFlagStatus           = 0x1090
	prAttrHidden           = 0x10F4
	prDisplayName          = 0x3001
	prAddrType             = 0x3002
	prEmailAddress         = 0x3003
	prCreationTime         = 0x3007
	prContentCount         = 0x3602
	prContainerClass       = 0x3613
	prIPMSubtreeEntryID    = 0x35E0
	prIPMWastebasket       = 0x35E3
	prIPMSentmail          = 0x35E4
	prIPMDraftsEntryID     = 0x36D7
	prAdditionalRenEntries = 0x36D8
	prAttachData           = 0x3701
	prAttachFilename       = 0x3704
	prAttachMethod         = 0x3705
	prAttachLongFilename   = 0x3707
	prAttachMimeTag        = 0x370E
	prAttachContentID      = 0x3712
	prAttachContentLoc     = 0x3713
	prSMTPAddress          = 0x39FE
	prInternetCPID         = 0x3FDE
	prMessageCodepage      = 0x3FFD
	prSenderSMTP           = 0x5D01
	prSentRepSMTP          = 0x5D02
	prPSTPassword          = 0x67FF
	prLTPRowID             = 0x67F2
	prAttachmentHidden     = 0x7FFE
)

// walkPST lists the folders of the PST at abs.
func walkPST(abs string) ([]Folder, []Problem, error) {
	var folders []Folder
	var problems []Problem
	err := withPST(abs, func(p *pstFile) error {
		var err error
		folders, problems, err = walkOpenPST(p, abs)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pst %s: %w", abs, err)
	}
	return folders, problems, nil
}

// walkOpenPST lists the folders of an open PST.
func walkOpenPST(p *pstFile, abs string) ([]Folder, []Problem, error) {
	w := &pstWalker{p: p, abs: abs, seen: make(map[uint32]bool)}
	if err := guard(w.walk); err != nil {
		return nil, nil, err
	}
	ww := &walker{folders: w.folders, problems: w.problems}
	return ww.finish(), ww.problems, nil
}

type pstWalker struct {
	p        *pstFile
	abs      string
	seen     map[uint32]bool
	special  map[uint32]string
	folders  []Folder
	problems []Problem
}

func (w *pstWalker) report(format string, args ...any) {
	w.problems = append(w.problems, problem(w.abs, -1, format, args...))
}

func (w *pstWalker) walk() error {
	store, err := w.p.store()
	if err != nil {
		return err
	}
	top := uint32(nidRootFolder)
	if id, ok, _ := store.bin(prIPMSubtreeEntryID); ok {
		if nid, ok := entryIDNID(id); ok {
			top = nid
		}
	}
	w.special = make(map[uint32]string)
	for _, sp := range []struct {
		id  uint16
		use string
	}{{prIPMWastebasket, `\Trash`}, {prIPMSentmail, `\Sent`}} {
		if b, ok, _ := store.bin(sp.id); ok {
			if nid, ok := entryIDNID(b); ok {
				w.special[nid] = sp.use
			}
		}
	}
	for _, nid := range []uint32{top, nidRootFolder} {
		n, err := w.p.node(nid)
		if err != nil {
			continue
		}
		props, err := w.p.openProps(n)
		if err != nil {
			continue
		}
		if b, ok, _ := props.bin(prIPMDraftsEntryID); ok {
			if nid, ok := entryIDNID(b); ok {
				w.special[nid] = `\Drafts`
			}
		}
		// PR_ADDITIONAL_REN_ENTRYIDS: [Conflicts, Sync Issues, Local
		// Failures, Server Failures, Junk E-mail, …].
		if ids := multiBinary(props, prAdditionalRenEntries); len(ids) > 4 {
			if nid, ok := entryIDNID(ids[4]); ok {
				w.special[nid] = `\Junk`
			}
		}
	}
	if _, err := w.p.node(top); err != nil {
		return corrupt("the top folder (node %#x) is missing", top)
	}
	w.folder(top, nil, 0)
	return nil
}

// folder adds folder nid (named path) if it holds mail, then its children.
func (w *pstWalker) folder(nid uint32, path []string, depth int) {
	if w.seen[nid] {
		w.report("folder %q: listed twice; skipped", strings.Join(path, "/"))
		return
	}
	w.seen[nid] = true
	if depth > maxDepth {
		w.report("folder %q: folders nested too deeply; skipped", strings.Join(path, "/"))
		return
	}
	where := "the top folder"
	if len(path) > 0 {
		where = fmt.Sprintf("folder %q", strings.Join(path, "/"))
	}
	n, err := w.p.node(nid)
	if err != nil {
		w.report("%s: %v; skipped", where, err)
		return
	}
	props, err := w.p.openProps(n)
	if err != nil {
		w.report("%s: %v; skipped", where, err)
		return
	}
	counts, err := w.p.classCounts(nid)
	if err != nil {
		w.report("%s: cannot read its list of items: %v", where, err)
	}
	mail := counts[""]
	var skipped []string
	nonMail := 0
	for i, k := range nonMailKinds {
		if c := counts[k.what]; c > 0 && !slices.ContainsFunc(nonMailKinds[:i], func(e struct{ prefix, what string }) bool { return e.what == k.what }) {
			nonMail += c
			skipped = append(skipped, plural(c, k.what))
		}
	}
	class := props.str(prContainerClass, w.p.cp)
	hidden := props.bool(prAttrHidden)
	switch {
	case mail > 0 || (nonMail == 0 && len(path) > 0 && !hidden && isMailContainer(class)):
		f := Folder{Path: path, Kind: KindPST, Loc: w.abs, Ref: strconv.FormatUint(uint64(nid), 10)}
		if len(path) > 0 {
			f.SpecialUse = w.special[nid]
			if f.SpecialUse == "" {
				f.SpecialUse = SpecialUse(path[len(path)-1])
			}
		}
		w.folders = append(w.folders, f)
		if nonMail > 0 {
			w.report("%s: skipped %s (not mail)", where, strings.Join(skipped, ", "))
		}
	case nonMail > 0:
		w.report("%s: skipped %s (not mail)", where, strings.Join(skipped, ", "))
	}
	children, err := w.p.subfolders(nid)
	if err != nil {
		w.report("%s: cannot read its subfolders: %v", where, err)
	}
	used := make(map[string]bool)
	for _, c := range children {
		cn, err := w.p.node(c)
		if err != nil {
			w.report("%s: subfolder %v; skipped", where, err)
			continue
		}
		cp, err := w.p.openProps(cn)
		if err != nil {
			w.report("%s: subfolder %#x: %v; skipped", where, c, err)
			continue
		}
		raw := cp.str(prDisplayName, w.p.cp)
		name, err := cleanName(raw)
		if err != nil {
			w.report("%s: subfolder: %v", where, err)
		}
		if strings.TrimSpace(name) == "" {
			name = "Folder " + strconv.FormatUint(uint64(c), 10)
		}
		base := name
		for k := 2; used[strings.ToLower(name)]; k++ {
			name = fmt.Sprintf("%s (%d)", base, k)
		}
		if name != base {
			w.report("%s: two subfolders named %q; the second is shown as %q", where, base, name)
		}
		used[strings.ToLower(name)] = true
		w.folder(c, appendPath(path, name), depth+1)
	}
}

// isMailContainer reports whether a folder's container class is that of a
// mail folder ("" for folders made by older Outlook or other programs).
func isMailContainer(class string) bool {
	c := strings.ToLower(class)
	return c == "" || c == "ipf" || hasClassPrefix(c, "ipf.note") || hasClassPrefix(c, "ipf.imap") || hasClassPrefix(c, "ipf.post")
}

// hasClassPrefix reports whether class (lower case) is prefix or a
// sub-class of it ("ipm.note" matches "ipm.note" and "ipm.note.smime").
func hasClassPrefix(class, prefix string) bool {
	return class == prefix || strings.HasPrefix(class, prefix+".")
}

// nonMailKinds are the item classes that are not mail, with how they are
// counted; every other class (IPM.Note, meeting requests, reports, posts,
// unknown classes) is served as mail.
var nonMailKinds = []struct{ prefix, what string }{
	{"ipm.contact", "contact"},
	{"ipm.abchperson", "contact"},
	{"ipm.distlist", "distribution list"},
	{"ipm.appointment", "appointment"},
	{"ipm.ole.class.{00061055-0000-0000-c000-000000000046}", "appointment"},
	{"ipm.task", "task"},
	{"ipm.stickynote", "note"},
	{"ipm.activity", "journal entry"},
	{"ipm.configuration", "configuration item"},
	{"ipm.microsoft", "configuration item"},
}

// itemKind returns "" for a mail item class, else what the item is.
func itemKind(class string) string {
	c := strings.ToLower(strings.TrimSpace(class))
	for _, k := range nonMailKinds {
		if hasClassPrefix(c, k.prefix) {
			return k.what
		}
	}
	return ""
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "y") {
		return fmt.Sprintf("%d %sies", n, what[:len(what)-1])
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// store opens the message store and refuses password-protected files.
func (p *pstFile) store() (*pstProps, error) {
	n, err := p.node(nidMessageStore)
	if err != nil {
		return nil, corrupt("no message store: %v", err)
	}
	props, err := p.openProps(n)
	if err != nil {
		return nil, fmt.Errorf("message store: %w", err)
	}
	if pw, ok := props.int32(prPSTPassword); ok && pw != 0 {
		return nil, ErrPSTPassword
	}
	return props, nil
}

// contentsItem is one row of a folder's contents table.
type contentsItem struct {
	nid   uint32
	class string
	known bool // class came from the table
}

// contents lists the items of folder nid in table order.
func (p *pstFile) contents(nid uint32) ([]contentsItem, error) {
	n, err := p.node(nid&^0x1F | nidTypeContentsTable)
	if err != nil {
		return nil, nil // a folder that never held items has no table
	}
	t, err := p.openTable(n)
	if err != nil {
		return nil, err
	}
	items := make([]contentsItem, 0, len(t.rows))
	for i, row := range t.rows {
		id, ok := t.int32(i, prLTPRowID)
		if !ok {
			id = int32(binary.LittleEndian.Uint32(row))
		}
		class, known := t.str(i, prMessageClass, p.cp)
		items = append(items, contentsItem{nid: uint32(id), class: class, known: known})
	}
	return items, nil
}

// classCounts counts the items of folder nid by itemKind ("" = mail).
func (p *pstFile) classCounts(nid uint32) (map[string]int, error) {
	items, err := p.contents(nid)
	counts := make(map[string]int)
	for _, it := range items {
		counts[itemKind(it.class)]++
	}
	return counts, err
}

// subfolders lists the child folders of folder nid in table order.
func (p *pstFile) subfolders(nid uint32) ([]uint32, error) {
	n, err := p.node(nid&^0x1F | nidTypeHierarchyTable)
	if err != nil {
		return nil, nil
	}
	t, err := p.openTable(n)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for i, row := range t.rows {
		id, ok := t.int32(i, prLTPRowID)
		if !ok {
			id = int32(binary.LittleEndian.Uint32(row))
		}
		c := uint32(id)
		if c&0x1F != nidTypeNormalFolder {
			continue // search folders
		}
		out = append(out, c)
	}
	return out, nil
}

// entryIDNID returns the NID in a PST entry ID (flags, provider UID, NID).
func entryIDNID(b []byte) (uint32, bool) {
	if len(b) != 24 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[20:]), true
}

// multiBinary reads a PtypMultipleBinary property.
func multiBinary(props *pstProps, id uint16) [][]byte {
	typ, b, ok, _ := props.raw(id)
	if !ok || typ != ptMultiBin || len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > len(b)/4 {
		return nil
	}
	offs := make([]int, n+1)
	for i := range n {
		if 4+4*i+4 > len(b) {
			return nil
		}
		offs[i] = int(binary.LittleEndian.Uint32(b[4+4*i:]))
	}
	offs[n] = len(b)
	out := make([][]byte, n)
	for i := range n {
		if offs[i] > offs[i+1] || offs[i+1] > len(b) {
			return nil
		}
		out[i] = b[offs[i]:offs[i+1]]
	}
	return out
}

// ScanPST calls fn with the messages of the folder ref (Folder.Ref from
// Walk) of the PST at path, one at a time, in a stable order. Non-mail
// items are counted, not delivered. A message that can only be partly
// rebuilt is delivered with what could be, and a Problem names the file,
// folder and item; an item that cannot be read at all is only a Problem.
// err is returned for an unusable file or folder, or when fn fails (its
// error, unwrapped).
func ScanPST(path, ref string, fn func(PSTMessage) error) (PSTStats, []Problem, error) {
	var stats PSTStats
	var problems []Problem
	nid64, err := strconv.ParseUint(ref, 10, 32)
	if err != nil || uint32(nid64)&0x1F != nidTypeNormalFolder {
		return stats, nil, fmt.Errorf("pst %s: %q is not a folder reference", path, ref)
	}
	nid := uint32(nid64)
	err = withPST(path, func(p *pstFile) error {
		var err error
		stats, problems, err = scanOpenPST(p, path, nid, fn)
		return err
	})
	var fe fnError
	switch {
	case errors.As(err, &fe):
		return stats, problems, fe.err
	case err != nil:
		return stats, problems, fmt.Errorf("pst %s: %w", path, err)
	}
	return stats, problems, nil
}

// fnError carries the error of ScanPST's callback through withPST.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// scanOpenPST is ScanPST on an open PST.
func scanOpenPST(p *pstFile, path string, nid uint32, fn func(PSTMessage) error) (PSTStats, []Problem, error) {
	var stats PSTStats
	var problems []Problem
	ref := strconv.FormatUint(uint64(nid), 10)
	if err := guard(func() error { _, err := p.store(); return err }); err != nil {
		return stats, nil, err
	}
	if _, err := p.node(nid); err != nil {
		return stats, nil, fmt.Errorf("folder %s: %w", ref, err)
	}
	var items []contentsItem
	if err := guard(func() error {
		var err error
		items, err = p.contents(nid)
		return err
	}); err != nil {
		return stats, nil, fmt.Errorf("folder %s: list of items: %w", ref, err)
	}
	report := func(id string, err error) {
		problems = append(problems, Problem{Path: path, Offset: -1, Err: fmt.Errorf("folder %s, item %s: %w", ref, id, err)})
	}
	for _, it := range items {
		id := strconv.FormatUint(uint64(it.nid), 10)
		if it.known && itemKind(it.class) != "" {
			stats.NonMail++
			continue
		}
		var msg PSTMessage
		var errs []error
		skip := false
		err := guard(func() error {
			var err error
			msg, errs, skip, err = p.message(it.nid, id)
			return err
		})
		if err != nil {
			report(id, fmt.Errorf("unreadable, skipped: %w", err))
			continue
		}
		if skip {
			stats.NonMail++
			continue
		}
		for _, e := range errs {
			report(id, e)
		}
		stats.Messages++
		if err := fn(msg); err != nil {
			return stats, problems, fnError{err}
		}
	}
	return stats, problems, nil
}

// The open-file cache: the last PST opened stays open (with its indexes)
// until another one is needed or it has been idle for pstIdle.
const pstIdle = 30 * time.Second

var pstCache struct {
	sync.Mutex
	key   pstKey
	p     *pstFile
	f     *os.File
	users int
	timer *time.Timer
}

type pstKey struct {
	path  string
	size  int64
	mtime time.Time
}

// withPST runs fn with the open PST at path.
func withPST(path string, fn func(*pstFile) error) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return corrupt("not a regular file")
	}
	key := pstKey{path: path, size: fi.Size(), mtime: fi.ModTime()}
	c := &pstCache
	c.Lock()
	if c.p != nil && c.key == key {
		c.users++
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		p := c.p
		c.Unlock()
		defer releasePST()
		return fn(p)
	}
	c.Unlock()
	p, f, err := openPSTFile(path)
	if err != nil {
		return err
	}
	c.Lock()
	if c.users == 0 {
		if c.f != nil {
			c.f.Close()
		}
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		c.key, c.p, c.f, c.users = key, p, f, 1
		c.Unlock()
		defer releasePST()
		return fn(p)
	}
	c.Unlock()
	defer f.Close()
	return fn(p)
}

// dropPSTCache closes the cached file if no one uses it.
func dropPSTCache() {
	c := &pstCache
	c.Lock()
	defer c.Unlock()
	if c.users == 0 && c.f != nil {
		if c.timer != nil {
			c.timer.Stop()
		}
		c.f.Close()
		c.key, c.p, c.f, c.timer = pstKey{}, nil, nil, nil
	}
}

func releasePST() {
	c := &pstCache
	c.Lock()
	defer c.Unlock()
	c.users--
	if c.users > 0 {
		return
	}
	f := c.f
	c.timer = time.AfterFunc(pstIdle, func() {
		c.Lock()
		defer c.Unlock()
		if c.users == 0 && c.f == f {
			c.f.Close()
			c.key, c.p, c.f, c.timer = pstKey{}, nil, nil, nil
		}
	})
}

// sortedFlags returns flags sorted and without duplicates.
func sortedFlags(fs []string) []string {
	s := flagSet(fs)
	return slices.Clip(s.sorted())
}
