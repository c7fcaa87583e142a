package imapemu

import (
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Microsoft 365 / Outlook.com (Exchange Online) over IMAP, from Microsoft's
// documentation ("Exchange Online limits": 35 MB per message by default,
// IMAP throttling) and widely reported server answers.
//
//   - Folders: INBOX, "Sent Items" (\Sent), "Deleted Items" (\Trash),
//     "Drafts" (\Drafts), "Junk Email" (\Junk), "Archive" (\Archive), plus
//     Exchange's non-mail folders that IMAP lists too (Calendar, Contacts,
//     Conversation History, Journal, Notes, Outbox, Tasks). "/" is the
//     delimiter. The attributes come with every LIST, but SPECIAL-USE is
//     not in CAPABILITY (Exchange does not advertise it).
//   - Capabilities exactly as Exchange Online advertises them, minus its
//     private CLIENTACCESSRULES, CLIENTNETWORKPRESENCELOCATION and
//     BACKENDAUTHENTICATE: IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR
//     UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+. No QUOTA.
//   - Every folder holds its own copies: COPY stores a new message; MOVE
//     and EXPUNGE behave like any ordinary server.
//   - Limits: an APPEND above 35 MB (36700160 bytes) is refused with
//     `NO [TOOBIG] ...` naming both sizes (Microsoft does not document the
//     exact text). Throttling (Limits.CommandsPerWindow, off by default)
//     answers `NO Request is throttled. Suggested Backoff Time: <ms>
//     milliseconds`, Exchange's documented text.

var m365Profile = &profile{
	kind: KindM365,
	folders: []folderDef{
		{"INBOX", roleInbox, "", true},
		{"Archive", roleFolder, imap.MailboxAttrArchive, true},
		{"Calendar", roleFolder, "", true},
		{"Contacts", roleFolder, "", true},
		{"Conversation History", roleFolder, "", true},
		{"Deleted Items", roleFolder, imap.MailboxAttrTrash, true},
		{"Drafts", roleFolder, imap.MailboxAttrDrafts, true},
		{"Journal", roleFolder, "", true},
		{"Junk Email", roleFolder, imap.MailboxAttrJunk, true},
		{"Notes", roleFolder, "", true},
		{"Outbox", roleFolder, "", true},
		{"Sent Items", roleFolder, imap.MailboxAttrSent, true},
		{"Tasks", roleFolder, "", true},
	},
	greeting: "The Microsoft Exchange IMAP4 service is ready. [VABFAFMAVABFAE0AVQBMAEEAVABPAFIA]",
	preCaps:  []string{"IMAP4", "IMAP4rev1", "AUTH=PLAIN", "AUTH=XOAUTH2", "SASL-IR", "UIDPLUS", "ID", "UNSELECT", "CHILDREN", "IDLE", "NAMESPACE", "LITERAL+"},
	postCaps: func(Limits) []string {
		return []string{"IMAP4", "IMAP4rev1", "AUTH=PLAIN", "AUTH=XOAUTH2", "SASL-IR", "UIDPLUS", "MOVE", "ID", "UNSELECT", "CHILDREN", "IDLE", "NAMESPACE", "LITERAL+"}
	},
	innerCaps: imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapMove: {},
		imap.CapChildren: {}, imap.CapLiteralPlus: {},
	},
	id:        `"name" "Microsoft.Exchange.Imap4.Imap4Server" "version" "15.20"`,
	loginOK:   func(string) string { return "LOGIN completed." },
	loginNO:   "NO LOGIN failed.",
	authOK:    "AUTHENTICATE completed.",
	authNO:    "NO AUTHENTICATE failed.",
	oauthJSON: `{"status":"401","schemes":"Bearer","scope":"https://outlook.office365.com/.default"}`,
	logoutBye: "Microsoft Exchange Server IMAP4 server signing off.",
	badCmd:    "BAD Command Error. 10",
	tooBig: func(size, limit int64) error {
		return noErr(fmt.Sprintf("Message size %s exceeds the maximum message size of %s.", sizeText(size), sizeText(limit)), imap.ResponseCodeTooBig)
	},
	storageFull: noErr("Mailbox is full.", imap.ResponseCodeOverQuota),
	uploadLimit: noErr("Upload limit reached.", imap.ResponseCodeLimit),
	throttled: func(backoff time.Duration) string {
		return fmt.Sprintf("NO Request is throttled. Suggested Backoff Time: %d milliseconds", backoff.Milliseconds())
	},
	defaults: Limits{
		MaxMessageSize: 35 << 20,
	},
}

// StartM365 starts a Microsoft 365 emulator on loopback, stopped at
// cleanup. Zero Limits keep Exchange Online's: 35 MB messages, no storage
// or daily limit, no throttling.
func StartM365(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, m365Profile, opts)
}
