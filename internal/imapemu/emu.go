package imapemu

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/internal/testenv"
)

// User is an account of an emulated provider. Token is the OAuth2 access
// token accepted by AUTHENTICATE XOAUTH2 (and OAUTHBEARER on Gmail).
type User struct {
	Name     string
	Password string
	Token    string
}

// Options configures StartGmail and StartM365.
type Options struct {
	// Users defaults to one user "alice" with password "alice-pw" and token
	// "alice-token".
	Users []User
	// Limits overrides the provider's limits (zero fields keep them).
	Limits Limits
	// Now is the clock for daily upload limits, throttling windows and
	// default INTERNALDATEs; default time.Now.
	Now func() time.Time
	// FlagsFirst, for the messages whose UID it accepts, precedes the
	// first FETCH response of the message in a session that carries more
	// than UID and FLAGS with an unsolicited FETCH (UID FLAGS) of the
	// same message, as a server does when another client changes the
	// message's flags while the command runs (RFC 3501 7.4.2: a FETCH
	// response may come at any time). A client library that takes the
	// first response for a message as the answer gets only its flags.
	FlagsFirst func(uid imap.UID) bool
	// TLS additionally listens for implicit TLS (IMAPS, as the providers
	// do on port 993) with a self-signed certificate (Server.CertPEM).
	TLS bool
}

// Failure makes the server refuse commands, to test a client's handling
// of transient errors: the next Times commands named Command get Response.
// A command with a synchronising literal (APPEND) gets its "+" and is read
// whole first, as for a failure found after the upload; throttling, in
// contrast, refuses before the "+" (as Exchange does).
type Failure struct {
	// Command is the command name as sent ("APPEND", "UID FETCH",
	// "SELECT", "LOGIN", ...); "" matches any command.
	Command string
	// Times defaults to 1.
	Times int
	// Response is the status after the tag, e.g. GmailUnavailable.
	Response string
	// Bye, if not empty, is sent as "* BYE <Bye>" after Response, and the
	// connection is closed (Gmail does this when it sheds load).
	Bye string
}

// Responses the providers are documented (or widely reported) to send.
const (
	// GmailUnavailable is Gmail's answer when it sheds load.
	GmailUnavailable = "NO [UNAVAILABLE] Temporary System Problem. Try again later. (Failure)"
	// GmailBandwidth is Gmail's answer once an account exceeded its
	// command or bandwidth limits (also used for the daily upload limit).
	GmailBandwidth = "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"
	// M365ServerUnavailable is Exchange Online's generic transient failure.
	M365ServerUnavailable = "NO Server Unavailable. 15"
)

// Server is a running emulated provider. It satisfies testenv.Server.
type Server struct {
	Host      string // "127.0.0.1"
	IMAPPort  int
	IMAPSPort int    // 0 unless Options.TLS
	CertPEM   []byte // the self-signed certificate when TLS

	profile *profile
	limits  Limits
	now     func() time.Time
	// flagsFirst is Options.FlagsFirst.
	flagsFirst func(imap.UID) bool
	inner      *imapserver.Server
	innerLn    *chanListener
	tlsConf    *tls.Config
	logs       *logBuffer

	mu       sync.Mutex
	users    []User
	accounts map[string]*account
	ln       net.Listener
	tlsLn    net.Listener
	conns    map[net.Conn]struct{}
	failures []*Failure
	windows  map[string]*window
	closed   bool
}

type window struct {
	start time.Time
	count int
}

var _ testenv.Server = (*Server)(nil)

func start(t testing.TB, p *profile, opts Options) *Server {
	t.Helper()
	s := &Server{
		Host:       "127.0.0.1",
		profile:    p,
		limits:     opts.Limits.resolve(p.defaults),
		now:        opts.Now,
		flagsFirst: opts.FlagsFirst,
		logs:       &logBuffer{},
		accounts:   map[string]*account{},
		conns:      map[net.Conn]struct{}{},
		windows:    map[string]*window{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	users := opts.Users
	if len(users) == 0 {
		users = []User{{Name: "alice", Password: "alice-pw", Token: "alice-token"}}
	}
	for _, u := range users {
		if err := s.addUser(u); err != nil {
			t.Fatalf("imapemu: %v", err)
		}
	}
	s.innerLn = newChanListener()
	s.inner = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			ac, ok := c.NetConn().(*authConn)
			if !ok {
				return nil, nil, errors.New("imapemu: connection did not come through the front")
			}
			return newSession(ac.acct), &imapserver.GreetingData{PreAuth: true}, nil
		},
		Caps:         p.innerCaps,
		InsecureAuth: true,
		Logger:       log.New(s.logs, "imapserver: ", 0),
	})
	go s.inner.Serve(s.innerLn)

	if opts.TLS {
		certPEM, keyPEM, err := testenv.SelfSignedCert()
		if err != nil {
			t.Fatalf("imapemu: %v", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("imapemu: %v", err)
		}
		s.CertPEM = certPEM
		s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	t.Cleanup(func() {
		if t.Failed() {
			if l := s.logs.String(); l != "" {
				t.Logf("%s emulator log:\n%s", p.kind, l)
			}
		}
		s.close()
	})
	if err := s.listen(); err != nil {
		t.Fatalf("imapemu: %v", err)
	}
	return s
}

// listen opens the listeners (on the ports of a previous run, if any) and
// serves them.
func (s *Server) listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ln, err := listenRetry(net.JoinHostPort(s.Host, strconv.Itoa(s.IMAPPort)))
	if err != nil {
		return err
	}
	s.ln = ln
	s.IMAPPort = ln.Addr().(*net.TCPAddr).Port
	go s.accept(ln, false)
	if s.tlsConf != nil {
		tln, err := listenRetry(net.JoinHostPort(s.Host, strconv.Itoa(s.IMAPSPort)))
		if err != nil {
			ln.Close()
			return err
		}
		s.tlsLn = tln
		s.IMAPSPort = tln.Addr().(*net.TCPAddr).Port
		go s.accept(tln, true)
	}
	return nil
}

// listenRetry listens on addr; a fixed port that is briefly taken (by a
// connection in TIME_WAIT elsewhere, or a concurrent test) is retried.
func listenRetry(addr string) (net.Listener, error) {
	var err error
	for range 40 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("listen on %s: %w", addr, err)
}

func (s *Server) accept(ln net.Listener, useTLS bool) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		if useTLS {
			nc = tls.Server(nc, s.tlsConf)
		}
		s.mu.Lock()
		if s.ln == nil && s.tlsLn == nil {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		go s.serveConn(nc)
	}
}

func (s *Server) forget(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// Stop closes the listeners and every connection, like a crash; the mail
// stays. Stopping twice is fine.
func (s *Server) Stop(t testing.TB) { s.stop() }

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.tlsLn != nil {
		s.tlsLn.Close()
		s.tlsLn = nil
	}
	for c := range s.conns {
		c.Close()
	}
	clear(s.conns)
}

// Restart stops the server if it runs and listens again on the same ports
// with the same accounts.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	if err := s.listen(); err != nil {
		t.Fatalf("imapemu: restart %s: %v", s.profile.kind, err)
	}
}

func (s *Server) close() {
	s.stop()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// Closing the listener ends inner.Serve; the connections were closed by
	// stop. (imapserver.Server.Close right after Serve races on its
	// WaitGroup.)
	s.innerLn.Close()
}

// Kind is "gmail" or "m365".
func (s *Server) Kind() string { return string(s.profile.kind) }

// IMAPAddr is "127.0.0.1:<IMAPPort>" (plain IMAP).
func (s *Server) IMAPAddr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.IMAPPort)) }

// IMAPSAddr is "127.0.0.1:<IMAPSPort>" (TLS only).
func (s *Server) IMAPSAddr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.IMAPSPort)) }

// TLSConfig trusts exactly this server's certificate; nil without TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.CertPEM == nil {
		return nil
	}
	return testenv.TLSConfigFor(s.CertPEM)
}

// PersonalNamespace is both providers': no prefix, '/' as the delimiter.
func (s *Server) PersonalNamespace() imap.NamespaceDescriptor {
	return imap.NamespaceDescriptor{Prefix: "", Delim: delim}
}

// Limits are the limits in force.
func (s *Server) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// SetLimits changes the limits from now on (zero fields take the
// provider's defaults, as in Options). Throttling windows start afresh.
func (s *Server) SetLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l.resolve(s.profile.defaults)
	clear(s.windows)
}

func (s *Server) addUser(u User) error {
	if u.Name == "" || strings.ContainsAny(u.Name, "\x00\r\n") || strings.ContainsAny(u.Password, "\x00\r\n") || strings.ContainsAny(u.Token, "\x00\x01\r\n") {
		return fmt.Errorf("invalid user %q (empty name, or NUL, ^A or line breaks in name, password or token)", u.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.accounts[u.Name]; dup {
		return fmt.Errorf("user %q added twice", u.Name)
	}
	s.users = append(s.users, u)
	s.accounts[u.Name] = newAccount(s, u)
	return nil
}

// AddUser adds an account.
func (s *Server) AddUser(t testing.TB, u User) {
	t.Helper()
	if err := s.addUser(u); err != nil {
		t.Fatalf("imapemu: %v", err)
	}
}

func (s *Server) user(name string) (User, *account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Name == name {
			return u, s.accounts[name], true
		}
	}
	return User{}, nil, false
}

// Password is user's password.
func (s *Server) Password(t testing.TB, user string) string {
	t.Helper()
	u, _, ok := s.user(user)
	if !ok {
		t.Fatalf("imapemu: no %s user %q", s.profile.kind, user)
	}
	return u.Password
}

// Token is user's OAuth2 access token.
func (s *Server) Token(t testing.TB, user string) string {
	t.Helper()
	u, _, ok := s.user(user)
	if !ok {
		t.Fatalf("imapemu: no %s user %q", s.profile.kind, user)
	}
	return u.Token
}

// Client returns a go-imap client logged in as user (LOGIN), closed at
// cleanup.
func (s *Server) Client(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	return testenv.Login(t, s.IMAPAddr(), user, s.Password(t, user))
}

// Append stores msg in mailbox through IMAP and returns APPENDUID's UID
// (on Gmail, a duplicate Message-ID gives the existing message's UID).
func (s *Server) Append(t testing.TB, user, mailbox string, msg []byte, flags []imap.Flag, date time.Time) imap.UID {
	t.Helper()
	return testenv.AppendMessage(t, s.IMAPAddr(), user, s.Password(t, user), mailbox, msg, flags, date)
}

// Messages lists mailbox in UID order through IMAP, read-only.
func (s *Server) Messages(t testing.TB, user, mailbox string) []testenv.Msg {
	t.Helper()
	return testenv.MailboxMessages(t, s.IMAPAddr(), user, s.Password(t, user), mailbox)
}

// Fail queues an injected failure (see Failure).
func (s *Server) Fail(f Failure) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.failures = append(s.failures, &f)
	s.mu.Unlock()
}

// takeFailure returns the injected failure for command, if any.
func (s *Server) takeFailure(command string) *Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if f.Command == "" || strings.EqualFold(f.Command, command) {
			f.Times--
			if f.Times <= 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
			return f
		}
	}
	return nil
}

// throttle counts a command of user and returns the backoff if the user
// is over the limit.
func (s *Server) throttle(user string) (time.Duration, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits.CommandsPerWindow <= 0 {
		return 0, false
	}
	w := s.windows[user]
	if w == nil || now.Sub(w.start) >= s.limits.Window {
		w = &window{start: now}
		s.windows[user] = w
	}
	w.count++
	if w.count <= s.limits.CommandsPerWindow {
		return 0, false
	}
	return w.start.Add(s.limits.Window).Sub(now), true
}

// Usage is what an account uses.
type Usage struct {
	StorageBytes  int64 // every stored message once
	UploadedToday int64 // APPEND bytes of the current (UTC) day
	Messages      int   // stored messages
}

// Usage reports user's usage.
func (s *Server) Usage(t testing.TB, user string) Usage {
	t.Helper()
	_, a, ok := s.user(user)
	if !ok {
		t.Fatalf("imapemu: no %s user %q", s.profile.kind, user)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rollDay()
	return Usage{StorageBytes: a.storageUsed(), UploadedToday: a.uploadedBytes, Messages: len(a.storedMessages())}
}

// Folders lists, sorted, the mailboxes that show the message with this
// Message-ID (without angle brackets); nil if there is none. On Gmail these
// are its labels plus All Mail and Starred.
func (s *Server) Folders(t testing.TB, user, messageID string) []string {
	t.Helper()
	_, a, ok := s.user(user)
	if !ok {
		t.Fatalf("imapemu: no %s user %q", s.profile.kind, user)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, mb := range a.mailboxes {
		for _, e := range mb.entries {
			if e.msg.msgID == messageID {
				out = append(out, mb.name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// logBuffer keeps the inner server's log for printing on failure.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// chanListener hands authenticated connections to the inner imapserver.
type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) error {
	select {
	case l.ch <- c:
		return nil
	case <-l.done:
		return net.ErrClosed
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
