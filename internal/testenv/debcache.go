package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Some servers (Courier-IMAP, Cyrus IMAP) come in Debian packages that
// conflict with dovecot-imapd: installing one removes the other. Their
// binaries are therefore never installed. debTree fetches the package with
// `apt-get download` and unpacks it with `dpkg-deb -x` into a private tree
// in a per-machine cache, once; the packages they depend on and that do not
// conflict (courier-base, cyrus-common, ...) are installed normally, by
// scripts/test.sh.

// debPkg names a package to unpack privately and the installed package whose
// version it must match (its Depends has "companion (= version)").
type debPkg struct {
	name      string // "courier-imap"
	companion string // "courier-base"
}

// errDebUnavailable wraps every reason the tree cannot be made; the message
// says what to run.
var errDebUnavailable = errors.New("package not available")

// debCacheRoot is where unpacked trees live: $POPBRIDGE_TESTENV_CACHE, or
// /var/cache/popbridge-testenv as root (the servers' system users must be
// able to reach the binaries, and /root is private), or the user's cache
// directory otherwise.
func debCacheRoot() (string, error) {
	if d := os.Getenv("POPBRIDGE_TESTENV_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	if os.Geteuid() == 0 {
		return "/var/cache/popbridge-testenv", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory for unpacked packages (set POPBRIDGE_TESTENV_CACHE): %w", err)
	}
	return filepath.Join(d, "popbridge-testenv"), nil
}

// installedVersion is dpkg's version of an installed package, or "" if it is
// not installed.
func installedVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	status, version, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok || status != "installed" {
		return ""
	}
	return version
}

// debTree returns the root of p unpacked privately, in the version that
// matches the installed companion package. The first caller on a machine
// downloads and unpacks; concurrent test processes wait on a lock file, and
// the tree appears by an atomic rename, so nobody sees half a tree.
func debTree(p debPkg) (string, error) {
	compVersion := installedVersion(p.companion)
	if compVersion == "" {
		return "", fmt.Errorf("%w: %s is not installed (apt-get install -y %s)", errDebUnavailable, p.companion, p.companion)
	}
	root, err := debCacheRoot()
	if err != nil {
		return "", fmt.Errorf("%w: %v", errDebUnavailable, err)
	}
	// The companion's version is in the name, so an upgrade of it makes a
	// new tree rather than mixing versions.
	final := filepath.Join(root, fmt.Sprintf("%s@%s=%s", p.name, p.companion, sanitizeVersion(compVersion)))
	if treeComplete(final) {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("%w: create cache %s: %v", errDebUnavailable, root, err)
	}
	unlock, err := lockFile(filepath.Join(root, ".lock"))
	if err != nil {
		return "", fmt.Errorf("%w: lock %s: %v", errDebUnavailable, root, err)
	}
	defer unlock()
	if treeComplete(final) { // another process made it while we waited
		return final, nil
	}

	version, err := aptVersionFor(p, compVersion)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+p.name+"-")
	if err != nil {
		return "", fmt.Errorf("%w: %v", errDebUnavailable, err)
	}
	defer os.RemoveAll(tmp)
	// apt-get drops to the _apt user for downloads when it can; a 0777
	// directory spares the "download is performed unsandboxed" warning.
	_ = os.Chmod(tmp, 0o777)
	dl := exec.Command("apt-get", "download", "-q", p.name+"="+version)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: apt-get download %s=%s: %v\n%s\n(a fresh machine needs network access to a Debian mirror and `apt-get update`)",
			errDebUnavailable, p.name, version, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, p.name+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("%w: apt-get download %s left %d .deb files in %s", errDebUnavailable, p.name, len(debs), tmp)
	}
	depends, err := exec.Command("dpkg-deb", "-f", debs[0], "Depends").Output()
	if err != nil {
		return "", fmt.Errorf("%w: dpkg-deb -f %s: %v", errDebUnavailable, debs[0], err)
	}
	if want := p.companion + " (= " + compVersion + ")"; !strings.Contains(string(depends), want) {
		return "", fmt.Errorf("%w: %s %s depends on %q, not on the installed %s (upgrade it: apt-get update && apt-get install -y %s)",
			errDebUnavailable, p.name, version, strings.TrimSpace(string(depends)), want, p.companion)
	}
	tree := filepath.Join(tmp, "tree")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], tree).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: dpkg-deb -x %s: %v\n%s", errDebUnavailable, debs[0], err, out)
	}
	// dpkg-deb gives the tree root the tmp directory's mode; the servers'
	// system users must be able to traverse it.
	if err := os.Chmod(tree, 0o755); err != nil {
		return "", fmt.Errorf("%w: %v", errDebUnavailable, err)
	}
	marker := fmt.Sprintf("%s %s\n%s %s\n", p.name, version, p.companion, compVersion)
	if err := os.WriteFile(filepath.Join(tree, ".testenv-complete"), []byte(marker), 0o644); err != nil {
		return "", fmt.Errorf("%w: %v", errDebUnavailable, err)
	}
	if err := os.Rename(tree, final); err != nil {
		return "", fmt.Errorf("%w: move unpacked %s into place: %v", errDebUnavailable, p.name, err)
	}
	return final, nil
}

func treeComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".testenv-complete"))
	return err == nil
}

// sanitizeVersion keeps a Debian version usable in a file name (epochs have
// a ':').
func sanitizeVersion(v string) string { return strings.ReplaceAll(v, ":", "%3a") }

// aptVersionFor picks, among the versions apt knows of p.name, the one
// whose Depends names the companion at compVersion. Debian builds both from
// one source package, but their version strings may differ
// (courier-imap 5.0.13+1.0.16-3+b6 goes with courier-base 1.0.16-3+b6).
func aptVersionFor(p debPkg, compVersion string) (string, error) {
	out, err := exec.Command("apt-cache", "show", p.name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: apt-cache show %s: %v\n%s\n(run apt-get update first)", errDebUnavailable, p.name, err, bytes.TrimSpace(out))
	}
	want := p.companion + " (= " + compVersion + ")"
	var seen []string
	for _, rec := range parseControlRecords(out) {
		seen = append(seen, rec["Version"])
		if strings.Contains(rec["Depends"], want) {
			return rec["Version"], nil
		}
	}
	return "", fmt.Errorf("%w: no version of %s that goes with the installed %s %s (apt knows %s; apt-get update && apt-get install -y %s)",
		errDebUnavailable, p.name, p.companion, compVersion, strings.Join(seen, ", "), p.companion)
}

// parseControlRecords splits apt-cache show output into records of fields
// (continuation lines are appended to their field).
func parseControlRecords(b []byte) []map[string]string {
	var recs []map[string]string
	cur := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(cur) > 0 {
				recs = append(recs, cur)
				cur = map[string]string{}
			}
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if ok {
				last = k
				cur[k] = strings.TrimSpace(v)
			}
		}
	}
	if len(cur) > 0 {
		recs = append(recs, cur)
	}
	return recs
}
