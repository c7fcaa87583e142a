// Package certs makes the TLS certificates phones accept: a local
// certificate authority (CA) that the user trusts once on each device, and
// a server certificate it signs for the names and addresses the bridge is
// reached at.
//
// Implementation notes:
//
//   - A CA certificate used directly as the server certificate (what
//     popbridge did before, a self-signed certificate) is refused by some
//     strict clients, and iOS only offers "full trust" for a root installed
//     through a profile. So the CA is a real root (BasicConstraints CA:true,
//     path length 0, key usage certSign) and the server certificate a leaf
//     (CA:false, EKU serverAuth, at most 825 days: Apple's limit for TLS
//     server certificates).
//   - The CA never changes by itself while it is valid: devices trust it
//     once. Only the leaf is reissued — when it has fewer than RenewBefore
//     left, when a name or address the bridge is now reached at is missing
//     from it, or when its files are unreadable (the leaf is derived data).
//     A damaged or half-missing CA is an error naming the file and what to
//     do, never silently replaced: replacing it means every phone must
//     trust the new one.
//   - Files in Options.Dir: ca.pem, ca-key.pem (0600), server.pem,
//     server-key.pem (0600); the directory is 0700. Keys are PKCS#8 ECDSA
//     P-256. Writes are atomic (temporary file + rename), key first.
//   - The CA carries no name constraints: the names it must allow (host
//     name, LAN addresses, names the user adds later) are not known when
//     it is made, and a constrained CA that no longer fits would have to be
//     replaced on every device. Its key stays in Dir (0600).
//   - IPv6 global addresses are left out of the automatic names: privacy
//     addresses rotate daily, which would reissue the leaf daily. Unique
//     local (fc00::/7) addresses are included. Options.Hosts can add any.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/fsutil"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// File names inside Options.Dir.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// Validity periods.
const (
	// CAValidity is how long a new CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long a server certificate is valid: under the
	// 825 days Apple allows, counted from NotBefore.
	LeafValidity = 820 * 24 * time.Hour
	// RenewBefore: a server certificate with less left is reissued.
	RenewBefore = 30 * 24 * time.Hour
	// backdate covers clocks of devices slightly behind this machine's.
	backdate = time.Hour
	// checkEvery limits how often a running TLSConfig looks at the
	// machine's addresses and the leaf's expiry.
	checkEvery = time.Minute
)

// Options says where the certificates live and what they are for. Zero
// values have documented defaults.
type Options struct {
	// Dir holds the CA and the server certificate (created 0700).
	// Required; popbridge uses data_dir/tls.
	Dir string
	// Hosts are extra host names or IP addresses for the server
	// certificate, beyond LocalHosts (e.g. a name in the user's DNS).
	Hosts []string
	// Logger gets a line for each certificate made; default: discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Local lists this machine's own names and addresses; default
	// LocalHosts. Tests replace it to simulate a changed LAN address.
	Local func() []string
}

// Bundle is the CA and the server certificate it signed.
type Bundle struct {
	// CACertPEM is the CA certificate in PEM, what a device installs.
	CACertPEM []byte
	// CACert is the parsed CA certificate; CACert.Raw is its DER.
	CACert *x509.Certificate
	// Leaf is the server certificate as of Ensure. A running TLSConfig
	// may reissue it; Current returns the one served now.
	Leaf *x509.Certificate
	// CAFingerprintSHA256 is the SHA-256 of the CA certificate's DER as
	// "AB:CD:…", what a device shows when asked to trust it.
	CAFingerprintSHA256 string
	// CAPath is the CA certificate file (Dir/ca.pem).
	CAPath string

	opts   Options
	caKey  crypto.Signer
	mu     sync.Mutex // guards lastCheck and reissuing
	cur    *tls.Certificate
	curMu  sync.RWMutex
	lastCk time.Time
}

// Ensure creates or loads the CA in opts.Dir and issues or renews the
// server certificate, so that it is valid for at least RenewBefore and
// names every entry of LocalHosts and opts.Hosts.
func Ensure(opts Options) (*Bundle, error) {
	if opts.Dir == "" {
		return nil, errors.New("certs: no directory for the TLS certificates")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Local == nil {
		opts.Local = LocalHosts
	}
	for _, h := range opts.Hosts {
		if err := checkHost(h); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create TLS directory: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(opts)
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		CACertPEM:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}),
		CACert:              caCert,
		CAFingerprintSHA256: Fingerprint(caCert.Raw),
		CAPath:              filepath.Join(opts.Dir, CAFile),
		opts:                opts,
		caKey:               caKey,
	}
	removeLegacy(opts)
	b.mu.Lock()
	err = b.refreshLocked(true)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b.Leaf = b.Current()
	return b, nil
}

// Current returns the server certificate served now.
func (b *Bundle) Current() *x509.Certificate {
	b.curMu.RLock()
	defer b.curMu.RUnlock()
	return b.cur.Leaf
}

// Refresh reissues the server certificate now if it expires within
// RenewBefore or lacks one of the names it should carry; the CA stays.
func (b *Bundle) Refresh() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refreshLocked(true)
}

// TLSConfig returns a server configuration (TLS 1.2 or later) that serves
// the server certificate with the CA as its chain. It looks at most once
// a minute, during a handshake, whether the certificate must be renewed
// (expiry, a new LAN address), so a long run picks up a renewal.
func (b *Bundle) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if b.mu.TryLock() {
				if err := b.refreshLocked(false); err != nil {
					b.opts.Logger.Error("renew TLS server certificate", "dir", b.opts.Dir, "err", err)
				}
				b.mu.Unlock()
			}
			b.curMu.RLock()
			defer b.curMu.RUnlock()
			return b.cur, nil
		},
	}
}

// refreshLocked loads the leaf if needed and reissues it when due. Unless
// force, it does nothing within checkEvery of the last look.
func (b *Bundle) refreshLocked(force bool) error {
	now := b.opts.Now()
	if !force && now.Sub(b.lastCk) < checkEvery && !now.Before(b.lastCk) {
		return nil
	}
	b.lastCk = now
	want := b.wantedNames()
	b.curMu.RLock()
	cur := b.cur
	b.curMu.RUnlock()
	if cur == nil {
		loaded, reason := b.loadLeaf()
		if loaded != nil {
			cur = loaded
		} else if reason != "" {
			b.opts.Logger.Info("issuing a new TLS server certificate", "dir", b.opts.Dir, "reason", reason)
		}
	}
	reason := ""
	if cur != nil {
		reason = b.staleReason(cur.Leaf, want, now)
		if reason == "" {
			b.swap(cur)
			return nil
		}
		b.opts.Logger.Info("renewing the TLS server certificate", "dir", b.opts.Dir, "reason", reason)
	}
	leaf, err := b.issue(want, now)
	if err != nil {
		return err
	}
	b.swap(leaf)
	b.opts.Logger.Info("TLS server certificate issued", "dir", b.opts.Dir, "names", strings.Join(want, ","),
		"not_after", leaf.Leaf.NotAfter.Format(time.DateOnly))
	return nil
}

func (b *Bundle) swap(c *tls.Certificate) {
	b.curMu.Lock()
	b.cur = c
	b.curMu.Unlock()
}

// wantedNames is LocalHosts plus Options.Hosts, normalised and sorted.
func (b *Bundle) wantedNames() []string {
	var names []string
	for _, h := range slices.Concat(b.opts.Local(), b.opts.Hosts) {
		h = normHost(h)
		if h != "" && checkHost(h) == nil && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	slices.Sort(names)
	return names
}

// loadLeaf reads the server certificate and key. A missing or unusable
// pair returns nil and why (it is reissued).
func (b *Bundle) loadLeaf() (*tls.Certificate, string) {
	certPath := filepath.Join(b.opts.Dir, ServerFile)
	keyPath := filepath.Join(b.opts.Dir, ServerKeyFile)
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
		return nil, "none yet"
	}
	if err := errors.Join(err1, err2); err != nil {
		return nil, err.Error()
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Sprintf("%s or %s unusable: %v", certPath, keyPath, err)
	}
	return &c, ""
}

// staleReason says why leaf must be reissued, or "".
func (b *Bundle) staleReason(leaf *x509.Certificate, want []string, now time.Time) string {
	pool := x509.NewCertPool()
	pool.AddCert(b.CACert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return "not valid under the CA: " + err.Error()
	}
	if leaf.IsCA {
		return "is a CA certificate"
	}
	if leaf.NotAfter.Sub(leaf.NotBefore) > 825*24*time.Hour {
		return "valid for more than 825 days"
	}
	if left := leaf.NotAfter.Sub(now); left < RenewBefore {
		return fmt.Sprintf("expires %s", leaf.NotAfter.Format(time.DateOnly))
	}
	if missing := missingNames(leaf, want); len(missing) > 0 {
		return "new names " + strings.Join(missing, ",")
	}
	return ""
}

// missingNames lists the names in want that leaf does not carry. Names it
// carries beyond want (an address the machine no longer has) are not a
// reason to reissue; they go at the next reissue.
func missingNames(leaf *x509.Certificate, want []string) []string {
	var missing []string
	for _, h := range want {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				missing = append(missing, h)
			}
			continue
		}
		if !slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return strings.EqualFold(d, h) }) {
			missing = append(missing, h)
		}
	}
	return missing
}

// issue makes, writes and returns a new server certificate for names.
func (b *Bundle) issue(names []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate TLS server key: %w", err)
	}
	var dns []string
	var ips []net.IP
	for _, h := range names {
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	cn := "popbridge"
	if h := hostName(); h != "" {
		cn = "popbridge on " + h
	}
	notBefore := now.Add(-backdate)
	notAfter := notBefore.Add(LeafValidity)
	if notAfter.After(b.CACert.NotAfter) {
		notAfter = b.CACert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"popbridge"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CACert, &key.PublicKey, b.caKey)
	if err != nil {
		return nil, fmt.Errorf("create TLS server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The chain the server sends: leaf, then the CA (clients that were
	// given the CA match it; the others see what to trust).
	chainPEM := append(certPEM, b.CACertPEM...)
	if err := fsutil.WriteFileAtomic(filepath.Join(b.opts.Dir, ServerKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(b.opts.Dir, ServerFile), chainPEM, 0o644); err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("new TLS server certificate: %w", err)
	}
	return &c, nil
}

// loadOrCreateCA returns the CA in opts.Dir, creating it on first use.
func loadOrCreateCA(opts Options) (*x509.Certificate, crypto.Signer, error) {
	certPath := filepath.Join(opts.Dir, CAFile)
	keyPath := filepath.Join(opts.Dir, CAKeyFile)
	fresh := fmt.Sprintf("delete %s and %s to create a new CA (every phone or PC that trusts the old one must then install the new one)", certPath, keyPath)

	keyPEM, keyErr := os.ReadFile(keyPath)
	certPEM, certErr := os.ReadFile(certPath)
	switch {
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("read the TLS CA key: %w", keyErr)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("read the TLS CA certificate: %w", certErr)
	case keyErr != nil && certErr != nil:
		return createCA(opts, nil)
	case keyErr != nil:
		return nil, nil, fmt.Errorf("the TLS CA certificate %s is there but its key %s is missing: restore the key from a backup, or %s", certPath, keyPath, fresh)
	}
	key, err := decodeKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("the TLS CA key %s is damaged (%v): restore it from a backup, or %s", keyPath, err, fresh)
	}
	if certErr != nil {
		// The key was written, the certificate not (a crash on first
		// start): no device can trust a certificate never written, so
		// make it from the key.
		opts.Logger.Warn("TLS CA certificate missing; making it again from its key", "file", certPath)
		return createCA(opts, key)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("the TLS CA certificate %s is damaged (no PEM CERTIFICATE block): restore it from a backup, or %s", certPath, fresh)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the TLS CA certificate %s is damaged (%v): restore it from a backup, or %s", certPath, err, fresh)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("%s is not a CA certificate: %s", certPath, fresh)
	}
	if !publicKeyEqual(cert.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("the TLS CA certificate %s does not belong to the key %s: restore the matching pair from a backup, or %s", certPath, keyPath, fresh)
	}
	now := opts.Now()
	if cert.NotAfter.Sub(now) < RenewBefore {
		// Ten years are over: nothing signed by it would be accepted.
		opts.Logger.Warn("the TLS CA expires; making a new one: phones and PCs must install the new CA", "file", certPath, "not_after", cert.NotAfter)
		return createCA(opts, nil)
	}
	return cert, key, nil
}

// createCA makes a CA (with key, or a new one) and writes it.
func createCA(opts Options, key crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	existingKey := key != nil
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate TLS CA key: %w", err)
		}
		key = k
	}
	host := hostName()
	if host == "" {
		host = "this computer"
	}
	now := opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "popbridge local CA (" + host + ")", Organization: []string{"popbridge"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create TLS CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("create TLS CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	if !existingKey {
		// Key first: a certificate without its key is the state we refuse.
		if err := fsutil.WriteFileAtomic(filepath.Join(opts.Dir, CAKeyFile), keyPEM, 0o600); err != nil {
			return nil, nil, err
		}
	}
	certPath := filepath.Join(opts.Dir, CAFile)
	if err := fsutil.WriteFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	// A new CA invalidates the old server certificate.
	os.Remove(filepath.Join(opts.Dir, ServerFile))
	opts.Logger.Info("TLS CA created", "file", certPath, "sha256", Fingerprint(der))
	return cert, key, nil
}

// removeLegacy deletes the self-signed pair that popbridge made before it
// had a CA (cert.pem, key.pem), recognised by its subject; a certificate
// the user put there is left alone.
func removeLegacy(opts Options) {
	certPath := filepath.Join(opts.Dir, "cert.pem")
	data, err := os.ReadFile(certPath)
	if err != nil {
		return
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !slices.Equal(c.Subject.Organization, []string{"popbridge (self-signed)"}) || c.Subject.CommonName != "popbridge" {
		return
	}
	os.Remove(filepath.Join(opts.Dir, "key.pem"))
	os.Remove(certPath)
	opts.Logger.Info("replaced the old self-signed TLS certificate by one signed by the local CA", "file", certPath)
}

// Fingerprint formats the SHA-256 of a DER certificate as "AB:CD:...".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode TLS key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func decodeKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return s, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ae, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ae.Equal(b)
}
