// Package testenv is test support shared by the whole module: it starts
// real IMAP servers privately on loopback — Dovecot, Courier-IMAP and Cyrus
// IMAP — and drives the third-party client mbsync. The provider emulators
// (Gmail, Microsoft 365) live in internal/imapemu; they and the servers
// here all satisfy Server, so one conformance test can run against each.
//
//	d := testenv.StartDovecot(t, testenv.DovecotOptions{})  // "" + '/'
//	c := testenv.StartCourier(t, testenv.CourierOptions{Folders: []string{"Sent", "Trash"}})
//	y := testenv.StartCyrus(t, testenv.CyrusOptions{Folders: []string{"Sent"}, SpecialUse: true})
//	for _, s := range []testenv.Server{d, c, y} {
//		s.Append(t, "alice", s.PersonalNamespace().Prefix+"Sent", msg, nil, time.Time{})
//	}
//
// Helpers shared by all of them: Login (a logged-in go-imap client),
// AppendMessage, MailboxMessages (bytes, flags and dates exactly as
// fetched) and Raw, a line-level client for asserting a server's exact
// answers where go-imap's client would parse (or refuse) them.
//
// Every server runs from its own short directory under /tmp (Dir), on ports
// picked free on 127.0.0.1 (a lost bind race is detected and retried with
// new ports), is ready when it answers with its own greeting, and is
// stopped at cleanup with SIGKILL to its process group (Stop does the same
// mid-test, like a crash; Restart brings it back on the same port with the
// same mail). Nothing outside Dir and the package cache below is written;
// system configuration under /etc is never read.
//
// # What must be installed
//
// scripts/test.sh installs everything on a fresh Debian or Ubuntu machine.
// When something is missing a test is skipped, or fails under CI=true, with
// a message naming the Debian package:
//
//   - Dovecot: dovecot-imapd dovecot-pop3d.
//   - Courier-IMAP: courier-base courier-authdaemon courier-authlib-userdb,
//     and unshare (util-linux).
//   - Cyrus IMAP: cyrus-common sasl2-bin.
//   - mbsync: isync.
//
// # Courier and Cyrus without installing them
//
// Debian's courier-imap and cyrus-imapd conflict with dovecot-imapd (each
// Provides and Conflicts imap-server), so they are never installed. The
// first test that needs one runs `apt-get download <pkg>=<version>` (the
// version that goes with the installed courier-base or cyrus-common) and
// `dpkg-deb -x` into a cache shared by all test processes of the machine:
// $POPBRIDGE_TESTENV_CACHE, else /var/cache/popbridge-testenv as root,
// else the user's cache directory (~/.cache/popbridge-testenv). A lock file
// serialises concurrent test processes and the tree appears by an atomic
// rename. A fresh machine therefore needs the apt package lists and network
// access to a Debian mirror once; later runs work offline.
//
// Courier's authentication library has its paths compiled in, so each
// Courier runs in a private mount namespace (see courier.go); this needs
// root, or unprivileged user namespaces for a normal user.
//
// # Observed server behaviour
//
// The tests TestCourier and TestCyrus pin down, against the real binaries,
// what a bridge must cope with: Courier's and Cyrus's personal namespace
// "INBOX." with '.', Courier's missing MOVE, SPECIAL-USE, UNSELECT and ID,
// its non-RFC `* QUOTA "ROOT"` without a resource list (go-imap's client
// drops the connection on it), its `NO [ALERT] You exceeded your mail
// quota.`, Cyrus's plain `NO Over quota` and its refusal of bare-LF
// messages, and more (each server's test file says what). Run
//
//	POPBRIDGE_PROBE=1 go test ./internal/testenv -run TestProbeTranscripts -v
//
// to print both servers' full answers to the commands a bridge uses.
package testenv
