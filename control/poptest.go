package control

// The old POP account's "Test connection": pop3.Check (the fetcher's own
// connection code and wording) logs in and counts the mailbox.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/popbridge/popbridge/backend/pop3"
)

// popTestTimeout bounds the whole test; popGreetingTimeout connecting and
// each answer (a plain connection to a port that expects TLS from the
// first byte gets no greeting: the test should not wait long for it).
const popTestTimeout = 20 * time.Second

var popGreetingTimeout = 10 * time.Second

// TestPOP implements API: it logs in (USER/PASS) and counts the mailbox
// (STAT), changing nothing on the server.
func (s *Service) TestPOP(ctx context.Context, t POPTest) (*POPResult, error) {
	start := time.Now()
	t.Host = strings.TrimSpace(t.Host)
	t.Username = strings.TrimSpace(t.Username)
	if t.TLS == "" {
		t.TLS = "implicit"
	}
	switch t.TLS {
	case "implicit", "starttls", "none":
	default:
		return nil, errorf(CodeBadRequest, "%q is not a security mode", t.TLS)
	}
	if t.Port == 0 {
		t.Port = 110
		if t.TLS == "implicit" {
			t.Port = 995
		}
	}
	if t.Host == "" || t.Username == "" {
		return nil, errorf(CodeBadRequest, "the POP server name and the user name are needed")
	}
	res := &POPResult{Host: t.Host, Port: t.Port}
	defer func() { res.Elapsed = time.Since(start) }()
	if t.TLS == "none" && !isLoopbackName(t.Host) {
		res.Kind, res.Detail = "config", fmt.Sprintf("without SSL/TLS or STARTTLS the password would cross the network in clear text to %s: choose SSL/TLS (usually port 995) or STARTTLS (port 110)", t.Host)
		return res, nil
	}
	pw := t.Password
	if pw == "" {
		if set, err := s.settings(); err == nil {
			for _, p := range set.POP3 {
				if strings.EqualFold(p.Host, t.Host) && p.Username == t.Username && p.PasswordSet {
					if pw, err = s.opts.Host.Secret(ctx, "pop3:"+p.Name); err != nil {
						res.Kind, res.Detail = "credentials", err.Error()
						return res, nil
					}
					break
				}
			}
		}
	}
	if pw == "" {
		res.Kind, res.Detail = "credentials", "no password given: type the password of the old POP account"
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*popTestTimeout)
	defer cancel()
	n, size, err := pop3.Check(ctx, pop3.Account{Name: t.Host, Host: t.Host, Port: t.Port, TLS: t.TLS, Username: t.Username,
		Password: func(context.Context) (string, error) { return pw, nil }, Timeout: popGreetingTimeout})
	if err != nil {
		var pe *pop3.Error
		if errors.As(err, &pe) {
			res.Kind, res.Detail = pe.Kind.String(), pe.Detail
			if pe.Kind == pop3.KindDisconnected {
				res.Kind = "protocol"
			}
			if pe.Hint != "" {
				res.Detail += ": " + pe.Hint
			}
		} else {
			res.Kind, res.Detail = "protocol", err.Error()
		}
		return res, nil
	}
	res.OK, res.Messages, res.Bytes = true, n, size
	return res, nil
}

func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
