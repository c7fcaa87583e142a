// Package pop3 keeps fetching an old POP3 mailbox into the bridge until
// cutover: every new message lands once, in a bridge-owned Local/ folder
// (or an upstream folder), and the old POP client's own downloads are
// recognised and not fetched again.
//
// Implementation notes:
//
//   - One Fetcher per configured POP account; Round is one POP3 session and
//     rounds never overlap (a mutex), so the loop (Run) and a manual
//     `fetch` can share a Fetcher.
//   - State lives in bbolt (store/pop3.go): per account, UIDL → record
//     (fetched | skipped | too-big). A record is written only after
//     Sink.Deliver returned, i.e. the message is fsynced locally or
//     confirmed by the upstream server. A crash between the two costs one re-download,
//     which KnownMessage then recognises: no loss, no duplicate.
//   - What the old client already has is not fetched again: a UIDL that an
//     archive message carries in X-UIDL (Sink.KnownUIDL) or that a
//     Thunderbird popstate.dat lists for this host and user is recorded as
//     skipped without any download; anything else is downloaded and, if
//     its content is already known (Sink.KnownMessage: same content in a
//     local folder, same header fingerprint upstream), recorded as skipped
//     without being stored. Content cannot be checked from TOP's header
//     alone (local dedup is by whole-content fingerprint), so TOP is only
//     used to identify messages on servers without UIDL.
//   - Servers without UIDL (RFC 1939 makes it optional): a message is
//     identified by a hash of its TOP n 0 header block and its size, or,
//     without TOP, by its content fingerprint after download. Logged once.
//   - Deleting on the server (leave_on_server = false, or delete_after
//     passed) is only ever done for messages with a record saying they are
//     at their destination: fetched, or skipped because the same UIDL or
//     content is in the archive. A popstate.dat entry alone is not proof
//     (the old client may have deleted its copy), and too-big messages
//     were never downloaded, so neither is deleted. DELE takes effect at
//     QUIT; a round that fails before QUIT deletes nothing.
//   - go-pop3 has no timeouts and no STLS: the connection handed to it is
//     ours (conn.go), with a deadline on every read and write and the
//     greeting read, STLS done and the greeting replayed before go-pop3
//     sees it. RETR alone is done by conn.go itself, into one buffer sized
//     from LIST (go-pop3's costs several times the message in memory), and
//     before each download of 4 MB or more the previous buffer is collected
//     and its pages returned (debug.FreeOSMemory), so a big message costs
//     about its own size in memory. A server sending far more than
//     LIST announced is cut off and the message recorded as too big.
//   - Records are never pruned: a UIDL seen once stays known even after
//     the message left the server (servers do not reuse UIDLs).
//   - A wrong password is remembered (a hash of it, in memory): while the
//     same password comes back from the password callback, Round does not
//     contact the server for an hour, and Run logs the rejection once per
//     password.
package pop3

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/units"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/message"
	"github.com/popbridge/popbridge/store"
)

// TLS modes.
const (
	TLSImplicit = "implicit" // TLS from the first byte (port 995)
	TLSStartTLS = "starttls" // plain POP3 upgraded with STLS (RFC 2595)
	TLSNone     = "none"     // plaintext; loopback hosts only
)

// Defaults.
const (
	DefaultInterval = 5 * time.Minute
	DefaultTimeout  = time.Minute
	// authRetry is how long a rejected password is not tried again.
	authRetry = time.Hour
	// maxBackoff caps the wait after repeated failures.
	maxBackoff = time.Hour
	// batchRecords is how many skipped/too-big records are written per
	// transaction (fetched ones are written at once).
	batchRecords = 256
	// bigMessage is the size from which a download is preceded by
	// debug.FreeOSMemory.
	bigMessage = 4 << 20
)

// Skip reasons recorded with store.POP3Skipped.
const (
	ReasonArchiveUIDL = "archive-uidl" // an archive message carries this X-UIDL
	ReasonPopstate    = "popstate"     // listed in the old client's popstate.dat
	ReasonContent     = "content"      // the same content is already in a folder
	ReasonDuplicate   = "duplicate"    // Deliver found it already in the target folder
	// ReasonOversized (with store.POP3TooBig): the server sent far more
	// than its LIST size; never retried.
	ReasonOversized = "oversized"
)

// Sink is where fetched messages go; *backend.Account implements it.
type Sink interface {
	// Deliver stores msg in folder (durable when it returns nil); dup
	// reports that the folder had it already and nothing was stored.
	Deliver(ctx context.Context, folder string, msg []byte, date time.Time) (imap.UID, bool, error)
	// KnownUIDL reports whether an archive message carries this X-UIDL.
	KnownUIDL(uidl string) bool
	// KnownMessage reports whether msg is already in some folder.
	KnownMessage(msg []byte) bool
}

// Account is one old POP3 mailbox. Zero values get the documented
// defaults; Name, Host, Username, Password and DeliverTo are required.
type Account struct {
	Name string // unique; names the state in the database
	Host string
	Port int    // 0: 995 with implicit TLS, else 110
	TLS  string // TLSImplicit (""), TLSStartTLS or TLSNone (loopback only)
	// TLSConfig is cloned for each connection; nil: system roots.
	// ServerName defaults to Host.
	TLSConfig *tls.Config
	Username  string
	// Password is asked before every round (so a fixed password_file is
	// picked up without a restart). Never logged.
	Password func(ctx context.Context) (string, error)
	// Token, when set, logs in with AUTH XOAUTH2 (Microsoft and Google
	// POP) instead of USER/PASS: an OAuth2 access token, asked before every
	// round; refresh is true after the server rejected the last one (once
	// per round). Password is not used then. Never logged.
	Token    func(ctx context.Context, refresh bool) (string, error)
	Interval time.Duration // between rounds in Run; 0: DefaultInterval
	// LeaveOnServer false deletes each message from the server once it is
	// at its destination. Note that the zero value deletes.
	LeaveOnServer bool
	// DeleteAfter, with LeaveOnServer, deletes messages this long after
	// they were fetched (0: never).
	DeleteAfter time.Duration
	DeliverTo   string // folder, e.g. "Local/Inbox" or "INBOX"
	// MaxMessageSize: bigger messages (by LIST size) are skipped, reported
	// once and not downloaded, unless the limit is later raised. 0: none.
	MaxMessageSize int64
	// PopstateFiles are Thunderbird popstate.dat files to consult.
	PopstateFiles []string
	// Timeout bounds connecting and every read or write of a command
	// (a download may take longer as long as data keeps coming). 0:
	// DefaultTimeout.
	Timeout time.Duration
}

// RoundResult says what one round did.
type RoundResult struct {
	OnServer int   `json:"on_server"` // messages in the mailbox
	Fetched  int   `json:"fetched"`   // delivered
	Skipped  int   `json:"skipped"`   // newly recorded as already known, not stored
	TooBig   int   `json:"too_big"`   // newly found over max_message_size
	Deleted  int   `json:"deleted"`   // deleted on the server
	Bytes    int64 `json:"bytes"`     // downloaded
	// Errors are problems with single messages that did not stop the
	// round (a message too big to fetch).
	Errors []string `json:"errors,omitempty"`
}

// String is a one-line summary.
func (r RoundResult) String() string {
	s := fmt.Sprintf("%d on the server, fetched %d (%s), %d already known", r.OnServer, r.Fetched, humanBytes(r.Bytes), r.Skipped)
	if r.TooBig > 0 {
		s += fmt.Sprintf(", %d too big", r.TooBig)
	}
	if r.Deleted > 0 {
		s += fmt.Sprintf(", %d deleted on the server", r.Deleted)
	}
	return s
}

// Fetcher fetches one account. Its methods are safe for concurrent use;
// rounds are serialised.
type Fetcher struct {
	db   *store.DB
	sink Sink
	acct Account
	log  *slog.Logger
	now  func() time.Time

	mu           sync.Mutex // held for a whole round
	auth         *authFailure
	authLogged   [32]byte // hash of the password whose rejection was logged
	noUIDLLogged bool
	warned       map[string]bool // popstate files reported unreadable
}

type authFailure struct {
	sum   [32]byte
	until time.Time
	err   *Error
}

// New checks acct, fills in defaults and returns its Fetcher. log may be
// nil (slog.Default()).
func New(db *store.DB, sink Sink, acct Account, log *slog.Logger) (*Fetcher, error) {
	if log == nil {
		log = slog.Default()
	}
	a := acct
	key := fmt.Sprintf("pop3 account %q", a.Name)
	switch {
	case db == nil || sink == nil:
		return nil, fmt.Errorf("%s: no database or delivery target", key)
	case strings.TrimSpace(a.Name) == "":
		return nil, errors.New("pop3 account: a name is required")
	case a.Host == "":
		return nil, fmt.Errorf("%s: host is required", key)
	case a.Username == "":
		return nil, fmt.Errorf("%s: username is required", key)
	case a.Password == nil && a.Token == nil:
		return nil, fmt.Errorf("%s: no password configured", key)
	case strings.TrimSpace(a.DeliverTo) == "":
		return nil, fmt.Errorf("%s: deliver_to is required", key)
	case a.Interval < 0 || a.DeleteAfter < 0 || a.MaxMessageSize < 0 || a.Timeout < 0:
		return nil, fmt.Errorf("%s: negative interval, delete_after, max_message_size or timeout", key)
	}
	switch a.TLS {
	case "":
		a.TLS = TLSImplicit
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !isLoopback(a.Host) {
			return nil, fmt.Errorf("%s: tls = \"none\" would send the password in clear text to %s; it is only allowed to a loopback address (use \"implicit\" or \"starttls\")", key, a.Host)
		}
	default:
		return nil, fmt.Errorf("%s: tls %q is not implicit, starttls or none", key, a.TLS)
	}
	if a.Port == 0 {
		a.Port = 110
		if a.TLS == TLSImplicit {
			a.Port = 995
		}
	}
	if a.Port < 0 || a.Port > 65535 {
		return nil, fmt.Errorf("%s: port %d is not 1-65535", key, a.Port)
	}
	if a.Interval == 0 {
		a.Interval = DefaultInterval
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	a.PopstateFiles = append([]string(nil), a.PopstateFiles...)
	return &Fetcher{db: db, sink: sink, acct: a, log: log.With("pop3", a.Name), now: time.Now, warned: map[string]bool{}}, nil
}

// Name returns the account name.
func (f *Fetcher) Name() string { return f.acct.Name }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (f *Fetcher) addr() string {
	return net.JoinHostPort(f.acct.Host, fmt.Sprint(f.acct.Port))
}

// Round runs one POP3 session: fetch what is new, delete what is due,
// and save the account status. An error means the round stopped early;
// what it did until then is in the result and recorded.
func (f *Fetcher) Round(ctx context.Context) (RoundResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := f.now()
	var res RoundResult
	noUIDL, listed, err := f.round(ctx, &res)
	if serr := f.saveStatus(start, &res, noUIDL, listed, err); serr != nil && err == nil {
		err = serr
	}
	return res, err
}

func (f *Fetcher) round(ctx context.Context, res *RoundResult) (noUIDL, listed bool, err error) {
	a := &f.acct
	secret, login := "", (func(*session) error)(nil)
	if a.Token != nil {
		tok, err := a.Token(ctx, false)
		if err != nil {
			if ctx.Err() != nil {
				return false, false, ctx.Err()
			}
			return false, false, &Error{Kind: KindCredentials, Account: a.Name, Addr: f.addr(), Detail: "cannot get the OAuth2 token: " + err.Error(), Err: err}
		}
		secret = tok
		login = func(s *session) error {
			err := s.loginXOAUTH2(a.Username, tok)
			if e := (*Error)(nil); !errors.As(err, &e) || e.Kind != KindAuth {
				return err
			}
			// Rejected: perhaps expired early; one fresh token.
			f.log.Info("the POP3 server rejected the OAuth2 token; fetching a new one", "account", a.Name)
			tok2, terr := a.Token(ctx, true)
			if terr != nil {
				return &Error{Kind: KindCredentials, Account: a.Name, Addr: f.addr(), Detail: "cannot get the OAuth2 token: " + terr.Error(), Err: terr}
			}
			return s.loginXOAUTH2(a.Username, tok2)
		}
	} else {
		pass, err := a.Password(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, false, ctx.Err()
			}
			return false, false, &Error{Kind: KindCredentials, Account: a.Name, Addr: f.addr(), Detail: "cannot get the password: " + err.Error(), Err: err}
		}
		secret = pass
		login = func(s *session) error { return s.login(a.Username, pass) }
	}
	sum := sha256.Sum256([]byte(secret))
	if af := f.auth; af != nil && af.sum == sum && f.now().Before(af.until) {
		e := *af.err
		e.Detail += fmt.Sprintf("; not tried again before %s unless the password changes", af.until.Format("2006-01-02 15:04"))
		return false, false, &e
	}

	s, err := dial(ctx, a)
	if err != nil {
		return false, false, err
	}
	defer s.close()
	if err := login(s); err != nil {
		if e := (*Error)(nil); errors.As(err, &e) && e.Kind == KindAuth {
			f.auth = &authFailure{sum: sum, until: f.now().Add(max(authRetry, a.Interval)), err: e}
		}
		return false, false, err
	}
	f.auth = nil
	f.authLogged = [32]byte{}

	msgs, hasUIDL, err := s.list()
	if err != nil {
		return false, false, err
	}
	res.OnServer = len(msgs)
	if !hasUIDL && !f.noUIDLLogged {
		f.noUIDLLogged = true
		f.log.Warn("the POP3 server does not support UIDL; messages are recognised by header (TOP) or content fingerprints instead", "addr", f.addr())
	}

	var records map[string]store.POP3Record
	if err := f.db.View(func(tx *store.Tx) error {
		var err error
		records, err = tx.POP3Records(a.Name)
		return err
	}); err != nil {
		return !hasUIDL, true, fmt.Errorf("pop3 account %q: %w", a.Name, err)
	}
	var popstate map[string]bool
	if hasUIDL && len(a.PopstateFiles) > 0 {
		popstate = readPopstates(a.PopstateFiles, a.Host, a.Username, func(p string, err error) {
			if !f.warned[p] {
				f.warned[p] = true
				f.log.Warn("cannot read Thunderbird popstate.dat; ignoring it", "file", p, "err", err)
			}
		})
	}

	w := &recorder{db: f.db, account: a.Name}
	defer func() {
		if ferr := w.flush(); ferr != nil && err == nil {
			err = ferr
		}
	}()
	type dele struct {
		num int
		key string
	}
	var dels []dele
	now := f.now()
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return !hasUIDL, true, err
		}
		key, del, err := f.one(ctx, s, m, hasUIDL, records, popstate, res, w, now)
		if err != nil {
			return !hasUIDL, true, err
		}
		if del {
			dels = append(dels, dele{m.num, key})
		}
	}
	if err := w.flush(); err != nil {
		return !hasUIDL, true, err
	}
	for _, d := range dels {
		if err := s.dele(d.num); err != nil {
			return !hasUIDL, true, err
		}
	}
	if err := s.quit(); err != nil {
		return !hasUIDL, true, err
	}
	if len(dels) > 0 {
		res.Deleted = len(dels)
		at := f.now().Unix()
		for _, d := range dels {
			r := records[d.key]
			r.Deleted = at
			if err := w.put(d.key, r, false); err != nil {
				return !hasUIDL, true, err
			}
		}
		f.log.Info("deleted on the POP3 server", "messages", len(dels))
	}
	return !hasUIDL, true, nil
}

// one deals with one message of the maildrop: it returns the key the
// message is recorded under and whether it is due for deletion.
func (f *Fetcher) one(ctx context.Context, s *session, m msgInfo, hasUIDL bool, records map[string]store.POP3Record,
	popstate map[string]bool, res *RoundResult, w *recorder, now time.Time) (key string, del bool, err error) {
	a := &f.acct
	at := now.Unix()
	record := func(r store.POP3Record, durable bool) (string, bool, error) {
		if key == "" { // no UIDL, no TOP, not downloaded: nothing to know it by
			return "", false, nil
		}
		records[key] = r
		return key, f.deletable(r, now), w.put(key, r, durable)
	}
	key = m.uidl
	if !hasUIDL {
		hdr, ok, err := s.top(m)
		if err != nil {
			return "", false, err
		}
		if ok {
			key = topKey(hdr, m.size)
		}
	}
	if r, ok := records[key]; ok && key != "" {
		retry := r.State == store.POP3TooBig && r.Reason == "" && (a.MaxMessageSize == 0 || m.size <= a.MaxMessageSize)
		if !retry {
			return key, f.deletable(r, now), nil
		}
	}
	if a.MaxMessageSize > 0 && m.size > a.MaxMessageSize {
		res.TooBig++
		what := fmt.Sprintf("message %d", m.num)
		if m.uidl != "" {
			what += " (UIDL " + m.uidl + ")"
		}
		res.Errors = append(res.Errors, fmt.Sprintf("%s is %s, over max_message_size (%s): not downloaded; raise max_message_size to fetch it",
			what, humanBytes(m.size), humanBytes(a.MaxMessageSize)))
		f.log.Warn("message over max_message_size; not downloaded", "message", m.num, "uidl", m.uidl, "size", m.size, "max_message_size", a.MaxMessageSize)
		return record(store.POP3Record{State: store.POP3TooBig, Size: m.size, At: at}, false)
	}
	if hasUIDL {
		reason := ""
		switch {
		case f.sink.KnownUIDL(key):
			reason = ReasonArchiveUIDL
		case popstate[key]:
			reason = ReasonPopstate
		}
		if reason != "" {
			res.Skipped++
			f.log.Debug("already downloaded by the old client; not fetched", "uidl", key, "reason", reason)
			return record(store.POP3Record{State: store.POP3Skipped, Reason: reason, Size: m.size, At: at}, false)
		}
	}

	if m.size >= bigMessage {
		// Collect the previous big message's buffer and hand its pages
		// back before allocating this one (the new buffer rarely fits the
		// old hole exactly), so fetching big messages costs about one
		// message of memory rather than two.
		debug.FreeOSMemory()
	}
	msg, err := s.retr(m)
	if err != nil {
		if errors.Is(err, errTooLong) && key != "" {
			// The server sends far more than LIST announced: record it
			// so that this message does not stop every round.
			res.TooBig++
			res.Errors = append(res.Errors, fmt.Sprintf("message %d (%s): the server sent far more than the %s LIST announced; skipped, not retried", m.num, key, humanBytes(m.size)))
			if _, _, rerr := record(store.POP3Record{State: store.POP3TooBig, Reason: ReasonOversized, Size: m.size, At: at}, true); rerr != nil {
				return "", false, rerr
			}
		}
		return "", false, err
	}
	res.Bytes += int64(len(msg))
	if key == "" {
		fp := message.ContentFP(msg)
		key = "fp:" + fp.String()
		if r, ok := records[key]; ok {
			return key, f.deletable(r, now), nil
		}
	}
	if f.sink.KnownMessage(msg) {
		res.Skipped++
		f.log.Debug("content already known; not stored", "uidl", key)
		return record(store.POP3Record{State: store.POP3Skipped, Reason: ReasonContent, Size: m.size, At: at}, false)
	}
	hdr, _ := message.SplitHeader(msg)
	date, _ := message.InternalDate(hdr, time.Time{})
	uid, dup, err := f.sink.Deliver(ctx, a.DeliverTo, msg, date)
	if err != nil {
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		return "", false, fmt.Errorf("pop3 account %q: deliver message %d (%s) to %q: %w", a.Name, m.num, key, a.DeliverTo, err)
	}
	r := store.POP3Record{State: store.POP3Fetched, Folder: a.DeliverTo, UID: uint32(uid), Size: m.size, At: f.now().Unix()}
	if dup {
		r.Reason = ReasonDuplicate
		res.Skipped++
	} else {
		res.Fetched++
	}
	f.log.Debug("fetched", "uidl", key, "folder", a.DeliverTo, "uid", uid, "bytes", len(msg), "duplicate", dup)
	return record(r, true)
}

// deletable says whether the message of r may be deleted on the server
// now: it must be at its destination, and the policy must ask for it.
func (f *Fetcher) deletable(r store.POP3Record, now time.Time) bool {
	switch {
	case r.State == store.POP3TooBig:
		return false
	case r.State == store.POP3Skipped && r.Reason == ReasonPopstate:
		return false
	case r.State != store.POP3Fetched && r.State != store.POP3Skipped:
		return false
	case !f.acct.LeaveOnServer:
		return true
	}
	return f.acct.DeleteAfter > 0 && now.Sub(time.Unix(r.At, 0)) >= f.acct.DeleteAfter
}

// topKey identifies a message on a server without UIDL.
func topKey(hdr []byte, size int64) string {
	h := sha256.Sum256(hdr)
	return fmt.Sprintf("top:%s:%d", hex.EncodeToString(h[:16]), size)
}

// recorder writes records: fetched ones at once (with anything pending),
// the others in batches.
type recorder struct {
	db      *store.DB
	account string
	keys    []string
	recs    []store.POP3Record
}

func (w *recorder) put(key string, r store.POP3Record, now bool) error {
	w.keys = append(w.keys, key)
	w.recs = append(w.recs, r)
	if now || len(w.keys) >= batchRecords {
		return w.flush()
	}
	return nil
}

func (w *recorder) flush() error {
	if len(w.keys) == 0 {
		return nil
	}
	err := w.db.Update(func(tx *store.Tx) error {
		for i, k := range w.keys {
			if err := tx.PutPOP3Record(w.account, k, w.recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	w.keys, w.recs = w.keys[:0], w.recs[:0]
	if err != nil {
		return fmt.Errorf("pop3 account %q: save fetch state: %w", w.account, err)
	}
	return nil
}

// Run calls Round every Interval until ctx ends. After a failure it waits
// longer each time (capped at an hour, with jitter); a rejected password
// is logged once and not tried again for an hour unless it changes.
func (f *Fetcher) Run(ctx context.Context) {
	failures := 0
	for {
		res, err := f.Round(ctx)
		if ctx.Err() != nil {
			return
		}
		delay := f.acct.Interval
		switch {
		case err == nil:
			failures = 0
			if res.Fetched+res.TooBig+res.Deleted > 0 {
				f.log.Info("POP3 round", "result", res.String())
			} else {
				f.log.Debug("POP3 round", "result", res.String())
			}
		case errors.Is(err, ErrAuth):
			f.logAuth(err)
		default:
			failures++
			delay = backoff(f.acct.Interval, failures)
			f.log.Warn("POP3 round failed", "err", err, "retry_in", delay.Round(time.Second), "fetched", res.Fetched)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// logAuth logs a rejected password once per password.
func (f *Fetcher) logAuth(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.auth == nil || f.auth.sum == f.authLogged {
		f.log.Debug("POP3 login still rejected", "err", err)
		return
	}
	f.authLogged = f.auth.sum
	f.log.Error("POP3 login rejected; not retried for an hour unless the password changes", "err", err)
}

// backoff is the wait after n consecutive failures: Interval doubling, at
// most max(Interval, maxBackoff), ±10% jitter.
func backoff(interval time.Duration, n int) time.Duration {
	d := interval
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, max(interval, maxBackoff))
	j := time.Duration(float64(d) * 0.1 * (2*rand.Float64() - 1))
	return d + j
}

// AccountStatus is the persisted status of one POP account.
type AccountStatus struct {
	Name        string    `json:"name"`
	LastRun     time.Time `json:"last_run,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastResult  string    `json:"last_result,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Fetched     int64     `json:"fetched"` // all time
	Skipped     int64     `json:"skipped"` // all time: already known, not stored
	TooBig      int64     `json:"too_big"` // all time
	Deleted     int64     `json:"deleted"` // all time, on the server
	Bytes       int64     `json:"bytes"`   // all time, downloaded
	OnServer    int       `json:"on_server"`
	Tracked     int       `json:"tracked"` // UIDLs with a record
	NoUIDL      bool      `json:"no_uidl,omitempty"`
}

// Status returns the saved status of account name (zero counts if it
// never ran).
func Status(db *store.DB, name string) (AccountStatus, error) {
	st := AccountStatus{Name: name}
	err := db.View(func(tx *store.Tx) error {
		s, _, err := tx.POP3Status(name)
		if err != nil {
			return err
		}
		n, err := tx.POP3RecordCount(name)
		if err != nil {
			return err
		}
		st.LastRun = unixTime(s.LastRun)
		st.LastSuccess = unixTime(s.LastSuccess)
		st.LastResult = s.LastResult
		st.LastError = s.LastError
		st.LastErrorAt = unixTime(s.LastErrorAt)
		st.Fetched, st.Skipped, st.TooBig, st.Deleted, st.Bytes = s.Fetched, s.Skipped, s.TooBig, s.Deleted, s.Bytes
		st.OnServer, st.NoUIDL, st.Tracked = s.OnServer, s.NoUIDL, n
		return nil
	})
	return st, err
}

func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

func (f *Fetcher) saveStatus(start time.Time, res *RoundResult, noUIDL, listed bool, rerr error) error {
	err := f.db.Update(func(tx *store.Tx) error {
		s, _, err := tx.POP3Status(f.acct.Name)
		if err != nil {
			return err
		}
		now := f.now()
		s.LastRun = start.Unix()
		switch {
		case rerr == nil:
			s.LastResult = res.String()
			s.LastSuccess = now.Unix()
			s.LastError = ""
		case listed:
			s.LastResult = res.String() + " (then stopped by an error)"
		default:
			s.LastResult = "failed before the mailbox was listed"
		}
		if rerr != nil {
			s.LastError = rerr.Error()
			s.LastErrorAt = now.Unix()
		}
		s.Fetched += int64(res.Fetched)
		s.Skipped += int64(res.Skipped)
		s.TooBig += int64(res.TooBig)
		s.Deleted += int64(res.Deleted)
		s.Bytes += res.Bytes
		if listed {
			s.OnServer = res.OnServer
			s.NoUIDL = noUIDL
		}
		return tx.PutPOP3Status(f.acct.Name, s)
	})
	if err != nil {
		return fmt.Errorf("pop3 account %q: save status: %w", f.acct.Name, err)
	}
	return nil
}

func humanBytes(n int64) string { return units.Bytes(n) }
