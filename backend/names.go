package backend

// Upstream folder names. Clients of the bridge see one hierarchy with "/"
// as the delimiter; servers differ (issue J):
//
//   - Dovecot, Gmail, Exchange: personal namespace "" with "/". Names are
//     the same on both sides.
//   - Courier and Cyrus (Debian's defaults, most rental servers): personal
//     namespace "INBOX." with ".". The server's "INBOX.Sent" is shown as
//     "Sent" and "INBOX.Sent.2019" as "Sent/2019", as most clients show
//     them; "INBOX" stays "INBOX". A bridge name "INBOX/X" is also
//     accepted and means the server's "INBOX.X" (shown as "X").
//   - Folders outside the personal namespace (Courier's "#shared.",
//     Cyrus's "user.bob") are not mirrored.
//
// A folder level cannot contain the other side's delimiter literally, so
// each side's delimiter inside a level is written as its full-width form
// on the other: a server level "a/b" (possible with ".") is shown as
// "a／b", and a bridge level "v1.2" (a Thunderbird folder migrated to a
// "." server) is created as "v1．2". The mapping is one-to-one, so every
// name survives the round trip.
//
// Some servers with "/" as their delimiter still refuse "." in a name:
// Dovecot with its default Maildir++ layout keeps folders as ".a.b"
// directories and answers CREATE "v1.2" with "Character not allowed in
// mailbox name: '.'". The first such refusal is answered by trying the
// name with "．" (createOnServer): when the server takes that, the bridge
// writes "." full-width on that server from then on (srvNames.NoDot, kept
// in the store), exactly as on a "." server.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/store"
)

// srvNames translates between bridge and server folder names.
type srvNames struct {
	Prefix string `json:"prefix"` // personal namespace prefix, e.g. "INBOX."
	Delim  rune   `json:"delim"`  // the server's hierarchy delimiter; 0 = flat
	// NoDot: the server refuses "." in a name although its delimiter is
	// "/" (learned from a refused CREATE): "." is written "．" there.
	NoDot bool `json:"no_dot,omitempty"`
}

// defaultNames is what a server without NAMESPACE and "/" looks like.
var defaultNames = srvNames{Delim: '/'}

// fullWidth is the full-width form of an ASCII punctuation character.
func fullWidth(r rune) rune {
	if r > ' ' && r <= '~' {
		return r + 0xFEE0
	}
	return r
}

// toBridge maps a server name to the bridge's; ok is false for a folder
// outside the personal namespace (not mirrored).
func (n srvNames) toBridge(server string) (string, bool) {
	if strings.EqualFold(server, "INBOX") {
		return "INBOX", true
	}
	rest := server
	if n.Prefix != "" {
		if len(server) <= len(n.Prefix) || !strings.EqualFold(server[:len(n.Prefix)], n.Prefix) {
			return "", false
		}
		rest = server[len(n.Prefix):]
	}
	var levels []string
	if n.Delim == 0 || n.Delim == '/' {
		if n.NoDot {
			rest = strings.ReplaceAll(rest, string(fullWidth('.')), ".")
		}
		levels = strings.Split(rest, "/")
	} else {
		levels = strings.Split(rest, string(n.Delim))
		for i, l := range levels {
			l = strings.ReplaceAll(l, "/", string(fullWidth('/')))
			levels[i] = strings.ReplaceAll(l, string(fullWidth(n.Delim)), string(n.Delim))
		}
	}
	if n.inboxPrefix() && strings.EqualFold(levels[0], "INBOX") {
		// A folder named "Inbox" below the prefix ("INBOX.Inbox") is not
		// INBOX: it is shown below it ("INBOX/Inbox"), as toServer maps
		// "INBOX/X" to the prefix's "X".
		return "INBOX/" + strings.Join(levels, "/"), true
	}
	return canonInbox(strings.Join(levels, "/")), true
}

// inboxPrefix reports a personal namespace below INBOX ("INBOX." on
// Courier and Cyrus): INBOX's children are the namespace's folders.
func (n srvNames) inboxPrefix() bool {
	return n.Delim != 0 && strings.EqualFold(n.Prefix, "INBOX"+string(n.Delim))
}

// toServer maps a bridge name to the server's.
func (n srvNames) toServer(bridge string) string {
	if bridge == "INBOX" {
		return "INBOX"
	}
	levels := strings.Split(bridge, "/")
	if len(levels) > 1 && levels[0] == "INBOX" && n.inboxPrefix() {
		levels = levels[1:] // "INBOX/X" is the server's "INBOX.X"
	}
	if n.Delim == 0 || n.Delim == '/' {
		name := strings.Join(levels, "/")
		if n.NoDot {
			name = strings.ReplaceAll(name, ".", string(fullWidth('.')))
		}
		return n.Prefix + name
	}
	for i, l := range levels {
		l = strings.ReplaceAll(l, string(n.Delim), string(fullWidth(n.Delim)))
		levels[i] = strings.ReplaceAll(l, string(fullWidth('/')), "/")
	}
	return n.Prefix + strings.Join(levels, string(n.Delim))
}

const namesKey = "upstream/names"

// names returns the server's naming, as last learned (kept in the store
// so that it is known before the first folder sync after a restart).
func (a *Account) names() srvNames {
	a.namesMu.Lock()
	defer a.namesMu.Unlock()
	if a.srvNaming != nil {
		return *a.srvNaming
	}
	n := defaultNames
	_ = a.db.View(func(tx *store.Tx) error {
		if v := tx.Get(namesKey); v != nil {
			_ = json.Unmarshal(v, &n)
		}
		return nil
	})
	a.srvNaming = &n
	return n
}

// learnNames asks the server for its personal namespace (RFC 2342); a
// server without NAMESPACE whose folders all live below "INBOX<delim>" is
// taken to have that prefix.
func (a *Account) learnNames(ctx context.Context, c *imapclient.Client, list []*imap.ListData) srvNames {
	n := defaultNames
	got := false
	if c.Caps().Has(imap.CapNamespace) {
		if ns, err := c.Namespace().Wait(); err == nil && ns != nil && len(ns.Personal) > 0 {
			n = srvNames{Prefix: ns.Personal[0].Prefix, Delim: ns.Personal[0].Delim}
			got = true
		}
	}
	if !got {
		for _, l := range list {
			if l.Delim != 0 {
				n.Delim = l.Delim
				break
			}
		}
		under, others := 0, 0
		for _, l := range list {
			switch {
			case strings.EqualFold(l.Mailbox, "INBOX"):
			case n.Delim != '/' && n.Delim != 0 && strings.HasPrefix(strings.ToUpper(l.Mailbox), "INBOX"+string(n.Delim)):
				under++
			default:
				others++
			}
		}
		if under > 0 && others == 0 {
			n.Prefix = "INBOX" + string(n.Delim)
		}
	}
	if n.Delim == 0 && n.Prefix != "" {
		n.Delim = rune(n.Prefix[len(n.Prefix)-1])
	}
	// What was learned from refusals stays (NAMESPACE does not say it).
	n.NoDot = a.names().NoDot && (n.Delim == 0 || n.Delim == '/')
	a.setNames(n)
	return n
}

// setNames makes n the server's naming and remembers it in the store.
func (a *Account) setNames(n srvNames) {
	a.namesMu.Lock()
	changed := a.srvNaming == nil || *a.srvNaming != n
	a.srvNaming = &n
	a.namesMu.Unlock()
	if changed {
		v, _ := json.Marshal(n)
		if err := a.db.Update(func(tx *store.Tx) error { return tx.Set(namesKey, v) }); err != nil {
			a.log.Warn("remember the server's folder naming", "err", err)
		}
		a.log.Info("upstream folder naming", "prefix", n.Prefix, "delimiter", string(n.Delim), "no_dot", n.NoDot)
	}
}

// noDotRetry reports whether a refused CREATE or RENAME to the bridge
// name name is worth one more try with "." written full-width (see the
// package notes above), and returns that naming.
func (a *Account) noDotRetry(err error, name string) (srvNames, bool) {
	n := a.names()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || n.NoDot || (n.Delim != '/' && n.Delim != 0) || !strings.Contains(name, ".") {
		return n, false
	}
	// Only a refusal of the name itself (Dovecot: "[CANNOT] Character not
	// allowed in mailbox name: '.'"), never one that says the folder
	// exists: the full-width twin would then be a second folder.
	text := strings.ToLower(ie.Text)
	if (ie.Code != "" && ie.Code != imap.ResponseCodeCannot) || strings.Contains(text, "exist") ||
		!(strings.Contains(text, "name") || strings.Contains(text, "character") || strings.Contains(text, "'.'")) {
		return n, false
	}
	n.NoDot = true
	return n, true
}

// createOnServer creates bridge folder name on the server (c is a
// borrowed connection), learning NoDot from a refusal.
func (a *Account) createOnServer(c *imapclient.Client, name string, opts *imap.CreateOptions) error {
	err := c.Create(a.srv(name), opts).Wait()
	if n, retry := a.noDotRetry(err, name); retry {
		if c.Create(n.toServer(name), opts).Wait() == nil {
			a.setNames(n)
			return nil
		}
	}
	return err
}

// renameOnServer renames bridge folder oldName to newName on the server,
// learning NoDot from a refusal.
func (a *Account) renameOnServer(c *imapclient.Client, oldName, newName string, opts *imap.RenameOptions) error {
	srvOld := a.srv(oldName)
	err := c.Rename(srvOld, a.srv(newName), opts).Wait()
	if n, retry := a.noDotRetry(err, newName); retry {
		if c.Rename(srvOld, n.toServer(newName), opts).Wait() == nil {
			a.setNames(n)
			return nil
		}
	}
	return err
}

// srv returns the server's name of bridge folder name.
func (a *Account) srv(name string) string {
	if f, err := a.db.Folder(name); err == nil && f.Remote && f.ServerName != "" {
		return f.ServerName
	}
	return a.names().toServer(name)
}
