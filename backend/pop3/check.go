package pop3

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// Check logs in to the account and counts its mailbox (STAT), changing
// nothing on the server: the console's "Test connection". Failures are
// *Error, worded like a fetch round's (KindAuth, KindTLS, KindConnect …).
func Check(ctx context.Context, acct Account) (messages int, size int64, err error) {
	a := acct
	if a.Name == "" {
		a.Name = a.Host
	}
	if a.TLS == "" {
		a.TLS = TLSImplicit
	}
	if a.Port == 0 {
		a.Port = 110
		if a.TLS == TLSImplicit {
			a.Port = 995
		}
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	addr := net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	cfgErr := func(detail, hint string) error {
		return &Error{Kind: KindCredentials, Account: a.Name, Addr: addr, Detail: detail, Hint: hint}
	}
	switch {
	case a.Host == "" || a.Username == "":
		return 0, 0, cfgErr("the server name and the user name are needed", "")
	case a.TLS == TLSNone && !isLoopback(a.Host):
		return 0, 0, &Error{Kind: KindTLS, Account: a.Name, Addr: addr,
			Detail: "without SSL/TLS or STARTTLS the password would cross the network in clear text",
			Hint:   "choose SSL/TLS (usually port 995) or STARTTLS (port 110)"}
	case a.Password == nil && a.Token == nil:
		return 0, 0, cfgErr("no password given", "type the password of the old POP account")
	}
	var login func(*session) error
	if a.Token != nil {
		tok, err := a.Token(ctx, false)
		if err != nil {
			return 0, 0, cfgErr("cannot get the OAuth2 token: "+err.Error(), "sign in again")
		}
		login = func(s *session) error { return s.loginXOAUTH2(a.Username, tok) }
	} else {
		pass, err := a.Password(ctx)
		if err != nil {
			return 0, 0, cfgErr("cannot get the password: "+err.Error(), "")
		}
		if pass == "" {
			return 0, 0, cfgErr("no password given", "type the password of the old POP account")
		}
		login = func(s *session) error { return s.login(a.Username, pass) }
	}
	s, err := dial(ctx, &a)
	if err != nil {
		return 0, 0, err
	}
	defer s.close()
	if err := login(s); err != nil {
		return 0, 0, err
	}
	var count, octets int
	terr, resp := s.do("STAT", 64<<10, func() error {
		var err error
		count, octets, err = s.c.Stat()
		return err
	})
	if terr != nil {
		return 0, 0, terr
	}
	if resp != nil {
		return 0, 0, &Error{Kind: KindProtocol, Account: a.Name, Addr: addr, Detail: fmt.Sprintf("the server answered STAT with an error: %v", resp), Err: resp}
	}
	_, _ = s.do("QUIT", 64<<10, func() error { return s.c.Quit() })
	return count, int64(octets), nil
}
