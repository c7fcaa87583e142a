package testenv

import (
	"bytes"
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

// Cyrus IMAP 3.6, as Debian ships it (package cyrus-imapd), started
// privately.
//
// Implementation notes:
//
//   - cyrus-imapd conflicts with dovecot-imapd, so its imapd and idled come
//     from the .deb unpacked by debTree; master, ctl_cyrusdb (cyrus-common)
//     and saslpasswd2 (sasl2-bin) are installed normally.
//   - master runs with -C Dir/imapd.conf -M Dir/cyrus.conf -D; every path
//     in them points into Dir (configdirectory, partition, proc, locks,
//     sockets, sasldb), and the imap and idled services' cmd are absolute
//     paths into the unpacked tree. The system's /etc/imapd.conf and
//     /var/lib/cyrus are never read.
//   - Debian's naming defaults are kept on purpose: altnamespace: no and
//     unixhierarchysep: no give the personal namespace "INBOX." with '.'
//     (a user's top-level folders must be below INBOX), autocreate_quota: 0
//     creates the INBOX at first login without a quota.
//   - Passwords are in a private sasldb (saslpasswd2 -f, realm = the
//     instance's servername); sasl_pwcheck_method: auxprop.
//   - A user's INBOX is created by their first login (Debian's
//     autocreate_quota: 0), which StartCyrus and AddUser do; it has the
//     quota root "INBOX" without limits. For a quota, the admin account
//     (Cyrus.AdminUser) then sends SETQUOTA "user.<name>" (RFC 2087;
//     STORAGE in KiB).
//   - idled runs as a DAEMON, so IDLE pushes at once (without it imapd
//     polls every imapidlepoll seconds, 60 by default).
//   - As root, master drops to the system user cyrus (group mail), which
//     owns Dir; otherwise cyrus_user is the current user.
//   - Readiness is our own greeting: the servername is random.
//   - Cyrus logs to syslog only; the log printed on failure is master's
//     stdout/stderr.

const cyrusPackages = "cyrus-common sasl2-bin"

var cyrusDeb = debPkg{name: "cyrus-imapd", companion: "cyrus-common"}

// CyrusUser is one Cyrus account. QuotaBytes is rounded up to whole KiB
// (the unit of Cyrus's STORAGE quota); 0 means no limit.
type CyrusUser struct {
	Name          string
	Password      string
	QuotaBytes    int64
	QuotaMessages int64
}

// CyrusOptions configures StartCyrus. The zero value gives one user
// "alice" / "alice-pw" with only INBOX and Debian's settings.
type CyrusOptions struct {
	// Users defaults to []CyrusUser{{Name: "alice", Password: "alice-pw"}}.
	Users []CyrusUser
	// Folders are created and subscribed for every user below "INBOX.".
	Folders []string
	// SpecialUse gives the Folders named Sent, Drafts, Trash, Junk and
	// Archive their RFC 6154 attribute (CREATE ... (USE (\Sent))), as a
	// provider that pre-creates them would.
	SpecialUse bool
	// Config adds or overrides imapd.conf options.
	Config map[string]string
}

// Cyrus is a running (or stopped) private Cyrus IMAP.
//
// Its Dir holds imapd.conf, cyrus.conf, conf/, spool/, run/, sasldb2 and
// master.log.
type Cyrus struct {
	daemon
	Users         []CyrusUser
	AdminUser     string // may SETQUOTA, CREATE user.<name>, ...
	AdminPassword string

	tree       string
	opts       CyrusOptions
	servername string
	ownerUID   int // -1 when not root
	ownerGID   int
	cyrusUser  string

	users sync.Mutex
}

func cyrusBinaries() (master, ctlCyrusdb, saslpasswd2 string, ok bool) {
	var ok1, ok2, ok3 bool
	master, ok1 = executableFile("/usr/lib/cyrus/bin/master")
	ctlCyrusdb, ok2 = executableFile("/usr/lib/cyrus/bin/ctl_cyrusdb")
	saslpasswd2, ok3 = lookBinary("saslpasswd2", "/usr/sbin/saslpasswd2")
	return master, ctlCyrusdb, saslpasswd2, ok1 && ok2 && ok3
}

// RequireCyrus fails (CI=true) or skips the test unless a private Cyrus
// can run, and returns the unpacked cyrus-imapd tree.
func RequireCyrus(t testing.TB) string {
	t.Helper()
	if _, _, _, ok := cyrusBinaries(); !ok {
		missing(t, "cyrus master, ctl_cyrusdb or saslpasswd2", cyrusPackages)
	}
	tree, err := debTree(cyrusDeb)
	if err != nil {
		unavailable(t, fmt.Sprintf("cyrus-imapd (unpacked privately, never installed): %v", err))
	}
	return tree
}

const cyrusAdmin = "admin"

// StartCyrus starts a private Cyrus IMAP and waits until it greets; users,
// quotas and folders are set up before it returns. It is stopped at
// cleanup.
func StartCyrus(t testing.TB, opts CyrusOptions) *Cyrus {
	t.Helper()
	tree := RequireCyrus(t)
	users := opts.Users
	if len(users) == 0 {
		users = []CyrusUser{{Name: "alice", Password: "alice-pw"}}
	}
	c := &Cyrus{
		daemon:        daemon{Host: "127.0.0.1", kind: "cyrus", logName: "master.log"},
		AdminUser:     cyrusAdmin,
		AdminPassword: "admin-" + randomHex(8),
		tree:          tree,
		opts:          opts,
		servername:    "testenv-cyrus-" + randomHex(6),
		ownerUID:      -1,
		ownerGID:      -1,
	}
	root := os.Geteuid() == 0
	if root {
		u, err := user.Lookup("cyrus")
		if err != nil {
			t.Fatalf("testenv: look up system user cyrus (from package cyrus-common): %v", err)
		}
		c.ownerUID, _ = strconv.Atoi(u.Uid)
		c.ownerGID, _ = strconv.Atoi(u.Gid)
		c.cyrusUser = "cyrus"
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("testenv: look up current user: %v", err)
		}
		c.cyrusUser = u.Username
	}
	dir, err := makeBaseDirNamed("cyrus-", root)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c.Dir = dir
	c.command, c.ready, c.password = c.command1, c.waitGreeting, c.Password
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := c.prepareDir(); err != nil {
		t.Fatalf("testenv: prepare %s: %v", dir, err)
	}
	if err := c.setPassword(c.AdminUser, c.AdminPassword); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, u := range users {
		if err := c.addUserPassword(u); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}

	c.launch(t, c.writeConfig)
	for _, u := range users {
		c.setupUser(t, u)
	}
	return c
}

// PersonalNamespace is Cyrus's with Debian's defaults: "INBOX." and '.'.
func (c *Cyrus) PersonalNamespace() imap.NamespaceDescriptor {
	return imap.NamespaceDescriptor{Prefix: "INBOX.", Delim: '.'}
}

// Password is user's password (also for AdminUser).
func (c *Cyrus) Password(t testing.TB, user string) string {
	t.Helper()
	if user == c.AdminUser {
		return c.AdminPassword
	}
	c.users.Lock()
	defer c.users.Unlock()
	for _, u := range c.Users {
		if u.Name == user {
			return u.Password
		}
	}
	t.Fatalf("testenv: no Cyrus user %q", user)
	return ""
}

func (c *Cyrus) prepareDir() error {
	for _, sub := range []string{"conf", "conf/socket", "spool", "run", "run/proc", "run/lock", "sieve"} {
		p := filepath.Join(c.Dir, sub)
		if err := os.MkdirAll(p, 0o750); err != nil {
			return err
		}
		if err := c.chown(p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cyrus) chown(path string) error {
	if c.ownerUID < 0 {
		return nil
	}
	return os.Chown(path, c.ownerUID, c.ownerGID)
}

// writeConfig writes imapd.conf and cyrus.conf for the current port.
func (c *Cyrus) writeConfig() error {
	d := c.Dir
	// Debian's /etc/imapd.conf values where they shape what clients see;
	// paths are private.
	conf := [][2]string{
		{"configdirectory", filepath.Join(d, "conf")},
		{"proc_path", filepath.Join(d, "run/proc")},
		{"mboxname_lockpath", filepath.Join(d, "run/lock")},
		{"defaultpartition", "default"},
		{"partition-default", filepath.Join(d, "spool")},
		{"altnamespace", "no"},
		{"unixhierarchysep", "no"},
		{"lmtp_downcase_rcpt", "yes"},
		{"allowanonymouslogin", "no"},
		{"autocreate_quota", "0"},
		{"umask", "077"},
		{"sieveusehomedir", "false"},
		{"sievedir", filepath.Join(d, "sieve")},
		{"hashimapspool", "true"},
		{"allowplaintext", "yes"},
		{"sasl_pwcheck_method", "auxprop"},
		{"sasl_auxprop_plugin", "sasldb"},
		{"sasl_sasldb_path", filepath.Join(d, "sasldb2")},
		{"sasl_mech_list", "PLAIN LOGIN"},
		{"sasl_auto_transition", "no"},
		{"servername", c.servername},
		{"syslog_prefix", "cyrus-testenv"},
		{"admins", c.AdminUser},
		{"cyrus_user", c.cyrusUser},
	}
	keys := make([]string, 0, len(c.opts.Config))
	for k := range c.opts.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("# generated by internal/testenv; do not edit\n")
	for _, kv := range conf {
		if _, over := c.opts.Config[kv[0]]; !over {
			fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
		}
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, c.opts.Config[k])
	}
	confPath := filepath.Join(d, "imapd.conf")
	if err := os.WriteFile(confPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	_, ctl, _, _ := cyrusBinaries()
	bin := func(name string) string { return filepath.Join(c.tree, "usr/lib/cyrus/bin", name) }
	cyrusConf := fmt.Sprintf(`# generated by internal/testenv; do not edit
START {
  recover cmd="%s -C %s -r"
}
SERVICES {
  imap cmd="%s -C %s" listen="%s" prefork=0 maxchild=100
}
EVENTS {
}
DAEMON {
  idled cmd="%s -C %s"
}
`, ctl, confPath, bin("imapd"), confPath, c.IMAPAddr(), bin("idled"), confPath)
	return os.WriteFile(filepath.Join(d, "cyrus.conf"), []byte(cyrusConf), 0o644)
}

func validCyrusUser(name string) error {
	if name == "" || strings.ContainsAny(name, ". /:\t\r\n@%*\"\\") || name == cyrusAdmin {
		return fmt.Errorf("invalid Cyrus user name %q (empty, %q, or contains '.', '/', '@', space, wildcards or quotes)", name, cyrusAdmin)
	}
	return nil
}

func (c *Cyrus) addUserPassword(u CyrusUser) error {
	if err := validCyrusUser(u.Name); err != nil {
		return err
	}
	c.users.Lock()
	for _, o := range c.Users {
		if o.Name == u.Name {
			c.users.Unlock()
			return fmt.Errorf("Cyrus user %q added twice", u.Name)
		}
	}
	c.Users = append(c.Users, u)
	c.users.Unlock()
	return c.setPassword(u.Name, u.Password)
}

// setPassword stores a password in the private sasldb, in the realm that
// Cyrus uses for unqualified user names: its servername.
func (c *Cyrus) setPassword(name, pass string) error {
	if strings.ContainsAny(pass, "\r\n") {
		return fmt.Errorf("password of Cyrus user %q contains a line break", name)
	}
	_, _, saslpasswd2, _ := cyrusBinaries()
	db := filepath.Join(c.Dir, "sasldb2")
	cmd := exec.Command(saslpasswd2, "-p", "-c", "-f", db, "-u", c.servername, name)
	cmd.Stdin = strings.NewReader(pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2 -f %s %s: %v: %s", db, name, err, bytes.TrimSpace(out))
	}
	if err := c.chown(db); err != nil {
		return err
	}
	return nil
}

// setupUser creates the user's INBOX, sets the quota and creates Folders.
func (c *Cyrus) setupUser(t testing.TB, u CyrusUser) {
	t.Helper()
	// The first login creates the INBOX (autocreate_quota: 0), as on a
	// Debian server: with a quota root "INBOX" that has no limits.
	cl, err := dialLogin(c.IMAPAddr(), u.Name, u.Password)
	if err != nil {
		t.Fatalf("testenv: IMAP login %s@%s: %v", u.Name, c.IMAPAddr(), err)
	}
	defer cl.Close()
	if u.QuotaBytes > 0 || u.QuotaMessages > 0 {
		admin, err := dialLogin(c.IMAPAddr(), c.AdminUser, c.AdminPassword)
		if err != nil {
			t.Fatalf("testenv: cyrus admin login: %v", err)
		}
		defer admin.Close()
		limits := map[imap.QuotaResourceType]int64{}
		if u.QuotaBytes > 0 {
			limits[imap.QuotaResourceStorage] = (u.QuotaBytes + 1023) / 1024
		}
		if u.QuotaMessages > 0 {
			limits[imap.QuotaResourceMessage] = u.QuotaMessages
		}
		if err := admin.SetQuota("user."+u.Name, limits).Wait(); err != nil {
			t.Fatalf("testenv: cyrus: SETQUOTA user.%s: %v", u.Name, err)
		}
		_ = admin.Logout().Wait()
	}
	for _, f := range c.opts.Folders {
		name := c.PersonalNamespace().Prefix + f
		var opts *imap.CreateOptions
		if attr, ok := wellKnownSpecialUse[f]; ok && c.opts.SpecialUse {
			opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{attr}}
		}
		if err := cl.Create(name, opts).Wait(); err != nil {
			t.Fatalf("testenv: cyrus: create %q for %s: %v", name, u.Name, err)
		}
		if err := cl.Subscribe(name).Wait(); err != nil {
			t.Fatalf("testenv: cyrus: subscribe %q for %s: %v", name, u.Name, err)
		}
	}
	_ = cl.Logout().Wait()
}

var wellKnownSpecialUse = map[string]imap.MailboxAttr{
	"Sent":    imap.MailboxAttrSent,
	"Drafts":  imap.MailboxAttrDrafts,
	"Trash":   imap.MailboxAttrTrash,
	"Junk":    imap.MailboxAttrJunk,
	"Archive": imap.MailboxAttrArchive,
}

// AddUser adds an account to the running server.
func (c *Cyrus) AddUser(t testing.TB, u CyrusUser) {
	t.Helper()
	if err := c.addUserPassword(u); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c.setupUser(t, u)
}

// command1 returns master with the instance's configuration.
func (c *Cyrus) command1() (*exec.Cmd, error) {
	master, _, _, _ := cyrusBinaries()
	cmd := exec.Command(master, "-C", filepath.Join(c.Dir, "imapd.conf"), "-M", filepath.Join(c.Dir, "cyrus.conf"),
		"-p", filepath.Join(c.Dir, "run", "master.pid"), "-D")
	cmd.Dir = c.Dir
	return cmd, nil
}

func (c *Cyrus) waitGreeting(p *dovecotProc) error {
	deadline := time.Now().Add(startTimeout)
	addr := c.IMAPAddr()
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("cyrus master exited during startup: %v", p.err)
		default:
		}
		line, err := readGreeting(addr)
		if err == nil {
			if strings.Contains(line, " "+c.servername+" ") {
				return nil
			}
			// Someone else got the port first.
			return fmt.Errorf("%w: %s answered with a foreign greeting %q", errAddrInUse, addr, line)
		}
		lastErr = err
		select {
		case <-p.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("no IMAP greeting on %s within %v: %v", addr, startTimeout, lastErr)
}
