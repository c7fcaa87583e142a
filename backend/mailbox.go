package backend

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// msgInfo is the in-memory metadata of one visible message.
type msgInfo struct {
	uid   imap.UID
	flags []imap.Flag // sorted, canonical case for system flags
	size  int64
	date  time.Time // clamped for clients
}

// mailbox is the shared in-memory view of one folder: the visible
// messages in UID order, the log of changes that sessions have not all
// seen yet, and the messages expunged while some session can still
// address them (limbo). mu guards everything and is held across the store
// commit of any change (commit first, then notify).
//
// Every session that has the folder selected owns a view: its own list of
// UIDs (the client's sequence numbers) and its position in the change log.
// A view applies the log when the session polls (before the tagged reply
// of a command, or while IDLE), so a message another session expunged
// stays addressable — FETCH still returns its bytes — until this session
// was sent the EXPUNGE (RFC 3501 7.4.1; design.md "Everyone": two devices
// at once). The bytes of an expunged bridge-owned message are removed only
// when no view holds it any more.
type mailbox struct {
	acct *Account
	id   uint32

	remote bool       // mirror of an upstream folder
	syncMu sync.Mutex // one upstream sync of this folder at a time
	synced time.Time  // start of the last complete sync (under syncMu)
	pinned bool       // the server's UIDVALIDITY was made to stick (under syncMu; see syncRemoteIf)

	mu          sync.Mutex
	name        string
	srvName     string // upstream mirrors: the folder's name on the server
	uidValidity uint32
	uidNext     uint32
	msgs        []msgInfo
	changed     chan struct{} // closed and replaced on every change (wakes IDLE)

	// Upstream mirrors: the local-change generation and the UIDs each
	// change touched. A STORE or EXPUNGE the bridge sends marks its UIDs
	// (inFlight while it runs); a sync that began before a mark does not
	// apply what it read of those UIDs, which may predate the change.
	gen     uint64
	touched map[imap.UID]uint64
	// expunging holds the bytes of upstream messages being expunged, for
	// sessions that FETCH them before the mirror drops them into limbo.
	expunging map[imap.UID][]byte

	views  map[*view]struct{}      // sessions that have it selected
	events []event                 // changes not yet applied by every view
	evBase uint64                  // log position of events[0]
	limbo  map[imap.UID]*limboItem // expunged, still held by some view
}

// unreadUIDValidity is the UIDVALIDITY a mirror folder holds from the
// folder list until its first sync reads the server's.
const unreadUIDValidity = 1

// neverSynced reports whether b mirrors an upstream folder that no sync
// has read yet (empty, with the placeholder UIDVALIDITY; a server whose
// own UIDVALIDITY is 1 costs one more cheap sync of an empty folder).
func (b *mailbox) neverSynced() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remote && b.uidValidity == unreadUIDValidity && b.uidNext <= 1 && len(b.msgs) == 0
}

// evKind is the kind of a change in a mailbox's log.
type evKind uint8

const (
	evAppend  evKind = iota + 1 // a new message (UID above all others)
	evExpunge                   // a message left the folder
	evFlags                     // a message's flags changed
)

// event is one change in the mailbox log.
type event struct {
	kind   evKind
	uid    imap.UID
	flags  []imap.Flag // evFlags
	source *view       // evFlags: the view that made the change (it answers itself)
}

// limboItem keeps what is needed to serve a message that left the folder
// while some view still holds it.
type limboItem struct {
	info msgInfo
	rec  *store.Message // its index record (owned copies are gone from the store)
	file string         // a bridge-owned file to remove once no view holds it
	body []byte         // an upstream message's bytes, read before it was expunged
	// holders are the views that still address it: those that had it, and
	// those that had yet to apply its arrival when it left.
	holders map[*view]bool
}

// Limbo bounds for upstream messages: bytes are kept for messages up to
// limboMessage, at most limboBytes per expunge.
const (
	limboMessage = 1 << 20
	limboBytes   = 16 << 20
)

// gone describes a message leaving a mailbox: its index record (nil when
// it is still in the store, as hidden legacy messages are) and the
// bridge-owned file to remove once no session can address it.
type gone struct {
	rec  *store.Message
	file string
	body []byte // upstream messages: bytes kept for sessions not told yet
}

// signalLocked wakes every IDLE waiting on this mailbox.
func (b *mailbox) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func loadMailbox(a *Account, f *store.Folder) (*mailbox, error) {
	srvName := f.ServerName
	if srvName == "" {
		srvName = f.Name
	}
	b := &mailbox{acct: a, id: f.ID, remote: f.Remote, name: f.Name, srvName: srvName, uidValidity: f.UIDValidity, uidNext: f.UIDNext, changed: make(chan struct{}),
		views: map[*view]struct{}{}, limbo: map[imap.UID]*limboItem{}, touched: map[imap.UID]uint64{}, expunging: map[imap.UID][]byte{}}
	err := a.db.View(func(tx *store.Tx) error {
		return tx.ForEachMessage(f.ID, func(m *store.Message) error {
			if !m.Hidden {
				b.msgs = append(b.msgs, infoOf(m))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func infoOf(m *store.Message) msgInfo {
	return msgInfo{
		uid:   imap.UID(m.UID),
		flags: toFlags(m.Flags),
		size:  m.Size,
		date:  message.ClampDate(m.InternalDate()),
	}
}

func toFlags(s []string) []imap.Flag {
	out := make([]imap.Flag, 0, len(s))
	for _, f := range s {
		out = append(out, canonicalFlag(imap.Flag(f)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return slices.Compact(out)
}

func fromFlags(fl []imap.Flag) []string {
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		if f == flagRecent || f == imap.FlagWildcard {
			continue
		}
		out = append(out, string(canonicalFlag(f)))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// flagRecent is obsolete in IMAP4rev2 and never set by the bridge.
const flagRecent = imap.Flag(`\Recent`)

var systemFlags = map[string]imap.Flag{
	`\seen`: imap.FlagSeen, `\answered`: imap.FlagAnswered, `\flagged`: imap.FlagFlagged,
	`\deleted`: imap.FlagDeleted, `\draft`: imap.FlagDraft, `\recent`: flagRecent,
	`$forwarded`: imap.FlagForwarded, `$mdnsent`: imap.FlagMDNSent, `$junk`: imap.FlagJunk,
	`$notjunk`: imap.FlagNotJunk, `$phishing`: imap.FlagPhishing, `$important`: imap.FlagImportant,
}

func canonicalFlag(f imap.Flag) imap.Flag {
	if c, ok := systemFlags[lower(string(f))]; ok {
		return c
	}
	return f
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func hasFlag(fl []imap.Flag, f imap.Flag) bool {
	for _, x := range fl {
		if x == f {
			return true
		}
	}
	return false
}

// seqOfLocked returns the 1-based sequence number of uid, 0 if absent.
func (b *mailbox) seqOfLocked(uid imap.UID) uint32 {
	i, ok := sort.Find(len(b.msgs), func(i int) int {
		switch {
		case uid < b.msgs[i].uid:
			return -1
		case uid > b.msgs[i].uid:
			return 1
		}
		return 0
	})
	if !ok {
		return 0
	}
	return uint32(i) + 1
}

// appendLocked adds freshly committed messages (UIDs above every existing
// one) and tells the sessions.
func (b *mailbox) appendLocked(ms []*store.Message, uidNext uint32) {
	for _, m := range ms {
		if m.Hidden {
			continue
		}
		info := infoOf(m)
		if n := len(b.msgs); n > 0 && b.msgs[n-1].uid >= info.uid {
			// Never happens (UIDs only grow); a view could not show it.
			b.acct.log.Error("message added below the highest UID; ignored until the folder is reopened", "mailbox", b.name, "uid", info.uid)
			continue
		}
		b.msgs = append(b.msgs, info)
		b.logLocked(event{kind: evAppend, uid: info.uid})
	}
	if uidNext > b.uidNext {
		b.uidNext = uidNext
	}
	b.acct.counts.note(b.id)
	b.signalLocked()
}

// removeLocked drops the given UIDs from the folder (after they were
// committed as hidden or deleted). Views that still hold one keep it in
// limbo until they are told; what no view holds is released at once.
func (b *mailbox) removeLocked(uids map[imap.UID]gone) {
	if len(uids) == 0 {
		return
	}
	kept := b.msgs[:0]
	var removed []msgInfo
	for _, m := range b.msgs {
		if _, ok := uids[m.uid]; ok {
			removed = append(removed, m)
			continue
		}
		kept = append(kept, m)
	}
	b.msgs = kept
	for _, m := range removed {
		g := uids[m.uid]
		it := &limboItem{info: m, rec: g.rec, file: g.file, body: g.body, holders: map[*view]bool{}}
		for v := range b.views {
			if v.holds(m.uid) || v.pendingArrivalLocked(m.uid) {
				it.holders[v] = true
			}
		}
		if len(it.holders) == 0 {
			b.releaseLocked(it)
		} else {
			b.limbo[m.uid] = it
		}
		b.logLocked(event{kind: evExpunge, uid: m.uid})
	}
	if len(removed) > 0 {
		b.acct.counts.note(b.id)
		b.signalLocked()
	}
}

// releaseLocked forgets a limbo item that no view holds any more.
func (b *mailbox) releaseLocked(it *limboItem) {
	delete(b.limbo, it.info.uid)
	if it.file != "" {
		if err := b.acct.owned.remove(it.file); err != nil {
			b.acct.log.Warn("remove expunged copy", "mailbox", b.name, "path", it.file, "err", err)
		}
	}
}

// unrefLocked drops view v's hold on a limbo message.
func (b *mailbox) unrefLocked(uid imap.UID, v *view) {
	if it := b.limbo[uid]; it != nil {
		delete(it.holders, v)
		if len(it.holders) == 0 {
			b.releaseLocked(it)
		}
	}
}

// limboRecLocked returns the record of a message that left the folder but
// is still held by some view (nil if there is none).
func (b *mailbox) limboRecLocked(uid imap.UID) (*store.Message, *limboItem) {
	if it := b.limbo[uid]; it != nil && it.rec != nil {
		return it.rec, it
	}
	return nil, nil
}

// setFlagsLocked replaces the flags of uid and notifies the other
// sessions (source excluded: it gets its FETCH from the STORE itself).
func (b *mailbox) setFlagsLocked(uid imap.UID, flags []imap.Flag, source *view) {
	seq := b.seqOfLocked(uid)
	if seq == 0 {
		return
	}
	b.msgs[seq-1].flags = flags
	b.logLocked(event{kind: evFlags, uid: uid, flags: flags, source: source})
	b.signalLocked()
}

// logLocked appends a change to the log, unless no session is there to
// read it.
func (b *mailbox) logLocked(e event) {
	if len(b.views) == 0 {
		b.evBase += uint64(len(b.events))
		b.events = b.events[:0]
		return
	}
	b.events = append(b.events, e)
}

// trimLocked drops the log entries every view has applied.
func (b *mailbox) trimLocked() {
	low := b.evBase + uint64(len(b.events))
	for v := range b.views {
		low = min(low, v.pos)
	}
	if n := int(low - b.evBase); n > 0 {
		b.events = append(b.events[:0], b.events[n:]...)
		b.evBase = low
	}
}

// server returns the folder's name on the upstream server.
func (b *mailbox) server() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srvName
}

// keptBody returns the bytes kept for an upstream message that is being
// or was expunged, if any.
func (b *mailbox) keptBody(uid imap.UID) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if body, ok := b.expunging[uid]; ok {
		return body, true
	}
	if it := b.limbo[uid]; it != nil && it.body != nil {
		return it.body, true
	}
	return nil, false
}

// inFlight marks a UID whose change is on its way to the server.
const inFlight = ^uint64(0)

// touch marks uids as changed locally (inFlight while the server is asked).
func (b *mailbox) touch(uids []imap.UID, inflight bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	g := b.gen
	if inflight {
		g = inFlight
	}
	for _, u := range uids {
		b.touched[u] = g
	}
}

// infoLocked returns what the folder knows of uid: the live message, or
// the limbo copy of one that left but is still held by some view.
func (b *mailbox) infoLocked(uid imap.UID) (msgInfo, *limboItem, bool) {
	if seq := b.seqOfLocked(uid); seq != 0 {
		return b.msgs[seq-1], nil, true
	}
	if it := b.limbo[uid]; it != nil {
		return it.info, it, true
	}
	return msgInfo{}, nil, false
}

func (b *mailbox) maxUIDLocked() imap.UID {
	if len(b.msgs) == 0 {
		return 0
	}
	return b.msgs[len(b.msgs)-1].uid
}

// statusLocked fills STATUS data.
func (b *mailbox) statusLocked(name string, o *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: name}
	if o.NumMessages {
		n := uint32(len(b.msgs))
		d.NumMessages = &n
	}
	if o.UIDNext {
		d.UIDNext = imap.UID(b.uidNext)
	}
	if o.UIDValidity {
		d.UIDValidity = b.uidValidity
	}
	if o.NumUnseen {
		var n uint32
		for _, m := range b.msgs {
			if !hasFlag(m.flags, imap.FlagSeen) {
				n++
			}
		}
		d.NumUnseen = &n
	}
	if o.NumDeleted {
		var n uint32
		for _, m := range b.msgs {
			if hasFlag(m.flags, imap.FlagDeleted) {
				n++
			}
		}
		d.NumDeleted = &n
	}
	if o.Size {
		var n int64
		for _, m := range b.msgs {
			n += m.size
		}
		d.Size = &n
	}
	if o.NumRecent {
		var n uint32
		d.NumRecent = &n
	}
	return d
}

// flagsLocked lists the flags in use plus the system flags.
func (b *mailbox) flagsLocked() []imap.Flag {
	set := map[imap.Flag]bool{imap.FlagSeen: true, imap.FlagAnswered: true, imap.FlagFlagged: true, imap.FlagDeleted: true, imap.FlagDraft: true, imap.FlagForwarded: true}
	for _, m := range b.msgs {
		for _, f := range m.flags {
			set[f] = true
		}
	}
	out := make([]imap.Flag, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
