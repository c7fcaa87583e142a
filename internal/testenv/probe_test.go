package testenv

import (
	"os"
	"strings"
	"testing"
)

// TestProbeTranscripts records what real servers answer to the commands a
// bridge depends on. Run with POPBRIDGE_PROBE=1 -v to print the
// transcripts; the assertions about each server live in its own test.
func TestProbeTranscripts(t *testing.T) {
	if os.Getenv("POPBRIDGE_PROBE") == "" {
		t.Skip("set POPBRIDGE_PROBE=1 to print server transcripts")
	}
	cmds := []string{
		"CAPABILITY", "NAMESPACE", `LIST "" "*"`, `LIST "" "%"`, `LIST "" "INBOX.%"`, `LSUB "" "*"`,
		`LIST (SPECIAL-USE) "" "*"`, `LIST "" "*" RETURN (SPECIAL-USE)`, "XLIST \"\" \"*\"",
		"GETQUOTAROOT INBOX", `ID ("name" "probe")`,
		`CREATE "INBOX.a.b"`, `CREATE "INBOX.&MAFP4TDIMKIw5A-"`, `CREATE "INBOX.x/y"`, `CREATE "Top"`, `CREATE "INBOX."`,
		`LIST "" "*"`, `RENAME "INBOX.a" "INBOX.c"`, `LIST "" "*"`, `DELETE "INBOX.c"`, `LIST "" "*"`,
		"APPEND INBOX", // a bare-LF message, see below
		"APPEND INBOX.Sent (\\Seen) \"02-Jan-2006 15:04:05 +0000\"",
		"SELECT inbox", "UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])", "UID FETCH 100:* (UID)", "UID SEARCH ALL",
		`UID SEARCH HEADER Message-ID "<x@y>"`, `STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)`,
		"SELECT INBOX.Sent", "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)", "UID FETCH 100:* (UID)", "UID COPY 1 INBOX.Trash", "UID MOVE 1 INBOX.Trash", "UID STORE 1 +FLAGS (\\Deleted)", "UID EXPUNGE 1", "UNSELECT", "LOGOUT",
	}
	probe := func(t *testing.T, s Server, user string) {
		r := DialRaw(t, s.IMAPAddr())
		r.Login(user, s.Password(t, user))
		for _, cmd := range cmds {
			switch {
			case cmd == "APPEND INBOX":
				r.CmdLit(cmd, []byte("Subject: lf\n\nbare LF\n"))
			case strings.HasPrefix(cmd, "APPEND"):
				r.CmdLit(cmd, testMsg("probe", 0))
			default:
				r.Cmd("%s", cmd)
			}
		}
		t.Logf("%s transcript:\nS: %s\n%s", s.Kind(), r.Greeting, r.Transcript())
	}
	t.Run("courier", func(t *testing.T) {
		c := StartCourier(t, CourierOptions{Folders: []string{"Sent", "Trash"}})
		probe(t, c, "alice")
	})
	t.Run("cyrus", func(t *testing.T) {
		c := StartCyrus(t, CyrusOptions{Folders: []string{"Sent", "Trash"}})
		probe(t, c, "alice")
	})
}
