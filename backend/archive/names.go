package archive

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
)

// cleanName turns a name found on disk into a folder path component: valid
// UTF-8 names are kept; other byte strings are decoded as Shift_JIS (old
// Windows archives) when that decodes cleanly, else invalid bytes become
// U+FFFD; "/" becomes "_" and control characters U+FFFD. err, when not nil,
// says what was changed, for a Problem.
func cleanName(raw string) (string, error) {
	name := raw
	var err error
	if !utf8.ValidString(raw) {
		if s, ok := decodeShiftJIS(raw); ok {
			name = s
			err = fmt.Errorf("folder name is not UTF-8; decoded as Shift_JIS: %q", s)
		} else {
			name = strings.ToValidUTF8(raw, "\uFFFD")
			err = fmt.Errorf("folder name is not UTF-8; invalid bytes replaced: %q", name)
		}
	}
	if strings.ContainsFunc(name, badNameRune) {
		name = strings.Map(func(r rune) rune {
			switch {
			case r == '/':
				return '_'
			case unicode.IsControl(r):
				return '\uFFFD'
			}
			return r
		}, name)
		if err == nil {
			err = fmt.Errorf("folder name has a \"/\" or control character; shown as %q", name)
		}
	}
	return name, err
}

// cleanLegacyName is cleanName for the stores of Windows programs, whose
// names are CP932 by design: decoding them is not worth a Problem.
func cleanLegacyName(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		if s, ok := decodeShiftJIS(raw); ok {
			raw = s
		}
	}
	return cleanName(raw)
}

// legacyComponent is component for names from Windows programs' stores.
func (w *walker) legacyComponent(path, raw string) string {
	name, err := cleanLegacyName(raw)
	if err != nil {
		w.report(path, err)
	}
	return name
}

func badNameRune(r rune) bool { return r == '/' || unicode.IsControl(r) }

// decodeShiftJIS decodes s as Shift_JIS (Windows-31J); ok only when every
// byte sequence is valid and the result has no control characters.
func decodeShiftJIS(s string) (string, bool) {
	out, err := japanese.ShiftJIS.NewDecoder().String(s)
	if err != nil || strings.ContainsRune(out, utf8.RuneError) || strings.ContainsFunc(out, unicode.IsControl) {
		return "", false
	}
	return out, true
}

// mutf7Encoding is IMAP's modified base64 (RFC 3501 5.1.3): ',' for '/', no
// padding.
var mutf7Encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// decodeMUTF7 decodes an IMAP modified UTF-7 name, as Dovecot and Courier
// store folder names on disk. ok is false if s is not valid modified UTF-7
// (then callers keep the name as it is).
func decodeMUTF7(s string) (string, bool) {
	if !strings.Contains(s, "&") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", false
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", false
		}
		enc := s[i+1 : i+1+j]
		i += j + 2
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7Encoding.Strict().DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for k := 0; k < len(u); k++ {
			r := rune(u[k])
			if utf16.IsSurrogate(r) {
				if k+1 >= len(u) {
					return "", false
				}
				r = utf16.DecodeRune(r, rune(u[k+1]))
				if r == utf8.RuneError {
					return "", false
				}
				k++
			}
			b.WriteRune(r)
		}
	}
	return b.String(), true
}
