package message

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Placeholders for address parts that are missing, as Dovecot sends them:
// an empty host would make the address a group marker in IMAP.
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

type addrTokKind int

const (
	tokAtom addrTokKind = iota
	tokQuoted
	tokComment
	tokSpecial
)

type addrTok struct {
	kind  addrTokKind
	text  string // atom or special: raw; quoted/comment: content, unescaped
	raw   string // source text
	space bool   // white space before the token
}

func tokenizeAddr(s string) []addrTok {
	var toks []addrTok
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = true
			i++
			continue
		case c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				if s[j] != '\r' && s[j] != '\n' {
					b.WriteByte(s[j])
				}
				j++
			}
			if j < len(s) {
				j++
			}
			toks = append(toks, addrTok{kind: tokQuoted, text: b.String(), raw: s[i:j], space: space})
			i = j
		case c == '(':
			depth := 0
			j := i
			var b strings.Builder
			for j < len(s) {
				ch := s[j]
				if ch == '\\' && j+1 < len(s) {
					b.WriteByte(s[j+1])
					j += 2
					continue
				}
				if ch == '(' {
					depth++
					if depth > 1 {
						b.WriteByte(ch)
					}
				} else if ch == ')' {
					depth--
					if depth == 0 {
						j++
						break
					}
					b.WriteByte(ch)
				} else {
					b.WriteByte(ch)
				}
				j++
			}
			toks = append(toks, addrTok{kind: tokComment, text: strings.TrimSpace(b.String()), raw: s[i:j], space: space})
			i = j
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s)
			} else {
				j += i + 1
			}
			toks = append(toks, addrTok{kind: tokAtom, text: s[i:j], raw: s[i:j], space: space})
			i = j
		case strings.IndexByte("<>:;,@", c) >= 0:
			toks = append(toks, addrTok{kind: tokSpecial, text: s[i : i+1], raw: s[i : i+1], space: space})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n\"(<>:;,@[", s[j]) < 0 {
				j++
			}
			toks = append(toks, addrTok{kind: tokAtom, text: s[i:j], raw: s[i:j], space: space})
			i = j
		}
		space = false
	}
	return toks
}

// phrase joins tokens as a display name: quoted strings unquoted, comments
// dropped, one space where the source had white space. Encoded words stay
// as they are.
func phrase(toks []addrTok) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind == tokComment {
			continue
		}
		if t.space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return strings.TrimSpace(b.String())
}

// addrSpec joins tokens as an addr-spec (comments and white space dropped,
// quotes kept), dropping an obsolete route ("@a,@b:") and returning the
// first comment as a fallback display name.
func addrSpec(toks []addrTok) (spec, comment string) {
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].kind == tokSpecial && toks[i].text == ":" {
			toks = toks[i+1:]
			break
		}
	}
	var b strings.Builder
	for _, t := range toks {
		if t.kind == tokComment {
			if comment == "" {
				comment = t.text
			}
			continue
		}
		b.WriteString(t.raw)
	}
	return b.String(), comment
}

func makeAddress(name, spec string) (imap.Address, bool) {
	if spec == "" && name == "" {
		return imap.Address{}, false
	}
	mailbox, host := spec, ""
	if i := strings.LastIndexByte(spec, '@'); i >= 0 {
		mailbox, host = spec[:i], spec[i+1:]
	}
	if mailbox == "" {
		mailbox = missingMailbox
	}
	if host == "" {
		host = missingDomain
	}
	return imap.Address{Name: name, Mailbox: mailbox, Host: host}, true
}

// parseAddressList parses an RFC 5322 address-list leniently, keeping the
// display names raw (RFC 2047 words not decoded). Groups become a group
// start marker (Mailbox = group name) and an end marker (all empty), as in
// RFC 3501 7.4.2.
func parseAddressList(v string) []imap.Address {
	toks := tokenizeAddr(v)
	var out []imap.Address
	inGroup := false
	i := 0
	for i < len(toks) {
		// Find the first top-level special that decides what this is.
		j := i
		for j < len(toks) {
			t := toks[j]
			if t.kind == tokSpecial && (t.text == "<" || t.text == "," || t.text == ";" || (t.text == ":" && !inGroup)) {
				break
			}
			j++
		}
		var sep string
		if j < len(toks) {
			sep = toks[j].text
		}
		switch sep {
		case "<":
			name := phrase(toks[i:j])
			k := j + 1
			for k < len(toks) && !(toks[k].kind == tokSpecial && toks[k].text == ">") {
				k++
			}
			spec, _ := addrSpec(toks[j+1 : min(k, len(toks))])
			if spec != "" || name != "" {
				if a, ok := makeAddress(name, spec); ok {
					out = append(out, a)
				}
			}
			// Skip to the next separator.
			for k < len(toks) && !(toks[k].kind == tokSpecial && (toks[k].text == "," || toks[k].text == ";")) {
				k++
			}
			if k < len(toks) && toks[k].text == ";" && inGroup {
				out = append(out, imap.Address{})
				inGroup = false
			}
			i = k + 1
		case ":":
			out = append(out, imap.Address{Mailbox: phrase(toks[i:j])})
			if out[len(out)-1].Mailbox == "" {
				out[len(out)-1].Mailbox = missingMailbox
			}
			inGroup = true
			i = j + 1
		default: // ",", ";" or end
			spec, comment := addrSpec(toks[i:j])
			if spec != "" {
				if a, ok := makeAddress(comment, spec); ok {
					out = append(out, a)
				}
			}
			if sep == ";" && inGroup {
				out = append(out, imap.Address{})
				inGroup = false
			}
			i = j + 1
		}
	}
	if inGroup {
		out = append(out, imap.Address{})
	}
	return out
}
