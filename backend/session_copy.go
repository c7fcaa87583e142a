package backend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// incoming is a message about to be added to a local folder.
type incoming struct {
	served []byte // bytes to store
	flags  []string
	date   time.Time
	reuse  reuseRule
}

// reuseRule says when addLocal may answer with a message the folder
// already holds instead of storing a new one.
type reuseRule int

const (
	// reuseNever stores a new message (a COPY/MOVE into the message's own
	// folder, a client's APPEND edit).
	reuseNever reuseRule = iota
	// reuseContent takes a visible message with the same content
	// fingerprint (a copy from another folder: a drag, a POP delivery).
	reuseContent
	// reuseExact takes a visible copy (store.Message.Copy) whose bytes are
	// exactly these (a client's APPEND that moves a message another folder
	// holds, when the bridge already copied it there).
	reuseExact
)

// addLocal adds messages to local folder b and returns their UIDs. What it
// may reuse instead of storing is decided per message (incoming.reuse).
// New copies are written to the bridge's Maildir and fsynced before the
// index commit.
func (a *Account) addLocal(b *mailbox, in []incoming) ([]imap.UID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]imap.UID, len(in))
	fps := make([]message.FP, len(in))
	for i, x := range in {
		fps[i] = message.ContentFP(x.served)
	}
	// Reuse first (reads bytes: outside the write transaction).
	var folder *store.Folder
	var cands [][]*store.Message
	err := a.db.View(func(tx *store.Tx) error {
		f, err := tx.Folder(b.name)
		if err != nil {
			return err
		}
		folder = f
		cands = make([][]*store.Message, len(in))
		for i, x := range in {
			if x.reuse == reuseNever {
				continue
			}
			uids, err := tx.FindFP(f.ID, fps[i][:])
			if err != nil {
				return err
			}
			for _, u := range uids {
				if m, err := tx.Message(f.ID, u); err == nil && !m.Hidden {
					cands[i] = append(cands[i], m)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, x := range in {
		for _, m := range cands[i] {
			if x.reuse == reuseExact {
				// Only a copy the bridge made, never another APPEND (a
				// draft saved twice must stay two messages).
				if !m.Copy || m.Size != int64(len(x.served)) {
					continue
				}
				body, err := a.readServed(folder, m)
				if err != nil || !bytes.Equal(body, x.served) {
					continue
				}
			}
			out[i] = imap.UID(m.UID)
			break
		}
	}
	var written []string
	var added []*store.Message
	var uidNext uint32
	err = a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder(b.name)
		if err != nil {
			return err
		}
		for i, x := range in {
			if out[i] != 0 {
				continue
			}
			served := x.served
			fp := fps[i]
			hdr, _ := message.SplitHeader(served)
			hfp := message.HeaderFP(hdr)
			rel, err := a.owned.write(f.ID, served)
			if err != nil {
				return err
			}
			written = append(written, rel)
			m := &store.Message{Src: store.SrcOwned, Path: rel, CRC: crc(served), Size: int64(len(served)),
				FP: fp[:], HFP: hfp[:], MsgID: message.MessageID(hdr), Copy: x.reuse == reuseContent}
			env := message.EncodeEnvelope(message.Envelope(hdr))
			m.Flags = fromFlags(toFlags(x.flags))
			if !x.date.IsZero() {
				_, off := x.date.Zone()
				m.Date, m.DateZone = x.date.Unix(), int32(off)
			}
			if err := tx.AddMessage(f, m); err != nil {
				return err
			}
			if env != nil {
				if err := tx.PutEnvelope(f.ID, m.UID, env); err != nil {
					return err
				}
			}
			out[i] = imap.UID(m.UID)
			added = append(added, m)
		}
		uidNext = f.UIDNext
		return nil
	})
	if err != nil {
		for _, rel := range written {
			_ = a.owned.remove(rel)
		}
		return nil, err
	}
	b.appendLocked(added, uidNext)
	return out, nil
}

// contentElsewhere reports whether a visible message with content
// fingerprint fp is in some folder other than except (for upstream
// folders: among the messages whose content the bridge has seen).
func (a *Account) contentElsewhere(fp message.FP, except uint32) bool {
	folders, err := a.db.Folders()
	if err != nil {
		return false
	}
	found := false
	_ = a.db.View(func(tx *store.Tx) error {
		for _, f := range folders {
			if f.ID == except || f.NoSelect {
				continue
			}
			uids, _ := tx.FindFP(f.ID, fp[:])
			for _, u := range uids {
				if m, err := tx.Message(f.ID, u); err == nil && !m.Hidden {
					found = true
					return nil
				}
			}
		}
		return nil
	})
	return found
}

// Append stores a client's message: in Local/… in the bridge's Maildir
// (never the archive), elsewhere on the upstream. APPENDUID always names a
// message whose bytes are the appended bytes (design.md invariant 2).
// Clients edit by APPEND-then-delete (detach an attachment, save a draft
// again), so the answer is a new message, except for the one case where
// an existing one is right: the same bytes are already in the target
// folder as a copy the bridge made (a drag, migrate), the same content is
// in another folder of the account, and the client does not have the
// target open — a move done by FETCH + APPEND + EXPUNGE (Outlook, Apple
// Mail) of a message that is already there.
func (s *Session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	name = normName(name)
	if s.unknown(name) {
		return nil, s.noUpstream(name)
	}
	if r.Size() > maxMessageSize {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: fmt.Sprintf("message is %d bytes; the limit is %d MiB", r.Size(), maxMessageSize>>20)}
	}
	data, err := io.ReadAll(io.LimitReader(r, maxMessageSize+1))
	if err != nil {
		return nil, err
	}
	b, _, err := s.a.boxByName(name)
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			return nil, errTryCreate(name)
		}
		return nil, err
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	it := newUploadItem(data, options.Flags, date)
	reuse := (s.sel == nil || s.sel.box != b) && s.a.contentElsewhere(it.fp, b.id)
	var uid imap.UID
	if b.remote {
		uid, err = s.a.appendRemote(b, it, reuse)
		if err != nil {
			return nil, err
		}
	} else {
		flags := make([]string, 0, len(options.Flags))
		for _, f := range options.Flags {
			flags = append(flags, string(f))
		}
		rule := reuseNever
		if reuse {
			rule = reuseExact
		}
		uids, err := s.a.addLocal(b, []incoming{{served: data, flags: flags, date: date, reuse: rule}})
		if err != nil {
			return nil, err
		}
		uid = uids[0]
	}
	b.mu.Lock()
	uv := b.uidValidity
	b.mu.Unlock()
	return &imap.AppendData{UID: uid, UIDValidity: uv}, nil
}

// Copy copies messages to another folder.
func (s *Session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, _, err := s.copyMessages(numSet, dest)
	return data, err
}

// Move copies, then removes the sources — only those the destination
// confirmed (design.md invariant 2: a legacy message is hidden only after
// the server confirmed the APPEND; a server message is expunged only after
// the local copy is fsynced).
func (s *Session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	v, err := s.selected()
	if err != nil {
		return err
	}
	if v.readOnly {
		return errReadOnly()
	}
	if moved, err := s.moveOnServer(w, v, numSet, dest); moved {
		return err
	}
	data, done, copyErr := s.copyMessages(numSet, dest)
	if len(done) > 0 {
		if err := s.a.hide(v.box, done); err != nil {
			return err
		}
		if data != nil && data.UIDValidity != 0 {
			if err := w.WriteCopyData(data); err != nil {
				return err
			}
		}
	}
	return copyErr
}

// copyMessages copies from the selected folder; it returns the COPYUID
// data and the source UIDs the destination confirmed.
func (s *Session) copyMessages(numSet imap.NumSet, dest string) (*imap.CopyData, []imap.UID, error) {
	v, err := s.selected()
	if err != nil {
		return nil, nil, err
	}
	dest = normName(dest)
	if s.unknown(dest) {
		return nil, nil, s.noUpstream(dest)
	}
	b := v.box
	b.mu.Lock()
	targets := v.resolveLocked(numSet)
	name := b.name
	b.mu.Unlock()
	if len(targets) == 0 {
		return nil, nil, nil // nothing matched: no COPYUID
	}
	var folder *store.Folder
	recs := make([]*store.Message, len(targets))
	err = s.a.db.View(func(tx *store.Tx) error {
		f, err := tx.Folder(name)
		if err != nil {
			return err
		}
		folder = f
		for i, t := range targets {
			recs[i], _ = tx.Message(b.id, uint32(t.uid))
		}
		return nil
	})
	// Expunged by another session meanwhile: copied from limbo.
	b.mu.Lock()
	for i, t := range targets {
		if recs[i] == nil {
			recs[i], _ = b.limboRecLocked(t.uid)
		}
	}
	b.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	db, _, err := s.a.boxByName(dest)
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			return nil, nil, errTryCreate(dest)
		}
		return nil, nil, err
	}
	if b.remote && db.remote {
		return s.a.remoteCopy(b, db, targets)
	}
	// A copy into the message's own folder is a new message (COPYUID
	// says so; a MOVE then expunges the source): never the same UID.
	sameFolder := db == b

	// Bytes of every source message.
	bodies := make([][]byte, len(targets))
	var firstErr error
	if b.remote {
		uids := make([]imap.UID, len(targets))
		for i, t := range targets {
			uids[i] = t.uid
		}
		ctx, cancel := s.a.remoteCtx()
		got, err := s.a.fetchRemoteBodies(ctx, name, uids)
		cancel()
		if err != nil {
			return nil, nil, upstreamErr("FETCH", name, err)
		}
		for i, t := range targets {
			bodies[i] = got[t.uid]
		}
	} else {
		for i, rec := range recs {
			if rec == nil {
				continue
			}
			body, err := s.a.readServed(folder, rec)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			bodies[i] = body
		}
	}

	var srcUIDs, destUIDs []imap.UID
	if db.remote {
		var items []uploadItem
		var idx []int
		for i, t := range targets {
			if bodies[i] == nil {
				continue
			}
			flags := make([]imap.Flag, 0, len(t.flags))
			for _, f := range t.flags {
				if f != flagRecent && f != imap.FlagDeleted {
					flags = append(flags, f)
				}
			}
			items = append(items, newUploadItem(bodies[i], flags, recs[i].InternalDate()))
			idx = append(idx, i)
		}
		out, err := s.a.uploadRemote(db, items)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		db.mu.Lock()
		uv := db.uidValidity
		db.mu.Unlock()
		var ups []func(tx *store.Tx) error
		for j, uid := range out {
			if uid == 0 {
				continue
			}
			i := idx[j]
			srcUIDs = append(srcUIDs, targets[i].uid)
			destUIDs = append(destUIDs, uid)
			if !b.remote {
				srcUID, u := uint32(targets[i].uid), uint32(uid)
				ups = append(ups, func(tx *store.Tx) error {
					return tx.PutUpload(b.id, srcUID, store.Upload{Folder: db.name, UIDValidity: uv, UID: u, At: time.Now().Unix()})
				})
			}
		}
		if len(ups) > 0 {
			if err := s.a.db.Update(func(tx *store.Tx) error {
				for _, f := range ups {
					if err := f(tx); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return nil, nil, err
			}
			s.a.counts.noteUploads(b.id)
		}
	} else {
		var in []incoming
		for i, t := range targets {
			if bodies[i] == nil {
				continue
			}
			date := t.date
			if recs[i] != nil {
				date = recs[i].InternalDate()
			}
			rule := reuseContent
			if sameFolder {
				rule = reuseNever
			}
			in = append(in, incoming{served: bodies[i], flags: fromFlags(t.flags), date: date, reuse: rule})
			srcUIDs = append(srcUIDs, t.uid)
		}
		destUIDs, err = s.a.addLocal(db, in)
		if err != nil {
			return nil, nil, err
		}
	}
	db.mu.Lock()
	data := &imap.CopyData{UIDValidity: db.uidValidity}
	db.mu.Unlock()
	for i := range srcUIDs {
		data.SourceUIDs.AddNum(srcUIDs[i])
		data.DestUIDs.AddNum(destUIDs[i])
	}
	if len(srcUIDs) < len(targets) {
		if firstErr == nil {
			firstErr = fmt.Errorf("some messages could not be read")
		}
		var ie *imap.Error
		code := imap.ResponseCode("")
		if errors.As(firstErr, &ie) {
			code = ie.Code
		}
		firstErr = &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: fmt.Sprintf("copied %d of %d messages; the rest stay where they are: %v", len(srcUIDs), len(targets), firstErr)}
	}
	if len(srcUIDs) == 0 {
		return nil, nil, firstErr
	}
	return data, srcUIDs, firstErr
}

// moveOnServer moves between two different upstream folders with the
// server's own MOVE (RFC 6851), when it has one; moved is false when the
// move is not for it (the caller copies, then expunges the sources).
func (s *Session) moveOnServer(w *imapserver.MoveWriter, v *view, numSet imap.NumSet, dest string) (moved bool, err error) {
	dest = normName(dest)
	if s.a.pool == nil || s.a.isLocal(dest) || !v.box.remote || !s.a.pool.Caps().Has(imap.CapMove) {
		return false, nil
	}
	db, _, err := s.a.boxByName(dest)
	if err != nil || !db.remote || db == v.box {
		return false, nil
	}
	b := v.box
	b.mu.Lock()
	targets := v.resolveLocked(numSet)
	b.mu.Unlock()
	var uids []imap.UID
	for _, t := range targets {
		if t.gone == nil {
			uids = append(uids, t.uid)
		}
	}
	if len(uids) == 0 {
		return true, nil
	}
	var data *imap.CopyData
	dstName := db.server()
	err = s.a.remoteRemove(b, uids, "MOVE", true, func(c *imapclient.Client, set imap.UIDSet) error {
		d, err := c.Move(set, dstName).Wait()
		if d != nil {
			src, _ := d.SourceUIDs.(imap.UIDSet)
			dst, _ := d.DestUIDs.(imap.UIDSet)
			data = &imap.CopyData{UIDValidity: d.UIDValidity, SourceUIDs: src, DestUIDs: dst}
		}
		return err
	})
	if err != nil {
		return true, err
	}
	ctx, cancel := s.a.remoteCtx()
	defer cancel()
	if err := s.a.syncRemote(ctx, dest, false); err != nil {
		s.a.log.Warn("sync after move", "mailbox", dest, "err", err)
	}
	if data == nil || data.UIDValidity == 0 {
		return true, nil // a server without UIDPLUS: moved, UIDs unknown
	}
	return true, w.WriteCopyData(data)
}

// remoteCopy copies between two upstream folders on the server itself.
func (a *Account) remoteCopy(src, dst *mailbox, targets []target) (*imap.CopyData, []imap.UID, error) {
	uids := make([]imap.UID, len(targets))
	for i, t := range targets {
		uids[i] = t.uid
	}
	ctx, cancel := a.remoteCtx()
	defer cancel()
	var data *imap.CopyData
	srcName, dstName := src.server(), dst.server()
	err := a.pool.DoSelected(ctx, srcName, true, true, func(c *imapclient.Client) error {
		d, err := c.Copy(imap.UIDSetNum(uids...), dstName).Wait()
		data = d
		return err
	})
	if err != nil {
		return nil, nil, upstreamErr("COPY", dst.name, err)
	}
	if err := a.SyncRemote(ctx, dst.name); err != nil {
		a.log.Warn("sync after copy", "mailbox", dst.name, "err", err)
	}
	if data == nil || data.UIDValidity == 0 {
		// Server without UIDPLUS: the copy happened, UIDs unknown.
		return nil, uids, nil
	}
	return data, uids, nil
}

func indexOfUID(ts []target, uid imap.UID) int {
	for i, t := range ts {
		if t.uid == uid {
			return i
		}
	}
	return -1
}
