// Package server is popbridge's IMAP front door: listeners, TLS,
// authentication and the hand-off of authenticated connections to go-imap
// v2's imapserver.
//
// Implementation notes:
//
//   - The NOT-AUTHENTICATED state (RFC 3501 section 6.1-6.2) is ours, not
//     imapserver's. Stock imapserver disconnects on the first unknown command
//     before login (macOS Mail sends ID before LOGIN), has one global
//     InsecureAuth switch and no ID (RFC 2971). Before authentication only
//     CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE (PLAIN
//     and LOGIN, with SASL-IR, RFC 4959) work; everything else gets a tagged
//     BAD and the connection stays open. Ten BAD answers in a row, or a
//     line that looks like HTTP or SMTP, end the connection (cross-protocol
//     protection).
//   - Plaintext LOGIN/AUTHENTICATE is allowed only over TLS or from
//     Options.TrustedNets; elsewhere CAPABILITY shows LOGINDISABLED
//     (RFC 3501 section 6.2.3) and LOGIN answers NO [PRIVACYREQUIRED]
//     (RFC 5530) until STARTTLS.
//   - STARTTLS: bytes the client pipelined after the STARTTLS command are
//     never carried into the TLS session (CVE-2011-0411 class); the
//     connection is closed instead.
//   - After authentication the net.Conn is wrapped and fed through an
//     in-memory listener to an inner imapserver.Server whose NewSession
//     returns the backend session with PREAUTH. The wrapper turns the inner
//     server's "* PREAUTH [CAPABILITY ...]" greeting into the tagged
//     "OK [CAPABILITY ...] Logged in" answer of the LOGIN command, so the
//     capability list is exactly what the inner server advertises.
//   - Post-auth the wrapper is a gate (gate.go): it reads every command
//     whole (lines and literals; APPEND's message is streamed), answers ID,
//     CAPABILITY, LOGIN and AUTHENTICATE itself, so credentials never reach
//     the inner server and ID works after login too, and answers BAD to
//     what imapserver would turn into [SERVERBUG] or a dropped connection
//     (malformed sequence sets, mailbox names and LIST patterns that are
//     not modified UTF-7, bad dates, unknown SEARCH keys, lines without a
//     tag or command name, unknown commands). The rest is handed over one
//     line or literal at a time with its literals made non-synchronising;
//     when the inner server answers a command before reading all of it,
//     the rest is skipped, so client and server never lose step. A
//     [SERVERBUG] the inner parser still gives becomes BAD. No input after
//     login ends the connection except LOGOUT (FuzzPostAuth).
//   - The session is wrapped (guard.go): backend errors that are not
//     *imap.Error become NO [SERVERBUG] with our text and are logged, Poll
//     never fails, LIST patterns with more than 5 wildcards are refused
//     (imapserver.MatchList is exponential in them), and SEARCHRES is
//     completed (RETURN (SAVE) alone answers no ESEARCH, SAVE with MIN/MAX
//     saves only those, UID EXPUNGE $).
//   - Successful password checks are remembered for 5 minutes, keyed by an
//     HMAC (random per-process key) of user and password and tied to the
//     bcrypt hash they were checked against (credcache.go): reconnecting
//     clients cost no bcrypt. Failures are never cached and keep their
//     delay; unknown users still cost a dummy comparison; SetUsers (a
//     changed password) empties the cache.
//   - Credentials never reach a log or the DebugWriter trace: LOGIN and
//     AUTHENTICATE commands and SASL responses are traced as "[redacted]".
package server
