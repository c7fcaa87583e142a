package archive

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Meta is what an archive records about a message besides its bytes.
type Meta struct {
	// Flags are IMAP flags (`\Seen` `\Answered` `\Flagged` `\Deleted`
	// `\Draft` `$Forwarded`) plus keywords; sorted, deduplicated, nil if
	// none.
	Flags []string
	// Expunged is Thunderbird's expunged bit (0x0008): the message was
	// deleted and must not be shown.
	Expunged bool
	// UIDL is the trimmed X-UIDL header value, if present.
	UIDL string
}

// Thunderbird X-Mozilla-Status bits (nsMsgMessageFlags).
const (
	mozRead      = 0x0001
	mozReplied   = 0x0002
	mozMarked    = 0x0004
	mozExpunged  = 0x0008
	mozForwarded = 0x1000
	// X-Mozilla-Status2 bits.
	mozMDNReportSent = 0x00800000
	mozLabels        = 0x0E000000 // old-style labels 1..7, now $label1..$label5
)

// ParseMeta reads the header block of a raw message (an mbox "From " line at
// the start is skipped; reading stops at the first empty line):
//
//   - X-Mozilla-Status (hex): 0x1 Read → \Seen, 0x2 Replied → \Answered,
//     0x4 Marked → \Flagged, 0x8 → Expunged, 0x1000 Forwarded → $Forwarded;
//   - X-Mozilla-Status2: 0x00800000 MDN sent → $MDNSent, the old label bits
//     0x0E000000 (label 1..5) → $label1..$label5; other bits are ignored;
//   - X-Mozilla-Keys: space-separated keywords, kept as they are (invalid
//     IMAP atoms are dropped);
//   - Status (R → \Seen; O ignored) and X-Status (A → \Answered,
//     F → \Flagged, T → \Draft, D → \Deleted), as mbox writers record them;
//   - X-UIDL.
//
// The first occurrence of each field counts.
func ParseMeta(raw []byte) Meta {
	var m Meta
	var set flagSet
	seen := 0 // bit per field already handled
	forEachHeader(raw, func(name, value []byte) bool {
		field := -1
		for i, n := range metaFields {
			if bytes.EqualFold(name, []byte(n)) {
				field = i
				break
			}
		}
		if field < 0 || seen&(1<<field) != 0 {
			return true
		}
		seen |= 1 << field
		switch metaFields[field] {
		case "X-Mozilla-Status":
			if bits, ok := ParseMozillaStatus(string(value)); ok {
				set.addIf(bits&mozRead != 0, `\Seen`)
				set.addIf(bits&mozReplied != 0, `\Answered`)
				set.addIf(bits&mozMarked != 0, `\Flagged`)
				set.addIf(bits&mozForwarded != 0, `$Forwarded`)
				m.Expunged = bits&mozExpunged != 0
			}
		case "X-Mozilla-Status2":
			if bits, ok := ParseMozillaStatus(string(value)); ok {
				set.addIf(bits&mozMDNReportSent != 0, `$MDNSent`)
				if l := (bits & mozLabels) >> 25; l >= 1 && l <= 5 {
					set.add("$label" + strconv.Itoa(int(l)))
				}
			}
		case "X-Mozilla-Keys":
			for _, k := range bytes.Fields(value) {
				if isAtom(k) && k[0] != '\\' {
					set.add(string(k))
				}
			}
		case "Status":
			set.addIf(bytes.IndexByte(value, 'R') >= 0, `\Seen`)
		case "X-Status":
			set.addIf(bytes.IndexByte(value, 'A') >= 0, `\Answered`)
			set.addIf(bytes.IndexByte(value, 'F') >= 0, `\Flagged`)
			set.addIf(bytes.IndexByte(value, 'T') >= 0, `\Draft`)
			set.addIf(bytes.IndexByte(value, 'D') >= 0, `\Deleted`)
		case "X-UIDL":
			m.UIDL = string(bytes.TrimSpace(value))
		}
		return true
	})
	m.Flags = set.sorted()
	return m
}

var metaFields = [...]string{"X-Mozilla-Status", "X-Mozilla-Status2", "X-Mozilla-Keys", "Status", "X-Status", "X-UIDL"}

// forEachHeader calls fn with each header field of raw's header block
// (unfolded: continuation lines joined with their line endings removed),
// skipping a leading mbox "From " line, until fn returns false or the
// header block ends.
func forEachHeader(raw []byte, fn func(name, value []byte) bool) {
	if bytes.HasPrefix(raw, []byte("From ")) {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return
		}
		raw = raw[i+1:]
	}
	var name, value []byte
	have := false
	var joined []byte
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = trimCR(line)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if have {
				if joined == nil {
					joined = append([]byte(nil), value...)
				}
				joined = append(joined, line...)
				value = joined
			}
			continue
		}
		if have && !fn(name, value) {
			return
		}
		have, joined = false, nil
		if n, ok := fieldName(line); ok {
			name = n
			value = line[bytes.IndexByte(line, ':')+1:]
			have = true
		}
	}
	if have {
		fn(name, value)
	}
}

// ParseMozillaStatus parses an X-Mozilla-Status or X-Mozilla-Status2 value:
// 1 to 8 hex digits (Thunderbird writes 4 and 8), optional "0x", surrounding
// white space ignored.
func ParseMozillaStatus(v string) (bits uint32, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') {
		v = v[2:]
	}
	if len(v) == 0 || len(v) > 8 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		bits = bits<<4 | uint32(d)
	}
	return bits, true
}

// ParseMaildirInfo parses the info part of a Maildir file name (directory
// part ignored): ":2,FLAGS", or "!2,FLAGS" as written where ':' is not
// allowed in file names. P → $Forwarded, R → \Answered, S → \Seen,
// T → \Deleted, D → \Draft, F → \Flagged; lowercase letters are Dovecot
// keyword indexes (a = 0) mapped through keywords (nil: ignored); other
// characters are ignored. ok is false when the name has no "2," info.
func ParseMaildirInfo(filename string, keywords []string) (flags []string, ok bool) {
	base := filename
	if i := strings.LastIndexAny(base, `/`+string(filepath.Separator)); i >= 0 {
		base = base[i+1:]
	}
	i := max(strings.LastIndex(base, ":2,"), strings.LastIndex(base, "!2,"))
	if i < 0 {
		return nil, false
	}
	var set flagSet
	for _, c := range []byte(base[i+3:]) {
		switch {
		case c == 'P':
			set.add(`$Forwarded`)
		case c == 'R':
			set.add(`\Answered`)
		case c == 'S':
			set.add(`\Seen`)
		case c == 'T':
			set.add(`\Deleted`)
		case c == 'D':
			set.add(`\Draft`)
		case c == 'F':
			set.add(`\Flagged`)
		case 'a' <= c && c <= 'z':
			if k := int(c - 'a'); k < len(keywords) && keywords[k] != "" {
				set.add(keywords[k])
			}
		}
	}
	return set.sorted(), true
}

// ReadDovecotKeywords reads the "dovecot-keywords" file of a Maildir
// ("N name" lines, N = 0..25 for the info letters a..z) and returns the
// names indexed by N ("" for gaps); nil if the file is absent or unreadable.
func ReadDovecotKeywords(maildir string) []string {
	f, err := os.Open(filepath.Join(maildir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil
	}
	var kw []string
	for _, line := range strings.Split(string(data), "\n") {
		num, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		name = strings.TrimSpace(name)
		if err != nil || n < 0 || n > 25 || !isAtom([]byte(name)) {
			continue
		}
		for len(kw) <= n {
			kw = append(kw, "")
		}
		kw[n] = name
	}
	if kw == nil {
		kw = []string{}
	}
	return kw
}

// isAtom reports whether b is a valid IMAP flag-keyword (an atom, RFC 3501):
// no CTL, SP, '(', ')', '{', '%', '*', '"', '\' (except as a leading
// system-flag marker, handled by callers), ']' or 8-bit byte.
func isAtom(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i, c := range b {
		switch {
		case c <= ' ' || c >= 0x7f:
			return false
		case c == '(' || c == ')' || c == '{' || c == '%' || c == '*' || c == '"' || c == ']':
			return false
		case c == '\\' && i > 0:
			return false
		}
	}
	return true
}

type flagSet []string

func (s *flagSet) add(f string) { *s = append(*s, f) }

func (s *flagSet) addIf(cond bool, f string) {
	if cond {
		*s = append(*s, f)
	}
}

func (s flagSet) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact([]string(s))
}
