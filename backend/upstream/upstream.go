// Package upstream is the connection layer to the user's real IMAP server:
// a small pool of authenticated imapclient connections (Do), a startup
// diagnostic (Check), and change notification for one mailbox (Watch).
// It knows nothing about the store, the front server or the merged
// account; those import it.
//
// Implementation notes:
//
//   - At most Options.MaxConnections connections exist at any time, watchers
//     included: a slot (a buffered channel) is taken before dialing and given
//     back only when the TCP connection is closed. An idle connection is
//     preferred over dialing; when every slot is busy, Do blocks. Check and
//     Watch close an idle connection to free a slot if they must.
//   - A connection is used by one borrower at a time. Do returns it in the
//     authenticated state: if fn left a mailbox selected, Do sends UNSELECT.
//     DoSelected leaves its mailbox selected, so the next DoSelected of that
//     mailbox skips the SELECT (a proxied FETCH or STORE is then one round
//     trip); Invalidate forgets every such selection (a folder was renamed
//     or deleted).
//     Without UNSELECT the connection is closed instead of sending CLOSE,
//     because CLOSE silently expunges \Deleted messages of a read-write
//     mailbox. If that clean-up fails, fn's own result still stands (an
//     APPEND that was done must not be reported as failed, or it would be
//     retried and duplicated) and the connection is just dropped.
//   - Any failure that is not a tagged NO/BAD from the server (network error,
//     timeout, cancelled context, a caller error of unknown effect) drops
//     the connection; it is never handed out again. fn is never retried
//     here: the caller knows whether its commands are idempotent.
//   - imapclient has no per-command deadline (it waits for a tagged reply
//     forever, and for a response only once its first byte arrived). The
//     dialed TCP connection is wrapped in a deadlineConn: while a
//     connection is borrowed (or being set up), every read and write must
//     make progress within CommandTimeout (DialTimeout for TCP, TLS and the
//     greeting), and a cancelled context makes the pending operation fail
//     at once. In the pool the connection has no deadline; one idle longer
//     than healthAfter gets a NOOP before it is handed out, and one the
//     server closed (BYE, restart) is noticed through imapclient's Closed.
//   - imapclient completes a command (Wait returns) a moment before it
//     updates State(): right after Select().Wait() the client may still say
//     "authenticated". Before trusting State() (is anything selected? did
//     the login take?), deadlineConn.settle waits until imapclient's reader
//     asks the connection for more bytes, which it does only after that
//     update. A reader that never comes back (a command fn left unfinished)
//     gets the connection dropped after 5 s instead of a hang.
//   - A rejected password is not hammered: after a KindAuth failure every
//     Do and Check returns that same *Error without touching the network
//     for Backoff(n) (n = failures in a row), then the next attempt asks the
//     Password/Token callback again. Token mechanisms first get one retry on
//     the same connection with Token(ctx, true), for an expired token.
//   - PLAIN uses AUTHENTICATE PLAIN when the server offers AUTH=PLAIN (with
//     SASL-IR when offered) and LOGIN otherwise. XOAUTH2 is implemented here
//     (go-sasl lacks it); OAUTHBEARER is go-sasl's client whose error
//     handling is replaced, see sasl.go.
//   - Secrets never reach a log or an error message: errors carry the
//     server's reply text, the user name and host:port only.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TLSMode is how the connection is secured.
type TLSMode string

const (
	TLSImplicit TLSMode = "implicit" // TLS from the first byte (port 993)
	TLSStartTLS TLSMode = "starttls" // plaintext, then STARTTLS (port 143)
	TLSNone     TLSMode = "none"     // plaintext; loopback hosts only
)

// AuthMech is the login mechanism.
type AuthMech string

const (
	AuthPlain       AuthMech = "plain"       // AUTHENTICATE PLAIN, or LOGIN if the server lacks AUTH=PLAIN
	AuthLogin       AuthMech = "login"       // the LOGIN command
	AuthXOAuth2     AuthMech = "xoauth2"     // AUTHENTICATE XOAUTH2 with an OAuth2 access token
	AuthOAuthBearer AuthMech = "oauthbearer" // AUTHENTICATE OAUTHBEARER (RFC 7628)
)

// Options configure a Pool. Zero values get the documented defaults.
type Options struct {
	Host string
	// Port defaults to 993 for implicit TLS and 143 otherwise.
	Port int
	// TLS defaults to implicit.
	TLS TLSMode
	// TLSConfig nil means the system roots, ServerName = Host and TLS 1.2
	// or later. A given config is cloned; an empty ServerName becomes Host
	// and a zero MinVersion TLS 1.2. Certificates are always verified
	// unless the config itself says otherwise.
	TLSConfig *tls.Config
	Username  string
	// Auth defaults to plain.
	Auth AuthMech
	// Password returns the password for plain and login. It is called for
	// every login, so a password file may change while running.
	Password func(ctx context.Context) (string, error)
	// Token returns an OAuth2 access token for xoauth2 and oauthbearer.
	// refresh is true after the server rejected the last token: the token
	// command must be run again rather than a cached token returned.
	Token func(ctx context.Context, refresh bool) (string, error)
	// MaxConnections is the total number of connections, watchers
	// included; default 4. Providers limit simultaneous connections.
	MaxConnections int
	// DialTimeout bounds the TCP connect, TLS handshake and greeting;
	// default 15 s.
	DialTimeout time.Duration
	// CommandTimeout bounds how long a borrowed connection may go without
	// progress; default 2 min. Each read and write gets this long from its
	// start, and the server this long after our last byte to answer. So fn
	// must not sit on a borrowed connection for longer than this without
	// using it (the pending read would time out and the connection drop).
	CommandTimeout time.Duration
	// Logger defaults to slog.Default(). Secrets are never logged.
	Logger *slog.Logger
}

const (
	defaultMaxConnections = 4
	defaultDialTimeout    = 15 * time.Second
	defaultCommandTimeout = 2 * time.Minute
	defaultHealthAfter    = time.Minute
	healthTimeout         = 15 * time.Second
	defaultIdleRestart    = 25 * time.Minute
	defaultPollInterval   = 30 * time.Second
	logoutTimeout         = 2 * time.Second
	settleTimeout         = 5 * time.Second
)

// Pool is a bounded set of authenticated connections to one upstream
// account. It is safe for concurrent use.
type Pool struct {
	opts Options
	addr string
	tls  *tls.Config // nil for TLSNone
	log  *slog.Logger

	slots chan struct{} // one token per existing connection (or one being dialed)
	idle  chan *conn    // authenticated, unused; capacity MaxConnections
	done  chan struct{} // closed by Close

	selGen atomic.Uint64 // bumped by Invalidate

	mu        sync.Mutex
	closed    bool
	caps      imap.CapSet
	authErr   *Error // last rejected login, while authFails > 0
	authFails int
	authUntil time.Time
	mended    map[string]bool // respFilter repairs already logged

	// Test hooks, set before first use.
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	healthAfter time.Duration // idle time after which a NOOP checks a pooled connection
	idleRestart time.Duration // Watch: IDLE is restarted this often
	forcePoll   bool          // Watch: poll with NOOP even if the server has IDLE
	onIdle      func()        // Watch: called each time IDLE (or the poll loop) is running
}

// New validates opts and returns a pool. It does not connect; use Check
// for a startup diagnostic.
func New(opts Options) (*Pool, error) {
	if opts.TLS == "" {
		opts.TLS = TLSImplicit
	}
	if opts.Auth == "" {
		opts.Auth = AuthPlain
	}
	host := strings.TrimSuffix(strings.TrimPrefix(opts.Host, "["), "]")
	if host == "" {
		return nil, errors.New("upstream: host is empty")
	}
	opts.Host = host
	switch opts.TLS {
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !isLoopback(host) {
			return nil, fmt.Errorf(`upstream: tls = "none" sends the password in plaintext and is only allowed for a loopback host (localhost, 127.x.x.x, ::1), not %q: use tls = "implicit" (port 993) or tls = "starttls" (port 143)`, host)
		}
	default:
		return nil, fmt.Errorf(`upstream: unknown tls mode %q (want "implicit", "starttls" or "none")`, opts.TLS)
	}
	if opts.Port == 0 {
		opts.Port = 143
		if opts.TLS == TLSImplicit {
			opts.Port = 993
		}
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("upstream: port %d out of range", opts.Port)
	}
	if opts.Username == "" {
		return nil, errors.New("upstream: user name is empty")
	}
	switch opts.Auth {
	case AuthPlain, AuthLogin:
		if opts.Password == nil {
			return nil, fmt.Errorf("upstream: auth = %q needs a password (password, password_file or password_command)", opts.Auth)
		}
	case AuthXOAuth2, AuthOAuthBearer:
		if opts.Token == nil {
			return nil, fmt.Errorf("upstream: auth = %q needs oauth2_token_command", opts.Auth)
		}
	default:
		return nil, fmt.Errorf(`upstream: unknown auth mechanism %q (want "plain", "login", "xoauth2" or "oauthbearer")`, opts.Auth)
	}
	if opts.MaxConnections < 0 {
		return nil, fmt.Errorf("upstream: max_connections %d is negative", opts.MaxConnections)
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = defaultMaxConnections
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = defaultCommandTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Pool{
		opts:        opts,
		addr:        net.JoinHostPort(host, strconv.Itoa(opts.Port)),
		log:         log.With("upstream", net.JoinHostPort(host, strconv.Itoa(opts.Port))),
		slots:       make(chan struct{}, opts.MaxConnections),
		idle:        make(chan *conn, opts.MaxConnections),
		done:        make(chan struct{}),
		healthAfter: defaultHealthAfter,
		idleRestart: defaultIdleRestart,
	}
	if opts.TLS != TLSNone {
		var cfg *tls.Config
		if opts.TLSConfig != nil {
			cfg = opts.TLSConfig.Clone()
		} else {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		if opts.TLS == TLSImplicit && cfg.NextProtos == nil {
			cfg.NextProtos = []string{"imap"}
		}
		p.tls = cfg
	}
	d := &net.Dialer{}
	p.dial = d.DialContext
	return p, nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// Caps returns the server's capabilities after the most recent login, or
// nil before the first one. The set is a copy.
func (p *Pool) Caps() imap.CapSet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.caps == nil {
		return nil
	}
	return p.caps.Copy()
}

// Check dials and logs in once, for a startup diagnostic; the connection
// then stays in the pool. The error is an *Error (or ctx's error, or
// ErrClosed).
func (p *Pool) Check(ctx context.Context) error {
	if err := p.authBlocked(); err != nil {
		return err
	}
	if err := p.acquireSlot(ctx); err != nil {
		return err
	}
	cn, err := p.connect(ctx, nil)
	if err != nil {
		p.releaseSlot()
		return err
	}
	p.put(cn, true)
	return nil
}

// Do borrows an authenticated connection with nothing selected (dialing
// one if none is idle and fewer than MaxConnections exist, else waiting),
// runs fn and takes the connection back.
//
// fn must finish every command it starts (Wait, Close or Collect). A
// tagged NO or BAD from the server is returned as fn returned it and the
// connection stays usable. Any other failure drops the connection; a lost
// connection is reported as *Error (KindDisconnected or KindTimeout), a
// cancelled ctx as ctx's error. fn is not retried.
func (p *Pool) Do(ctx context.Context, fn func(c *imapclient.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cn, err := p.getPlain(ctx)
	if err != nil {
		return err
	}
	cn.dc.arm(p.opts.CommandTimeout)
	stop := context.AfterFunc(ctx, cn.dc.abort)
	keep := false
	defer func() {
		stop()
		p.put(cn, keep) // also when fn panicked: keep is false then
	}()
	ferr := fn(cn.c)
	keep, err = p.afterUse(ctx, cn, ferr, false)
	return err
}

// DoSelected is Do with mailbox selected (EXAMINEd when readOnly) for fn,
// which must not select anything else. The connection keeps the mailbox
// selected afterwards; a connection that already has it (read-write, or
// read-only when readOnly) is preferred and not selected again. Such a
// connection's view of the mailbox may lag behind what other connections
// did (servers announce new messages at their next command): with fresh,
// a NOOP brings it up to date first — still one round trip less than
// SELECT and UNSELECT. A tagged NO or BAD from fn deselects it, in case
// the mailbox went away.
func (p *Pool) DoSelected(ctx context.Context, mailbox string, readOnly, fresh bool, fn func(c *imapclient.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cn, err := p.getFor(ctx, mailbox)
	if err != nil {
		return err
	}
	cn.dc.arm(p.opts.CommandTimeout)
	stop := context.AfterFunc(ctx, cn.dc.abort)
	keep := false
	defer func() {
		stop()
		p.put(cn, keep)
	}()
	var ferr error
	gen := p.selGen.Load()
	if cn.selected != mailbox || cn.selGen != gen || (cn.selRO && !readOnly) || cn.c.State() != imap.ConnStateSelected {
		cn.selected = ""
		if _, ferr = cn.c.Select(mailbox, &imap.SelectOptions{ReadOnly: readOnly}).Wait(); ferr == nil {
			cn.selected, cn.selRO, cn.selGen = mailbox, readOnly, gen
		}
	} else if fresh {
		ferr = cn.c.Noop().Wait()
	}
	if ferr == nil {
		ferr = fn(cn.c)
	}
	var ie *imap.Error
	keepSel := ferr == nil || !errors.As(ferr, &ie)
	keep, err = p.afterUse(ctx, cn, ferr, keepSel)
	return err
}

// Invalidate makes every pooled connection select its mailbox again
// before the next DoSelected (after a folder was renamed or deleted).
func (p *Pool) Invalidate() { p.selGen.Add(1) }

// getPlain returns a connection with nothing selected. An idle one that
// DoSelected left with a mailbox selected is deselected first: some
// servers refuse commands about the mailbox a connection has open
// read-only (Courier answers APPEND to it with "Current box is selected
// READ-ONLY"), and Do promises fn the authenticated state. UNSELECT where
// the server has it; else CLOSE, but only after EXAMINE (RFC 3501 6.4.2:
// then it expunges nothing); else the connection is dropped for another.
func (p *Pool) getPlain(ctx context.Context) (*conn, error) {
	for {
		cn, err := p.getFor(ctx, "")
		if err != nil || cn.selected == "" {
			return cn, err
		}
		if p.deselect(ctx, cn) {
			return cn, nil
		}
		p.discard(cn)
	}
}

// deselect leaves cn's selected mailbox, as getPlain says; false means cn
// must be dropped.
func (p *Pool) deselect(ctx context.Context, cn *conn) bool {
	var cmd *imapclient.Command
	switch {
	case cn.caps.Has(imap.CapUnselect):
		cmd = cn.c.Unselect()
	case cn.selRO:
		cmd = cn.c.UnselectAndExpunge() // CLOSE of an EXAMINEd mailbox
	default:
		return false
	}
	cn.dc.arm(p.opts.CommandTimeout)
	stop := context.AfterFunc(ctx, cn.dc.abort)
	err := cmd.Wait()
	ok := stop() && err == nil && cn.dc.settle(settleTimeout, cn.c.Closed()) && cn.c.State() == imap.ConnStateAuthenticated
	cn.dc.disarm()
	if ok {
		cn.selected = ""
	}
	return ok
}

// getFor is get preferring an idle connection that has mailbox selected
// ("" : one with nothing selected).
func (p *Pool) getFor(ctx context.Context, mailbox string) (*conn, error) {
	var taken []*conn
scan:
	for {
		select {
		case cn := <-p.idle:
			taken = append(taken, cn)
		default:
			break scan
		}
	}
	var pick *conn
	gen := p.selGen.Load()
	for _, cn := range taken {
		if cn.selected == mailbox && (mailbox == "" || cn.selGen == gen) {
			pick = cn
			break
		}
	}
	if pick == nil && len(taken) > 0 {
		pick = taken[0]
		for _, cn := range taken { // rather one with nothing selected
			if cn.selected == "" {
				pick = cn
				break
			}
		}
	}
	for _, cn := range taken {
		if cn != pick {
			p.idle <- cn // never blocks: these came from it
		}
	}
	if pick != nil {
		if p.healthy(ctx, pick) {
			return pick, nil
		}
		p.discard(pick)
	}
	return p.get(ctx)
}

// afterUse decides whether cn can go back to the pool and what Do returns.
// keepSelected leaves DoSelected's mailbox selected.
func (p *Pool) afterUse(ctx context.Context, cn *conn, ferr error, keepSelected bool) (bool, error) {
	broken := cn.c.State() == imap.ConnStateLogout || isClosed(cn.c)
	switch {
	case cn.dc.wasAborted():
		if ferr == nil {
			return false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return false, ferr
	case cn.dc.timedOut.Load():
		if ferr == nil {
			return false, nil
		}
		return false, p.timeoutErr("answer", p.opts.CommandTimeout, ferr)
	case broken:
		if ferr == nil {
			return false, nil
		}
		return false, p.newErr(KindDisconnected, ferr)
	}
	if ferr != nil {
		var ie *imap.Error
		if !errors.As(ferr, &ie) {
			return false, ferr // unknown effect on the connection's state
		}
	}
	if !cn.dc.settle(settleTimeout, cn.c.Closed()) {
		p.log.Debug("upstream connection busy after use (a command left unfinished?); dropping it")
		return false, ferr
	}
	switch cn.c.State() {
	case imap.ConnStateAuthenticated:
		cn.selected = ""
	case imap.ConnStateSelected:
		if keepSelected && cn.selected != "" {
			return true, ferr
		}
		cn.selected = ""
		if !cn.caps.Has(imap.CapUnselect) {
			return false, ferr
		}
		if err := cn.c.Unselect().Wait(); err != nil {
			p.log.Debug("upstream UNSELECT failed; dropping the connection", "err", err)
			return false, ferr
		}
		if !cn.dc.settle(settleTimeout, cn.c.Closed()) || cn.c.State() != imap.ConnStateAuthenticated {
			return false, ferr
		}
	default:
		return false, ferr
	}
	return true, ferr
}

func isClosed(c *imapclient.Client) bool {
	select {
	case <-c.Closed():
		return true
	default:
		return false
	}
}

// get returns a healthy idle connection or dials a new one.
func (p *Pool) get(ctx context.Context) (*conn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-p.done:
			return nil, ErrClosed
		default:
		}
		var cn *conn
		select {
		case cn = <-p.idle:
		default:
			select {
			case cn = <-p.idle:
			case p.slots <- struct{}{}:
				cn, err := p.connect(ctx, nil)
				if err != nil {
					p.releaseSlot()
					return nil, err
				}
				return cn, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.done:
				return nil, ErrClosed
			}
		}
		if p.healthy(ctx, cn) {
			return cn, nil
		}
		p.discard(cn)
	}
}

// healthy checks an idle connection before it is handed out.
func (p *Pool) healthy(ctx context.Context, cn *conn) bool {
	if isClosed(cn.c) {
		return false
	}
	switch st := cn.c.State(); {
	case st == imap.ConnStateAuthenticated && cn.selected == "":
	case st == imap.ConnStateSelected && cn.selected != "":
	default:
		return false
	}
	if time.Since(cn.lastUsed) < p.healthAfter {
		return true
	}
	cn.dc.arm(min(p.opts.CommandTimeout, healthTimeout))
	stop := context.AfterFunc(ctx, cn.dc.abort)
	err := cn.c.Noop().Wait()
	aborted := !stop()
	cn.dc.disarm()
	return err == nil && !aborted && !cn.dc.wasAborted()
}

// put returns a borrowed connection to the pool, or drops it.
func (p *Pool) put(cn *conn, keep bool) {
	if !keep || cn.dc.wasAborted() {
		p.discard(cn)
		return
	}
	cn.dc.disarm()
	cn.lastUsed = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.logout(cn)
		return
	}
	p.idle <- cn // never blocks: at most MaxConnections connections exist
	p.mu.Unlock()
}

// discard closes a connection at once and frees its slot.
func (p *Pool) discard(cn *conn) {
	_ = cn.dc.Close()
	// imapclient's Close waits for its reader goroutine, which could be
	// stuck handing a response to a command fn abandoned; don't wait here.
	go cn.c.Close()
	p.releaseSlot()
}

// logout says goodbye politely (bounded by logoutTimeout), then closes.
func (p *Pool) logout(cn *conn) {
	cn.dc.arm(logoutTimeout)
	_ = cn.c.Logout().Wait()
	p.discard(cn)
}

func (p *Pool) releaseSlot() { <-p.slots }

// acquireSlot takes a slot for a new connection, closing an idle one to
// make room if every slot is taken.
func (p *Pool) acquireSlot(ctx context.Context) error {
	for {
		select {
		case p.slots <- struct{}{}:
			return nil
		default:
		}
		select {
		case cn := <-p.idle:
			p.logout(cn)
			continue
		default:
		}
		select {
		case p.slots <- struct{}{}:
			return nil
		case cn := <-p.idle:
			p.logout(cn)
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return ErrClosed
		}
	}
}

// Close logs out idle connections and makes every later Do, Check and
// Watch return. Borrowed connections are closed when returned.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	for {
		select {
		case cn := <-p.idle:
			p.logout(cn)
		default:
			return nil
		}
	}
}

// authBlocked returns the last login rejection while its back-off runs.
func (p *Pool) authBlocked() *Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.authErr != nil && time.Now().Before(p.authUntil) {
		return p.authErr
	}
	return nil
}

func (p *Pool) noteAuthFailure(e *Error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.authFails++
	p.authErr = e
	wait := Backoff(p.authFails)
	p.authUntil = time.Now().Add(wait)
	p.log.Warn("upstream rejected the login; not trying again for a while", "user", p.opts.Username, "wait", wait.Round(time.Millisecond), "failures", p.authFails)
}

func (p *Pool) noteLogin(caps imap.CapSet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.authFails, p.authErr = 0, nil
	p.caps = caps
}

func (p *Pool) newErr(kind ErrorKind, err error) *Error {
	return &Error{Kind: kind, Host: p.opts.Host, Port: p.opts.Port, User: p.opts.Username, Err: err}
}

func (p *Pool) timeoutErr(op string, d time.Duration, err error) *Error {
	e := p.newErr(KindTimeout, err)
	e.op, e.timeout = op, d
	return e
}
