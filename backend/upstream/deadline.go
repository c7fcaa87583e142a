package upstream

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineConn wraps the dialed TCP connection (below TLS) and gives every
// borrow an inactivity limit that imapclient itself does not have: while
// armed, each Read and Write must finish within timeout of its start, and a
// Write also pushes a pending Read's limit forward (the server is expected
// to answer within timeout of the last command byte sent).
//
// imapclient sets its own deadlines (30 s per response once the first byte
// arrived, none while waiting); those are kept and the earlier of both
// applies. abort makes every operation fail at once (context cancelled).
type deadlineConn struct {
	net.Conn

	mu       sync.Mutex
	armed    bool
	timeout  time.Duration
	aborted  bool
	rdClient time.Time // deadlines imapclient asked for
	wrClient time.Time

	timedOut atomic.Bool // an operation failed with a deadline error; the connection is done for

	reading  bool          // a Read is in progress (guarded by mu)
	readWake chan struct{} // gets a token whenever a Read starts

	firstMu sync.Mutex
	first   []byte // the first few bytes the server sent (TLS sniffing)
	nRead   atomic.Int64
}

func newDeadlineConn(c net.Conn) *deadlineConn {
	return &deadlineConn{Conn: c, readWake: make(chan struct{}, 1)}
}

var pastDeadline = time.Unix(1, 0)

// effectiveLocked combines imapclient's deadline with the borrow limit.
func (d *deadlineConn) effectiveLocked(client time.Time, now time.Time) time.Time {
	if d.aborted || (d.armed && d.timedOut.Load()) {
		// Cancelled, or already timed out while armed: imapclient retries
		// reads after an error, and each must not wait the full limit again.
		return pastDeadline
	}
	if !d.armed {
		return client
	}
	lim := now.Add(d.timeout)
	if client.IsZero() || lim.Before(client) {
		return lim
	}
	return client
}

func (d *deadlineConn) Read(b []byte) (int, error) {
	d.mu.Lock()
	if d.armed || d.aborted {
		_ = d.Conn.SetReadDeadline(d.effectiveLocked(d.rdClient, time.Now()))
	}
	d.reading = true
	select {
	case d.readWake <- struct{}{}:
	default:
	}
	d.mu.Unlock()
	n, err := d.Conn.Read(b)
	d.mu.Lock()
	d.reading = false
	d.mu.Unlock()
	if n > 0 {
		if d.nRead.Load() < 8 {
			d.firstMu.Lock()
			if len(d.first) < 8 {
				d.first = append(d.first, b[:min(n, 8-len(d.first))]...)
			}
			d.firstMu.Unlock()
		}
		d.nRead.Add(int64(n))
	}
	d.noteErr(err)
	return n, err
}

func (d *deadlineConn) Write(b []byte) (int, error) {
	d.mu.Lock()
	if d.armed || d.aborted {
		now := time.Now()
		_ = d.Conn.SetWriteDeadline(d.effectiveLocked(d.wrClient, now))
		// A command is going out: its answer is due within timeout.
		_ = d.Conn.SetReadDeadline(d.effectiveLocked(d.rdClient, now))
	}
	d.mu.Unlock()
	n, err := d.Conn.Write(b)
	d.noteErr(err)
	return n, err
}

func (d *deadlineConn) noteErr(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		d.timedOut.Store(true)
	}
}

func (d *deadlineConn) SetDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rdClient, d.wrClient = t, t
	now := time.Now()
	if err := d.Conn.SetReadDeadline(d.effectiveLocked(t, now)); err != nil {
		return err
	}
	return d.Conn.SetWriteDeadline(d.effectiveLocked(t, now))
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rdClient = t
	return d.Conn.SetReadDeadline(d.effectiveLocked(t, time.Now()))
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wrClient = t
	return d.Conn.SetWriteDeadline(d.effectiveLocked(t, time.Now()))
}

// arm starts an inactivity limit of timeout, including for a Read that is
// already blocked.
func (d *deadlineConn) arm(timeout time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed, d.timeout = true, timeout
	now := time.Now()
	_ = d.Conn.SetReadDeadline(d.effectiveLocked(d.rdClient, now))
	_ = d.Conn.SetWriteDeadline(d.effectiveLocked(d.wrClient, now))
}

// disarm drops the limit again (the connection rests in the pool, where
// the server may stay silent for as long as it likes).
func (d *deadlineConn) disarm() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = false
	if d.aborted {
		return
	}
	_ = d.Conn.SetReadDeadline(d.rdClient)
	_ = d.Conn.SetWriteDeadline(d.wrClient)
}

// abort makes every pending and future operation fail now. The connection
// is unusable afterwards.
func (d *deadlineConn) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	_ = d.Conn.SetDeadline(pastDeadline)
}

func (d *deadlineConn) wasAborted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.aborted
}

// settle waits until imapclient's reader goroutine has finished handling
// everything received so far, i.e. until it asks the connection for more.
//
// It is needed because imapclient completes a command (Wait returns)
// before it updates its state: right after Select().Wait() or
// Unselect().Wait(), State() may still show the old state for a moment.
// Once the reader reads again, it is past that update. It returns false if
// that does not happen within limit (the reader is stuck, e.g. on a
// command fn abandoned) or the client closes, and the connection should
// be dropped.
//
// Call it only when no command is outstanding.
func (d *deadlineConn) settle(limit time.Duration, closed <-chan struct{}) bool {
	// A token left from an earlier Read says nothing about now.
	select {
	case <-d.readWake:
	default:
	}
	d.mu.Lock()
	r := d.reading
	d.mu.Unlock()
	if r {
		return true
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-d.readWake: // a Read started after we looked
		return true
	case <-closed:
		return false
	case <-t.C:
		return false
	}
}

// firstBytes returns up to 8 bytes the server sent first.
func (d *deadlineConn) firstBytes() []byte {
	d.firstMu.Lock()
	defer d.firstMu.Unlock()
	return append([]byte(nil), d.first...)
}

// looksLikeTLS reports whether the server's first bytes are a TLS record
// (handshake or alert), i.e. the port expects TLS from the first byte.
func looksLikeTLS(b []byte) bool {
	return len(b) >= 3 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03
}
