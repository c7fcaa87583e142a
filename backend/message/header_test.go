package message

import (
	"bytes"
	"testing"
)

func TestSplitHeader(t *testing.T) {
	tests := []struct {
		name, msg, header, body string
		nilBody                 bool
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n", "body\r\n", false},
		{"lf", "A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n", "body\n", false},
		{"mixed", "A: 1\r\n\nbody", "A: 1\r\n", "body", false},
		{"empty body", "A: 1\r\n\r\n", "A: 1\r\n", "", false},
		{"no empty line", "A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n", "", true},
		{"no line end", "A: 1", "A: 1", "", true},
		{"empty header", "\r\nbody", "", "body", false},
		{"first empty line only", "A: 1\r\n\r\nx\r\n\r\ny", "A: 1\r\n", "x\r\n\r\ny", false},
		{"whitespace line is not empty", "A: 1\r\n \r\nB: 2\r\n\r\nb", "A: 1\r\n \r\nB: 2\r\n", "b", false},
		{"nothing", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, b := SplitHeader([]byte(tt.msg))
			if string(h) != tt.header || string(b) != tt.body {
				t.Errorf("SplitHeader(%q) = %q, %q; want %q, %q", tt.msg, h, b, tt.header, tt.body)
			}
			if (b == nil) != tt.nilBody {
				t.Errorf("body nil = %v, want %v", b == nil, tt.nilBody)
			}
			if len(h)+len(b) > len(tt.msg) {
				t.Errorf("header+body longer than message")
			}
		})
	}
}

func TestHeaderValue(t *testing.T) {
	const h = "Subject: hello\r\n" +
		"  world\r\n" +
		"X-Empty:\r\n" +
		"to:  a@example.com \r\n" +
		"To: second@example.com\r\n" +
		"garbage line without colon\r\n" +
		"Spaced Name: x\r\n" +
		"Obs  : obsolete spacing\r\n" +
		"X-Tab:\tv\r\n" +
		"\r\n" +
		"Body-Field: not a header\r\n"
	tests := []struct{ name, want string }{
		{"Subject", "hello  world"},
		{"subject", "hello  world"},
		{"X-Empty", ""},
		{"To", "a@example.com"},
		{"Missing", ""},
		{"Body-Field", ""},
		{"Spaced Name", ""},
		{"Obs", "obsolete spacing"},
		{"X-Tab", "v"},
	}
	for _, tt := range tests {
		if got := HeaderValue([]byte(h), tt.name); got != tt.want {
			t.Errorf("HeaderValue(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	// LF only.
	lf := bytes.ReplaceAll([]byte(h), []byte("\r\n"), []byte("\n"))
	if got := HeaderValue(lf, "Subject"); got != "hello  world" {
		t.Errorf("LF: HeaderValue(Subject) = %q", got)
	}
}

func TestMessageID(t *testing.T) {
	tests := []struct{ header, want string }{
		{"Message-ID: <abc@example.com>\r\n\r\n", "abc@example.com"},
		{"Message-Id:   <abc@example.com>  \r\n", "abc@example.com"},
		{"MESSAGE-ID:\r\n <folded@example.com>\r\n", "folded@example.com"},
		{"Message-ID: <a@x> (comment) <b@y>\r\n", "a@x"},
		{"Message-ID: bare@example.com\r\n", "bare@example.com"},
		{"Message-ID: (comment) bare@example.com junk\r\n", "bare@example.com"},
		{"Message-ID: <>\r\n", ""},
		{"Message-ID:\r\n", ""},
		{"Subject: none\r\n", ""},
		{"Message-ID: <with space@example.com>\r\n", "withspace@example.com"},
	}
	for _, tt := range tests {
		if got := MessageID([]byte(tt.header)); got != tt.want {
			t.Errorf("MessageID(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestStripComments(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a (b) c", "a   c"},
		{"a (b (nested)) c", "a   c"},
		{`"quoted (not comment)" x`, `"quoted (not comment)" x`},
		{`a (esc \) still) b`, "a   b"},
		{"none", "none"},
	}
	for _, tt := range tests {
		if got := stripComments(tt.in); got != tt.want {
			t.Errorf("stripComments(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
