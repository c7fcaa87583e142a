package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzPreAuth feeds arbitrary bytes to a connection's command loop over
// real loopback TCP. The server must neither panic (panics are recovered
// and logged at error level, so error records fail the input) nor hang:
// once the client has sent everything and shut down its side, the server
// must close the connection.
func FuzzPreAuth(f *testing.F) {
	env := newTestEnv(f, func(o *Options) {
		o.AuthFailDelay = time.Millisecond
		o.DebugWriter = io.Discard
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			conn.Write(data)
			conn.(*net.TCPConn).CloseWrite()
		}()
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server did not close the connection after input %q", data)
		}
		if n := env.logErrors.Load(); n != 0 {
			t.Fatalf("%d error records (panic?) for input %q:\n%s", n, data, env.log.String())
		}
	})
}

// FuzzPostAuth drives the whole command loop after login against a real
// backend.Account (an mbox archive served as Local/…). The input is split
// into lines; each line is a command under a tag of our own ("T3 " + the
// line), whose literals ("{n}" or "{n+}" at the end of a line) are sent
// with n bytes of message text and continue with the next input line.
// A line starting with '#' is sent as it is, without a tag. The server
// must
//   - never answer [SERVERBUG],
//   - never say BYE or close the connection, except to LOGOUT,
//   - answer every tagged command exactly once (a reply with another tag
//     while one is awaited is a failure), and
//   - never panic or log at error level.
func FuzzPostAuth(f *testing.F) {
	env := newBackendEnv(f, func(o *Options) { o.DebugWriter = io.Discard })
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		c, _ := dialRaw(t, env.addr)
		c.login("L")
		fz := &fuzzClient{t: t, c: c}
		fz.run(splitFuzzCommands(data))
		if n := env.logErrors.Load() + env.backendErrors.Load(); n != 0 {
			t.Fatalf("%d error records for input %q:\n%s\n%s", n, data, env.log.String(), env.backendLog.String())
		}
		// The gate should have caught what imapserver's parser fails on.
		if strings.Contains(env.log.String(), "rejected by the inner server's parser") {
			t.Fatalf("a malformed argument reached imapserver's parser, input %q:\n%s", data, env.log.String())
		}
	})
}

// fuzzCommand is one command of FuzzPostAuth: lines joined by literals.
type fuzzCommand struct {
	raw   bool
	lines []string // each but the last ends with a literal announcement
}

func splitFuzzCommands(data []byte) []fuzzCommand {
	var cmds []fuzzCommand
	var cur *fuzzCommand
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if cur == nil {
			cmds = append(cmds, fuzzCommand{})
			cur = &cmds[len(cmds)-1]
			if strings.HasPrefix(l, "#") {
				// Sent untagged; no literal may follow (it could swallow
				// our next command unanswered).
				cur.raw = true
				cur.lines = []string{strings.TrimRight(l[1:], "}")}
				cur = nil
				continue
			}
		}
		if n, nonSync, at, ok := literalSpec([]byte(l)); ok {
			// Keep literals small enough to send.
			n %= 20000
			plus := ""
			if nonSync {
				plus = "+"
			}
			cur.lines = append(cur.lines, fmt.Sprintf("%s{%d%s}", l[:at], n, plus))
			continue
		}
		cur.lines = append(cur.lines, l)
		cur = nil
	}
	if cur != nil { // the input ends with a literal: the line after it is empty
		cur.lines = append(cur.lines, "")
	}
	return cmds
}

type fuzzClient struct {
	t *testing.T
	c *rawClient
}

// literalBody is the text sent for a literal of n bytes.
func literalBody(n int64) []byte {
	const msg = "From: fuzz@example.com\r\nSubject: fuzz\r\n\r\nbody\r\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = msg[i%len(msg)]
	}
	return b
}

// reply reads one server line (and the literals it announces) and returns
// it; eof reports a closed connection.
func (fz *fuzzClient) reply() (line string, eof bool) {
	c := fz.c
	c.conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			fz.t.Fatalf("no answer from the server (after %q)", l)
		}
		return "", true
	}
	l = strings.TrimSuffix(l, "\r\n")
	if strings.Contains(l, "[SERVERBUG]") {
		fz.t.Fatalf("server answered %q", l)
	}
	if strings.ContainsRune(l, '\r') {
		fz.t.Fatalf("CR inside the answer line %q", l)
	}
	for {
		n, _, _, ok := literalSpec([]byte(l))
		if !ok || strings.HasPrefix(l, "+") {
			break
		}
		if _, err := io.CopyN(io.Discard, c.br, n); err != nil {
			return "", true
		}
		more, err := c.br.ReadString('\n')
		if err != nil {
			return "", true
		}
		l += "[literal]" + strings.TrimSuffix(more, "\r\n")
	}
	return l, false
}

func (fz *fuzzClient) run(cmds []fuzzCommand) {
	t := fz.t
	for i, cmd := range cmds {
		tag := fmt.Sprintf("T%d", i)
		first := tag + " " + cmd.lines[0]
		if cmd.raw {
			first = cmd.lines[0]
		}
		logout := len(strings.Fields(first)) >= 2 && strings.EqualFold(strings.Fields(first)[1], "LOGOUT")
		fz.send(first)
		seg := 0
		answered := false
		sawBye := false
		for !answered {
			// A line announcing a non-synchronising literal is followed by
			// it at once; a synchronising one waits for "+".
			if seg < len(cmd.lines)-1 && strings.HasSuffix(cmd.lines[seg], "+}") {
				fz.sendLiteral(cmd.lines[seg])
				seg++
				fz.send(cmd.lines[seg])
				continue
			}
			l, eof := fz.reply()
			if eof {
				if sawBye && logout {
					return
				}
				t.Fatalf("connection closed during %q", first)
			}
			switch {
			case strings.HasPrefix(l, "+"):
				if seg < len(cmd.lines)-1 {
					fz.sendLiteral(cmd.lines[seg])
					seg++
					fz.send(cmd.lines[seg])
				} else {
					fz.send("DONE") // IDLE
				}
			case strings.HasPrefix(l, "* BYE"):
				if !logout {
					t.Fatalf("BYE %q after %q", l, first)
				}
				sawBye = true
			case strings.HasPrefix(l, "* "):
				if cmd.raw && strings.HasPrefix(l, "* BAD ") {
					answered = true // a line without a valid tag
				}
			case cmd.raw:
				answered = true
			case strings.HasPrefix(l, tag+" "):
				answered = true
			default:
				t.Fatalf("reply %q while waiting for %s (%q)", l, tag, first)
			}
		}
		if sawBye {
			if l, eof := fz.reply(); !eof {
				t.Fatalf("after LOGOUT: %q", l)
			}
			return
		}
	}
	// Nothing more may come: one more command gets the very next reply.
	fz.send("Z NOOP")
	for {
		l, eof := fz.reply()
		if eof {
			t.Fatal("connection closed at the end")
		}
		if strings.HasPrefix(l, "Z ") {
			break
		}
		if !strings.HasPrefix(l, "* ") {
			t.Fatalf("reply %q while waiting for Z", l)
		}
	}
}

func (fz *fuzzClient) send(s string) {
	fz.c.conn.SetWriteDeadline(time.Now().Add(4 * time.Second))
	if _, err := io.WriteString(fz.c.conn, s+"\r\n"); err != nil {
		fz.t.Fatalf("send %q: %v", s, err)
	}
}

func (fz *fuzzClient) sendLiteral(line string) {
	n, _, _, _ := literalSpec([]byte(line))
	fz.c.conn.SetWriteDeadline(time.Now().Add(4 * time.Second))
	if _, err := fz.c.conn.Write(literalBody(n)); err != nil {
		fz.t.Fatalf("send literal: %v", err)
	}
}
