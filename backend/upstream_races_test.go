package backend

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/imapemu"
	"github.com/popbridge/popbridge/internal/testenv"
)

// TestUnsolicitedFetch: a server may report a flag change by another
// client with a FETCH response at any time, also in the middle of the
// bridge's own FETCH (RFC 3501 7.4.2); imapclient takes the first response
// for a message as the answer. With a server that always does so
// (imapemu FlagsFirst), the mirror still holds every message with its own
// INTERNALDATE, size and flags; a drag is recorded as the server has it;
// migrate and verify (both the default and -content) find every message.
// Seen as a flake before: a message moved between server folders showed
// a 1970 date.
func TestUnsolicitedFetch(t *testing.T) {
	for _, kind := range []string{"gmail", "m365"} {
		t.Run(kind, func(t *testing.T) {
			var srv testenv.Server
			if kind == "gmail" {
				srv = imapemu.StartGmail(t, imapemu.Options{FlagsFirst: everyUID})
			} else {
				srv = imapemu.StartM365(t, imapemu.Options{FlagsFirst: everyUID})
			}
			const user = "alice"
			base := time.Date(2019, 4, 5, 6, 7, 8, 0, time.UTC)
			for i := 1; i <= 5; i++ {
				var flags []imap.Flag
				if i%2 == 0 {
					flags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered}
				}
				srv.Append(t, user, "INBOX", confMsg(fmt.Sprintf("unsolicited-%d", i), "body "+kind), flags, base.Add(time.Duration(i)*time.Hour))
			}
			src, _ := mboxSource(t, mbox(1, 2, 3))
			be := newBridgeEnv(t, srv, user, src)
			c := be.client(nil)

			same := func(when, folder string) {
				t.Helper()
				want := srv.Messages(t, user, folder)
				got := fetchAll(t, c, folder)
				if len(got) != len(want) {
					t.Fatalf("%s: the bridge shows %d messages in %s, the server has %d", when, len(got), folder, len(want))
				}
				for i := range want {
					g, w := got[i], want[i]
					if g.UID != w.UID || !bytes.Equal(g.Body, w.Body) || g.Size != int64(len(w.Body)) ||
						fmt.Sprint(sortedFlags(g.Flags)) != fmt.Sprint(sortedFlags(w.Flags)) || !g.Date.Equal(w.InternalDate) {
						t.Errorf("%s: %s UID %d: bridge size %d flags %v date %v; server UID %d size %d flags %v date %v",
							when, folder, g.UID, g.Size, g.Flags, g.Date, w.UID, len(w.Body), w.Flags, w.InternalDate)
					}
				}
			}
			same("first sync", "INBOX")

			// A server-side move (the mirror syncs the target at once).
			if err := c.Create("Projects", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			selectOK(t, c, "INBOX")
			moveOK(t, c, imap.UIDSetNum(2), "Projects")
			same("after a move", "Projects")
			same("after a move", "INBOX")

			// A drag of legacy mail, recorded from what was sent.
			selectOK(t, c, "Local/Archive")
			if _, err := c.Copy(imap.UIDSetNum(1, 2), "Projects").Wait(); err != nil {
				t.Fatal(err)
			}
			same("after a drag", "Projects")

			// Migrate the rest, then verify reads the server fresh.
			_, res := mustMigrate(t, be.acct, MigrateOptions{Folders: []string{"Local/Archive"}, Mapping: map[string]string{"Local/Archive": "Projects"}})
			if !res.Complete {
				t.Fatalf("migrate: %+v", res)
			}
			same("after migrate", "Projects")
			for _, content := range []bool{false, true} {
				rep, err := be.acct.Verify(context.Background(), MigrateOptions{Folders: []string{"Local/Archive"}, Mapping: map[string]string{"Local/Archive": "Projects"}, Content: content})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK || len(rep.Folders) != 1 || rep.Folders[0].InScope != 3 || rep.Folders[0].Present != 3 || len(rep.Missing) != 0 {
					t.Errorf("verify (content %v): %+v", content, rep)
				}
			}
		})
	}
}

func everyUID(imap.UID) bool { return true }

// TestUnsolicitedFetchInBigSync: a first sync that commits in chunks and
// meets an unsolicited FETCH for one message still commits the chunks
// below that message as it goes (memory stays bounded) and ends with every
// message as the server has it; so does a restart after it.
func TestUnsolicitedFetchInBigSync(t *testing.T) {
	old := syncChunk
	syncChunk = 3
	t.Cleanup(func() { syncChunk = old })
	for _, odd := range []imap.UID{1, 5, 12} {
		t.Run(fmt.Sprint("UID ", odd), func(t *testing.T) {
			srv := imapemu.StartM365(t, imapemu.Options{FlagsFirst: func(u imap.UID) bool { return u == odd }})
			base := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			for i := 1; i <= 12; i++ {
				srv.Append(t, "alice", "INBOX", confMsg(fmt.Sprintf("big-%d", i), "body"), nil, base.Add(time.Duration(i)*time.Minute))
			}
			be := newBridgeEnv(t, srv, "alice")
			check := func(when string) {
				t.Helper()
				want := srv.Messages(t, "alice", "INBOX")
				got := fetchAll(t, be.client(nil), "INBOX")
				if len(got) != len(want) {
					t.Fatalf("%s: the bridge shows %d messages, the server has %d", when, len(got), len(want))
				}
				for i := range want {
					if got[i].UID != want[i].UID || !bytes.Equal(got[i].Body, want[i].Body) || !got[i].Date.Equal(want[i].InternalDate) || got[i].Size != int64(len(want[i].Body)) {
						t.Errorf("%s: UID %d: bridge size %d date %v; server UID %d size %d date %v", when, got[i].UID, got[i].Size, got[i].Date, want[i].UID, len(want[i].Body), want[i].InternalDate)
					}
				}
			}
			check("first sync")
			be.restart()
			check("after a restart")
		})
	}
}

// TestCreateWhileListing: a folder a client creates is there at once, also
// while the bridge re-reads the server's folder list in the background (a
// LIST answered before the CREATE and applied after it dropped the new
// folder: the client's next MOVE into it failed with TRYCREATE).
func TestCreateWhileListing(t *testing.T) {
	srv := imapemu.StartM365(t, imapemu.Options{})
	be := newBridgeEnv(t, srv, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = be.acct.SyncFolders(ctx)
		}
	}()
	defer func() { cancel(); <-done }()
	c := be.client(nil)
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("New %d", i)
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select(name, nil).Wait(); err != nil {
			t.Fatalf("SELECT %q right after its CREATE: %v", name, err)
		}
	}
}

// TestMessageIDRounds: a message goes in the round after the last earlier
// one with its Message-ID; order within a round is archive order.
func TestMessageIDRounds(t *testing.T) {
	msg := func(id string) uploadItem {
		h := "Subject: x\r\n"
		if id != "" {
			h += "Message-ID: <" + id + ">\r\n"
		}
		return uploadItem{body: []byte(h + "\r\nbody\r\n")}
	}
	items := []uploadItem{msg("a@x"), msg(""), msg("b@x"), msg("a@x"), msg(""), msg("a@x"), msg("b@x"), msg("c@x")}
	got := messageIDRounds(items, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if fmt.Sprint(got) != "[[0 1 2 4 7] [3 6] [5]]" {
		t.Errorf("rounds %v", got)
	}
	if got := messageIDRounds(items, []int{5}); fmt.Sprint(got) != "[[5]]" {
		t.Errorf("one message: %v", got)
	}
}
