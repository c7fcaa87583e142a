package imapemu

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// session is one authenticated connection's view of an account. Sequence
// numbers are per session (imapserver's SessionTracker); UIDs per mailbox.
type session struct {
	a        *account
	sel      *mailbox
	tracker  *imapserver.SessionTracker
	readOnly bool
	// idleMu guards the writes of tracker and its read by Idle:
	// imapserver runs Idle in a goroutine that, when the client goes away
	// during IDLE, is still running when Close is called.
	idleMu sync.Mutex
	// echoed: the messages whose unsolicited FETCH this session sent
	// (Options.FlagsFirst: once per message and session).
	echoed map[uint64]bool
}

var (
	_ imapserver.SessionIMAP4rev2 = (*session)(nil)
)

func newSession(a *account) *session { return &session{a: a} }

func (s *session) Close() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.tracker != nil {
		s.tracker.Close()
	}
	s.sel, s.tracker = nil, nil
}

func (s *session) Login(string, string) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Already authenticated"}
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagDeleted, imap.FlagSeen}

func (s *session) Select(name string, opts *imap.SelectOptions) (*imap.SelectData, error) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	mb, err := a.selectable(name, noMailbox)
	if err != nil {
		return nil, err
	}
	s.unselect()
	s.idleMu.Lock()
	s.sel, s.tracker, s.readOnly = mb, mb.tracker.NewSession(), opts != nil && opts.ReadOnly
	s.idleMu.Unlock()
	flags := slices.Clone(systemFlags)
	var firstUnseen uint32
	for i, e := range mb.entries {
		for _, f := range e.msg.flags {
			if !hasFlag(flags, f) {
				flags = append(flags, f)
			}
		}
		if firstUnseen == 0 && !hasFlag(e.msg.flags, imap.FlagSeen) {
			firstUnseen = uint32(i) + 1
		}
	}
	return &imap.SelectData{
		Flags:             flags,
		PermanentFlags:    append(slices.Clone(flags), imap.FlagWildcard),
		NumMessages:       uint32(len(mb.entries)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           mb.uidNext,
		UIDValidity:       mb.uidValidity,
	}, nil
}

func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func validName(name string) error {
	if name == "" || strings.HasPrefix(name, string(delim)) || strings.Contains(name, string(delim)+string(delim)) ||
		strings.ContainsAny(name, "*%\r\n\x00") {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("Invalid folder name: %q", name)}
	}
	return nil
}

func (s *session) Create(name string, opts *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(delim))
	if err := validName(name); err != nil {
		return err
	}
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lookup(name) != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: fmt.Sprintf("Folder %s already exists", name)}
	}
	for _, f := range a.srv.profile.folders {
		if f.role == roleNoSelect && strings.HasPrefix(name, f.name+string(delim)) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("Cannot create a folder below %s", f.name)}
		}
	}
	// Parents first, as both providers do.
	parts := strings.Split(name, string(delim))
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], string(delim))
		if a.lookup(p) == nil {
			a.addMailbox(p)
		}
	}
	return nil
}

func (s *session) Delete(name string) error {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	mb := a.lookup(name)
	switch {
	case mb == nil:
		return noMailbox(name)
	case mb.system:
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("Cannot delete system folder %s", mb.name)}
	case a.hasChildren(mb.name):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren, Text: fmt.Sprintf("Folder %s has subfolders", mb.name)}
	}
	for _, e := range slices.Clone(mb.entries) {
		if a.gmail() {
			delete(e.msg.labels, mb) // the messages stay in All Mail
		} else {
			e.msg.gone = true
		}
		a.reconcile(e.msg)
	}
	a.mailboxes = slices.DeleteFunc(a.mailboxes, func(x *mailbox) bool { return x == mb })
	return nil
}

func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	newName = strings.TrimSuffix(newName, string(delim))
	if err := validName(newName); err != nil {
		return err
	}
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	mb := a.lookup(oldName)
	switch {
	case mb == nil:
		return noMailbox(oldName)
	case mb.system:
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("Cannot rename system folder %s", mb.name)}
	case a.lookup(newName) != nil:
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: fmt.Sprintf("Folder %s already exists", newName)}
	case strings.HasPrefix(newName, mb.name+string(delim)):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Cannot move a folder into itself"}
	}
	old := mb.name
	for _, x := range a.mailboxes {
		if x.name == old {
			x.name = newName
		} else if rest, ok := strings.CutPrefix(x.name, old+string(delim)); ok {
			x.name = newName + string(delim) + rest
		}
	}
	parts := strings.Split(newName, string(delim))
	for i := 1; i < len(parts); i++ {
		if p := strings.Join(parts[:i], string(delim)); a.lookup(p) == nil {
			a.addMailbox(p)
		}
	}
	return nil
}

func (s *session) Subscribe(name string) error   { return s.setSubscribed(name, true) }
func (s *session) Unsubscribe(name string) error { return s.setSubscribed(name, false) }

func (s *session) setSubscribed(name string, on bool) error {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	mb := s.a.lookup(name)
	if mb == nil {
		return noMailbox(name)
	}
	mb.subscribed = on
	return nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" {
		// LIST "" "": the hierarchy delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim, Mailbox: ""})
	}
	a := s.a
	a.mu.Lock()
	var out []*imap.ListData
	order := slices.Clone(a.mailboxes)
	slices.SortStableFunc(order, func(x, y *mailbox) int {
		if (x.name == "INBOX") != (y.name == "INBOX") {
			if x.name == "INBOX" {
				return -1
			}
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	for _, mb := range order {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(mb.name, delim, ref, p) {
				match = true
				break
			}
		}
		if !match || (opts.SelectSubscribed && !mb.subscribed) || (opts.SelectSpecialUse && mb.specialUse == "") {
			continue
		}
		d := &imap.ListData{Mailbox: mb.name, Delim: delim}
		if mb.role == roleNoSelect {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
		}
		if a.hasChildren(mb.name) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		// Both providers send special-use attributes on every LIST.
		if mb.specialUse != "" {
			d.Attrs = append(d.Attrs, mb.specialUse)
		}
		if opts.ReturnSubscribed && mb.subscribed {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if opts.ReturnStatus != nil && mb.role != roleNoSelect {
			d.Status = statusOf(mb, opts.ReturnStatus)
		}
		out = append(out, d)
	}
	a.mu.Unlock()
	for _, d := range out {
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func statusOf(mb *mailbox, opts *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: mb.name}
	n := uint32(len(mb.entries))
	if opts.NumMessages {
		d.NumMessages = &n
	}
	if opts.UIDNext {
		d.UIDNext = mb.uidNext
	}
	if opts.UIDValidity {
		d.UIDValidity = mb.uidValidity
	}
	var unseen, deleted uint32
	var size int64
	for _, e := range mb.entries {
		if !hasFlag(e.msg.flags, imap.FlagSeen) {
			unseen++
		}
		if e.deleted {
			deleted++
		}
		size += int64(len(e.msg.body))
	}
	if opts.NumUnseen {
		d.NumUnseen = &unseen
	}
	if opts.NumDeleted {
		d.NumDeleted = &deleted
	}
	if opts.Size {
		d.Size = &size
	}
	if opts.NumRecent {
		zero := uint32(0)
		d.NumRecent = &zero
	}
	return d
}

func (s *session) Status(name string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	mb, err := s.a.selectable(name, noMailbox)
	if err != nil {
		return nil, err
	}
	return statusOf(mb, opts), nil
}

func (s *session) Append(name string, r imap.LiteralReader, opts *imap.AppendOptions) (*imap.AppendData, error) {
	// Read the whole message before taking the lock: the client may be slow.
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	mb, err := a.selectable(name, tryCreate)
	if err != nil {
		return nil, err
	}
	lim, p := a.srv.Limits(), a.srv.profile
	size := int64(len(body))
	if lim.MaxMessageSize > 0 && size > lim.MaxMessageSize {
		return nil, p.tooBig(size, lim.MaxMessageSize)
	}
	a.rollDay()
	if lim.UploadBytesPerDay > 0 && a.uploadedBytes+size > lim.UploadBytesPerDay {
		return nil, p.uploadLimit
	}
	a.uploadedBytes += size
	dup := a.gmail() && a.byMessageID(messageID(body)) != nil
	if lim.StorageBytes > 0 && !dup && a.storageUsed()+size > lim.StorageBytes {
		return nil, p.storageFull
	}
	return a.appendMessage(mb, body, opts), nil
}

func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.tracker == nil {
		return nil
	}
	return s.tracker.Poll(w, allowExpunge)
}

// Idle writes updates until stop. (SessionTracker.Idle would miss an
// update queued after SELECT but before it starts waiting.)
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idleMu.Lock()
	tracker := s.tracker
	s.idleMu.Unlock()
	if tracker == nil {
		<-stop
		return nil
	}
	for {
		s.a.mu.Lock()
		changed := s.a.changed
		s.a.mu.Unlock()
		if err := tracker.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stop:
			return nil
		}
	}
}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox is read-only (EXAMINE)"}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if s.readOnly {
		return errReadOnly
	}
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	// The EXPUNGE responses reach this session through Poll, right after.
	s.a.expunge(s.sel, uids)
	return nil
}

// static resolves "*" in a set: max is the highest sequence number the
// client knows, or the highest UID in use (RFC 3501 6.4.8: "n:*" with n
// above it still means that message).
func static[T ~[]R, R any](set T, max uint32, get func(*R) (*uint32, *uint32)) T {
	out := slices.Clone(set)
	for i := range out {
		start, stop := get(&out[i])
		if *start == 0 {
			*start = max
		}
		if *stop == 0 {
			*stop = max
		}
		if *start > *stop {
			*start, *stop = *stop, *start
		}
	}
	return out
}

func staticSeq(set imap.SeqSet, max uint32) imap.SeqSet {
	return static(set, max, func(r *imap.SeqRange) (*uint32, *uint32) { return &r.Start, &r.Stop })
}

func staticUID(set imap.UIDSet, max imap.UID) imap.UIDSet {
	return static(set, uint32(max), func(r *imap.UIDRange) (*uint32, *uint32) {
		return (*uint32)(&r.Start), (*uint32)(&r.Stop)
	})
}

// view is the selected mailbox as the client sees it now.
type view struct {
	cseq   []uint32 // client sequence number of entries[i], 0 if unknown to it
	maxSeq uint32
	maxUID imap.UID
}

func (s *session) view() view {
	es := s.sel.entries
	v := view{cseq: make([]uint32, len(es))}
	for i := range es {
		c := s.tracker.EncodeSeqNum(uint32(i) + 1)
		v.cseq[i] = c
		v.maxSeq = max(v.maxSeq, c)
	}
	if n := len(es); n > 0 {
		v.maxUID = es[n-1].uid
	}
	return v
}

// matching returns the indexes of the selected mailbox's entries in set.
func (s *session) matching(v view, set imap.NumSet) []int {
	var out []int
	switch set := set.(type) {
	case imap.SeqSet:
		st := staticSeq(set, v.maxSeq)
		for i, c := range v.cseq {
			if c != 0 && st.Contains(c) {
				out = append(out, i)
			}
		}
	case imap.UIDSet:
		st := staticUID(set, v.maxUID)
		for i, e := range s.sel.entries {
			if st.Contains(e.uid) {
				out = append(out, i)
			}
		}
	}
	return out
}

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, _ *imap.SearchOptions) (*imap.SearchData, error) {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	v := s.view()
	var (
		data   imap.SearchData
		seqSet imap.SeqSet
		uidSet imap.UIDSet
	)
	for i, e := range s.sel.entries {
		c := v.cseq[i]
		if c == 0 || !matchCriteria(e, c, v, criteria) {
			continue
		}
		num := c
		if kind == imapserver.NumKindUID {
			num = uint32(e.uid)
			uidSet.AddNum(e.uid)
		} else {
			seqSet.AddNum(c)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	return &data, nil
}

func matchCriteria(e *entry, cseq uint32, v view, c *imap.SearchCriteria) bool {
	for _, set := range c.SeqNum {
		if st := staticSeq(set, v.maxSeq); !st.Contains(cseq) {
			return false
		}
	}
	for _, set := range c.UID {
		if st := staticUID(set, v.maxUID); !st.Contains(e.uid) {
			return false
		}
	}
	flags := entryFlags(e)
	for _, f := range c.Flag {
		if !hasFlag(flags, f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(flags, f) {
			return false
		}
	}
	m := e.msg
	if !dateIn(m.date, c.Since, c.Before) {
		return false
	}
	size := int64(len(m.body))
	if (c.Larger != 0 && size <= c.Larger) || (c.Smaller != 0 && size >= c.Smaller) {
		return false
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.body)))
		if err != nil {
			return false
		}
		for _, hf := range c.Header {
			vals := h.Values(hf.Key)
			found := false
			for _, val := range vals {
				if strings.Contains(strings.ToLower(val), strings.ToLower(hf.Value)) {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
			sent, err := parseDate(h.Get("Date"))
			if err != nil || !dateIn(sent, c.SentSince, c.SentBefore) {
				return false
			}
		}
	}
	lower := bytes.ToLower(m.body)
	for _, t := range c.Text {
		if !bytes.Contains(lower, bytes.ToLower([]byte(t))) {
			return false
		}
	}
	if len(c.Body) > 0 {
		body := lower
		if i := bytes.Index(lower, []byte("\r\n\r\n")); i >= 0 {
			body = lower[i+4:]
		}
		for _, t := range c.Body {
			if !bytes.Contains(body, bytes.ToLower([]byte(t))) {
				return false
			}
		}
	}
	for i := range c.Not {
		if matchCriteria(e, cseq, v, &c.Not[i]) {
			return false
		}
	}
	for _, or := range c.Or {
		if !matchCriteria(e, cseq, v, &or[0]) && !matchCriteria(e, cseq, v, &or[1]) {
			return false
		}
	}
	return true
}

// dateIn compares dates only, ignoring time and zone (RFC 3501 6.4.4).
func dateIn(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)) {
		return false
	}
	if !before.IsZero() && !d.Before(time.Date(before.Year(), before.Month(), before.Day(), 0, 0, 0, 0, time.UTC)) {
		return false
	}
	return true
}

func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, " ("); i >= 0 {
		s = s[:i]
	}
	for _, layout := range []string{time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700", time.RFC1123} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparsable Date %q", s)
}

type fetched struct {
	id    uint64
	cseq  uint32
	uid   imap.UID
	flags []imap.Flag
	date  time.Time
	body  []byte
}

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opts *imap.FetchOptions) error {
	markSeen := false
	for _, bs := range opts.BodySection {
		markSeen = markSeen || !bs.Peek
	}
	for _, bs := range opts.BinarySection {
		markSeen = markSeen || !bs.Peek
	}
	s.a.mu.Lock()
	v := s.view()
	var items []fetched
	for _, i := range s.matching(v, numSet) {
		e := s.sel.entries[i]
		if markSeen && !s.readOnly && !hasFlag(e.msg.flags, imap.FlagSeen) {
			e.msg.flags = addFlags(e.msg.flags, imap.FlagSeen)
			s.a.notifyFlags(e.msg, s.tracker)
		}
		items = append(items, fetched{id: e.msg.id, cseq: v.cseq[i], uid: e.uid, flags: entryFlags(e), date: e.msg.date, body: e.msg.body})
	}
	s.a.mu.Unlock()
	// Bodies are immutable: write without the lock.
	more := opts.InternalDate || opts.RFC822Size || opts.Envelope || opts.BodyStructure != nil || len(opts.BodySection) > 0 || len(opts.BinarySection) > 0
	for _, it := range items {
		if s.a.srv.flagsFirst != nil && more && !s.echoed[it.id] && s.a.srv.flagsFirst(it.uid) {
			if s.echoed == nil {
				s.echoed = map[uint64]bool{}
			}
			s.echoed[it.id] = true
			rw := w.CreateMessage(it.cseq)
			rw.WriteUID(it.uid)
			rw.WriteFlags(it.flags)
			if err := rw.Close(); err != nil {
				return err
			}
		}
		if err := writeFetch(w, it, opts); err != nil {
			return err
		}
	}
	return nil
}

func writeFetch(w *imapserver.FetchWriter, it fetched, opts *imap.FetchOptions) error {
	rw := w.CreateMessage(it.cseq)
	rw.WriteUID(it.uid) // first, as Thunderbird wants
	if opts.Flags {
		rw.WriteFlags(it.flags)
	}
	if opts.InternalDate {
		rw.WriteInternalDate(it.date)
	}
	if opts.RFC822Size {
		rw.WriteRFC822Size(int64(len(it.body)))
	}
	if opts.Envelope {
		if h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(it.body))); err == nil {
			rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
		}
	}
	if opts.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(it.body)))
	}
	for _, bs := range opts.BodySection {
		buf := imapserver.ExtractBodySection(bytes.NewReader(it.body), bs)
		wc := rw.WriteBodySection(bs, int64(len(buf)))
		if _, err := wc.Write(buf); err != nil {
			return err
		}
		if err := wc.Close(); err != nil {
			return err
		}
	}
	for _, bs := range opts.BinarySection {
		buf := imapserver.ExtractBinarySection(bytes.NewReader(it.body), bs)
		wc := rw.WriteBinarySection(bs, int64(len(buf)))
		if _, err := wc.Write(buf); err != nil {
			return err
		}
		if err := wc.Close(); err != nil {
			return err
		}
	}
	for _, bss := range opts.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(it.body), bss))
	}
	return rw.Close()
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, opts *imap.StoreOptions) error {
	if s.readOnly {
		return errReadOnly
	}
	a := s.a
	a.mu.Lock()
	v := s.view()
	sel := s.sel
	var answers []fetched
	for _, i := range s.matching(v, numSet) {
		e := sel.entries[i]
		m := e.msg
		wasFlagged := hasFlag(m.flags, imap.FlagFlagged)
		switch flags.Op {
		case imap.StoreFlagsSet:
			m.flags = addFlags(nil, flags.Flags...)
			e.deleted = hasFlag(flags.Flags, imap.FlagDeleted)
		case imap.StoreFlagsAdd:
			m.flags = addFlags(m.flags, flags.Flags...)
			e.deleted = e.deleted || hasFlag(flags.Flags, imap.FlagDeleted)
		case imap.StoreFlagsDel:
			m.flags = delFlags(m.flags, flags.Flags...)
			e.deleted = e.deleted && !hasFlag(flags.Flags, imap.FlagDeleted)
		}
		a.notifyFlags(m, s.tracker)
		answers = append(answers, fetched{cseq: v.cseq[i], uid: e.uid, flags: entryFlags(e)})
		if a.gmail() && wasFlagged != hasFlag(m.flags, imap.FlagFlagged) {
			a.reconcile(m) // joins or leaves [Gmail]/Starred
		}
	}
	a.mu.Unlock()
	if flags.Silent {
		return nil
	}
	for _, it := range answers {
		rw := w.CreateMessage(it.cseq)
		rw.WriteUID(it.uid)
		rw.WriteFlags(it.flags)
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// targets snapshots the entries in set: copying or moving may change the
// selected mailbox's entries (a Gmail message moved to Trash leaves it).
func (s *session) targets(set imap.NumSet) []*entry {
	v := s.view()
	var out []*entry
	for _, i := range s.matching(v, set) {
		out = append(out, s.sel.entries[i])
	}
	return out
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	dst, err := a.selectable(dest, tryCreate)
	if err != nil {
		return nil, err
	}
	if !a.gmail() && dst == s.sel {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Source and destination are the same folder"}
	}
	var src, dstUIDs imap.UIDSet
	for _, e := range s.targets(numSet) {
		if uid := a.copyTo(e, dst); uid != 0 {
			src.AddNum(e.uid)
			dstUIDs.AddNum(uid)
		}
	}
	if len(src) == 0 {
		return nil, nil
	}
	return &imap.CopyData{UIDValidity: dst.uidValidity, SourceUIDs: src, DestUIDs: dstUIDs}, nil
}

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if s.readOnly {
		return errReadOnly
	}
	a := s.a
	a.mu.Lock()
	dst, err := a.selectable(dest, tryCreate)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	if dst == s.sel {
		a.mu.Unlock()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Source and destination are the same folder"}
	}
	var src, dstUIDs imap.UIDSet
	for _, e := range s.targets(numSet) {
		if uid := a.moveTo(e, s.sel, dst); uid != 0 {
			src.AddNum(e.uid)
			dstUIDs.AddNum(uid)
		}
	}
	a.mu.Unlock()
	if len(src) == 0 {
		return nil
	}
	// The EXPUNGE responses follow through Poll, after COPYUID.
	return w.WriteCopyData(&imap.CopyData{UIDValidity: dst.uidValidity, SourceUIDs: src, DestUIDs: dstUIDs})
}
