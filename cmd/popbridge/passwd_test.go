package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hashOutput is one bcrypt hash line of the given cost, and nothing else.
func hashOutput(cost string) *regexp.Regexp {
	return regexp.MustCompile(`^\$2a\$` + cost + `\$[./A-Za-z0-9]{53}\n$`)
}

// TestPasswd runs the command as users do: cost 12.
func TestPasswd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runPasswd(nil, strings.NewReader("correct horse battery\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	if !hashOutput("12").MatchString(stdout.String()) {
		t.Fatalf("stdout is not exactly one cost-12 bcrypt hash line: %q", stdout.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr not empty for piped input: %q", stderr.String())
	}
	if err := bcrypt.CompareHashAndPassword(bytes.TrimSuffix(stdout.Bytes(), []byte("\n")), []byte("correct horse battery")); err != nil {
		t.Error(err)
	}
}

func TestPasswdFromPipe(t *testing.T) {
	tests := []struct {
		name, input, password string
	}{
		{"LF", "pw\n", "pw"},
		{"CRLF", "pa55word\r\n", "pa55word"},
		{"no newline", "no-newline", "no-newline"},
		{"first line only", "first\nsecond\n", "first"},
		{"spaces kept", "  spaced  \n", "  spaced  "},
		{"unicode", "pässwörd\n", "pässwörd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if code := passwd(nil, strings.NewReader(tt.input), &stdout, &stderr, bcrypt.MinCost); code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			if !hashOutput("04").MatchString(stdout.String()) {
				t.Fatalf("stdout is not exactly one bcrypt hash line: %q", stdout.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr not empty for piped input: %q", stderr.String())
			}
			hash := bytes.TrimSuffix(stdout.Bytes(), []byte("\n"))
			if err := bcrypt.CompareHashAndPassword(hash, []byte(tt.password)); err != nil {
				t.Errorf("hash does not accept %q: %v", tt.password, err)
			}
			if err := bcrypt.CompareHashAndPassword(hash, []byte(tt.input)); err == nil && tt.input != tt.password {
				t.Errorf("hash accepts the raw input %q", tt.input)
			}
		})
	}
}

// TestPasswdFromFile reads from an *os.File that is not a terminal (a pipe),
// the way a shell pipeline runs it.
func TestPasswdFromFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		io.WriteString(w, "piped-secret\r\n")
		w.Close()
	}()
	var stdout, stderr bytes.Buffer
	if code := passwd(nil, r, &stdout, &stderr, bcrypt.MinCost); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !hashOutput("04").MatchString(stdout.String()) {
		t.Fatalf("stdout: %q", stdout.String())
	}
	if err := bcrypt.CompareHashAndPassword(bytes.TrimSpace(stdout.Bytes()), []byte("piped-secret")); err != nil {
		t.Error(err)
	}
}

func TestPasswdErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		input string
		code  int
		want  string // in stderr
	}{
		{"empty input", nil, "", 1, "popbridge passwd: empty password"},
		{"empty line", nil, "\n", 1, "popbridge passwd: empty password"},
		{"empty CRLF line", nil, "\r\nsecond\n", 1, "popbridge passwd: empty password"},
		{"too long", nil, strings.Repeat("x", 73) + "\n", 1, "longer than 72 bytes"},
		{"argument", []string{"hunter2"}, "pw\n", 2, "unexpected argument"},
		{"unknown flag", []string{"-cost", "4"}, "pw\n", 2, "flag provided but not defined: -cost"},
		{"help", []string{"-h"}, "", 0, "Usage: popbridge passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := passwd(tt.args, strings.NewReader(tt.input), &stdout, &stderr, bcrypt.MinCost)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr echoes the argument: %q", stderr.String())
			}
		})
	}
}
