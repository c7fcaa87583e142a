package backend

// Uploads to the upstream server: drags (COPY/MOVE from Local/…), migrate,
// POP delivery to a server folder, and clients' APPENDs.
//
// Identity is content (design.md "Dedup", issue F): the header fingerprint
// (HFP, from BODY.PEEK[HEADER.FIELDS …]) only finds candidates on the
// server; a candidate is the same message only when its content
// fingerprint (message.ContentFP) is the item's. The mirror learns a
// server message's content fingerprint when the bridge uploads it (the
// bytes are the bytes it sent) or reads its body; a candidate whose
// fingerprint is not known yet is fetched once, hashed, and remembered.
//
// A client's APPEND is different: it stores what was sent (RFC 3501
// 6.3.11). See appendRemote.
//
// Every APPEND the bridge sends is journaled first (pending/… keys in the
// store, with the folder's UIDNEXT at the time): if the bridge dies with
// APPENDs in flight, those can land after the next run looked, and that
// run uploads them again; repairDuplicates then removes the extra copies
// of exactly that content, keeping the lowest UID. Entries are dropped as
// soon as the server confirmed (APPENDUID) or refused the message.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// uploadItem is one message to put on the server.
type uploadItem struct {
	body  []byte
	flags []imap.Flag
	date  time.Time
	hfp   message.FP // header fingerprint: finds candidates
	fp    message.FP // content fingerprint: decides identity
}

// newUploadItem fingerprints body.
func newUploadItem(body []byte, flags []imap.Flag, date time.Time) uploadItem {
	hdr, _ := message.SplitHeader(body)
	return uploadItem{body: body, flags: flags, date: date, hfp: message.HeaderFP(hdr), fp: message.ContentFP(body)}
}

// uploadMode says whether an upload skips what the server already has.
type uploadMode int

const (
	// uploadDedup is for copies of existing mail (drags, migrate, POP):
	// a message whose content is already in the folder is not sent again.
	uploadDedup uploadMode = iota
	// uploadAlways stores every item (a client's APPEND).
	uploadAlways
)

// uploadRemote uploads copies of existing mail to the upstream folder b
// (a drag, a POP delivery): what the folder already holds — content
// proven — is not sent again. It returns the server UID of each item
// (0 = failed) and the first error; what succeeded is mirrored.
func (a *Account) uploadRemote(b *mailbox, items []uploadItem) ([]imap.UID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// Fresh view of the server first (a sweep, so a copy deleted there
	// meanwhile is not taken for present).
	if err := a.SyncRemote(ctx, b.name); err != nil {
		return nil, upstreamErr("sync", b.name, err)
	}
	out, _, err := a.uploadItems(ctx, b, items, uploadDedup, true)
	if rerr := a.repairDuplicates(ctx, b.name); rerr != nil {
		a.log.Warn("duplicate check after upload", "mailbox", b.name, "err", rerr)
	}
	return out, err
}

// appendRemote stores a client's APPEND in the upstream folder b and
// returns the UID of a message whose bytes are data (design.md invariant
// 2). It answers with an existing message instead only when reuse is
// allowed (the caller checked that the same content is in another folder
// of the account and that the client does not have b open: the signature
// of a move done by APPEND, Outlook's FETCH+APPEND+EXPUNGE) and the
// server's own bytes of that message equal data.
func (a *Account) appendRemote(b *mailbox, it uploadItem, reuse bool) (imap.UID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if reuse {
		uid, err := a.remoteExact(ctx, b, it)
		if err != nil {
			a.log.Warn("append: could not compare with the server's copy; storing the message", "mailbox", b.name, "err", err)
		} else if uid != 0 {
			return uid, nil
		}
	}
	// No quota check of our own: the server answers a single APPEND that
	// does not fit with [OVERQUOTA] itself.
	out, errs, err := a.uploadItems(ctx, b, []uploadItem{it}, uploadAlways, false)
	if out[0] != 0 {
		return out[0], nil
	}
	if errs[0] != nil {
		err = upstreamErr("APPEND", b.name, errs[0])
	}
	if err == nil {
		err = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: fmt.Sprintf("the server did not confirm the message in %q; try again", b.name)}
	}
	return 0, err
}

// remoteExact returns the UID of a message in b whose bytes on the server
// are exactly it.body, 0 if there is none. Candidates come from the mirror
// (same content or header fingerprint and the same size); their bytes are
// read from the server.
func (a *Account) remoteExact(ctx context.Context, b *mailbox, it uploadItem) (imap.UID, error) {
	var cands []imap.UID
	_ = a.db.View(func(tx *store.Tx) error {
		seen := map[uint32]bool{}
		byFP, _ := tx.FindFP(b.id, it.fp[:])
		byHFP, _ := tx.FindHFP(b.id, it.hfp[:])
		for _, u := range append(byFP, byHFP...) {
			if seen[u] {
				continue
			}
			seen[u] = true
			if m, err := tx.Message(b.id, u); err == nil && m.Size == int64(len(it.body)) {
				cands = append(cands, imap.UID(u))
			}
		}
		return nil
	})
	if len(cands) == 0 {
		return 0, nil
	}
	// Only copies the bridge made (or proved): never another APPEND.
	_ = a.db.View(func(tx *store.Tx) error {
		kept := cands[:0]
		for _, u := range cands {
			if m, err := tx.Message(b.id, uint32(u)); err == nil && m.Copy {
				kept = append(kept, u)
			}
		}
		cands = kept
		return nil
	})
	if len(cands) == 0 {
		return 0, nil
	}
	bodies, err := a.fetchRemoteBodies(ctx, b.name, cands)
	if err != nil {
		return 0, err
	}
	learned := map[imap.UID]message.FP{}
	var match imap.UID
	for _, u := range cands {
		body, ok := bodies[u]
		if !ok {
			continue
		}
		learned[u] = message.ContentFP(body)
		if match == 0 && bytes.Equal(body, it.body) {
			match = u
		}
	}
	a.learnFPs(b, learned, false)
	return match, nil
}

// uploadItems uploads items to b, whose mirror is fresh enough. In
// uploadDedup mode an item whose content is already in the folder (or
// earlier in items) is not sent; its UID is the existing message's.
// It returns each item's UID (0 = not there), each item's failure, and
// the first error. checkQuota asks the server's quota first (migrate
// checked it in its plan).
func (a *Account) uploadItems(ctx context.Context, b *mailbox, items []uploadItem, mode uploadMode, checkQuota bool) ([]imap.UID, []error, error) {
	out := make([]imap.UID, len(items))
	errs := make([]error, len(items))
	dupOf := make([]int, len(items)) // index of the item this one repeats, or -1
	for i := range dupOf {
		dupOf[i] = -1
	}
	// A folder listed but never read (just created, by the bridge or
	// another device) has a placeholder UIDVALIDITY in the mirror: read
	// it first, so that what is already there is seen and the UIDs
	// recorded below belong to the server's UIDVALIDITY (else the next
	// sync would take it for a changed one and read every message again).
	if b.neverSynced() {
		if err := a.syncRemote(ctx, b.name, false); err != nil {
			return out, errs, upstreamErr("SELECT", b.name, err)
		}
	}
	var todo []int
	if mode == uploadDedup {
		first := map[message.FP]int{}
		var uniq []int
		for i, it := range items {
			if j, ok := first[it.fp]; ok {
				dupOf[i] = j // the same message twice in one request: once
				continue
			}
			first[it.fp] = i
			uniq = append(uniq, i)
		}
		found, err := a.findOnServer(ctx, b, items, uniq, 0)
		if err != nil {
			return out, errs, upstreamErr("FETCH", b.name, err)
		}
		proven := map[imap.UID]message.FP{}
		for _, i := range uniq {
			if u := found[i]; u != 0 {
				out[i] = u
				proven[u] = items[i].fp
				continue
			}
			todo = append(todo, i)
		}
		a.learnFPs(b, proven, true)
	} else {
		for i := range items {
			todo = append(todo, i)
		}
	}
	fillDups := func() {
		for i, j := range dupOf {
			if j >= 0 {
				out[i], errs[i] = out[j], errs[j]
			}
		}
	}
	if len(todo) == 0 {
		fillDups()
		return out, errs, nil
	}
	var need int64
	for _, i := range todo {
		need += int64(len(items[i].body))
	}
	if checkQuota {
		err := a.pool.Do(ctx, func(c *imapclient.Client) error {
			return a.quotaCheck(ctx, c, b.name, need)
		})
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == "OVERQUOTA" {
				return out, errs, err
			}
			return out, errs, upstreamErr("APPEND", b.name, err)
		}
	}
	b.mu.Lock()
	uidNext := b.uidNext
	b.mu.Unlock()
	keys, err := a.journal(b.name, items, todo, uidNext)
	if err != nil {
		return out, errs, err
	}
	firstErr := a.appendParallel(ctx, b.name, items, todo, out, errs)
	if err := a.checkAppended(ctx, b, items, todo, out, errs, uidNext); err != nil {
		// Unchecked UIDs are not trusted: the sync below finds what
		// arrived by content.
		a.log.Warn("checking the server's answers to APPEND", "mailbox", b.name, "err", err)
		for _, i := range todo {
			out[i] = 0
		}
	}
	if firstErr == nil && a.mirrorAppended(b, items, todo, out, mode == uploadDedup, keys) {
		fillDups()
		return out, errs, nil
	}
	// Mirror what arrived: new UIDs only (an incremental sync).
	if err := a.syncRemote(ctx, b.name, false); err != nil {
		a.log.Warn("sync after upload", "mailbox", b.name, "err", err)
	}
	// Servers without UIDPLUS report no UIDs: find the new copies by
	// content among the UIDs that appeared.
	var unknown []int
	for _, i := range todo {
		if out[i] == 0 && !refused(errs[i]) {
			unknown = append(unknown, i)
		}
	}
	if len(unknown) > 0 {
		if found, err := a.findOnServer(ctx, b, items, unknown, uidNext); err == nil {
			for _, i := range unknown {
				if u := found[i]; u != 0 {
					out[i], errs[i] = u, nil
				}
			}
		} else {
			a.log.Warn("looking for uploaded messages", "mailbox", b.name, "err", err)
		}
	}
	learned := map[imap.UID]message.FP{}
	var settled []string
	for j, i := range todo {
		if out[i] != 0 {
			learned[out[i]] = items[i].fp
		}
		if out[i] != 0 || refused(errs[i]) {
			settled = append(settled, keys[j])
		}
	}
	a.learnFPs(b, learned, mode == uploadDedup)
	a.unjournal(settled)
	fillDups()
	if firstErr != nil {
		allDone := true
		for _, i := range todo {
			if out[i] == 0 {
				allDone = false
			}
		}
		if !allDone {
			return out, errs, upstreamErr("APPEND", b.name, firstErr)
		}
	}
	return out, errs, nil
}

// errKeptOther is the refusal of an APPEND the server answered with
// another message (Gmail: one message per Message-ID).
func errKeptOther() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists,
		Text: "the server already holds another message with the same Message-ID and kept that one instead of storing this one " +
			"(Gmail keeps one message per Message-ID); this message stays where it is"}
}

// checkAppended makes sure that the UID the server named for each
// uploaded item (out[i], from APPENDUID) holds the item's bytes, so that
// nothing is taken for uploaded that is not (design.md invariants 2 and
// 3). Servers that store one message per Message-ID (Gmail) answer an
// APPEND whose Message-ID the account already has with the existing
// message — its UID in the folder, old or newly given — whatever its
// bytes: an edited draft, the second delivery of a mailing-list message.
// The signs: two items got the same UID; a UID the folder already had
// before the upload (below uidNext); and on a label store (a server with
// an \All folder) an RFC822.SIZE or INTERNALDATE other than the item's.
// A suspect UID counts for an item only when the server's bytes are the
// item's; an item whose size differs is not the message, and is marked
// refused with errKeptOther. Without such signs (every other server, and
// every ordinary upload) this costs nothing, or one FETCH of sizes and
// dates per upload on a label store.
func (a *Account) checkAppended(ctx context.Context, b *mailbox, items []uploadItem, todo []int, out []imap.UID, errs []error, uidNext uint32) error {
	byUID := map[imap.UID][]int{}
	for _, i := range todo {
		if out[i] != 0 {
			byUID[out[i]] = append(byUID[out[i]], i)
		}
	}
	if len(byUID) == 0 {
		return nil
	}
	suspect := map[imap.UID]bool{}
	for u, is := range byUID {
		if len(is) > 1 || uint32(u) < uidNext {
			suspect[u] = true
		}
	}
	notIt := func(i int) {
		out[i], errs[i] = 0, errKeptOther()
	}
	if a.labelStore() {
		var set imap.UIDSet
		for u := range byUID {
			set.AddNum(u)
		}
		var meta []*imapclient.FetchMessageBuffer
		err := a.pool.DoSelected(ctx, a.srv(b.name), true, true, func(c *imapclient.Client) (err error) {
			meta, err = c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
			return err
		})
		if err != nil {
			return err
		}
		seen := map[imap.UID]bool{}
		for _, m := range meta {
			is, ok := byUID[m.UID]
			if !ok || m.InternalDate.IsZero() {
				continue // an unsolicited FETCH (see answered): looked at by content
			}
			seen[m.UID] = true
			for _, i := range is {
				it := items[i]
				switch {
				case m.RFC822Size != int64(len(it.body)):
					notIt(i)
				case !m.InternalDate.Equal(message.ClampDate(it.date).Truncate(time.Second)):
					suspect[m.UID] = true
				}
			}
		}
		for u := range byUID {
			if !seen[u] {
				suspect[u] = true
			}
		}
	}
	var check []imap.UID
	for u := range suspect {
		for _, i := range byUID[u] {
			if out[i] != 0 {
				check = append(check, u)
				break
			}
		}
	}
	if len(check) == 0 {
		return nil
	}
	sort.Slice(check, func(i, j int) bool { return check[i] < check[j] })
	bodies, err := a.fetchRemoteBodies(ctx, b.name, check)
	if err != nil {
		return err
	}
	for _, u := range check {
		body, ok := bodies[u]
		for _, i := range byUID[u] {
			switch {
			case out[i] == 0:
			case !ok:
				out[i] = 0 // unknown: looked for by content below
			case !bytes.Equal(body, items[i].body):
				notIt(i)
			}
		}
	}
	return nil
}

// labelStore reports whether the server shows one message in several
// folders, with a folder of all mail (RFC 6154 \All: Gmail).
func (a *Account) labelStore() bool {
	folders, err := a.db.Folders()
	if err != nil {
		return false
	}
	for _, f := range folders {
		if f.Remote && f.SpecialUse == `\All` {
			return true
		}
	}
	return false
}

// mirrorAppended records messages the server just confirmed (APPENDUID)
// in the mirror directly from what was sent — the server's copy is those
// bytes — instead of reading them back, when their UIDs follow the
// mirror's highest UID without a gap (else a message someone else added
// in between would be skipped by the next incremental sync). It also
// settles their journal entries. It reports whether it did.
func (a *Account) mirrorAppended(b *mailbox, items []uploadItem, todo []int, out []imap.UID, isCopy bool, keys []string) bool {
	uids := make([]imap.UID, 0, len(todo))
	for _, i := range todo {
		if out[i] == 0 {
			return false
		}
		uids = append(uids, out[i])
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	b.syncMu.Lock() // no sync adds these meanwhile
	defer b.syncMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	var adds []*store.Message
	err := a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder(b.name)
		if err != nil {
			return err
		}
		next := f.HighestUID + 1
		for _, u := range uids {
			if uint32(u) != next {
				return errGap
			}
			next++
		}
		for _, i := range todo {
			it := items[i]
			hdr, _ := message.SplitHeader(it.body)
			date := message.ClampDate(it.date)
			_, off := date.Zone()
			m := &store.Message{UID: uint32(out[i]), Src: store.SrcRemote, Size: int64(len(it.body)), Date: date.Unix(), DateZone: int32(off),
				Flags: flagStrings(it.flags), HFP: append([]byte(nil), it.hfp[:]...), FP: append([]byte(nil), it.fp[:]...),
				MsgID: message.MessageID(hdr), Copy: isCopy}
			if err := tx.PutRemoteMessage(f, m); err != nil {
				return err
			}
			if env := message.EncodeEnvelope(message.Envelope(hdr)); env != nil {
				if err := tx.PutEnvelope(f.ID, m.UID, env); err != nil {
					return err
				}
			}
			adds = append(adds, m)
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errGap) {
			a.log.Warn("mirror uploaded messages", "mailbox", b.name, "err", err)
		}
		return false
	}
	sort.Slice(adds, func(i, j int) bool { return adds[i].UID < adds[j].UID })
	b.appendLocked(adds, adds[len(adds)-1].UID+1)
	return true
}

var errGap = errors.New("UIDs do not follow the mirror's highest")

// refused reports whether err is the server's answer to one message (it
// did not store it), rather than a lost connection of unknown outcome.
func refused(err error) bool {
	var ie *imap.Error
	return err != nil && errors.As(err, &ie)
}

// findOnServer looks, for each items[i] (i in idx), for a message in the
// upstream folder b with the same content and a UID ≥ above; it returns
// the UIDs found by item index. Candidates are the mirror's messages with
// the same content fingerprint, or the same header fingerprint and a
// content fingerprint not known yet: those are read from the server once
// and their fingerprints remembered.
func (a *Account) findOnServer(ctx context.Context, b *mailbox, items []uploadItem, idx []int, above uint32) (map[int]imap.UID, error) {
	found := map[int]imap.UID{}
	lookup := func(tx *store.Tx, i int) imap.UID {
		uids, _ := tx.FindFP(b.id, items[i].fp[:])
		sort.Slice(uids, func(x, y int) bool { return uids[x] < uids[y] })
		for _, u := range uids {
			if u >= above {
				return imap.UID(u)
			}
		}
		return 0
	}
	unknownFP := map[imap.UID]int64{} // candidate → size
	_ = a.db.View(func(tx *store.Tx) error {
		for _, i := range idx {
			if u := lookup(tx, i); u != 0 {
				found[i] = u
				continue
			}
			uids, _ := tx.FindHFP(b.id, items[i].hfp[:])
			for _, u := range uids {
				if u < above {
					continue
				}
				if m, err := tx.Message(b.id, u); err == nil && len(m.FP) == 0 {
					unknownFP[imap.UID(u)] = m.Size
				}
			}
		}
		return nil
	})
	if len(unknownFP) == 0 {
		return found, nil
	}
	if err := a.learnFromServer(ctx, b, unknownFP); err != nil {
		return found, err
	}
	_ = a.db.View(func(tx *store.Tx) error {
		for _, i := range idx {
			if found[i] == 0 {
				if u := lookup(tx, i); u != 0 {
					found[i] = u
				}
			}
		}
		return nil
	})
	return found, nil
}

// learnChunkBytes bounds the bodies held at once while learning content
// fingerprints from the server.
const learnChunkBytes = 16 << 20

// learnFromServer reads the bodies of uids (by size, in bounded chunks)
// and records their content fingerprints in the mirror.
func (a *Account) learnFromServer(ctx context.Context, b *mailbox, uids map[imap.UID]int64) error {
	list := make([]imap.UID, 0, len(uids))
	for u := range uids {
		list = append(list, u)
	}
	sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
	for start := 0; start < len(list); {
		end := start + 1
		size := uids[list[start]]
		for end < len(list) && size+uids[list[end]] <= learnChunkBytes {
			size += uids[list[end]]
			end++
		}
		bodies, err := a.fetchRemoteBodies(ctx, b.name, list[start:end])
		if err != nil {
			return err
		}
		learned := make(map[imap.UID]message.FP, len(bodies))
		for u, body := range bodies {
			learned[u] = message.ContentFP(body)
		}
		a.learnFPs(b, learned, false)
		start = end
	}
	return nil
}

// learnFPs records content fingerprints of upstream messages in the
// mirror; copy marks them as copies of existing mail (store.Message.Copy).
func (a *Account) learnFPs(b *mailbox, fps map[imap.UID]message.FP, isCopy bool) {
	if len(fps) == 0 {
		return
	}
	err := a.db.Update(func(tx *store.Tx) error {
		for uid, fp := range fps {
			m, err := tx.Message(b.id, uint32(uid))
			if err != nil || (bytes.Equal(m.FP, fp[:]) && (m.Copy || !isCopy)) {
				continue
			}
			m.Copy = m.Copy || isCopy
			m.FP = append([]byte(nil), fp[:]...)
			if err := tx.PutMessage(b.id, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.log.Warn("record content fingerprints", "mailbox", b.name, "err", err)
		return
	}
	a.counts.noteLearned()
}

// journalEntry is what the store remembers of an APPEND in flight.
type journalEntry struct {
	HFP     string `json:"hfp"`
	UIDNext uint32 `json:"uidnext"` // the folder's UIDNEXT before it was sent
	At      int64  `json:"at"`
}

const journalPrefix = "pending/"

func journalFolderPrefix(folder string) string { return journalPrefix + folder + "\x00" }

// journal records the APPENDs about to be sent and returns their keys
// (in todo order).
func (a *Account) journal(folder string, items []uploadItem, todo []int, uidNext uint32) ([]string, error) {
	keys := make([]string, len(todo))
	now := time.Now()
	err := a.db.Update(func(tx *store.Tx) error {
		for j, i := range todo {
			keys[j] = fmt.Sprintf("%s%s\x00%d.%d", journalFolderPrefix(folder), items[i].fp, now.UnixNano(), j)
			v, _ := json.Marshal(journalEntry{HFP: items[i].hfp.String(), UIDNext: uidNext, At: now.Unix()})
			if err := tx.Set(keys[j], v); err != nil {
				return err
			}
		}
		return nil
	})
	return keys, err
}

// unjournal drops settled entries.
func (a *Account) unjournal(keys []string) {
	if len(keys) == 0 {
		return
	}
	if err := a.db.Update(func(tx *store.Tx) error {
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		a.log.Warn("upload journal", "err", err)
	}
}

// repairDuplicates removes extra copies on the server of messages whose
// APPEND was in flight when the bridge stopped (journaled, never
// confirmed): of the copies of that exact content with a UID at or above
// the folder's UIDNEXT at the time, the lowest stays. Messages the bridge
// never tried to upload, and content that differs, are never touched.
func (a *Account) repairDuplicates(ctx context.Context, folder string) error {
	prefix := journalFolderPrefix(folder)
	type pend struct {
		key string
		fp  message.FP
		e   journalEntry
	}
	var ps []pend
	_ = a.db.View(func(tx *store.Tx) error {
		return tx.Scan(prefix, func(k string, v []byte) error {
			rest := strings.TrimPrefix(k, prefix)
			fpHex, _, _ := strings.Cut(rest, "\x00")
			var p pend
			raw, err := hex.DecodeString(fpHex)
			if err != nil || len(raw) != len(p.fp) || json.Unmarshal(v, &p.e) != nil {
				ps = append(ps, pend{key: k}) // unreadable: just drop it
				return nil
			}
			copy(p.fp[:], raw)
			p.key = k
			ps = append(ps, p)
			return nil
		})
	})
	if len(ps) == 0 {
		return nil
	}
	if err := a.SyncRemote(ctx, folder); err != nil {
		return err
	}
	f, err := a.db.Folder(folder)
	if err != nil {
		if errors.Is(err, store.ErrNoFolder) {
			keys := make([]string, len(ps))
			for i, p := range ps {
				keys[i] = p.key
			}
			a.unjournal(keys)
			return nil
		}
		return err
	}
	b, err := a.box(f)
	if err != nil {
		return err
	}
	// Learn the content of every candidate first.
	unknown := map[imap.UID]int64{}
	_ = a.db.View(func(tx *store.Tx) error {
		for _, p := range ps {
			var hfp message.FP
			if raw, err := hex.DecodeString(p.e.HFP); err == nil && len(raw) == len(hfp) {
				copy(hfp[:], raw)
			}
			uids, _ := tx.FindHFP(f.ID, hfp[:])
			for _, u := range uids {
				if m, err := tx.Message(f.ID, u); err == nil && len(m.FP) == 0 && u >= p.e.UIDNext {
					unknown[imap.UID(u)] = m.Size
				}
			}
		}
		return nil
	})
	if len(unknown) > 0 {
		if err := a.learnFromServer(ctx, b, unknown); err != nil {
			return err
		}
	}
	extra := map[imap.UID]bool{}
	done := map[message.FP]bool{}
	_ = a.db.View(func(tx *store.Tx) error {
		for _, p := range ps {
			if p.e.UIDNext == 0 || done[p.fp] {
				continue
			}
			done[p.fp] = true
			low := p.e.UIDNext
			for _, q := range ps {
				if q.fp == p.fp && q.e.UIDNext != 0 && q.e.UIDNext < low {
					low = q.e.UIDNext
				}
			}
			uids, _ := tx.FindFP(f.ID, p.fp[:])
			sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
			var copies []uint32
			for _, u := range uids {
				if u >= low {
					copies = append(copies, u)
				}
			}
			for _, u := range copies[min(1, len(copies)):] {
				extra[imap.UID(u)] = true
			}
		}
		return nil
	})
	if len(extra) > 0 {
		list := make([]imap.UID, 0, len(extra))
		for u := range extra {
			list = append(list, u)
		}
		sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
		a.log.Warn("removing duplicate uploads left by an interrupted run", "mailbox", folder, "count", len(list))
		if err := a.remoteExpunge(b, list); err != nil {
			return err
		}
	}
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.key
	}
	a.unjournal(keys)
	return nil
}
