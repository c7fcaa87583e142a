package backend

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// incoming is a message about to be added to a local folder.
type incoming struct {
	served []byte         // bytes to store (nil when src is set)
	src    *store.Message // an archive record to point at again (same bytes, new UID)
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
			var fp message.FP
			var served []byte
			if x.src != nil {
				copy(fp[:], x.src.FP)
			} else {
				served = x.served
				fp = message.ContentFP(served)
			}
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
			var m *store.Message
			var env []byte
			if x.src != nil {
				c := *x.src
				c.Hidden = false
				m = &c
			} else {
				hdr, _ := message.SplitHeader(served)
				hfp := message.HeaderFP(hdr)
				rel, err := a.owned.write(f.ID, served)
				if err != nil {
					return err
				}
				written = append(written, rel)
				m = &store.Message{Src: store.SrcOwned, Path: rel, CRC: crc(served), Size: int64(len(served)),
					FP: fp[:], HFP: hfp[:], MsgID: message.MessageID(hdr)}
				env = message.EncodeEnvelope(message.Envelope(hdr))
			}
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
// (never the archive), elsewhere on the upstream.
func (s *Session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	name = normName(name)
	if !s.a.isLocal(name) {
		if s.up == nil {
			return nil, s.noUpstream(name)
		}
		return s.up.Append(name, r, options)
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
	flags := make([]string, 0, len(options.Flags))
	for _, f := range options.Flags {
		flags = append(flags, string(f))
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	uids, err := s.a.addLocal(b, []incoming{{served: data, flags: flags, date: date}})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	uv := b.uidValidity
	b.mu.Unlock()
	return &imap.AppendData{UID: uids[0], UIDValidity: uv}, nil
}

// Copy copies messages to another folder.
func (s *Session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	if s.upSelected {
		dest = normName(dest)
		if s.a.isLocal(dest) {
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "copying from the server into the local archive is not supported yet"}
		}
		return s.up.Copy(numSet, dest)
	}
	data, _, err := s.copyFromLocal(numSet, dest)
	return data, err
}

// Move copies then hides the sources (only those confirmed copied).
func (s *Session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if s.upSelected {
		dest = normName(dest)
		if s.a.isLocal(dest) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "moving from the server into the local archive is not supported yet"}
		}
		mv, ok := s.up.(imapserver.SessionMove)
		if !ok {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "the server does not support MOVE"}
		}
		return mv.Move(w, numSet, dest)
	}
	v, err := s.selected()
	if err != nil {
		return err
	}
	if v.readOnly {
		return errReadOnly()
	}
	data, done, copyErr := s.copyFromLocal(numSet, dest)
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

// copyFromLocal copies from the selected local folder; it returns the
// COPYUID data and the source UIDs that were copied.
func (s *Session) copyFromLocal(numSet imap.NumSet, dest string) (*imap.CopyData, []imap.UID, error) {
	v, err := s.selected()
	if err != nil {
		return nil, nil, err
	}
	dest = normName(dest)
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
	if !s.a.isLocal(dest) {
		return s.copyToUpstream(folder, targets, recs, dest)
	}
	db, _, err := s.a.boxByName(dest)
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			return nil, nil, errTryCreate(dest)
		}
		return nil, nil, err
	}
	var in []incoming
	var srcUIDs []imap.UID
	var firstErr error
	for i, t := range targets {
		rec := recs[i]
		if rec == nil {
			continue
		}
		x := incoming{flags: fromFlags(t.flags), date: rec.InternalDate()}
		if rec.Src == store.SrcOwned {
			served, err := s.a.readServed(folder, rec)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			x.served = served
		} else {
			// Archive message: the copy points at the same sealed bytes.
			if _, err := s.a.readServed(folder, rec); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			x.src = rec
		}
		in = append(in, x)
		srcUIDs = append(srcUIDs, t.uid)
	}
	// An archive record can only point at its own folder's file; copies
	// across folders store the bytes in the bridge's Maildir.
	if db != b {
		for i := range in {
			if in[i].src != nil {
				j := indexOfUID(targets, srcUIDs[i])
				served, err := s.a.readServed(folder, recs[j])
				if err != nil {
					return nil, nil, err
				}
				in[i].served, in[i].src = served, nil
			}
		}
	}
	destUIDs, err := s.a.addLocal(db, in)
	if err != nil {
		return nil, nil, err
	}
	data := &imap.CopyData{UIDValidity: db.uidValidity}
	for i := range srcUIDs {
		data.SourceUIDs.AddNum(srcUIDs[i])
		data.DestUIDs.AddNum(destUIDs[i])
	}
	if firstErr != nil {
		firstErr = &imap.Error{Type: imap.StatusResponseTypeNo, Text: fmt.Sprintf("copied %d of %d messages: %v", len(srcUIDs), len(targets), firstErr)}
	}
	return data, srcUIDs, firstErr
}

func indexOfUID(ts []target, uid imap.UID) int {
	for i, t := range ts {
		if t.uid == uid {
			return i
		}
	}
	return -1
}

// copyToUpstream uploads local messages with APPEND, keeping flags and
// INTERNALDATE. (Issue B adds fingerprint dedup against the server.)
func (s *Session) copyToUpstream(folder *store.Folder, targets []target, recs []*store.Message, dest string) (*imap.CopyData, []imap.UID, error) {
	if s.up == nil {
		return nil, nil, s.noUpstream(dest)
	}
	data := &imap.CopyData{}
	var done []imap.UID
	for i, t := range targets {
		rec := recs[i]
		if rec == nil {
			continue
		}
		served, err := s.a.readServed(folder, rec)
		if err != nil {
			return partial(data, done, len(targets), err)
		}
		flags := make([]imap.Flag, 0, len(t.flags))
		for _, f := range t.flags {
			if f != flagRecent {
				flags = append(flags, f)
			}
		}
		ad, err := s.up.Append(dest, newLiteral(served), &imap.AppendOptions{Flags: flags, Time: t.date})
		if err != nil {
			return partial(data, done, len(targets), err)
		}
		data.UIDValidity = ad.UIDValidity
		data.SourceUIDs.AddNum(t.uid)
		data.DestUIDs.AddNum(ad.UID)
		done = append(done, t.uid)
	}
	return data, done, nil
}

func partial(data *imap.CopyData, done []imap.UID, total int, err error) (*imap.CopyData, []imap.UID, error) {
	if len(done) == 0 {
		return nil, nil, err
	}
	return data, done, &imap.Error{Type: imap.StatusResponseTypeNo, Text: fmt.Sprintf("uploaded %d of %d messages, then: %v", len(done), total, err)}
}
