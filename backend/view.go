package backend

import (
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// view is one session's picture of its selected folder: the UIDs the
// client knows, in sequence-number order, and how far into the mailbox's
// change log the client has been told. Only the session's own goroutine
// changes a view, always with the mailbox lock held (other sessions read
// uids under that lock to count limbo holds).
type view struct {
	box       *mailbox
	readOnly  bool
	searchRes imap.UIDSet

	pos   uint64             // next log entry to apply (absolute position)
	uids  []imap.UID         // seq n is uids[n-1]; ascending
	flags map[imap.Flag]bool // flags announced to the client with FLAGS
}

// openViewLocked registers a new view of b showing the folder as it is.
func (b *mailbox) openViewLocked(readOnly bool) *view {
	v := &view{box: b, readOnly: readOnly, pos: b.evBase + uint64(len(b.events)),
		uids: make([]imap.UID, len(b.msgs)), flags: map[imap.Flag]bool{}}
	for i, m := range b.msgs {
		v.uids[i] = m.uid
	}
	for _, f := range b.flagsLocked() {
		v.flags[f] = true
	}
	b.views[v] = struct{}{}
	return v
}

// closeLocked unregisters v, releasing what only v still held.
func (v *view) closeLocked() {
	b := v.box
	if _, ok := b.views[v]; !ok {
		return
	}
	for uid := range b.limbo {
		b.unrefLocked(uid, v)
	}
	delete(b.views, v)
	b.trimLocked()
}

// seqOf returns uid's sequence number in this view, 0 if the client does
// not know it.
func (v *view) seqOf(uid imap.UID) uint32 {
	i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= uid })
	if i < len(v.uids) && v.uids[i] == uid {
		return uint32(i) + 1
	}
	return 0
}

func (v *view) holds(uid imap.UID) bool { return v.seqOf(uid) != 0 }

// pendingArrivalLocked reports whether v has yet to apply uid's arrival:
// it will address the message once it polls.
func (v *view) pendingArrivalLocked(uid imap.UID) bool {
	b := v.box
	for _, e := range b.events[v.pos-b.evBase:] {
		if e.kind == evAppend && e.uid == uid {
			return true
		}
	}
	return false
}

// update is one unilateral response owed to the client.
type update struct {
	kind  evKind // evAppend: EXISTS n; evExpunge: EXPUNGE seq; evFlags: FETCH
	n     uint32 // EXISTS count or sequence number
	uid   imap.UID
	flags []imap.Flag
	fl    []imap.Flag // non-nil: send FLAGS (and PERMANENTFLAGS) with these first
}

// pollLocked applies the log to the view and returns the responses the
// client must get, in order. Without allowExpunge (during FETCH, STORE and
// SEARCH, RFC 3501 7.4.1) it stops before the first expunge.
func (v *view) pollLocked(allowExpunge bool) []update {
	b := v.box
	var ups []update
	told := uint32(len(v.uids)) // the count the client believes
	flushExists := func() {
		if n := uint32(len(v.uids)); n != told {
			ups = append(ups, update{kind: evAppend, n: n})
			told = n
		}
	}
	i := int(v.pos - b.evBase)
loop:
	for ; i < len(b.events); i++ {
		e := b.events[i]
		switch e.kind {
		case evAppend:
			if info, _, ok := b.infoLocked(e.uid); ok {
				if fl := v.learnFlags(info.flags); fl != nil {
					ups = append(ups, update{fl: fl})
				}
			}
			v.uids = append(v.uids, e.uid)
		case evExpunge:
			if !allowExpunge {
				break loop
			}
			flushExists()
			if seq := v.seqOf(e.uid); seq != 0 {
				v.uids = append(v.uids[:seq-1], v.uids[seq:]...)
				told--
				ups = append(ups, update{kind: evExpunge, n: seq})
				b.unrefLocked(e.uid, v)
			}
		case evFlags:
			if e.source == v {
				continue
			}
			seq := v.seqOf(e.uid)
			if seq == 0 {
				continue
			}
			flushExists()
			if fl := v.learnFlags(e.flags); fl != nil {
				ups = append(ups, update{fl: fl})
			}
			ups = append(ups, update{kind: evFlags, n: seq, uid: e.uid, flags: e.flags})
		}
	}
	flushExists()
	v.pos = b.evBase + uint64(i)
	b.trimLocked()
	return ups
}

// learnFlags records flags the client has not been told about and returns
// the full list to announce, or nil when nothing is new.
func (v *view) learnFlags(flags []imap.Flag) []imap.Flag {
	fresh := false
	for _, f := range flags {
		if !v.flags[f] && f != flagRecent {
			v.flags[f] = true
			fresh = true
		}
	}
	if !fresh {
		return nil
	}
	out := make([]imap.Flag, 0, len(v.flags))
	for f := range v.flags {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// announce sends FLAGS and PERMANENTFLAGS listing fl (RFC 3501 7.2.6: a
// keyword is listed before a FETCH shows it). Without the front door's
// untagged writer (unit tests on a bare imapserver), only FLAGS through w.
func (s *Session) announce(fl []imap.Flag, w *imapserver.UpdateWriter) error {
	if s.out == nil {
		if w != nil {
			return w.WriteMailboxFlags(fl)
		}
		return nil
	}
	var sb strings.Builder
	sb.WriteString("* FLAGS (")
	writeFlagList(&sb, fl)
	sb.WriteString(")\r\n* OK [PERMANENTFLAGS (")
	s.idleMu.Lock() // (Idle's goroutine may get here while Close runs)
	v := s.sel
	s.idleMu.Unlock()
	if v != nil && !v.readOnly {
		writeFlagList(&sb, fl)
		if len(fl) > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(`\*`)
	}
	sb.WriteString(")] Flags permitted\r\n")
	return s.out(sb.String())
}

func writeFlagList(sb *strings.Builder, fl []imap.Flag) {
	n := 0
	for _, f := range fl {
		if !validFlag(string(f)) {
			continue
		}
		if n > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(string(f))
		n++
	}
}

// validFlag reports whether f can be written as a flag on the wire: an
// atom, optionally after one backslash (RFC 3501 flag-keyword / flag-extension).
func validFlag(f string) bool {
	f = strings.TrimPrefix(f, `\`)
	if f == "" {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// writeUpdates sends polled updates through the imapserver writer.
func (s *Session) writeUpdates(w *imapserver.UpdateWriter, ups []update) error {
	for _, u := range ups {
		var err error
		switch {
		case u.fl != nil:
			err = s.announce(u.fl, w)
		case u.kind == evAppend:
			err = w.WriteNumMessages(u.n)
		case u.kind == evExpunge:
			err = w.WriteExpunge(u.n)
		case u.kind == evFlags:
			err = w.WriteMessageFlags(u.n, u.uid, u.flags)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// announceFor makes sure the client was told every flag in flags before a
// FETCH response shows them (within FETCH and STORE).
func (s *Session) announceFor(flags []imap.Flag) error {
	v := s.sel
	if v == nil {
		return nil
	}
	b := v.box
	b.mu.Lock()
	fl := v.learnFlags(flags)
	b.mu.Unlock()
	if fl == nil {
		return nil
	}
	return s.announce(fl, nil)
}

// resolveLocked turns a sequence or UID set into targets, as this session
// numbers the folder: messages another session expunged are still
// addressable (from limbo) until this session has been told.
func (v *view) resolveLocked(numSet imap.NumSet) []target {
	return v.targetsLocked(v.indexesLocked(numSet))
}

// indexesLocked resolves a sequence or UID set to indexes into v.uids, in
// ascending order without repeats. Only this session changes v.uids,
// between commands, so the indexes stay valid during a command.
func (v *view) indexesLocked(numSet imap.NumSet) []int {
	if imap.IsSearchRes(numSet) {
		numSet = v.searchRes
	}
	var idx []int // indexes into v.uids
	switch set := numSet.(type) {
	case imap.SeqSet:
		n := uint32(len(v.uids))
		if n == 0 {
			return nil
		}
		for _, r := range staticSeqSet(set, n) {
			for seq := r.Start; seq <= r.Stop && seq <= n; seq++ {
				idx = append(idx, int(seq)-1)
				if seq == ^uint32(0) {
					break
				}
			}
		}
	case imap.UIDSet:
		if len(v.uids) == 0 {
			return nil
		}
		for _, r := range staticUIDSet(set, v.uids[len(v.uids)-1]) {
			i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= r.Start })
			for ; i < len(v.uids) && v.uids[i] <= r.Stop; i++ {
				idx = append(idx, i)
			}
		}
	}
	sort.Ints(idx)
	return slices.Compact(idx)
}

// targetsLocked describes the messages at idx (from indexesLocked) as they
// are now; one gone for good is left out.
func (v *view) targetsLocked(idx []int) []target {
	out := make([]target, 0, len(idx))
	for _, i := range idx {
		if t, ok := v.targetLocked(i); ok {
			out = append(out, t)
		}
	}
	return out
}

// targetLocked describes the message at index i of v.uids; false when it
// is gone for good.
func (v *view) targetLocked(i int) (target, bool) {
	uid := v.uids[i]
	info, it, ok := v.box.infoLocked(uid)
	if !ok {
		return target{}, false
	}
	return target{seq: uint32(i) + 1, uid: uid, flags: info.flags, size: info.size, date: info.date, gone: it}, true
}
