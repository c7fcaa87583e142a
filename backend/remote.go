package backend

// The upstream half of the merged account. Every upstream folder has a
// mirror in the store (store.Folder.Remote): the server's UIDVALIDITY, and
// per message the server's UID, flags, size, INTERNALDATE, ENVELOPE and the
// header fingerprint (learned from BODY.PEEK[HEADER.FIELDS (…)], never
// whole bodies). Sessions are served from the mirror with the same
// machinery as local folders (sequence numbers per session, unilateral
// updates through the mailbox tracker); bodies are fetched from the server
// on demand, by UID. Every change a client makes is sent to the server
// first and mirrored only after the server confirmed it.

import (
	"context"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/units"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// ErrPrefixClash means the upstream already has a folder named like the
// archive prefix.
var ErrPrefixClash = errors.New("prefix clash")

var headerFPSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: message.HeaderFPFields, Peek: true}

const remoteTimeout = 2 * time.Minute

// syncChunk is how many new messages a mirror sync commits at a time.
var syncChunk = 2000

func (a *Account) remoteCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), remoteTimeout)
}

// SyncFolders mirrors the upstream folder list: new folders are added,
// vanished ones dropped, SPECIAL-USE and subscriptions refreshed. It fails
// with ErrPrefixClash when the server has a folder named like the prefix.
func (a *Account) SyncFolders(ctx context.Context) error {
	if a.pool == nil {
		return nil
	}
	a.listMu.Lock()
	defer a.listMu.Unlock()
	type rf struct {
		name    string // the bridge's
		srvName string // the server's
		special string
		noSel   bool
		sub     bool
	}
	var remote []rf
	err := a.pool.Do(ctx, func(c *imapclient.Client) error {
		opts := &imap.ListOptions{ReturnSubscribed: true}
		caps := c.Caps()
		if caps.Has(imap.CapSpecialUse) {
			opts.ReturnSpecialUse = true
		}
		if !caps.Has(imap.CapListExtended) {
			opts.ReturnSubscribed = false
		}
		list, err := c.List("", "*", opts).Collect()
		if err != nil {
			return err
		}
		names := a.learnNames(ctx, c, list)
		subs := map[string]bool{}
		if !opts.ReturnSubscribed {
			ls, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
			if err == nil {
				for _, l := range ls {
					subs[l.Mailbox] = true
				}
			}
		}
		for _, l := range list {
			name, ok := names.toBridge(l.Mailbox)
			if !ok {
				continue // another namespace (shared, other users)
			}
			x := rf{name: name, srvName: l.Mailbox, sub: subs[l.Mailbox]}
			for _, at := range l.Attrs {
				switch strings.ToLower(string(at)) {
				case `\noselect`, `\nonexistent`:
					x.noSel = true
				case `\subscribed`:
					x.sub = true
				case `\sent`, `\drafts`, `\trash`, `\junk`, `\archive`, `\all`, `\flagged`:
					x.special = specialCase(string(at))
				}
			}
			remote = append(remote, x)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Servers without SPECIAL-USE (Courier, Cyrus's defaults, Exchange's
	// LIST): the well-known names servers and clients really use stand for
	// the attributes, for the folders at the top (RFC 6154 6).
	have := map[string]bool{}
	for _, r := range remote {
		if r.special != "" {
			have[r.special] = true
		}
	}
	for i, r := range remote {
		if r.special != "" || r.noSel || strings.Contains(r.name, "/") || r.name == "INBOX" {
			continue
		}
		if su := archive.SpecialUse(r.name); su != "" && !have[su] {
			remote[i].special = su
			have[su] = true
		}
	}
	for _, r := range remote {
		if a.isLocal(r.name) {
			return fmt.Errorf("%w: the server already has a folder named %q; set [archive] prefix to another name (e.g. prefix = \"Archive\") in the config", ErrPrefixClash, r.name)
		}
	}
	seen := map[string]bool{}
	err = a.db.Update(func(tx *store.Tx) error {
		for _, r := range remote {
			seen[r.name] = true
			f, err := tx.Folder(r.name)
			if err != nil {
				if !errors.Is(err, store.ErrNoFolder) {
					return err
				}
				nf := &store.Folder{Name: r.name, Remote: true, UIDValidity: unreadUIDValidity, NoSelect: r.noSel, SpecialUse: r.special, Subscribed: r.sub, ServerName: serverNameField(r.name, r.srvName)}
				if err := tx.CreateFolder(nf); err != nil {
					return err
				}
				continue
			}
			if !f.Remote {
				continue
			}
			sn := serverNameField(r.name, r.srvName)
			if f.NoSelect != r.noSel || f.SpecialUse != r.special || f.Subscribed != r.sub || f.ServerName != sn {
				f.NoSelect, f.SpecialUse, f.Subscribed, f.ServerName = r.noSel, r.special, r.sub, sn
				if err := tx.PutFolder(f); err != nil {
					return err
				}
				a.mu.Lock()
				if b, ok := a.boxes[f.ID]; ok {
					b.mu.Lock()
					b.srvName = r.srvName
					b.mu.Unlock()
				}
				a.mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	folders, err := a.db.Folders()
	if err != nil {
		return err
	}
	for _, f := range folders {
		if f.Remote && !seen[f.Name] {
			a.dropFolder(f)
		}
	}
	return nil
}

// serverNameField is what store.Folder.ServerName holds: "" when the
// server's name is the bridge's.
func serverNameField(name, srvName string) string {
	if name == srvName {
		return ""
	}
	return srvName
}

// specialCase spells a SPECIAL-USE attribute as RFC 6154 does.
func specialCase(at string) string {
	for _, su := range []string{`\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`, `\All`, `\Flagged`} {
		if strings.EqualFold(at, su) {
			return su
		}
	}
	return at
}

// dropFolder forgets a mirror folder the server no longer has.
func (a *Account) dropFolder(f store.Folder) {
	_ = a.db.Update(func(tx *store.Tx) error { return tx.DeleteFolder(f.Name) })
	a.mu.Lock()
	delete(a.boxes, f.ID)
	a.mu.Unlock()
}

// SyncRemote brings the mirror of one upstream folder up to date:
// new UIDs only for new mail, a flags sweep for flag changes and expunges,
// a full rescan only when the server's UIDVALIDITY changed.
func (a *Account) SyncRemote(ctx context.Context, name string) error {
	return a.syncRemote(ctx, name, true)
}

// syncRemote is SyncRemote; without sweep only new UIDs are read (cheap,
// used around uploads; expunges wait for the next full sync).
func (a *Account) syncRemote(ctx context.Context, name string, sweep bool) error {
	return a.syncRemoteIf(ctx, name, sweep, time.Time{})
}

// syncRemoteIf is syncRemote, skipped when a full sync of the folder that
// began at or after since has completed meanwhile (a burst of SELECTs
// from a client's many connections shares one sync; none of them is
// answered from a mirror older than its request).
func (a *Account) syncRemoteIf(ctx context.Context, name string, sweep bool, since time.Time) error {
	if a.pool == nil {
		return nil
	}
	f, err := a.db.Folder(name)
	if err != nil {
		return err
	}
	if !f.Remote || f.NoSelect {
		return nil
	}
	b, err := a.box(f)
	if err != nil {
		return err
	}
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	if !since.IsZero() && !b.synced.Before(since) {
		return nil
	}
	started := time.Now()
	b.mu.Lock()
	startGen := b.gen
	count := uint32(len(b.msgs))
	b.mu.Unlock()
	srvName := b.server()
	condStore := a.pool.Caps().Has(imap.CapCondStore)
	if sweep && condStore && f.ModSeq != 0 {
		// RFC 7162: nothing changed in the folder (no flag, no expunge, no
		// new message) when HIGHESTMODSEQ, UIDNEXT and the count are what
		// the mirror last saw: one STATUS instead of a sweep.
		same := false
		err := a.pool.Do(ctx, func(c *imapclient.Client) error {
			st, err := c.Status(srvName, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}).Wait()
			if err != nil {
				return err
			}
			same = st.UIDValidity == f.UIDValidity && st.HighestModSeq == f.ModSeq && uint32(st.UIDNext) == f.UIDNext &&
				st.NumMessages != nil && *st.NumMessages == count
			return nil
		})
		if err == nil && same {
			b.synced = started
			return nil
		}
	}
	var modSeq uint64
	err = a.pool.Do(ctx, func(c *imapclient.Client) error {
		sd, err := c.Select(srvName, &imap.SelectOptions{ReadOnly: true, CondStore: condStore}).Wait()
		if err != nil {
			return err
		}
		if sd.NumMessages == 0 && !b.pinned {
			// Courier makes up a UIDVALIDITY (the time) for a folder it
			// has no UID database for yet — one never SELECTed
			// read-write: a new account's INBOX, a folder just created —
			// and EXAMINE does not store it: the first upload then meets
			// another UIDVALIDITY and the mirror is reset, forgetting
			// which messages the bridge put there. An empty folder has
			// no \Recent to lose: one SELECT makes the server keep it.
			if rw, err := c.Select(srvName, &imap.SelectOptions{CondStore: condStore}).Wait(); err == nil {
				sd = rw
				b.pinned = true
			}
		}
		if sd.UIDNext == 0 {
			// Courier leaves [UIDNEXT] out of its SELECT answer (RFC 3501
			// requires it): ask STATUS. Without an answer applyRemote
			// still keeps UIDNEXT above every UID it has seen.
			if st, err := c.Status(srvName, &imap.StatusOptions{UIDNext: true}).Wait(); err == nil {
				sd.UIDNext = st.UIDNext
			} else if !errors.As(err, new(*imap.Error)) {
				return err
			}
		}
		modSeq = sd.HighestModSeq
		f, err := a.db.Folder(name)
		if err != nil {
			return err
		}
		if f.UIDValidity != sd.UIDValidity {
			if err := a.resetRemote(b, f, sd.UIDValidity); err != nil {
				return err
			}
		}
		// Flags and expunges of what we know.
		present := map[uint32][]string{}
		known := f.HighestUID
		if !sweep {
			known = 0 // applyRemote then leaves existing messages alone
		}
		if sweep && f.HighestUID > 0 && sd.NumMessages > 0 {
			cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: imap.UID(f.HighestUID)}}, &imap.FetchOptions{UID: true, Flags: true})
			for {
				msg := cmd.Next()
				if msg == nil {
					break
				}
				buf, err := msg.Collect()
				if err != nil {
					cmd.Close()
					return err
				}
				if buf.UID != 0 && uint32(buf.UID) <= f.HighestUID {
					present[uint32(buf.UID)] = flagStrings(buf.Flags)
				}
			}
			if err := cmd.Close(); err != nil {
				return err
			}
		}
		// New messages.
		var adds []*store.Message
		envs := map[uint32][]byte{}
		ascending := true
		// UIDs whose answer was an unsolicited FETCH (see answered): asked
		// for again below. Since a chunk must hold every UID below its
		// highest, until then only what is below the lowest of them is
		// committed (a flag change on a recent message, the usual cause,
		// holds back little).
		var again []imap.UID
		lowestAgain := imap.UID(0)
		if sd.NumMessages > 0 {
			cmd := c.Fetch(imap.UIDSet{{Start: imap.UID(f.HighestUID + 1), Stop: 0}}, newMessageItems)
			for {
				msg := cmd.Next()
				if msg == nil {
					break
				}
				buf, err := msg.Collect()
				if err != nil {
					cmd.Close()
					return err
				}
				if uint32(buf.UID) <= f.HighestUID {
					continue // "n:*" always returns the last message
				}
				if !answered(buf) {
					again = append(again, buf.UID)
					if lowestAgain == 0 || buf.UID < lowestAgain {
						lowestAgain = buf.UID
					}
					continue
				}
				m, env := remoteRecord(buf)
				if n := len(adds); n > 0 && adds[n-1].UID > m.UID {
					ascending = false
				}
				adds = append(adds, m)
				if env != nil {
					envs[m.UID] = env
				}
				// A big first sync commits in chunks: memory stays bounded,
				// clients see the folder fill, and an interrupted sync
				// resumes after the last chunk. Only while the server sends
				// UIDs in ascending order (all do in practice): a chunk
				// must hold every UID below its highest.
				if ascending && len(adds) >= syncChunk {
					n := len(adds)
					if lowestAgain != 0 {
						n = sort.Search(n, func(i int) bool { return adds[i].UID >= uint32(lowestAgain) })
					}
					if n > 0 {
						if err := a.applyRemote(b, startGen, present, known, adds[:n], envs, adds[n-1].UID+1); err != nil {
							cmd.Close()
							return err
						}
						rest := map[uint32][]byte{}
						for _, m := range adds[n:] {
							if env, ok := envs[m.UID]; ok {
								rest[m.UID] = env
							}
						}
						present, known, adds, envs = nil, 0, slices.Clone(adds[n:]), rest
					}
				}
			}
			if err := cmd.Close(); err != nil {
				return err
			}
		}
		if len(again) > 0 {
			// A message expunged meanwhile is simply not answered; one
			// answered twice without its items is recorded as it came (a
			// server that never sends them must not stop the folder's
			// mirror).
			got, err := fetchAgain(c, again, newMessageItems)
			if err != nil {
				return err
			}
			for _, buf := range got {
				if !answered(buf) {
					a.log.Warn("the server answered FETCH twice without INTERNALDATE or the header fields", "mailbox", name, "uid", buf.UID)
				}
				m, env := remoteRecord(buf)
				adds = append(adds, m)
				if env != nil {
					envs[m.UID] = env
				}
			}
		}
		sort.Slice(adds, func(i, j int) bool { return adds[i].UID < adds[j].UID })
		return a.applyRemote(b, startGen, present, known, adds, envs, uint32(sd.UIDNext))
	})
	if err == nil && sweep {
		b.synced = started // (under syncMu)
		if modSeq != f.ModSeq || !condStore {
			if !condStore {
				modSeq = 0
			}
			_ = a.db.Update(func(tx *store.Tx) error {
				sf, err := tx.Folder(name)
				if err != nil || sf.ModSeq == modSeq {
					return err
				}
				sf.ModSeq = modSeq
				return tx.PutFolder(sf)
			})
		}
	}
	return err
}

// newMessageItems is what a mirror records of a new server message.
var newMessageItems = &imap.FetchOptions{
	UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
	BodySection: []*imap.FetchItemBodySection{headerFPSection},
}

// answered reports whether buf holds the answer to newMessageItems and not
// an unsolicited FETCH: a server may report a flag change by another
// client (RFC 3501 7.4.2) while a FETCH runs, and imapclient hands the
// command the first response it sees for each UID, the rest to nobody.
// Every server sends INTERNALDATE when asked; a flag update never does.
func answered(buf *imapclient.FetchMessageBuffer) bool {
	return !buf.InternalDate.IsZero() && len(buf.BodySection) > 0
}

// fetchAgain asks once more for uids, whose first answer lacked what was
// asked for (see answered), and returns the answers for those UIDs.
func fetchAgain(c *imapclient.Client, uids []imap.UID, items *imap.FetchOptions) ([]*imapclient.FetchMessageBuffer, error) {
	got, err := c.Fetch(imap.UIDSetNum(uids...), items).Collect()
	if err != nil {
		return nil, err
	}
	asked := make(map[imap.UID]bool, len(uids))
	for _, u := range uids {
		asked[u] = true
	}
	out := got[:0]
	for _, buf := range got {
		if asked[buf.UID] {
			out = append(out, buf)
		}
	}
	return out, nil
}

// remoteRecord is the mirror's record of a server message.
func remoteRecord(buf *imapclient.FetchMessageBuffer) (*store.Message, []byte) {
	hdr := buf.FindBodySection(headerFPSection)
	hfp := message.HeaderFP(hdr)
	date := buf.InternalDate
	_, off := date.Zone()
	m := &store.Message{UID: uint32(buf.UID), Src: store.SrcRemote, Size: buf.RFC822Size, Date: date.Unix(), DateZone: int32(off),
		Flags: flagStrings(buf.Flags), HFP: hfp[:], MsgID: message.MessageID(hdr)}
	var env []byte
	if buf.Envelope != nil {
		env = message.EncodeEnvelope(buf.Envelope)
	}
	return m, env
}

func flagStrings(fl []imap.Flag) []string {
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		if f == flagRecent {
			continue
		}
		out = append(out, string(f))
	}
	return fromFlags(toFlags(out))
}

// resetRemote empties a mirror whose UIDVALIDITY changed on the server.
func (a *Account) resetRemote(b *mailbox, f *store.Folder, uidValidity uint32) error {
	if f.HighestUID > 0 { // (a mirror that never held anything just adopts the server's)
		a.log.Warn("upstream UIDVALIDITY changed: re-reading the folder", "mailbox", f.Name, "old", f.UIDValidity, "new", uidValidity)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	err := a.db.Update(func(tx *store.Tx) error {
		sf, err := tx.Folder(f.Name)
		if err != nil {
			return err
		}
		if err := tx.ClearFolder(sf); err != nil {
			return err
		}
		sf.UIDValidity, sf.UIDNext, sf.HighestUID = uidValidity, 1, 0
		return tx.PutFolder(sf)
	})
	if err != nil {
		return err
	}
	all := map[imap.UID]gone{}
	for _, m := range b.msgs {
		all[m.uid] = gone{}
	}
	b.removeLocked(all)
	b.uidValidity, b.uidNext = uidValidity, 1
	f.UIDValidity, f.HighestUID, f.UIDNext = uidValidity, 0, 1
	return nil
}

// applyRemote commits a sync result, then updates the mailbox view.
// startGen is the mailbox's change generation when the sync began: what
// it read of UIDs the bridge changed since is not applied.
func (a *Account) applyRemote(b *mailbox, startGen uint64, present map[uint32][]string, highest uint32, adds []*store.Message, envs map[uint32][]byte, uidNext uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	left := map[imap.UID]gone{}
	changed := map[imap.UID][]string{}
	for u, g := range b.touched {
		if g <= startGen {
			delete(b.touched, u) // (syncs run one at a time per folder)
		}
	}
	for _, m := range b.msgs {
		if uint32(m.uid) > highest {
			continue
		}
		if _, recent := b.touched[m.uid]; recent {
			continue
		}
		fl, ok := present[uint32(m.uid)]
		if !ok {
			left[m.uid] = gone{}
			continue
		}
		if !sameStrings(fl, fromFlags(m.flags)) {
			changed[m.uid] = fl
		}
	}
	if len(left) == 0 && len(changed) == 0 && len(adds) == 0 && (uidNext == 0 || uidNext == b.uidNext) {
		return nil
	}
	err := a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder(b.name)
		if err != nil {
			return err
		}
		for uid := range left {
			if err := tx.DeleteMessage(f.ID, uint32(uid)); err != nil && !errors.Is(err, store.ErrNoMessage) {
				return err
			}
		}
		for uid, fl := range changed {
			m, err := tx.Message(f.ID, uint32(uid))
			if err != nil {
				continue
			}
			m.Flags = fl
			if err := tx.PutMessage(f.ID, m); err != nil {
				return err
			}
		}
		for _, m := range adds {
			if err := tx.PutRemoteMessage(f, m); err != nil {
				return err
			}
			if env := envs[m.UID]; env != nil {
				if err := tx.PutEnvelope(f.ID, m.UID, env); err != nil {
					return err
				}
			}
		}
		for _, m := range adds {
			uidNext = max(uidNext, m.UID+1) // (a server that did not say)
		}
		if uidNext > f.UIDNext {
			f.UIDNext = uidNext
		}
		return tx.PutFolder(f)
	})
	if err != nil {
		return err
	}
	b.removeLocked(left)
	for uid, fl := range changed {
		b.setFlagsLocked(uid, toFlags(fl), nil)
	}
	if uidNext < b.uidNext {
		uidNext = b.uidNext
	}
	for _, m := range adds {
		uidNext = max(uidNext, m.UID+1) // (a server that did not say)
	}
	b.appendLocked(adds, uidNext)
	return nil
}

// fetchRemoteBodies fetches BODY.PEEK[] of uids (streamed one message at a
// time by the client library; only this batch is held).
func (a *Account) fetchRemoteBodies(ctx context.Context, folder string, uids []imap.UID) (map[imap.UID][]byte, error) {
	out := make(map[imap.UID][]byte, len(uids))
	if len(uids) == 0 {
		return out, nil
	}
	err := a.pool.DoSelected(ctx, a.srv(folder), true, false, func(c *imapclient.Client) error {
		var err error
		out, err = fetchBodies(c, uids)
		return err
	})
	return out, err
}

// fetchBodies fetches BODY.PEEK[] of uids in the selected mailbox.
// imapclient can silently return fewer messages than a UID FETCH names:
// the missing ones are asked for once more.
func fetchBodies(c *imapclient.Client, uids []imap.UID) (map[imap.UID][]byte, error) {
	out, err := fetchBodiesOnce(c, uids)
	if err != nil || len(out) == len(uids) {
		return out, err
	}
	var again []imap.UID
	for _, u := range uids {
		if _, ok := out[u]; !ok {
			again = append(again, u)
		}
	}
	// (A pooled connection may not have been told of newer messages yet.)
	if err := c.Noop().Wait(); err != nil {
		return out, err
	}
	more, err := fetchBodiesOnce(c, again)
	for u, b := range more {
		out[u] = b
	}
	return out, err
}

func fetchBodiesOnce(c *imapclient.Client, uids []imap.UID) (map[imap.UID][]byte, error) {
	return fetchEach(c, uids, io.ReadAll, nil)
}

// fetchEach runs UID FETCH (UID BODY.PEEK[]) of uids in the selected
// mailbox and keeps, by UID, what read makes of each message's bytes
// (streamed: read must consume the literal); after, if set, is called
// after each message. A message without UID or body is left out.
func fetchEach[T any](c *imapclient.Client, uids []imap.UID, read func(io.Reader) (T, error), after func()) (map[imap.UID]T, error) {
	out := make(map[imap.UID]T, len(uids))
	sec := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid imap.UID
		var v T
		got := false
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					r, err := read(it.Literal)
					if err != nil {
						cmd.Close()
						return out, err
					}
					v, got = r, true
				}
			}
		}
		if uid != 0 && got {
			out[uid] = v
		}
		if after != nil {
			after()
		}
	}
	return out, cmd.Close()
}

// fetchBodiesOn is fetchBodies for a best effort: what could not be read
// is simply absent.
func fetchBodiesOn(c *imapclient.Client, uids []imap.UID) map[imap.UID][]byte {
	out, _ := fetchBodies(c, uids)
	return out
}

// remoteStore sends a STORE to the server, then mirrors the flags the
// server reports.
func (a *Account) remoteStore(b *mailbox, uids []imap.UID, op *imap.StoreFlags) error {
	if len(uids) == 0 {
		return nil
	}
	// A sync running meanwhile may read the flags before the STORE: it
	// leaves these UIDs alone (see mailbox.touched).
	b.touch(uids, true)
	defer b.touch(uids, false)
	ctx, cancel := a.remoteCtx()
	defer cancel()
	newFlags := map[imap.UID][]string{}
	err := a.pool.DoSelected(ctx, b.server(), false, false, func(c *imapclient.Client) error {
		store := func(set []imap.UID) error {
			msgs, err := c.Store(imap.UIDSetNum(set...), &imap.StoreFlags{Op: op.Op, Flags: op.Flags}, nil).Collect()
			for _, m := range msgs {
				if m.UID != 0 && m.Flags != nil {
					newFlags[m.UID] = flagStrings(m.Flags)
				}
			}
			return err
		}
		if err := store(uids); err != nil {
			return err
		}
		// A pooled connection may not have been told of the newest
		// messages yet: those it did not answer for are tried once more
		// after a NOOP (a selection reused without one saves a round trip).
		var missing []imap.UID
		for _, u := range uids {
			if _, ok := newFlags[u]; !ok {
				missing = append(missing, u)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if err := c.Noop().Wait(); err != nil {
			return err
		}
		return store(missing)
	})
	if err != nil {
		return upstreamErr("STORE", b.name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Servers answer with the new flags; where one didn't, compute them.
	for _, uid := range uids {
		if _, ok := newFlags[uid]; ok {
			continue
		}
		if seq := b.seqOfLocked(uid); seq != 0 {
			newFlags[uid] = applyStore(fromFlags(b.msgs[seq-1].flags), op)
		}
	}
	err = a.db.Update(func(tx *store.Tx) error {
		for uid, fl := range newFlags {
			m, err := tx.Message(b.id, uint32(uid))
			if err != nil {
				continue
			}
			m.Flags = fl
			if err := tx.PutMessage(b.id, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for uid, fl := range newFlags {
		b.setFlagsLocked(uid, toFlags(fl), nil)
	}
	return nil
}

// remoteExpunge removes uids on the server (UID EXPUNGE, so that other
// clients' \Deleted messages are left alone), then from the mirror.
func (a *Account) remoteExpunge(b *mailbox, uids []imap.UID) error {
	return a.remoteRemove(b, uids, "EXPUNGE", false, expungeUIDs)
}

// expungeUIDs removes uids from the selected mailbox and nothing else:
// STORE \Deleted, then UID EXPUNGE (RFC 4315). Without UIDPLUS, EXPUNGE
// would also remove what the user (on another device) marked \Deleted:
// those get the flag taken off for the EXPUNGE and put back after.
func expungeUIDs(c *imapclient.Client, set imap.UIDSet) error {
	// Not .SILENT: the answers say which UIDs this (pooled, possibly
	// behind) connection knows; for the others a NOOP first.
	marked := map[imap.UID]bool{}
	mark := func(s imap.UIDSet) error {
		msgs, err := c.Store(s, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
		for _, m := range msgs {
			marked[m.UID] = true
		}
		return err
	}
	if err := mark(set); err != nil {
		return err
	}
	var missing imap.UIDSet
	for _, r := range set {
		for u := r.Start; u <= r.Stop && u != 0; u++ {
			if !marked[u] {
				missing.AddNum(u)
			}
		}
	}
	if len(missing) > 0 {
		if err := c.Noop().Wait(); err != nil {
			return err
		}
		if err := mark(missing); err != nil {
			return err
		}
	}
	if c.Caps().Has(imap.CapUIDPlus) || c.Caps().Has(imap.CapIMAP4rev2) {
		return c.UIDExpunge(set).Close()
	}
	d, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return err
	}
	var others imap.UIDSet
	for _, u := range d.AllUIDs() {
		if !set.Contains(u) {
			others.AddNum(u)
		}
	}
	if len(others) > 0 {
		if err := c.Store(others, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
	}
	err = c.Expunge().Close()
	if len(others) > 0 {
		if rerr := c.Store(others, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// remoteRemove takes uids out of the upstream folder b with op (run with
// b selected read-write), then out of the mirror.
// fresh asks for a NOOP before op when the connection's selection is
// reused (op cannot tell which UIDs the connection does not know yet).
func (a *Account) remoteRemove(b *mailbox, uids []imap.UID, opName string, fresh bool, op func(c *imapclient.Client, set imap.UIDSet) error) error {
	if len(uids) == 0 {
		return nil
	}
	// A sync running meanwhile leaves these UIDs alone (it would drop
	// them from the mirror without the bytes kept below).
	b.touch(uids, true)
	defer b.touch(uids, false)
	ctx, cancel := a.remoteCtx()
	defer cancel()
	// Sessions that still show these messages may FETCH them until they
	// are told (RFC 3501 7.4.1): keep the bytes of small ones for them.
	// With several sessions on the folder, keep them all (one may open
	// the folder while this runs, showing a message expunged meanwhile).
	var keep []imap.UID
	b.mu.Lock()
	var budget int64 = limboBytes
	for _, uid := range uids {
		info, _, ok := b.infoLocked(uid)
		if !ok || info.size > limboMessage || info.size > budget {
			continue
		}
		held := len(b.views) > 1
		for v := range b.views {
			held = held || v.holds(uid)
		}
		if held {
			keep = append(keep, uid)
			budget -= info.size
		}
	}
	b.mu.Unlock()
	var kept map[imap.UID][]byte
	err := a.pool.DoSelected(ctx, b.server(), false, fresh, func(c *imapclient.Client) error {
		if len(keep) > 0 {
			kept = fetchBodiesOn(c, keep)
			b.mu.Lock()
			for u, body := range kept {
				b.expunging[u] = body
			}
			b.mu.Unlock()
		}
		return op(c, imap.UIDSetNum(uids...))
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	for u := range kept {
		delete(b.expunging, u) // limbo takes them over
	}
	if err != nil {
		return upstreamErr(opName, b.name, err)
	}
	left := map[imap.UID]gone{}
	err = a.db.Update(func(tx *store.Tx) error {
		for _, uid := range uids {
			m, err := tx.Message(b.id, uint32(uid))
			if err != nil {
				continue
			}
			if err := tx.DeleteMessage(b.id, uint32(uid)); err == nil {
				left[uid] = gone{rec: m, body: kept[uid]}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.removeLocked(left)
	return nil
}

// upstreamErr turns a server error into a NO that names the folder and
// keeps the server's words.
func upstreamErr(op, folder string, err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: ie.Code, Text: fmt.Sprintf("the server refused %s in %q: %s", op, folder, ie.Text)}
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: fmt.Sprintf("%s in %q: the server is not reachable: %v", op, folder, err)}
}

// quotaCheck refuses an upload that clearly won't fit (RFC 9208).
func (a *Account) quotaCheck(ctx context.Context, c *imapclient.Client, folder string, need int64) error {
	if need <= 0 || !(c.Caps().Has(imap.CapQuota) || c.Caps().Has("QUOTA=RES-STORAGE")) {
		return nil
	}
	roots, err := c.GetQuotaRoot(a.srv(folder)).Wait()
	if err != nil {
		return nil // no quota information: let the server decide
	}
	for _, q := range roots {
		r, ok := q.Resources[imap.QuotaResourceStorage]
		if !ok || r.Limit <= 0 {
			continue
		}
		free := (r.Limit - r.Usage) * 1024
		if need > free {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "OVERQUOTA",
				Text: fmt.Sprintf("%q is over quota: the messages need %s, the server has %s free of %s; nothing was uploaded", folder, kib(need), kib(max(free, 0)), kib(r.Limit*1024))}
		}
	}
	return nil
}

// syncBeforeUse refreshes a mirror before a client looks at it (SELECT,
// STATUS), briefly: on failure the client sees the mirror as it is.
func (a *Account) syncBeforeUse(name string) {
	if a.pool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Changes made through the bridge are mirrored as they happen; this
	// catches those made elsewhere.
	if err := a.syncRemoteIf(ctx, name, true, time.Now()); err != nil && !errors.Is(err, store.ErrNoFolder) {
		a.log.Warn("upstream sync failed; serving the last known state", "mailbox", name, "err", err)
	}
}

// remoteFolderOp runs a folder command (CREATE, DELETE, RENAME, SUBSCRIBE)
// on the server, then refreshes the folder list.
func (a *Account) remoteFolderOp(op, name string, fn func(c *imapclient.Client) error) error {
	ctx, cancel := a.remoteCtx()
	defer cancel()
	err := a.pool.Do(ctx, fn)
	if op == "DELETE" || op == "RENAME" {
		a.pool.Invalidate() // pooled connections may have it selected
	}
	if err != nil {
		return upstreamErr(op, name, err)
	}
	if err := a.SyncFolders(ctx); err != nil {
		a.log.Warn("folder list refresh failed", "err", err)
	}
	return nil
}

// RunRemote keeps the mirrors current until ctx ends: the folder list and
// every folder at start, INBOX (and any folder a client has open) watched
// with IDLE or polled, everything else re-read every few minutes.
func (a *Account) RunRemote(ctx context.Context, pollActive, pollAll time.Duration) {
	if a.pool == nil {
		return
	}
	syncAll := func() {
		if err := a.SyncFolders(ctx); err != nil {
			a.log.Error("upstream folder list", "err", err)
			return
		}
		folders, err := a.db.Folders()
		if err != nil {
			return
		}
		for _, f := range folders {
			if f.Remote && !f.NoSelect {
				if err := a.SyncRemote(ctx, f.Name); err != nil && ctx.Err() == nil {
					a.log.Warn("upstream sync", "mailbox", f.Name, "err", err)
				}
			}
		}
	}
	syncAll()
	inboxChanged := make(chan struct{}, 1)
	go a.pool.Watch(ctx, "INBOX", pollActive, func() {
		select {
		case inboxChanged <- struct{}{}:
		default:
		}
	})
	active := time.NewTicker(pollActive)
	defer active.Stop()
	all := time.NewTicker(pollAll)
	defer all.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-inboxChanged:
			if err := a.SyncRemote(ctx, "INBOX"); err != nil && ctx.Err() == nil {
				a.log.Warn("upstream sync", "mailbox", "INBOX", "err", err)
			}
		case <-active.C:
			for _, name := range a.activeRemote() {
				if err := a.SyncRemote(ctx, name); err != nil && ctx.Err() == nil {
					a.log.Warn("upstream sync", "mailbox", name, "err", err)
				}
			}
		case <-all.C:
			syncAll()
		}
	}
}

// activeRemote lists the mirrors some session has selected.
func (a *Account) activeRemote() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, b := range a.boxes {
		if !b.remote {
			continue
		}
		b.mu.Lock()
		if len(b.views) > 0 {
			out = append(out, b.name)
		}
		b.mu.Unlock()
	}
	return out
}

// Quota returns the upstream storage quota of INBOX's root in bytes;
// ok is false when the server has no quota (or no upstream is configured).
func (a *Account) Quota(ctx context.Context) (used, limit int64, ok bool, err error) {
	if a.pool == nil {
		return 0, 0, false, nil
	}
	err = a.pool.Do(ctx, func(c *imapclient.Client) error {
		if !c.Caps().Has(imap.CapQuota) {
			return nil
		}
		roots, err := c.GetQuotaRoot("INBOX").Wait()
		if err != nil {
			return err
		}
		for _, q := range roots {
			if r, has := q.Resources[imap.QuotaResourceStorage]; has && r.Limit > 0 {
				used, limit, ok = r.Usage*1024, r.Limit*1024, true
				return nil
			}
		}
		return nil
	})
	return used, limit, ok, err
}

// Upload tuning: APPENDs in flight on one connection (pipelined: with
// LITERAL+ a message of up to 4 KB waits for nothing; go-imap's client
// still waits for "+" before a larger literal, one round trip per message
// on that connection, which is why several connections pay off), and
// messages sent on one borrowed connection before it goes back to the
// pool (so that other borrowers — a client fetching a body — get a turn
// during a long upload).
const (
	uploadPipeline = 16
	uploadBatch    = 256
)

// appendParallel APPENDs items[todo] on up to MaxConnections-1
// connections (all of them when the account is Exclusive) and fills out
// with the UIDs the server reported (APPENDUID). The workers take the next message from one shared queue,
// each keeping up to uploadPipeline APPENDs in flight, so no connection
// idles while another still has a backlog. A message the server refuses
// is skipped (its UID stays 0) and reported; a lost connection fails the
// messages in flight on it (what landed is found by the next sync) and
// ends that worker; the others take the rest.
//
// Messages that share a Message-ID with an earlier one of todo (the
// second delivery of a mailing-list message, an edited draft) go in a
// later round, after the earlier ones are stored: on a server that keeps
// one message per Message-ID (Gmail) the first in archive order is then
// the one kept, on every run, instead of whichever connection was faster.
func (a *Account) appendParallel(ctx context.Context, folder string, items []uploadItem, todo []int, out []imap.UID, errs []error) error {
	var refused error
	rounds := messageIDRounds(items, todo)
	for r, round := range rounds {
		lost, ref := a.appendRound(ctx, folder, items, round, out, errs)
		if lost != nil {
			for _, later := range rounds[r+1:] {
				for _, i := range later {
					errs[i] = lost
				}
			}
			return lost
		}
		if refused == nil {
			refused = ref
		}
	}
	return refused
}

// messageIDRounds splits todo into rounds: each message goes in the round
// after the last earlier message with its Message-ID (messages without
// one, the first round). Nearly always there is one round.
func messageIDRounds(items []uploadItem, todo []int) [][]int {
	if len(todo) < 2 {
		return [][]int{todo}
	}
	seen := make(map[string]int, len(todo)) // Message-ID -> messages so far
	var rounds [][]int
	for _, i := range todo {
		hdr, _ := message.SplitHeader(items[i].body)
		r := 0
		if id := message.MessageID(hdr); id != "" {
			r = seen[id]
			seen[id] = r + 1
		}
		for len(rounds) <= r {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	return rounds
}

// appendRound is one round of appendParallel: the first lost connection
// (the messages no worker took are failed with it) and the first refusal.
func (a *Account) appendRound(ctx context.Context, folder string, items []uploadItem, todo []int, out []imap.UID, errs []error) (lost, firstRefused error) {
	workers := uploadWorkers(a.pool.MaxConnections(), a.opts.Exclusive, len(todo))
	if caps := a.pool.Caps(); caps != nil && !caps.Has(imap.CapLiteralPlus) && !caps.Has(imap.CapLiteralMinus) {
		// A server without non-synchronising literals (Courier-IMAP) takes
		// APPENDs fastest one at a time on one connection: measured 300
		// APPENDs in 0.55 s on one, 2.7 s spread over three (its UID
		// database is locked and re-read by each writer).
		workers = 1
	}
	next := make(chan int, len(todo))
	for _, i := range todo {
		next <- i
	}
	close(next)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				more, refused, err := a.appendSome(ctx, folder, items, next, out, errs)
				mu.Lock()
				if lost == nil && err != nil {
					lost = err
				}
				if firstRefused == nil && refused != nil {
					firstRefused = refused
				}
				mu.Unlock()
				if err != nil || !more {
					return
				}
			}
		}()
	}
	wg.Wait()
	// Messages no worker took: every connection was lost.
	for i := range next {
		if errs[i] == nil {
			errs[i] = lost
		}
	}
	return lost, firstRefused
}

// uploadWorkers is how many connections an upload of n messages uses:
// all maxConns when the account is exclusive, else one fewer (left for
// clients and the watcher), at least one, at most n.
func uploadWorkers(maxConns int, exclusive bool, n int) int {
	w := maxConns
	if !exclusive {
		w--
	}
	return min(max(w, 1), n)
}

// appendSome pipelines the APPENDs of up to uploadBatch messages from next
// on one borrowed connection; more is false once next is empty. refused is
// the first message the server refused (the others went on), err a lost
// connection (the messages in flight on it are marked failed).
func (a *Account) appendSome(ctx context.Context, folder string, items []uploadItem, next <-chan int, out []imap.UID, errs []error) (more bool, refused, err error) {
	srvFolder := a.srv(folder)
	type inflight struct {
		i   int
		cmd *imapclient.AppendCommand
	}
	var q []inflight
	err = a.pool.Do(ctx, func(c *imapclient.Client) error {
		wait := func(f inflight) error {
			ad, err := f.cmd.Wait()
			if err != nil {
				var ie *imap.Error
				if errors.As(err, &ie) {
					// Refused (too big, APPENDLIMIT, not RFC 5322…): this
					// message stays where it is; the others go on.
					a.log.Warn("upload refused by the server", "mailbox", folder, "size", len(items[f.i].body), "err", err)
					errs[f.i] = err
					if refused == nil {
						refused = err
					}
					return nil
				}
				return err
			}
			if ad != nil && ad.UID != 0 {
				out[f.i] = ad.UID
			}
			return nil
		}
		// A server without LITERAL+ or LITERAL- answers every APPEND with
		// "+" before the message: pipelining saves at most one round trip
		// then, and with Courier it costs a stall per message (the tagged
		// OK and the next "+" go out as two segments, the second held by
		// Nagle until our delayed ACK: 40 ms on Linux, 200 ms on Windows;
		// 43 ms/message measured against 2 ms one at a time). One in
		// flight there.
		depth := uploadPipeline
		if caps := c.Caps(); !caps.Has(imap.CapLiteralPlus) && !caps.Has(imap.CapLiteralMinus) {
			depth = 1
		}
		for n := 0; n < uploadBatch; n++ {
			i, ok := <-next
			if !ok {
				break
			}
			more = n == uploadBatch-1
			q = append(q, inflight{i: i})
			it := items[i]
			// Clamped: a pre-1970 date wraps around on some servers.
			cmd := c.Append(srvFolder, int64(len(it.body)), &imap.AppendOptions{Flags: it.flags, Time: message.ClampDate(it.date)})
			if _, err := cmd.Write(it.body); err != nil {
				cmd.Close()
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			q[len(q)-1].cmd = cmd
			if len(q) >= depth {
				if err := wait(q[0]); err != nil {
					return err
				}
				q = q[1:]
			}
		}
		for len(q) > 0 {
			if err := wait(q[0]); err != nil {
				return err
			}
			q = q[1:]
		}
		return nil
	})
	if err != nil {
		for _, f := range q {
			if out[f.i] == 0 && errs[f.i] == nil {
				errs[f.i] = err
			}
		}
		return false, refused, err
	}
	return more, refused, nil
}

// remoteSearch runs UID SEARCH on the server.
func (a *Account) remoteSearch(folder string, c *imap.SearchCriteria) (imap.UIDSet, error) {
	ctx, cancel := a.remoteCtx()
	defer cancel()
	var out imap.UIDSet
	err := a.pool.DoSelected(ctx, a.srv(folder), true, true, func(cl *imapclient.Client) error {
		d, err := cl.UIDSearch(c, nil).Wait()
		if err != nil {
			return err
		}
		out.AddNum(d.AllUIDs()...)
		return nil
	})
	if err != nil {
		return nil, upstreamErr("SEARCH", folder, err)
	}
	return out, nil
}

func kib(n int64) string { return units.Bytes(n) }
