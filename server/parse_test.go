package server

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestLiteralSpec(t *testing.T) {
	tests := []struct {
		line    string
		n       int64
		nonSync bool
		at      int
		ok      bool
	}{
		{"a LOGIN {5}", 5, false, 8, true},
		{"a LOGIN {5+}", 5, true, 8, true},
		{"{0}", 0, false, 0, true},
		{"a LOGIN {}", 0, false, -1, false},
		{"a LOGIN {+}", 0, false, -1, false},
		{"a LOGIN {-5}", 0, false, -1, false},
		{"a LOGIN {5} x", 0, false, -1, false},
		{"a LOGIN 5}", 0, false, -1, false},
		{"a {99999999999999999999999}", 1<<63 - 1, false, 2, true},
	}
	for _, tc := range tests {
		n, nonSync, at, ok := literalSpec([]byte(tc.line))
		if n != tc.n || nonSync != tc.nonSync || at != tc.at || ok != tc.ok {
			t.Errorf("literalSpec(%q) = %d, %v, %d, %v; want %d, %v, %d, %v", tc.line, n, nonSync, at, ok, tc.n, tc.nonSync, tc.at, tc.ok)
		}
	}
}

func TestParseCommand(t *testing.T) {
	atom := func(s string) token { return token{kind: tokAtom, val: s} }
	str := func(s string) token { return token{kind: tokString, val: s} }
	lp, rp := token{kind: tokLParen}, token{kind: tokRParen}
	tests := []struct {
		segs []segment
		want command
		err  string
	}{
		{[]segment{{line: []byte("a1 noop"), litAt: -1}}, command{tag: "a1", name: "NOOP"}, ""},
		{[]segment{{line: []byte(`a LOGIN "x \"y\" \\z" pw`), litAt: -1}}, command{tag: "a", name: "LOGIN", args: []token{str(`x "y" \z`), atom("pw")}}, ""},
		{[]segment{{line: []byte("a LOGIN {3}"), litAt: 8, lit: []byte("b c")}, {line: []byte(" {2}"), litAt: 1, lit: []byte("\x00\r")}, {line: nil, litAt: -1}},
			command{tag: "a", name: "LOGIN", args: []token{str("b c"), str("\x00\r")}}, ""},
		{[]segment{{line: []byte(`a ID ("name" NIL)`), litAt: -1}}, command{tag: "a", name: "ID", args: []token{lp, str("name"), atom("NIL"), rp}}, ""},
		{[]segment{{line: []byte("a  ID   NIL"), litAt: -1}}, command{tag: "a", name: "ID", args: []token{atom("NIL")}}, ""},
		{[]segment{{line: []byte("a+ NOOP"), litAt: -1}}, command{}, "missing or invalid tag"},
		{[]segment{{line: []byte("a"), litAt: -1}}, command{tag: "a"}, "missing command name"},
		{[]segment{{line: []byte(`a "NOOP"`), litAt: -1}}, command{tag: "a"}, "missing command name"},
		{[]segment{{line: []byte("a NOOP \x7f"), litAt: -1}}, command{tag: "a"}, "unexpected byte 0x7f"},
		{[]segment{{line: []byte("a NOOP {x"), litAt: -1}}, command{tag: "a"}, `unexpected '{'`},
		{[]segment{{line: []byte("a LOGIN \"a\tb\""), litAt: -1}}, command{tag: "a"}, "control character in quoted string"},
	}
	for _, tc := range tests {
		got, err := parseCommand(&rawCommand{segs: tc.segs})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parse %q: error %v, want %q", tc.segs[0].line, err, tc.err)
			}
			if got.tag != tc.want.tag {
				t.Errorf("parse %q: tag %q, want %q", tc.segs[0].line, got.tag, tc.want.tag)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse %q: %v", tc.segs[0].line, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parse %q = %+v, want %+v", tc.segs[0].line, got, tc.want)
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want []string
		err  error
	}{
		{"a\r\nb\nc\r\n", 10, []string{"a", "b", "c"}, nil},
		{"0123456789\r\n", 10, []string{"0123456789"}, nil},
		{"0123456789x\r\n", 10, nil, errLineTooLong},
		{strings.Repeat("y", 10000) + "\r\n", 8192, nil, errLineTooLong},
		{"partial", 10, nil, errors.New("unexpected EOF")},
	}
	for _, tc := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var got []string
		var err error
		for {
			var l []byte
			if l, err = readLine(br, tc.max); err != nil {
				break
			}
			got = append(got, string(l))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("readLine(%.20q): lines %q, want %q", tc.in, got, tc.want)
		}
		wantErr := "EOF"
		if tc.err != nil {
			wantErr = tc.err.Error()
		}
		if err.Error() != wantErr {
			t.Errorf("readLine(%.20q): error %v, want %s", tc.in, err, wantErr)
		}
	}
}

func TestForeignProtocol(t *testing.T) {
	tests := map[string]bool{
		"GET / HTTP/1.1":   true,
		"POST /x HTTP/1.0": true,
		"EHLO example.com": true,
		"helo":             true,
		"a GET x":          false,
		"GET":              false,
		"a LOGIN alice pw": false,
		"x y HTTP/1.1":     true,
		"a1 CAPABILITY":    false,
		"":                 false,
	}
	for line, want := range tests {
		if got := foreignProtocol([]byte(line)); got != want {
			t.Errorf("foreignProtocol(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestSecretCommand(t *testing.T) {
	tests := []struct {
		line, tag, name string
		secret          bool
	}{
		{"a LOGIN alice pw", "a", "LOGIN", true},
		{"a login {5}", "a", "LOGIN", true},
		{"a AUTHENTICATE PLAIN AGFsaWNl", "a", "AUTHENTICATE", true},
		{"a LOGINalice:pw", "a", "LOGIN", true},
		{"LOGIN alice pw", "", "LOGIN", true},
		{"a SELECT INBOX", "", "", false},
		{"a ID (\"name\" \"LOGIN\")", "", "", false},
	}
	for _, tc := range tests {
		tag, name, secret := secretCommand([]byte(tc.line))
		if tag != tc.tag || name != tc.name || secret != tc.secret {
			t.Errorf("secretCommand(%q) = %q, %q, %v; want %q, %q, %v", tc.line, tag, name, secret, tc.tag, tc.name, tc.secret)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := map[string]string{
		"1.2.3":       `"1.2.3"`,
		`a"b\c`:       `"a\"b\\c"`,
		"x\r\ny\x00ü": `"xy"`,
		"":            `""`,
	}
	for in, want := range tests {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
