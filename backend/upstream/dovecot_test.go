package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/testenv"
)

const (
	testUser = "alice"
	testPass = "alice-pw"
)

func startDovecot(t *testing.T) *testenv.Dovecot {
	t.Helper()
	return testenv.StartDovecot(t, testenv.DovecotOptions{
		TLS:   true,
		Users: []testenv.DovecotUser{{Name: testUser, Password: testPass}},
	})
}

func testMessage(subject string) []byte {
	return []byte("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@example.org>\r\n\r\nHello.\r\n")
}

func TestCheckModes(t *testing.T) {
	d := startDovecot(t)
	tests := []struct {
		name    string
		tls     TLSMode
		port    int
		auth    AuthMech
		wantVia string
	}{
		{"plain over implicit TLS", TLSImplicit, d.IMAPSPort, AuthPlain, "AUTHENTICATE PLAIN"},
		{"login over implicit TLS", TLSImplicit, d.IMAPSPort, AuthLogin, "LOGIN"},
		{"plain over STARTTLS", TLSStartTLS, d.IMAPPort, AuthPlain, "AUTHENTICATE PLAIN"},
		{"login over STARTTLS", TLSStartTLS, d.IMAPPort, AuthLogin, "LOGIN"},
		{"plain without TLS on loopback", TLSNone, d.IMAPPort, AuthPlain, "AUTHENTICATE PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, dials := newTestPool(t, Options{
				Host: d.Host, Port: tt.port, TLS: tt.tls, TLSConfig: d.TLSConfig(),
				Username: testUser, Auth: tt.auth, Password: password(testPass),
			})
			if p.Caps() != nil {
				t.Errorf("Caps before login = %v, want nil", p.Caps())
			}
			if err := p.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			caps := p.Caps()
			if !caps.Has(imap.CapIMAP4rev1) || !caps.Has(imap.CapIdle) || caps.Has(imap.AuthCap("PLAIN")) {
				t.Errorf("Caps after login = %v: want IMAP4rev1 and IDLE, and no AUTH= (those are pre-login)", caps)
			}
			idle := peekIdle(p)
			if len(idle) != 1 || idle[0].authVia != tt.wantVia {
				t.Fatalf("idle connections after Check: %d, logged in via %q; want 1 via %q", len(idle), idle[0].authVia, tt.wantVia)
			}
			// The checked connection is reused.
			err := p.Do(context.Background(), func(c *imapclient.Client) error {
				_, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
				return err
			})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if n, _, _ := dials.counts(); n != 1 {
				t.Errorf("dials = %d, want 1 (Check's connection reused)", n)
			}
		})
	}
}

func TestWrongPasswordFailsFast(t *testing.T) {
	d := startDovecot(t)
	var calls atomic.Int32
	p, dials := newTestPool(t, Options{
		Host: d.Host, Port: d.IMAPSPort, TLS: TLSImplicit, TLSConfig: d.TLSConfig(),
		Username: testUser,
		Password: func(context.Context) (string, error) {
			calls.Add(1)
			return "wrong-secret-pw", nil
		},
	})
	err := p.Check(context.Background())
	e := asError(t, err, KindAuth)
	if !IsAuth(err) {
		t.Error("IsAuth = false")
	}
	msg := err.Error()
	mustContain(t, msg, "127.0.0.1:"+strconv.Itoa(d.IMAPSPort), `"alice"`, "app password", "AUTHENTICATIONFAILED", `auth = "xoauth2"`)
	if strings.Contains(msg, "wrong-secret-pw") {
		t.Errorf("message leaks the password: %q", msg)
	}
	n1, _, _ := dials.counts()

	// Right after: same error, no new connection, password not asked.
	err2 := p.Check(context.Background())
	if err2 != error(e) {
		t.Errorf("second Check = %v, want the very same *Error", err2)
	}
	err3 := p.Do(context.Background(), func(*imapclient.Client) error {
		t.Error("fn ran although the login is blocked")
		return nil
	})
	if err3 != error(e) {
		t.Errorf("Do during back-off = %v, want the same *Error", err3)
	}
	if n2, _, _ := dials.counts(); n2 != n1 || calls.Load() != 1 {
		t.Errorf("during back-off: dials %d→%d, password calls %d; want no new dial and 1 call", n1, n2, calls.Load())
	}

}

func TestConnectionRefused(t *testing.T) {
	port := closedPort(t)
	p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: port, TLS: TLSImplicit, Username: "u", Password: password("p")})
	err := p.Check(context.Background())
	asError(t, err, KindConnect)
	mustContain(t, err.Error(), fmt.Sprintf("cannot connect to 127.0.0.1:%d", port), "connection refused", "is the host and port right?")
	// Not an auth failure: no back-off, the next Do tries again.
	err = p.Do(context.Background(), func(*imapclient.Client) error { return nil })
	asError(t, err, KindConnect)
}

func TestTLSMismatch(t *testing.T) {
	d := startDovecot(t)
	tests := []struct {
		name  string
		mode  TLSMode
		port  int
		cfg   *tls.Config
		kind  ErrorKind
		wants []string
	}{
		{"implicit TLS against the plain port", TLSImplicit, d.IMAPPort, d.TLSConfig(), KindTLS,
			[]string{"TLS with 127.0.0.1:" + strconv.Itoa(d.IMAPPort), "plaintext where TLS was expected", `port 993 is tls = "implicit", port 143 is tls = "starttls"`}},
		{"STARTTLS against the IMAPS port", TLSStartTLS, d.IMAPSPort, d.TLSConfig(), KindTLS,
			[]string{"TLS with 127.0.0.1:" + strconv.Itoa(d.IMAPSPort), "TLS from the first byte", `port 993 is tls = "implicit"`}},
		{"self-signed certificate, verification on", TLSImplicit, d.IMAPSPort, nil, KindTLS,
			[]string{"not trusted", "certificate verification is on"}},
		{"self-signed certificate over STARTTLS", TLSStartTLS, d.IMAPPort, nil, KindTLS,
			[]string{"not trusted"}},
		{"certificate for another host name", TLSImplicit, d.IMAPSPort, &tls.Config{RootCAs: d.TLSConfig().RootCAs, ServerName: "imap.example.com"}, KindTLS,
			[]string{"different host name", "imap.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPool(t, Options{
				Host: d.Host, Port: tt.port, TLS: tt.mode, TLSConfig: tt.cfg,
				Username: testUser, Password: password(testPass),
				DialTimeout: 5 * time.Second,
			})
			err := p.Check(context.Background())
			asError(t, err, tt.kind)
			mustContain(t, err.Error(), tt.wants...)
		})
	}
}

func TestMaxConnections(t *testing.T) {
	d := startDovecot(t)
	p, dials := newTestPool(t, Options{
		Host: d.Host, Port: d.IMAPPort, TLS: TLSNone,
		Username: testUser, Password: password(testPass), MaxConnections: 2,
	})
	// The first two borrowers wait for each other, so two connections
	// certainly exist; the other four must reuse them.
	var entered atomic.Int32
	both := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Do(context.Background(), func(c *imapclient.Client) error {
				if c.State() != imap.ConnStateAuthenticated || c.Mailbox() != nil {
					return fmt.Errorf("borrower %d got state %v, mailbox %v", i, c.State(), c.Mailbox())
				}
				if n := entered.Add(1); n == 2 {
					close(both)
				} else if n < 2 {
					select {
					case <-both:
					case <-time.After(waitLimit):
						return errors.New("the second borrower never came")
					}
				}
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					return err
				}
				return c.Noop().Wait()
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Do: %v", err)
		}
	}
	n, open, maxOpen := dials.counts()
	if n != 2 || maxOpen != 2 || open != 2 {
		t.Errorf("dials = %d, max open = %d, open now = %d; want 2, 2, 2", n, maxOpen, open)
	}
}

func TestDoLeavesNothingSelected(t *testing.T) {
	d := startDovecot(t)
	d.Append(t, testUser, "INBOX", testMessage("one"), nil, time.Time{})
	p, dials := newTestPool(t, Options{
		Host: d.Host, Port: d.IMAPPort, TLS: TLSNone,
		Username: testUser, Password: password(testPass), MaxConnections: 1,
	})
	ctx := context.Background()
	err := p.Do(ctx, func(c *imapclient.Client) error {
		data, err := c.Select("INBOX", nil).Wait()
		if err == nil && data.NumMessages != 1 {
			err = fmt.Errorf("INBOX has %d messages, want 1", data.NumMessages)
		}
		return err
	})
	if err != nil {
		t.Fatalf("Do select: %v", err)
	}
	// Same connection: nothing selected, as the client and as the server see it.
	err = p.Do(ctx, func(c *imapclient.Client) error {
		if c.State() != imap.ConnStateAuthenticated || c.Mailbox() != nil {
			return fmt.Errorf("state %v, mailbox %v; want authenticated, none", c.State(), c.Mailbox())
		}
		return c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Close()
	})
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeBad {
		t.Fatalf("FETCH with nothing selected: %v, want the server's BAD", err)
	}
	// A NO/BAD keeps the connection.
	if err := p.Do(ctx, func(c *imapclient.Client) error { return c.Noop().Wait() }); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := dials.counts(); n != 1 {
		t.Errorf("dials = %d, want 1", n)
	}
}

func TestReconnectAfterRestart(t *testing.T) {
	d := startDovecot(t)
	p, dials := newTestPool(t, Options{
		Host: d.Host, Port: d.IMAPSPort, TLS: TLSImplicit, TLSConfig: d.TLSConfig(),
		Username: testUser, Password: password(testPass), MaxConnections: 1,
	})
	ctx := context.Background()
	noop := func(c *imapclient.Client) error { return c.Noop().Wait() }
	if err := p.Do(ctx, noop); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	if err := p.Do(ctx, noop); err != nil {
		t.Fatalf("Do after restart: %v", err)
	}
	if n, open, _ := dials.counts(); n != 2 || open != 1 {
		t.Errorf("dials = %d, open = %d; want 2, 1", n, open)
	}

	// Server gone: a clear connect error naming host and port, then back.
	d.Stop(t)
	err := p.Do(ctx, noop)
	asError(t, err, KindConnect)
	mustContain(t, err.Error(), "127.0.0.1:"+strconv.Itoa(d.IMAPSPort), "connection refused")
	d.Restart(t)
	if err := p.Do(ctx, noop); err != nil {
		t.Fatalf("Do after the server is back: %v", err)
	}
}

func TestConnectionLostDuringDo(t *testing.T) {
	d := startDovecot(t)
	p, _ := newTestPool(t, Options{
		Host: d.Host, Port: d.IMAPPort, TLS: TLSNone,
		Username: testUser, Password: password(testPass), MaxConnections: 1,
	})
	ctx := context.Background()
	err := p.Do(ctx, func(c *imapclient.Client) error {
		d.Stop(t)
		return c.Noop().Wait()
	})
	e := asError(t, err, KindDisconnected)
	mustContain(t, e.Error(), "closed the connection", "127.0.0.1:"+strconv.Itoa(d.IMAPPort))
	d.Restart(t)
	if err := p.Do(ctx, func(c *imapclient.Client) error { return c.Noop().Wait() }); err != nil {
		t.Fatalf("Do after the server is back: %v", err)
	}
}

func TestWatch(t *testing.T) {
	d := startDovecot(t)
	tests := []struct {
		name        string
		forcePoll   bool
		idleRestart time.Duration
		idleStarts  int // wait for this many IDLE starts before appending
	}{
		{"IDLE", false, 0, 1},
		{"IDLE restarted", false, 20 * time.Millisecond, 3},
		{"NOOP polling", true, 0, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPool(t, Options{
				Host: d.Host, Port: d.IMAPSPort, TLS: TLSImplicit, TLSConfig: d.TLSConfig(),
				Username: testUser, Password: password(testPass),
			})
			p.forcePoll = tt.forcePoll
			if tt.idleRestart > 0 {
				p.idleRestart = tt.idleRestart
			}
			idling := make(chan struct{}, 100)
			p.onIdle = func() { idling <- struct{}{} }
			changes := make(chan struct{}, 100)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.Watch(ctx, "INBOX", 20*time.Millisecond, func() { changes <- struct{}{} })
			}()
			// The first call follows the EXAMINE.
			recv(t, changes, "onChange after EXAMINE")
			for range tt.idleStarts {
				recv(t, idling, "IDLE or polling to start")
			}
			// Drain calls that are not about the append.
			for len(changes) > 0 {
				<-changes
			}
			d.Append(t, testUser, "INBOX", testMessage(fmt.Sprintf("watch-%d", i)), nil, time.Time{})
			recv(t, changes, "onChange after APPEND")
			cancel()
			recv(t, done, "Watch to return")
		})
	}
}

func TestWatchReconnects(t *testing.T) {
	d := startDovecot(t)
	p, dials := newTestPool(t, Options{
		Host: d.Host, Port: d.IMAPPort, TLS: TLSNone,
		Username: testUser, Password: password(testPass),
	})
	idling := make(chan struct{}, 100)
	p.onIdle = func() { idling <- struct{}{} }
	changes := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Watch(ctx, "INBOX", 0, func() { changes <- struct{}{} })
	}()
	recv(t, idling, "IDLE")
	d.Restart(t)
	// Backoff(1) ≈ 1 s, then a new connection idles again.
	recv(t, idling, "IDLE after the restart")
	for len(changes) > 0 {
		<-changes
	}
	d.Append(t, testUser, "INBOX", testMessage("after-restart"), nil, time.Time{})
	recv(t, changes, "onChange after APPEND")
	cancel()
	recv(t, done, "Watch to return")
	if n, open, _ := dials.counts(); n != 2 || open != 0 {
		t.Errorf("dials = %d, open after Watch = %d; want 2, 0", n, open)
	}
}
