package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
)

// tlsConfigFile writes a config with both IMAP listeners on free ports and
// returns it with the IMAPS address.
func tlsConfigFile(t *testing.T, dir, extra string) (cfgPath, imapsAddr string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	mbox := filepath.Join(dir, "old.mbox")
	if err := os.WriteFile(mbox, []byte("From a@example.com Mon Jan  1 00:00:00 2024\nSubject: hi\n\nhello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	imapsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("data_dir = %q\n\n[listen]\nimap = \"127.0.0.1:%d\"\nimaps = %q\n%s\n[[users]]\nname = \"me\"\npassword_hash = %q\n\n[[archive.sources]]\nname = \"Old\"\npath = %q\n",
		filepath.Join(dir, "data"), freePort(t), imapsAddr, extra, hash, mbox)
	cfgPath = filepath.Join(dir, "popbridge.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, imapsAddr
}

// TestServeTLSLocalCA: serve makes the CA and a server certificate in
// data_dir/tls; Go's TLS client that trusts only the CA logs in over
// IMAPS and STARTTLS, for each loopback name; the old self-signed pair is
// replaced.
func TestServeTLSLocalCA(t *testing.T) {
	dir := t.TempDir()
	cfgPath, imapsAddr := tlsConfigFile(t, dir, "")
	// The self-signed pair of earlier versions.
	plantLegacyCert(t, filepath.Join(dir, "data", "tls"))
	b := startBridge(t, cfgPath)
	tlsDir := filepath.Join(dir, "data", "tls")
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := imapclient.DialTLS(imapsAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots, ServerName: name}})
		if err != nil {
			t.Fatalf("IMAPS as %s: %v", name, err)
		}
		if err := c.Login("me", testPassword).Wait(); err != nil {
			t.Errorf("login over IMAPS as %s: %v", name, err)
		}
		c.Close()
	}
	c, err := imapclient.DialStartTLS(fmt.Sprintf("127.0.0.1:%d", b.port), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Login("me", testPassword).Wait(); err != nil {
		t.Errorf("login after STARTTLS: %v", err)
	}
	c.Close()

	// The raw handshake: the leaf is not a CA, the chain ends in the CA.
	conn, err := tls.Dial("tcp", imapsAddr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	st := conn.ConnectionState()
	conn.Close()
	leaf := st.PeerCertificates[0]
	if leaf.IsCA || len(st.VerifiedChains) != 1 || !bytes.Equal(st.VerifiedChains[0][len(st.VerifiedChains[0])-1].Raw, ca.Raw) {
		t.Errorf("leaf IsCA %v, verified chains %d", leaf.IsCA, len(st.VerifiedChains))
	}
	if _, err := tls.Dial("tcp", imapsAddr, &tls.Config{ServerName: "localhost"}); err == nil {
		t.Error("handshake without the CA succeeded")
	}

	for _, name := range []string{"cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(tlsDir, name)); !os.IsNotExist(err) {
			t.Errorf("old self-signed %s still there (%v)", name, err)
		}
	}
	out := b.out.String()
	if !strings.Contains(out, "CA SHA-256 fingerprint "+certs.Fingerprint(ca.Raw)) || !strings.Contains(out, filepath.Join(tlsDir, certs.CAFile)) {
		t.Errorf("output lacks the CA file and fingerprint:\n%s", out)
	}
}

// TestServeTLSUserCert: tls_cert/tls_key are served as they are.
func TestServeTLSUserCert(t *testing.T) {
	dir := t.TempDir()
	own, err := certs.Ensure(certs.Options{Dir: filepath.Join(dir, "own")})
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", filepath.Join(dir, "own", certs.ServerFile), filepath.Join(dir, "own", certs.ServerKeyFile))
	cfgPath, imapsAddr := tlsConfigFile(t, dir, extra)
	b := startBridge(t, cfgPath)
	roots := x509.NewCertPool()
	roots.AddCert(own.CACert)
	conn, err := tls.Dial("tcp", imapsAddr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	served := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if !bytes.Equal(served.Raw, own.Leaf.Raw) {
		t.Error("served another certificate than tls_cert")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "tls", certs.CAFile)); !os.IsNotExist(err) {
		t.Errorf("a CA was made although tls_cert is set (%v)", err)
	}
	if out := b.out.String(); !strings.Contains(out, "SHA-256 fingerprint "+certs.Fingerprint(own.Leaf.Raw)) {
		t.Errorf("output lacks the certificate's fingerprint:\n%s", out)
	}
	// The Devices page has no popbridge CA to offer and says why: the
	// user's own certificate, with the fingerprint to compare.
	c, err := control.Dial(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "own", certs.ServerFile)
	if d.CAFingerprint != "" || d.OwnCert != certFile || d.OwnCertFingerprint != certs.Fingerprint(own.Leaf.Raw) || d.ServerFingerprint != d.OwnCertFingerprint {
		t.Errorf("devices: CA %q, own %q %q, server %q", d.CAFingerprint, d.OwnCert, d.OwnCertFingerprint, d.ServerFingerprint)
	}
	if _, err := c.CACertificate(context.Background()); control.CodeOf(err) != control.CodeNothing || !strings.Contains(err.Error(), certFile) {
		t.Errorf("CA download with the user's own certificate: %v", err)
	}
}

// TestServeTLSDamagedCA: a damaged CA stops serve with the file and what
// to do.
func TestServeTLSDamagedCA(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := tlsConfigFile(t, dir, "")
	tlsDir := filepath.Join(dir, "data", "tls")
	if _, err := certs.Ensure(certs.Options{Dir: tlsDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, certs.CAKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	err = serve(context.Background(), cfg, slog.New(slog.NewTextHandler(&out, nil)), &out)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(tlsDir, certs.CAKeyFile)) || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Errorf("serve with a damaged CA key: %v", err)
	}
}

func TestListenHosts(t *testing.T) {
	got := listenHosts("0.0.0.0:1993", "[::]:1143", "mybox.lan:1993", "192.168.1.5:1993", ":1143", "")
	if strings.Join(got, ",") != "mybox.lan" {
		t.Errorf("listenHosts = %v", got)
	}
}

// plantLegacyCert writes the self-signed pair earlier popbridge versions
// made in data_dir/tls (cert.pem, key.pem; subject "popbridge (self-signed)").
func plantLegacyCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "popbridge", Organization: []string{"popbridge (self-signed)"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
