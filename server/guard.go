package server

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// guardSession wraps the backend's session for the inner imapserver:
//   - an error that is not an *imap.Error becomes NO [SERVERBUG] with a
//     text of our own (and is logged with the command's method), so that
//     imapserver's own "Internal server error" only ever means a parse
//     failure, which the gate turns into BAD;
//   - Poll never fails: imapserver drops the connection when it does, and
//     a missed update is sent with the next one;
//   - LIST patterns with many wildcards are refused (imapserver.MatchList,
//     which backends use, takes exponential time in them).
//
// It implements SessionNamespace and SessionMove, answering BAD when the
// backend does not (Server.checkSession refuses sessions lacking what is
// advertised), and SessionAppendLimit only when the backend does.
func guardSession(sess imapserver.Session, log *slog.Logger) imapserver.Session {
	g := &guard{s: sess, log: log}
	if al, ok := sess.(imapserver.SessionAppendLimit); ok {
		return &guardAppendLimit{guard: g, al: al}
	}
	return g
}

type guard struct {
	s   imapserver.Session
	log *slog.Logger
}

type guardAppendLimit struct {
	*guard
	al imapserver.SessionAppendLimit
}

func (g *guardAppendLimit) AppendLimit() uint32 { return g.al.AppendLimit() }

var (
	_ imapserver.SessionIMAP4rev2   = (*guard)(nil)
	_ imapserver.SessionAppendLimit = (*guardAppendLimit)(nil)
)

// errInternal is what the client sees of a backend error that is not an
// *imap.Error.
var errInternal = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeServerBug,
	Text: "Internal error in popbridge; see its log",
}

// maxListWildcards is how many "*" and "%" a LIST pattern may have (runs
// of them count once).
const maxListWildcards = 5

func (g *guard) check(method string, err error) error {
	if err == nil {
		return nil
	}
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		return err
	}
	g.log.Error("imap session error", "method", method, "err", err)
	return errInternal
}

func (g *guard) Close() error { return g.s.Close() }
func (g *guard) Login(username, password string) error {
	return g.check("Login", g.s.Login(username, password))
}

func (g *guard) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := g.s.Select(mailbox, options)
	return d, g.check("Select", err)
}

func (g *guard) Create(mailbox string, options *imap.CreateOptions) error {
	return g.check("Create", g.s.Create(mailbox, options))
}

func (g *guard) Delete(mailbox string) error { return g.check("Delete", g.s.Delete(mailbox)) }

func (g *guard) Rename(mailbox, newName string, options *imap.RenameOptions) error {
	return g.check("Rename", g.s.Rename(mailbox, newName, options))
}

func (g *guard) Subscribe(mailbox string) error {
	return g.check("Subscribe", g.s.Subscribe(mailbox))
}

func (g *guard) Unsubscribe(mailbox string) error {
	return g.check("Unsubscribe", g.s.Unsubscribe(mailbox))
}

func (g *guard) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	for _, p := range append([]string{ref}, patterns...) {
		if wildcardRuns(p) > maxListWildcards {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
				Text: "LIST patterns with more than 5 wildcards are not supported"}
		}
	}
	return g.check("List", g.s.List(w, ref, patterns, options))
}

// wildcardRuns counts the runs of "*" and "%" in a LIST pattern.
func wildcardRuns(p string) int {
	n := 0
	prev := false
	for i := 0; i < len(p); i++ {
		w := p[i] == '*' || p[i] == '%'
		if w && !prev {
			n++
		}
		prev = w
	}
	return n
}

func (g *guard) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	d, err := g.s.Status(mailbox, options)
	return d, g.check("Status", err)
}

func (g *guard) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	d, err := g.s.Append(mailbox, r, options)
	return d, g.check("Append", err)
}

func (g *guard) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if err := g.s.Poll(w, allowExpunge); err != nil && !isConnGone(err) {
		g.log.Warn("imap session poll failed; the client hears of changes later", "err", err)
	}
	return nil
}

// isConnGone reports errors of writing to a client that left.
func isConnGone(err error) bool {
	s := err.Error()
	return strings.Contains(s, "use of closed network connection") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "connection reset")
}

func (g *guard) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	return g.check("Idle", g.s.Idle(w, stop))
}

func (g *guard) Unselect() error { return g.check("Unselect", g.s.Unselect()) }

func (g *guard) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if uids != nil && imap.IsSearchRes(*uids) {
		// UID EXPUNGE $ (RFC 5182): the saved result, as the backend's
		// SEARCH resolves it.
		d, err := g.s.Search(imapserver.NumKindUID, &imap.SearchCriteria{UID: []imap.UIDSet{imap.SearchRes()}},
			&imap.SearchOptions{ReturnAll: true})
		if err != nil {
			return g.check("Expunge", err)
		}
		set, _ := d.All.(imap.UIDSet)
		if set == nil {
			set = imap.UIDSet{}
		}
		uids = &set
	}
	return g.check("Expunge", g.s.Expunge(w, uids))
}

func (g *guard) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	if o := options; o != nil && o.ReturnSave && (o.ReturnMin || o.ReturnMax) && !o.ReturnAll && !o.ReturnCount {
		return g.searchSaveMinMax(kind, criteria, options)
	}
	d, err := g.s.Search(kind, criteria, options)
	return d, g.check("Search", err)
}

// searchSaveMinMax: RFC 5182 section 2.1: with MIN and/or MAX and neither
// ALL nor COUNT, "$" is only the messages MIN and MAX name. Backends save
// the whole result; the saved set is set with a second search.
func (g *guard) searchSaveMinMax(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	o := *options
	o.ReturnSave = false
	d, err := g.s.Search(kind, criteria, &o)
	if err != nil {
		return nil, g.check("Search", err)
	}
	var nums []uint32
	if o.ReturnMin && d.Min > 0 {
		nums = append(nums, d.Min)
	}
	if o.ReturnMax && d.Max > 0 {
		nums = append(nums, d.Max)
	}
	saved := &imap.SearchCriteria{Not: []imap.SearchCriteria{{}}} // nothing
	switch {
	case len(nums) == 0:
	case kind == imapserver.NumKindUID:
		var set imap.UIDSet
		for _, n := range nums {
			set.AddNum(imap.UID(n))
		}
		saved = &imap.SearchCriteria{UID: []imap.UIDSet{set}}
	default:
		saved = &imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(nums...)}}
	}
	if _, err := g.s.Search(kind, saved, &imap.SearchOptions{ReturnSave: true}); err != nil {
		return nil, g.check("Search", err)
	}
	return d, nil
}

func (g *guard) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	return g.check("Fetch", g.s.Fetch(w, numSet, options))
}

func (g *guard) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	return g.check("Store", g.s.Store(w, numSet, flags, options))
}

func (g *guard) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	d, err := g.s.Copy(numSet, dest)
	if d != nil && (len(d.SourceUIDs) == 0 || len(d.DestUIDs) == 0) {
		// Nothing copied: no COPYUID (imapserver cannot encode an empty
		// set and would answer half a line and [SERVERBUG]).
		d = nil
	}
	return d, g.check("Copy", err)
}

func (g *guard) Namespace() (*imap.NamespaceData, error) {
	ns, ok := g.s.(imapserver.SessionNamespace)
	if !ok {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "NAMESPACE is not supported"}
	}
	d, err := ns.Namespace()
	return d, g.check("Namespace", err)
}

func (g *guard) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	mv, ok := g.s.(imapserver.SessionMove)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "MOVE is not supported"}
	}
	return g.check("Move", mv.Move(w, numSet, dest))
}
