package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// conn is one authenticated upstream connection.
type conn struct {
	c        *imapclient.Client
	dc       *deadlineConn
	caps     imap.CapSet // after login
	lastUsed time.Time
	authVia  string // how it logged in, e.g. "AUTHENTICATE PLAIN" (tests, debug log)
	// selected is the mailbox DoSelected left selected ("" = none), selRO
	// whether it was EXAMINEd, selGen the pool's selection generation then.
	selected string
	selRO    bool
	selGen   uint64
}

// connect dials, secures, waits for the greeting and logs in. The caller
// holds a slot. Failures are *Error, ctx's error or ErrClosed.
func (p *Pool) connect(ctx context.Context, handler *imapclient.UnilateralDataHandler) (*conn, error) {
	if err := p.authBlocked(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	raw, err := p.dial(dctx, "tcp", p.addr)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, p.timeoutErr("TCP connection", p.opts.DialTimeout, err)
		}
		return nil, p.newErr(KindConnect, err)
	}
	dc := newDeadlineConn(raw)
	dc.arm(p.opts.DialTimeout)
	stop := context.AfterFunc(ctx, dc.abort)
	cn, err := p.setup(ctx, dc, handler)
	if !stop() && err == nil {
		err = ctx.Err() // cancelled just now: the connection is aborted
		p.discardRaw(cn)
		cn = nil
	}
	if err != nil {
		_ = dc.Close()
		if dc.wasAborted() && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var e *Error
		if errors.As(err, &e) && e.Kind == KindAuth {
			p.noteAuthFailure(e)
		}
		return nil, err
	}
	dc.disarm()
	cn.lastUsed = time.Now()
	p.noteLogin(cn.caps)
	p.log.Debug("upstream connection ready", "tls", string(p.opts.TLS), "via", cn.authVia)
	return cn, nil
}

func (p *Pool) discardRaw(cn *conn) {
	if cn != nil {
		_ = cn.dc.Close()
		go cn.c.Close()
	}
}

// setup runs TLS, greeting and login on a dialed connection.
func (p *Pool) setup(ctx context.Context, dc *deadlineConn, handler *imapclient.UnilateralDataHandler) (*conn, error) {
	opts := &imapclient.Options{UnilateralDataHandler: handler}
	var c *imapclient.Client
	// Every connection reads through respFilter (filter.go).
	switch p.opts.TLS {
	case TLSImplicit:
		tc := tls.Client(dc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, p.tlsErr(dc, "TLS handshake", err)
		}
		c = imapclient.New(p.filter(tc, nil), opts)
	case TLSStartTLS:
		// STARTTLS by hand (imapclient's own would put TLS above the
		// filter), then imapclient on the TLS stream with the greeting it
		// expects: the one the server sent before STARTTLS.
		tc, greeting, err := p.startTLS(ctx, dc)
		if err != nil {
			return nil, p.startTLSErr(dc, err)
		}
		c = imapclient.New(p.filter(tc, greeting), opts)
	default:
		c = imapclient.New(p.filter(dc, nil), opts)
	}
	fail := func(err error) (*conn, error) {
		go c.Close()
		return nil, err
	}
	if err := c.WaitGreeting(); err != nil {
		return fail(p.greetingErr(dc, err))
	}
	cn := &conn{c: c, dc: dc}
	if c.State() == imap.ConnStateNotAuthenticated {
		dc.arm(p.opts.CommandTimeout)
		caps := c.Caps()
		if caps == nil {
			return fail(p.lostErr(dc, "capability list", errors.New("no CAPABILITY reply")))
		}
		via, err := p.login(ctx, dc, c, caps)
		if err != nil {
			return fail(err)
		}
		cn.authVia = via
	} else {
		cn.authVia = "PREAUTH"
	}
	caps := c.Caps()
	if caps == nil {
		return fail(p.lostErr(dc, "capability list", errors.New("no CAPABILITY reply after login")))
	}
	cn.caps = caps.Copy()
	if !dc.settle(settleTimeout, c.Closed()) || c.State() != imap.ConnStateAuthenticated {
		return fail(p.newErr(KindProtocol, fmt.Errorf("connection in state %v after login, want authenticated", c.State())))
	}
	return cn, nil
}

// filter puts respFilter on a connection; what it mends is logged once
// per pool and kind.
func (p *Pool) filter(c net.Conn, prefix []byte) *respFilter {
	f := newRespFilter(c, prefix)
	f.onFix = func(what string) {
		p.mu.Lock()
		seen := p.mended[what]
		if p.mended == nil {
			p.mended = map[string]bool{}
		}
		p.mended[what] = true
		p.mu.Unlock()
		if !seen {
			p.log.Info("the server sent a response go-imap cannot read; mended it", "response", what)
		}
	}
	return f
}

// startTLS reads the greeting, sends STARTTLS and runs the TLS handshake.
// It returns the TLS connection and the greeting (capabilities dropped: they
// may have changed, and imapclient asks again). A refusal is an *imap.Error.
func (p *Pool) startTLS(ctx context.Context, dc *deadlineConn) (*tls.Conn, []byte, error) {
	// Sent at once, as imapclient does: a server that expects TLS from the
	// first byte answers it with a TLS alert instead of leaving us waiting.
	if _, err := dc.Write([]byte("P0 STARTTLS\r\n")); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(dc, 4096)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasPrefix(greeting, "* OK") {
		if strings.HasPrefix(greeting, "* BYE") {
			return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: strings.TrimSpace(strings.TrimPrefix(greeting, "* BYE"))}
		}
		if len(greeting) > 80 {
			greeting = greeting[:80]
		}
		return nil, nil, fmt.Errorf("unexpected greeting %q", greeting)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, err
		}
		if !strings.HasPrefix(line, "P0 ") {
			continue // untagged data before the answer
		}
		if rest := strings.TrimPrefix(line, "P0 "); !strings.HasPrefix(strings.ToUpper(rest), "OK") {
			typ, text, _ := strings.Cut(strings.TrimSpace(rest), " ")
			return nil, nil, &imap.Error{Type: imap.StatusResponseType(strings.ToUpper(typ)), Text: text}
		}
		break
	}
	if br.Buffered() > 0 {
		// Plaintext after the OK would be read as if it came through TLS
		// (the STARTTLS injection of CVE-2011-0411 and kin).
		return nil, nil, errors.New("the server sent data after accepting STARTTLS, before the TLS handshake")
	}
	tc := tls.Client(dc, p.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, err
	}
	return tc, []byte("* OK popbridge: TLS established\r\n"), nil
}

// login authenticates with the configured mechanism.
func (p *Pool) login(ctx context.Context, dc *deadlineConn, c *imapclient.Client, caps imap.CapSet) (string, error) {
	user := p.opts.Username
	switch p.opts.Auth {
	case AuthPlain, AuthLogin:
		pass, err := p.opts.Password(ctx)
		if err != nil {
			e := p.newErr(KindCredentials, err)
			e.detail = "password: " + err.Error()
			return "", e
		}
		if p.opts.Auth == AuthPlain && caps.Has(imap.AuthCap(sasl.Plain)) {
			err := c.Authenticate(sasl.NewPlainClient("", user, pass))
			return "AUTHENTICATE PLAIN", p.loginErr(dc, err)
		}
		if caps.Has(imap.CapLoginDisabled) {
			return "", p.newErr(KindLoginDisabled, errors.New("server advertises LOGINDISABLED"))
		}
		return "LOGIN", p.loginErr(dc, c.Login(user, pass).Wait())
	default: // xoauth2, oauthbearer
		via := "AUTHENTICATE " + XOAUTH2
		if p.opts.Auth == AuthOAuthBearer {
			via = "AUTHENTICATE " + sasl.OAuthBearer
		}
		try := func(refresh bool) error {
			tok, err := p.opts.Token(ctx, refresh)
			if err != nil {
				e := p.newErr(KindCredentials, err)
				e.detail = "OAuth2 token: " + err.Error()
				// A sign-in the user must renew (oauth.ConsentError)
				// already says how; not the token command.
				var consent interface{ ConsentNeeded() bool }
				if errors.As(err, &consent) && consent.ConsentNeeded() {
					e.hint = "the console or `popbridge login` signs in again"
				}
				return e
			}
			var sc sasl.Client
			var failure func() *oauthError
			if p.opts.Auth == AuthXOAuth2 {
				x := &xoauth2Client{user: user, token: tok}
				sc, failure = x, func() *oauthError { return x.failure }
			} else {
				o := newOAuthBearerClient(user, tok, p.opts.Host, p.opts.Port)
				sc, failure = o, func() *oauthError { return o.failure }
			}
			err = p.loginErr(dc, c.Authenticate(sc))
			e, ok := err.(*Error)
			if !ok {
				return err
			}
			f := failure()
			var ie *imap.Error
			if f != nil && e.Kind == KindProtocol && errors.As(e.Err, &ie) && ie.Type == imap.StatusResponseTypeBad {
				// The server sent the token error challenge, then
				// disliked the empty response (imapclient sends "=",
				// some servers want an empty line): still a rejected
				// token.
				e.Kind = KindAuth
			}
			if e.Kind == KindAuth {
				e.hint = hintToken
				if f != nil && f.Status != "" {
					e.detail = reasonOf(e.Err) + " (token status " + f.Status + ")"
				}
			}
			return err
		}
		err := try(false)
		if IsAuth(err) {
			p.log.Info("upstream rejected the OAuth2 token; fetching a new one", "user", user)
			err = try(true)
		}
		return via, err
	}
}

// loginErr classifies the result of LOGIN or AUTHENTICATE.
func (p *Pool) loginErr(dc *deadlineConn, err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return p.newErr(authFailure(ie), err)
	}
	return p.lostErr(dc, "login reply", err)
}

// lostErr classifies a failure of an established connection.
func (p *Pool) lostErr(dc *deadlineConn, op string, err error) error {
	if dc.timedOut.Load() {
		return p.timeoutErr(op, p.opts.CommandTimeout, err)
	}
	return p.newErr(KindDisconnected, err)
}

// tlsErr classifies a failed implicit-TLS handshake.
func (p *Pool) tlsErr(dc *deadlineConn, op string, err error) error {
	if dc.timedOut.Load() {
		e := p.timeoutErr(op, p.opts.DialTimeout, err)
		e.hint = hintTLSPorts
		return e
	}
	e := p.newErr(KindTLS, err)
	e.detail, e.hint = tlsDetail(err)
	if dc.nRead.Load() == 0 && e.hint == "" {
		var rec tls.RecordHeaderError
		if !errors.As(err, &rec) {
			e.detail = "the server closed the connection during the TLS handshake: " + reasonOf(err)
		}
	}
	return e
}

// startTLSErr classifies a failed STARTTLS (before or during the handshake).
func (p *Pool) startTLSErr(dc *deadlineConn, err error) error {
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		e := p.newErr(KindTLS, err)
		e.detail = "the server does not offer STARTTLS (it answered: " + reasonOf(err) + ")"
		return e
	case looksLikeTLS(dc.firstBytes()):
		e := p.newErr(KindTLS, err)
		e.detail = "the server expects TLS from the first byte, not STARTTLS"
		return e
	case dc.timedOut.Load():
		e := p.timeoutErr("answer to STARTTLS", p.opts.DialTimeout, err)
		e.hint = hintTLSPorts
		return e
	case dc.nRead.Load() == 0:
		e := p.newErr(KindTLS, err)
		e.detail = "the server closed the connection without an IMAP greeting; it may expect TLS from the first byte"
		return e
	}
	e := p.newErr(KindTLS, err)
	e.detail, e.hint = tlsDetail(err)
	return e
}

// greetingErr classifies a missing or negative greeting.
func (p *Pool) greetingErr(dc *deadlineConn, err error) error {
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		e := p.newErr(KindProtocol, err)
		e.detail = "the server refused the connection: " + reasonOf(err)
		return e
	case p.opts.TLS != TLSImplicit && looksLikeTLS(dc.firstBytes()):
		e := p.newErr(KindTLS, err)
		e.detail = "the server expects TLS from the first byte"
		return e
	case dc.timedOut.Load():
		e := p.timeoutErr("IMAP greeting", p.opts.DialTimeout, err)
		if p.opts.TLS == TLSNone {
			e.hint = `if this port expects TLS from the first byte (usually 993), use tls = "implicit"`
		}
		return e
	case dc.nRead.Load() == 0:
		e := p.newErr(KindProtocol, err)
		e.detail = "the server closed the connection without an IMAP greeting"
		return e
	}
	e := p.newErr(KindProtocol, err)
	e.detail = "no valid IMAP greeting: " + reasonOf(err)
	return e
}
