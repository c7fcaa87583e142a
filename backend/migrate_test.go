package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/internal/imapemu"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/store"
)

func mustMigrate(t *testing.T, a *Account, o MigrateOptions) (*Plan, *MigrateResult) {
	t.Helper()
	ctx := context.Background()
	plan, err := a.PlanMigration(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Migrate(ctx, plan, o)
	if err != nil {
		t.Fatal(err)
	}
	return plan, res
}

func uploaded(r *MigrateResult) int {
	n := 0
	for _, f := range r.Folders {
		n += f.Uploaded
	}
	return n
}

// TestMigrateFixtures migrates every fixture format into Dovecot and checks
// each message on the server against the archive: bytes, flags,
// INTERNALDATE, and that Sent went into the server's \Sent folder.
func TestMigrateFixtures(t *testing.T) {
	_, sources := fixtureSources(t)
	re := newRemoteEnv(t, nil, sources...)
	a := re.acct
	_, res := mustMigrate(t, a, MigrateOptions{})
	if !res.Complete {
		t.Fatalf("migrate incomplete: %+v", res)
	}
	rep, err := a.Verify(context.Background(), MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Missing) != 0 {
		t.Fatalf("verify after migrate: %+v", rep)
	}
	// Compare every legacy message with what the server holds.
	folders, _ := a.db.Folders()
	remotes := map[string]store.Folder{}
	for _, f := range folders {
		if f.Remote {
			remotes[f.Name] = f
		}
	}
	var all []store.Folder
	for _, f := range folders {
		if f.Remote {
			all = append(all, f)
		}
	}
	serverMsgs := map[string][]testenv.Msg{}
	checked, sent := 0, 0
	for _, f := range folders {
		if f.Remote || f.NoSelect || !a.isLocal(f.Name) {
			continue
		}
		visible := 0
		_ = a.db.View(func(tx *store.Tx) error {
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if !m.Hidden {
					visible++
				}
				return nil
			})
		})
		if visible == 0 {
			continue
		}
		target, _ := a.targetFor(f, all, nil)
		if _, ok := serverMsgs[target]; !ok {
			serverMsgs[target] = re.dc.Messages(t, re.user, target)
		}
		byFP := map[message.FP]testenv.Msg{}
		for _, m := range serverMsgs[target] {
			hdr, _ := message.SplitHeader(m.Body)
			byFP[message.HeaderFP(hdr)] = m
		}
		err := a.db.View(func(tx *store.Tx) error {
			return tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if m.Hidden {
					return nil
				}
				var fp message.FP
				copy(fp[:], m.HFP)
				srv, ok := byFP[fp]
				if !ok {
					t.Errorf("%s UID %d is not in %s on the server", f.Name, m.UID, target)
					return nil
				}
				body, err := a.readServed(&f, m)
				if err != nil {
					return err
				}
				if !bytes.Equal(body, srv.Body) {
					t.Errorf("%s UID %d: server bytes differ", f.Name, m.UID)
				}
				// \Deleted is not uploaded: the next EXPUNGE on the server
				// would destroy the only other copy.
				var want []string
				for _, fl := range fromFlags(toFlags(m.Flags)) {
					if fl != string(imap.FlagDeleted) {
						want = append(want, fl)
					}
				}
				got := flagStrings(srv.Flags)
				sort.Strings(want)
				if len(want) == 0 {
					want = []string{}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s UID %d: server flags %v, archive %v", f.Name, m.UID, got, want)
				}
				wantDate := message.ClampDate(m.InternalDate())
				if !srv.InternalDate.Equal(wantDate) {
					t.Errorf("%s UID %d: server INTERNALDATE %v, archive %v", f.Name, m.UID, srv.InternalDate, wantDate)
				}
				if f.SpecialUse == `\Sent` {
					if remotes[target].SpecialUse != `\Sent` {
						t.Errorf("%s went to %q, not the server's \\Sent folder", f.Name, target)
					}
					sent++
				}
				checked++
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 20 || sent == 0 {
		t.Errorf("checked %d messages (%d from Sent folders)", checked, sent)
	}
	// Rerun: nothing to upload.
	plan, res2 := mustMigrate(t, a, MigrateOptions{})
	if n := uploaded(res2); n != 0 {
		t.Errorf("second migrate uploaded %d messages", n)
	}
	for _, f := range plan.Folders {
		if f.ToUpload != 0 {
			t.Errorf("second plan wants to upload %d from %s", f.ToUpload, f.Source)
		}
	}
	// Count per server folder equals unique fingerprints (no duplicates).
	for name := range serverMsgs {
		msgs := re.dc.Messages(t, re.user, name)
		fps := map[message.FP]bool{}
		for _, m := range msgs {
			hdr, _ := message.SplitHeader(m.Body)
			fps[message.HeaderFP(hdr)] = true
		}
		if len(fps) != len(msgs) {
			t.Errorf("%s on the server: %d messages, %d unique", name, len(msgs), len(fps))
		}
	}
}

// TestVerifyFindsDeleted: a message deleted on the server makes verify fail
// and name it; migrate restores it.
func TestVerifyFindsDeleted(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2, 3))
	re := newRemoteEnv(t, nil, src)
	a := re.acct
	mustMigrate(t, a, MigrateOptions{})
	c := re.dovecotClient()
	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	d, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "message 2"}}}, nil).Wait()
	if err != nil || len(d.AllUIDs()) != 1 {
		t.Fatalf("finding message 2 on the server: %v %v", err, d)
	}
	if err := c.Store(imap.UIDSetNum(d.AllUIDs()...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(context.Background(), MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Missing) != 1 || rep.Missing[0].Subject != "message 2" || rep.Missing[0].MessageID != "m2@example.com" {
		t.Fatalf("verify: %+v", rep)
	}
	_, res := mustMigrate(t, a, MigrateOptions{})
	if n := uploaded(res); n != 1 {
		t.Errorf("migrate restored %d messages, want 1", n)
	}
	rep, err = a.Verify(context.Background(), MigrateOptions{})
	if err != nil || !rep.OK {
		t.Errorf("verify after restoring: %v %+v", err, rep)
	}
}

// TestMigrateSinceAndMove: -since uploads only recent mail; -move hides
// what is on the server and nothing else; verify with the filter passes.
func TestMigrateSinceAndMove(t *testing.T) {
	old := strings.Replace(mboxMsg(1, ""), "2006", "1999", 2)
	content := old + mboxMsg(2, "") + mboxMsg(3, "")
	src, _ := mboxSource(t, content)
	re := newRemoteEnv(t, nil, src)
	a := re.acct
	since := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	_, res := mustMigrate(t, a, MigrateOptions{Since: since, Move: true})
	if n := uploaded(res); n != 2 || res.Folders[0].Hidden != 2 {
		t.Errorf("uploaded %d, hidden %d; want 2 and 2", n, res.Folders[0].Hidden)
	}
	if n := len(re.dc.Messages(t, re.user, "Archive")); n != 2 {
		t.Errorf("server has %d messages, want the 2 in range", n)
	}
	rep, err := a.Verify(context.Background(), MigrateOptions{Since: since})
	if err != nil || !rep.OK {
		t.Errorf("verify -since: %v %+v", err, rep)
	}
	rep, err = a.Verify(context.Background(), MigrateOptions{})
	if err != nil || rep.OK || len(rep.Missing) != 1 {
		t.Errorf("verify without the filter should miss the old message: %v %+v", err, rep)
	}
	got := fetchAll(t, re.client(nil), "Local/Archive")
	if len(got) != 1 || got[0].UID != 1 {
		t.Errorf("after -move the archive shows %v, want only the old message", uids(got))
	}
}

// TestMigrateQuotaRefusal: a plan that doesn't fit is refused before any
// upload, with the numbers and a filter that would fit.
func TestMigrateQuotaRefusal(t *testing.T) {
	pad := strings.Repeat("y", 3000) + "\n"
	var content strings.Builder
	for i := 1; i <= 12; i++ {
		m := mboxMsg(i, "")
		if i <= 6 {
			m = strings.Replace(m, "2006", fmt.Sprint(1990+i), 2)
		}
		content.WriteString(m + strings.Repeat(pad, 3))
	}
	src, _ := mboxSource(t, content.String())
	re := newRemoteEnv(t, []testenv.DovecotUser{{Name: "q", Password: "q-pw", QuotaBytes: 64 << 10}}, src)
	plan, err := re.acct.PlanMigration(context.Background(), MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Fits || !plan.QuotaKnown {
		t.Fatalf("plan fits: %+v", plan)
	}
	if !strings.HasPrefix(plan.FitHint, "-since ") {
		t.Errorf("no filter suggested: %q", plan.FitHint)
	}
	_, err = re.acct.Migrate(context.Background(), plan, MigrateOptions{})
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != "OVERQUOTA" || !strings.Contains(ie.Text, "missing") {
		t.Fatalf("Migrate over quota: %v", err)
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")) + len(re.dc.Messages(t, re.user, "Archive")); n != 0 {
		t.Errorf("%d messages uploaded despite the refusal", n)
	}
}

// twoDeliveries is one message as it arrived twice (a cross-post, a CC):
// the same Message-ID, Date, From, To, Subject; different Received lines
// and list footer.
func twoDeliveries() (a, b string) {
	head := "Message-ID: <dup@example.com>\nDate: Tue, 3 Jan 2006 10:00:00 +0000\nFrom: list@example.com\nTo: me@example.com\nSubject: meeting\n"
	a = "From list@example.com Tue Jan  3 10:00:00 2006\nReceived: from mx1.example.com by a\n" + head + "\nSee you at 10.\n--\nlist A footer\n\n"
	b = "From list@example.com Tue Jan  3 10:00:05 2006\nReceived: from mx2.example.com by b\n" + head + "\nSee you at 10.\n--\nthe B list's longer footer\n\n"
	return a, b
}

// TestMigrateTwoDeliveries: two archive messages that share every header
// fingerprint field but differ are two messages on the server: the plan,
// the upload, a rerun and verify (also -content) all say so; deleting one
// on the server is noticed.
func TestMigrateTwoDeliveries(t *testing.T) {
	a1, a2 := twoDeliveries()
	src, _ := mboxSource(t, a1+a2+mboxMsg(3, ""))
	re := newRemoteEnv(t, nil, src)
	a := re.acct
	plan, res := mustMigrate(t, a, MigrateOptions{})
	if plan.Folders[0].ToUpload != 3 || plan.Folders[0].OnServer != 0 {
		t.Errorf("plan: %+v, want 3 to upload", plan.Folders[0])
	}
	if f := res.Folders[0]; f.Uploaded != 3 || f.Failed != 0 || f.Already != 0 || !res.Complete {
		t.Fatalf("first run: %+v", res)
	}
	srv := re.dc.Messages(t, re.user, "Archive")
	got := map[string]bool{}
	for _, m := range srv {
		got[string(m.Body)] = true
	}
	for _, w := range []string{served1(a1), served1(a2)} {
		if !got[w] {
			t.Errorf("the server lacks\n%q", w)
		}
	}
	if len(srv) != 3 {
		t.Fatalf("server has %d messages, want 3", len(srv))
	}
	_, res = mustMigrate(t, a, MigrateOptions{})
	if f := res.Folders[0]; f.Uploaded != 0 || f.Already != 3 || f.Failed != 0 {
		t.Errorf("rerun: %+v, want 3 already there", f)
	}
	for _, content := range []bool{false, true} {
		rep, err := a.Verify(context.Background(), MigrateOptions{Content: content})
		if err != nil || !rep.OK || rep.Folders[0].Present != 3 {
			t.Fatalf("verify (content %v): %v %+v", content, err, rep)
		}
	}
	// Remove the second delivery on the server: both verifies see it.
	c := re.dovecotClient()
	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, m := range srv {
		if string(m.Body) == served1(a2) {
			if err := c.Store(imap.UIDSetNum(m.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	for _, content := range []bool{false, true} {
		rep, err := a.Verify(context.Background(), MigrateOptions{Content: content})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK || len(rep.Missing) != 1 || rep.Missing[0].Problem != "differs" || rep.Missing[0].UID != 2 || rep.Folders[0].Differ != 1 {
			t.Errorf("verify (content %v) after deleting one delivery: %+v", content, rep)
		}
	}
	_, res = mustMigrate(t, a, MigrateOptions{})
	if f := res.Folders[0]; f.Uploaded != 1 || f.Already != 2 {
		t.Errorf("migrate after the deletion: %+v, want 1 uploaded", f)
	}
}

// served1 is what the bridge serves for one mbox message.
func served1(mboxText string) string {
	s := mboxText[strings.IndexByte(mboxText, '\n')+1:]
	s = strings.TrimSuffix(s, "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// TestVerifyContentCatchesSameSize: a server copy with the same header
// fields and size but other bytes passes the default verify only when the
// bridge never saw its content; -content always catches it.
func TestVerifyContentCatchesSameSize(t *testing.T) {
	src, _ := mboxSource(t, mboxMsg(1, ""))
	re := newRemoteEnv(t, nil, src)
	body := []byte(served(1, ""))
	bad := bytes.Replace(body, []byte("Body of message 1."), []byte("Body of message X."), 1)
	re.dc.Append(t, re.user, "Archive", bad, nil, time.Time{})
	rep, err := re.acct.Verify(context.Background(), MigrateOptions{Content: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Missing) != 1 || rep.Missing[0].Problem != "differs" || !rep.Content {
		t.Fatalf("verify -content of a same-size impostor: %+v", rep)
	}
	// After -content read it, the bridge knows its content: the default
	// verify is not fooled either.
	rep, err = re.acct.Verify(context.Background(), MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Errorf("default verify, impostor's content known: %+v", rep)
	}
}

// TestPlanCountsOnce: the same message in two sources whose folders go to
// the same server folder is counted and uploaded once.
func TestPlanCountsOnce(t *testing.T) {
	dir := t.TempDir()
	var srcs []Source
	for _, name := range []string{"pc1", "pc2"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(mbox(1, 2)), 0o600); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Name: name, Path: p, Format: archive.FormatMbox})
	}
	re := newRemoteEnv(t, nil, srcs...)
	mapping := map[string]string{"Local/pc1": "INBOX", "Local/pc2": "INBOX"}
	plan, err := re.acct.PlanMigration(context.Background(), MigrateOptions{Mapping: mapping})
	if err != nil {
		t.Fatal(err)
	}
	var up, repeats int
	for _, f := range plan.Folders {
		up += f.ToUpload
		repeats += f.Repeats
	}
	want := int64(len(served(1, "")) + len(served(2, "")))
	if up != 2 || repeats != 2 || plan.Need != want {
		t.Fatalf("plan: %d to upload, %d repeats, need %d; want 2, 2, %d: %+v", up, repeats, plan.Need, want, plan.Folders)
	}
	res, err := re.acct.Migrate(context.Background(), plan, MigrateOptions{Mapping: mapping})
	if err != nil {
		t.Fatal(err)
	}
	if n := uploaded(res); n != 2 {
		t.Errorf("uploaded %d, want 2", n)
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")); n != 2 {
		t.Errorf("server INBOX has %d messages, want 2", n)
	}
	rep, err := re.acct.Verify(context.Background(), MigrateOptions{Mapping: mapping})
	if err != nil || !rep.OK {
		t.Errorf("verify: %v %+v", err, rep)
	}
}

// TestMaildirInboxChildren: a Maildir++ ".INBOX.Projects" is a child of the
// Maildir's own inbox, and migrate puts it below the server's INBOX.
func TestMaildirInboxChildren(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"", ".INBOX.Projects", ".Sent"} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(root, d, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(dir, name, body string) {
		if err := os.WriteFile(filepath.Join(root, dir, "cur", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("", "1.a:2,S", "Subject: in inbox\nMessage-ID: <i@x>\n\ninbox\n")
	write(".INBOX.Projects", "2.b:2,", "Subject: project\nMessage-ID: <p@x>\n\nproject\n")
	write(".Sent", "3.c:2,S", "Subject: sent\nMessage-ID: <s@x>\n\nsent\n")
	re := newRemoteEnv(t, nil, Source{Name: "MD", Path: root, Format: archive.FormatMaildir})
	list, err := re.client(nil).List("", "Local*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[Local Local/Inbox Local/Inbox/Projects Local/Sent]" {
		t.Fatalf("LIST: %v", names)
	}
	plan, res := mustMigrate(t, re.acct, MigrateOptions{})
	targets := map[string]string{}
	for _, f := range plan.Folders {
		targets[f.Source] = f.Target
	}
	if targets["Local/Inbox/Projects"] != "INBOX/Projects" || targets["Local/Inbox"] != "INBOX" || targets["Local/Sent"] != "Sent" {
		t.Errorf("targets: %v", targets)
	}
	if !res.Complete {
		t.Errorf("migrate: %+v", res)
	}
	if m := re.dc.Messages(t, re.user, "INBOX/Projects"); len(m) != 1 || !strings.Contains(string(m[0].Body), "project") {
		t.Errorf("server INBOX/Projects: %+v", m)
	}
}

// TestMigrateNeverIntoAllMail: a legacy folder mapped (or named) to a
// server folder that only shows mail filed elsewhere (Gmail's All Mail,
// SPECIAL-USE \All) is refused in the plan with a way out.
func TestMigrateNeverIntoAllMail(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	gm := imapemu.StartGmail(t, imapemu.Options{})
	be := newBridgeEnv(t, gm, "alice", src)
	for _, target := range []string{"[Gmail]/All Mail", "[Gmail]/Starred"} {
		_, err := be.acct.PlanMigration(context.Background(), MigrateOptions{Mapping: map[string]string{"Local/Archive": target}})
		if err == nil || !strings.Contains(err.Error(), target) || !strings.Contains(err.Error(), "[migrate] folders") {
			t.Errorf("plan into %s: %v", target, err)
		}
	}
	if _, err := be.acct.PlanMigration(context.Background(), MigrateOptions{Mapping: map[string]string{"Local/Archive": "Archive"}}); err != nil {
		t.Errorf("plan into a label: %v", err)
	}
}

// TestMigrateNewFolderUIDValidity: a folder migrate creates is recorded
// under the server's UIDVALIDITY, with the uploads' fingerprints, so that
// a later run (a re-run of migrate, verify, the bridge) finds its content
// without taking the folder for a changed one and reading it all again.
func TestMigrateNewFolderUIDValidity(t *testing.T) {
	ids := make([]int, 40)
	for i := range ids {
		ids[i] = i + 1
	}
	p := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(p, []byte(mbox(ids...)), 0o600); err != nil {
		t.Fatal(err)
	}
	re := newRemoteEnv(t, nil, Source{Name: "upload", Path: p, Format: archive.FormatMbox})
	re.noWatch = true // as `popbridge migrate` without a bridge: no sync but its own
	re.restart()
	o := MigrateOptions{Folders: []string{"Local/upload"}, Mapping: map[string]string{"Local/upload": "Up/new"}}
	plan, res := mustMigrate(t, re.acct, o)
	if !plan.Folders[0].Create || uploaded(res) != 40 {
		t.Fatalf("plan creates %v, uploaded %d; want a new folder and 40", plan.Folders[0].Create, uploaded(res))
	}
	c := re.dovecotClient()
	st, err := c.Status("Up/new", &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		f, err := re.acct.db.Folder("Up/new")
		if err != nil {
			t.Fatal(err)
		}
		if f.UIDValidity != st.UIDValidity {
			t.Fatalf("%s: mirror UIDVALIDITY %d, server's %d", when, f.UIDValidity, st.UIDValidity)
		}
		var n, noFP int
		var srcID uint32
		err = re.acct.db.View(func(tx *store.Tx) error {
			src, err := tx.Folder("Local/upload")
			if err != nil {
				return err
			}
			srcID = src.ID
			if err := tx.ForEachMessage(f.ID, func(m *store.Message) error {
				n++
				if len(m.FP) == 0 {
					noFP++
				}
				return nil
			}); err != nil {
				return err
			}
			ups, err := tx.Uploads(src.ID)
			if err != nil {
				return err
			}
			return tx.ForEachMessage(src.ID, func(m *store.Message) error {
				for _, up := range ups[m.UID] {
					if up.Folder == "Up/new" && up.UIDValidity == st.UIDValidity {
						return nil
					}
				}
				return fmt.Errorf("upload records of UID %d: %+v, want one in Up/new with UIDVALIDITY %d", m.UID, ups[m.UID], st.UIDValidity)
			})
		})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if n != 40 || noFP != 0 {
			t.Fatalf("%s: mirror holds %d messages, %d without a content fingerprint; want 40 and 0 (folder %d)", when, n, noFP, srcID)
		}
	}
	check("after migrate")
	re.restart()
	plan, err = re.acct.PlanMigration(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if f := plan.Folders[0]; f.OnServer != 40 || f.ToUpload != 0 {
		t.Fatalf("re-run plan: %d on the server, %d to upload; want 40, 0", f.OnServer, f.ToUpload)
	}
	check("after the re-run's plan")
}
