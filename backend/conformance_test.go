package backend

// The merged account's conformance suite (issue J): the same everyday
// client flows through the bridge — a real front door, a real bbolt store,
// a real go-imap client — against every upstream the tests can start:
// Dovecot, Courier-IMAP and Cyrus IMAP (private, on loopback) and the
// Gmail and Microsoft 365 emulators. Every flow checks bytes, flags and
// counts exactly against the server's own view, read with the server's
// own folder names (testenv.Server.Messages).
//
// One server per kind is shared by the flows; each flow has its own user
// there, so flows cannot see each other's mail. Kinds run in parallel,
// the flows of one kind one after the other. A server that cannot run
// here is skipped (naming its Debian packages), or fails under CI=true.
//
//	go test ./backend -run TestConformance -v   # ends with the server × flow table
//	POPBRIDGE_TEST_LOG=1 go test ./backend -run TestConformance/courier/Quota  # the bridge's log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/imapemu"
	"github.com/popbridge/popbridge/internal/testenv"
)

// confKind is one kind of upstream server and what the flows expect of it.
type confKind struct {
	name string
	// start starts the shared server with these users (password
	// "<name>-pw"; quota > 0 is a storage quota in bytes).
	start func(t testing.TB, users []confUser) testenv.Server
	// The bridge names of the server's special folders.
	sent, trash, drafts, junk string
	// quota: the server enforces the quota user's storage quota (else the
	// quota flow checks that nothing is refused).
	quota bool
	// quotaKnown: the server reports a storage quota for a user without
	// one of their own (Gmail's 15 GiB).
	quotaKnown bool
	// emulator: a provider emulator (its own instances for limits tests).
	emulator bool
	// oneMessagePerID: the server keeps one message per Message-ID
	// (Gmail): an APPEND of another with the same ID is not stored.
	oneMessagePerID bool
	// noDot: the server refuses '.' in names although its delimiter is
	// '/' (Dovecot's Maildir++): the bridge writes it full-width there.
	noDot bool
	// newEmu starts another instance of an emulator with limits.
	newEmu func(t testing.TB, o imapemu.Options) *imapemu.Server
}

type confUser struct {
	name  string
	quota int64 // storage quota in bytes
	msgs  int64 // message-count quota
}

// confServer is a running server of a kind.
type confServer struct {
	*confKind
	srv testenv.Server
}

// confFlow is one row of the suite.
type confFlow struct {
	name string
	user string // the flow's own user on the shared server
	run  func(t *testing.T, cs *confServer, user string)
	// emuOnly: the flow is about provider behaviour (n/a elsewhere).
	emuOnly bool
}

const confQuota = 20 << 10

var confFlows = []confFlow{
	{name: "FirstSync", user: "sync", run: confFirstSync},
	{name: "MoveToTrash", user: "trash", run: confMoveToTrash},
	{name: "OutlookMoveByAppend", user: "outlook", run: confOutlookMove},
	{name: "ThunderbirdMove", user: "tbmove", run: confThunderbirdMove},
	{name: "DragDedup", user: "drag", run: confDragDedup},
	{name: "Folders", user: "folders", run: confFolders},
	{name: "SearchBody", user: "search", run: confSearch},
	{name: "IdlePush", user: "idle", run: confIdle},
	{name: "Quota", user: "quota", run: confQuotaFlow},
	{name: "MigrateVerify", user: "migrate", run: confMigrate},
	{name: "ProviderLimits", run: confProviderLimits, emuOnly: true},
	{name: "AppendSameMessageID", user: "msgid", run: confAppendSameMessageID},
}

func confUsers() []confUser {
	var out []confUser
	for _, f := range confFlows {
		if f.user == "" {
			continue
		}
		u := confUser{name: f.user}
		if f.user == "quota" {
			u.quota = confQuota
		}
		out = append(out, u)
	}
	return append(out, confUser{name: "noquota"}, confUser{name: "msgquota", msgs: 2})
}

func emuUsers(users []confUser) []imapemu.User {
	var out []imapemu.User
	for _, u := range users {
		out = append(out, imapemu.User{Name: u.name, Password: u.name + "-pw", Token: u.name + "-token"})
	}
	return out
}

var confFolderSet = []string{"Sent", "Drafts", "Trash", "Junk"}

func confKinds() []*confKind {
	return []*confKind{
		{
			// Maildir++ layout: '/' but no '.' in names.
			name: "dovecot", sent: "Sent", trash: "Trash", drafts: "Drafts", junk: "Junk", quota: true, noDot: true,
			start: func(t testing.TB, users []confUser) testenv.Server {
				var us []testenv.DovecotUser
				for _, u := range users {
					us = append(us, testenv.DovecotUser{Name: u.name, Password: u.name + "-pw", QuotaBytes: u.quota, QuotaMessages: u.msgs})
				}
				return testenv.StartDovecot(t, testenv.DovecotOptions{Users: us})
			},
		},
		{
			// No SPECIAL-USE, no MOVE; "INBOX." with '.'; bare QUOTA.
			name: "courier", sent: "Sent", trash: "Trash", drafts: "Drafts", junk: "Junk", quota: true,
			start: func(t testing.TB, users []confUser) testenv.Server {
				var us []testenv.CourierUser
				for _, u := range users {
					us = append(us, testenv.CourierUser{Name: u.name, Password: u.name + "-pw", QuotaBytes: u.quota, QuotaMessages: u.msgs})
				}
				return testenv.StartCourier(t, testenv.CourierOptions{Users: us, Folders: confFolderSet})
			},
		},
		{
			// The least a server may offer: Courier announcing IMAP4rev1
			// alone (no UIDPLUS, IDLE, QUOTA, MOVE or SPECIAL-USE), as
			// old hosting servers do. Uploaded UIDs are found by content,
			// expunges keep others' \Deleted, new mail is polled.
			name: "courier-min", sent: "Sent", trash: "Trash", drafts: "Drafts", junk: "Junk",
			start: func(t testing.TB, users []confUser) testenv.Server {
				var us []testenv.CourierUser
				for _, u := range users {
					us = append(us, testenv.CourierUser{Name: u.name, Password: u.name + "-pw", QuotaMessages: u.msgs})
				}
				c := testenv.StartCourier(t, testenv.CourierOptions{Users: us, Folders: confFolderSet,
					Env: map[string]string{"IMAP_CAPABILITY": "IMAP4rev1 CHILDREN NAMESPACE"}})
				cl := c.Client(t, users[0].name)
				for _, cp := range []imap.Cap{imap.CapUIDPlus, imap.CapIdle, imap.CapQuota, imap.CapMove} {
					if cl.Caps().Has(cp) {
						t.Fatalf("courier-min announces %s: %v", cp, cl.Caps())
					}
				}
				cl.Close()
				return c
			},
		},
		{
			// Debian's defaults: "INBOX." with '.', folders made by a
			// client without special-use attributes.
			name: "cyrus", sent: "Sent", trash: "Trash", drafts: "Drafts", junk: "Junk", quota: true,
			start: func(t testing.TB, users []confUser) testenv.Server {
				var us []testenv.CyrusUser
				for _, u := range users {
					us = append(us, testenv.CyrusUser{Name: u.name, Password: u.name + "-pw", QuotaBytes: u.quota, QuotaMessages: u.msgs})
				}
				return testenv.StartCyrus(t, testenv.CyrusOptions{Users: us, Folders: confFolderSet})
			},
		},
		{
			name: "gmail", sent: "[Gmail]/Sent Mail", trash: "[Gmail]/Trash", drafts: "[Gmail]/Drafts", junk: "[Gmail]/Spam",
			quota: true, quotaKnown: true, emulator: true, oneMessagePerID: true, newEmu: imapemu.StartGmail,
			start: func(t testing.TB, users []confUser) testenv.Server {
				return imapemu.StartGmail(t, imapemu.Options{Users: emuUsers(users)})
			},
		},
		{
			name: "m365", sent: "Sent Items", trash: "Deleted Items", drafts: "Drafts", junk: "Junk Email",
			emulator: true, newEmu: imapemu.StartM365,
			start: func(t testing.TB, users []confUser) testenv.Server {
				return imapemu.StartM365(t, imapemu.Options{Users: emuUsers(users)})
			},
		},
	}
}

// confResults collects the server × flow table.
var confResults = struct {
	sync.Mutex
	m map[string]map[string]string
}{m: map[string]map[string]string{}}

func recordConf(server, flow, result string) {
	confResults.Lock()
	defer confResults.Unlock()
	if confResults.m[server] == nil {
		confResults.m[server] = map[string]string{}
	}
	confResults.m[server][flow] = result
}

func TestConformance(t *testing.T) {
	kinds := confKinds()
	t.Cleanup(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "%-20s", "flow")
		for _, k := range kinds {
			fmt.Fprintf(&b, " %-11s", k.name)
		}
		b.WriteString("\n")
		confResults.Lock()
		for _, f := range confFlows {
			fmt.Fprintf(&b, "%-20s", f.name)
			for _, k := range kinds {
				r := confResults.m[k.name][f.name]
				if r == "" {
					r = "-"
				}
				fmt.Fprintf(&b, " %-11s", r)
			}
			b.WriteString("\n")
		}
		confResults.Unlock()
		t.Logf("server × flow:\n%s", b.String())
	})
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			cs := &confServer{confKind: k}
			t.Cleanup(func() {
				if t.Skipped() {
					for _, f := range confFlows {
						recordConf(k.name, f.name, "skip")
					}
				}
			})
			cs.srv = k.start(t, confUsers())
			for _, f := range confFlows {
				t.Run(f.name, func(t *testing.T) {
					t.Cleanup(func() {
						switch {
						case t.Failed():
							recordConf(k.name, f.name, "FAIL")
						case t.Skipped():
							recordConf(k.name, f.name, "n/a")
						default:
							recordConf(k.name, f.name, "pass")
						}
					})
					if f.emuOnly && !k.emulator {
						t.Skipf("%s is about the providers' limits", f.name)
					}
					f.run(t, cs, f.user)
				})
			}
		})
	}
}

// srvName is the server's name of a bridge folder name, written out for
// the tests (names.go is what is tested): "INBOX." servers put the prefix
// in front and '.' between levels; a '.' inside a level is written
// full-width there, and on a '/' server that refuses '.'.
func (cs *confServer) srvName(bridge string) string {
	ns := cs.srv.PersonalNamespace()
	if bridge == "INBOX" || ns.Delim == '/' {
		if cs.noDot {
			return strings.ReplaceAll(bridge, ".", "．")
		}
		return bridge
	}
	levels := strings.Split(bridge, "/")
	for i, l := range levels {
		levels[i] = strings.ReplaceAll(l, ".", "．")
	}
	return ns.Prefix + strings.Join(levels, ".")
}

// bridgeName is the bridge's name of a server folder name ("" for one
// outside the personal namespace).
func (cs *confServer) bridgeName(server string) string {
	ns := cs.srv.PersonalNamespace()
	if strings.EqualFold(server, "INBOX") || ns.Delim == '/' {
		if cs.noDot {
			return strings.ReplaceAll(server, "．", ".")
		}
		return server
	}
	if !strings.HasPrefix(server, ns.Prefix) {
		return ""
	}
	levels := strings.Split(strings.TrimPrefix(server, ns.Prefix), ".")
	for i, l := range levels {
		levels[i] = strings.ReplaceAll(l, "．", ".")
	}
	return strings.Join(levels, "/")
}

// create makes a folder on the server itself (APPEND's TRYCREATE path
// does not work on Courier, which refuses the literal).
func (cs *confServer) create(t *testing.T, user, bridge string) {
	t.Helper()
	c := cs.srv.Client(t, user)
	defer c.Close()
	if err := c.Create(cs.srvName(bridge), nil).Wait(); err != nil {
		t.Fatalf("CREATE %q on the server: %v", cs.srvName(bridge), err)
	}
}

func (cs *confServer) env(t *testing.T, user string, sources ...Source) *bridgeEnv {
	t.Helper()
	return newBridgeEnv(t, cs.srv, user, sources...)
}

// confMsg is a small CRLF message.
func confMsg(tag, body string) []byte {
	return []byte("From: Sender <sender@example.com>\r\nTo: you@example.com\r\nSubject: " + tag +
		"\r\nDate: Tue, 03 Mar 2020 10:00:00 +0000\r\nMessage-ID: <" + tag + "@conf.example>\r\n\r\n" + body + "\r\n")
}

func sortedFlags(fl []imap.Flag) []imap.Flag {
	out := make([]imap.Flag, 0, len(fl))
	for _, f := range fl {
		if f != flagRecent {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sameAsServer checks that the bridge shows folder exactly as the server
// has it (UIDs, bytes, flags, INTERNALDATE) and returns the server's view.
func sameAsServer(t *testing.T, be *bridgeEnv, c *imapclient.Client, cs *confServer, folder string) []testenv.Msg {
	t.Helper()
	srv := cs.srv.Messages(t, be.user, cs.srvName(folder))
	got := fetchAll(t, c, folder)
	if len(got) != len(srv) {
		t.Fatalf("%s: the bridge shows %d messages %v, the server's %q has %d", folder, len(got), uids(got), cs.srvName(folder), len(srv))
	}
	for i := range srv {
		g, s := got[i], srv[i]
		if g.UID != s.UID || !bytes.Equal(g.Body, s.Body) || fmt.Sprint(sortedFlags(g.Flags)) != fmt.Sprint(sortedFlags(s.Flags)) || !g.Date.Equal(s.InternalDate) {
			t.Errorf("%s message %d: bridge UID %d flags %v date %v, server UID %d flags %v date %v (bytes equal %v)",
				folder, i+1, g.UID, g.Flags, g.Date, s.UID, s.Flags, s.InternalDate, bytes.Equal(g.Body, s.Body))
		}
	}
	return srv
}

// holds checks that msgs are exactly want, as a multiset of bytes.
func holds(t *testing.T, where string, msgs []testenv.Msg, want ...[]byte) {
	t.Helper()
	var got, exp []string
	for _, m := range msgs {
		got = append(got, string(m.Body))
	}
	for _, w := range want {
		exp = append(exp, string(w))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("%s holds %d messages, want %d:\n got %s\nwant %s", where, len(got), len(exp), describeBodies(got), describeBodies(exp))
	}
}

// describeBodies names messages by subject and size (for failure messages).
func describeBodies(bodies []string) string {
	var out []string
	for _, b := range bodies {
		subj := "?"
		if _, rest, ok := strings.Cut(b, "Subject: "); ok {
			subj, _, _ = strings.Cut(rest, "\r\n")
		}
		out = append(out, fmt.Sprintf("%q (%d bytes)", subj, len(b)))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func selectOK(t *testing.T, c *imapclient.Client, name string) *imap.SelectData {
	t.Helper()
	sd, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %q: %v", name, err)
	}
	return sd
}

func moveOK(t *testing.T, c *imapclient.Client, set imap.UIDSet, dest string) *imapclient.MoveData {
	t.Helper()
	md, err := c.Move(set, dest).Wait()
	if err != nil {
		t.Fatalf("UID MOVE %v to %q: %v", set, dest, err)
	}
	return md
}

// confFirstSync: what a client sees first: LIST (translated names,
// special-use attributes, inferred where the server has none), INBOX in
// any case, SELECT and STATUS as the server answers them, every message
// byte for byte.
func confFirstSync(t *testing.T, cs *confServer, user string) {
	cs.srv.Append(t, user, "INBOX", confMsg("first", "one"), []imap.Flag{imap.FlagSeen}, time.Date(2019, 4, 5, 6, 7, 8, 0, time.UTC))
	cs.srv.Append(t, user, "INBOX", confMsg("second", "two"), []imap.Flag{imap.FlagFlagged, imap.FlagAnswered}, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	cs.srv.Append(t, user, cs.srvName(cs.sent), confMsg("sent", "three"), []imap.Flag{imap.FlagSeen}, time.Time{})
	cs.create(t, user, "Projects/2019")
	cs.srv.Append(t, user, cs.srvName("Projects/2019"), confMsg("project", "four"), nil, time.Time{})
	src, _ := mboxSource(t, mbox(1))
	be := cs.env(t, user, src)
	c := be.client(nil)

	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
		if l.Delim != '/' {
			t.Errorf("%s: delimiter %q", l.Mailbox, l.Delim)
		}
	}
	srvList, err := be.serverClient().List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var want, gotRemote []string
	for _, l := range srvList {
		if n := cs.bridgeName(l.Mailbox); n != "" {
			want = append(want, n)
		}
	}
	for name := range attrs {
		if !be.acct.isLocal(name) {
			gotRemote = append(gotRemote, name)
		}
	}
	slices.Sort(want)
	slices.Sort(gotRemote)
	if !slices.Equal(want, gotRemote) {
		t.Errorf("LIST shows the server's folders as %q, want %q", gotRemote, want)
	}
	for _, n := range []string{"INBOX", cs.sent, cs.trash, cs.drafts, cs.junk, "Projects/2019", "Local", "Local/Archive"} {
		if _, ok := attrs[n]; !ok {
			t.Errorf("LIST lacks %q: %q", n, gotRemote)
		}
	}
	for _, su := range []struct {
		folder string
		attr   imap.MailboxAttr
	}{{cs.sent, imap.MailboxAttrSent}, {cs.trash, imap.MailboxAttrTrash}, {cs.drafts, imap.MailboxAttrDrafts}, {cs.junk, imap.MailboxAttrJunk}} {
		for name, at := range attrs {
			if has := slices.Contains(at, su.attr); has != (name == su.folder) {
				t.Errorf("%s has attributes %v (%s belongs to %s only)", name, at, su.attr, su.folder)
			}
		}
	}
	// INBOX in any case.
	il, err := c.List("", "inbox", nil).Collect()
	if err != nil || len(il) != 1 || il[0].Mailbox != "INBOX" {
		t.Errorf(`LIST "" inbox: %v %v`, il, err)
	}
	sd := selectOK(t, c, "Inbox")
	ssd, err := be.serverClient().Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ssd.UIDNext == 0 { // Courier leaves it out of SELECT
		st, err := be.serverClient().Status("INBOX", &imap.StatusOptions{UIDNext: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		ssd.UIDNext = st.UIDNext
	}
	if sd.UIDValidity != ssd.UIDValidity || sd.NumMessages != ssd.NumMessages || sd.UIDNext != ssd.UIDNext {
		t.Errorf("SELECT Inbox through the bridge: UIDVALIDITY %d EXISTS %d UIDNEXT %d; the server: %d %d %d",
			sd.UIDValidity, sd.NumMessages, sd.UIDNext, ssd.UIDValidity, ssd.NumMessages, ssd.UIDNext)
	}
	stOpts := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true}
	sc := be.serverClient()
	for _, f := range []string{"INBOX", cs.sent, "Projects/2019"} {
		bst, err := c.Status(f, stOpts).Wait()
		if err != nil {
			t.Fatalf("STATUS %q: %v", f, err)
		}
		sst, err := sc.Status(cs.srvName(f), stOpts).Wait()
		if err != nil {
			t.Fatalf("server STATUS %q: %v", cs.srvName(f), err)
		}
		if *bst.NumMessages != *sst.NumMessages || bst.UIDNext != sst.UIDNext || bst.UIDValidity != sst.UIDValidity || *bst.NumUnseen != *sst.NumUnseen {
			t.Errorf("STATUS %s: bridge MESSAGES %d UIDNEXT %d UIDVALIDITY %d UNSEEN %d; server %d %d %d %d", f,
				*bst.NumMessages, bst.UIDNext, bst.UIDValidity, *bst.NumUnseen, *sst.NumMessages, sst.UIDNext, sst.UIDValidity, *sst.NumUnseen)
		}
	}
	holds(t, "INBOX", sameAsServer(t, be, c, cs, "INBOX"), confMsg("first", "one"), confMsg("second", "two"))
	holds(t, cs.sent, sameAsServer(t, be, c, cs, cs.sent), confMsg("sent", "three"))
	holds(t, "Projects/2019", sameAsServer(t, be, c, cs, "Projects/2019"), confMsg("project", "four"))
}

// confMoveToTrash: a phone's delete is UID MOVE to Trash; a message
// another device marked \Deleted stays (with its flag) in INBOX.
func confMoveToTrash(t *testing.T, cs *confServer, user string) {
	doomed, marked := confMsg("doomed", "to the bin"), confMsg("marked", "marked elsewhere")
	uid := cs.srv.Append(t, user, "INBOX", doomed, []imap.Flag{imap.FlagSeen}, time.Time{})
	cs.srv.Append(t, user, "INBOX", marked, []imap.Flag{imap.FlagDeleted}, time.Time{})
	be := cs.env(t, user)
	c := be.client(nil)
	selectOK(t, c, "INBOX")
	md := moveOK(t, c, imap.UIDSetNum(uid), cs.trash)
	inbox := sameAsServer(t, be, c, cs, "INBOX")
	holds(t, "INBOX", inbox, marked)
	if len(inbox) == 1 && !slices.Contains(inbox[0].Flags, imap.FlagDeleted) {
		t.Errorf("the message marked elsewhere lost \\Deleted: %v", inbox[0].Flags)
	}
	trash := sameAsServer(t, be, c, cs, cs.trash)
	holds(t, cs.trash, trash, doomed)
	if len(trash) == 1 {
		if !slices.Contains(trash[0].Flags, imap.FlagSeen) || slices.Contains(trash[0].Flags, imap.FlagDeleted) {
			t.Errorf("moved message has flags %v, want \\Seen (and not \\Deleted)", trash[0].Flags)
		}
		if dest, ok := md.DestUIDs.(imap.UIDSet); ok && len(dest) > 0 && !dest.Contains(trash[0].UID) {
			t.Errorf("COPYUID names %v, the message is UID %d in %s", md.DestUIDs, trash[0].UID, cs.trash)
		}
	}
}

// confOutlookMove: Outlook moves by FETCH + APPEND + EXPUNGE. A legacy
// message already dragged to the server ends up there once; another one
// lands in Sent once; the sources go away.
func confOutlookMove(t *testing.T, cs *confServer, user string) {
	src, _ := mboxSource(t, mbox(1, 2, 3))
	be := cs.env(t, user, src)
	c := be.client(nil)
	selectOK(t, c, "Local/Archive")
	cd, err := c.Copy(imap.UIDSetNum(1), "INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	local := fetchAll(t, c, "Local/Archive")
	for _, mv := range []struct {
		i      int
		target string
	}{{0, "INBOX"}, {1, cs.sent}, {0, "INBOX"}} {
		selectOK(t, c, "Local/Archive")
		ad, err := appendMsg(c, mv.target, local[mv.i].Body)
		if err != nil {
			t.Fatalf("APPEND to %s: %v", mv.target, err)
		}
		srv := sameAsServer(t, be, c, cs, mv.target)
		holds(t, mv.target, srv, local[mv.i].Body)
		if len(srv) == 1 && ad.UID != srv[0].UID {
			t.Errorf("APPENDUID %d, the server's copy in %s is UID %d", ad.UID, mv.target, srv[0].UID)
		}
		if mv.target == "INBOX" && !cd.DestUIDs.Contains(ad.UID) {
			t.Errorf("APPENDUID %d is not the dragged copy %v", ad.UID, cd.DestUIDs)
		}
	}
	selectOK(t, c, "Local/Archive")
	if err := c.Store(imap.UIDSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if got := fetchAll(t, c, "Local/Archive"); fmt.Sprint(uids(got)) != "[3]" {
		t.Errorf("Local/Archive after the moves: %v", uids(got))
	}
	holds(t, "INBOX", sameAsServer(t, be, c, cs, "INBOX"), local[0].Body)
	holds(t, cs.sent, sameAsServer(t, be, c, cs, cs.sent), local[1].Body)
}

// confThunderbirdMove: UID MOVE between server folders, from Local/… to
// the server and from the server to Local/….
func confThunderbirdMove(t *testing.T, cs *confServer, user string) {
	x, y := confMsg("tb-x", "goes to Projects"), confMsg("tb-y", "goes to Local")
	ux := cs.srv.Append(t, user, "INBOX", x, []imap.Flag{imap.FlagAnswered}, time.Time{})
	uy := cs.srv.Append(t, user, "INBOX", y, []imap.Flag{imap.FlagSeen}, time.Date(2018, 7, 8, 9, 10, 11, 0, time.UTC))
	cs.create(t, user, "Projects")
	cs.srv.Append(t, user, cs.srvName("Projects"), confMsg("tb-there", "already there"), nil, time.Time{})
	src, _ := mboxSource(t, mbox(1, 2, 3))
	be := cs.env(t, user, src)
	c := be.client(nil)

	selectOK(t, c, "INBOX")
	moveOK(t, c, imap.UIDSetNum(ux), "Projects")
	holds(t, "INBOX", sameAsServer(t, be, c, cs, "INBOX"), y)
	proj := sameAsServer(t, be, c, cs, "Projects")
	holds(t, "Projects", proj, confMsg("tb-there", "already there"), x)

	selectOK(t, c, "Local/Archive")
	local := fetchAll(t, c, "Local/Archive")
	selectOK(t, c, "Local/Archive")
	moveOK(t, c, imap.UIDSetNum(1), "Projects")
	if got := fetchAll(t, c, "Local/Archive"); fmt.Sprint(uids(got)) != "[2 3]" {
		t.Errorf("Local/Archive after the MOVE: %v", uids(got))
	}
	holds(t, "Projects", sameAsServer(t, be, c, cs, "Projects"), confMsg("tb-there", "already there"), x, local[0].Body)

	if err := c.Create("Local/Kept", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	selectOK(t, c, "INBOX")
	moveOK(t, c, imap.UIDSetNum(uy), "Local/Kept")
	holds(t, "INBOX", sameAsServer(t, be, c, cs, "INBOX"))
	kept := fetchAll(t, c, "Local/Kept")
	if len(kept) != 1 || !bytes.Equal(kept[0].Body, y) || fmt.Sprint(kept[0].Flags) != `[\Seen]` || !kept[0].Date.Equal(time.Date(2018, 7, 8, 9, 10, 11, 0, time.UTC)) {
		t.Errorf("Local/Kept = %+v", kept)
	}
}

// confDragDedup: dragging the same messages twice, both ways, stores
// them once.
func confDragDedup(t *testing.T, cs *confServer, user string) {
	z := confMsg("drag-z", "on the server")
	cs.srv.Append(t, user, "INBOX", z, nil, time.Time{})
	src, _ := mboxSource(t, mbox(1, 2, 3))
	be := cs.env(t, user, src)
	c := be.client(nil)
	want := [][]byte{z, []byte(served(1, "")), []byte(served(2, "")), []byte(served(3, ""))}
	var first imap.NumSet
	for round := range 2 {
		if round == 1 {
			c.Close()
			be.restart()
			c = be.client(nil)
		}
		selectOK(t, c, "Local/Archive")
		cd, err := c.Copy(imap.UIDSetNum(1, 2, 3), "INBOX").Wait()
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			first = cd.DestUIDs
		} else if fmt.Sprint(cd.DestUIDs) != fmt.Sprint(first) {
			t.Errorf("second drag mapped to %v, the first to %v", cd.DestUIDs, first)
		}
		holds(t, "INBOX", sameAsServer(t, be, c, cs, "INBOX"), want...)
	}
	if err := c.Create("Local/Kept", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		selectOK(t, c, "INBOX")
		if _, err := c.Copy(imap.SeqSet{{Start: 1, Stop: 0}}, "Local/Kept").Wait(); err != nil {
			t.Fatal(err)
		}
		var kept []testenv.Msg
		for _, m := range fetchAll(t, c, "Local/Kept") {
			kept = append(kept, testenv.Msg{Body: m.Body})
		}
		holds(t, "Local/Kept", kept, want...)
	}
	holds(t, "INBOX", sameAsServer(t, be, c, cs, "INBOX"), want...)
}

// confFolders: CREATE, RENAME, SUBSCRIBE, DELETE reach the server under
// its own names: Japanese levels, and a '.' inside a level on a server
// whose delimiter is '.'.
func confFolders(t *testing.T, cs *confServer, user string) {
	be := cs.env(t, user)
	c := be.client(nil)
	sc := be.serverClient()
	serverHas := func(name string) bool {
		t.Helper()
		l, err := sc.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l {
			if d.Mailbox == name {
				return true
			}
		}
		return false
	}
	bridgeHas := func(name string) bool {
		t.Helper()
		l, err := c.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l {
			if d.Mailbox == name {
				return true
			}
		}
		return false
	}
	jp, dotted, renamed := "Projects/日本語", "Projects/v1.2", "Projects/v1.3"
	wantSrv := map[string]string{jp: "Projects/日本語", dotted: "Projects/v1.2", renamed: "Projects/v1.3"}
	switch {
	case cs.srv.PersonalNamespace().Delim == '.':
		wantSrv = map[string]string{jp: "INBOX.Projects.日本語", dotted: "INBOX.Projects.v1．2", renamed: "INBOX.Projects.v1．3"}
	case cs.noDot:
		wantSrv = map[string]string{jp: "Projects/日本語", dotted: "Projects/v1．2", renamed: "Projects/v1．3"}
	}
	for _, n := range []string{jp, dotted} {
		if err := c.Create(n, nil).Wait(); err != nil {
			t.Fatalf("CREATE %q: %v", n, err)
		}
		if !serverHas(wantSrv[n]) {
			t.Errorf("after CREATE %q the server lacks %q", n, wantSrv[n])
		}
		if !bridgeHas(n) {
			t.Errorf("after CREATE %q the bridge does not list it", n)
		}
	}
	msg := confMsg("in-folder", "kept across the rename")
	if _, err := appendMsg(c, dotted, msg); err != nil {
		t.Fatalf("APPEND to %q: %v", dotted, err)
	}
	holds(t, dotted, cs.srv.Messages(t, user, wantSrv[dotted]), msg)
	if err := c.Rename(dotted, renamed, nil).Wait(); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if serverHas(wantSrv[dotted]) || !serverHas(wantSrv[renamed]) {
		t.Errorf("after RENAME the server has %q: %v, %q: %v", wantSrv[dotted], serverHas(wantSrv[dotted]), wantSrv[renamed], serverHas(wantSrv[renamed]))
	}
	if bridgeHas(dotted) || !bridgeHas(renamed) {
		t.Errorf("after RENAME the bridge lists %q: %v, %q: %v", dotted, bridgeHas(dotted), renamed, bridgeHas(renamed))
	}
	holds(t, renamed, sameAsServer(t, be, c, cs, renamed), msg)
	if err := c.Subscribe(jp).Wait(); err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	subs, err := sc.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(subs, func(d *imap.ListData) bool { return d.Mailbox == wantSrv[jp] }) {
		t.Errorf("%q is not subscribed on the server: %v", wantSrv[jp], subs)
	}
	bsubs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(bsubs, func(d *imap.ListData) bool { return d.Mailbox == jp }) {
		t.Errorf("the bridge's LSUB lacks %q", jp)
	}
	// (Courier takes two seconds for each RENAME and DELETE.)
	if err := c.Delete(renamed).Wait(); err != nil {
		t.Fatalf("DELETE %q: %v", renamed, err)
	}
	if serverHas(wantSrv[renamed]) || bridgeHas(renamed) || !bridgeHas(jp) {
		t.Errorf("after DELETE %q: on the server %v, on the bridge %v (and %q %v)", renamed, serverHas(wantSrv[renamed]), bridgeHas(renamed), jp, bridgeHas(jp))
	}
}

// confSearch: SEARCH BODY runs on the server, in INBOX and in a folder
// whose server name differs, and finds what the server finds.
func confSearch(t *testing.T, cs *confServer, user string) {
	cs.srv.Append(t, user, "INBOX", confMsg("hay", "haystack only"), nil, time.Time{})
	n1 := cs.srv.Append(t, user, "INBOX", confMsg("needle", "the needle is here"), []imap.Flag{imap.FlagSeen}, time.Time{})
	n2 := cs.srv.Append(t, user, cs.srvName(cs.sent), confMsg("sent-needle", "a needle sent away"), nil, time.Time{})
	cs.srv.Append(t, user, cs.srvName(cs.sent), confMsg("sent-hay", "just hay"), nil, time.Time{})
	be := cs.env(t, user)
	c := be.client(nil)
	sc := be.serverClient()
	for _, tc := range []struct {
		folder string
		want   imap.UID
	}{{"INBOX", n1}, {cs.sent, n2}} {
		selectOK(t, c, tc.folder)
		crit := &imap.SearchCriteria{Body: []string{"needle"}}
		d, err := c.UIDSearch(crit, nil).Wait()
		if err != nil {
			t.Fatalf("UID SEARCH in %s: %v", tc.folder, err)
		}
		if _, err := sc.Select(cs.srvName(tc.folder), &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		sd, err := sc.UIDSearch(crit, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(d.AllUIDs()); got != fmt.Sprint([]imap.UID{tc.want}) || got != fmt.Sprint(sd.AllUIDs()) {
			t.Errorf("SEARCH BODY needle in %s: bridge %s, server %v, want [%d]", tc.folder, got, sd.AllUIDs(), tc.want)
		}
	}
}

// confIdle: mail appended on the server reaches a client idling on the
// bridge: INBOX (watched with IDLE, or polled) and another open folder
// (polled).
func confIdle(t *testing.T, cs *confServer, user string) {
	be := cs.env(t, user)
	for i, folder := range []string{"INBOX", cs.sent} {
		exists := make(chan uint32, 16)
		c := be.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		}})
		sd := selectOK(t, c, folder)
		idle, err := c.Idle()
		if err != nil {
			t.Fatal(err)
		}
		msg := confMsg(fmt.Sprintf("pushed-%d", i), "new mail")
		cs.srv.Append(t, user, cs.srvName(folder), msg, nil, time.Time{})
		timeout := time.After(30 * time.Second)
	wait:
		for {
			select {
			case n := <-exists:
				if n == sd.NumMessages+1 {
					break wait
				}
			case <-timeout:
				t.Fatalf("mail appended to the server's %s did not reach the client idling on %s", cs.srvName(folder), folder)
			}
		}
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatal(err)
		}
		holds(t, folder, sameAsServer(t, be, c, cs, folder), msg)
		c.Close()
	}
}

// confQuotaFlow: where the server has a quota, an upload that does not
// fit is refused before anything is sent and one that fits goes; a server
// without a quota (Courier's bare `* QUOTA "ROOT"`, no QUOTA at all)
// means no check, and nothing breaks.
func confQuotaFlow(t *testing.T, cs *confServer, user string) {
	big := strings.Repeat("x", 4000) + "\n"
	var content strings.Builder
	for i := 1; i <= 5; i++ {
		content.WriteString(mboxMsg(i, ""))
		content.WriteString(strings.Repeat(big, 2))
	}
	srv := cs.srv
	if cs.emulator && cs.quota {
		// Limits are per emulator: one of its own.
		srv = cs.newEmu(t, imapemu.Options{Users: emuUsers([]confUser{{name: user}}), Limits: imapemu.Limits{StorageBytes: confQuota}})
	}
	ctx := context.Background()
	src, _ := mboxSource(t, content.String())
	be := newBridgeEnv(t, srv, user, src)
	used, limit, known, err := be.acct.Quota(ctx)
	if err != nil {
		t.Fatalf("Quota: %v", err)
	}
	if known != cs.quota || (known && limit != confQuota) {
		t.Errorf("Quota: used %d limit %d known %v; want known %v with limit %d", used, limit, known, cs.quota, confQuota)
	}
	c := be.client(nil)
	selectOK(t, c, "Local/Archive")
	_, err = c.Copy(imap.UIDSetNum(1, 2, 3, 4, 5), "INBOX").Wait()
	if cs.quota {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != "OVERQUOTA" || !strings.Contains(ie.Text, "need") {
			t.Fatalf("COPY of 40 KB into a 20 KiB quota: %v, want NO [OVERQUOTA] with the numbers", err)
		}
		if n := len(srv.Messages(t, user, "INBOX")); n != 0 {
			t.Errorf("%d messages were uploaded before the refusal", n)
		}
		if _, err := c.Copy(imap.UIDSetNum(1), "INBOX").Wait(); err != nil {
			t.Fatalf("COPY of one message that fits: %v", err)
		}
		if n := len(srv.Messages(t, user, "INBOX")); n != 1 {
			t.Errorf("server INBOX has %d messages after a COPY that fits", n)
		}
	} else if err != nil {
		t.Fatalf("COPY without a quota: %v", err)
	} else if n := len(srv.Messages(t, user, "INBOX")); n != 5 {
		t.Errorf("server INBOX has %d messages, want 5", n)
	}

	// A user without a quota of their own.
	nsrc, _ := mboxSource(t, mbox(1, 2))
	nq := newBridgeEnv(t, cs.srv, "noquota", nsrc)
	_, _, known, err = nq.acct.Quota(ctx)
	if err != nil || known != cs.quotaKnown {
		t.Errorf("Quota of a user without one: known %v err %v, want known %v", known, err, cs.quotaKnown)
	}
	plan, err := nq.acct.PlanMigration(ctx, MigrateOptions{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if plan.QuotaKnown != cs.quotaKnown || !plan.Fits {
		t.Errorf("plan: quota known %v fits %v", plan.QuotaKnown, plan.Fits)
	}
	nc := nq.client(nil)
	selectOK(t, nc, "Local/Archive")
	if _, err := nc.Copy(imap.UIDSetNum(1, 2), "INBOX").Wait(); err != nil {
		t.Fatalf("COPY for a user without a quota: %v", err)
	}
	holds(t, "INBOX", sameAsServer(t, nq, nc, cs, "INBOX"), []byte(served(1, "")), []byte(served(2, "")))

	if cs.emulator {
		return
	}
	// A quota the plan cannot see (messages, not bytes; or no QUOTA
	// at all): the server's own refusal — Dovecot's [OVERQUOTA],
	// Courier's [ALERT] "You exceeded your mail quota.", Cyrus's "Over
	// quota" — stops the run with a reason; what arrived is recorded.
	msrc, _ := mboxSource(t, mbox(1, 2, 3, 4))
	// (One upload connection: Courier's Maildir++ quota is checked by
	// each connection on its own, so parallel uploads may pass it.)
	mq := newBridgeEnvConns(t, cs.srv, "msgquota", 2, msrc)
	o := MigrateOptions{Mapping: map[string]string{"Local/Archive": "INBOX"}}
	mplan, err := mq.acct.PlanMigration(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	mres, err := mq.acct.Migrate(ctx, mplan, o)
	if err != nil {
		t.Fatal(err)
	}
	onServer := cs.srv.Messages(t, "msgquota", "INBOX")
	if f := mres.Folders[0]; mres.Complete || !strings.Contains(mres.Stopped, "no more mail") || f.Uploaded != 2 || len(onServer) != 2 || f.Failed != 0 {
		t.Errorf("migrate of 4 messages into a 2-message quota: %+v (%+v), %d on the server", mres, f, len(onServer))
	}
}

// mixedArchive writes a Thunderbird "Local Folders" tree: Inbox (with two
// deliveries of one message), Sent, Drafts (an edited draft pair: one
// Message-ID, two versions), Trash, Projects and Projects/日本語, with
// flags.
func mixedArchive(t *testing.T) Source {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Local Folders")
	entry := func(n int, status, id, subject, body string) string {
		return fmt.Sprintf("From - Mon Jan  2 15:04:%02d 2006\nX-Mozilla-Status: %s\nX-Mozilla-Status2: 00000000\n"+
			"From: Me <me@example.com>\nTo: Someone <someone@example.com>\nSubject: %s\nMessage-ID: <%s@mixed.example>\n"+
			"Date: Mon, 2 Jan 2006 15:04:%02d +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n%s\n\n",
			n, status, subject, id, n, body)
	}
	d1, d2 := twoDeliveries()
	files := map[string]string{
		"Inbox":    entry(1, "0001", "in-1", "hello", "first inbox mail") + d1 + d2 + entry(2, "0005", "in-2", "flagged", "important"),
		"Sent":     entry(3, "0001", "sent-1", "my reply", "thanks") + entry(4, "0003", "sent-2", "another", "sent and answered"),
		"Drafts":   entry(5, "0000", "draft-pair", "plans", "first version") + entry(6, "0000", "draft-pair", "plans", "first version, edited"),
		"Trash":    entry(7, "0001", "trash-1", "old", "thrown away"),
		"Projects": entry(8, "0000", "proj-1", "project", "project mail"),
		filepath.Join("Projects.sbd", "日本語"): entry(9, "0001", "jp-1", "=?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=", "日本語の本文です。"),
	}
	for name, content := range files {
		writeFile(t, filepath.Join(root, name), content)
	}
	return Source{Name: "tb", Path: root, Format: "thunderbird"}
}

// confMigrate: migrate + verify of a mixed archive: Sent into the
// provider's Sent (never All Mail), Drafts, Trash, new folders with their
// server names, flags kept, verify (also by content) OK, a rerun uploads
// nothing, and a message deleted on the server is reported missing even
// where Gmail's All Mail still shows it.
//
// Gmail keeps one message per Message-ID: the edited draft and the second
// delivery cannot be stored there. Migrate names them as failures, verify
// as differing, and everything else is as on the other servers.
func confMigrate(t *testing.T, cs *confServer, user string) {
	be := cs.env(t, user, mixedArchive(t))
	a := be.acct
	c := be.client(nil)
	ctx := context.Background()
	targets := map[string]string{
		"Local/Inbox": "INBOX", "Local/Sent": cs.sent, "Local/Drafts": cs.drafts, "Local/Trash": cs.trash,
		"Local/Projects": "Projects", "Local/Projects/日本語": "Projects/日本語",
	}
	// What cannot be on a server that keeps one message per Message-ID:
	// Local/Drafts UID 2 (the edited draft) and Local/Inbox UID 3 (the
	// second delivery); the first of each is stored.
	keptOut := map[string]uint32{}
	if cs.oneMessagePerID {
		keptOut = map[string]uint32{"Local/Drafts": 2, "Local/Inbox": 3}
	}
	checkMissing := func(what string, missing []MissingMessage, extra ...MissingMessage) {
		t.Helper()
		var got, want []string
		for _, m := range missing {
			got = append(got, fmt.Sprintf("%s %d %s %s", m.Folder, m.UID, m.MessageID, m.Problem))
		}
		for f, uid := range keptOut {
			// The edited draft has its own Date: nothing with its header
			// fields is there. The second delivery's are the first's.
			id, problem := "draft-pair@mixed.example", "missing"
			if f == "Local/Inbox" {
				id, problem = "dup@example.com", "differs"
			}
			want = append(want, fmt.Sprintf("%s %d %s %s", f, uid, id, problem))
		}
		for _, m := range extra {
			want = append(want, fmt.Sprintf("%s %d %s %s", m.Folder, m.UID, m.MessageID, m.Problem))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: reported %q, want %q", what, got, want)
		}
	}
	plan, err := a.PlanMigration(ctx, MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range plan.Folders {
		if want := targets[fp.Source]; fp.Target != want {
			t.Errorf("plan: %s → %q, want %q", fp.Source, fp.Target, want)
		}
	}
	if len(plan.Folders) != len(targets) {
		t.Errorf("plan has %d folders, want %d: %+v", len(plan.Folders), len(targets), plan.Folders)
	}
	res, err := a.Migrate(ctx, plan, MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFailures := func(res *MigrateResult) {
		t.Helper()
		if res.Complete != (len(keptOut) == 0) {
			t.Errorf("migrate complete %v: %+v", res.Complete, res)
		}
		for _, f := range res.Folders {
			uid, out := keptOut[f.Source]
			if f.Error != "" || (!out && f.Failed != 0) || (out && (len(f.Failures) != 1 || f.Failures[0].UID != uid || !strings.Contains(f.Failures[0].Reason, "Message-ID"))) {
				t.Errorf("migrate %s: %+v", f.Source, f)
			}
		}
	}
	checkFailures(res)
	// Every archive folder is in its target, byte for byte, with its flags.
	for src, target := range targets {
		local := fetchAll(t, c, src)
		srv := sameAsServer(t, be, c, cs, target)
		var want [][]byte
		for _, m := range local {
			if uint32(m.UID) != keptOut[src] {
				want = append(want, m.Body)
			}
		}
		holds(t, target, srv, want...)
		for _, l := range local {
			for _, s := range srv {
				if bytes.Equal(s.Body, l.Body) && fmt.Sprint(sortedFlags(s.Flags)) != fmt.Sprint(sortedFlags(l.Flags)) {
					t.Errorf("%s: flags %v on the server, %v in %s", target, s.Flags, l.Flags, src)
				}
			}
		}
	}
	for _, content := range []bool{false, true} {
		rep, err := a.Verify(ctx, MigrateOptions{Content: content})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK != (len(keptOut) == 0) {
			t.Errorf("verify (content %v): OK %v", content, rep.OK)
		}
		checkMissing(fmt.Sprintf("verify (content %v)", content), rep.Missing)
	}
	plan2, res2 := mustMigrate(t, a, MigrateOptions{})
	if n := uploaded(res2); n != 0 {
		t.Errorf("a second migrate uploaded %d messages: %+v", n, res2)
	}
	checkFailures(res2)
	for _, fp := range plan2.Folders {
		if _, out := keptOut[fp.Source]; fp.ToUpload != 0 && !(out && fp.ToUpload == 1) {
			t.Errorf("the second plan wants to upload %d from %s", fp.ToUpload, fp.Source)
		}
	}
	// Delete "my reply" from the server's Sent (on Gmail: the Sent label;
	// All Mail keeps the message).
	sc := be.serverClient()
	if _, err := sc.Select(cs.srvName(cs.sent), nil).Wait(); err != nil {
		t.Fatal(err)
	}
	d, err := sc.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "sent-1@mixed.example"}}}, nil).Wait()
	if err != nil || len(d.AllUIDs()) != 1 {
		t.Fatalf("finding the sent message on the server: %v %v", d, err)
	}
	if err := sc.Store(imap.UIDSetNum(d.AllUIDs()...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if g, ok := cs.srv.(*imapemu.Server); ok && cs.oneMessagePerID {
		if f := g.Folders(t, user, "sent-1@mixed.example"); !slices.Contains(f, "[Gmail]/All Mail") {
			t.Fatalf("the test expects All Mail to keep the message: %v", f)
		}
	}
	for _, content := range []bool{false, true} {
		rep, err := a.Verify(ctx, MigrateOptions{Content: content})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK {
			t.Errorf("verify (content %v) after deleting a sent message: OK", content)
		}
		checkMissing(fmt.Sprintf("verify (content %v) after deleting a sent message", content), rep.Missing,
			MissingMessage{Folder: "Local/Sent", UID: 1, MessageID: "sent-1@mixed.example", Problem: "missing"})
	}
}

// confProviderLimits (Gmail and Microsoft 365): a message above the
// provider's size limit is reported by name and the rest goes on;
// throttling and transient failures are backed off and the migration
// completes; Gmail's daily upload limit stops the run with a reason, and
// the next run does the rest.
func confProviderLimits(t *testing.T, cs *confServer, _ string) {
	var content strings.Builder
	for i := 1; i <= 6; i++ {
		content.WriteString(mboxMsg(i, ""))
		if i == 4 {
			content.WriteString(strings.Repeat("an attachment far too big for the limit\n", 600)) // ~24 KB
		}
	}
	ctx := context.Background()
	srv := cs.newEmu(t, imapemu.Options{Limits: imapemu.Limits{MaxMessageSize: 16 << 10}})
	src, _ := mboxSource(t, content.String())
	be := newBridgeEnv(t, srv, "alice", src)
	o := MigrateOptions{Mapping: map[string]string{"Local/Archive": "INBOX"}}
	plan, err := be.acct.PlanMigration(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// Transient failures: the server sheds load, then throttles.
	unavailable := imapemu.GmailUnavailable
	if cs.name == "m365" {
		unavailable = imapemu.M365ServerUnavailable
	}
	srv.Fail(imapemu.Failure{Command: "APPEND", Times: 2, Response: unavailable})
	srv.Fail(imapemu.Failure{Command: "EXAMINE", Times: 1, Response: throttledText(cs.name)})
	res, err := be.acct.Migrate(ctx, plan, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || len(res.Folders) != 1 {
		t.Fatalf("migrate with a message over the limit: %+v", res)
	}
	f := res.Folders[0]
	if f.Uploaded != 5 || f.Failed != 1 || len(f.Failures) != 1 || f.Failures[0].Subject != "message 4" || !strings.Contains(f.Failures[0].Reason, "TOOBIG") || f.Error != "" {
		t.Errorf("migrate: %+v, want 5 uploaded and message 4 reported as too big", f)
	}
	var want [][]byte
	for _, i := range []int{1, 2, 3, 5, 6} {
		want = append(want, []byte(served(i, "")))
	}
	holds(t, "INBOX", srv.Messages(t, "alice", "INBOX"), want...)

	// Throttling by rate: every command counts; the migration slows down
	// and completes.
	srv.SetLimits(imapemu.Limits{MaxMessageSize: 16 << 10, CommandsPerWindow: 12, Window: time.Second})
	o2 := MigrateOptions{Mapping: map[string]string{"Local/Archive": "Throttled"}}
	plan2, err := be.acct.PlanMigration(ctx, o2)
	if err != nil {
		t.Fatalf("plan under throttling: %v", err)
	}
	res2, err := be.acct.Migrate(ctx, plan2, o2)
	if err != nil {
		t.Fatalf("migrate under throttling: %v", err)
	}
	if f := res2.Folders[0]; f.Uploaded+f.Already != 5 || f.Failed != 1 || f.Error != "" {
		t.Errorf("migrate under throttling: %+v", f)
	}
	srv.SetLimits(imapemu.Limits{MaxMessageSize: 16 << 10})
	holds(t, "Throttled", srv.Messages(t, "alice", "Throttled"), want...)

	if cs.name != "gmail" {
		return
	}
	// Gmail's daily upload limit: the run stops, says why, and records
	// what arrived; the next day's run does the rest.
	today := srv.Usage(t, "alice").UploadedToday // (the runs above)
	srv.SetLimits(imapemu.Limits{MaxMessageSize: 16 << 10, UploadBytesPerDay: today + 600})
	o3 := MigrateOptions{Mapping: map[string]string{"Local/Archive": "Daily"}}
	plan3, err := be.acct.PlanMigration(ctx, o3)
	if err != nil {
		t.Fatal(err)
	}
	res3, err := be.acct.Migrate(ctx, plan3, o3)
	if err != nil {
		t.Fatal(err)
	}
	day1 := srv.Messages(t, "alice", "Daily")
	if res3.Complete || !strings.Contains(res3.Stopped, "daily upload limit") || res3.Folders[0].Uploaded != len(day1) || len(day1) == 0 || len(day1) >= 5 {
		t.Errorf("migrate over the daily limit: %+v, %d messages on the server", res3, len(day1))
	}
	srv.SetLimits(imapemu.Limits{MaxMessageSize: 16 << 10})
	_, res4 := mustMigrate(t, be.acct, o3)
	if f := res4.Folders[0]; f.Uploaded != 5-len(day1) || f.Already != len(day1) || f.Failed != 1 {
		t.Errorf("the next day's migrate: %+v", f)
	}
	holds(t, "Daily", srv.Messages(t, "alice", "Daily"), want...)
}

func throttledText(kind string) string {
	if kind == "m365" {
		return "NO Request is throttled. Suggested Backoff Time: 500 milliseconds"
	}
	return "NO [THROTTLED] Too many commands; try again in 1 seconds. (Failure)"
}

// confAppendSameMessageID: a client saves a new version of a draft (same
// Message-ID, other bytes), as Thunderbird does. Gmail stores one message
// per Message-ID and answers the APPEND with the old one's UID: the bridge
// must never answer with a message whose bytes are not the appended ones
// (the client would then delete the old version, the only copy). Every
// server: either a NO, or a UID whose bytes are the new version.
func confAppendSameMessageID(t *testing.T, cs *confServer, user string) {
	v1 := draft("first words\r\n")
	v2 := draft("first words, and more\r\n")
	cs.srv.Append(t, user, cs.srvName(cs.drafts), v1, []imap.Flag{imap.FlagDraft}, time.Time{})
	be := cs.env(t, user)
	c := be.client(nil)
	old := fetchAll(t, c, cs.drafts)
	if len(old) != 1 {
		t.Fatalf("%s: %d messages", cs.drafts, len(old))
	}
	ad, err := appendMsg(c, cs.drafts, v2)
	if err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || !strings.Contains(ie.Text, "Message-ID") {
			t.Fatalf("APPEND of the new version: %v, want the new message's UID or a NO that explains", err)
		}
		// The old version is still there, untouched.
		holds(t, cs.drafts, sameAsServer(t, be, c, cs, cs.drafts), v1)
		return
	}
	if ad.UID == old[0].UID {
		t.Fatalf("APPEND of the new version answered with the old version's UID %d", ad.UID)
	}
	got := fetchAll(t, c, cs.drafts)
	for _, m := range got {
		if m.UID == ad.UID && !bytes.Equal(m.Body, v2) {
			t.Fatalf("APPENDUID %d names other bytes:\n%q", ad.UID, m.Body)
		}
	}
	deleteUID(t, c, cs.drafts, old[0].UID)
	holds(t, cs.drafts, sameAsServer(t, be, c, cs, cs.drafts), v2)
}

// TestProviderAnswers: how migrate reads the answers the servers of the
// suite really send (testenv's and imapemu's characterisation tests).
func TestProviderAnswers(t *testing.T) {
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, tc := range []struct {
		name                   string
		err                    error
		retry, transient, full bool
	}{
		{"gmail throttled", no("THROTTLED", "Too many commands; try again in 1 seconds. (Failure)"), true, true, false},
		{"gmail unavailable", no(imap.ResponseCodeUnavailable, "Temporary System Problem. Try again later. (Failure)"), true, true, false},
		{"gmail daily limit", no(imap.ResponseCodeOverQuota, "Account exceeded command or bandwidth limits. (Failure)"), false, false, true},
		{"gmail too big", &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig, Text: "Message too large."}, false, false, false},
		{"m365 throttled", no("", "Request is throttled. Suggested Backoff Time: 500 milliseconds"), true, true, false},
		{"m365 unavailable", no("", "Server Unavailable. 15"), true, true, false},
		{"m365 too big", no(imap.ResponseCodeTooBig, "Message size 40000 bytes exceeds the maximum message size of 36700160 bytes."), false, false, false},
		{"dovecot quota", no(imap.ResponseCodeOverQuota, "Quota exceeded (mailbox for user is full)"), false, false, true},
		{"courier quota", no(imap.ResponseCodeAlert, "You exceeded your mail quota."), false, false, true},
		{"cyrus quota", no("", "Over quota"), false, false, true},
		{"refused", no("", "Message contains bare newlines"), false, false, false},
		{"lost connection", &upstream.Error{Kind: upstream.KindDisconnected, Err: io.ErrUnexpectedEOF}, true, true, false},
		{"wrong password", &upstream.Error{Kind: upstream.KindAuth, Err: no(imap.ResponseCodeAuthenticationFailed, "Authentication failed.")}, false, false, false},
		{"name clash", fmt.Errorf("%w: the server already has a folder named %q", ErrPrefixClash, "Local"), true, false, false},
	} {
		if got := retryable(tc.err); got != tc.retry {
			t.Errorf("%s: retryable %v", tc.name, got)
		}
		if got := transient(tc.err); got != tc.transient {
			t.Errorf("%s: transient %v", tc.name, got)
		}
		if got := overQuota(tc.err); got != tc.full {
			t.Errorf("%s: overQuota %v", tc.name, got)
		}
	}
}
