package backend

import (
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
}

// addLocal adds messages to local folder b. A message whose content
// fingerprint is already visible there is not stored again: its existing
// UID is returned (design.md "Nothing is duplicated"). New copies are
// written to the bridge's Maildir and fsynced before the index commit.
func (a *Account) addLocal(b *mailbox, in []incoming) ([]imap.UID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]imap.UID, len(in))
	type pend struct {
		i   int
		m   *store.Message
		env []byte
	}
	var pends []pend
	var written []string
	var added []*store.Message
	var uidNext uint32
	err := a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder(b.name)
		if err != nil {
			return err
		}
		for i, x := range in {
			served := x.served
			fp := message.ContentFP(served)
			// Already there and visible? Then nothing is added.
			uids, err := tx.FindFP(f.ID, fp[:])
			if err != nil {
				return err
			}
			found := false
			for _, u := range uids {
				m, err := tx.Message(f.ID, u)
				if err == nil && !m.Hidden {
					out[i] = imap.UID(u)
					found = true
					break
				}
			}
			if found {
				continue
			}
			hdr, _ := message.SplitHeader(served)
			hfp := message.HeaderFP(hdr)
			rel, err := a.owned.write(f.ID, served)
			if err != nil {
				return err
			}
			written = append(written, rel)
			m := &store.Message{Src: store.SrcOwned, Path: rel, CRC: crc(served), Size: int64(len(served)),
				FP: fp[:], HFP: hfp[:], MsgID: message.MessageID(hdr)}
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
			pends = append(pends, pend{i, m, env})
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

// Append stores a client's message: in Local/… in the bridge's Maildir
// (never the archive), elsewhere on the upstream (deduplicated: an APPEND
// of a message the folder already holds returns the existing UID, which is
// what Outlook's FETCH+APPEND+EXPUNGE move needs).
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
	var uid imap.UID
	if b.remote {
		hdr, _ := message.SplitHeader(data)
		uids, err := s.a.uploadRemote(b, []uploadItem{{body: data, flags: options.Flags, date: date, hfp: message.HeaderFP(hdr)}})
		if err != nil {
			return nil, err
		}
		uid = uids[0]
	} else {
		flags := make([]string, 0, len(options.Flags))
		for _, f := range options.Flags {
			flags = append(flags, string(f))
		}
		uids, err := s.a.addLocal(b, []incoming{{served: data, flags: flags, date: date}})
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
	data, done, copyErr := s.copyMessages(numSet, dest)
	if data != nil && len(done) > 0 {
		if err := s.a.hide(v.box, done); err != nil {
			return err
		}
		if err := w.WriteCopyData(data); err != nil {
			return err
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
		return &imap.CopyData{}, nil, nil
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
			hdr, _ := message.SplitHeader(bodies[i])
			flags := make([]imap.Flag, 0, len(t.flags))
			for _, f := range t.flags {
				if f != flagRecent && f != imap.FlagDeleted {
					flags = append(flags, f)
				}
			}
			items = append(items, uploadItem{body: bodies[i], flags: flags, date: recs[i].InternalDate(), hfp: message.HeaderFP(hdr)})
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
			in = append(in, incoming{served: bodies[i], flags: fromFlags(t.flags), date: date})
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

// remoteCopy copies between two upstream folders on the server itself.
func (a *Account) remoteCopy(src, dst *mailbox, targets []target) (*imap.CopyData, []imap.UID, error) {
	uids := make([]imap.UID, len(targets))
	for i, t := range targets {
		uids[i] = t.uid
	}
	ctx, cancel := a.remoteCtx()
	defer cancel()
	var data *imap.CopyData
	err := a.pool.Do(ctx, func(c *imapclient.Client) error {
		if _, err := c.Select(src.name, nil).Wait(); err != nil {
			return err
		}
		d, err := c.Copy(imap.UIDSetNum(uids...), dst.name).Wait()
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
		return &imap.CopyData{}, uids, nil
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
