package imapemu

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// role is what a mailbox is for the provider's rules.
type role int

const (
	roleFolder   role = iota // an ordinary folder (M365) or label (Gmail)
	roleInbox                // INBOX
	roleAll                  // Gmail's [Gmail]/All Mail: every message not in Trash or Spam
	roleStarred              // Gmail's [Gmail]/Starred: every \Flagged message not in Trash or Spam
	roleTrash                // Gmail: exclusive; expunge deletes for good
	roleSpam                 // Gmail: exclusive
	roleNoSelect             // a container such as "[Gmail]"
)

// message is one stored message. A Gmail message can be a member of
// several mailboxes (its labels); an M365 message of exactly one.
type message struct {
	id     uint64
	body   []byte // immutable
	date   time.Time
	msgID  string // normalised Message-ID, "" if none
	flags  []imap.Flag
	labels map[*mailbox]bool
	gone   bool // deleted for good (Gmail: expunged from Trash or Spam)
}

// entry is a message's membership in one mailbox, with its UID there.
type entry struct {
	uid     imap.UID
	msg     *message
	deleted bool // \Deleted is per mailbox
}

type mailbox struct {
	name        string // UTF-8; the server encodes it on the wire
	role        role
	specialUse  imap.MailboxAttr
	system      bool // may not be deleted or renamed
	uidValidity uint32
	uidNext     imap.UID
	entries     []*entry // in UID order = sequence order
	subscribed  bool
	tracker     *imapserver.MailboxTracker
}

// account is one user's mail. Every field is guarded by mu; trackers have
// their own locks and are only fed while mu is held, so every session sees
// changes in the order they were made.
type account struct {
	mu        sync.Mutex
	srv       *Server
	user      User
	mailboxes []*mailbox
	nextID    uint64
	nextUIDV  uint32

	uploadDay     string // YYYY-MM-DD of uploaded
	uploadedBytes int64

	// changed is closed (and replaced) whenever a tracker got an update,
	// so IDLE never misses one queued between its Poll and its wait.
	changed chan struct{}
}

const delim = '/'

func newAccount(srv *Server, u User) *account {
	a := &account{srv: srv, user: u, nextUIDV: uint32(srv.now().Unix() & 0x3fffffff), changed: make(chan struct{})}
	for _, f := range srv.profile.folders {
		mb := a.addMailbox(f.name)
		mb.role, mb.specialUse, mb.system, mb.subscribed = f.role, f.specialUse, f.system, f.role != roleNoSelect
	}
	return a
}

func (a *account) addMailbox(name string) *mailbox {
	a.nextUIDV++
	mb := &mailbox{
		name:        name,
		uidValidity: a.nextUIDV,
		uidNext:     1,
		tracker:     imapserver.NewMailboxTracker(0),
	}
	a.mailboxes = append(a.mailboxes, mb)
	return mb
}

// lookup finds a mailbox; INBOX in any letter case.
func (a *account) lookup(name string) *mailbox {
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	for _, mb := range a.mailboxes {
		if mb.name == name {
			return mb
		}
	}
	return nil
}

func noMailbox(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: fmt.Sprintf("Unknown Mailbox: %s (Failure)", name)}
}

func tryCreate(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: fmt.Sprintf("Folder doesn't exist: %s", name)}
}

// selectable returns the mailbox or the error a SELECT, APPEND or COPY
// target gets.
func (a *account) selectable(name string, missing func(string) error) (*mailbox, error) {
	mb := a.lookup(name)
	if mb == nil {
		return nil, missing(name)
	}
	if mb.role == roleNoSelect {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("%s is not selectable", name)}
	}
	return mb, nil
}

func (a *account) gmail() bool { return a.srv.profile.kind == KindGmail }

// hasFlag reports whether m has flag (letter case ignored).
func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

func addFlags(flags []imap.Flag, add ...imap.Flag) []imap.Flag {
	for _, f := range add {
		if strings.EqualFold(string(f), `\Recent`) || strings.EqualFold(string(f), string(imap.FlagDeleted)) {
			continue // \Recent is the server's; \Deleted is per mailbox
		}
		if !hasFlag(flags, f) {
			flags = append(flags, f)
		}
	}
	return flags
}

func delFlags(flags []imap.Flag, del ...imap.Flag) []imap.Flag {
	return slices.DeleteFunc(slices.Clone(flags), func(f imap.Flag) bool { return hasFlag(del, f) })
}

// entryFlags is what FETCH FLAGS shows for e.
func entryFlags(e *entry) []imap.Flag {
	flags := slices.Clone(e.msg.flags)
	if e.deleted {
		flags = append(flags, imap.FlagDeleted)
	}
	if flags == nil {
		flags = []imap.Flag{}
	}
	return flags
}

// inTrashOrSpam: Gmail shows such a message only there.
func inTrashOrSpam(m *message) bool {
	for mb := range m.labels {
		if mb.role == roleTrash || mb.role == roleSpam {
			return true
		}
	}
	return false
}

// wants reports whether m should be a member of mb under the provider's
// rules.
func (a *account) wants(mb *mailbox, m *message) bool {
	if m.gone {
		return false
	}
	if !a.gmail() {
		return m.labels[mb]
	}
	switch mb.role {
	case roleAll:
		return !inTrashOrSpam(m)
	case roleStarred:
		return !inTrashOrSpam(m) && hasFlag(m.flags, imap.FlagFlagged)
	case roleNoSelect:
		return false
	default:
		return m.labels[mb]
	}
}

// reconcile makes every mailbox's entries agree with wants(m): a message
// that joins a mailbox gets the next UID there (announced as EXISTS), one
// that leaves is expunged from it. A message in no mailbox is forgotten.
func (a *account) reconcile(m *message) {
	for _, mb := range a.mailboxes {
		i := slices.IndexFunc(mb.entries, func(e *entry) bool { return e.msg == m })
		want := a.wants(mb, m)
		switch {
		case want && i < 0:
			mb.entries = append(mb.entries, &entry{uid: mb.uidNext, msg: m})
			mb.uidNext++
			mb.tracker.QueueNumMessages(uint32(len(mb.entries)))
		case !want && i >= 0:
			mb.tracker.QueueExpunge(uint32(i) + 1)
			mb.entries = slices.Delete(mb.entries, i, i+1)
		}
	}
	a.signal()
}

// signal wakes every IDLE of the account.
func (a *account) signal() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// entryOf is m's entry in mb, or nil.
func entryOf(mb *mailbox, m *message) *entry {
	for _, e := range mb.entries {
		if e.msg == m {
			return e
		}
	}
	return nil
}

// addLabel applies Gmail's rule for putting m into mb: Trash and Spam are
// exclusive (they take every other label away), Starred means \Flagged,
// All Mail means "not in Trash or Spam".
func (a *account) addLabel(m *message, mb *mailbox) {
	switch mb.role {
	case roleTrash, roleSpam:
		m.labels = map[*mailbox]bool{mb: true}
	case roleStarred:
		m.flags = addFlags(m.flags, imap.FlagFlagged)
		a.takeOutOfTrash(m)
	case roleAll:
		a.takeOutOfTrash(m)
	default:
		a.takeOutOfTrash(m)
		m.labels[mb] = true
	}
}

func (a *account) takeOutOfTrash(m *message) {
	for l := range m.labels {
		if l.role == roleTrash || l.role == roleSpam {
			delete(m.labels, l)
		}
	}
}

// removeLabel is Gmail's rule for taking m out of mb (EXPUNGE, or the
// source of a MOVE): from a label, INBOX, Trash or Spam only that label
// goes; from Starred the \Flagged flag; from All Mail the message goes to
// Trash.
func (a *account) removeLabel(m *message, mb *mailbox) {
	switch mb.role {
	case roleStarred:
		m.flags = delFlags(m.flags, imap.FlagFlagged)
	case roleAll:
		if trash := a.byRole(roleTrash); trash != nil {
			m.labels = map[*mailbox]bool{trash: true}
		} else {
			m.labels = map[*mailbox]bool{}
		}
	default:
		delete(m.labels, mb)
	}
}

func (a *account) byRole(r role) *mailbox {
	for _, mb := range a.mailboxes {
		if mb.role == r {
			return mb
		}
	}
	return nil
}

// storedMessages is every message once (a Gmail message without labels
// is still stored: it is in All Mail).
func (a *account) storedMessages() map[*message]bool {
	seen := map[*message]bool{}
	for _, mb := range a.mailboxes {
		for _, e := range mb.entries {
			seen[e.msg] = true
		}
	}
	return seen
}

// storageUsed is the size of every stored message, each counted once
// (Gmail counts a message with several labels once).
func (a *account) storageUsed() int64 {
	var n int64
	for m := range a.storedMessages() {
		n += int64(len(m.body))
	}
	return n
}

// byMessageID finds a stored message by Message-ID (Gmail's dedup key).
func (a *account) byMessageID(id string) *message {
	if id == "" {
		return nil
	}
	for m := range a.storedMessages() {
		if m.msgID == id {
			return m
		}
	}
	return nil
}

// messageID returns the normalised Message-ID of a raw message.
func messageID(body []byte) string {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(h.Get("Message-Id"))
	return strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
}

// appendMessage stores body in mb (the caller checked limits). Gmail: a
// message whose Message-ID is already in the account is not stored again;
// the existing one gets mb's label and APPENDUID names its UID in mb.
func (a *account) appendMessage(mb *mailbox, body []byte, opts *imap.AppendOptions) *imap.AppendData {
	date := opts.Time
	if date.IsZero() {
		date = a.srv.now()
	}
	if a.gmail() {
		if m := a.byMessageID(messageID(body)); m != nil {
			m.flags = addFlags(m.flags, opts.Flags...)
			a.addLabel(m, mb)
			a.reconcile(m)
			a.notifyFlags(m, nil)
			if e := entryOf(mb, m); e != nil {
				return &imap.AppendData{UIDValidity: mb.uidValidity, UID: e.uid}
			}
		}
	}
	a.nextID++
	m := &message{
		id:     a.nextID,
		body:   body,
		date:   date,
		msgID:  messageID(body),
		flags:  addFlags(nil, opts.Flags...),
		labels: map[*mailbox]bool{},
	}
	if a.gmail() {
		a.addLabel(m, mb)
	} else {
		m.labels[mb] = true
	}
	a.reconcile(m)
	e := entryOf(mb, m)
	if e == nil { // cannot happen: appending always makes m a member
		return &imap.AppendData{UIDValidity: mb.uidValidity}
	}
	if hasFlag(opts.Flags, imap.FlagDeleted) {
		e.deleted = true
	}
	return &imap.AppendData{UIDValidity: mb.uidValidity, UID: e.uid}
}

// copyTo puts m into dest and returns its UID there. Gmail adds a label to
// the same message; M365 stores a new, independent copy.
func (a *account) copyTo(e *entry, dest *mailbox) imap.UID {
	m := e.msg
	if a.gmail() {
		a.addLabel(m, dest)
		a.reconcile(m)
		a.notifyFlags(m, nil)
		if de := entryOf(dest, m); de != nil {
			return de.uid
		}
		return 0
	}
	a.nextID++
	c := &message{
		id:     a.nextID,
		body:   m.body,
		date:   m.date,
		msgID:  m.msgID,
		flags:  slices.Clone(m.flags),
		labels: map[*mailbox]bool{dest: true},
	}
	a.reconcile(c)
	if de := entryOf(dest, c); de != nil {
		de.deleted = e.deleted
		return de.uid
	}
	return 0
}

// moveTo moves m from src to dest and returns its UID in dest.
func (a *account) moveTo(e *entry, src, dest *mailbox) imap.UID {
	m := e.msg
	if a.gmail() {
		a.addLabel(m, dest)
		if src != dest && !(src.role == roleAll && dest.role != roleTrash && dest.role != roleSpam) {
			// Moving out of All Mail into a label only adds the label.
			a.removeLabel(m, src)
			if dest.role == roleStarred {
				m.flags = addFlags(m.flags, imap.FlagFlagged)
			}
		}
		a.reconcile(m)
		a.notifyFlags(m, nil)
		if de := entryOf(dest, m); de != nil {
			return de.uid
		}
		return 0
	}
	deleted := e.deleted
	m.labels = map[*mailbox]bool{dest: true}
	a.reconcile(m)
	if de := entryOf(dest, m); de != nil {
		de.deleted = deleted
		return de.uid
	}
	return 0
}

// expunge removes the entries of mb marked \Deleted (and in uids, if not
// nil) under the provider's rules.
func (a *account) expunge(mb *mailbox, uids *imap.UIDSet) {
	var gone []*message
	for _, e := range mb.entries {
		if e.deleted && (uids == nil || uids.Contains(e.uid)) {
			gone = append(gone, e.msg)
		}
	}
	for _, m := range gone {
		switch {
		case !a.gmail():
			m.gone = true
		case mb.role == roleTrash || mb.role == roleSpam:
			m.gone = true // Gmail deletes for good only here
		default:
			a.removeLabel(m, mb)
		}
		a.reconcile(m)
		a.notifyFlags(m, nil)
	}
}

// notifyFlags queues a FETCH FLAGS update for m in every mailbox that
// shows it, except to the session skip (it answers for itself).
func (a *account) notifyFlags(m *message, skip *imapserver.SessionTracker) {
	for _, mb := range a.mailboxes {
		for i, e := range mb.entries {
			if e.msg == m {
				mb.tracker.QueueMessageFlags(uint32(i)+1, e.uid, entryFlags(e), skip)
			}
		}
	}
	a.signal()
}

// hasChildren reports whether any mailbox is below name.
func (a *account) hasChildren(name string) bool {
	prefix := name + string(delim)
	for _, mb := range a.mailboxes {
		if strings.HasPrefix(mb.name, prefix) {
			return true
		}
	}
	return false
}

// rollDay starts a new upload day when the clock passed midnight UTC.
func (a *account) rollDay() {
	day := a.srv.now().UTC().Format("2006-01-02")
	if day != a.uploadDay {
		a.uploadDay = day
		a.uploadedBytes = 0
	}
}
