package imapemu

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Gmail over IMAP, from Google's documentation ("IMAP extensions",
// "Gmail IMAP: folders and labels", "Bandwidth limits", "Message size
// limits") and widely reported server answers.
//
//   - Labels are folders; "/" is the delimiter; system folders live under
//     the \Noselect "[Gmail]" with SPECIAL-USE attributes on every LIST:
//     All Mail (\All), Drafts, Important, Sent Mail (\Sent), Spam (\Junk),
//     Starred (\Flagged), Trash.
//   - One message, several folders: each label shows it (with its own UID
//     there); [Gmail]/All Mail shows every message not in Trash or Spam;
//     [Gmail]/Starred every \Flagged one. Flags other than \Deleted are the
//     message's, so \Seen set in INBOX shows in All Mail too.
//   - APPEND of a message whose Message-ID the account already has stores
//     nothing: the existing message gets the folder's label and APPENDUID
//     names its UID there. Storage counts each message once.
//   - COPY adds a label; MOVE replaces the source label by the target's
//     (out of All Mail it only adds one); Trash and Spam take every other
//     label away. EXPUNGE (of \Deleted) in a label or INBOX removes only
//     that label, in Starred clears \Flagged, in All Mail moves the message
//     to Trash, and only in Trash or Spam deletes it for good.
//   - QUOTA: GETQUOTAROOT answers root "" with STORAGE in KiB (15 GiB by
//     default).
//   - Limits: APPEND above 35651584 bytes (APPENDLIMIT) is refused with
//     `BAD [TOOBIG] Message too large. ...`; uploads above 500 MB a day with
//     GmailBandwidth; a full account with `NO [OVERQUOTA]`. Throttling
//     (Limits.CommandsPerWindow, off by default) answers
//     `NO [THROTTLED] ...`; Fail injects GmailUnavailable and the like.
//
// Not emulated: X-GM-EXT-1 (X-GM-LABELS, X-GM-MSGID, X-GM-RAW), XLIST,
// CONDSTORE, ESEARCH, COMPRESS, LIST-EXTENDED and LIST-STATUS, which the
// real service also advertises.

var gmailProfile = &profile{
	kind: KindGmail,
	folders: []folderDef{
		{"INBOX", roleInbox, "", true},
		{"[Gmail]", roleNoSelect, "", true},
		{"[Gmail]/All Mail", roleAll, imap.MailboxAttrAll, true},
		{"[Gmail]/Drafts", roleFolder, imap.MailboxAttrDrafts, true},
		{"[Gmail]/Important", roleFolder, imap.MailboxAttrImportant, true},
		{"[Gmail]/Sent Mail", roleFolder, imap.MailboxAttrSent, true},
		{"[Gmail]/Spam", roleSpam, imap.MailboxAttrJunk, true},
		{"[Gmail]/Starred", roleStarred, imap.MailboxAttrFlagged, true},
		{"[Gmail]/Trash", roleTrash, imap.MailboxAttrTrash, true},
	},
	greeting: "Gimap ready for requests from 127.0.0.1 t1emu",
	preCaps:  []string{"IMAP4rev1", "UNSELECT", "IDLE", "NAMESPACE", "QUOTA", "ID", "CHILDREN", "SASL-IR", "AUTH=XOAUTH2", "AUTH=PLAIN", "AUTH=OAUTHBEARER"},
	postCaps: func(l Limits) []string {
		caps := []string{"IMAP4rev1", "UNSELECT", "IDLE", "NAMESPACE", "QUOTA", "ID", "CHILDREN", "UIDPLUS", "ENABLE", "MOVE", "UTF8=ACCEPT", "LITERAL-", "SPECIAL-USE"}
		if l.MaxMessageSize > 0 {
			caps = append(caps, "APPENDLIMIT="+strconv.FormatInt(l.MaxMessageSize, 10))
		}
		return caps
	},
	innerCaps: imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapMove: {},
		imap.CapChildren: {}, imap.CapSpecialUse: {},
	},
	id:        `"name" "GImap" "vendor" "Google, Inc." "support-url" "https://support.google.com/mail"`,
	loginOK:   func(user string) string { return user + " authenticated (Success)" },
	loginNO:   "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
	authOK:    "Success",
	authNO:    "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
	oauthJSON: `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`,
	logoutBye: "LOGOUT Requested",
	badCmd:    "BAD Unknown command",
	quota:     true,
	tooBig: func(size, limit int64) error {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig,
			Text: "Message too large. https://support.google.com/mail/answer/6584#limit"}
	},
	storageFull: noErr("Account is over quota. (Failure)", imap.ResponseCodeOverQuota),
	uploadLimit: noErr("Account exceeded command or bandwidth limits. (Failure)", imap.ResponseCodeOverQuota),
	throttled: func(backoff time.Duration) string {
		return fmt.Sprintf("NO [THROTTLED] Too many commands; try again in %d seconds. (Failure)", int(backoff.Seconds()+0.999))
	},
	defaults: Limits{
		MaxMessageSize:    35651584,
		StorageBytes:      15 << 30,
		UploadBytesPerDay: 500_000_000,
	},
}

// StartGmail starts a Gmail emulator on loopback, stopped at cleanup.
// Zero Limits keep Gmail's: 35651584-byte messages, 15 GiB of storage,
// 500 MB of uploads a day, no throttling.
func StartGmail(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, gmailProfile, opts)
}
