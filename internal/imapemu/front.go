package imapemu

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The front door of every connection. go-imap's imapserver cannot show a
// provider's exact capability list, has no ID (RFC 2971) and no QUOTA
// (RFC 2087), drops a connection on an unknown command before login, and
// knows only AUTH=PLAIN. So the front handles the NOT-AUTHENTICATED state
// itself (greeting, CAPABILITY, ID, LOGIN, AUTHENTICATE PLAIN / XOAUTH2 /
// OAUTHBEARER with SASL-IR, NOOP, LOGOUT) and then hands the connection
// to the inner imapserver, which greets with PREAUTH; the front swaps that
// greeting for the tagged answer to LOGIN. After login the front follows
// command boundaries in the client's stream (lines, {n} and {n+} literals,
// the DONE after IDLE) and answers CAPABILITY, ID and (Gmail) GETQUOTAROOT
// and GETQUOTA itself, applies throttling and injected failures, and
// passes every other command through unchanged.

const (
	maxLine        = 64 * 1024
	preAuthTimeout = 5 * time.Minute
	maxBad         = 10
)

var errLineTooLong = errors.New("command line too long")

type front struct {
	s   *Server
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
}

func (f *front) write(b []byte) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.nc.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err := f.nc.Write(b)
	return err
}

func (f *front) writeLine(s string) error { return f.write([]byte(s + "\r\n")) }

// readLine reads one line including its CRLF.
func (f *front) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := f.br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			if len(line) > maxLine {
				return nil, errLineTooLong
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return line, nil
	}
}

func trimCRLF(b []byte) string { return strings.TrimRight(string(b), "\r\n") }

// splitCommand splits "tag NAME rest" (name upper-cased, "UID X" as one
// name).
func splitCommand(line string) (tag, name, rest string, ok bool) {
	tag, after, ok := strings.Cut(line, " ")
	if !ok || tag == "" || strings.ContainsAny(tag, "+*(){%\"\\") {
		return "", "", "", false
	}
	name, rest, _ = strings.Cut(after, " ")
	name = strings.ToUpper(name)
	if name == "UID" {
		var sub string
		sub, rest, _ = strings.Cut(rest, " ")
		name += " " + strings.ToUpper(sub)
	}
	return tag, name, rest, name != ""
}

// literalAt reports a literal announced at the end of line: "{n}" (sync)
// or "{n+}" (non-sync).
func literalAt(line string) (n int64, sync, ok bool) {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasSuffix(line, "}") {
		return 0, false, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false, false
	}
	num := line[i+1 : len(line)-1]
	sync = !strings.HasSuffix(num, "+")
	num = strings.TrimSuffix(num, "+")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num == "" {
		return 0, false, false
	}
	return n, sync, true
}

// readArgs parses the astring arguments of a command (atoms, quoted
// strings, literals), reading literals and continuation lines from the
// client as needed. A parenthesised list is returned as one raw argument.
func (f *front) readArgs(rest string) ([]string, error) {
	var args []string
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return args, nil
		}
		switch rest[0] {
		case '"':
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return nil, errors.New("unterminated quoted string")
			}
			args = append(args, b.String())
			rest = rest[i+1:]
		case '{':
			n, sync, ok := literalAt(rest)
			if !ok || strings.IndexByte(rest, '}') != len(rest)-1 {
				return nil, errors.New("bad literal")
			}
			if n > maxLine {
				return nil, errLineTooLong
			}
			if sync {
				if err := f.writeLine("+ Ready for additional command text."); err != nil {
					return nil, err
				}
			}
			buf := make([]byte, n)
			if _, err := ioReadFull(f.br, buf); err != nil {
				return nil, err
			}
			args = append(args, string(buf))
			line, err := f.readLine()
			if err != nil {
				return nil, err
			}
			rest = trimCRLF(line)
		case '(':
			depth, i := 0, 0
			for ; i < len(rest); i++ {
				if rest[i] == '(' {
					depth++
				} else if rest[i] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if i >= len(rest) {
				return nil, errors.New("unbalanced parenthesis")
			}
			args = append(args, rest[:i+1])
			rest = rest[i+1:]
		default:
			atom, after, _ := strings.Cut(rest, " ")
			args = append(args, atom)
			rest = after
		}
	}
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// discardCommand consumes the rest of a command whose first line is line
// and that is being refused before its literal: non-synchronising literals
// the client sends anyway are read and dropped; for a synchronising one the
// client waits for a "+" that never comes (Exchange refuses a throttled
// APPEND that way).
func (f *front) discardCommand(line string) error { return f.skipCommand(line, false) }

// consumeCommand reads the rest of a command, accepting synchronising
// literals with "+", and drops it: for an answer given after the upload.
func (f *front) consumeCommand(line string) error { return f.skipCommand(line, true) }

func (f *front) skipCommand(line string, acceptSync bool) error {
	for {
		n, sync, ok := literalAt(line)
		if !ok || (sync && !acceptSync) {
			return nil
		}
		if sync {
			if err := f.writeLine("+ Ready for literal data"); err != nil {
				return err
			}
		}
		if _, err := f.br.Discard(int(n)); err != nil {
			return err
		}
		next, err := f.readLine()
		if err != nil {
			return err
		}
		line = trimCRLF(next)
	}
}

// serveConn is the NOT-AUTHENTICATED state.
func (s *Server) serveConn(nc net.Conn) {
	f := &front{s: s, nc: nc, br: bufio.NewReaderSize(nc, 16*1024)}
	handedOff := false
	defer func() {
		if !handedOff {
			nc.Close()
			s.forget(nc)
		}
	}()
	p := s.profile
	if f.writeLine("* OK "+p.greeting) != nil {
		return
	}
	bad := 0
	for bad < maxBad {
		nc.SetReadDeadline(time.Now().Add(preAuthTimeout))
		raw, err := f.readLine()
		if err != nil {
			return
		}
		line := trimCRLF(raw)
		tag, name, rest, ok := splitCommand(line)
		if !ok {
			bad++
			f.writeLine("* " + p.badCmd)
			continue
		}
		if fl := s.takeFailure(name); fl != nil {
			f.consumeCommand(line)
			f.writeLine(tag + " " + fl.Response)
			if fl.Bye != "" {
				f.writeLine("* BYE " + fl.Bye)
				return
			}
			continue
		}
		switch name {
		case "CAPABILITY":
			f.writeLine("* CAPABILITY " + strings.Join(p.preCaps, " "))
			f.writeLine(tag + " OK CAPABILITY completed.")
		case "NOOP":
			f.writeLine(tag + " OK NOOP completed.")
		case "LOGOUT":
			f.writeLine("* BYE " + p.logoutBye)
			f.writeLine(tag + " OK LOGOUT completed.")
			return
		case "ID":
			if f.discardCommand(line) != nil {
				return
			}
			f.writeLine("* ID (" + p.id + ")")
			f.writeLine(tag + " OK ID completed.")
		case "LOGIN":
			args, err := f.readArgs(rest)
			if err != nil || len(args) != 2 {
				bad++
				f.writeLine(tag + " " + p.badCmd)
				continue
			}
			u, a, ok := s.user(args[0])
			if !ok || u.Password != args[1] {
				bad++
				f.writeLine(tag + " " + p.loginNO)
				continue
			}
			handedOff = f.handoff(a, tag+" OK "+p.loginOK(u.Name))
			return
		case "AUTHENTICATE":
			a, text, err := f.authenticate(tag, rest)
			if err != nil {
				return
			}
			if a == nil {
				bad++
				f.writeLine(tag + " " + text)
				continue
			}
			handedOff = f.handoff(a, tag+" OK "+text)
			return
		default:
			bad++
			f.discardCommand(line)
			f.writeLine(tag + " " + p.badCmd)
		}
	}
}

// authenticate runs AUTHENTICATE (RFC 3501, SASL-IR RFC 4959). It returns
// the account and the OK text, or nil and the failure status, or an error
// if the connection broke.
func (f *front) authenticate(tag, rest string) (*account, string, error) {
	p := f.s.profile
	mech, ir, hasIR := strings.Cut(rest, " ")
	mech = strings.ToUpper(mech)
	supported := false
	for _, c := range p.preCaps {
		if strings.EqualFold(c, "AUTH="+mech) {
			supported = true
		}
	}
	if !supported {
		return nil, p.authNO, nil
	}
	var resp []byte
	if hasIR {
		if ir != "=" {
			b, err := base64.StdEncoding.DecodeString(ir)
			if err != nil {
				return nil, p.badCmd, nil
			}
			resp = b
		}
	} else {
		if err := f.writeLine("+ "); err != nil {
			return nil, "", err
		}
		line, err := f.readLine()
		if err != nil {
			return nil, "", err
		}
		l := trimCRLF(line)
		if l == "*" {
			return nil, "BAD AUTHENTICATE cancelled.", nil
		}
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			return nil, p.badCmd, nil
		}
		resp = b
	}
	var (
		name, secret string
		oauth        bool
	)
	switch mech {
	case "PLAIN":
		parts := strings.Split(string(resp), "\x00")
		if len(parts) != 3 {
			return nil, p.authNO, nil
		}
		name, secret = parts[1], parts[2]
	case "XOAUTH2":
		oauth = true
		// "user=" user ^A "auth=Bearer " token ^A ^A
		for _, kv := range strings.Split(string(resp), "\x01") {
			if v, ok := strings.CutPrefix(kv, "user="); ok {
				name = v
			} else if v, ok := strings.CutPrefix(kv, "auth="); ok {
				secret, _ = strings.CutPrefix(v, "Bearer ")
			}
		}
	case "OAUTHBEARER":
		oauth = true
		// RFC 7628: gs2 header "n,a=user," then ^A-separated key=value.
		gs2, kvs, _ := strings.Cut(string(resp), "\x01")
		for _, part := range strings.Split(gs2, ",") {
			if v, ok := strings.CutPrefix(part, "a="); ok {
				name = v
			}
		}
		for _, kv := range strings.Split(kvs, "\x01") {
			if v, ok := strings.CutPrefix(kv, "auth="); ok {
				secret, _ = strings.CutPrefix(v, "Bearer ")
			}
		}
	default:
		return nil, p.authNO, nil
	}
	u, a, ok := f.s.user(name)
	good := ok && ((!oauth && u.Password == secret) || (oauth && u.Token != "" && u.Token == secret))
	if good {
		return a, p.authOK, nil
	}
	if oauth {
		// The error challenge; the client answers with an empty response
		// (XOAUTH2) or ^A (OAUTHBEARER), then gets the NO.
		if err := f.writeLine("+ " + base64.StdEncoding.EncodeToString([]byte(p.oauthJSON))); err != nil {
			return nil, "", err
		}
		if _, err := f.readLine(); err != nil {
			return nil, "", err
		}
	}
	return nil, p.authNO, nil
}

// handoff gives the authenticated connection to the inner imapserver.
func (f *front) handoff(a *account, okLine string) bool {
	ac := &authConn{front: f, acct: a, okLine: okLine}
	f.nc.SetReadDeadline(time.Time{})
	if err := f.s.innerLn.push(ac); err != nil {
		f.writeLine("* BYE Server is shutting down.")
		return false
	}
	return true
}

type readState int

const (
	rsBoundary   readState = iota // at the start of a command
	rsLine                        // inside a command, after a literal
	rsLiteral                     // inside a literal
	rsLitPending                  // a synchronising literal was announced; the inner server decides
	rsIdle                        // the next line is IDLE's DONE
)

// authConn is the net.Conn the inner imapserver serves. Reads happen on
// the inner server's command goroutine; it only reads again after it has
// answered the previous command, so the front may answer intercepted
// commands right there.
type authConn struct {
	*front
	acct   *account
	okLine string

	// Read side.
	rs      readState
	curTag  string
	litLeft int64
	pending []byte

	// Shared with the write side.
	mu         sync.Mutex
	greeted    bool
	greetBuf   []byte
	litTag     string // tag of the command whose sync literal awaits a decision
	litPending bool
	litOK      bool

	closeOnce sync.Once
}

func (a *authConn) Read(p []byte) (int, error) {
	for {
		if len(a.pending) > 0 {
			n := copy(p, a.pending)
			a.pending = a.pending[n:]
			return n, nil
		}
		switch a.rs {
		case rsLiteral:
			if a.litLeft == 0 {
				a.rs = rsLine
				continue
			}
			buf := p
			if int64(len(buf)) > a.litLeft {
				buf = buf[:a.litLeft]
			}
			n, err := a.br.Read(buf)
			a.litLeft -= int64(n)
			return n, err
		case rsLitPending:
			a.mu.Lock()
			ok, undecided := a.litOK, a.litPending
			a.litPending, a.litTag = false, ""
			a.mu.Unlock()
			switch {
			case ok:
				a.rs = rsLiteral
			case undecided:
				// The inner server wants more of the command without having
				// sent "+" (imapserver does this after refusing a literal
				// of a command other than APPEND). A client never sends an
				// unaccepted synchronising literal, so end the command line
				// for it: imapserver answers with an error and both sides
				// are in step again.
				a.rs = rsBoundary
				a.pending = []byte("\r\n")
			default:
				a.rs = rsBoundary
			}
		case rsIdle:
			line, err := a.readLine()
			if err != nil {
				return 0, err
			}
			a.rs = rsBoundary
			a.pending = line
		case rsLine:
			line, err := a.readLine()
			if err != nil {
				return 0, err
			}
			a.afterLine(line, a.litTagFor())
			a.pending = line
		case rsBoundary:
			line, err := a.readLine()
			if err != nil {
				return 0, err
			}
			tag, name, rest, ok := splitCommand(trimCRLF(line))
			if ok && a.intercept(tag, name, rest, trimCRLF(line)) {
				continue
			}
			a.curTag = tag
			a.afterLine(line, tag)
			if name == "IDLE" && a.rs == rsBoundary {
				a.rs = rsIdle
			}
			a.pending = line
		}
	}
}

// litTagFor is the tag of the command being read.
func (a *authConn) litTagFor() string { return a.curTag }

// afterLine sets the read state after passing line of the command tag.
func (a *authConn) afterLine(line []byte, tag string) {
	n, sync, ok := literalAt(string(line))
	switch {
	case !ok:
		a.rs = rsBoundary
	case sync:
		a.mu.Lock()
		a.litTag, a.litPending, a.litOK = tag, true, false
		a.mu.Unlock()
		a.rs, a.litLeft = rsLitPending, n
	default:
		a.rs, a.litLeft = rsLiteral, n
	}
}

// intercept answers the commands the front handles after login. It
// returns false to pass the command to the inner server.
func (a *authConn) intercept(tag, name, rest, line string) bool {
	s, p := a.s, a.s.profile
	if backoff, over := s.throttle(a.acct.user.Name); over {
		a.discardCommand(line)
		a.writeLine(tag + " " + p.throttled(backoff))
		if p.throttledBye != "" {
			a.writeLine("* BYE " + p.throttledBye)
			a.nc.Close()
		}
		return true
	}
	if f := s.takeFailure(name); f != nil {
		a.consumeCommand(line)
		a.writeLine(tag + " " + f.Response)
		if f.Bye != "" {
			a.writeLine("* BYE " + f.Bye)
			a.nc.Close()
		}
		return true
	}
	switch name {
	case "CAPABILITY":
		a.writeLine("* CAPABILITY " + strings.Join(p.postCaps(s.Limits()), " "))
		a.writeLine(tag + " OK CAPABILITY completed.")
		return true
	case "ID":
		a.discardCommand(line)
		a.writeLine("* ID (" + p.id + ")")
		a.writeLine(tag + " OK ID completed.")
		return true
	case "LOGIN", "AUTHENTICATE", "STARTTLS":
		a.discardCommand(line)
		a.writeLine(tag + " " + p.badCmd)
		return true
	case "GETQUOTAROOT", "GETQUOTA":
		if !p.quota {
			return false
		}
		args, err := a.readArgs(rest)
		if err != nil || len(args) != 1 {
			a.writeLine(tag + " " + p.badCmd)
			return true
		}
		a.acct.mu.Lock()
		used := a.acct.storageUsed()
		a.acct.mu.Unlock()
		quota := fmt.Sprintf(`* QUOTA "" (STORAGE %d %d)`, (used+1023)/1024, s.Limits().StorageBytes/1024)
		if name == "GETQUOTAROOT" {
			a.writeLine(`* QUOTAROOT ` + quoteString(args[0]) + ` ""`)
			a.writeLine(quota)
		} else if args[0] == "" {
			a.writeLine(quota)
		} else {
			a.writeLine(tag + " NO [NONEXISTENT] Unknown quota root (Failure)")
			return true
		}
		a.writeLine(tag + " OK Success")
		return true
	}
	return false
}

func quoteString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (a *authConn) Write(p []byte) (int, error) {
	a.mu.Lock()
	if !a.greeted {
		// Swallow the inner "* PREAUTH ..." greeting; answer LOGIN instead.
		a.greetBuf = append(a.greetBuf, p...)
		i := bytes.Index(a.greetBuf, []byte("\r\n"))
		if i < 0 {
			a.mu.Unlock()
			return len(p), nil
		}
		out := append([]byte(a.okLine+"\r\n"), a.greetBuf[i+2:]...)
		a.greeted, a.greetBuf = true, nil
		a.mu.Unlock()
		if err := a.write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if a.litPending {
		switch {
		case bytes.HasPrefix(p, []byte("+")):
			a.litOK, a.litPending = true, false
		case bytes.HasPrefix(p, []byte(a.litTag+" ")):
			a.litOK, a.litPending = false, false
		}
	}
	a.mu.Unlock()
	if err := a.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (a *authConn) Close() error {
	var err error
	a.closeOnce.Do(func() {
		err = a.nc.Close()
		a.s.forget(a.nc)
	})
	return err
}

func (a *authConn) LocalAddr() net.Addr                { return a.nc.LocalAddr() }
func (a *authConn) RemoteAddr() net.Addr               { return a.nc.RemoteAddr() }
func (a *authConn) SetDeadline(t time.Time) error      { return a.nc.SetDeadline(t) }
func (a *authConn) SetReadDeadline(t time.Time) error  { return a.nc.SetReadDeadline(t) }
func (a *authConn) SetWriteDeadline(t time.Time) error { return a.nc.SetWriteDeadline(t) }
