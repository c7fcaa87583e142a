package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait on a channel in these tests; reaching it is
// a failure, never part of the synchronisation.
const waitLimit = 20 * time.Second

// dialCounter is the pool's dial hook in tests: it counts TCP connection
// attempts and how many connections are open at once.
type dialCounter struct {
	mu      sync.Mutex
	dials   int
	open    int
	maxOpen int
}

func (d *dialCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials++
	d.mu.Unlock()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.open++
	d.maxOpen = max(d.maxOpen, d.open)
	d.mu.Unlock()
	return &countedConn{Conn: c, d: d}, nil
}

func (d *dialCounter) counts() (dials, open, maxOpen int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials, d.open, d.maxOpen
}

type countedConn struct {
	net.Conn
	d    *dialCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.open--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// newTestPool builds a pool with a counting dialer, closed at cleanup.
func newTestPool(t *testing.T, opts Options) (*Pool, *dialCounter) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	dc := &dialCounter{}
	p.dial = dc.dial
	t.Cleanup(func() { p.Close() })
	return p, dc
}

func password(pw string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return pw, nil }
}

// asError asserts err is an *Error of kind.
func asError(t *testing.T, err error, kind ErrorKind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *upstream.Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("error kind = %v, want %v; error: %v", e.Kind, kind, err)
	}
	return e
}

// mustContain asserts s contains every one of subs.
func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("message %q does not contain %q", s, sub)
		}
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// recv waits for one value on ch, failing after waitLimit.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// peekIdle returns the pool's idle connections without taking them out
// for good.
func peekIdle(p *Pool) []*conn {
	var out []*conn
	for {
		select {
		case cn := <-p.idle:
			out = append(out, cn)
		default:
			for _, cn := range out {
				p.idle <- cn
			}
			return out
		}
	}
}
