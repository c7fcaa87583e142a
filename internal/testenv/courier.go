package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Courier-IMAP, as Debian ships it (package courier-imap), started privately.
//
// Implementation notes:
//
//   - courier-imap conflicts with dovecot-imapd, so its two binaries
//     (imaplogin, imapd) come from the .deb unpacked by debTree; everything
//     else is from installed packages that do not conflict: couriertcpd
//     (courier-base), authdaemond (courier-authdaemon), makeuserdb
//     (courier-authlib-userdb).
//   - Courier's authentication library has its paths compiled in:
//     /etc/courier/authdaemonrc, /etc/courier/userdb.dat and the socket
//     /run/courier/authdaemon/socket. Each instance therefore runs in its own
//     mount namespace (unshare --mount; as a normal user also --user
//     --map-root-user) where Dir/etc is bind-mounted on /etc/courier, a tmpfs
//     on /run and Dir/authrun on /run/courier/authdaemon. authdaemond and
//     couriertcpd started there see only this instance's users; nothing
//     outside Dir is written. Without root they run in a nested user
//     namespace as uid/gid 1000 (= the current user), because Courier's
//     login calls setgroups(2) when it is root, which an unprivileged user
//     namespace forbids.
//   - Users are in a private userdb (authuserdb module) with {SHA256}
//     passwords; mail is a Maildir++ under Dir/home/<user>/Maildir, owned by
//     the system user courier as root and by the current user otherwise.
//   - The settings are Debian's /etc/courier/imapd from the unpacked package,
//     sourced like Debian's init script does, with a few overrides appended:
//     IMAP_IDLE_TIMEOUT (how often IDLE polls without FAM),
//     IMAP_ENHANCEDIDLE, and CourierOptions.Env. STARTTLS is off
//     (imapd-ssl is not read).
//   - Quotas are Maildir++ quotas: a maildirsize file "<bytes>S,<count>C"
//     written before the first login. Without one Courier still advertises
//     QUOTA and answers GETQUOTAROOT with a bare `* QUOTA "ROOT"`.
//   - Courier's greeting cannot be changed, so readiness is "the port greets
//     with Courier-IMAP's banner and the listening socket belongs to this
//     instance's process group" (groupListens).
//   - Stop is SIGKILL to the process group, like Dovecot.

const courierPackages = "courier-base courier-authdaemon courier-authlib-userdb"

var courierDeb = debPkg{name: "courier-imap", companion: "courier-base"}

// CourierUser is one Courier account. QuotaBytes and QuotaMessages of 0
// mean no limit; with both 0 no maildirsize file is written.
type CourierUser struct {
	Name          string
	Password      string
	QuotaBytes    int64
	QuotaMessages int64
}

// CourierOptions configures StartCourier. The zero value gives one user
// "alice" / "alice-pw" with only INBOX, IDLE polling every second, and
// Debian's settings otherwise.
type CourierOptions struct {
	// Users defaults to []CourierUser{{Name: "alice", Password: "alice-pw"}}.
	Users []CourierUser
	// Folders are created (IMAP CREATE, then SUBSCRIBE) for every user
	// below the personal namespace: "Sent" becomes "INBOX.Sent". A new
	// Courier account has only INBOX; hosting providers typically add
	// Sent, Drafts and Trash.
	Folders []string
	// IdlePoll is IMAP_IDLE_TIMEOUT, how often IDLE looks for changes when
	// FAM is not used, in whole seconds. Default 1 s (Debian: 60 s).
	IdlePoll time.Duration
	// EnhancedIdle sets IMAP_ENHANCEDIDLE=1: IDLE is driven by FAM
	// (gamin's gam_server, package gamin). Courier then answers IDLE with
	// "+ entering ENHANCED idle mode". gam_server is a per-user daemon that
	// outlives the instance by some seconds and exits by itself.
	EnhancedIdle bool
	// Env adds or overrides imapd settings (names as in /etc/courier/imapd).
	Env map[string]string
}

// Courier is a running (or stopped) private Courier-IMAP. Its Dir holds
// etc/ (authdaemonrc, userdb, imapd), authrun/, home/<user>/Maildir and
// courier.log. Courier keeps LF on disk and serves CRLF, so use CRLF
// messages for byte-exact round trips through Append.
type Courier struct {
	daemon
	Users []CourierUser

	tree  string // the unpacked courier-imap package
	opts  CourierOptions
	ident courierIdentity

	users sync.Mutex // serialises AddUser
}

type courierIdentity struct {
	root    bool // real root; else a user namespace maps us to root
	mailUID int  // as seen by Courier
	mailGID int
}

func courierBinaries() (tcpd, authdaemond, makeuserdb, unshare string, ok bool) {
	var ok1, ok2, ok3, ok4 bool
	tcpd, ok1 = lookBinary("couriertcpd", "/usr/sbin/couriertcpd")
	// /usr/sbin/authdaemond is a wrapper script that reads the system
	// authdaemonrc; the daemon itself is this one.
	authdaemond, ok2 = executableFile("/usr/lib/courier/courier-authlib/authdaemond")
	makeuserdb, ok3 = lookBinary("makeuserdb", "/usr/sbin/makeuserdb")
	unshare, ok4 = lookBinary("unshare", "/usr/bin/unshare")
	return tcpd, authdaemond, makeuserdb, unshare, ok1 && ok2 && ok3 && ok4
}

func executableFile(path string) (string, bool) {
	st, err := os.Stat(path)
	return path, err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// RequireCourier fails (CI=true) or skips the test unless a private Courier
// can run: the non-conflicting packages installed, the courier-imap .deb
// unpacked (fetched now if needed), and mount namespaces allowed. It
// returns the unpacked tree.
func RequireCourier(t testing.TB) string {
	t.Helper()
	if _, _, _, _, ok := courierBinaries(); !ok {
		missing(t, "couriertcpd, authdaemond, makeuserdb or unshare", courierPackages+" util-linux")
	}
	tree, err := debTree(courierDeb)
	if err != nil {
		unavailable(t, fmt.Sprintf("courier-imap (unpacked privately, never installed): %v", err))
	}
	if err := checkNamespaces(); err != nil {
		unavailable(t, fmt.Sprintf("private Courier needs a mount namespace: %v", err))
	}
	return tree
}

// unavailable is missing for things apt-get install cannot fix by itself.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	} else {
		t.Skip(msg)
	}
}

var (
	nsOnce sync.Once
	nsErr  error
)

// checkNamespaces tries once per process whether unshare can give us a
// private mount namespace (as root) or a user+mount namespace (otherwise).
func checkNamespaces() error {
	nsOnce.Do(func() {
		root := os.Geteuid() == 0
		args := unshareArgs(root)
		probe := "mount -t tmpfs testenv /mnt"
		if !root {
			probe += fmt.Sprintf(" && exec %s --user --map-user=%d --map-group=%d true", args[0], nsMailID, nsMailID)
		}
		out, err := exec.Command(args[0], append(args[1:], "/bin/sh", "-c", probe)...).CombinedOutput()
		if err != nil {
			nsErr = fmt.Errorf("%s failed: %v: %s (run the tests as root, or allow unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0; unshare from util-linux 2.38 or later)",
				strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	})
	return nsErr
}

func unshareArgs(root bool) []string {
	bin, ok := lookBinary("unshare", "/usr/bin/unshare")
	if !ok {
		bin = "unshare"
	}
	if root {
		return []string{bin, "--mount", "--propagation", "private"}
	}
	return []string{bin, "--user", "--map-root-user", "--mount", "--propagation", "private"}
}

// StartCourier starts a private Courier-IMAP and waits until it serves. It
// is stopped at cleanup; if the test failed, its log is printed.
func StartCourier(t testing.TB, opts CourierOptions) *Courier {
	t.Helper()
	tree := RequireCourier(t)
	if opts.EnhancedIdle {
		if _, ok := lookBinary("gam_server", "/usr/libexec/gam_server", "/usr/lib/gamin/gam_server"); !ok {
			missing(t, "gam_server (FAM for IMAP_ENHANCEDIDLE)", "gamin")
		}
	}
	users := opts.Users
	if len(users) == 0 {
		users = []CourierUser{{Name: "alice", Password: "alice-pw"}}
	}

	// Without root, mail belongs to uid/gid 1000 of an inner user namespace
	// (see script); that is the current user outside.
	ident := courierIdentity{root: os.Geteuid() == 0, mailUID: nsMailID, mailGID: nsMailID}
	if ident.root {
		u, err := user.Lookup("courier")
		if err != nil {
			t.Fatalf("testenv: look up system user courier (from package courier-base): %v", err)
		}
		ident.mailUID, _ = strconv.Atoi(u.Uid)
		ident.mailGID, _ = strconv.Atoi(u.Gid)
	}

	dir, err := makeBaseDirNamed("courier-", ident.root)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Courier{
		daemon: daemon{Dir: dir, Host: "127.0.0.1", kind: "courier", logName: "courier.log"},
		tree:   tree,
		opts:   opts,
		ident:  ident,
	}
	c.command, c.ready, c.password = c.command1, c.waitReady, c.Password
	for _, sub := range []string{"etc", "authrun", "home"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if err := c.writeConfig(); err != nil {
		t.Fatalf("testenv: configure courier in %s: %v", dir, err)
	}
	for _, u := range users {
		if err := c.addUserFiles(u); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if err := c.makeUserdb(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c.launch(t, nil)
	for _, u := range users {
		c.createFolders(t, u)
	}
	return c
}

// makeBaseDirNamed is makeBaseDir with another name prefix.
func makeBaseDirNamed(prefix string, root bool) (string, error) {
	parent := os.TempDir()
	if len(parent) > 40 || (root && !traversable(parent)) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return "", fmt.Errorf("create private dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("chmod %s: %w", dir, err)
	}
	return dir, nil
}

// PersonalNamespace is Courier's (Debian default): "INBOX." with '.'.
func (c *Courier) PersonalNamespace() imap.NamespaceDescriptor {
	return imap.NamespaceDescriptor{Prefix: "INBOX.", Delim: '.'}
}

// MailDir is user's Maildir++ root.
func (c *Courier) MailDir(user string) string {
	return filepath.Join(c.Dir, "home", user, "Maildir")
}

// Password is user's password.
func (c *Courier) Password(t testing.TB, user string) string {
	t.Helper()
	c.users.Lock()
	defer c.users.Unlock()
	for _, u := range c.Users {
		if u.Name == user {
			return u.Password
		}
	}
	t.Fatalf("testenv: no Courier user %q", user)
	return ""
}

// writeConfig writes authdaemonrc, Debian's imapd settings plus ours, and
// the start script run inside the namespace.
func (c *Courier) writeConfig() error {
	etc := filepath.Join(c.Dir, "etc")
	rc := "# generated by internal/testenv\n" +
		"authmodulelist=\"authuserdb\"\n" +
		"daemons=1\n" +
		"authdaemonvar=/run/courier/authdaemon\n" +
		"DEBUG_LOGIN=0\n" +
		"DEFAULTOPTIONS=\"\"\n" +
		"LOGGEROPTS=\"\"\n"
	if err := os.WriteFile(filepath.Join(etc, "authdaemonrc"), []byte(rc), 0o644); err != nil {
		return err
	}
	debian, err := os.ReadFile(filepath.Join(c.tree, "etc/courier/imapd"))
	if err != nil {
		return fmt.Errorf("read Debian's imapd settings: %w", err)
	}
	poll := int(c.opts.IdlePoll / time.Second)
	if poll < 1 {
		poll = 1
	}
	var b bytes.Buffer
	b.Write(debian)
	b.WriteString("\n# internal/testenv overrides\n")
	fmt.Fprintf(&b, "IMAP_IDLE_TIMEOUT=%d\n", poll)
	if c.opts.EnhancedIdle {
		b.WriteString("IMAP_ENHANCEDIDLE=1\n")
	} else {
		b.WriteString("IMAP_ENHANCEDIDLE=0\n")
	}
	// Nothing is delivered by the tests; keep imapd from looking for a
	// system sendmail.
	b.WriteString("SENDMAIL=/bin/false\n")
	keys := make([]string, 0, len(c.opts.Env))
	for k := range c.opts.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(c.opts.Env[k]))
	}
	if err := os.WriteFile(filepath.Join(etc, "imapd"), b.Bytes(), 0o644); err != nil {
		return err
	}
	return nil
}

// nsMailID is the uid and gid Courier runs as without root, inside a
// nested user namespace.
const nsMailID = 1000

// scripts returns the two shell scripts run inside the private mount
// namespace: start.sh mounts and then runs run.sh, which starts authdaemond
// and ends by exec'ing couriertcpd, so the process started is the server.
//
// Without root the outer user namespace maps us to root, which Courier's
// login refuses to leave: it calls setgroups(2), and an unprivileged user
// namespace denies that. So run.sh runs in a nested user namespace where
// we are uid/gid 1000; the login then changes to that same uid without
// setgroups.
func (c *Courier) scripts() (start, run string) {
	tcpd, authdaemond, _, unshare, _ := courierBinaries()
	q := shellQuote
	runPath := filepath.Join(c.Dir, "run.sh")
	exec := "exec /bin/sh " + q(runPath)
	if !c.ident.root {
		exec = fmt.Sprintf("exec %s --user --map-user=%d --map-group=%d /bin/sh %s", q(unshare), nsMailID, nsMailID, q(runPath))
	}
	start = strings.Join([]string{
		"set -e",
		"mount -t tmpfs -o mode=0755 testenv-courier /run",
		"mkdir -p /run/courier/authdaemon",
		"mount --bind " + q(filepath.Join(c.Dir, "authrun")) + " /run/courier/authdaemon",
		"mount --bind " + q(filepath.Join(c.Dir, "etc")) + " /etc/courier",
		exec,
	}, "\n") + "\n"
	run = strings.Join([]string{
		"set -e",
		q(authdaemond) + " &",
		"set -a",
		". /etc/courier/imapd",
		"exec " + q(tcpd) + " -address=" + c.Host + " -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS " +
			strconv.Itoa(c.IMAPPort) + " " +
			q(filepath.Join(c.tree, "usr/lib/courier/courier/imaplogin")) + " " +
			q(filepath.Join(c.tree, "usr/bin/imapd")) + " ${MAILDIRPATH}",
	}, "\n") + "\n"
	return start, run
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func validCourierUser(u CourierUser) error {
	if u.Name == "" || strings.ContainsAny(u.Name, "\t\r\n|/ :") || u.Name == "." || u.Name == ".." {
		return fmt.Errorf("invalid Courier user name %q (empty, or contains tab, '|', '/', ':', space or a line break)", u.Name)
	}
	if strings.ContainsAny(u.Password, "\r\n") {
		return fmt.Errorf("password of Courier user %q contains a line break", u.Name)
	}
	return nil
}

// addUserFiles appends u to the userdb source file and creates its
// Maildir (with the quota file). makeUserdb must run afterwards.
func (c *Courier) addUserFiles(u CourierUser) error {
	if err := validCourierUser(u); err != nil {
		return err
	}
	c.users.Lock()
	defer c.users.Unlock()
	for _, o := range c.Users {
		if o.Name == u.Name {
			return fmt.Errorf("Courier user %q added twice", u.Name)
		}
	}
	home := filepath.Join(c.Dir, "home", u.Name)
	maildir := filepath.Join(home, "Maildir")
	for _, d := range []string{home, maildir, filepath.Join(maildir, "cur"), filepath.Join(maildir, "new"), filepath.Join(maildir, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if err := c.chown(d); err != nil {
			return err
		}
	}
	if u.QuotaBytes > 0 || u.QuotaMessages > 0 {
		// Maildir++ quota definition; the usage lines are added by Courier.
		var parts []string
		if u.QuotaBytes > 0 {
			parts = append(parts, fmt.Sprintf("%dS", u.QuotaBytes))
		}
		if u.QuotaMessages > 0 {
			parts = append(parts, fmt.Sprintf("%dC", u.QuotaMessages))
		}
		f := filepath.Join(maildir, "maildirsize")
		if err := os.WriteFile(f, []byte(strings.Join(parts, ",")+"\n"), 0o644); err != nil {
			return err
		}
		if err := c.chown(f); err != nil {
			return err
		}
	}
	sum := sha256.Sum256([]byte(u.Password))
	line := fmt.Sprintf("%s\tuid=%d|gid=%d|home=%s|mail=%s|systempw={SHA256}%s\n",
		u.Name, c.ident.mailUID, c.ident.mailGID, home, maildir, base64.StdEncoding.EncodeToString(sum[:]))
	f, err := os.OpenFile(filepath.Join(c.Dir, "etc", "userdb"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	c.Users = append(c.Users, u)
	return nil
}

func (c *Courier) chown(path string) error {
	if !c.ident.root {
		return nil
	}
	return os.Chown(path, c.ident.mailUID, c.ident.mailGID)
}

// makeUserdb compiles etc/userdb into userdb.dat and userdbshadow.dat,
// which authuserdb re-reads on its next lookup.
func (c *Courier) makeUserdb() error {
	_, _, makeuserdb, _, _ := courierBinaries()
	src := filepath.Join(c.Dir, "etc", "userdb")
	if err := os.Chmod(src, 0o600); err != nil { // makeuserdb insists
		return err
	}
	out, err := exec.Command(makeuserdb, "-f", src).CombinedOutput()
	if err != nil {
		return fmt.Errorf("makeuserdb -f %s: %v: %s", src, err, bytes.TrimSpace(out))
	}
	return nil
}

// AddUser adds an account to the running (or stopped) server.
func (c *Courier) AddUser(t testing.TB, u CourierUser) {
	t.Helper()
	if err := c.addUserFiles(u); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := c.makeUserdb(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c.createFolders(t, u)
}

// createFolders creates and subscribes opts.Folders for u through IMAP, so
// Courier itself chooses the on-disk names.
func (c *Courier) createFolders(t testing.TB, u CourierUser) {
	t.Helper()
	if len(c.opts.Folders) == 0 {
		return
	}
	createAndSubscribe(t, c.IMAPAddr(), u.Name, u.Password, c.PersonalNamespace().Prefix, c.opts.Folders)
}

// createAndSubscribe logs in and creates prefix+name for every name.
func createAndSubscribe(t testing.TB, addr, user, pass, prefix string, names []string) {
	t.Helper()
	cl, err := dialLogin(addr, user, pass)
	if err != nil {
		t.Fatalf("testenv: IMAP login %s@%s: %v", user, addr, err)
	}
	defer cl.Close()
	for _, n := range names {
		if err := cl.Create(prefix+n, nil).Wait(); err != nil {
			t.Fatalf("testenv: create %q for %s: %v", prefix+n, user, err)
		}
		if err := cl.Subscribe(prefix + n).Wait(); err != nil {
			t.Fatalf("testenv: subscribe %q for %s: %v", prefix+n, user, err)
		}
	}
	_ = cl.Logout().Wait()
}

// command1 writes the start scripts and returns the process that runs them
// in a new mount namespace.
func (c *Courier) command1() (*exec.Cmd, error) {
	startSh, runSh := c.scripts()
	script := filepath.Join(c.Dir, "start.sh")
	if err := os.WriteFile(script, []byte(startSh), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "run.sh"), []byte(runSh), 0o644); err != nil {
		return nil, err
	}
	// A socket left by a killed authdaemond would look ready.
	_ = os.Remove(filepath.Join(c.Dir, "authrun", "socket"))
	args := append(unshareArgs(c.ident.root), "/bin/sh", script)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd, nil
}

const courierBanner = "Courier-IMAP ready."

func (c *Courier) waitReady(p *dovecotProc) error {
	deadline := time.Now().Add(startTimeout)
	addr := c.IMAPAddr()
	sock := filepath.Join(c.Dir, "authrun", "socket")
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("courier exited during startup: %v", p.err)
		default:
		}
		line, err := readGreeting(addr)
		switch {
		case err != nil:
			lastErr = err
		case !strings.HasPrefix(line, "* OK ") || !strings.Contains(line, courierBanner):
			lastErr = fmt.Errorf("%s answered with a foreign greeting %q", addr, line)
		case !groupListens(p.cmd.Process.Pid, c.IMAPPort):
			lastErr = fmt.Errorf("%s greets, but the socket is not this instance's", addr)
		default:
			if _, err := os.Stat(sock); err == nil {
				return nil
			}
			lastErr = fmt.Errorf("authdaemond has not created %s yet", sock)
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("courier not ready on %s within %v: %v", addr, startTimeout, lastErr)
}
