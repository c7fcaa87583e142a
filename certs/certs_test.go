package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hosts is a settable Options.Local.
type hosts struct {
	mu sync.Mutex
	h  []string
}

func (h *hosts) get() []string { h.mu.Lock(); defer h.mu.Unlock(); return slices.Clone(h.h) }
func (h *hosts) set(v ...string) {
	h.mu.Lock()
	h.h = v
	h.mu.Unlock()
}

var baseLocal = []string{"localhost", "127.0.0.1", "::1", "myhost", "myhost.local", "192.168.1.10", "fd00::10"}

func testOptions(t *testing.T) (Options, *clock, *hosts) {
	c := &clock{t: time.Now()}
	h := &hosts{h: slices.Clone(baseLocal)}
	return Options{Dir: filepath.Join(t.TempDir(), "tls"), Now: c.now, Local: h.get, Hosts: []string{"Bridge.Example.org"},
		Logger: slog.New(slog.NewTextHandler(&testWriter{t}, nil))}, c, h
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func pool(ca *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca)
	return p
}

// sanList is the leaf's names and addresses as text, sorted.
func sanList(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

func TestEnsureNew(t *testing.T) {
	opts, clk, _ := testOptions(t)
	b, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.now()

	// The CA.
	ca := b.CACert
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA: IsCA %v, basic constraints %v, max path %d zero %v", ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA key usage %b lacks certSign", ca.KeyUsage)
	}
	wantCN := "popbridge local CA (this computer)"
	if h := hostName(); h != "" {
		wantCN = "popbridge local CA (" + h + ")"
	}
	if ca.Subject.CommonName != wantCN {
		t.Errorf("CA name %q, want %q", ca.Subject.CommonName, wantCN)
	}
	if got := ca.NotAfter.Sub(now); got < CAValidity-time.Minute || got > CAValidity {
		t.Errorf("CA valid for %v more, want %v", got, CAValidity)
	}
	if pk, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pk.Curve != elliptic.P256() {
		t.Errorf("CA key %T, want ECDSA P-256", ca.PublicKey)
	}
	blk, _ := pem.Decode(b.CACertPEM)
	if blk == nil || !bytes.Equal(blk.Bytes, ca.Raw) {
		t.Error("CACertPEM is not CACert")
	}
	sum := sha256.Sum256(ca.Raw)
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); strings.ReplaceAll(b.CAFingerprintSHA256, ":", "") != want || len(b.CAFingerprintSHA256) != 95 {
		t.Errorf("fingerprint %s, want %s as AB:CD:…", b.CAFingerprintSHA256, want)
	}
	if b.CAPath != filepath.Join(opts.Dir, CAFile) {
		t.Errorf("CAPath %s", b.CAPath)
	}
	onDisk, err := os.ReadFile(b.CAPath)
	if err != nil || !bytes.Equal(onDisk, b.CACertPEM) {
		t.Errorf("%s differs from CACertPEM (%v)", b.CAPath, err)
	}

	// The server certificate.
	leaf := b.Leaf
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("leaf: IsCA %v, basic constraints present %v; want CA:false present", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("leaf EKU %v, want serverAuth", leaf.ExtKeyUsage)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 825*24*time.Hour || d < 800*24*time.Hour {
		t.Errorf("leaf valid for %v", d)
	}
	want := []string{"127.0.0.1", "192.168.1.10", "::1", "bridge.example.org", "fd00::10", "localhost", "myhost", "myhost.local"}
	slices.Sort(want)
	if got := sanList(leaf); !slices.Equal(got, want) {
		t.Errorf("leaf names %v, want %v", got, want)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId) || len(ca.SubjectKeyId) == 0 {
		t.Errorf("leaf authority key id %x, CA subject key id %x", leaf.AuthorityKeyId, ca.SubjectKeyId)
	}
	for _, name := range append(want, "BRIDGE.example.org") {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool(ca), CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	for _, name := range []string{"example.org", "192.168.1.11", "other.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool(ca), CurrentTime: now}); err == nil {
			t.Errorf("verify for %s passed", name)
		}
	}
	// Not for signing other certificates or clients.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("leaf verifies for clientAuth")
	}
	if b.Current() != b.Leaf {
		t.Error("Current is not Leaf right after Ensure")
	}

	// Files and modes.
	for name, mode := range map[string]os.FileMode{"": 0o700, CAKeyFile: 0o600, ServerKeyFile: 0o600, CAFile: 0o644, ServerFile: 0o644} {
		fi, err := os.Stat(filepath.Join(opts.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != mode {
			t.Errorf("%s mode %o, want %o", filepath.Join(opts.Dir, name), fi.Mode().Perm(), mode)
		}
	}
	for _, name := range []string{CAKeyFile, ServerKeyFile} {
		data, _ := os.ReadFile(filepath.Join(opts.Dir, name))
		if k, err := decodeKey(data); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if blk, _ := pem.Decode(data); blk.Type != "PRIVATE KEY" {
			t.Errorf("%s is %s, want PKCS#8 PRIVATE KEY (%T)", name, blk.Type, k)
		}
	}
	ents, _ := os.ReadDir(opts.Dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{CAKeyFile, CAFile, ServerKeyFile, ServerFile}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

func TestEnsureReload(t *testing.T) {
	opts, clk, _ := testOptions(t)
	b1, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	clk.add(24 * time.Hour)
	b2, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.CACert.Raw, b2.CACert.Raw) || !bytes.Equal(b1.Leaf.Raw, b2.Leaf.Raw) {
		t.Error("second start changed the certificates")
	}
	// Fewer local names (an interface went down) keep the certificate.
	opts.Hosts = nil
	b3, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Leaf.Raw, b3.Leaf.Raw) {
		t.Error("dropping a name reissued the certificate")
	}
}

func TestRenewKeepsCA(t *testing.T) {
	opts, clk, _ := testOptions(t)
	b1, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	// 5 weeks before expiry: still good.
	clk.add(LeafValidity - backdate - RenewBefore - 5*24*time.Hour)
	b2, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Leaf.Raw, b2.Leaf.Raw) {
		t.Fatal("renewed more than RenewBefore ahead")
	}
	// Within RenewBefore: renewed, the CA stays.
	clk.add(6 * 24 * time.Hour)
	b3, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b1.Leaf.Raw, b3.Leaf.Raw) {
		t.Fatal("not renewed within RenewBefore of expiry")
	}
	if !bytes.Equal(b1.CACert.Raw, b3.CACert.Raw) || b1.CAFingerprintSHA256 != b3.CAFingerprintSHA256 {
		t.Error("renewal changed the CA")
	}
	if !b3.Leaf.NotAfter.After(b1.Leaf.NotAfter) {
		t.Errorf("renewed NotAfter %v not after %v", b3.Leaf.NotAfter, b1.Leaf.NotAfter)
	}
	if _, err := b3.Leaf.Verify(x509.VerifyOptions{DNSName: "192.168.1.10", Roots: pool(b1.CACert), CurrentTime: clk.now()}); err != nil {
		t.Error(err)
	}
	// Even after the old one expired: the first device's CA still works.
	clk.add(60 * 24 * time.Hour)
	b4, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.CACert.Raw, b4.CACert.Raw) || !bytes.Equal(b3.Leaf.Raw, b4.Leaf.Raw) {
		t.Error("a renewed certificate with years left was changed")
	}
	// The leaf never outlives the CA.
	clk.add(CAValidity - 3*365*24*time.Hour)
	b5, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.CACert.Raw, b5.CACert.Raw) {
		t.Error("CA changed before it expired")
	}
	if !b5.Leaf.NotAfter.Equal(b5.CACert.NotAfter) {
		t.Errorf("leaf NotAfter %v, want the CA's %v", b5.Leaf.NotAfter, b5.CACert.NotAfter)
	}
}

func TestChangedAddressReissues(t *testing.T) {
	opts, _, h := testOptions(t)
	b1, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	// DHCP gave the machine another address.
	h.set("localhost", "127.0.0.1", "::1", "myhost", "myhost.local", "192.168.1.23", "fd00::10")
	b2, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b1.Leaf.Raw, b2.Leaf.Raw) {
		t.Fatal("new LAN address did not reissue")
	}
	if !bytes.Equal(b1.CACert.Raw, b2.CACert.Raw) {
		t.Error("reissue changed the CA")
	}
	want := []string{"127.0.0.1", "192.168.1.23", "::1", "bridge.example.org", "fd00::10", "localhost", "myhost", "myhost.local"}
	slices.Sort(want)
	if got := sanList(b2.Leaf); !slices.Equal(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	// A renamed machine too.
	h.set("localhost", "127.0.0.1", "::1", "newname", "192.168.1.23")
	b3, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b3.Leaf.DNSNames, "newname") {
		t.Errorf("names %v lack the new host name", b3.Leaf.DNSNames)
	}
	// A new name through Options.Hosts.
	opts.Hosts = append(opts.Hosts, "10.8.0.1")
	b4, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b4.Leaf.VerifyHostname("10.8.0.1"); err != nil {
		t.Error(err)
	}
}

// TestTLSConfigRenewsWhileRunning: a running listener serves the reissued
// certificate after the machine got a new address, without a restart.
func TestTLSConfigRenewsWhileRunning(t *testing.T) {
	opts, clk, h := testOptions(t)
	b, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", b.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	handshake := func(serverName string) (*x509.Certificate, error) {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool(b.CACert), ServerName: serverName, Time: clk.now})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		st := c.ConnectionState()
		if len(st.PeerCertificates) != 2 || !bytes.Equal(st.PeerCertificates[1].Raw, b.CACert.Raw) {
			t.Errorf("chain of %d certificates, want leaf + CA", len(st.PeerCertificates))
		}
		return st.PeerCertificates[0], nil
	}
	first, err := handshake("192.168.1.10")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Raw, b.Leaf.Raw) {
		t.Error("served another certificate than Leaf")
	}
	h.set("localhost", "127.0.0.1", "::1", "192.168.7.7")
	// Within a minute of the last look: not looked at again.
	if _, err := handshake("192.168.7.7"); err == nil {
		t.Error("new address accepted before the check interval")
	}
	clk.add(checkEvery + time.Second)
	second, err := handshake("192.168.7.7")
	if err != nil {
		t.Fatalf("after the address change: %v", err)
	}
	if bytes.Equal(second.Raw, first.Raw) || !bytes.Equal(b.Current().Raw, second.Raw) {
		t.Error("Current is not the served reissued certificate")
	}
	// Expiry during a long run.
	clk.add(LeafValidity - RenewBefore)
	third, err := handshake("localhost")
	if err != nil {
		t.Fatal(err)
	}
	if !third.NotAfter.After(second.NotAfter) {
		t.Error("not renewed near expiry while running")
	}
	if !bytes.Equal(b.Leaf.Raw, first.Raw) {
		t.Error("Bundle.Leaf changed under its reader")
	}
}

func TestDamagedFiles(t *testing.T) {
	otherKey := func(t *testing.T) []byte {
		o, _, _ := testOptions(t)
		if _, err := Ensure(o); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(o.Dir, CAKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		// wantErr: substrings of the error, the first being the file; ""
		// when the state is repaired.
		wantErr []string
	}{
		{"CA certificate garbage", func(t *testing.T, dir string) { write(t, dir, CAFile, "not a certificate\n") },
			[]string{CAFile, "damaged", "restore it from a backup", "delete", "install the new one"}},
		{"CA certificate truncated", func(t *testing.T, dir string) { truncate(t, dir, CAFile) },
			[]string{CAFile, "damaged"}},
		{"CA key garbage", func(t *testing.T, dir string) {
			write(t, dir, CAKeyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		},
			[]string{CAKeyFile, "damaged", "restore it from a backup"}},
		{"CA key missing", func(t *testing.T, dir string) { remove(t, dir, CAKeyFile) },
			[]string{CAKeyFile, "missing", "restore the key from a backup"}},
		{"CA key of another CA", func(t *testing.T, dir string) { write(t, dir, CAKeyFile, string(otherKey(t))) },
			[]string{CAFile, "does not belong to the key", CAKeyFile}},
		{"CA certificate is the server's", func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, ServerFile))
			write(t, dir, CAFile, string(data))
		}, []string{CAFile, "not a CA certificate"}},
		{"CA certificate missing", func(t *testing.T, dir string) { remove(t, dir, CAFile) }, nil},
		{"server certificate garbage", func(t *testing.T, dir string) { write(t, dir, ServerFile, "garbage") }, nil},
		{"server key missing", func(t *testing.T, dir string) { remove(t, dir, ServerKeyFile) }, nil},
		{"server key of another certificate", func(t *testing.T, dir string) { write(t, dir, ServerKeyFile, string(otherKey(t))) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, _, _ := testOptions(t)
			b1, err := Ensure(opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, opts.Dir)
			b2, err := Ensure(opts)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				if !strings.Contains(msg, filepath.Join(opts.Dir, tt.wantErr[0])) {
					t.Errorf("error %q does not name %s", msg, filepath.Join(opts.Dir, tt.wantErr[0]))
				}
				for _, s := range tt.wantErr[1:] {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q lacks %q", msg, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Repaired: same CA key, a server certificate that verifies.
			if !b2.CACert.PublicKey.(*ecdsa.PublicKey).Equal(b1.CACert.PublicKey) {
				t.Error("repair changed the CA key")
			}
			if _, err := b2.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool(b2.CACert)}); err != nil {
				t.Error(err)
			}
			if _, err := tls.LoadX509KeyPair(filepath.Join(opts.Dir, ServerFile), filepath.Join(opts.Dir, ServerKeyFile)); err != nil {
				t.Error(err)
			}
		})
	}
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, dir, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, name, string(data[:len(data)/2]))
}

// TestLegacySelfSigned: the self-signed pair earlier versions made is
// replaced; a user's own cert.pem is left alone.
func TestLegacySelfSigned(t *testing.T) {
	for _, tt := range []struct {
		org, cn string
		removed bool
	}{
		{"popbridge (self-signed)", "popbridge", true},
		{"Example Corp", "mail.example.com", false},
	} {
		opts, _, _ := testOptions(t)
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tt.cn, Organization: []string{tt.org}},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, _ := encodeKey(key)
		write(t, opts.Dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		write(t, opts.Dir, "key.pem", string(keyPEM))
		if _, err := Ensure(opts); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"cert.pem", "key.pem"} {
			_, err := os.Stat(filepath.Join(opts.Dir, name))
			if gone := os.IsNotExist(err); gone != tt.removed {
				t.Errorf("%s %s: removed %v, want %v", tt.org, name, gone, tt.removed)
			}
		}
	}
}

func TestBadHosts(t *testing.T) {
	for _, h := range []string{"", "bad host", "-x.example", "a..b", "例え.jp", strings.Repeat("a", 64) + ".com"} {
		opts, _, _ := testOptions(t)
		opts.Hosts = []string{h}
		_, err := Ensure(opts)
		if err == nil || !strings.Contains(err.Error(), "TLS certificate") {
			t.Errorf("host %q: %v", h, err)
		}
	}
	if _, err := Ensure(Options{}); err == nil {
		t.Error("no directory accepted")
	}
}

func TestLocalHosts(t *testing.T) {
	got := LocalHosts()
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if !slices.Contains(got, h) {
			t.Errorf("LocalHosts %v lacks %s", got, h)
		}
	}
	if h := hostName(); h != "" && !slices.Contains(got, strings.ToLower(h)) {
		t.Errorf("LocalHosts %v lacks host name %s", got, h)
	}
	for _, h := range got {
		if err := checkHost(h); err != nil {
			t.Error(err)
		}
		if ip := net.ParseIP(h); ip != nil && (ip.IsLinkLocalUnicast() || (ip.To4() == nil && !ip.IsPrivate() && !ip.IsLoopback())) {
			t.Errorf("LocalHosts has %s", h)
		}
	}
	for _, tt := range []struct {
		ip, want string
	}{
		{"192.168.0.5", "192.168.0.5"}, {"10.1.2.3", "10.1.2.3"}, {"100.64.1.1", "100.64.1.1"},
		{"169.254.3.4", ""}, {"fe80::1", ""}, {"2001:db8::5", ""}, {"fd12:3456::1", "fd12:3456::1"}, {"::ffff:192.168.0.9", "192.168.0.9"},
	} {
		if got := lanAddr(net.ParseIP(tt.ip)); got != tt.want {
			t.Errorf("lanAddr(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}
