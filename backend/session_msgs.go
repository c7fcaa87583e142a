package backend

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// target is one message addressed by a command, as this session sees it.
type target struct {
	seq   uint32 // client-visible sequence number
	uid   imap.UID
	flags []imap.Flag
	size  int64
	date  time.Time
	gone  *limboItem // expunged by another session; this one was not told yet
}

// staticSeqSet replaces "*" by max. "n:*" with n > max still means max
// (RFC 3501 6.4.8: "*" is the largest number in use).
func staticSeqSet(set imap.SeqSet, max uint32) imap.SeqSet {
	out := make(imap.SeqSet, len(set))
	for i, r := range set {
		out[i] = r
		staticRange(&out[i].Start, &out[i].Stop, max)
	}
	return out
}

func staticUIDSet(set imap.UIDSet, max imap.UID) imap.UIDSet {
	out := make(imap.UIDSet, len(set))
	for i, r := range set {
		out[i] = r
		staticRange((*uint32)(&out[i].Start), (*uint32)(&out[i].Stop), uint32(max))
	}
	return out
}

func staticRange(start, stop *uint32, max uint32) {
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

func (s *Session) selected() (*view, error) {
	if s.sel == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "no folder selected"}
	}
	return s.sel, nil
}

const (
	fetchChunk      = 128
	fetchChunkBytes = 16 << 20
)

// Fetch writes FETCH responses, UID first in each (Thunderbird wants it so).
func (s *Session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	v, err := s.selected()
	if err != nil {
		return err
	}
	b := v.box
	b.mu.Lock()
	idx := v.indexesLocked(numSet)
	name := b.name
	b.mu.Unlock()

	markSeen := false
	for _, bs := range options.BodySection {
		if !bs.Peek {
			markSeen = true
		}
	}
	if v.readOnly {
		markSeen = false
	}
	needBody := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	needRec := needBody || options.Envelope || options.BodyStructure != nil || markSeen

	var firstErr error
	for start := 0; start < len(idx); {
		// Chunks bound what is held at once: ≤ fetchChunk messages and,
		// when bodies are read, ≤ fetchChunkBytes of them (one big message
		// may exceed it alone). Each chunk is described when its turn
		// comes (ten clients fetching 1:* of 100k messages held 15 MB of
		// descriptions), with its flags as they are then.
		stop := min(start+fetchChunk, len(idx))
		var chunk []target
		var size int64
		pos := start
		b.mu.Lock()
		for ; pos < stop; pos++ {
			t, ok := v.targetLocked(idx[pos])
			if !ok {
				continue
			}
			if needBody && len(chunk) > 0 && size+t.size > fetchChunkBytes {
				break
			}
			size += t.size
			chunk = append(chunk, t)
		}
		b.mu.Unlock()
		start = pos
		if len(chunk) == 0 {
			continue
		}
		recs := make([]*store.Message, len(chunk))
		envs := make([][]byte, len(chunk))
		bss := make([][]byte, len(chunk))
		var folder *store.Folder
		if needRec {
			err := s.a.db.View(func(tx *store.Tx) error {
				f, err := tx.Folder(name)
				if err != nil {
					return err
				}
				folder = f
				for i, t := range chunk {
					if options.Envelope {
						envs[i] = tx.Envelope(b.id, uint32(t.uid))
					}
					if options.BodyStructure != nil {
						bss[i] = tx.BodyStructure(b.id, uint32(t.uid))
					}
					// The record (location, CRC) is only decoded when bytes
					// must be read: a phone's first sync of ENVELOPEs only
					// touches the envelope cache.
					if needBody || markSeen || (options.Envelope && envs[i] == nil) || (options.BodyStructure != nil && bss[i] == nil) {
						m, err := tx.Message(b.id, uint32(t.uid))
						if err != nil { // expunged meanwhile: see limbo below
							recs[i] = nil
							continue
						}
						recs[i] = m
					} else {
						recs[i] = &store.Message{UID: uint32(t.uid)} // placeholder: nothing read from it
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if needRec {
			// Expunged by another session between resolving and reading:
			// still served, from limbo.
			b.mu.Lock()
			for i, t := range chunk {
				if recs[i] == nil {
					if r, it := b.limboRecLocked(t.uid); r != nil {
						recs[i], chunk[i].gone = r, it
					}
				}
			}
			b.mu.Unlock()
		}
		var remoteBodies map[imap.UID][]byte
		if b.remote && (needBody || options.BodyStructure != nil) {
			var want []imap.UID
			kept := map[imap.UID][]byte{}
			for i, t := range chunk {
				if t.gone != nil && t.gone.body != nil {
					kept[t.uid] = t.gone.body // expunged meanwhile: from limbo
					continue
				}
				if needBody || bss[i] == nil {
					want = append(want, t.uid)
				}
			}
			ctx, cancel := s.a.remoteCtx()
			remoteBodies, err = s.a.fetchRemoteBodies(ctx, name, want)
			cancel()
			if err != nil {
				return upstreamErr("FETCH", name, err)
			}
			for u, body := range kept {
				remoteBodies[u] = body
			}
		}
		var seenUIDs []imap.UID
		newBS := map[uint32][]byte{}
		newEnv := map[uint32][]byte{}
		for i, t := range chunk {
			rec := recs[i]
			if needRec && rec == nil {
				// Expunged and gone for good (a server message): RFC 5530.
				if firstErr == nil {
					firstErr = errExpungeIssued(name)
				}
				continue
			}
			var served []byte
			if b.remote && (needBody || (options.BodyStructure != nil && bss[i] == nil)) {
				var ok bool
				if served, ok = remoteBodies[t.uid]; !ok {
					// Expunged (through the bridge) since this FETCH began:
					// its bytes are kept while sessions may still ask.
					served, ok = b.keptBody(t.uid)
				}
				if !ok {
					if firstErr == nil {
						firstErr = errExpungeIssued(name)
					}
					continue
				}
			} else if needBody || (options.BodyStructure != nil && bss[i] == nil) || (options.Envelope && envs[i] == nil) {
				s.sc.trim()
				served, _, err = s.a.readServedBuf(folder, rec, &s.sc)
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
			}
			flags := t.flags
			if markSeen && t.gone == nil && !hasFlag(flags, imap.FlagSeen) {
				flags = toFlags(append(fromFlags(flags), string(imap.FlagSeen)))
				seenUIDs = append(seenUIDs, t.uid)
			}
			writeFlags := options.Flags || (markSeen && len(seenUIDs) > 0 && seenUIDs[len(seenUIDs)-1] == t.uid)
			if writeFlags {
				if err := s.announceFor(flags); err != nil {
					return err
				}
			}
			rw := w.CreateMessage(t.seq)
			rw.WriteUID(t.uid)
			if writeFlags {
				rw.WriteFlags(flags)
			}
			if options.InternalDate {
				rw.WriteInternalDate(t.date)
			}
			if options.RFC822Size {
				rw.WriteRFC822Size(t.size)
			}
			if options.Envelope {
				var env *imap.Envelope
				if envs[i] != nil {
					env, _ = message.DecodeEnvelope(envs[i])
				}
				if env == nil {
					hdr, _ := message.SplitHeader(served)
					env = message.Envelope(hdr)
					newEnv[uint32(t.uid)] = message.EncodeEnvelope(env)
				}
				rw.WriteEnvelope(env)
			}
			if options.BodyStructure != nil {
				var bs imap.BodyStructure
				if bss[i] != nil {
					bs, _ = message.DecodeBodyStructure(bss[i])
				}
				if bs == nil {
					bs = message.BodyStructure(served)
					newBS[uint32(t.uid)] = message.EncodeBodyStructure(bs)
				}
				rw.WriteBodyStructure(bs)
			}
			for _, sec := range options.BodySection {
				data := bodySection(served, sec)
				wc := rw.WriteBodySection(sec, int64(len(data)))
				if _, err := wc.Write(data); err != nil {
					wc.Close()
					return err
				}
				if err := wc.Close(); err != nil {
					return err
				}
			}
			for _, sec := range options.BinarySection {
				data := imapserver.ExtractBinarySection(bytes.NewReader(served), sec)
				wc := rw.WriteBinarySection(sec, int64(len(data)))
				if _, err := wc.Write(data); err != nil {
					wc.Close()
					return err
				}
				if err := wc.Close(); err != nil {
					return err
				}
			}
			for _, sec := range options.BinarySectionSize {
				rw.WriteBinarySectionSize(sec, imapserver.ExtractBinarySectionSize(bytes.NewReader(served), sec))
			}
			if err := rw.Close(); err != nil {
				return err
			}
		}
		if len(newBS) > 0 || len(newEnv) > 0 {
			_ = s.a.db.Update(func(tx *store.Tx) error {
				for uid, v := range newBS {
					if err := tx.PutBodyStructure(b.id, uid, v); err != nil {
						return err
					}
				}
				for uid, v := range newEnv {
					if err := tx.PutEnvelope(b.id, uid, v); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if len(seenUIDs) > 0 {
			if err := s.a.changeFlags(b, seenUIDs, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, v); err != nil {
				return err
			}
		}
	}
	s.sc.trim()
	return firstErr
}

// bodySection extracts one BODY[...] item. The whole message is served from
// the stored bytes (already CRLF) so that its size equals RFC822.SIZE.
func bodySection(served []byte, sec *imap.FetchItemBodySection) []byte {
	if sec.Specifier == imap.PartSpecifierNone && len(sec.Part) == 0 {
		data := served
		if p := sec.Partial; p != nil {
			if p.Offset >= int64(len(data)) {
				return nil
			}
			data = data[p.Offset:]
			if p.Size < int64(len(data)) {
				data = data[:p.Size]
			}
		}
		return data
	}
	// message.BodySection uses the same MIME tree as BODYSTRUCTURE and copes
	// with header lines imapserver's extractor gives up on.
	return message.BodySection(served, sec)
}

// changeFlags applies a STORE to uids of b: commit, then update memory and
// notify the other sessions. It returns nothing per message: callers that
// need the new flags read them from the mailbox.
func (a *Account) changeFlags(b *mailbox, uids []imap.UID, op *imap.StoreFlags, source *view) error {
	if b.remote {
		return a.remoteStore(b, uids, op)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	newFlags := make(map[imap.UID][]string, len(uids))
	err := a.db.Update(func(tx *store.Tx) error {
		for _, uid := range uids {
			m, err := tx.Message(b.id, uint32(uid))
			if err != nil {
				continue
			}
			nf := applyStore(m.Flags, op)
			if sameStrings(nf, m.Flags) {
				continue
			}
			m.Flags = nf
			if err := tx.PutMessage(b.id, m); err != nil {
				return err
			}
			newFlags[uid] = nf
		}
		return nil
	})
	if err != nil {
		return err
	}
	for uid, nf := range newFlags {
		b.setFlagsLocked(uid, toFlags(nf), source)
	}
	return nil
}

func applyStore(cur []string, op *imap.StoreFlags) []string {
	set := map[string]bool{}
	if op.Op != imap.StoreFlagsSet {
		for _, f := range cur {
			set[f] = true
		}
	}
	for _, f := range op.Flags {
		f = canonicalFlag(f)
		if f == flagRecent || f == imap.FlagWildcard {
			continue
		}
		switch op.Op {
		case imap.StoreFlagsDel:
			delete(set, string(f))
		default:
			set[string(f)] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	return fromFlags(toFlags(out))
}

// Store changes flags (an overlay in the index: the archive is untouched).
func (s *Session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	v, err := s.selected()
	if err != nil {
		return err
	}
	if v.readOnly {
		return errReadOnly()
	}
	b := v.box
	b.mu.Lock()
	targets := v.resolveLocked(numSet)
	b.mu.Unlock()
	uids := make([]imap.UID, 0, len(targets))
	for _, t := range targets {
		if t.gone == nil { // an expunged message's flags can't change
			uids = append(uids, t.uid)
		}
	}
	if err := s.a.changeFlags(b, uids, flags, v); err != nil {
		return err
	}
	if flags.Silent {
		return nil
	}
	b.mu.Lock()
	cur := make([][]imap.Flag, len(targets))
	for i, t := range targets {
		if seq := b.seqOfLocked(t.uid); seq != 0 {
			cur[i] = b.msgs[seq-1].flags
		}
	}
	b.mu.Unlock()
	for i, t := range targets {
		if cur[i] == nil {
			continue
		}
		if err := s.announceFor(cur[i]); err != nil {
			return err
		}
		rw := w.CreateMessage(t.seq)
		rw.WriteUID(t.uid)
		rw.WriteFlags(cur[i])
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Expunge hides messages marked \Deleted. Legacy messages stay in the
// sealed archive (the overlay remembers they are gone); the bridge's own
// copies are removed after the index commit.
func (s *Session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	v, err := s.selected()
	if err != nil {
		return err
	}
	if v.readOnly {
		if *w == (imapserver.ExpungeWriter{}) {
			return nil // CLOSE on an EXAMINEd folder expunges nothing
		}
		return errReadOnly()
	}
	b := v.box
	b.mu.Lock()
	var del []imap.UID
	for _, m := range b.msgs {
		if hasFlag(m.flags, imap.FlagDeleted) && (uids == nil || uids.Contains(m.uid)) {
			del = append(del, m.uid)
		}
	}
	b.mu.Unlock()
	return s.a.hide(b, del)
}

// hide removes uids from b: legacy messages get the Hidden overlay, owned
// copies are deleted from the index (their files once no session can
// address them any more).
func (a *Account) hide(b *mailbox, uids []imap.UID) error {
	if len(uids) == 0 {
		return nil
	}
	if b.remote {
		return a.remoteExpunge(b, uids)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[imap.UID]gone{}
	err := a.db.Update(func(tx *store.Tx) error {
		for _, uid := range uids {
			m, err := tx.Message(b.id, uint32(uid))
			if err != nil || m.Hidden {
				continue
			}
			if m.Src == store.SrcOwned {
				if err := tx.DeleteMessage(b.id, m.UID); err != nil {
					return err
				}
				out[uid] = gone{rec: m, file: m.Path}
				continue
			}
			m.Hidden = true
			if err := tx.PutMessage(b.id, m); err != nil {
				return err
			}
			out[uid] = gone{rec: m}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.removeLocked(out)
	return nil
}

// Search evaluates SEARCH with decoded-text matching.
func (s *Session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	v, err := s.selected()
	if err != nil {
		return nil, err
	}
	b := v.box
	b.mu.Lock()
	type snap struct {
		seq  uint32
		m    msgInfo
		gone *limboItem
	}
	all := make([]snap, 0, len(v.uids))
	for i, uid := range v.uids {
		if info, it, ok := b.infoLocked(uid); ok {
			all = append(all, snap{uint32(i) + 1, info, it})
		}
	}
	name := b.name
	b.mu.Unlock()
	var maxSeq uint32
	var maxUID imap.UID
	if len(all) > 0 {
		maxSeq = all[len(all)-1].seq
		maxUID = all[len(all)-1].m.uid
	}
	c := v.staticCriteria(criteria, maxSeq, maxUID)
	// Upstream folders: content keys are evaluated by the server (it has
	// the bodies); our sequence numbers become UIDs for it.
	if b.remote && message.NeedsContent(c) {
		seqUID := make(map[uint32]imap.UID, len(all))
		for _, x := range all {
			seqUID[x.seq] = x.m.uid
		}
		uids, err := s.a.remoteSearch(name, seqToUIDCriteria(c, seqUID))
		if err != nil {
			return nil, err
		}
		c = &imap.SearchCriteria{UID: []imap.UIDSet{uids}}
		if len(uids) == 0 {
			c = &imap.SearchCriteria{Not: []imap.SearchCriteria{{}}}
		}
	}

	var folder *store.Folder
	data := &imap.SearchData{}
	seqSet := imap.SeqSet{}
	uidSet := imap.UIDSet{}
	for _, x := range all {
		x := x
		load := func() ([]byte, error) {
			var rec *store.Message
			err := s.a.db.View(func(tx *store.Tx) error {
				if folder == nil {
					f, err := tx.Folder(name)
					if err != nil {
						return err
					}
					folder = f
				}
				var err error
				rec, err = tx.Message(b.id, uint32(x.m.uid))
				return err
			})
			if err != nil {
				// Expunged by another session meanwhile: from limbo.
				b.mu.Lock()
				r, _ := b.limboRecLocked(x.m.uid)
				b.mu.Unlock()
				if r == nil || folder == nil {
					return nil, err
				}
				rec = r
			}
			return s.a.readServed(folder, rec)
		}
		ok, err := message.Match(message.SearchMeta{
			SeqNum: x.seq, UID: x.m.uid, MaxSeq: maxSeq, MaxUID: maxUID,
			Flags: x.m.flags, Size: x.m.size, InternalDate: x.m.date,
		}, load, c)
		if err != nil {
			s.a.log.Warn("search: message skipped", "mailbox", name, "uid", x.m.uid, "err", err)
			continue
		}
		if !ok {
			continue
		}
		uidSet.AddNum(x.m.uid)
		num := x.seq
		if kind == imapserver.NumKindUID {
			num = uint32(x.m.uid)
		} else {
			seqSet.AddNum(x.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options != nil && options.ReturnSave {
		v.searchRes = uidSet
	}
	return data, nil
}

// staticCriteria resolves "$" (SEARCHRES) and "*" in the criteria's sets.
func (v *view) staticCriteria(c *imap.SearchCriteria, maxSeq uint32, maxUID imap.UID) *imap.SearchCriteria {
	out := *c
	out.SeqNum = nil
	out.UID = nil
	for _, set := range c.SeqNum {
		if imap.IsSearchRes(set) {
			out.UID = append(out.UID, v.searchRes)
			continue
		}
		out.SeqNum = append(out.SeqNum, staticSeqSet(set, maxSeq))
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			out.UID = append(out.UID, v.searchRes)
			continue
		}
		out.UID = append(out.UID, staticUIDSet(set, maxUID))
	}
	out.Not = nil
	for i := range c.Not {
		out.Not = append(out.Not, *v.staticCriteria(&c.Not[i], maxSeq, maxUID))
	}
	out.Or = nil
	for i := range c.Or {
		out.Or = append(out.Or, [2]imap.SearchCriteria{
			*v.staticCriteria(&c.Or[i][0], maxSeq, maxUID),
			*v.staticCriteria(&c.Or[i][1], maxSeq, maxUID),
		})
	}
	return &out
}

// literal adapts bytes to imap.LiteralReader.
type literal struct {
	*bytes.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

func newLiteral(b []byte) imap.LiteralReader { return literal{bytes.NewReader(b), int64(len(b))} }

var _ io.Reader = literal{}

// errExpungeIssued answers for a message another session expunged whose
// bytes are gone (RFC 5530 EXPUNGEISSUED).
func errExpungeIssued(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: responseCodeExpungeIssued,
		Text: fmt.Sprintf("a message in %q was deleted by another client meanwhile; the others were sent", name)}
}

func errTryCreate(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: fmt.Sprintf("no folder named %q", name)}
}

// seqToUIDCriteria rewrites sequence-number keys as UID keys (through this
// session's numbering) so that the server can evaluate them.
func seqToUIDCriteria(c *imap.SearchCriteria, seqUID map[uint32]imap.UID) *imap.SearchCriteria {
	out := *c
	out.SeqNum = nil
	out.UID = append([]imap.UIDSet(nil), c.UID...)
	for _, set := range c.SeqNum {
		var us imap.UIDSet
		for seq, uid := range seqUID {
			if set.Contains(seq) {
				us.AddNum(uid)
			}
		}
		if len(us) == 0 {
			us.AddNum(imap.UID(^uint32(0))) // matches nothing, still valid syntax
		}
		out.UID = append(out.UID, us)
	}
	out.Not = nil
	for i := range c.Not {
		out.Not = append(out.Not, *seqToUIDCriteria(&c.Not[i], seqUID))
	}
	out.Or = nil
	for i := range c.Or {
		out.Or = append(out.Or, [2]imap.SearchCriteria{*seqToUIDCriteria(&c.Or[i][0], seqUID), *seqToUIDCriteria(&c.Or[i][1], seqUID)})
	}
	return &out
}

// responseCodeExpungeIssued is RFC 5530's EXPUNGEISSUED (go-imap has no
// constant for it).
const responseCodeExpungeIssued imap.ResponseCode = "EXPUNGEISSUED"
