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
//   - Post-auth the wrapper follows command boundaries in the client stream
//     (lines, {n} and {n+} literals, the line after IDLE) and answers ID,
//     CAPABILITY, LOGIN and AUTHENTICATE itself, so credentials never reach
//     the inner server and ID works after login too. A synchronising literal
//     the inner server refuses (its answer is not a "+" continuation) is not
//     sent by the client, which the tracker learns from the server's writes.
//   - Credentials never reach a log or the DebugWriter trace: LOGIN and
//     AUTHENTICATE commands and SASL responses are traced as "[redacted]".
package server
