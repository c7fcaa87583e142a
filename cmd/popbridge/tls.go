package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/popbridge/popbridge/certs"
)

// serverTLS returns the TLS configuration of the IMAP listeners (IMAPS and
// STARTTLS) and what to tell the user about it.
//
// With [listen] tls_cert/tls_key the user's pair is served as it is and
// bundle is nil. Otherwise the local CA in data_dir/tls signs a server
// certificate for this machine's names and addresses and for the host
// names in the [listen] addresses (certs.Ensure); bundle carries the CA a
// device installs (the console's Devices page offers it).
func serverTLS(cfg *Config, log *slog.Logger) (conf *tls.Config, bundle *certs.Bundle, info string, err error) {
	if cfg.Listen.TLSCert != "" || cfg.Listen.TLSKey != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Listen.TLSCert, cfg.Listen.TLSKey)
		if err != nil {
			return nil, nil, "", fmt.Errorf("load listen.tls_cert %s with listen.tls_key %s: %w (check that the files are PEM and belong together)",
				cfg.Listen.TLSCert, cfg.Listen.TLSKey, err)
		}
		info = fmt.Sprintf("popbridge: TLS certificate %s, SHA-256 fingerprint %s\n", cfg.Listen.TLSCert, certs.Fingerprint(pair.Certificate[0]))
		return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil, info, nil
	}
	if cfg.DataDir == "" {
		return nil, nil, "", fmt.Errorf("no data_dir for the TLS certificates")
	}
	b, err := certs.Ensure(certs.Options{
		Dir:    filepath.Join(cfg.DataDir, "tls"),
		Hosts:  listenHosts(cfg.Listen.IMAP, cfg.Listen.IMAPS),
		Logger: log,
	})
	if err != nil {
		return nil, nil, "", err
	}
	info = fmt.Sprintf("popbridge: TLS certificate for %s, signed by popbridge's local CA\n"+
		"popbridge: a phone or another PC trusts it once you install the CA (console: Devices, or the file %s); CA SHA-256 fingerprint %s\n",
		strings.Join(certNames(b.Leaf), ", "), b.CAPath, b.CAFingerprintSHA256)
	return b.TLSConfig(), b, info, nil
}

// listenHosts returns the host names of the listen addresses that name a
// specific host (not a wildcard or an address), for the certificate.
// Addresses of this machine are in certs.LocalHosts already; an address
// the machine does not have is not added.
func listenHosts(addrs ...string) []string {
	var hosts []string
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || host == "" || net.ParseIP(host) != nil {
			continue
		}
		hosts = append(hosts, host)
	}
	return hosts
}

// certNames lists the names and addresses a certificate is valid for.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
