package backend

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

var (
	namesSlash = srvNames{Delim: '/'}                   // Dovecot, Gmail, Exchange
	namesNoDot = srvNames{Delim: '/', NoDot: true}      // Dovecot's Maildir++ layout
	namesDot   = srvNames{Prefix: "INBOX.", Delim: '.'} // Courier, Cyrus
)

// TestServerNames: how the bridge's names map to each kind of server's
// and back (names.go's package notes).
func TestServerNames(t *testing.T) {
	for _, tc := range []struct {
		n              srvNames
		bridge, server string
	}{
		{namesSlash, "INBOX", "INBOX"},
		{namesSlash, "Sent", "Sent"},
		{namesSlash, "Projects/2019", "Projects/2019"},
		{namesSlash, "Projects/v1.2", "Projects/v1.2"},
		{namesSlash, "[Gmail]/Sent Mail", "[Gmail]/Sent Mail"},
		{namesSlash, "INBOX/Sub", "INBOX/Sub"},
		{namesSlash, "送信済み/日本語", "送信済み/日本語"},
		{namesNoDot, "Projects/v1.2", "Projects/v1．2"},
		{namesNoDot, "a.b.c", "a．b．c"},
		{namesNoDot, "INBOX", "INBOX"},
		{namesDot, "INBOX", "INBOX"},
		{namesDot, "Sent", "INBOX.Sent"},
		{namesDot, "Sent/2019", "INBOX.Sent.2019"},
		{namesDot, "Projects/v1.2", "INBOX.Projects.v1．2"},
		{namesDot, "a／b", "INBOX.a/b"},
		{namesDot, "Projects/日本語", "INBOX.Projects.日本語"},
		{namesDot, "INBOX/Inbox", "INBOX.Inbox"},
		{namesDot, "INBOX/inbox/x", "INBOX.inbox.x"},
	} {
		if got := tc.n.toServer(tc.bridge); got != tc.server {
			t.Errorf("%+v: toServer(%q) = %q, want %q", tc.n, tc.bridge, got, tc.server)
		}
		got, ok := tc.n.toBridge(tc.server)
		if !ok || got != tc.bridge {
			t.Errorf("%+v: toBridge(%q) = %q %v, want %q", tc.n, tc.server, got, ok, tc.bridge)
		}
	}
	// One way only.
	for _, tc := range []struct {
		n              srvNames
		server, bridge string
		ok             bool
	}{
		{namesDot, "inbox", "INBOX", true},
		{namesDot, "inbox.Sent", "Sent", true}, // the prefix in any case
		{namesDot, "#shared.team", "", false},  // another namespace
		{namesDot, "shared.team", "", false},   // Courier's other shared prefix
		{namesDot, "user.bob.Sent", "", false}, // Cyrus: another user
		{namesDot, "INBOX.", "", false},        // the prefix alone
		{namesSlash, "inbox/Sub", "INBOX/Sub", true},
	} {
		got, ok := tc.n.toBridge(tc.server)
		if ok != tc.ok || got != tc.bridge {
			t.Errorf("%+v: toBridge(%q) = %q %v, want %q %v", tc.n, tc.server, got, ok, tc.bridge, tc.ok)
		}
	}
	// "INBOX/X" is accepted for the prefix's "X" (and shown as "X").
	if got := namesDot.toServer("INBOX/Sent"); got != "INBOX.Sent" {
		t.Errorf("toServer(INBOX/Sent) = %q", got)
	}
}

// FuzzServerNames: every bridge name a client can create survives the
// way to each kind of server and back, and every server name in the
// personal namespace the way to the bridge and back, so that no two
// folders share a name on either side.
func FuzzServerNames(f *testing.F) {
	for _, s := range []string{"Sent", "Projects/v1.2", "a／b", "INBOX/Inbox", "Inbox", "日本語/下書き", "a.b/c.d", "x/INBOX"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !utf8.ValidString(name) || strings.ContainsAny(name, "．／\x00\r\n") {
			return // full-width delimiters are the escapes themselves
		}
		for _, n := range []srvNames{namesSlash, namesNoDot, namesDot} {
			// Bridge → server → bridge, for names a client can create:
			// non-empty levels, INBOX spelled as the bridge spells it.
			// ("INBOX/X" on an "INBOX." server is the server's "INBOX.X",
			// shown as "X", by design; "INBOX/Inbox" keeps its name.)
			alias := n.inboxPrefix() && strings.HasPrefix(name, "INBOX/") && !strings.HasPrefix(strings.ToUpper(name), "INBOX/INBOX")
			if validBridgeName(name) && !alias {
				srv := n.toServer(name)
				back, ok := n.toBridge(srv)
				if !ok || back != name {
					t.Errorf("%+v: %q → server %q → %q %v", n, name, srv, back, ok)
				}
			}
			// Server → bridge → server, for names in the namespace.
			srv := n.Prefix + name
			if n.NoDot {
				srv = n.Prefix + strings.ReplaceAll(name, ".", "．")
			}
			if !validServerName(n, srv) {
				continue
			}
			b, ok := n.toBridge(srv)
			if !ok {
				t.Errorf("%+v: %q is not mirrored", n, srv)
				continue
			}
			if again := n.toServer(b); again != srv {
				t.Errorf("%+v: server %q → %q → server %q", n, srv, b, again)
			}
		}
	})
}

// validBridgeName: what the bridge's front door lets a client name a
// folder: non-empty levels; a leading INBOX level spelled "INBOX"
// (normName makes it so).
func validBridgeName(name string) bool {
	if name == "" || normName(name) != name {
		return false
	}
	for _, l := range strings.Split(name, "/") {
		if l == "" {
			return false
		}
	}
	if strings.EqualFold(name, "INBOX") {
		return name == "INBOX"
	}
	return true
}

// validServerName: a name a server can have below its prefix: non-empty
// levels, INBOX itself spelled "INBOX" (servers treat it as INBOX).
func validServerName(n srvNames, srv string) bool {
	rest := strings.TrimPrefix(srv, n.Prefix)
	if rest == "" || strings.EqualFold(srv, "INBOX") {
		return false
	}
	for _, l := range strings.Split(rest, string(n.Delim)) {
		if l == "" {
			return false
		}
	}
	if n.Prefix == "" {
		// Without a prefix, "inbox/x" is INBOX's child, spelled by the
		// bridge as "INBOX/x".
		first, _, _ := strings.Cut(rest, "/")
		return !strings.EqualFold(first, "INBOX") || first == "INBOX"
	}
	return true
}

// TestNoDotRetry: only a refusal of the name itself makes the bridge try
// "．" on a '/' server.
func TestNoDotRetry(t *testing.T) {
	a := &Account{srvNaming: &srvNames{Delim: '/'}}
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, tc := range []struct {
		err   error
		name  string
		retry bool
	}{
		{no(imap.ResponseCodeCannot, "Character not allowed in mailbox name: '.' (0.001 + 0.000 secs)."), "v1.2", true},
		{no("", "Invalid mailbox name"), "v1.2", true},
		{no(imap.ResponseCodeCannot, "Character not allowed in mailbox name: '.'"), "v12", false},
		{no(imap.ResponseCodeAlreadyExists, "Mailbox already exists"), "v1.2", false},
		{no("", "Mailbox already exists"), "v1.2", false},
		{no(imap.ResponseCodeNoPerm, "Permission denied"), "v1.2", false},
		{no(imap.ResponseCodeOverQuota, "Too many mailboxes"), "v1.2", false},
	} {
		if _, got := a.noDotRetry(tc.err, tc.name); got != tc.retry {
			t.Errorf("%v for %q: retry %v", tc.err, tc.name, got)
		}
	}
	a.srvNaming = &srvNames{Prefix: "INBOX.", Delim: '.'}
	if _, got := a.noDotRetry(no(imap.ResponseCodeCannot, "Invalid mailbox name"), "v1.2"); got {
		t.Error("retry on a '.' server, which escapes '.' anyway")
	}
}
