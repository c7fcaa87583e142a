// Package imapemu emulates the IMAP services of Gmail and Microsoft 365
// (Exchange Online) on loopback, for tests: real IMAP servers, written from
// the providers' public documentation and the answers their servers are
// widely reported to send, that behave the way a bridge meets them in the
// field. They satisfy testenv.Server, so the same conformance tests run
// against them, Dovecot, Courier and Cyrus.
//
//	g := imapemu.StartGmail(t, imapemu.Options{})  // alice / alice-pw, token alice-token
//	m := imapemu.StartM365(t, imapemu.Options{Limits: imapemu.Limits{MaxMessageSize: 64 << 10}})
//	g.Append(t, "alice", "[Gmail]/Sent Mail", msg, nil, time.Time{})
//	g.Folders(t, "alice", "id@example.org")  // [INBOX [Gmail]/All Mail [Gmail]/Sent Mail]
//	m.Fail(imapemu.Failure{Command: "APPEND", Response: imapemu.M365ServerUnavailable})
//
// What each provider does is documented in gmail.go and m365.go: folder
// names and SPECIAL-USE attributes, Gmail's labels (one message in several
// folders, All Mail, dedup of APPEND by Message-ID, per-folder EXPUNGE
// rules), Exchange's independent copies, capabilities, greetings, login
// and error texts, QUOTA (Gmail only), per-message size limits, Gmail's
// daily upload limit and storage quota, throttling. Limits are configurable
// (Options.Limits, SetLimits) and run on a settable clock (Options.Now), so
// a test reaches them with a few small messages; Fail injects transient
// failures (GmailUnavailable, M365ServerUnavailable, or any answer).
// Helpers read the state without IMAP: Usage (storage, uploads, message
// count) and Folders (where a Message-ID shows).
//
// Implementation notes:
//
//   - go-imap v2's imapserver runs each authenticated session with our
//     Session (session.go) over one account store per user (account.go).
//     A message is shared by every mailbox that shows it; each membership
//     (entry) has its own UID there, assigned when the message joins and
//     never reused. reconcile applies the provider's rules after every
//     change and feeds imapserver's MailboxTrackers, so every session gets
//     EXISTS, EXPUNGE and FETCH FLAGS updates in order; IDLE waits on an
//     account-wide change signal, not on SessionTracker.Idle, which misses
//     updates queued between SELECT and IDLE.
//   - UID "n:*" resolves "*" to the highest UID in use, so it returns the
//     last message even when n is above it (RFC 3501 6.4.8); imapmemserver
//     gets this wrong.
//   - The front door (front.go) owns the NOT-AUTHENTICATED state and, after
//     login, answers CAPABILITY, ID and QUOTA itself and applies throttling
//     and injected failures, following command boundaries (literals, IDLE)
//     in the client's stream; imapserver never sees credentials.
//   - Not emulated: Gmail's X-GM-EXT-1 (X-GM-LABELS, X-GM-MSGID, X-GM-RAW),
//     XLIST, CONDSTORE, ESEARCH, COMPRESS, LIST-EXTENDED/LIST-STATUS
//     advertisement; Exchange's non-mail folder semantics (Calendar etc.
//     are plain empty folders here) and its per-connection limits; STARTTLS
//     (Options.TLS gives implicit TLS like both providers' port 993).
//
// Two behaviours of go-imap's client (v2.0.0-beta.8) the tests pin down,
// because the bridge's upstream code uses that client: it closes its
// connection when a server refuses a synchronising literal with a tagged NO
// instead of "+" (TestGoIMAPClientDropsOnRefusedLiteral), and it drops the
// answer to "UID FETCH n:*" when the server (correctly) returns a message
// with a UID below n (TestTLSAndSearch shows the wire).
package imapemu
