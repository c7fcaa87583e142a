package control

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/certs"
)

// TestCACertificate: the control endpoint hands out popbridge's CA
// certificate as PEM (the CA that signed the listeners' certificate, and
// nothing else: no key), and Devices shows its fingerprint; with the
// user's own certificate there is none, and both say so.
func TestCACertificate(t *testing.T) {
	dir := t.TempDir()
	b, err := certs.Ensure(certs.Options{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(Options{DataDir: dir, AttachWait: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	svc.Attach(&Runtime{Listeners: []Listener{{Kind: "imaps", Addr: "127.0.0.1:1993", Port: 1993}},
		CACert: b.CACert.Raw, CAFingerprint: b.CAFingerprintSHA256,
		ServerFingerprint: func() string { return certs.Fingerprint(b.Current().Raw) }})
	srv, err := Listen(svc, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()

	// Over HTTP, as any client sees it.
	req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/devices/ca.pem", nil)
	req.Header.Set("Authorization", "Bearer "+srv.info.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" {
		t.Fatalf("GET /devices/ca.pem: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got, err := srv.Client().CACertificate(ctx)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Client.CACertificate: %v", err)
	}
	block, rest := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not one PEM certificate:\n%s", body)
	}
	if strings.Contains(string(body), "PRIVATE KEY") {
		t.Fatal("a private key in the answer")
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "tls", certs.CAFile))
	if err != nil || !bytes.Equal(body, onDisk) {
		t.Fatalf("the answer is not the CA file (%v)", err)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CA: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := b.Current().Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("the CA does not verify the server certificate: %v", err)
	}
	d, err := srv.Client().Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.CAFingerprint != certs.Fingerprint(ca.Raw) || d.ServerFingerprint != certs.Fingerprint(b.Current().Raw) || d.OwnCert != "" {
		t.Fatalf("devices: CA %q server %q own %q", d.CAFingerprint, d.ServerFingerprint, d.OwnCert)
	}

	// The user's own certificate: no CA to give, in words that say why.
	svc.Attach(&Runtime{Listeners: []Listener{{Kind: "imaps", Addr: "127.0.0.1:1993", Port: 1993}},
		OwnCert: "/home/me/certs/mail.pem", OwnCertFingerprint: "AB:CD", ServerFingerprint: func() string { return "AB:CD" }})
	_, err = srv.Client().CACertificate(ctx)
	var e *Error
	if CodeOf(err) != CodeNothing || !strings.Contains(err.Error(), "/home/me/certs/mail.pem") || !errors.As(err, &e) || e.Status != 409 {
		t.Fatalf("CA with the user's own certificate: %v", err)
	}
	d, err = srv.Client().Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.CAFingerprint != "" || d.OwnCert != "/home/me/certs/mail.pem" || d.OwnCertFingerprint != "AB:CD" || d.CanProfile || !strings.Contains(d.ProfileProblem, "tls_cert") {
		t.Fatalf("devices with the user's own certificate: %+v", d)
	}
}

// TestCloseEndsStreams: Close ends the open event streams (a console
// page's), so that stopping popbridge does not wait for them.
func TestCloseEndsStreams(t *testing.T) {
	dir := t.TempDir()
	svc := NewService(Options{DataDir: dir, AttachWait: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	srv, err := Listen(svc, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := srv.Client().Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for svc.Listeners() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stream never subscribed")
		}
		time.Sleep(5 * time.Millisecond) // polling for the subscription
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	timeout := time.After(30 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-timeout:
			t.Fatal("the event stream outlived Close")
		}
	}
	select {
	case <-closed:
	case <-timeout:
		t.Fatal("Close did not return")
	}
	if _, err := os.Stat(filepath.Join(dir, InfoFile)); !os.IsNotExist(err) {
		t.Errorf("control.json after Close: %v", err)
	}
}
