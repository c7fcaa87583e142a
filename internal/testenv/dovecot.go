// Dovecot implementation notes:
//
//   - Every Dovecot gets its own directory (Dir) holding dovecot.conf, the
//     passwd-file, base_dir (run/), state_dir (state/), the log, and the mail
//     (mail/<user>, Maildir++ on disk, "/" as the IMAP hierarchy separator).
//     The system configuration under /etc/dovecot is never read.
//   - Ports are picked by listening on 127.0.0.1:0 and closing again; a bind
//     race with another process is detected from Dovecot's own log and
//     retried with fresh ports.
//   - Readiness is "the IMAP port answers with our own greeting": every
//     instance has a random login_greeting, so a port recycled by someone else
//     is never mistaken for ours.
//   - As root (CI), Dovecot's login processes refuse to run as root ("This
//     process must not be run as root") and mail processes refuse uid 0
//     ("Mail access not allowed for root"), so the accounts of the Debian
//     package are used: default_login_user = dovenull, default_internal_user
//     = dovecot, and mail is stored as the dovecot user (mail_uid/mail_gid,
//     first_valid_uid/gid lowered to it, mail/ chowned to it, Dir 0755). As a
//     normal user all of those are the current user and group, and since
//     nothing can chroot or switch users, anvil, imap-login and pop3-login
//     get "chroot =" and auth-worker "user = $default_internal_user".
//     (*Dovecot).config writes the exact lines.
//   - Tests should not wait on Dovecot's punishments: auth_failure_delay = 0
//     and mail_max_userip_connections = 1000.
//   - Stop is SIGKILL to Dovecot's process group (a graceful stop costs a
//     fixed second), then waiting until every member has exited.
//   - Users live in one passwd-file used as both passdb and userdb, because
//     the per-user quota rules are userdb extra fields. Passwords are stored
//     {PLAIN} (loopback-only test data), or {BLF-CRYPT} with
//     DovecotOptions.BcryptCost for benchmarks that compare login costs.

package testenv

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	dovecotPackages = "dovecot-imapd dovecot-pop3d"
	mbsyncPackages  = "isync"

	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
)

// lookBinary finds name on PATH or in the given fallback locations (sbin is
// often missing from a normal user's PATH).
func lookBinary(name string, fallbacks ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, p := range fallbacks {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

func dovecotBinary() (string, bool) {
	return lookBinary("dovecot", "/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
}

func mbsyncBinary() (string, bool) {
	return lookBinary("mbsync", "/usr/bin/mbsync", "/usr/local/bin/mbsync")
}

// missing fails (CI=true) or skips the test, always saying what to install.
func missing(t testing.TB, what, packages string) {
	t.Helper()
	msg := fmt.Sprintf("%s not found: apt-get install -y %s", what, packages)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	} else {
		t.Skip(msg)
	}
}

// RequireDovecot fails the test (when CI=true) or skips it (otherwise) when
// the dovecot binary is not installed. The message names the Debian packages.
func RequireDovecot(t testing.TB) {
	t.Helper()
	if _, ok := dovecotBinary(); !ok {
		missing(t, "dovecot", dovecotPackages)
	}
}

// RequireMbsync is RequireDovecot for mbsync; it returns the binary's path.
func RequireMbsync(t testing.TB) string {
	t.Helper()
	p, ok := mbsyncBinary()
	if !ok {
		missing(t, "mbsync", mbsyncPackages)
	}
	return p
}

// DovecotUser is one mail account. QuotaBytes and QuotaMessages of 0 mean
// unlimited. IMAP GETQUOTAROOT reports STORAGE in units of 1024 octets, so
// QuotaBytes is best a multiple of 1024.
type DovecotUser struct {
	Name          string
	Password      string
	QuotaBytes    int64
	QuotaMessages int64
}

// DovecotOptions configures StartDovecot. The zero value gives one user
// "alice" / "alice-pw" without quota, plain IMAP and POP3 only, and the
// special-use folders.
type DovecotOptions struct {
	// Users defaults to []DovecotUser{{Name: "alice", Password: "alice-pw"}}.
	// Names and passwords must not contain ':' or line breaks (passwd-file).
	Users []DovecotUser
	// TLS additionally listens for IMAPS and POP3S with a generated
	// self-signed certificate (Dovecot.CertPEM) and offers STARTTLS/STLS on
	// the plain ports. Plaintext auth stays allowed everywhere.
	TLS bool
	// NoUIDL is reserved; it currently changes nothing.
	NoUIDL bool
	// NoSpecialUse turns off the default folders. By default every user has
	// Sent (\Sent), Drafts (\Drafts), Trash (\Trash), Junk (\Junk) and
	// Archive (\Archive), created and subscribed on first login.
	NoSpecialUse bool
	// OAuth2IntrospectURL, when set, adds XOAUTH2 and OAUTHBEARER: Dovecot's
	// oauth2 passdb POSTs each token to this RFC 7662 introspection URL
	// (internal/oauthtest's) and accepts it when the answer has
	// "active": "true" and "username" equal to the login name. Passwords
	// keep working for PLAIN and LOGIN.
	OAuth2IntrospectURL string
	// BcryptCost, when > 0, stores the passwords as {BLF-CRYPT} bcrypt
	// hashes of this cost instead of {PLAIN}, so that every login costs
	// Dovecot a bcrypt comparison, as a real server's password scheme does
	// (Dovecot caches no authentication by default).
	BcryptCost int
}

// Dovecot is a running (or stopped) private Dovecot instance.
type Dovecot struct {
	Dir       string // private base dir: dovecot.conf, users, run/, state/, mail/, dovecot.log
	Host      string // "127.0.0.1"
	IMAPPort  int
	POP3Port  int
	IMAPSPort int    // 0 unless TLS
	POP3SPort int    // 0 unless TLS
	CertPEM   []byte // the self-signed certificate when TLS, else nil
	Users     []DovecotUser

	bin      string
	opts     DovecotOptions
	greeting string
	ident    identity

	mu   sync.Mutex
	proc *dovecotProc // nil when stopped
}

type dovecotProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, valid after done
}

// identity is who the Dovecot processes run as.
type identity struct {
	root          bool
	internalUser  string
	internalGroup string
	loginUser     string
	mailUID       int
	mailGID       int
}

func currentIdentity() (identity, error) {
	if os.Geteuid() == 0 {
		internal, err := user.Lookup("dovecot")
		if err != nil {
			return identity{}, fmt.Errorf("look up system user dovecot (from package dovecot-core): %w", err)
		}
		if _, err := user.Lookup("dovenull"); err != nil {
			return identity{}, fmt.Errorf("look up system user dovenull (from package dovecot-core): %w", err)
		}
		grp, err := user.LookupGroupId(internal.Gid)
		if err != nil {
			return identity{}, fmt.Errorf("look up group %s of user dovecot: %w", internal.Gid, err)
		}
		uid, _ := strconv.Atoi(internal.Uid)
		gid, _ := strconv.Atoi(internal.Gid)
		return identity{
			root:          true,
			internalUser:  "dovecot",
			internalGroup: grp.Name,
			loginUser:     "dovenull",
			mailUID:       uid,
			mailGID:       gid,
		}, nil
	}
	u, err := user.Current()
	if err != nil {
		return identity{}, fmt.Errorf("look up current user: %w", err)
	}
	grp, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
	if err != nil {
		return identity{}, fmt.Errorf("look up current group %d: %w", os.Getegid(), err)
	}
	return identity{
		internalUser:  u.Username,
		internalGroup: grp.Name,
		loginUser:     u.Username,
		mailUID:       os.Geteuid(),
		mailGID:       os.Getegid(),
	}, nil
}

// specialUse is the default folder set (RFC 6154 attributes).
var specialUse = []struct{ name, attr string }{
	{"Sent", `\Sent`},
	{"Drafts", `\Drafts`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

// StartDovecot starts a private Dovecot in the foreground and waits until its
// IMAP port greets. It is stopped (and waited for) at cleanup, and its log is
// printed with t.Log if the test failed. Safe for parallel tests.
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	RequireDovecot(t)
	bin, _ := dovecotBinary()

	users := opts.Users
	if len(users) == 0 {
		users = []DovecotUser{{Name: "alice", Password: "alice-pw"}}
	}
	seen := map[string]bool{}
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name, ":/ \t\r\n") {
			t.Fatalf("testenv: invalid Dovecot user name %q (empty, or contains ':', '/', space or line break)", u.Name)
		}
		if strings.ContainsAny(u.Password, ":\r\n") {
			t.Fatalf("testenv: password of Dovecot user %q contains ':' or a line break (not allowed in a passwd-file)", u.Name)
		}
		if seen[u.Name] {
			t.Fatalf("testenv: Dovecot user %q listed twice", u.Name)
		}
		seen[u.Name] = true
	}

	ident, err := currentIdentity()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}

	dir, err := makeBaseDir(ident.root)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	d := &Dovecot{
		Dir:      dir,
		Host:     "127.0.0.1",
		Users:    append([]DovecotUser(nil), users...),
		bin:      bin,
		opts:     opts,
		greeting: "testenv-dovecot-" + randomHex(8),
		ident:    ident,
	}
	if err := d.prepareDir(); err != nil {
		t.Fatalf("testenv: prepare %s: %v", dir, err)
	}
	if opts.TLS {
		certPEM, keyPEM, err := selfSignedCert()
		if err != nil {
			t.Fatalf("testenv: generate TLS certificate: %v", err)
		}
		d.CertPEM = certPEM
		if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}

	// Registered after the RemoveAll above, so it runs first.
	t.Cleanup(func() {
		if t.Failed() {
			d.logTo(t)
		}
		if err := d.stop(); err != nil {
			t.Errorf("testenv: stop dovecot: %v", err)
		}
	})

	const attempts = 5
	for i := 1; ; i++ {
		ports, err := freePorts(4)
		if err != nil {
			t.Fatalf("testenv: pick free ports: %v", err)
		}
		d.IMAPPort, d.POP3Port = ports[0], ports[1]
		if opts.TLS {
			d.IMAPSPort, d.POP3SPort = ports[2], ports[3]
		}
		if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(d.config()), 0o644); err != nil {
			t.Fatalf("testenv: write dovecot.conf: %v", err)
		}
		err = d.start()
		if err == nil {
			return d
		}
		if errors.Is(err, errAddrInUse) && i < attempts {
			continue // lost a race for a port: pick new ones
		}
		t.Fatalf("testenv: start dovecot (attempt %d): %v", i, err) // cleanup prints the log
	}
}

var errAddrInUse = errors.New("address already in use")

// makeBaseDir creates a private directory with a short path: unix socket
// paths under base_dir must stay below ~108 bytes, which t.TempDir's long
// names can exceed. As root every ancestor must be traversable by the
// dovecot/dovenull users.
func makeBaseDir(root bool) (string, error) {
	parent := os.TempDir()
	if len(parent) > 40 || (root && !traversable(parent)) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "dovecot-")
	if err != nil {
		return "", fmt.Errorf("create dovecot dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("chmod dovecot dir %s: %w", dir, err)
	}
	return dir, nil
}

// traversable reports whether every directory from / to dir is o+x.
func traversable(dir string) bool {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == "/" || p == "." {
			return true
		}
	}
}

func (d *Dovecot) prepareDir() error {
	var users strings.Builder
	for _, u := range d.Users {
		// user:password:uid:gid:gecos:home:shell:extra_fields; uid/gid come
		// from mail_uid/mail_gid.
		pw := "{PLAIN}" + u.Password
		if d.opts.BcryptCost > 0 {
			h, err := bcrypt.GenerateFromPassword([]byte(u.Password), d.opts.BcryptCost)
			if err != nil {
				return fmt.Errorf("bcrypt password of %s: %w", u.Name, err)
			}
			pw = "{BLF-CRYPT}" + string(h)
		}
		fmt.Fprintf(&users, "%s:%s::::%s::", u.Name, pw, d.mailDir(u.Name))
		// Dovecot reads quota_rule, quota_rule2, … and stops at the first
		// missing one, so number them densely.
		var rules []string
		if u.QuotaBytes > 0 {
			rules = append(rules, fmt.Sprintf("*:storage=%dB", u.QuotaBytes))
		}
		if u.QuotaMessages > 0 {
			rules = append(rules, fmt.Sprintf("*:messages=%d", u.QuotaMessages))
		}
		for i, r := range rules {
			if i > 0 {
				users.WriteByte(' ')
			}
			key := "userdb_quota_rule"
			if i > 0 {
				key += strconv.Itoa(i + 1)
			}
			users.WriteString(key + "=" + r)
		}
		users.WriteByte('\n')
	}
	// 0644: as root the auth process runs as the dovecot user.
	if err := os.WriteFile(filepath.Join(d.Dir, "users"), []byte(users.String()), 0o644); err != nil {
		return err
	}
	if u := d.opts.OAuth2IntrospectURL; u != "" {
		conf := "introspection_url = " + u + "\nintrospection_mode = post\nforce_introspection = yes\n" +
			"username_attribute = username\nactive_attribute = active\nactive_value = true\n"
		if err := os.WriteFile(filepath.Join(d.Dir, "oauth2.conf"), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	mail := filepath.Join(d.Dir, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		return err
	}
	if d.ident.root {
		if err := os.Chown(mail, d.ident.mailUID, d.ident.mailGID); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dovecot) mailDir(user string) string {
	return filepath.Join(d.Dir, "mail", user)
}

func (d *Dovecot) logPath() string { return filepath.Join(d.Dir, "dovecot.log") }

// config renders dovecot.conf (Dovecot 2.3 syntax).
func (d *Dovecot) config() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	w("# generated by internal/testenv; do not edit")
	w("base_dir = %s", filepath.Join(d.Dir, "run"))
	w("state_dir = %s", filepath.Join(d.Dir, "state"))
	w("log_path = %s", d.logPath())
	w("protocols = imap pop3")
	w("listen = %s", d.Host)
	w("login_greeting = %s", d.greeting)
	if d.opts.OAuth2IntrospectURL != "" {
		w("auth_mechanisms = plain login xoauth2 oauthbearer")
	} else {
		w("auth_mechanisms = plain login")
	}
	w("disable_plaintext_auth = no")
	w("auth_failure_delay = 0")
	w("auth_verbose = yes")
	w("mail_fsync = never")
	w("mail_location = maildir:%s", filepath.Join(d.Dir, "mail", "%u"))

	id := d.ident
	w("default_internal_user = %s", id.internalUser)
	w("default_internal_group = %s", id.internalGroup)
	w("default_login_user = %s", id.loginUser)
	w("mail_uid = %d", id.mailUID)
	w("mail_gid = %d", id.mailGID)
	w("first_valid_uid = %d", id.mailUID)
	w("first_valid_gid = %d", id.mailGID)
	if !id.root {
		// Unprivileged: nothing can chroot or switch users.
		w("service anvil {\n  chroot =\n}")
		w("service auth-worker {\n  user = $default_internal_user\n}")
	}
	loginChroot := ""
	if !id.root {
		loginChroot = "  chroot =\n"
	}

	if d.opts.TLS {
		w("ssl = yes")
		w("ssl_cert = <%s", filepath.Join(d.Dir, "cert.pem"))
		w("ssl_key = <%s", filepath.Join(d.Dir, "key.pem"))
	} else {
		w("ssl = no")
	}

	if d.opts.OAuth2IntrospectURL != "" {
		w("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = %s\n}", filepath.Join(d.Dir, "oauth2.conf"))
		w("passdb {\n  driver = passwd-file\n  mechanisms = plain login\n  args = scheme=PLAIN %s\n}", filepath.Join(d.Dir, "users"))
	} else {
		w("passdb {\n  driver = passwd-file\n  args = scheme=PLAIN %s\n}", filepath.Join(d.Dir, "users"))
	}
	w("userdb {\n  driver = passwd-file\n  args = %s\n}", filepath.Join(d.Dir, "users"))

	// The built-in defaults listen on 143/993/110/995; every listener is
	// overridden, port 0 disables one.
	listener := func(name string, port int, ssl bool) string {
		s := fmt.Sprintf("  inet_listener %s {\n    address = %s\n    port = %d\n", name, d.Host, port)
		if ssl {
			s += "    ssl = yes\n"
		}
		return s + "  }\n"
	}
	w("service imap-login {\n%s%s%s}", loginChroot,
		listener("imap", d.IMAPPort, false), listener("imaps", d.IMAPSPort, d.opts.TLS))
	w("service pop3-login {\n%s%s%s}", loginChroot,
		listener("pop3", d.POP3Port, false), listener("pop3s", d.POP3SPort, d.opts.TLS))

	w("namespace inbox {\n  inbox = yes\n  separator = /")
	if !d.opts.NoSpecialUse {
		for _, m := range specialUse {
			w("  mailbox %s {\n    special_use = %s\n    auto = subscribe\n  }", m.name, m.attr)
		}
	}
	w("}")

	w("mail_plugins = $mail_plugins quota")
	w("protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n  mail_max_userip_connections = 1000\n}")
	w("protocol pop3 {\n  mail_max_userip_connections = 1000\n}")
	w("plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n}")
	return b.String()
}

// start launches `dovecot -F -c dovecot.conf` and waits for the greeting.
func (d *Dovecot) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		return errors.New("already running")
	}
	// Only log lines written from here on count when deciding whether this
	// attempt lost a port race; earlier runs' lines stay for context.
	logStart := int64(0)
	if st, err := os.Stat(d.logPath()); err == nil {
		logStart = st.Size()
	}

	out, err := os.OpenFile(filepath.Join(d.Dir, "dovecot.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(d.bin, "-F", "-c", filepath.Join(d.Dir, "dovecot.conf"))
	cmd.Dir = d.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", d.bin, err)
	}
	p := &dovecotProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	d.proc = p

	err = d.waitGreeting(p)
	if err == nil {
		return nil
	}
	d.stopLocked()
	if bytes.Contains(d.logSince(logStart), []byte("Address already in use")) {
		return fmt.Errorf("%w: %v", errAddrInUse, err)
	}
	return err
}

// waitGreeting polls the IMAP port until it answers with this instance's
// greeting, the process exits, or startTimeout passes.
func (d *Dovecot) waitGreeting(p *dovecotProc) error {
	deadline := time.Now().Add(startTimeout)
	addr := d.IMAPAddr()
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("dovecot exited during startup: %v", p.err)
		default:
		}
		line, err := readGreeting(addr)
		if err == nil {
			if strings.Contains(line, d.greeting) {
				return nil
			}
			return fmt.Errorf("%s answered with a foreign greeting %q", addr, line)
		}
		lastErr = err
		select {
		case <-p.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("no IMAP greeting on %s within %v: %v", addr, startTimeout, lastErr)
}

func readGreeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting from %s: %w", addr, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// Stop stops Dovecot now, like a crash: every Dovecot process gets SIGKILL,
// so connected clients see their connection close without a BYE, and new
// connections are refused once Stop returns. Stopping twice, or stopping
// before cleanup, is fine.
func (d *Dovecot) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: stop dovecot: %v", err)
	}
}

// Restart stops Dovecot if it runs and starts it again with the same ports,
// users and mail.
func (d *Dovecot) Restart(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: stop dovecot: %v", err)
	}
	// The ports are fixed now; if another process grabbed one in between,
	// give it a moment to go away.
	var err error
	for i := 0; i < 20; i++ {
		if err = d.start(); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testenv: restart dovecot: %v", err) // cleanup prints the log
	}
}

func (d *Dovecot) stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

// stopLocked kills the whole process group with SIGKILL and waits until
// every member has exited (so the ports are free). A graceful SIGTERM would
// cost a fixed extra second: Dovecot's master sleeps 1 s for its log process
// before exiting. Maildir and Dovecot's index files are crash-safe, and
// tests stop between commands, so no mail is lost.
func (d *Dovecot) stopLocked() error {
	p := d.proc
	if p == nil {
		return nil
	}
	d.proc = nil
	pid := p.cmd.Process.Pid
	killGroup(pid)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		return fmt.Errorf("dovecot (pid %d) still running %v after SIGKILL", pid, stopTimeout)
	}
	// The master's children are not ours to wait for; watch them go.
	deadline := time.Now().Add(stopTimeout)
	for groupAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of dovecot's group %d still running %v after SIGKILL", pid, stopTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	removeStaleLocks(filepath.Join(d.Dir, "mail"))
	return nil
}

// removeStaleLocks deletes the Maildir lock files a killed Dovecot left
// behind. Dovecot would break them itself, but only once they are older
// than its lock timeout (up to two minutes for dovecot-uidlist.lock), which
// would stall the next test step. Every Dovecot process is gone by now, so
// no lock is held.
func removeStaleLocks(dir string) {
	_ = filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() && strings.HasSuffix(de.Name(), ".lock") {
			_ = os.Remove(path)
		}
		return nil
	})
}

// IMAPAddr is "127.0.0.1:<IMAPPort>".
func (d *Dovecot) IMAPAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPPort)) }

// POP3Addr is "127.0.0.1:<POP3Port>".
func (d *Dovecot) POP3Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.POP3Port)) }

// IMAPSAddr is "127.0.0.1:<IMAPSPort>" (TLS only).
func (d *Dovecot) IMAPSAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPSPort)) }

// POP3SAddr is "127.0.0.1:<POP3SPort>" (TLS only).
func (d *Dovecot) POP3SAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.POP3SPort)) }

// MailDir is where Dovecot keeps user's mail (Maildir++ layout).
func (d *Dovecot) MailDir(user string) string { return d.mailDir(user) }

func (d *Dovecot) password(t testing.TB, user string) string {
	t.Helper()
	for _, u := range d.Users {
		if u.Name == user {
			return u.Password
		}
	}
	t.Fatalf("testenv: no Dovecot user %q", user)
	return ""
}

func (d *Dovecot) logSince(off int64) []byte {
	b, _ := os.ReadFile(d.logPath())
	if off > int64(len(b)) {
		off = 0
	}
	out, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.out"))
	return append(b[off:], out...)
}

// logTo prints Dovecot's log and anything it wrote to stdout/stderr.
func (d *Dovecot) logTo(t testing.TB) {
	t.Helper()
	if b, err := os.ReadFile(d.logPath()); err == nil && len(b) > 0 {
		t.Logf("dovecot log %s:\n%s", d.logPath(), b)
	}
	if b, err := os.ReadFile(filepath.Join(d.Dir, "dovecot.out")); err == nil && len(b) > 0 {
		t.Logf("dovecot stdout/stderr:\n%s", b)
	}
}

// freePorts returns n distinct currently free loopback ports. All listeners
// are held until every port is known, so the ports differ from each other.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
