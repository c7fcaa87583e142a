package control

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/devices"
	"github.com/popbridge/popbridge/providers"
)

// devicesFile keeps the DeviceAccount in the data dir.
const devicesFile = "devices.json"

// localHosts is where the machine is reached (a test hook).
var localHosts = certs.LocalHosts

func (s *Service) readDeviceAccount() DeviceAccount {
	var a DeviceAccount
	if s.opts.DataDir != "" {
		if b, err := os.ReadFile(filepath.Join(s.opts.DataDir, devicesFile)); err == nil {
			json.Unmarshal(b, &a)
		}
	}
	return a
}

// deviceAccount is the saved DeviceAccount with what is missing filled
// in: the address from the upstream login, the outgoing server from the
// provider presets.
func (s *Service) deviceAccount(set *Settings) DeviceAccount {
	a := s.readDeviceAccount()
	if a.Email == "" && set != nil && set.Upstream != nil && strings.Contains(set.Upstream.Username, "@") {
		a.Email = set.Upstream.Username
	}
	if a.SMTPHost == "" && a.Email != "" {
		if p, ok := providers.ForAddress(a.Email); ok && p.SMTPHost != "" {
			a.SMTPHost, a.SMTPPort, a.SMTPTLS = p.SMTPHost, p.SMTPPort, p.SMTPTLS
			if a.SMTPUsername == "" {
				a.SMTPUsername = p.LoginName(a.Email)
			}
		}
	}
	return a
}

// isLAN reports whether a listener accepts more than this machine.
func isLAN(ls []Listener) bool {
	for _, l := range ls {
		host, _, err := net.SplitHostPort(l.Addr)
		if err == nil && !IsLoopbackHost(host) {
			return true
		}
	}
	return false
}

// deviceHosts lists the addresses a device can reach the bridge at: on
// the local network this machine's LAN addresses, then its names, then
// 127.0.0.1 (for this computer); otherwise 127.0.0.1 only.
func deviceHosts(ls []Listener) []string {
	if !isLAN(ls) {
		return []string{"127.0.0.1"}
	}
	// A listener bound to one address is reached there only.
	var bound []string
	wildcard := false
	for _, l := range ls {
		host, _, err := net.SplitHostPort(l.Addr)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		switch {
		case ip != nil && ip.IsUnspecified():
			wildcard = true
		case !IsLoopbackHost(host):
			bound = append(bound, host)
		}
	}
	if !wildcard {
		return bound
	}
	var v4, names []string
	for _, h := range localHosts() {
		ip := net.ParseIP(h)
		switch {
		case IsLoopbackHost(h):
		case ip != nil && ip.To4() != nil:
			v4 = append(v4, h)
		case ip == nil:
			names = append(names, h)
		}
	}
	out := append(append(v4, names...), "127.0.0.1")
	return slices.Compact(out)
}

// Devices implements API.
func (s *Service) Devices(ctx context.Context) (*Devices, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	set, _ := s.settings()
	d := &Devices{Listeners: rt.Listeners, CAFingerprint: rt.CAFingerprint, LAN: isLAN(rt.Listeners), Hosts: deviceHosts(rt.Listeners),
		OwnCert: rt.OwnCert, OwnCertFingerprint: rt.OwnCertFingerprint}
	if len(rt.CACert) == 0 {
		d.CAFingerprint = ""
	}
	if rt.ServerFingerprint != nil {
		d.ServerFingerprint = rt.ServerFingerprint()
	}
	if d.Listeners == nil {
		d.Listeners = []Listener{}
	}
	if set != nil && len(set.Users) > 0 {
		d.User = set.Users[0].Name
	}
	d.Account = s.deviceAccount(set)
	d.Email = d.Account.Email
	if _, err := s.profileFor(rt, d, d.Hosts[0]); err != nil {
		d.ProfileProblem = err.Error()
	} else {
		d.CanProfile = true
	}
	return d, nil
}

// SetDeviceAccount implements API.
func (s *Service) SetDeviceAccount(ctx context.Context, a DeviceAccount) (*Devices, error) {
	a.Email = strings.TrimSpace(a.Email)
	a.SMTPHost = strings.TrimSpace(a.SMTPHost)
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		return nil, &Error{Code: CodeBadRequest, Message: a.Email + " is not an email address", Params: map[string]string{"field": "email"}}
	}
	if a.SMTPPort < 0 || a.SMTPPort > 65535 {
		return nil, &Error{Code: CodeBadRequest, Message: "SMTP port: must be 1-65535", Params: map[string]string{"field": "smtp_port"}}
	}
	switch a.SMTPTLS {
	case "", "implicit", "starttls":
	default:
		return nil, &Error{Code: CodeBadRequest, Message: "SMTP security: use implicit or starttls", Params: map[string]string{"field": "smtp_tls"}}
	}
	if s.opts.DataDir == "" {
		return nil, errNoSettings
	}
	b, _ := json.MarshalIndent(a, "", "  ")
	if err := writeFileAtomic(filepath.Join(s.opts.DataDir, devicesFile), b); err != nil {
		return nil, err
	}
	s.hub.publish(Event{Type: "settings"})
	return s.Devices(ctx)
}

// profileFor makes the configuration profile of d for host.
func (s *Service) profileFor(rt *Runtime, d *Devices, host string) ([]byte, error) {
	var l *Listener
	for i := range d.Listeners {
		if d.Listeners[i].Kind == "imaps" || l == nil {
			l = &d.Listeners[i]
		}
	}
	if l == nil {
		return nil, errorf(CodeNothing, "the bridge has no IMAP listener")
	}
	if len(rt.CACert) == 0 {
		return nil, errNoCA(rt)
	}
	if d.User == "" {
		return nil, errorf(CodeNothing, "set a device password first")
	}
	a := d.Account
	return devices.MobileConfig(devices.Account{
		Description: "popbridge", Email: a.Email, DisplayName: a.DisplayName, Host: host, Port: l.Port, TLS: l.Kind == "imaps",
		Username: d.User, SMTPHost: a.SMTPHost, SMTPPort: a.SMTPPort, SMTPTLS: a.SMTPTLS, SMTPUsername: a.SMTPUsername,
	}, rt.CACert)
}

// errNoCA says why there is no popbridge CA to give devices.
func errNoCA(rt *Runtime) *Error {
	if rt.OwnCert != "" {
		return &Error{Code: CodeNothing, Message: fmt.Sprintf("the bridge serves your own certificate (tls_cert %s), not popbridge's CA: install the CA that issued it on the device yourself", rt.OwnCert),
			Params: map[string]string{"own_cert": rt.OwnCert}, Status: 409}
	}
	return &Error{Code: CodeNothing, Message: "the bridge has no CA certificate for devices (it serves your own certificate, tls_cert): install the CA that issued it on the device yourself", Status: 409}
}

// CACertificate implements API: the CA certificate only, as PEM. The
// Runtime carries no key, so none can leave here.
func (s *Service) CACertificate(ctx context.Context) ([]byte, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if len(rt.CACert) == 0 {
		return nil, errNoCA(rt)
	}
	c, err := x509.ParseCertificate(rt.CACert)
	if err != nil || !c.IsCA {
		return nil, &Error{Code: CodeInternal, Message: "popbridge's CA certificate is not a CA certificate", Status: 500}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), nil
}

// MobileConfig implements API.
func (s *Service) MobileConfig(ctx context.Context, host string) ([]byte, error) {
	d, err := s.Devices(ctx)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = d.Hosts[0]
	}
	if !slices.Contains(d.Hosts, host) {
		return nil, &Error{Code: CodeNotFound, Message: host + " is not an address of this bridge", Status: 404}
	}
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	b, err := s.profileFor(rt, d, host)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, &Error{Code: CodeInvalid, Message: err.Error(), Status: 400}
	}
	return b, nil
}
