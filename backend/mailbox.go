package backend

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

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

// mailbox is the shared in-memory view of one local folder: the visible
// messages in UID order plus the tracker that feeds sessions their
// unilateral updates. mu guards everything and is held across the store
// commit of any change (commit first, then notify).
type mailbox struct {
	acct *Account
	id   uint32

	remote bool       // mirror of an upstream folder
	syncMu sync.Mutex // one upstream sync of this folder at a time

	mu          sync.Mutex
	name        string
	uidValidity uint32
	uidNext     uint32
	msgs        []msgInfo
	tracker     *imapserver.MailboxTracker
	changed     chan struct{} // closed and replaced on every change (wakes IDLE)
	views       int           // sessions that have it selected
}

// signalLocked wakes every IDLE waiting on this mailbox.
func (b *mailbox) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func loadMailbox(a *Account, f *store.Folder) (*mailbox, error) {
	b := &mailbox{acct: a, id: f.ID, remote: f.Remote, name: f.Name, uidValidity: f.UIDValidity, uidNext: f.UIDNext, changed: make(chan struct{})}
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
	b.tracker = imapserver.NewMailboxTracker(uint32(len(b.msgs)))
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
		b.msgs = append(b.msgs, infoOf(m))
		b.tracker.QueueNumMessages(uint32(len(b.msgs)))
	}
	if uidNext > b.uidNext {
		b.uidNext = uidNext
	}
	b.acct.counts.note(b.id)
	b.signalLocked()
}

// removeLocked drops the given UIDs from the view (after they were
// committed as hidden or deleted) and queues EXPUNGEs, highest first so
// that earlier sequence numbers stay valid.
func (b *mailbox) removeLocked(uids map[imap.UID]bool) []uint32 {
	var seqs []uint32
	for i := len(b.msgs) - 1; i >= 0; i-- {
		if uids[b.msgs[i].uid] {
			seqs = append(seqs, uint32(i)+1)
		}
	}
	for _, s := range seqs {
		b.msgs = append(b.msgs[:s-1], b.msgs[s:]...)
		b.tracker.QueueExpunge(s)
	}
	if len(seqs) > 0 {
		b.acct.counts.note(b.id)
		b.signalLocked()
	}
	return seqs
}

// setFlagsLocked replaces the flags of uid in memory and notifies the other
// sessions (source excluded: it gets its FETCH from the STORE itself).
func (b *mailbox) setFlagsLocked(uid imap.UID, flags []imap.Flag, source *imapserver.SessionTracker) {
	seq := b.seqOfLocked(uid)
	if seq == 0 {
		return
	}
	b.msgs[seq-1].flags = flags
	b.tracker.QueueMessageFlags(seq, uid, flags, source)
	b.signalLocked()
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
