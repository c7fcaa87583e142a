package main

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/server"
)

// shellKey carries the long-lived part of a running popbridge (the
// control Service, its endpoint and the console) to serve, which runs once
// per configuration.
type shellKey struct{}

func withShell(ctx context.Context, sh *shell) context.Context {
	return context.WithValue(ctx, shellKey{}, sh)
}

func shellFrom(ctx context.Context) *shell {
	sh, _ := ctx.Value(shellKey{}).(*shell)
	return sh
}

// bridgeControl connects one run of serve to the control Service.
type bridgeControl struct {
	svc       *control.Service
	a         *app
	listeners []control.Listener
	closeSrv  func()
}

// attachControl finds the Service of the shell serve runs in or, when
// serve runs alone (tests), starts a Service and its endpoint for this
// run.
func attachControl(ctx context.Context, a *app) (*bridgeControl, error) {
	bc := &bridgeControl{a: a}
	if sh := shellFrom(ctx); sh != nil {
		bc.svc = sh.svc
		return bc, nil
	}
	svc := control.NewService(control.Options{Version: version, DataDir: a.cfg.DataDir, Logger: a.log})
	srv, err := control.Listen(svc, a.cfg.DataDir, a.cfg.Listen.Control)
	if err != nil {
		return nil, err
	}
	bc.svc = svc
	bc.closeSrv = func() { srv.Close() }
	return bc, nil
}

// listening records an IMAP listener.
func (bc *bridgeControl) listening(addr net.Addr, tls bool) {
	l := control.Listener{Kind: "imap", Addr: addr.String()}
	if tls {
		l.Kind = "imaps"
	}
	if ta, ok := addr.(*net.TCPAddr); ok {
		l.Port = ta.Port
	}
	bc.listeners = append(bc.listeners, l)
}

// ready attaches the running bridge to the Service. bundle is popbridge's
// CA and certificate, nil when the bridge serves the user's own
// certificate (the first of conf's).
func (bc *bridgeControl) ready(bundle *certs.Bundle, conf *tls.Config) {
	rt := runtimeFor(bc.a, true, bc.listeners, bundle)
	if bundle != nil {
		rt.ServerFingerprint = func() string { return certs.Fingerprint(bundle.Current().Raw) }
	}
	if bundle == nil && bc.a.cfg.Listen.TLSCert != "" && conf != nil && len(conf.Certificates) > 0 && len(conf.Certificates[0].Certificate) > 0 {
		rt.OwnCert = bc.a.cfg.Listen.TLSCert
		fp := certs.Fingerprint(conf.Certificates[0].Certificate[0])
		rt.OwnCertFingerprint = fp
		rt.ServerFingerprint = func() string { return fp }
	}
	bc.svc.Attach(rt)
}

// detach lets go of the bridge before it closes.
func (bc *bridgeControl) detach() {
	bc.svc.Detach()
	if bc.closeSrv != nil {
		bc.closeSrv()
	}
}

// session counts a logged-in client until its session closes.
func (bc *bridgeControl) session(info server.SessionInfo, sess *backend.Session, err error) (imapserver.Session, error) {
	if err != nil {
		return nil, err
	}
	done := bc.svc.ClientConnected(info.User, info.RemoteAddr.String(), info.TLS)
	return &trackedSession{Session: sess, done: done}, nil
}

// trackedSession is a backend session whose end is reported.
type trackedSession struct {
	*backend.Session
	done func()
}

func (s *trackedSession) Close() error {
	s.done()
	return s.Session.Close()
}
