package backend

// Cutover: migrate moves the legacy archive to the server in bulk through
// the same upload path as a drag (uploadItems: content dedup against a
// fresh mirror, parallel pipelined APPENDs, quota check), and verify proves
// from the server's own answers, read fresh, that every distinct in-scope
// legacy message arrived: by header fields and size, or (-content) by the
// server's full bytes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/store"
)

// ErrNoUpstream is returned by migrate and verify without [upstream].
var ErrNoUpstream = errors.New("no upstream server is configured ([upstream] in the config)")

// MigrateOptions selects what migrate and verify look at.
type MigrateOptions struct {
	Since, Before time.Time         // INTERNALDATE range [Since, Before); zero = unbounded
	Folders       []string          // legacy folders (full names); empty = all
	Mapping       map[string]string // legacy folder → upstream folder overrides
	Move          bool              // hide legacy messages once confirmed upstream
	DailyLimit    int64             // bytes per day; 0 = none
	Progress      func(MigrateProgress)
	// Content makes verify compare every message's full bytes (read from
	// the server, streamed and hashed) rather than header fields and size.
	Content bool
	// VerifyProgress is called as verify reads the server.
	VerifyProgress func(VerifyProgress)
}

// FolderPlan is one line of the plan.
type FolderPlan struct {
	Source      string `json:"source"`
	Target      string `json:"target"`
	Create      bool   `json:"create,omitempty"` // target does not exist yet
	InScope     int    `json:"in_scope"`
	Bytes       int64  `json:"bytes"`
	OnServer    int    `json:"on_server"`
	ToUpload    int    `json:"to_upload"`
	UploadBytes int64  `json:"upload_bytes"`
	// Repeats counts in-scope messages whose content another message of
	// the plan already uploads to the same server folder (the same mail in
	// two sources or folders): they are neither uploaded nor counted twice.
	Repeats       int `json:"repeats,omitempty"`
	folderID      uint32
	specialTarget bool
}

// Plan is what migrate will do.
type Plan struct {
	Folders    []FolderPlan `json:"folders"`
	QuotaKnown bool         `json:"quota_known"`
	QuotaUsed  int64        `json:"quota_used"`
	QuotaLimit int64        `json:"quota_limit"`
	Need       int64        `json:"need"`
	Fits       bool         `json:"fits"`
	FitHint    string       `json:"fit_hint,omitempty"` // a -since that would fit
}

// MigrateProgress is reported after each batch.
type MigrateProgress struct {
	Folder        string `json:"folder"`
	FolderDone    int    `json:"folder_done"`
	FolderTotal   int    `json:"folder_total"`
	Done, Total   int
	Bytes, TotalB int64
	Elapsed       time.Duration
}

// FolderResult is one line of the summary.
type FolderResult struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	InScope  int    `json:"in_scope"`
	Uploaded int    `json:"uploaded"`
	Already  int    `json:"already"`
	Failed   int    `json:"failed"`
	Hidden   int    `json:"hidden"`
	Error    string `json:"error,omitempty"`
	// Failures names every message that did not reach the server, and why.
	Failures []MessageFailure `json:"failures,omitempty"`
}

// MessageFailure is one message migrate could not put on the server.
type MessageFailure struct {
	UID       uint32    `json:"uid"`
	Date      time.Time `json:"date"`
	From      string    `json:"from,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Reason    string    `json:"reason"`
}

// MigrateResult summarises a run; Complete means everything in scope is
// on the server.
type MigrateResult struct {
	Folders  []FolderResult `json:"folders"`
	Complete bool           `json:"complete"`
	Bytes    int64          `json:"bytes"`
	Elapsed  time.Duration  `json:"elapsed"`
	Stopped  string         `json:"stopped,omitempty"` // why it stopped early (daily cap…)
}

func (o *MigrateOptions) inScope(m *store.Message) bool {
	if m.Hidden {
		return false
	}
	if !o.Since.IsZero() && m.Date < o.Since.Unix() {
		return false
	}
	if !o.Before.IsZero() && m.Date >= o.Before.Unix() {
		return false
	}
	return true
}

// targetFor maps a legacy folder to its upstream folder: [migrate] folders
// first, then Inbox → INBOX, SPECIAL-USE → the server's folder with that
// attribute, else the same path without the prefix.
func (a *Account) targetFor(f store.Folder, remotes []store.Folder, mapping map[string]string) (target string, special bool) {
	if t, ok := mapping[f.Name]; ok {
		return normName(t), false
	}
	rel := strings.TrimPrefix(f.Name, a.opts.Prefix+"/")
	last := rel[strings.LastIndex(rel, "/")+1:]
	if strings.EqualFold(last, "Inbox") {
		return "INBOX", true
	}
	// Children of a source's own inbox (Maildir++ ".INBOX.X") go below
	// the server's INBOX.
	comps := strings.Split(rel, "/")
	for k := 0; k < len(comps)-1 && k < 2; k++ {
		if strings.EqualFold(comps[k], "Inbox") && (k == 0 || comps[0] == f.Source) {
			return "INBOX/" + strings.Join(comps[k+1:], "/"), false
		}
	}
	if f.SpecialUse != "" {
		for _, r := range remotes {
			if strings.EqualFold(r.SpecialUse, f.SpecialUse) {
				return r.Name, true
			}
		}
	}
	return rel, false
}

// legacyFolders returns the local folders in scope.
func (a *Account) legacyFolders(names []string) ([]store.Folder, []store.Folder, error) {
	folders, err := a.db.Folders()
	if err != nil {
		return nil, nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[normName(n)] = true
	}
	var local, remote []store.Folder
	for _, f := range folders {
		if f.Remote {
			remote = append(remote, f)
			continue
		}
		if f.NoSelect || !a.isLocal(f.Name) {
			continue
		}
		if len(want) > 0 && !want[f.Name] {
			continue
		}
		local = append(local, f)
	}
	for n := range want {
		found := false
		for _, f := range local {
			if f.Name == n {
				found = true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("no legacy folder named %q (see popbridge status)", n)
		}
	}
	return local, remote, nil
}

// PlanMigration reads the server fresh (folder list, every target folder)
// and computes what migrate would do. A message counts as on the server
// only when its content is there (header fields find candidates; content
// fingerprints decide, read from the server where the bridge has not seen
// them yet). The same content in several in-scope folders mapped to one
// server folder is counted (and uploaded) once.
func (a *Account) PlanMigration(ctx context.Context, o MigrateOptions) (*Plan, error) {
	if a.pool == nil {
		return nil, ErrNoUpstream
	}
	if err := a.withBackoff(ctx, "folder list", func() error { return a.SyncFolders(ctx) }); err != nil {
		return nil, err
	}
	local, remote, err := a.legacyFolders(o.Folders)
	if err != nil {
		return nil, err
	}
	exists := map[string]uint32{}
	for _, r := range remote {
		exists[r.Name] = r.ID
	}
	plan := &Plan{}
	synced := map[string]bool{}
	type cand struct {
		date int64
		size int64
	}
	var uploads []cand
	planned := map[string]map[message.FP]bool{} // target → content already counted
	virtual := map[string]string{}
	for _, r := range remote {
		if strings.EqualFold(r.SpecialUse, `\All`) || strings.EqualFold(r.SpecialUse, `\Flagged`) {
			virtual[r.Name] = r.SpecialUse
		}
	}
	for _, f := range local {
		target, special := a.targetFor(f, remote, o.Mapping)
		if su, ok := virtual[target]; ok {
			// Gmail's All Mail (and Starred) are views of every label:
			// mail put there lands in no folder a phone shows.
			return nil, fmt.Errorf("%q would go to %q, the server's %s folder, which only shows mail filed elsewhere; map it to another folder in [migrate] folders (e.g. \"%s\" = \"INBOX\" or a new label)", f.Name, target, su, f.Name)
		}
		fp := FolderPlan{Source: f.Name, Target: target, folderID: f.ID, specialTarget: special}
		rid, ok := exists[target]
		fp.Create = !ok
		var msgs []*store.Message
		err := a.db.View(func(tx *store.Tx) error {
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if o.inScope(m) {
					msgs = append(msgs, m)
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			continue
		}
		onServer := map[int]bool{}
		if ok {
			if !synced[target] {
				if err := a.withBackoff(ctx, "sync", func() error { return a.SyncRemote(ctx, target) }); err != nil {
					return nil, upstreamErr("sync", target, err)
				}
				synced[target] = true
			}
			var found map[int]bool
			err := a.withBackoff(ctx, "fetch", func() (err error) {
				found, err = a.onServer(ctx, rid, target, msgs)
				return err
			})
			if err != nil {
				return nil, err
			}
			onServer = found
		}
		seen := planned[target]
		if seen == nil {
			seen = map[message.FP]bool{}
			planned[target] = seen
		}
		for i, m := range msgs {
			fp.InScope++
			fp.Bytes += m.Size
			if onServer[i] {
				fp.OnServer++
				continue
			}
			c := contentOf(m)
			if seen[c] {
				fp.Repeats++
				continue
			}
			seen[c] = true
			fp.ToUpload++
			fp.UploadBytes += m.Size
			uploads = append(uploads, cand{m.Date, m.Size})
		}
		plan.Folders = append(plan.Folders, fp)
		plan.Need += fp.UploadBytes
	}
	var used, limit int64
	var known bool
	err = a.withBackoff(ctx, "quota", func() (err error) {
		used, limit, known, err = a.Quota(ctx)
		return err
	})
	if err != nil {
		return nil, upstreamErr("GETQUOTAROOT", "INBOX", err)
	}
	plan.QuotaKnown, plan.QuotaUsed, plan.QuotaLimit = known, used, limit
	plan.Fits = !known || used+plan.Need <= limit
	if !plan.Fits {
		// The newest messages that fit: the "last N years" diet.
		sort.Slice(uploads, func(i, j int) bool { return uploads[i].date > uploads[j].date })
		free := limit - used
		var sum int64
		var since int64
		for _, c := range uploads {
			if sum+c.size > free {
				break
			}
			sum += c.size
			since = c.date
		}
		if since != 0 {
			d := time.Unix(since, 0).UTC().AddDate(0, 0, 1).Format("2006-01-02")
			plan.FitHint = fmt.Sprintf("-since %s (keeps older mail local)", d)
		}
	}
	return plan, nil
}

// contentOf is a legacy message's content fingerprint (its header
// fingerprint salted, for the rare record without one).
func contentOf(m *store.Message) message.FP {
	var fp message.FP
	if len(m.FP) == len(fp) {
		copy(fp[:], m.FP)
		return fp
	}
	copy(fp[:], m.HFP)
	fp[0] ^= 0xff
	return fp
}

// onServer reports, by index in msgs, which legacy messages' content is
// in the upstream folder (id, name) according to its fresh mirror.
func (a *Account) onServer(ctx context.Context, id uint32, name string, msgs []*store.Message) (map[int]bool, error) {
	f, err := a.db.Folder(name)
	if err != nil {
		return nil, err
	}
	b, err := a.box(f)
	if err != nil {
		return nil, err
	}
	items := make([]uploadItem, len(msgs))
	idx := make([]int, len(msgs))
	for i, m := range msgs {
		items[i].fp = contentOf(m)
		copy(items[i].hfp[:], m.HFP)
		idx[i] = i
	}
	found, err := a.findOnServer(ctx, b, items, idx, 0)
	if err != nil {
		return nil, upstreamErr("FETCH", name, err)
	}
	out := make(map[int]bool, len(found))
	for i, u := range found {
		if u != 0 {
			out[i] = true
		}
	}
	return out, nil
}

const (
	migrateBatch      = 512
	migrateBatchBytes = 32 << 20
	migrateRetries    = 6
)

// Migrate carries out a plan. It is resumable: a rerun plans again from the
// server's state, so what arrived is not uploaded twice.
func (a *Account) Migrate(ctx context.Context, plan *Plan, o MigrateOptions) (*MigrateResult, error) {
	if a.pool == nil {
		return nil, ErrNoUpstream
	}
	if plan.QuotaKnown && !plan.Fits {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: "OVERQUOTA", Text: quotaText(plan)}
	}
	start := time.Now()
	res := &MigrateResult{Complete: true}
	var total, done int
	var totalB, doneB int64
	for _, fp := range plan.Folders {
		total += fp.InScope
		totalB += fp.Bytes
	}
	for _, fp := range plan.Folders {
		fr := FolderResult{Source: fp.Source, Target: fp.Target, InScope: fp.InScope}
		err := a.migrateFolder(ctx, fp, o, &fr, func(n int, b, up int64, fdone int) {
			done += n
			doneB += b
			res.Bytes += up
			if o.Progress != nil {
				o.Progress(MigrateProgress{Folder: fp.Source, FolderDone: fdone, FolderTotal: fp.InScope, Done: done, Total: total, Bytes: doneB, TotalB: totalB, Elapsed: time.Since(start)})
			}
		})
		if err != nil {
			fr.Error = err.Error()
			res.Complete = false
			var capErr *dailyCapError
			if errors.As(err, &capErr) {
				res.Stopped = err.Error()
				res.Folders = append(res.Folders, fr)
				break
			}
			if overQuota(err) {
				// Every other folder would be refused the same way.
				res.Stopped = fmt.Sprintf("the server takes no more mail now: %s; what was uploaded is recorded; free space on the server, or run migrate again tomorrow if this is the provider's daily upload limit", errText(err))
				res.Folders = append(res.Folders, fr)
				break
			}
			if ctx.Err() != nil {
				res.Folders = append(res.Folders, fr)
				res.Elapsed = time.Since(start)
				return res, ctx.Err()
			}
		}
		if fr.Failed > 0 {
			res.Complete = false
		}
		res.Folders = append(res.Folders, fr)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func quotaText(plan *Plan) string {
	free := max(plan.QuotaLimit-plan.QuotaUsed, 0)
	t := fmt.Sprintf("the plan needs %s on the server but only %s of %s is free (%s missing); nothing was uploaded",
		kib(plan.Need), kib(free), kib(plan.QuotaLimit), kib(plan.Need-free))
	if plan.FitHint != "" {
		t += "; this would fit: " + plan.FitHint
	}
	return t
}

type dailyCapError struct{ limit int64 }

func (e *dailyCapError) Error() string {
	return fmt.Sprintf("the daily upload cap of %s ([migrate] daily_limit) is reached; run migrate again tomorrow to continue", kib(e.limit))
}

func dayKey(t time.Time) string { return "migrate/day/" + t.UTC().Format("2006-01-02") }

func (a *Account) uploadedToday() int64 {
	var n int64
	_ = a.db.View(func(tx *store.Tx) error {
		fmt.Sscan(string(tx.Get(dayKey(time.Now()))), &n)
		return nil
	})
	return n
}

func (a *Account) addUploadedToday(b int64) {
	_ = a.db.Update(func(tx *store.Tx) error {
		var n int64
		fmt.Sscan(string(tx.Get(dayKey(time.Now()))), &n)
		return tx.Set(dayKey(time.Now()), []byte(fmt.Sprint(n+b)))
	})
}

// retryable reports whether an upload error is worth retrying after a
// pause: provider throttling, a lost connection, a server that is
// temporarily unavailable.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case "THROTTLED", imap.ResponseCodeLimit, imap.ResponseCodeUnavailable, imap.ResponseCodeInUse:
			return true
		}
		text := strings.ToLower(ie.Text)
		// Exchange says "Server Unavailable. 15" and "Request is
		// throttled. Suggested Backoff Time: …", without a code.
		return strings.Contains(text, "try again") || strings.Contains(text, "throttl") || strings.Contains(text, "unavailable")
	}
	return true // network errors: the pool reconnects
}

// overQuota reports the server's [OVERQUOTA] (RFC 5530): a full mailbox,
// or a provider's daily upload limit (Gmail). Servers without the code
// say it in words: Courier "NO [ALERT] You exceeded your mail quota.",
// Cyrus "NO Over quota".
func overQuota(err error) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return false
	}
	text := strings.ToLower(ie.Text)
	return ie.Code == imap.ResponseCodeOverQuota ||
		ie.Type == imap.StatusResponseTypeNo && strings.Contains(text, "quota") && (strings.Contains(text, "exceed") || strings.Contains(text, "over"))
}

// withBackoff runs op (what names it in the log) until it succeeds, fails
// for good, or has failed migrateRetries times: provider throttling, a
// server that sheds load and a lost connection are waited out
// (upstream.Backoff) instead of ending the run. Throttling hits any
// command — the syncs and fetches around the uploads too, not only APPEND.
func (a *Account) withBackoff(ctx context.Context, what string, op func() error) error {
	var err error
	for attempt := 0; attempt < migrateRetries; attempt++ {
		if attempt > 0 {
			wait := upstream.Backoff(attempt)
			a.log.Info("server busy or connection lost, slowing down", "op", what, "wait", wait, "err", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err = op(); err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// transient reports an error withBackoff waits out: the server's answers
// retryable accepts, and a lost, refused or timed-out connection; not a
// refused login, a name clash or a local failure, which waiting does not
// mend.
func transient(err error) bool {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case upstream.KindDisconnected, upstream.KindTimeout, upstream.KindConnect:
			return true
		case upstream.KindProtocol: // a BYE or refusal: its words decide
			var ie *imap.Error
			return errors.As(err, &ie) && retryable(err)
		}
		return false
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return retryable(err)
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func (a *Account) migrateFolder(ctx context.Context, fp FolderPlan, o MigrateOptions, fr *FolderResult, progress func(n int, b, uploaded int64, folderDone int)) error {
	if fp.Create {
		err := a.withBackoff(ctx, "create", func() error {
			return a.remoteFolderOp("CREATE", fp.Target, func(c *imapclient.Client) error {
				err := a.createOnServer(c, fp.Target, nil)
				var ie *imap.Error
				if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
					return nil
				}
				return err
			})
		})
		if err != nil {
			return err
		}
	}
	tf, err := a.db.Folder(fp.Target)
	if err != nil {
		return fmt.Errorf("target %q: %w", fp.Target, err)
	}
	tb, err := a.box(tf)
	if err != nil {
		return err
	}
	src, err := a.db.Folder(fp.Source)
	if err != nil {
		return err
	}
	sb, err := a.box(src)
	if err != nil {
		return err
	}
	// The messages in scope, in UID order.
	var msgs []*store.Message
	err = a.db.View(func(tx *store.Tx) error {
		return tx.ForEachMessage(src.ID, func(m *store.Message) error {
			if o.inScope(m) {
				msgs = append(msgs, m)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	fail := func(m *store.Message, reason string) {
		fr.Failed++
		fr.Failures = append(fr.Failures, a.failure(src.ID, m, reason))
	}
	folderDone := 0
	for start := 0; start < len(msgs); {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := start
		var size int64
		for end < len(msgs) && end-start < migrateBatch && (end == start || size+msgs[end].Size <= migrateBatchBytes) {
			size += msgs[end].Size
			end++
		}
		batch := msgs[start:end]
		start = end
		if o.DailyLimit > 0 && a.uploadedToday()+size > o.DailyLimit {
			return &dailyCapError{o.DailyLimit}
		}
		// Already on the server (content proven against the mirror, which
		// the plan synced and every upload since keeps current): nothing
		// to read or send.
		var there map[int]bool
		err = a.withBackoff(ctx, "fetch", func() (err error) {
			there, err = a.onServer(ctx, tf.ID, fp.Target, batch)
			return err
		})
		if err != nil {
			return err
		}
		var already []*store.Message
		var toSend []*store.Message
		for i, m := range batch {
			if there[i] {
				already = append(already, m)
			} else {
				toSend = append(toSend, m)
			}
		}
		fr.Already += len(already)
		items := make([]uploadItem, 0, len(toSend))
		var srcs []*store.Message
		for _, m := range toSend {
			body, err := a.readServed(src, m)
			if err != nil {
				fail(m, "unreadable in the archive: "+err.Error())
				a.log.Warn("migrate: message unreadable, left local", "mailbox", src.Name, "uid", m.UID, "err", err)
				continue
			}
			flags := make([]imap.Flag, 0, len(m.Flags))
			for _, f := range toFlags(m.Flags) {
				if f != imap.FlagDeleted && f != flagRecent {
					flags = append(flags, f)
				}
			}
			it := uploadItem{body: body, flags: flags, date: m.InternalDate(), fp: contentOf(m)}
			copy(it.hfp[:], m.HFP)
			items = append(items, it)
			srcs = append(srcs, m)
		}
		out := make([]imap.UID, len(items))
		pending := make([]int, len(items))
		for i := range pending {
			pending[i] = i
		}
		lastErr := make([]error, len(items))
		var uploadedBytes int64
		var retryErr, stop error
		for attempt := 0; len(pending) > 0 && attempt < migrateRetries; attempt++ {
			if attempt > 0 {
				wait := upstream.Backoff(attempt)
				a.log.Info("migrate: server busy or connection lost, slowing down", "mailbox", fp.Target, "wait", wait, "err", retryErr)
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
				if err := a.syncRemote(ctx, fp.Target, false); err != nil {
					retryErr = err
					continue
				}
			}
			sub := make([]uploadItem, len(pending))
			for j, i := range pending {
				sub[j] = items[i]
			}
			got, errs, err := a.uploadItems(ctx, tb, sub, uploadDedup, false)
			// A full mailbox or a provider's daily limit ([OVERQUOTA]):
			// what arrived is recorded below, the rest stays local and
			// the run stops (Migrate says why).
			full := overQuota(err)
			for _, e := range errs {
				if overQuota(e) {
					full, err = true, e
				}
			}
			var next []int
			for j, i := range pending {
				if got != nil && got[j] != 0 {
					out[i] = got[j]
					uploadedBytes += int64(len(items[i].body))
					continue
				}
				if full {
					continue
				}
				e := err
				if errs != nil && errs[j] != nil {
					e = errs[j]
				}
				if e == nil {
					e = errors.New("the server did not confirm the message")
				}
				lastErr[i] = e
				if retryable(e) {
					next = append(next, i)
					retryErr = e
				} else {
					fail(srcs[i], "refused by the server: "+errText(e))
					a.log.Warn("migrate: the server refused a message; it stays local", "mailbox", src.Name, "uid", srcs[i].UID, "err", e)
				}
			}
			pending = next
			if full {
				stop = err
				break
			}
		}
		for _, i := range pending {
			fail(srcs[i], fmt.Sprintf("not confirmed after %d tries: %s", migrateRetries, errText(lastErr[i])))
		}
		// Record what is on the server, then (for -move) hide it locally.
		var moved []imap.UID
		uv := tf.UIDValidity
		if f, err := a.db.Folder(fp.Target); err == nil {
			uv = f.UIDValidity
		}
		alreadyUIDs := map[uint32]imap.UID{}
		if len(already) > 0 {
			items := make([]uploadItem, len(already))
			idx := make([]int, len(already))
			for i, m := range already {
				items[i].fp = contentOf(m)
				idx[i] = i
			}
			found, _ := a.findOnServer(ctx, tb, items, idx, 0)
			for i, m := range already {
				alreadyUIDs[m.UID] = found[i]
			}
		}
		err = a.db.Update(func(tx *store.Tx) error {
			for i, uid := range out {
				if uid == 0 {
					continue
				}
				if err := tx.PutUpload(src.ID, srcs[i].UID, store.Upload{Folder: fp.Target, UIDValidity: uv, UID: uint32(uid), At: time.Now().Unix()}); err != nil {
					return err
				}
				moved = append(moved, imap.UID(srcs[i].UID))
			}
			fr.Uploaded += len(moved)
			for _, m := range already {
				if err := tx.PutUpload(src.ID, m.UID, store.Upload{Folder: fp.Target, UIDValidity: uv, UID: uint32(alreadyUIDs[m.UID]), At: time.Now().Unix()}); err != nil {
					return err
				}
				moved = append(moved, imap.UID(m.UID))
			}
			return nil
		})
		if err != nil {
			return err
		}
		a.counts.noteUploads(src.ID)
		if o.Move && len(moved) > 0 {
			if err := a.hide(sb, moved); err != nil {
				return err
			}
			fr.Hidden += len(moved)
		}
		a.addUploadedToday(uploadedBytes)
		folderDone += len(batch)
		progress(len(batch), size, uploadedBytes, folderDone)
		if stop != nil {
			return stop
		}
		if len(pending) > 0 && retryErr != nil {
			return fmt.Errorf("%d messages could not be uploaded after %d tries: %w", len(pending), migrateRetries, retryErr)
		}
	}
	// In-flight APPENDs of an interrupted earlier run have landed by now.
	if err := a.withBackoff(ctx, "duplicate check", func() error { return a.repairDuplicates(ctx, fp.Target) }); err != nil {
		return fmt.Errorf("removing duplicates in %q: %w", fp.Target, err)
	}
	return nil
}

// errText is an error's text without the upstream wrapper's prefix.
func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		if ie.Code != "" {
			return fmt.Sprintf("[%s] %s", ie.Code, ie.Text)
		}
		return ie.Text
	}
	return err.Error()
}

// failure describes legacy message m of folder id for a report.
func (a *Account) failure(id uint32, m *store.Message, reason string) MessageFailure {
	f := MessageFailure{UID: m.UID, Date: m.InternalDate(), MessageID: m.MsgID, Reason: reason}
	_ = a.db.View(func(tx *store.Tx) error {
		f.From, f.Subject = describeEnvelope(tx.Envelope(id, m.UID))
		return nil
	})
	return f
}

// describeEnvelope returns "Name <addr>" of the first From and the
// subject of an encoded envelope.
func describeEnvelope(enc []byte) (from, subject string) {
	env, err := message.DecodeEnvelope(enc)
	if err != nil || env == nil {
		return "", ""
	}
	if len(env.From) > 0 {
		from = env.From[0].Addr()
		if env.From[0].Name != "" {
			from = env.From[0].Name + " <" + from + ">"
		}
	}
	return from, env.Subject
}

// VerifyFolder is one line of verify's table.
type VerifyFolder struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	InScope int    `json:"in_scope"`
	Present int    `json:"present"`
	Missing int    `json:"missing"`
	Differ  int    `json:"differ"` // a message with its header fields is there, but not its content
}

// MissingMessage names a legacy message whose content is not on the server.
type MissingMessage struct {
	Folder    string    `json:"folder"`
	Target    string    `json:"target"`
	UID       uint32    `json:"uid"`
	Date      time.Time `json:"date"`
	From      string    `json:"from"`
	Subject   string    `json:"subject"`
	MessageID string    `json:"message_id"`
	// Problem is "missing" (nothing with its header fields is there) or
	// "differs" (messages with its header fields are there, none with its
	// content); Detail says what differs.
	Problem string `json:"problem"`
	Detail  string `json:"detail,omitempty"`
}

// VerifyReport is verify's result.
type VerifyReport struct {
	Folders []VerifyFolder   `json:"folders"`
	Missing []MissingMessage `json:"missing"`
	OK      bool             `json:"ok"`
	Content bool             `json:"content"` // full bytes were compared
}

// VerifyProgress is reported while verify reads the server.
type VerifyProgress struct {
	Folder string `json:"folder"`
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Bytes  int64  `json:"bytes"`
}

// serverMsg is what verify reads of one server message.
type serverMsg struct {
	uid  imap.UID
	size int64
	fp   message.FP // content, when known (read, or from the mirror)
	has  bool       // fp is known
}

// Verify proves that every distinct in-scope legacy message is in its
// target folder, from the server's own answers read fresh (not the
// mirror): the header fields find the candidates; a candidate matches when
// its content fingerprint is the message's (known where the bridge
// uploaded or read it; with o.Content, read for every candidate), else
// when its RFC822.SIZE is the message's. One server message stands for one
// content only, so two different archive messages never hide behind one
// copy.
func (a *Account) Verify(ctx context.Context, o MigrateOptions) (*VerifyReport, error) {
	if a.pool == nil {
		return nil, ErrNoUpstream
	}
	if err := a.withBackoff(ctx, "folder list", func() error { return a.SyncFolders(ctx) }); err != nil {
		return nil, err
	}
	local, remote, err := a.legacyFolders(o.Folders)
	if err != nil {
		return nil, err
	}
	type legacy struct {
		f   store.Folder
		m   *store.Message
		hfp message.FP
		fp  message.FP
	}
	byTarget := map[string][]legacy{}
	var order []string
	for _, f := range local {
		target, _ := a.targetFor(f, remote, o.Mapping)
		err := a.db.View(func(tx *store.Tx) error {
			ups, _ := tx.Uploads(f.ID)
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if !o.inScope(m) && !(m.Hidden && o.inScope(&store.Message{Date: m.Date})) {
					return nil
				}
				// Hidden messages were moved away: they count only when
				// the bridge recorded their upload.
				if m.Hidden && len(ups[m.UID]) == 0 {
					return nil
				}
				l := legacy{f: f, m: m, fp: contentOf(m)}
				copy(l.hfp[:], m.HFP)
				if _, ok := byTarget[target]; !ok {
					order = append(order, target)
				}
				byTarget[target] = append(byTarget[target], l)
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	rep := &VerifyReport{OK: true, Content: o.Content}
	lines := map[string]*VerifyFolder{}
	var lineOrder []string
	for _, target := range order {
		ls := byTarget[target]
		want := map[message.FP]bool{}
		for _, l := range ls {
			want[l.hfp] = true
		}
		var server map[message.FP][]serverMsg
		err := a.withBackoff(ctx, "verify", func() (err error) {
			server, err = a.readServer(ctx, target, want, o)
			return err
		})
		if err != nil {
			return nil, err
		}
		// Content known for a server message settles it; else its size.
		claimed := map[imap.UID]message.FP{}
		matched := map[message.FP]bool{}
		match := func(l legacy, bySize bool) bool {
			if matched[l.fp] {
				return true
			}
			for _, c := range server[l.hfp] {
				if fp, ok := claimed[c.uid]; ok && fp != l.fp {
					continue
				}
				if (!bySize && c.has && c.fp == l.fp) || (bySize && !c.has && c.size == l.m.Size) {
					claimed[c.uid] = l.fp
					matched[l.fp] = true
					return true
				}
			}
			return false
		}
		for _, l := range ls {
			match(l, false)
		}
		if !o.Content { // with -content only the bytes prove anything
			for _, l := range ls {
				match(l, true)
			}
		}
		for _, l := range ls {
			vf := lines[l.f.Name]
			if vf == nil {
				vf = &VerifyFolder{Source: l.f.Name, Target: target}
				lines[l.f.Name] = vf
				lineOrder = append(lineOrder, l.f.Name)
			}
			vf.InScope++
			if matched[l.fp] {
				vf.Present++
				continue
			}
			mm := MissingMessage{Folder: l.f.Name, Target: target, UID: l.m.UID, Date: l.m.InternalDate(), MessageID: l.m.MsgID, Problem: "missing"}
			if cs := server[l.hfp]; len(cs) > 0 {
				mm.Problem = "differs"
				vf.Differ++
				var sizes []string
				for _, c := range cs {
					sizes = append(sizes, fmt.Sprintf("UID %d: %d bytes", c.uid, c.size))
				}
				what := "size"
				if o.Content {
					what = "content"
				}
				mm.Detail = fmt.Sprintf("the archive's copy is %d bytes; the server has %d message(s) with the same Message-ID, date, sender and subject but a different %s (%s)", l.m.Size, len(cs), what, strings.Join(sizes, ", "))
			} else {
				vf.Missing++
			}
			_ = a.db.View(func(tx *store.Tx) error {
				mm.From, mm.Subject = describeEnvelope(tx.Envelope(l.f.ID, l.m.UID))
				return nil
			})
			rep.Missing = append(rep.Missing, mm)
			rep.OK = false
		}
	}
	for _, n := range lineOrder {
		rep.Folders = append(rep.Folders, *lines[n])
	}
	return rep, nil
}

// readServer reads folder's messages fresh from the server: UID, size and
// header fingerprint of each; for those whose header fingerprint is in
// want, the content fingerprint — from the mirror when the bridge knows
// it for that UID and size, or, with o.Content, from the full bytes,
// streamed through a hasher one message at a time. An absent folder has
// no messages.
func (a *Account) readServer(ctx context.Context, folder string, want map[message.FP]bool, o MigrateOptions) (map[message.FP][]serverMsg, error) {
	out := map[message.FP][]serverMsg{}
	var cands []imap.UID
	var total int
	var uidValidity uint32
	err := a.pool.Do(ctx, func(c *imapclient.Client) error {
		sd, err := c.Select(a.srv(folder), &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return nil // no such folder: nothing there
			}
			return err
		}
		uidValidity = sd.UIDValidity
		if sd.NumMessages == 0 {
			return nil
		}
		// By UID, so that a message whose answer was an unsolicited FETCH
		// (a flag change by another client; see answered) can be asked
		// for again.
		items := &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{headerFPSection}}
		var again []imap.UID
		take := func(buf *imapclient.FetchMessageBuffer) {
			total++
			hfp := message.HeaderFP(buf.FindBodySection(headerFPSection))
			if !want[hfp] {
				return
			}
			out[hfp] = append(out[hfp], serverMsg{uid: buf.UID, size: buf.RFC822Size})
			cands = append(cands, buf.UID)
		}
		cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, items)
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
			switch {
			case buf.UID == 0:
			case len(buf.BodySection) == 0:
				again = append(again, buf.UID)
			default:
				take(buf)
			}
		}
		if err := cmd.Close(); err != nil || len(again) == 0 {
			return err
		}
		got, err := fetchAgain(c, again, items)
		if err != nil {
			return err
		}
		for _, buf := range got {
			if len(buf.BodySection) == 0 {
				// Counted, but matches nothing: its archive copy, if any,
				// is reported missing rather than taken as there.
				a.log.Warn("the server answered FETCH twice without the header fields", "mailbox", folder, "uid", buf.UID)
			}
			take(buf)
		}
		return nil
	})
	if err != nil {
		return nil, upstreamErr("FETCH", folder, err)
	}
	if o.VerifyProgress != nil {
		o.VerifyProgress(VerifyProgress{Folder: folder, Total: total, Done: total})
	}
	// What the bridge already knows of these UIDs (same UIDVALIDITY, same size).
	known := map[imap.UID]message.FP{}
	if f, err := a.db.Folder(folder); err == nil && f.Remote && f.UIDValidity == uidValidity && !o.Content {
		_ = a.db.View(func(tx *store.Tx) error {
			for _, cs := range out {
				for _, c := range cs {
					if m, err := tx.Message(f.ID, uint32(c.uid)); err == nil && len(m.FP) == 16 && m.Size == c.size {
						var fp message.FP
						copy(fp[:], m.FP)
						known[c.uid] = fp
					}
				}
			}
			return nil
		})
	}
	if o.Content && len(cands) > 0 {
		read, err := a.hashServerBodies(ctx, folder, cands, o)
		if err != nil {
			return nil, upstreamErr("FETCH", folder, err)
		}
		known = read
		// Remember what was read, so the everyday checks (drags, plans,
		// the default verify) know these messages' content from now on.
		if err := a.syncRemote(ctx, folder, false); err == nil {
			if f, err := a.db.Folder(folder); err == nil && f.Remote && f.UIDValidity == uidValidity {
				if b, err := a.box(f); err == nil {
					a.learnFPs(b, read, false)
				}
			}
		}
	}
	for h, cs := range out {
		for i := range cs {
			if fp, ok := known[cs[i].uid]; ok {
				cs[i].fp, cs[i].has = fp, true
			}
		}
		out[h] = cs
	}
	return out, nil
}

// hashServerBodies streams BODY.PEEK[] of uids through content hashers,
// holding at most one network buffer per message, with progress.
func (a *Account) hashServerBodies(ctx context.Context, folder string, uids []imap.UID, o MigrateOptions) (map[imap.UID]message.FP, error) {
	var out map[imap.UID]message.FP
	var bytesRead int64
	done := 0
	hash := func(lit io.Reader) (message.FP, error) {
		h := message.NewContentHasher()
		n, err := io.Copy(h, lit)
		bytesRead += n
		return h.Sum(), err
	}
	progress := func() {
		done++
		if o.VerifyProgress != nil && done%64 == 0 {
			o.VerifyProgress(VerifyProgress{Folder: folder, Done: done, Total: len(uids), Bytes: bytesRead})
		}
	}
	err := a.pool.DoSelected(ctx, a.srv(folder), true, true, func(c *imapclient.Client) error {
		var err error
		out, err = fetchEach(c, uids, hash, progress)
		return err
	})
	if o.VerifyProgress != nil {
		o.VerifyProgress(VerifyProgress{Folder: folder, Done: done, Total: len(uids), Bytes: bytesRead})
	}
	if err == nil && len(out) < len(uids) {
		// imapclient can return fewer messages than asked: say so rather
		// than call the missing ones absent.
		for _, u := range uids {
			if _, ok := out[u]; !ok {
				a.log.Warn("verify: the server did not return a message's bytes; it is counted as not proven", "mailbox", folder, "uid", u)
			}
		}
	}
	return out, err
}
