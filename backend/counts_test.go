package backend

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// checkCounts compares FolderCounts with Status, which counts everything
// from scratch every time.
func checkCounts(t *testing.T, a *Account, step string) []FolderCount {
	t.Helper()
	got, err := a.FolderCounts()
	if err != nil {
		t.Fatalf("%s: FolderCounts: %v", step, err)
	}
	want, err := a.Status()
	if err != nil {
		t.Fatalf("%s: Status: %v", step, err)
	}
	byName := map[string]FolderCount{}
	for _, c := range got {
		byName[c.Name] = c
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d folders counted, Status has %d", step, len(got), len(want))
	}
	for _, w := range want {
		c, ok := byName[w.Name]
		if !ok {
			t.Fatalf("%s: %s not counted", step, w.Name)
		}
		if c.Messages != w.Messages || c.Bytes != w.Bytes || c.Remote != w.Remote || c.NoSelect != w.NoSelect {
			t.Errorf("%s: %s: counted %+v, Status %+v", step, w.Name, c, w)
		}
		if !w.Remote && (c.OnServer != w.OnServer || c.ToGo != w.Messages-w.OnServer) {
			t.Errorf("%s: %s: on server %d / to go %d, Status says %d of %d on the server", step, w.Name, c.OnServer, c.ToGo, w.OnServer, w.Messages)
		}
		if c.ToGoBytes < 0 || c.ToGoBytes > c.Bytes || (c.ToGo == 0) != (c.ToGoBytes == 0) {
			t.Errorf("%s: %s: to go %d messages, %d bytes (of %d)", step, w.Name, c.ToGo, c.ToGoBytes, c.Bytes)
		}
	}
	return got
}

func countOf(cs []FolderCount, name string) FolderCount {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return FolderCount{}
}

// TestFolderCounts follows every kind of change the dashboard must see —
// a partial migration, a client expunge, mail deleted on the server, the
// archive growing — and checks the maintained counts against Status.
func TestFolderCounts(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "A"), mbox(1, 2, 3, 4))
	writeFile(t, filepath.Join(dir, "B"), mbox(5, 6, 7))
	re := newRemoteEnv(t, nil, Source{Name: "Old", Path: dir, Format: "mbox"})
	a := re.acct
	ctx := context.Background()

	// Message 6 is on the server already (the old client left a copy).
	re.dc.Append(t, re.user, "INBOX", []byte(strings.ReplaceAll(served(6, ""), "\n", "\r\n")), nil, time.Now())
	if err := a.SyncFolders(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.SyncRemote(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	// Only the header fields are known of it: nothing is proven yet.
	cs := checkCounts(t, a, "start")
	if b := countOf(cs, "Local/B"); b.OnServer != 0 || b.ToGo != 3 {
		t.Fatalf("start: Local/B %+v, want 0 on the server and 3 to go", b)
	}
	// A plan reads the candidate's content from the server: then it counts.
	if _, err := a.PlanMigration(ctx, MigrateOptions{Mapping: map[string]string{"Local/B": "INBOX"}}); err != nil {
		t.Fatal(err)
	}
	cs = checkCounts(t, a, "after a plan")
	if b := countOf(cs, "Local/B"); b.OnServer != 1 || b.ToGo != 2 {
		t.Fatalf("after a plan: Local/B %+v, want 1 on the server and 2 to go", b)
	}
	if cs2 := checkCounts(t, a, "unchanged"); countOf(cs2, "Local/A") != countOf(cs, "Local/A") {
		t.Fatal("counts changed without a change")
	}

	// A partial migration: Local/A goes up.
	mustMigrate(t, a, MigrateOptions{Folders: []string{"Local/A"}})
	cs = checkCounts(t, a, "after migrating Local/A")
	if c := countOf(cs, "Local/A"); c.ToGo != 0 || c.OnServer != 4 {
		t.Fatalf("after migrate: Local/A %+v", c)
	}

	// A client expunges message 7 from Local/B.
	c := re.client(nil)
	if _, err := c.Select("Local/B", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	cs = checkCounts(t, a, "after an expunge")
	if b := countOf(cs, "Local/B"); b.Messages != 2 || b.ToGo != 1 {
		t.Fatalf("after expunge: Local/B %+v", b)
	}

	// The copy of message 6 is deleted on the server: it is to go again.
	dcc := re.dovecotClient()
	if _, err := dcc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := dcc.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := dcc.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	dcc.Logout().Wait()
	if err := a.SyncRemote(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	cs = checkCounts(t, a, "after a deletion on the server")
	if b := countOf(cs, "Local/B"); b.OnServer != 0 || b.ToGo != 2 {
		t.Fatalf("after deletion upstream: Local/B %+v", b)
	}

	// The old client keeps downloading into B.
	f, err := os.OpenFile(filepath.Join(dir, "B"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(mbox(8, 9))
	f.Close()
	if _, err := a.Index(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cs = checkCounts(t, a, "after the archive grew")
	if b := countOf(cs, "Local/B"); b.Messages != 4 || b.ToGo != 4 {
		t.Fatalf("after growth: Local/B %+v", b)
	}

	// Everything goes up.
	mustMigrate(t, a, MigrateOptions{})
	cs = checkCounts(t, a, "after migrating everything")
	for _, c := range cs {
		if !c.Remote && c.ToGo != 0 {
			t.Errorf("after migrating everything: %+v", c)
		}
	}
}

// TestChangesWakes: Changes fires on a change of messages, not on flags.
func TestChangesWakes(t *testing.T) {
	src, p := mboxSource(t, mbox(1, 2))
	e := newEnv(t, src)
	ch := e.acct.Changes()
	select {
	case <-ch:
		t.Fatal("Changes fired without a change")
	default:
	}
	c := e.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("Changes fired for a flag change")
	default:
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(mbox(3))
	f.Close()
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changes did not fire for a new message")
	}
}
