package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/crypto/bcrypt"
)

// passwordCost is the bcrypt cost of HashPassword.
const passwordCost = 12

// maxPasswordLen is bcrypt's limit; longer passwords would be truncated.
const maxPasswordLen = 72

// HashPassword returns a bcrypt hash (cost 12) of pw for Options.Users.
func HashPassword(pw string) (string, error) {
	if len(pw) > maxPasswordLen {
		return "", fmt.Errorf("password is %d bytes long; at most %d bytes are supported", len(pw), maxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), passwordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches the bcrypt hash (of any cost).
func CheckPassword(hash, pw string) bool {
	if len(pw) > maxPasswordLen {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// userTable is the set of users at one time; replaced whole by SetUsers.
type userTable struct {
	hashes    map[string]string // name → bcrypt hash
	dummyCost int               // bcrypt cost of the dummy hash
	dummyOnce sync.Once
	dummyHash []byte // compared for unknown users; made on first use
}

func newUserTable(users []User) (*userTable, error) {
	t := &userTable{hashes: make(map[string]string, len(users)), dummyCost: bcrypt.MinCost}
	for i, u := range users {
		if u.Name == "" {
			return nil, fmt.Errorf("server: user %d has an empty name", i+1)
		}
		if _, dup := t.hashes[u.Name]; dup {
			return nil, fmt.Errorf("server: user %q is listed twice", u.Name)
		}
		cost, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("server: user %q: password hash is not a bcrypt hash (make one with HashPassword): %w", u.Name, err)
		}
		t.dummyCost = max(t.dummyCost, cost)
		t.hashes[u.Name] = u.PasswordHash
	}
	return t, nil
}

// checkCredentials takes about as long for unknown users as for known ones
// (unless the known user's password was checked a moment ago).
func (s *Server) checkCredentials(user, pw string) bool {
	t := s.users.Load()
	hash, ok := t.hashes[user]
	if !ok {
		// Unknown users are checked against a hash of the same cost as
		// real ones, so the answer takes as long either way.
		t.dummyOnce.Do(func() {
			t.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("popbridge unknown user"), t.dummyCost)
		})
		s.compare(t.dummyHash, []byte(pw))
		return false
	}
	if len(pw) > maxPasswordLen {
		return false
	}
	if s.creds != nil && s.creds.ok(user, pw, hash) {
		return true
	}
	if s.compare([]byte(hash), []byte(pw)) != nil {
		return false
	}
	if s.creds != nil {
		s.creds.add(user, pw, hash)
	}
	return true
}

const privacyRequired = "NO [PRIVACYREQUIRED] Plaintext authentication is not allowed on this connection; use STARTTLS or the IMAPS port"

func (c *conn) handleLogin(cmd command) bool {
	if len(cmd.args) != 2 {
		return c.bad(cmd.tag, "LOGIN expects a user name and a password")
	}
	user, ok1 := cmd.args[0].astring()
	pw, ok2 := cmd.args[1].astring()
	if !ok1 || !ok2 {
		return c.bad(cmd.tag, "LOGIN expects a user name and a password")
	}
	if !c.authAllowed() {
		return c.out.write([]byte(cmd.tag+" "+privacyRequired+"\r\n")) == nil
	}
	return c.login(cmd.tag, user, pw)
}

func (c *conn) handleAuthenticate(cmd command) bool {
	if len(cmd.args) < 1 || len(cmd.args) > 2 || cmd.args[0].kind != tokAtom {
		return c.bad(cmd.tag, "AUTHENTICATE expects a mechanism and an optional initial response")
	}
	if !c.authAllowed() {
		return c.out.write([]byte(cmd.tag+" "+privacyRequired+"\r\n")) == nil
	}
	mech := strings.ToUpper(cmd.args[0].val)
	var initial []byte // nil: no initial response
	if len(cmd.args) == 2 {
		ir := cmd.args[1]
		if ir.kind != tokAtom {
			return c.bad(cmd.tag, "Invalid SASL initial response")
		}
		if ir.val != "=" {
			b, err := decodeBase64(ir.val)
			if err != nil {
				return c.bad(cmd.tag, "Invalid base64 in SASL initial response")
			}
			initial = b
		}
	}
	switch mech {
	case "PLAIN":
		resp := initial
		if resp == nil {
			var cont bool
			if resp, cont = c.saslStep(cmd.tag, ""); resp == nil {
				return cont
			}
		}
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 {
			return c.bad(cmd.tag, "Malformed PLAIN response")
		}
		authz, user, pw := string(parts[0]), string(parts[1]), string(parts[2])
		if authz != "" && authz != user {
			return c.no(cmd.tag, "[AUTHORIZATIONFAILED] Acting as another user is not supported")
		}
		return c.login(cmd.tag, user, pw)
	case "LOGIN":
		user := initial
		if user == nil {
			var cont bool
			if user, cont = c.saslStep(cmd.tag, "Username:"); user == nil {
				return cont
			}
		}
		pw, cont := c.saslStep(cmd.tag, "Password:")
		if pw == nil {
			return cont
		}
		return c.login(cmd.tag, string(user), string(pw))
	}
	return c.no(cmd.tag, "Unsupported authentication mechanism")
}

// saslStep sends a challenge and reads the client's response. A nil
// response means the exchange ended (cancelled or malformed, already
// answered); cont then says whether the connection goes on.
func (c *conn) saslStep(tag, challenge string) (resp []byte, cont bool) {
	if c.out.write([]byte("+ "+base64.StdEncoding.EncodeToString([]byte(challenge))+"\r\n")) != nil {
		return nil, false
	}
	c.nc.SetReadDeadline(time.Now().Add(preAuthReadTimeout))
	line, err := readLine(c.br, maxLine)
	if err != nil {
		c.readFailed(err)
		return nil, false
	}
	c.tr.redacted("", "")
	if string(line) == "*" {
		return nil, c.bad(tag, "AUTHENTICATE cancelled")
	}
	b, err := decodeBase64(string(line))
	if err != nil {
		return nil, c.bad(tag, "Invalid base64 in SASL response")
	}
	if b == nil {
		b = []byte{}
	}
	return b, true
}

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// login checks credentials and, on success, hands the connection to the
// inner server. It returns whether the pre-auth loop goes on.
func (c *conn) login(tag, user, pw string) bool {
	logUser := truncate(user, 128)
	if !c.s.checkCredentials(user, pw) {
		c.authFails++
		c.log.Warn("imap authentication failed", "user", logUser)
		t := time.NewTimer(c.s.authDelay)
		select {
		case <-t.C:
		case <-c.s.done:
			t.Stop()
			return false
		}
		resp := tag + " NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
		if c.authFails >= maxAuthFailures {
			c.out.write([]byte(resp + "* BYE Too many failed logins\r\n"))
			return false
		}
		return c.out.write([]byte(resp)) == nil
	}

	info := SessionInfo{User: user, RemoteAddr: c.tcp.RemoteAddr(), TLS: c.isTLS,
		WriteUntagged: func(line string) error { return c.out.write([]byte(line)) }}
	sess, err := c.s.newSession(info)
	if err != nil {
		c.log.Error("imap session could not be created", "user", logUser, "err", err)
		var imapErr *imap.Error
		if errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeNo && imapErr.Text != "" {
			code := ""
			if imapErr.Code != "" {
				code = "[" + string(imapErr.Code) + "] "
			}
			return c.no(tag, code+oneLine(imapErr.Text))
		}
		return c.no(tag, "[UNAVAILABLE] The mail store is not available; see the popbridge log")
	}
	if err := c.s.checkSession(sess); err != nil {
		c.log.Error("imap session does not implement the configured capabilities", "user", logUser, "err", err)
		sess.Close()
		return c.no(tag, "[SERVERBUG] Server misconfiguration; see the popbridge log")
	}
	c.badRun = 0
	c.log = c.log.With("user", logUser)
	c.log.Info("imap login", "tls", c.isTLS)
	c.handoff(tag, sess)
	return false
}

// newSession calls Options.NewSession, turning a panic into an error.
func (s *Server) newSession(info SessionInfo) (sess imapserver.Session, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic in NewSession", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			sess, err = nil, fmt.Errorf("panic in NewSession: %v", v)
		}
	}()
	sess, err = s.opts.NewSession(info)
	if err == nil && sess == nil {
		err = errors.New("NewSession returned no session")
	}
	return sess, err
}

// checkSession verifies what imapserver would otherwise panic about.
func (s *Server) checkSession(sess imapserver.Session) error {
	caps := s.opts.Caps
	if _, ok := sess.(imapserver.SessionIMAP4rev2); !ok && caps.Has(imap.CapIMAP4rev2) {
		return errors.New("IMAP4rev2 is advertised but the session does not implement imapserver.SessionIMAP4rev2")
	}
	if _, ok := sess.(imapserver.SessionNamespace); !ok && caps.Has(imap.CapNamespace) {
		return errors.New("NAMESPACE is advertised but the session does not implement imapserver.SessionNamespace")
	}
	if _, ok := sess.(imapserver.SessionMove); !ok && caps.Has(imap.CapMove) {
		return errors.New("MOVE is advertised but the session does not implement imapserver.SessionMove")
	}
	return nil
}

// oneLine makes s safe as the text of a status response.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
