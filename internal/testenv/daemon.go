package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// daemon is what the private Courier and Cyrus share: one process group
// serving IMAP on one loopback port, its log file in Dir, a start that
// retries on another port when the chosen one was taken, a stop like a
// crash, and the Server methods that need only an address and a password.
// The server types embed it and fill in the hooks.
type daemon struct {
	Dir      string // private to the instance
	Host     string // "127.0.0.1"
	IMAPPort int

	kind    string // Kind(), and "<kind>" in errors
	logName string // the log file in Dir that the process writes

	// command returns the process to run (written scripts and settings
	// may depend on IMAPPort); Stdout, Stderr and SysProcAttr are set by
	// start.
	command func() (*exec.Cmd, error)
	// ready waits until the process serves on IMAPPort.
	ready func(p *dovecotProc) error
	// password is the server's Password.
	password func(t testing.TB, user string) string

	mu   sync.Mutex
	proc *dovecotProc
}

func (d *daemon) logPath() string { return filepath.Join(d.Dir, d.logName) }

// Kind names the server.
func (d *daemon) Kind() string { return d.kind }

// IMAPAddr is "127.0.0.1:<IMAPPort>".
func (d *daemon) IMAPAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPPort)) }

// launch registers the stop (and the log on failure) at cleanup, then
// starts the server on a free port, trying other ports while the chosen
// one is taken. configure runs before each attempt, with IMAPPort set.
func (d *daemon) launch(t testing.TB, configure func() error) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			d.logTo(t)
		}
		if err := d.stop(); err != nil {
			t.Errorf("testenv: stop %s: %v", d.kind, err)
		}
	})
	const attempts = 5
	for i := 1; ; i++ {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatalf("testenv: pick a free port: %v", err)
		}
		d.IMAPPort = ports[0]
		if configure != nil {
			if err := configure(); err != nil {
				t.Fatalf("testenv: configure %s in %s: %v", d.kind, d.Dir, err)
			}
		}
		err = d.start()
		if err == nil {
			return
		}
		if errors.Is(err, errAddrInUse) && i < attempts {
			continue
		}
		t.Fatalf("testenv: start %s (attempt %d): %v", d.kind, i, err)
	}
}

// start runs the process and waits until it serves.
func (d *daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		return errors.New("already running")
	}
	cmd, err := d.command()
	if err != nil {
		return err
	}
	logStart := int64(0)
	if st, err := os.Stat(d.logPath()); err == nil {
		logStart = st.Size()
	}
	out, err := os.OpenFile(d.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	p := &dovecotProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	d.proc = p
	err = d.ready(p)
	if err == nil {
		return nil
	}
	d.stopLocked()
	if log := readFrom(d.logPath(), logStart); !errors.Is(err, errAddrInUse) && bytes.Contains(log, []byte("Address already in use")) {
		return fmt.Errorf("%w: %v", errAddrInUse, err)
	}
	return err
}

// readFrom returns the file's content from off on.
func readFrom(path string, off int64) []byte {
	b, _ := os.ReadFile(path)
	if off > int64(len(b)) {
		off = 0
	}
	return b[off:]
}

// Stop kills every process of the instance (SIGKILL), like a crash.
// Stopping twice is fine.
func (d *daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: stop %s: %v", d.kind, err)
	}
}

// Restart stops the server if it runs and starts it again on the same port
// with the same users and mail.
func (d *daemon) Restart(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: stop %s: %v", d.kind, err)
	}
	var err error
	for i := 0; i < 20; i++ {
		if err = d.start(); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(250 * time.Millisecond) // the port is someone else's for now: try again later
	}
	if err != nil {
		t.Fatalf("testenv: restart %s: %v", d.kind, err)
	}
}

func (d *daemon) stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

func (d *daemon) stopLocked() error {
	p := d.proc
	if p == nil {
		return nil
	}
	d.proc = nil
	return killAndWait(p, d.kind)
}

// killAndWait sends SIGKILL to p's process group and waits until every
// member is gone, so the ports are free.
func killAndWait(p *dovecotProc, what string) error {
	pid := p.cmd.Process.Pid
	killGroup(pid)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s (pid %d) still running %v after SIGKILL", what, pid, stopTimeout)
	}
	deadline := time.Now().Add(stopTimeout)
	for groupAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of %s's group %d still running %v after SIGKILL", what, pid, stopTimeout)
		}
		time.Sleep(5 * time.Millisecond) // polling for the group to be gone
	}
	return nil
}

func (d *daemon) logTo(t testing.TB) {
	t.Helper()
	if b, err := os.ReadFile(d.logPath()); err == nil && len(b) > 0 {
		t.Logf("%s log %s:\n%s", d.kind, d.logPath(), b)
	}
}

// Client returns a go-imap client logged in as user, closed at cleanup.
func (d *daemon) Client(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	return Login(t, d.IMAPAddr(), user, d.password(t, user))
}

// Append stores msg in mailbox (the server's own name, e.g. "INBOX.Sent")
// and returns its UID.
func (d *daemon) Append(t testing.TB, user, mailbox string, msg []byte, flags []imap.Flag, date time.Time) imap.UID {
	t.Helper()
	return AppendMessage(t, d.IMAPAddr(), user, d.password(t, user), mailbox, msg, flags, date)
}

// Messages lists mailbox in UID order, read-only.
func (d *daemon) Messages(t testing.TB, user, mailbox string) []Msg {
	t.Helper()
	return MailboxMessages(t, d.IMAPAddr(), user, d.password(t, user), mailbox)
}
