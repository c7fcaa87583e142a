package testenv

import (
	"crypto/tls"
	"crypto/x509"
)

// SelfSignedCert returns a PEM certificate and key for "localhost" and
// 127.0.0.1, for other test servers (internal/imapemu) that offer TLS.
func SelfSignedCert() (certPEM, keyPEM []byte, err error) { return selfSignedCert() }

// TLSConfigFor is a client configuration that trusts exactly certPEM.
func TLSConfigFor(certPEM []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}
