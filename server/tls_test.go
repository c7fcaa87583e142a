package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

func TestLoadOrCreateCert(t *testing.T) {
	dir := t.TempDir()
	cert, fp, err := LoadOrCreateCert(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("fingerprint %q is not AB:CD:... SHA-256", fp)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if want := strings.ToUpper(strings.Join(splitHex(fmt.Sprintf("%x", sum)), ":")); fp != want {
		t.Errorf("fingerprint %q, want %q", fp, want)
	}

	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || leaf.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if years := leaf.NotAfter.Sub(time.Now()).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("valid for %.1f years, want 10", years)
	}
	if !slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("DNS names %v lack localhost", leaf.DNSNames)
	}
	if h, err := os.Hostname(); err == nil && validDNSName(h) && !slices.Contains(leaf.DNSNames, h) {
		t.Errorf("DNS names %v lack host name %q", leaf.DNSNames, h)
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if !slices.ContainsFunc(leaf.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) {
			t.Errorf("IP addresses %v lack %s", leaf.IPAddresses, ip)
		}
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}

	keyPath := filepath.Join(dir, "tls", "key.pem")
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{keyPath: 0o600, filepath.Join(dir, "tls"): 0o700} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s mode %o, want %o", path, got, want)
			}
		}
	}

	// Second start: the same certificate.
	_, fp2, err := LoadOrCreateCert(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if fp2 != fp {
		t.Errorf("reloaded fingerprint %s, want %s", fp2, fp)
	}
	// Explicit files: the same certificate too.
	_, fp3, err := LoadOrCreateCert("", filepath.Join(dir, "tls", "cert.pem"), keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fp3 != fp {
		t.Errorf("fingerprint from explicit files %s, want %s", fp3, fp)
	}
	if _, _, err := LoadOrCreateCert(dir, "cert.pem", ""); err == nil {
		t.Error("cert file without key file accepted")
	}

	// A lone certificate is an error, not silently replaced.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateCert(dir, "", ""); err == nil || !strings.Contains(err.Error(), "key.pem") {
		t.Errorf("missing key: %v", err)
	}

	// Key file content is a PKCS#8 EC key.
	dir2 := t.TempDir()
	if _, _, err := LoadOrCreateCert(dir2, "", ""); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir2, "tls", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PKCS#8 PEM block")
	}
}

func splitHex(s string) []string {
	var out []string
	for i := 0; i < len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return out
}

func TestTLSConfig(t *testing.T) {
	cfg := TLSConfig(testCertificate(t))
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
		t.Errorf("TLSConfig: min version %x, %d certificates", cfg.MinVersion, len(cfg.Certificates))
	}
}

func TestIMAPS(t *testing.T) {
	// Nobody is trusted: plaintext auth is refused, IMAPS works.
	env := newTestEnv(t, func(o *Options) { o.TrustedNets = prefixes() })
	c, greeting := dialRaw(t, env.addr)
	if !strings.Contains(greeting, " LOGINDISABLED]") {
		t.Errorf("cleartext greeting %q lacks LOGINDISABLED", greeting)
	}
	c.send("a LOGIN " + testUser + " " + testPass)
	c.expectPrefix("a NO [PRIVACYREQUIRED]")

	conn, err := tls.Dial("tcp", env.tlsAddr, env.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, conn: conn, br: newReader(conn)}
	if g := rc.line(); g != "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- ID AUTH=PLAIN AUTH=LOGIN] popbridge ready" {
		t.Errorf("IMAPS greeting %q", g)
	}
	rc.login("a")
	rc.send("b LOGOUT")
	rc.expectPrefix("* BYE")
	rc.expect("b OK LOGOUT completed")

	ic, err := imapclient.DialTLS(env.tlsAddr, &imapclient.Options{TLSConfig: env.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := ic.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}
