// Package backend is the merged account popbridge serves: the sealed legacy
// archive under a prefix (default "Local") and the upstream IMAP mailbox at
// the top level (mirrored; remote.go, upload.go, names.go), or a
// bridge-owned INBOX when there is no upstream. It implements
// imapserver.Session; each session's picture of its selected folder is a
// view (view.go).
//
// Implementation notes (invariants from design.md):
//
//   - The legacy archive is sealed: archive files are only ever opened with
//     os.Open (read-only). Flags, expunges and moves of legacy messages are
//     an overlay in the store (store.Message.Flags / Hidden).
//   - Messages appended or copied into Local/… go to the bridge's own
//     Maildir under data_dir/maildir, written to tmp/, fsynced, renamed into
//     cur/ and the directory fsynced before the index records them.
//   - Every change to a folder happens with that folder's mailbox lock held:
//     commit to the store first, then update the in-memory view and notify
//     the sessions (so unilateral updates never describe uncommitted state).
//   - Before bytes are served from an archive offset, their CRC is checked
//     against the index; a mismatch means the archive changed under us, the
//     folder is re-indexed and the client gets a NO, never wrong bytes.
//   - Every FETCH to the server is by UID, and what comes back is checked:
//     imapclient gives a command the first response it sees for each UID,
//     which may be an unsolicited one (a flag change by another client,
//     RFC 3501 7.4.2) without the items asked for. Such messages, and any
//     the answer left out, are asked for again (answered, fetchBodies).
package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/store"
)

// Source is one configured legacy archive.
type Source struct {
	Name   string
	Path   string
	Format archive.Format
}

// Options configures an Account. Zero values get documented defaults.
type Options struct {
	DB      *store.DB
	DataDir string // bridge-owned Maildir lives in DataDir/maildir
	// Prefix is the namespace of the legacy archive; default "Local".
	Prefix  string
	Sources []Source
	// Flatten shows the folders of a single multi-folder source directly
	// under the prefix (Local/Inbox rather than Local/<name>/Inbox).
	Flatten bool
	Logger  *slog.Logger
	// Remote, when set, is the upstream server: its folders are mirrored
	// and served at the top level.
	Remote *upstream.Pool
	// Exclusive says that nothing else uses Remote's connections: no IMAP
	// clients, no watchers (a command such as migrate run without a
	// bridge). Uploads then use every connection; otherwise they leave
	// one for clients' FETCHes and the INBOX watcher.
	Exclusive bool
}

// Account is the merged account. It is safe for concurrent use by many
// sessions.
type Account struct {
	opts  Options
	db    *store.DB
	log   *slog.Logger
	owned *ownedStore
	pool  *upstream.Pool

	mu    sync.Mutex
	boxes map[uint32]*mailbox // loaded mailboxes by folder ID

	namesMu   sync.Mutex
	srvNaming *srvNames // the upstream's folder naming (names.go)

	// listMu makes SyncFolders one at a time, LIST to commit: an older
	// LIST applied after a newer one would drop a folder a client had
	// just created.
	listMu sync.Mutex

	indexMu     sync.Mutex // one indexing run at a time
	probMu      sync.Mutex
	problems    map[string]string // problem text by path, reported once
	lastIndexed time.Time         // end of the last complete index run

	counts countCache // FolderCounts (counts.go)
}

// LastIndexed returns when the last complete index run ended (zero before
// the first one).
func (a *Account) LastIndexed() time.Time {
	a.probMu.Lock()
	defer a.probMu.Unlock()
	return a.lastIndexed
}

// New creates an Account. Call Index to (re)build the archive index.
func New(opts Options) (*Account, error) {
	if opts.DB == nil {
		return nil, errors.New("backend: Options.DB is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "Local"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DataDir == "" {
		return nil, errors.New("backend: Options.DataDir is required")
	}
	owned, err := newOwnedStore(path.Join(opts.DataDir, "maildir"))
	if err != nil {
		return nil, err
	}
	a := &Account{
		opts:     opts,
		db:       opts.DB,
		log:      opts.Logger,
		owned:    owned,
		pool:     opts.Remote,
		boxes:    make(map[uint32]*mailbox),
		problems: make(map[string]string),
	}
	if err := a.ensurePrefixFolder(); err != nil {
		return nil, err
	}
	if err := a.ensureInbox(); err != nil {
		return nil, err
	}
	return a, nil
}

// bridgeInbox is where a bridge-owned INBOX's messages go when an upstream
// server (with its own INBOX) is configured later.
const bridgeInboxRest = "INBOX (popbridge)"

// ensureInbox provides INBOX (RFC 3501 5.1: it always exists). Without an
// upstream server the bridge owns it: a durable folder in its own Maildir.
// With one, INBOX is the server's; a bridge-owned INBOX left from before
// is kept under the prefix (or dropped when empty) so that nothing is lost.
func (a *Account) ensureInbox() error {
	return a.db.Update(func(tx *store.Tx) error {
		f, err := tx.Folder("INBOX")
		if errors.Is(err, store.ErrNoFolder) {
			if a.pool != nil {
				return nil // the mirror sync adds the server's
			}
			return tx.CreateFolder(&store.Folder{Name: "INBOX", Subscribed: true})
		}
		if err != nil || f.Remote || a.pool == nil {
			return err
		}
		n := 0
		_ = tx.ForEachMessage(f.ID, func(m *store.Message) error {
			if !m.Hidden {
				n++
			}
			return nil
		})
		if n == 0 {
			return tx.DeleteFolder("INBOX")
		}
		to := a.opts.Prefix + "/" + bridgeInboxRest
		a.log.Warn("an upstream server is configured now: the bridge's own INBOX keeps its messages under a new name", "folder", to, "messages", n)
		if err := tx.RenameFolder("INBOX", to); err != nil {
			return fmt.Errorf("keep the bridge's INBOX as %q: %w", to, err)
		}
		f.Name, f.Created = to, true
		return tx.PutFolder(f)
	})
}

// ownsInbox reports whether INBOX is the bridge's own folder (no upstream).
func (a *Account) ownsInbox() bool { return a.pool == nil }

// Prefix returns the archive namespace prefix.
func (a *Account) Prefix() string { return a.opts.Prefix }

// ensurePrefixFolder creates the "Local" container so that clients can
// always create folders below it.
func (a *Account) ensurePrefixFolder() error {
	return a.db.Update(func(tx *store.Tx) error {
		if _, err := tx.Folder(a.opts.Prefix); err == nil {
			return nil
		}
		return tx.CreateFolder(&store.Folder{Name: a.opts.Prefix, NoSelect: true, Subscribed: true})
	})
}

// isLocal reports whether an IMAP mailbox name is in the archive namespace.
func (a *Account) isLocal(name string) bool {
	p := a.opts.Prefix
	if a.ownsInbox() && (name == "INBOX" || strings.HasPrefix(name, "INBOX/")) {
		return true
	}
	return name == p || strings.HasPrefix(name, p+"/")
}

// report records a problem once (by path) and logs it.
func (a *Account) report(p archive.Problem) {
	key := p.Path
	msg := p.Error()
	if hint := permissionHint(p); hint != "" {
		msg += "; " + hint
	}
	a.probMu.Lock()
	old, seen := a.problems[key]
	a.problems[key] = msg
	a.probMu.Unlock()
	if !seen || old != msg {
		a.log.Warn("archive problem", "path", p.Path, "offset", p.Offset, "err", p.Err)
	}
}

// permissionHint says what to do about a store the system will not let
// popbridge read.
func permissionHint(p archive.Problem) string {
	if !errors.Is(p.Err, fs.ErrPermission) {
		return ""
	}
	if strings.Contains(filepath.ToSlash(p.Path), "/Library/Mail") {
		// macOS keeps Apple Mail's folder from programs the user has not
		// allowed (TCC).
		return "macOS protects Apple Mail's folder: allow popbridge in System Settings > Privacy & Security > Full Disk Access, then start it again"
	}
	return "popbridge may only read this file or folder: check that your user account can open it"
}

// Problems returns the archive problems found so far, sorted.
func (a *Account) Problems() []string {
	a.probMu.Lock()
	defer a.probMu.Unlock()
	out := make([]string, 0, len(a.problems))
	for _, v := range a.problems {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// FolderStatus is one line of `popbridge status`.
type FolderStatus struct {
	Name        string `json:"name"`
	Source      string `json:"source,omitempty"`
	Messages    int    `json:"messages"`
	Hidden      int    `json:"hidden"`
	Bytes       int64  `json:"bytes"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	NoSelect    bool   `json:"noselect,omitempty"`
	Missing     bool   `json:"missing,omitempty"`
	Remote      bool   `json:"remote,omitempty"` // an upstream folder
	// OnServer counts the legacy messages already on the upstream server
	// (uploaded by the bridge, or found there by fingerprint).
	OnServer int `json:"on_server"`
}

// Status returns per-folder counts straight from the index.
func (a *Account) Status() ([]FolderStatus, error) {
	folders, err := a.db.Folders()
	if err != nil {
		return nil, err
	}
	var out []FolderStatus
	var remotes []uint32
	for _, f := range folders {
		if f.Remote && !f.NoSelect {
			remotes = append(remotes, f.ID)
		}
	}
	err = a.db.View(func(tx *store.Tx) error {
		for _, f := range folders {
			st := FolderStatus{Name: f.Name, Source: f.Source, UIDValidity: f.UIDValidity, UIDNext: f.UIDNext, NoSelect: f.NoSelect, Missing: f.Missing, Remote: f.Remote}
			var ups map[uint32][]store.Upload
			if !f.Remote && len(remotes) > 0 {
				ups, _ = tx.Uploads(f.ID)
			}
			err := tx.ForEachMessage(f.ID, func(m *store.Message) error {
				if m.Hidden {
					st.Hidden++
					return nil
				}
				st.Messages++
				st.Bytes += m.Size
				if !f.Remote && len(remotes) > 0 {
					on := len(ups[m.UID]) > 0
					for _, rid := range remotes {
						if on {
							break
						}
						c := contentOf(m)
						if u, _ := tx.FindFP(rid, c[:]); len(u) > 0 {
							on = true
						}
					}
					if on {
						st.OnServer++
					}
				}
				return nil
			})
			if err != nil && !errors.Is(err, store.ErrNoFolder) {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// box returns the loaded mailbox for folder f, loading it on first use.
func (a *Account) box(f *store.Folder) (*mailbox, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.boxes[f.ID]; ok {
		return b, nil
	}
	b, err := loadMailbox(a, f)
	if err != nil {
		return nil, err
	}
	a.boxes[f.ID] = b
	return b, nil
}

// boxByName resolves a local folder name to its mailbox.
func (a *Account) boxByName(name string) (*mailbox, *store.Folder, error) {
	f, err := a.db.Folder(name)
	if err != nil {
		if errors.Is(err, store.ErrNoFolder) {
			return nil, nil, errNoSuchMailbox(name)
		}
		return nil, nil, err
	}
	if f.NoSelect {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: fmt.Sprintf("%q is a folder container without messages of its own", name)}
	}
	b, err := a.box(f)
	if err != nil {
		return nil, nil, err
	}
	return b, f, nil
}

func errNoSuchMailbox(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: fmt.Sprintf("no folder named %q", name)}
}
