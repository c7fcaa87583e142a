package backend

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/store"
)

// Session is one client's view of the merged account. Backends speak UIDs;
// sequence numbers belong to the session (its view).
type Session struct {
	a    *Account
	user string
	sel  *view   // selected folder (local or upstream mirror)
	sc   scratch // buffers reused across the messages one FETCH serves
	// out writes complete untagged response lines to the client between
	// responses (the front door's writer); nil in bare imapserver tests.
	out func(line string) error
	// idleMu guards the writes of sel and its read by Idle: imapserver
	// runs Idle in a goroutine that, when the client goes away during
	// IDLE, is still running when Close is called.
	idleMu sync.Mutex
}

var (
	_ imapserver.Session          = (*Session)(nil)
	_ imapserver.SessionMove      = (*Session)(nil)
	_ imapserver.SessionNamespace = (*Session)(nil)
)

// NewSession starts a session for an authenticated user.
func (a *Account) NewSession(user string) (*Session, error) {
	return &Session{a: a, user: user}, nil
}

// SetUntaggedWriter gives the session a way to send untagged responses
// the imapserver writers have no method for (PERMANENTFLAGS, FLAGS in the
// middle of a FETCH). fn must write one or more complete lines atomically
// with respect to the connection's other output.
func (s *Session) SetUntaggedWriter(fn func(line string) error) { s.out = fn }

// Close ends the session.
func (s *Session) Close() error {
	s.closeView()
	return nil
}

// Login is never called: the server authenticates before the session exists.
func (s *Session) Login(username, password string) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "already authenticated"}
}

func (s *Session) closeView() {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.sel != nil {
		b := s.sel.box
		b.mu.Lock()
		s.sel.closeLocked()
		b.mu.Unlock()
		s.sel = nil
	}
}

// unknown reports a non-local name when there is no upstream at all.
func (s *Session) unknown(name string) bool {
	return !s.a.isLocal(name) && s.a.pool == nil
}

func (s *Session) noUpstream(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
		Text: fmt.Sprintf("no folder named %q (only %s/… exists: no upstream server is configured)", name, s.a.opts.Prefix)}
}

func errReadOnly() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "the mailbox is open read-only (EXAMINE); SELECT it to change it"}
}

// Namespace: personal namespace with "/" as the delimiter.
func (s *Session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

// Select opens a folder.
func (s *Session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.closeView()
	name = normName(name)
	if s.unknown(name) {
		return nil, s.noUpstream(name)
	}
	if !s.a.isLocal(name) {
		s.a.syncBeforeUse(name)
	}
	b, _, err := s.a.boxByName(name)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.openViewLocked(options != nil && options.ReadOnly)
	s.idleMu.Lock()
	s.sel = v
	s.idleMu.Unlock()
	flags := b.flagsLocked()
	perm := []imap.Flag{}
	if !v.readOnly {
		perm = append(append(perm, flags...), imap.FlagWildcard)
	}
	var firstUnseen uint32
	for i, m := range b.msgs {
		if !hasFlag(m.flags, imap.FlagSeen) {
			firstUnseen = uint32(i) + 1
			break
		}
	}
	return &imap.SelectData{
		Flags:             flags,
		PermanentFlags:    perm,
		NumMessages:       uint32(len(b.msgs)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(b.uidNext),
		UIDValidity:       b.uidValidity,
	}, nil
}

// Unselect closes the selected folder.
func (s *Session) Unselect() error {
	s.closeView()
	return nil
}

// normName makes INBOX case-insensitive (also as the first level of a
// longer name, RFC 3501 5.1) and drops a trailing delimiter.
func normName(name string) string {
	name = strings.TrimSuffix(name, "/")
	return canonInbox(name)
}

// canonInbox spells a leading INBOX level (or pattern) as "INBOX".
func canonInbox(name string) string {
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || name[5] == '/') {
		return "INBOX" + name[5:]
	}
	return name
}

// Status reports on a folder without selecting it.
func (s *Session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	name = normName(name)
	if s.unknown(name) {
		return nil, s.noUpstream(name)
	}
	if !s.a.isLocal(name) {
		s.a.syncBeforeUse(name)
	}
	b, _, err := s.a.boxByName(name)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statusLocked(name, options), nil
}

// List lists folders: the upstream mirrors and the archive, from the index.
// It implements LIST-EXTENDED's selection options (RFC 5258: SUBSCRIBED,
// RECURSIVEMATCH, SPECIAL-USE) and RETURN options (SUBSCRIBED, CHILDREN,
// SPECIAL-USE, and STATUS of RFC 5819).
func (s *Session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 || (len(patterns) == 1 && patterns[0] == "") {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	if options == nil {
		options = &imap.ListOptions{}
	}
	folders, err := s.a.db.Folders()
	if err != nil {
		return err
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if imapserver.MatchList(name, '/', canonInbox(ref), canonInbox(ref + p)[len(ref):]) || imapserver.MatchList(name, '/', ref, p) {
				return true
			}
		}
		return false
	}
	// RECURSIVEMATCH: a folder that is not selected itself is still
	// listed, with CHILDINFO, when a subscribed folder below it is.
	subChild := map[string]bool{}
	if options.SelectSubscribed && options.SelectRecursiveMatch {
		for _, f := range folders {
			if !f.Subscribed {
				continue
			}
			parts := splitName(f.Name)
			for i := 1; i < len(parts); i++ {
				subChild[joinName(parts[:i])] = true
			}
		}
	}
	for _, f := range folders {
		if !matches(f.Name) {
			continue
		}
		selected := true
		if options.SelectSubscribed && !f.Subscribed {
			selected = false
		}
		if options.SelectSpecialUse && f.SpecialUse == "" {
			selected = false
		}
		if !selected && !(options.SelectRecursiveMatch && subChild[f.Name]) {
			continue
		}
		d := &imap.ListData{Mailbox: f.Name, Delim: '/'}
		if f.NoSelect {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
		}
		if hasChild(folders, f.Name) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if f.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if f.SpecialUse != "" {
			d.Attrs = append(d.Attrs, imap.MailboxAttr(f.SpecialUse))
		}
		if options.SelectRecursiveMatch && subChild[f.Name] {
			d.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && !f.NoSelect && selected {
			// RFC 5819: a folder whose status can't be had is listed
			// without it.
			if st, err := s.Status(f.Name, options.ReturnStatus); err == nil {
				d.Status = st
			}
		}
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func hasChild(folders []store.Folder, name string) bool {
	p := name + "/"
	for _, f := range folders {
		if strings.HasPrefix(f.Name, p) {
			return true
		}
	}
	return false
}

// Create makes a bridge-owned folder under the prefix (parents included).
func (s *Session) Create(name string, options *imap.CreateOptions) error {
	name = normName(name)
	if s.unknown(name) {
		return s.noUpstream(name)
	}
	if !s.a.isLocal(name) {
		return s.a.remoteFolderOp("CREATE", name, func(c *imapclient.Client) error { return s.a.createOnServer(c, name, options) })
	}
	if err := validName(name); err != nil {
		return err
	}
	return s.a.db.Update(func(tx *store.Tx) error {
		parts := strings.Split(name, "/")
		for i := 1; i <= len(parts); i++ {
			n := strings.Join(parts[:i], "/")
			f, err := tx.Folder(n)
			if err == nil {
				if i == len(parts) {
					return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: fmt.Sprintf("folder %q already exists", name)}
				}
				_ = f
				continue
			}
			if !errors.Is(err, store.ErrNoFolder) {
				return err
			}
			if err := tx.CreateFolder(&store.Folder{Name: n, Created: true, Subscribed: true}); err != nil {
				return err
			}
		}
		return nil
	})
}

func validName(name string) error {
	for _, part := range strings.Split(name, "/") {
		if part == "" {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "folder names can't have empty levels"}
		}
		for _, r := range part {
			if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("folder name %q has a character that can't be used", name)}
			}
		}
	}
	return nil
}

func errSealed(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: fmt.Sprintf("%q is part of the legacy archive, which popbridge never changes; only folders created through popbridge can be renamed or deleted", name)}
}

// Delete removes a bridge-created folder (and the bridge's copies in it).
func (s *Session) Delete(name string) error {
	name = normName(name)
	if s.unknown(name) {
		return s.noUpstream(name)
	}
	if !s.a.isLocal(name) {
		srvName := s.a.srv(name)
		return s.a.remoteFolderOp("DELETE", name, func(c *imapclient.Client) error { return c.Delete(srvName).Wait() })
	}
	folders, err := s.a.db.Folders()
	if err != nil {
		return err
	}
	var f *store.Folder
	for i := range folders {
		if folders[i].Name == name {
			f = &folders[i]
		}
	}
	if f == nil {
		return errNoSuchMailbox(name)
	}
	if name == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX can't be deleted"}
	}
	if !f.Created || name == s.a.opts.Prefix {
		return errSealed(name)
	}
	if hasChild(folders, name) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren, Text: fmt.Sprintf("folder %q has subfolders; delete them first", name)}
	}
	if err := s.a.db.Update(func(tx *store.Tx) error { return tx.DeleteFolder(name) }); err != nil {
		return err
	}
	s.a.mu.Lock()
	delete(s.a.boxes, f.ID)
	s.a.mu.Unlock()
	return s.a.owned.removeFolder(f.ID)
}

// Rename renames a bridge-created folder and its subfolders.
func (s *Session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	oldName, newName = normName(oldName), normName(newName)
	lo, ln := s.a.isLocal(oldName), s.a.isLocal(newName)
	if !lo && !ln {
		if s.unknown(oldName) {
			return s.noUpstream(oldName)
		}
		return s.a.remoteFolderOp("RENAME", oldName, func(c *imapclient.Client) error { return s.a.renameOnServer(c, oldName, newName, options) })
	}
	if lo != ln {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "folders can't be renamed between the server and the local archive; copy or move the messages instead"}
	}
	if oldName == "INBOX" || newName == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX can't be renamed; create a folder and move the messages instead"}
	}
	if err := validName(newName); err != nil {
		return err
	}
	folders, err := s.a.db.Folders()
	if err != nil {
		return err
	}
	var moving []store.Folder
	for _, f := range folders {
		if f.Name == oldName || strings.HasPrefix(f.Name, oldName+"/") {
			if !f.Created || f.Name == s.a.opts.Prefix {
				return errSealed(f.Name)
			}
			moving = append(moving, f)
		}
	}
	if len(moving) == 0 {
		return errNoSuchMailbox(oldName)
	}
	err = s.a.db.Update(func(tx *store.Tx) error {
		// parents of the new name
		parts := strings.Split(newName, "/")
		for i := 1; i < len(parts); i++ {
			n := strings.Join(parts[:i], "/")
			if _, err := tx.Folder(n); err == nil {
				continue
			}
			if err := tx.CreateFolder(&store.Folder{Name: n, Created: true, Subscribed: true}); err != nil {
				return err
			}
		}
		for _, f := range moving {
			nn := newName + strings.TrimPrefix(f.Name, oldName)
			if err := tx.RenameFolder(f.Name, nn); err != nil {
				if errors.Is(err, store.ErrFolderExists) {
					return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: fmt.Sprintf("folder %q already exists", nn)}
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.a.mu.Lock()
	for _, f := range moving {
		if b, ok := s.a.boxes[f.ID]; ok {
			b.mu.Lock()
			b.name = newName + strings.TrimPrefix(f.Name, oldName)
			b.mu.Unlock()
		}
	}
	s.a.mu.Unlock()
	return nil
}

// Subscribe marks a folder subscribed.
func (s *Session) Subscribe(name string) error { return s.subscribe(name, true) }

// Unsubscribe clears the subscription.
func (s *Session) Unsubscribe(name string) error { return s.subscribe(name, false) }

func (s *Session) subscribe(name string, on bool) error {
	name = normName(name)
	if s.unknown(name) {
		return s.noUpstream(name)
	}
	if !s.a.isLocal(name) {
		srvName := s.a.srv(name)
		return s.a.remoteFolderOp("SUBSCRIBE", name, func(c *imapclient.Client) error {
			if on {
				return c.Subscribe(srvName).Wait()
			}
			return c.Unsubscribe(srvName).Wait()
		})
	}
	return s.a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder(name)
		if err != nil {
			return errNoSuchMailbox(name)
		}
		f.Subscribed = on
		return tx.PutFolder(f)
	})
}

// Poll sends pending unilateral updates.
func (s *Session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	b := s.sel.box
	b.mu.Lock()
	ups := s.sel.pollLocked(allowExpunge)
	b.mu.Unlock()
	return s.writeUpdates(w, ups)
}

// Idle streams updates until stop is closed.
func (s *Session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idleMu.Lock()
	v := s.sel
	s.idleMu.Unlock()
	if v == nil {
		<-stop
		return nil
	}
	// The change channel is taken in the same critical section as the
	// poll, so an update that lands between the poll and the wait still
	// wakes us.
	b := v.box
	for {
		b.mu.Lock()
		ch := b.changed
		ups := v.pollLocked(true)
		b.mu.Unlock()
		if err := s.writeUpdates(w, ups); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-stop:
			return nil
		}
	}
}

func splitName(name string) []string { return strings.Split(name, "/") }

func joinName(parts []string) string { return strings.Join(parts, "/") }
