package backend

// Cutover: migrate moves the legacy archive to the server in bulk through
// the same upload path as a drag (uploadItems: fingerprint dedup against a
// fresh mirror, parallel pipelined APPENDs, quota check), and verify proves
// from the server's own header fields, read fresh, that every in-scope
// legacy message arrived.

import (
	"context"
	"errors"
	"fmt"
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
}

// FolderPlan is one line of the plan.
type FolderPlan struct {
	Source        string `json:"source"`
	Target        string `json:"target"`
	Create        bool   `json:"create,omitempty"` // target does not exist yet
	InScope       int    `json:"in_scope"`
	Bytes         int64  `json:"bytes"`
	OnServer      int    `json:"on_server"`
	ToUpload      int    `json:"to_upload"`
	UploadBytes   int64  `json:"upload_bytes"`
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
// and computes what migrate would do.
func (a *Account) PlanMigration(ctx context.Context, o MigrateOptions) (*Plan, error) {
	if a.pool == nil {
		return nil, ErrNoUpstream
	}
	if err := a.SyncFolders(ctx); err != nil {
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
	for _, f := range local {
		target, special := a.targetFor(f, remote, o.Mapping)
		fp := FolderPlan{Source: f.Name, Target: target, folderID: f.ID, specialTarget: special}
		rid, ok := exists[target]
		fp.Create = !ok
		if ok && !synced[target] {
			if err := a.SyncRemote(ctx, target); err != nil {
				return nil, upstreamErr("sync", target, err)
			}
			synced[target] = true
		}
		err := a.db.View(func(tx *store.Tx) error {
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if !o.inScope(m) {
					return nil
				}
				fp.InScope++
				fp.Bytes += m.Size
				if ok {
					if u, _ := tx.FindHFP(rid, m.HFP); len(u) > 0 {
						fp.OnServer++
						return nil
					}
				}
				fp.ToUpload++
				fp.UploadBytes += m.Size
				uploads = append(uploads, cand{m.Date, m.Size})
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		if fp.InScope == 0 {
			continue
		}
		plan.Folders = append(plan.Folders, fp)
		plan.Need += fp.UploadBytes
	}
	used, limit, known, err := a.Quota(ctx)
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
		return strings.Contains(strings.ToLower(ie.Text), "try again") || strings.Contains(strings.ToLower(ie.Text), "throttl")
	}
	return true // network errors: the pool reconnects
}

func (a *Account) migrateFolder(ctx context.Context, fp FolderPlan, o MigrateOptions, fr *FolderResult, progress func(n int, b, uploaded int64, folderDone int)) error {
	if fp.Create {
		if err := a.remoteFolderOp("CREATE", fp.Target, func(c *imapclient.Client) error {
			err := c.Create(fp.Target, nil).Wait()
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
				return nil
			}
			return err
		}); err != nil {
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
		// Already on the server (mirror just synced): nothing to read or send.
		var toSend []*store.Message
		var already []*store.Message
		var alreadyUIDs []imap.UID
		_ = a.db.View(func(tx *store.Tx) error {
			for _, m := range batch {
				if u, _ := tx.FindHFP(tf.ID, m.HFP); len(u) > 0 {
					already = append(already, m)
					alreadyUIDs = append(alreadyUIDs, imap.UID(u[0]))
					continue
				}
				toSend = append(toSend, m)
			}
			return nil
		})
		fr.Already += len(already)
		items := make([]uploadItem, 0, len(toSend))
		var srcs []*store.Message
		for _, m := range toSend {
			body, err := a.readServed(src, m)
			if err != nil {
				fr.Failed++
				a.log.Warn("migrate: message unreadable, left local", "mailbox", src.Name, "uid", m.UID, "err", err)
				continue
			}
			var hfp message.FP
			copy(hfp[:], m.HFP)
			flags := make([]imap.Flag, 0, len(m.Flags))
			for _, f := range toFlags(m.Flags) {
				if f != imap.FlagDeleted && f != flagRecent {
					flags = append(flags, f)
				}
			}
			items = append(items, uploadItem{body: body, flags: flags, date: m.InternalDate(), hfp: hfp})
			srcs = append(srcs, m)
		}
		out := make([]imap.UID, len(items))
		pending := make([]int, len(items))
		for i := range pending {
			pending[i] = i
		}
		var lastErr error
		var uploadedBytes int64
		for attempt := 0; len(pending) > 0 && attempt < migrateRetries; attempt++ {
			if attempt > 0 {
				wait := upstream.Backoff(attempt)
				a.log.Info("migrate: server busy or connection lost, slowing down", "mailbox", fp.Target, "wait", wait, "err", lastErr)
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if err := a.syncRemote(ctx, fp.Target, false); err != nil {
				lastErr = err
				continue
			}
			sub := make([]uploadItem, len(pending))
			for j, i := range pending {
				sub[j] = items[i]
			}
			got, errs, err := a.uploadItems(ctx, tb, sub, false)
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == "OVERQUOTA" {
				return err
			}
			var next []int
			for j, i := range pending {
				if got != nil && got[j] != 0 {
					out[i] = got[j]
					uploadedBytes += int64(len(items[i].body))
					continue
				}
				e := err
				if errs != nil && errs[j] != nil {
					e = errs[j]
				}
				if retryable(e) {
					next = append(next, i)
					lastErr = e
				} else {
					fr.Failed++
					a.log.Warn("migrate: the server refused a message; it stays local", "mailbox", src.Name, "uid", srcs[i].UID, "err", e)
				}
			}
			pending = next
		}
		fr.Failed += len(pending)
		// Record what is on the server, then (for -move) hide it locally.
		var moved []imap.UID
		uv := tf.UIDValidity
		if f, err := a.db.Folder(fp.Target); err == nil {
			uv = f.UIDValidity
		}
		err := a.db.Update(func(tx *store.Tx) error {
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
			for i, m := range already {
				if err := tx.PutUpload(src.ID, m.UID, store.Upload{Folder: fp.Target, UIDValidity: uv, UID: uint32(alreadyUIDs[i]), At: time.Now().Unix()}); err != nil {
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
		if len(pending) > 0 && lastErr != nil {
			return fmt.Errorf("%d messages could not be uploaded after %d tries: %w", len(pending), migrateRetries, lastErr)
		}
	}
	// In-flight APPENDs of an interrupted earlier run have landed by now.
	if err := a.repairDuplicates(ctx, fp.Target); err != nil {
		return fmt.Errorf("removing duplicates in %q: %w", fp.Target, err)
	}
	return nil
}

// VerifyFolder is one line of verify's table.
type VerifyFolder struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	InScope int    `json:"in_scope"`
	Present int    `json:"present"`
	Missing int    `json:"missing"`
}

// MissingMessage names a legacy message that is not on the server.
type MissingMessage struct {
	Folder    string    `json:"folder"`
	Target    string    `json:"target"`
	UID       uint32    `json:"uid"`
	Date      time.Time `json:"date"`
	From      string    `json:"from"`
	Subject   string    `json:"subject"`
	MessageID string    `json:"message_id"`
}

// VerifyReport is verify's result.
type VerifyReport struct {
	Folders []VerifyFolder   `json:"folders"`
	Missing []MissingMessage `json:"missing"`
	OK      bool             `json:"ok"`
}

// Verify proves every in-scope legacy message is in its target folder,
// from header fingerprints read fresh from the server (not the mirror).
func (a *Account) Verify(ctx context.Context, o MigrateOptions) (*VerifyReport, error) {
	if a.pool == nil {
		return nil, ErrNoUpstream
	}
	if err := a.SyncFolders(ctx); err != nil {
		return nil, err
	}
	local, remote, err := a.legacyFolders(o.Folders)
	if err != nil {
		return nil, err
	}
	serverFPs := map[string]map[message.FP]bool{}
	rep := &VerifyReport{OK: true}
	for _, f := range local {
		target, _ := a.targetFor(f, remote, o.Mapping)
		set, ok := serverFPs[target]
		if !ok {
			set, err = a.readServerFPs(ctx, target)
			if err != nil {
				return nil, err
			}
			serverFPs[target] = set
		}
		vf := VerifyFolder{Source: f.Name, Target: target}
		err := a.db.View(func(tx *store.Tx) error {
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if !o.inScope(m) && !(m.Hidden && o.inScope(&store.Message{Date: m.Date})) {
					return nil
				}
				// Hidden messages were moved away: they must be upstream too.
				vf.InScope++
				var fp message.FP
				copy(fp[:], m.HFP)
				if set[fp] {
					vf.Present++
					return nil
				}
				if m.Hidden {
					// moved to another local folder or elsewhere: only count
					// it when an upload was recorded for it.
					ups, _ := tx.Uploads(f.ID)
					if len(ups[m.UID]) == 0 {
						vf.InScope--
						return nil
					}
				}
				vf.Missing++
				mm := MissingMessage{Folder: f.Name, Target: target, UID: m.UID, Date: m.InternalDate(), MessageID: m.MsgID}
				if env, err := message.DecodeEnvelope(tx.Envelope(f.ID, m.UID)); err == nil && env != nil {
					mm.Subject = env.Subject
					if len(env.From) > 0 {
						mm.From = env.From[0].Addr()
						if env.From[0].Name != "" {
							mm.From = env.From[0].Name + " <" + mm.From + ">"
						}
					}
				}
				rep.Missing = append(rep.Missing, mm)
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		if vf.InScope == 0 {
			continue
		}
		if vf.Missing > 0 {
			rep.OK = false
		}
		rep.Folders = append(rep.Folders, vf)
	}
	return rep, nil
}

// readServerFPs fetches the header fields of every message of folder and
// returns their fingerprints (an absent folder has none).
func (a *Account) readServerFPs(ctx context.Context, folder string) (map[message.FP]bool, error) {
	set := map[message.FP]bool{}
	err := a.pool.Do(ctx, func(c *imapclient.Client) error {
		sd, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return nil // no such folder: nothing there
			}
			return err
		}
		if sd.NumMessages == 0 {
			return nil
		}
		cmd := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{headerFPSection}})
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
			set[message.HeaderFP(buf.FindBodySection(headerFPSection))] = true
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, upstreamErr("FETCH", folder, err)
	}
	return set, nil
}
