package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/popbridge/popbridge/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"golang.org/x/crypto/bcrypt"
)

const (
	testUser = "alice"
	testPass = "s3cret-Pa55word"
)

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// countingHandler counts error records (panics are logged at error level).
type countingHandler struct {
	slog.Handler
	errors *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(attrs), h.errors}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.errors}
}

type testEnv struct {
	s         *Server
	addr      string // cleartext listener, 127.0.0.1
	tlsAddr   string // IMAPS listener
	user      *imapmemserver.User
	log       *syncBuffer
	logErrors *atomic.Int64
	trace     *syncBuffer
	clientTLS *tls.Config
	serveErrs chan error

	// newBackendEnv: the backend's log and its error records.
	backendLog    *syncBuffer
	backendErrors *atomic.Int64
}

var (
	testCertOnce sync.Once
	testCert     tls.Certificate
	testCertErr  error
)

func testCertificate(t testing.TB) tls.Certificate {
	testCertOnce.Do(func() {
		certPEM, keyPEM, err := testenv.SelfSignedCert()
		if err != nil {
			testCertErr = err
			return
		}
		testCert, testCertErr = tls.X509KeyPair(certPEM, keyPEM)
	})
	if testCertErr != nil {
		t.Fatal(testCertErr)
	}
	return testCert
}

func mustHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// newTestEnv starts a server with a cleartext and an IMAPS listener on
// 127.0.0.1, backed by imapmemserver.
func newTestEnv(t testing.TB, mod func(*Options)) *testEnv {
	t.Helper()
	cert := testCertificate(t)
	env := &testEnv{
		user:      imapmemserver.NewUser(testUser, testPass),
		log:       &syncBuffer{},
		logErrors: &atomic.Int64{},
		trace:     &syncBuffer{},
		serveErrs: make(chan error, 2),
	}
	if err := env.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	env.clientTLS = &tls.Config{RootCAs: pool, ServerName: "localhost"}

	logger := slog.New(countingHandler{
		Handler: slog.NewTextHandler(env.log, &slog.HandlerOptions{Level: slog.LevelDebug}),
		errors:  env.logErrors,
	})
	opts := Options{
		Users:         []User{{Name: testUser, PasswordHash: mustHash(t, testPass)}},
		TLSConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		NewSession:    func(SessionInfo) (imapserver.Session, error) { return imapmemserver.NewUserSession(env.user), nil },
		Caps:          imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapNamespace: {}, imap.CapMove: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {}},
		Logger:        logger,
		AuthFailDelay: 20 * time.Millisecond,
		Version:       "1.2.3",
		DebugWriter:   env.trace,
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	env.s = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.addr, env.tlsAddr = ln.Addr().String(), tln.Addr().String()
	go func() { env.serveErrs <- s.Serve(ln) }()
	go func() { env.serveErrs <- s.ServeTLS(tln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for range 2 {
			if err := <-env.serveErrs; err != nil {
				t.Errorf("Serve returned %v after Close, want nil", err)
			}
		}
	})
	return env
}

// rawClient speaks IMAP line by line.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t testing.TB, addr string) (*rawClient, string) {
	t.Helper()
	return dialRawFrom(t, nil, addr)
}

// dialRawFrom dials from a given local address and returns the client and
// the greeting line.
func dialRawFrom(t testing.TB, local net.Addr, addr string) (*rawClient, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	return c, c.line()
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *rawClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (partial %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads len(want) lines and compares them exactly.
func (c *rawClient) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		if got := c.line(); got != w {
			c.t.Fatalf("got line %q, want %q", got, w)
		}
	}
}

// expectPrefix reads a line and checks its start.
func (c *rawClient) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.line()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got line %q, want prefix %q", got, prefix)
	}
	return got
}

// expectEOF checks that the server closed the connection.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
		c.t.Fatalf("want EOF, got %v (after %q)", err, rest)
	}
	if len(rest) > 0 {
		c.t.Fatalf("want EOF, got more data %q", rest)
	}
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "forcibly closed"))
}

// login logs a raw client in and returns the capability list of the OK.
func (c *rawClient) login(tag string) string {
	c.t.Helper()
	c.send(tag + " LOGIN " + testUser + " " + testPass)
	l := c.expectPrefix(tag + " OK [CAPABILITY ")
	caps, ok := strings.CutSuffix(strings.TrimPrefix(l, tag+" OK [CAPABILITY "), "] Logged in")
	if !ok {
		c.t.Fatalf("login answer %q", l)
	}
	return caps
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func dialClient(t testing.TB, addr string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loopbackAlias returns 127.0.0.2 as a local address when this machine
// can dial from it (Linux routes all of 127/8 to lo; macOS does not).
func loopbackAlias(t testing.TB, target string) net.Addr {
	t.Helper()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	d := net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 on this machine: %v", err)
	}
	c.Close()
	return local
}

func prefixes(s ...string) []netip.Prefix {
	var p []netip.Prefix
	for _, x := range s {
		p = append(p, netip.MustParsePrefix(x))
	}
	if p == nil {
		p = []netip.Prefix{}
	}
	return p
}

func hasField(fields, f string) bool {
	for _, x := range strings.Fields(fields) {
		if x == f {
			return true
		}
	}
	return false
}
