package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/crypto/bcrypt"
)

// User is one account allowed to log in.
type User struct {
	Name         string
	PasswordHash string // bcrypt hash, see HashPassword
}

// Options configures a Server. Zero values have documented defaults.
type Options struct {
	// Users allowed to log in. Names are compared exactly.
	Users []User
	// TLSConfig is used for IMAPS (ServeTLS) and STARTTLS. Nil: no STARTTLS
	// and ServeTLS returns an error.
	TLSConfig *tls.Config
	// TrustedNets are the remote addresses allowed to authenticate without
	// TLS. Nil means 127.0.0.0/8 and ::1/128. An empty non-nil slice trusts
	// nobody.
	TrustedNets []netip.Prefix
	// NewSession is called after successful authentication and returns the
	// session the inner imapserver serves. Required.
	NewSession func(c SessionInfo) (imapserver.Session, error)
	// Caps are the inner imapserver's capabilities (IMAP4rev1, UIDPLUS,
	// MOVE, NAMESPACE, SPECIAL-USE, LITERAL+, CHILDREN, ...). They must
	// only list what sessions implement. Nil means IMAP4rev1.
	// UNAUTHENTICATE is not supported.
	Caps imap.CapSet
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// AuthFailDelay is waited before answering a failed login. 0 means 1s.
	AuthFailDelay time.Duration
	// AuthCacheTTL is how long a successful password check is remembered
	// (keyed by an HMAC of user and password), so that reconnecting
	// clients do not cost a bcrypt comparison each. 0 means 5 minutes; a
	// negative value turns the cache off. Failed checks are never cached.
	AuthCacheTTL time.Duration
	// Version is sent in the ID response.
	Version string
	// DebugWriter, if set, receives a protocol trace of every connection,
	// one line per chunk, prefixed with the connection number and C:/S:.
	// LOGIN/AUTHENTICATE commands and SASL responses are redacted.
	DebugWriter io.Writer
}

// SessionInfo describes an authenticated connection.
type SessionInfo struct {
	User       string
	RemoteAddr net.Addr
	TLS        bool
	// WriteUntagged writes complete untagged response lines ("* ...\r\n")
	// to the client, serialised with everything else the connection
	// sends. The inner imapserver flushes after every response line, so a
	// session may call it between the responses it writes (e.g. FLAGS and
	// PERMANENTFLAGS before a FETCH that shows a new keyword). It must not
	// be called while a response is half written.
	WriteUntagged func(line string) error
}

// ErrNoTLSConfig is returned by ServeTLS when Options.TLSConfig is nil.
var ErrNoTLSConfig = errors.New("server: IMAPS needs a TLS configuration (Options.TLSConfig is nil)")

const (
	preAuthReadTimeout = 60 * time.Second
	writeTimeout       = 30 * time.Second
	handshakeTimeout   = 60 * time.Second
	defaultAuthDelay   = time.Second
)

// Server is popbridge's IMAP server.
type Server struct {
	opts      Options
	log       *slog.Logger
	users     atomic.Pointer[userTable]
	creds     *credCache                  // nil when Options.AuthCacheTTL < 0
	compare   func(hash, pw []byte) error // bcrypt.CompareHashAndPassword; tests count calls
	trusted   []netip.Prefix
	authDelay time.Duration
	preCaps   []string // capabilities every pre-auth CAPABILITY starts with
	trace     *traceSink

	inner     *imapserver.Server
	innerLn   *memListener
	innerOnce sync.Once

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{} // raw TCP conns, pre- and post-auth
	wg        sync.WaitGroup
	done      chan struct{} // closed by Close

	nextID atomic.Uint64
}

// New checks opts and returns a Server. It does not listen.
func New(opts Options) (*Server, error) {
	if opts.NewSession == nil {
		return nil, errors.New("server: Options.NewSession is required")
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		trusted:   opts.TrustedNets,
		compare:   bcrypt.CompareHashAndPassword,
		authDelay: opts.AuthFailDelay,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		done:      make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.authDelay <= 0 {
		s.authDelay = defaultAuthDelay
	}
	if s.trusted == nil {
		s.trusted = []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		}
	}
	users, err := newUserTable(opts.Users)
	if err != nil {
		return nil, err
	}
	s.users.Store(users)
	switch {
	case opts.AuthCacheTTL == 0:
		s.creds = newCredCache(credCacheTTL, credCacheMax, nil)
	case opts.AuthCacheTTL > 0:
		s.creds = newCredCache(opts.AuthCacheTTL, credCacheMax, nil)
	}

	caps := opts.Caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}}
	}
	if !caps.Has(imap.CapIMAP4rev1) && !caps.Has(imap.CapIMAP4rev2) {
		return nil, errors.New("server: Options.Caps must contain IMAP4rev1 or IMAP4rev2")
	}
	if caps.Has(imap.CapUnauthenticate) {
		return nil, errors.New("server: UNAUTHENTICATE is not supported (the front door owns authentication)")
	}
	s.opts.Caps = caps
	// Same order as imapserver's availableCaps, plus ID.
	if caps.Has(imap.CapIMAP4rev2) {
		s.preCaps = append(s.preCaps, string(imap.CapIMAP4rev2))
	}
	if caps.Has(imap.CapIMAP4rev1) {
		s.preCaps = append(s.preCaps, string(imap.CapIMAP4rev1), string(imap.CapSASLIR), string(imap.CapLiteralMinus))
	} else {
		s.preCaps = append(s.preCaps, string(imap.CapSASLIR))
	}
	s.preCaps = append(s.preCaps, string(imap.CapID))

	if opts.DebugWriter != nil {
		s.trace = &traceSink{w: opts.DebugWriter}
	}

	s.innerLn = newMemListener()
	s.inner = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			ac, ok := c.NetConn().(*authConn)
			if !ok || ac.session == nil {
				return nil, nil, errors.New("server: connection was not authenticated")
			}
			return ac.session, &imapserver.GreetingData{PreAuth: true}, nil
		},
		Caps:   caps,
		Logger: innerLogger{s.log},
	})
	return s, nil
}

// SetUsers replaces the users allowed to log in, for new logins;
// sessions already open stay open. Remembered password checks are
// forgotten. On error nothing changes.
func (s *Server) SetUsers(users []User) error {
	t, err := newUserTable(users)
	if err != nil {
		return err
	}
	s.users.Store(t)
	if s.creds != nil {
		s.creds.clear()
	}
	return nil
}

// Serve accepts cleartext connections on ln (STARTTLS is offered when
// Options.TLSConfig is set). It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, false)
}

// ServeTLS accepts implicit-TLS (IMAPS) connections on the plain TCP
// listener ln. It returns nil after Close.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opts.TLSConfig == nil {
		return ErrNoTLSConfig
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.startInner()

	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("imap accept failed, retrying", "addr", ln.Addr().String(), "delay", delay, "err", err)
			select {
			case <-time.After(delay):
			case <-s.done:
				return nil
			}
			continue
		}
		delay = 0
		if !s.track(c) {
			c.Close()
			return nil
		}
		go s.serveConn(c, implicitTLS)
	}
}

// startInner starts the inner imapserver on the in-memory listener.
func (s *Server) startInner() {
	s.innerOnce.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.inner.Serve(s.innerLn); err != nil {
				s.log.Error("inner imap server stopped", "err", err)
			}
		}()
	})
}

// track registers a raw connection; false when the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes the listeners and all connections and waits until every
// connection's goroutine, including the inner server's session handling,
// has finished.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.innerLn.Close()
	s.wg.Wait()
	return err
}

// trustedAddr reports whether plaintext authentication is allowed from addr.
func (s *Server) trustedAddr(addr net.Addr) bool {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// innerLogger sends imapserver's log lines to slog. Panics (logged by
// imapserver with their stack) are errors; the rest is connection noise.
type innerLogger struct{ log *slog.Logger }

func (l innerLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, "panic") {
		l.log.Error("imap session: "+msg, "component", "imapserver")
		return
	}
	l.log.Info("imap session: "+msg, "component", "imapserver")
}
