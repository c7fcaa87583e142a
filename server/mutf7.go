package server

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// mutf7Alphabet is modified base64 (RFC 3501 section 5.1.3): "," for "/".
const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

var mutf7Encoding = base64.NewEncoding(mutf7Alphabet).WithPadding(base64.NoPadding)

// mutf7Problem says why go-imap's modified UTF-7 decoder (which also takes
// raw UTF-8) would refuse s, or returns "". It refuses at least what that
// decoder refuses.
func mutf7Problem(s string) string {
	if !utf8.ValidString(s) {
		return "it is not UTF-8"
	}
	shifted := false // the previous run was an encoded one
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch == 0x7f {
			return "it contains a control character"
		}
		if ch != '&' {
			shifted = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return `"&" starts an encoded run that no "-" ends (write "&-" for "&")`
		}
		run := s[i+1 : i+1+end]
		i += end + 1
		if run == "" { // "&-" is "&"
			shifted = false
			continue
		}
		if shifted {
			return "two encoded runs follow each other"
		}
		if !validMUTF7Run(run) {
			return "bad encoded run " + quoteForAnswer("&"+run+"-")
		}
		shifted = true
	}
	return ""
}

// validMUTF7Run checks the base64 between "&" and "-": UTF-16 without
// characters that must be written as themselves.
func validMUTF7Run(run string) bool {
	for i := 0; i < len(run); i++ {
		if strings.IndexByte(mutf7Alphabet, run[i]) < 0 {
			return false
		}
	}
	b, err := mutf7Encoding.DecodeString(run)
	if err != nil || len(b) == 0 || len(b)%2 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 2 {
		r := rune(b[i])<<8 | rune(b[i+1])
		if utf16.IsSurrogate(r) {
			i += 2
			if i >= len(b) {
				return false
			}
			r2 := rune(b[i])<<8 | rune(b[i+1])
			if utf16.DecodeRune(r, r2) == utf8.RuneError {
				return false
			}
		} else if r >= 0x20 && r <= 0x7e {
			return false
		}
	}
	return true
}
