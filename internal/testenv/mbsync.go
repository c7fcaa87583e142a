package testenv

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

const mbsyncTimeout = 60 * time.Second

// MbsyncOptions describes one mbsync run.
type MbsyncOptions struct {
	Host string // default "127.0.0.1"
	Port int    // the IMAP port, or the IMAPS port when TLS
	User string
	Pass string
	// TLS connects with implicit TLS (SSLType IMAPS) and trusts exactly
	// CertPEM (CertificateFile; system CAs are not used). Otherwise the
	// connection is plain (SSLType None) and the password is sent with the
	// IMAP LOGIN command.
	TLS     bool
	CertPEM []byte
	// Patterns selects far-side folders, in mbsync syntax ("*", "Local/*",
	// "!Trash"). Default: "*".
	Patterns []string
	// LocalDir (required) is the root of the local Maildir tree, created if
	// missing. Reusing it makes the next run incremental.
	LocalDir string
}

// Mbsync pulls the far IMAP account into o.LocalDir with mbsync (Sync Pull,
// Create Near, Expunge None, Remove None, CopyArrivalDate yes) and returns
// mbsync's combined stdout/stderr. It fails the test, showing that output, if
// mbsync fails or takes longer than a minute.
//
// The near store uses SubFolders Verbatim: the IMAP folder "A/B" is the
// Maildir LocalDir/A/B and INBOX is LocalDir/INBOX (so a folder "INBOX/x"
// nests as LocalDir/INBOX/x). ReadMaildirTree understands this layout.
//
// What mbsync 1.4 changes: it converts CRLF to LF and inserts an
// "X-TUID: <12 chars>" line at the end of each message's header, so a
// local file equals the server's BODY[] after StripMbsyncTUID and
// CRLFToLF. It also leaves state files (.mbsyncstate, .uidvalidity) in each
// folder and puts ",U=<n>" into file names.
func Mbsync(t testing.TB, o MbsyncOptions) string {
	t.Helper()
	bin := RequireMbsync(t)
	if o.LocalDir == "" {
		t.Fatal("testenv: MbsyncOptions.LocalDir is required")
	}
	if o.Port == 0 || o.User == "" {
		t.Fatalf("testenv: MbsyncOptions needs Port and User (got port %d, user %q)", o.Port, o.User)
	}
	host := cmp.Or(o.Host, "127.0.0.1")
	patterns := o.Patterns
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	local, err := filepath.Abs(o.LocalDir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatalf("testenv: create mbsync local dir: %v", err)
	}

	cfgDir := t.TempDir()
	quote := func(field, s string) string {
		if strings.ContainsAny(s, "\"\\\r\n") {
			t.Fatalf("testenv: mbsync %s %q contains a quote, backslash or line break", field, s)
		}
		return `"` + s + `"`
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("IMAPAccount far")
	w("Host %s", quote("Host", host))
	w("Port %d", o.Port)
	w("User %s", quote("User", o.User))
	w("Pass %s", quote("Pass", o.Pass))
	w("AuthMechs LOGIN")
	if o.TLS {
		if len(o.CertPEM) == 0 {
			t.Fatal("testenv: MbsyncOptions.TLS needs CertPEM")
		}
		certFile := filepath.Join(cfgDir, "cert.pem")
		if err := os.WriteFile(certFile, o.CertPEM, 0o644); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		w("SSLType IMAPS")
		w("SystemCertificates no")
		w("CertificateFile %s", quote("CertificateFile", certFile))
	} else {
		w("SSLType None")
	}
	w("")
	w("IMAPStore far")
	w("Account far")
	w("")
	w("MaildirStore near")
	w("Path %s", quote("LocalDir", local+"/"))
	w("Inbox %s", quote("LocalDir", filepath.Join(local, "INBOX")))
	w("SubFolders Verbatim")
	w("")
	w("Channel pull")
	w("Far :far:")
	w("Near :near:")
	var ps []string
	for _, p := range patterns {
		ps = append(ps, quote("pattern", p))
	}
	w("Patterns %s", strings.Join(ps, " "))
	w("Sync Pull")
	w("Create Near")
	w("Remove None")
	w("Expunge None")
	w("CopyArrivalDate yes")
	w("SyncState *")

	cfg := filepath.Join(cfgDir, "mbsyncrc")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("testenv: write mbsyncrc: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), mbsyncTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", cfg, "-V", "pull")
	cmd.Dir = cfgDir
	cmd.Env = append(os.Environ(), "HOME="+cfgDir) // never touch the real ~/.mbsync
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testenv: mbsync timed out after %v; output:\n%s", mbsyncTimeout, out)
	}
	if err != nil {
		t.Fatalf("testenv: mbsync: %v; output:\n%s", err, out)
	}
	return string(out)
}

// MaildirMsg is one message file of a Maildir.
type MaildirMsg struct {
	Body  []byte      // the file's bytes, unchanged
	Flags []imap.Flag // from the ":2," info, sorted; nil when none
}

// ReadMaildirTree reads every Maildir under root (cur/ and new/) and returns
// folder name → messages. Two layouts are understood:
//
//   - Verbatim (what Mbsync writes): root itself is not a Maildir; each
//     directory holding cur/ and new/ is a folder named by its slash-separated
//     path below root ("INBOX", "Sent", "Local/Old").
//   - Maildir++ (Dovecot's own store): root is INBOX and ".A.B" is "A/B".
//
// Messages are ordered by UID where one is known (Dovecot's dovecot-uidlist,
// or the ",U=<n>" mbsync puts in file names), then by file name (which
// starts with the delivery time). Flag letters map
// D→\Draft, F→\Flagged, R→\Answered, S→\Seen, T→\Deleted; other letters
// (Dovecot keywords, P) are ignored.
func ReadMaildirTree(t testing.TB, root string) map[string][]MaildirMsg {
	t.Helper()
	tree, err := readMaildirTree(root)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return tree
}

func readMaildirTree(root string) (map[string][]MaildirMsg, error) {
	tree := map[string][]MaildirMsg{}
	if isMaildir(root) {
		// Maildir++.
		msgs, err := readMaildir(root)
		if err != nil {
			return nil, err
		}
		tree["INBOX"] = msgs
		entries, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("read maildir %q: %w", root, err)
		}
		for _, e := range entries {
			name := e.Name()
			if !e.IsDir() || len(name) < 2 || name[0] != '.' || name == ".." || !isMaildir(filepath.Join(root, name)) {
				continue
			}
			msgs, err := readMaildir(filepath.Join(root, name))
			if err != nil {
				return nil, err
			}
			tree[strings.ReplaceAll(name[1:], ".", "/")] = msgs
		}
		return tree, nil
	}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk maildir tree %q: %w", root, err)
		}
		if !e.IsDir() || path == root {
			return nil
		}
		switch e.Name() {
		case "cur", "new", "tmp":
			return fs.SkipDir
		}
		if !isMaildir(path) {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		msgs, err := readMaildir(path)
		if err != nil {
			return err
		}
		tree[filepath.ToSlash(rel)] = msgs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tree, nil
}

func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}

type maildirFile struct {
	name string
	uid  int64 // from ",U=", or -1
	msg  MaildirMsg
}

func readMaildir(dir string) ([]MaildirMsg, error) {
	uidlist := dovecotUIDList(dir)
	var files []maildirFile
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("read maildir %q: %w", dir, err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			body, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("read maildir message %q: %w", p, err)
			}
			files = append(files, maildirFile{
				name: e.Name(),
				uid:  maildirUID(e.Name(), uidlist),
				msg:  MaildirMsg{Body: body, Flags: maildirFlags(e.Name())},
			})
		}
	}
	slices.SortFunc(files, func(a, b maildirFile) int {
		return cmp.Or(cmp.Compare(a.uid, b.uid), strings.Compare(a.name, b.name))
	})
	msgs := make([]MaildirMsg, len(files))
	for i, f := range files {
		msgs[i] = f.msg
	}
	return msgs, nil
}

// maildirBase strips the ":2,…" info part.
func maildirBase(name string) string {
	if i := strings.LastIndex(name, ":2,"); i >= 0 {
		return name[:i]
	}
	return name
}

// dovecotUIDList maps base file names to UIDs from Dovecot's
// dovecot-uidlist (version 3: a header line, then "<uid> [fields] :<base>").
// Nil when there is none.
func dovecotUIDList(dir string) map[string]int64 {
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		return nil
	}
	m := map[string]int64{}
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		uidStr, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			continue
		}
		uid, err := strconv.ParseInt(uidStr, 10, 64)
		if err != nil {
			continue
		}
		m[rest[i+1:]] = uid
	}
	return m
}

// maildirUID returns the message's UID: Dovecot's uidlist entry, else
// mbsync's ",U=<n>" from the file name, else -1.
func maildirUID(name string, uidlist map[string]int64) int64 {
	base := maildirBase(name)
	if uid, ok := uidlist[base]; ok {
		return uid
	}
	if i := strings.IndexByte(base, ','); i >= 0 {
		if uid, ok := uidlist[base[:i]]; ok {
			return uid
		}
	}
	i := strings.Index(base, ",U=")
	if i < 0 {
		return -1
	}
	s := base[i+3:]
	if j := strings.IndexByte(s, ','); j >= 0 {
		s = s[:j]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

var maildirFlagLetters = map[byte]imap.Flag{
	'D': imap.FlagDraft,
	'F': imap.FlagFlagged,
	'R': imap.FlagAnswered,
	'S': imap.FlagSeen,
	'T': imap.FlagDeleted,
}

func maildirFlags(name string) []imap.Flag {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		return nil
	}
	var flags []imap.Flag
	for _, c := range []byte(name[i+3:]) {
		if f, ok := maildirFlagLetters[c]; ok {
			flags = append(flags, f)
		}
	}
	slices.Sort(flags)
	return flags
}

// CRLFToLF converts CRLF line endings to LF, as mbsync does when it writes
// a message into a Maildir.
func CRLFToLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// StripMbsyncTUID removes the "X-TUID: <12 characters>" line mbsync adds to
// the header of every message it stores (its crash-recovery tag), so that
// StripMbsyncTUID(local) == CRLFToLF(serverBody). Only the header section
// is searched; a message without the line is returned unchanged.
func StripMbsyncTUID(b []byte) []byte {
	const name = "X-TUID: "
	for off := 0; off < len(b); {
		end := bytes.IndexByte(b[off:], '\n')
		if end < 0 {
			break
		}
		line := b[off : off+end+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // end of header
		}
		if v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte(name)); ok && len(v) == 12 {
			return append(append([]byte(nil), b[:off]...), b[off+len(line):]...)
		}
		off += len(line)
	}
	return b
}
