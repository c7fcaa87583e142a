package archive

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MIME writing for rebuilt PST messages. Everything here is a pure function
// of the PST's bytes: boundaries come from the item's ID, header order is
// fixed, no clock or map order is consulted, so a rebuild is byte-identical
// every time.

// mimePart is one entity of a rebuilt message.
type mimePart struct {
	fields [][2]string // Content-* fields, in order
	body   []byte      // encoded body of a leaf, CRLF line ends
	parts  []*mimePart // children of a multipart
	ctype  string      // media type (for multiparts: "multipart/…")
	bound  string      // boundary of a multipart
	raw    string      // a whole entity (fields, blank line, body) kept as it was
}

// builder numbers the multipart boundaries of one message.
type builder struct {
	id string
	n  int
}

func (b *builder) multipart(sub string, parts ...*mimePart) *mimePart {
	b.n++
	boundary := fmt.Sprintf("=_pst_%s_%d=", b.id, b.n)
	return &mimePart{
		ctype:  "multipart/" + sub,
		fields: [][2]string{{"Content-Type", "multipart/" + sub + "; boundary=\"" + boundary + "\""}},
		parts:  parts,
		bound:  boundary,
	}
}

// write appends the part's header fields, the blank line and its body.
func (p *mimePart) write(buf *bytes.Buffer) {
	if p.raw != "" {
		buf.WriteString(p.raw)
		if !strings.HasSuffix(p.raw, "\r\n") {
			buf.WriteString("\r\n")
		}
		return
	}
	for _, f := range p.fields {
		writeField(buf, f[0], f[1])
	}
	buf.WriteString("\r\n")
	if len(p.parts) == 0 {
		buf.Write(p.body)
		return
	}
	// The CRLF before each delimiter belongs to the delimiter, so every
	// part's content ends exactly where it did.
	for i, c := range p.parts {
		if i > 0 {
			buf.WriteString("\r\n")
		}
		buf.WriteString("--" + p.bound + "\r\n")
		c.write(buf)
	}
	buf.WriteString("\r\n--" + p.bound + "--\r\n")
}

// textPart makes a text/<sub> part in UTF-8.
func textPart(sub, s string) *mimePart {
	cte, body := encodeText(s)
	return &mimePart{
		ctype: "text/" + sub,
		fields: [][2]string{
			{"Content-Type", "text/" + sub + "; charset=utf-8"},
			{"Content-Transfer-Encoding", cte},
		},
		body: body,
	}
}

// encodeText encodes UTF-8 text with CRLF line ends: quoted-printable when
// it is mostly ASCII, base64 otherwise. Either way no body line can look
// like a boundary ("--=_pst…"): quoted-printable encodes "=".
func encodeText(s string) (cte string, body []byte) {
	s = crlf(s)
	nonASCII := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			nonASCII++
		}
	}
	if nonASCII*3 > len(s) {
		return "base64", base64Lines([]byte(s))
	}
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	w.Write([]byte(s))
	w.Close()
	return "quoted-printable", buf.Bytes()
}

// crlf makes every line end CRLF and drops trailing NULs.
func crlf(s string) string {
	s = strings.TrimRight(s, "\x00")
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/32)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r':
			b.WriteString("\r\n")
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// base64Lines encodes b in base64 lines of 76 characters, CRLF-terminated.
func base64Lines(b []byte) []byte {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(enc, b)
	out := make([]byte, 0, len(enc)+len(enc)/76*2+2)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, '\r', '\n')
		enc = enc[76:]
	}
	if len(enc) > 0 {
		out = append(out, enc...)
		out = append(out, '\r', '\n')
	}
	return out
}

// writeField writes "Name: value" folded at whitespace to lines of at most
// 78 characters where possible (998 at most in any case: a value with no
// whitespace for that long is written as encoded words).
func writeField(buf *bytes.Buffer, name, value string) {
	line := name + ": " + value
	if longestRun(line) > 990 {
		line = name + ": " + encodeWords(value, true)
	}
	for len(line) > 78 {
		cut := strings.LastIndexAny(line[:79], " \t")
		if cut <= len(name)+1 {
			cut = strings.IndexAny(line[79:], " \t")
			if cut < 0 {
				break
			}
			cut += 79
		}
		buf.WriteString(line[:cut])
		buf.WriteString("\r\n")
		line = line[cut:]
		if strings.TrimLeft(line, " \t") == "" {
			line = ""
			break
		}
	}
	if line != "" {
		buf.WriteString(line)
	}
	buf.WriteString("\r\n")
}

// longestRun returns the length of the longest run without whitespace.
func longestRun(s string) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}

// encodeWords returns s unchanged when it is printable ASCII (and force is
// false), else as RFC 2047 encoded words in UTF-8 (B encoding for mostly
// non-ASCII text, Q otherwise), split on character boundaries and separated
// by spaces so the field can be folded.
func encodeWords(s string, force bool) string {
	if !force && isPrintableASCII(s) {
		return s
	}
	nonASCII := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			nonASCII++
		}
	}
	useB := nonASCII*3 > len(s)
	var words []string
	for len(s) > 0 {
		n := 0
		size := 0
		for n < len(s) {
			_, w := utf8.DecodeRuneInString(s[n:])
			add := 0
			if useB {
				add = w
			} else {
				for k := n; k < n+w; k++ {
					if qSafe(s[k]) || s[k] == ' ' {
						add++
					} else {
						add += 3
					}
				}
			}
			if useB && base64.StdEncoding.EncodedLen(size+add) > 60 || !useB && size+add > 60 {
				break
			}
			size += add
			n += w
		}
		if n == 0 {
			_, n = utf8.DecodeRuneInString(s)
		}
		chunk := s[:n]
		s = s[n:]
		if useB {
			words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(chunk))+"?=")
			continue
		}
		var q strings.Builder
		for k := 0; k < len(chunk); k++ {
			c := chunk[k]
			switch {
			case c == ' ':
				q.WriteByte('_')
			case qSafe(c):
				q.WriteByte(c)
			default:
				fmt.Fprintf(&q, "=%02X", c)
			}
		}
		words = append(words, "=?utf-8?q?"+q.String()+"?=")
	}
	return strings.Join(words, " ")
}

// qSafe reports whether c stands for itself in a Q-encoded word in a
// phrase (RFC 2047 5(3)).
func qSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!*+-/", c) >= 0
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

// param formats a Content-Type / Content-Disposition parameter: quoted
// when it is short printable ASCII, else RFC 2231 UTF-8 with continuations
// of at most ~60 characters.
func param(name, value string) string {
	if isPrintableASCII(value) && len(value) <= 60 && !strings.ContainsAny(value, "\"\\") {
		return name + "=\"" + value + "\""
	}
	var parts []string
	var cur strings.Builder
	cur.WriteString("utf-8''")
	for i := 0; i < len(value); {
		_, w := utf8.DecodeRuneInString(value[i:])
		var enc strings.Builder
		for k := i; k < i+w; k++ {
			c := value[k]
			if c > ' ' && c < 0x7f && !strings.ContainsRune("*'%()<>@,;:\\\"/[]?={}", rune(c)) {
				enc.WriteByte(c)
			} else {
				fmt.Fprintf(&enc, "%%%02X", c)
			}
		}
		if cur.Len()+enc.Len() > 60 && cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
		}
		cur.WriteString(enc.String())
		i += w
	}
	parts = append(parts, cur.String())
	if len(parts) == 1 {
		return name + "*=" + parts[0]
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = name + "*" + strconv.Itoa(i) + "*=" + p
	}
	return strings.Join(out, "; ")
}

// formatAddress formats one mailbox. An address that is not an internet
// address (an Exchange DN, a bare name) becomes local@unknown.invalid, so
// the field still parses and the name still shows.
func formatAddress(name, addr string) string {
	addr = strings.TrimSpace(addr)
	name = strings.TrimSpace(name)
	if strings.EqualFold(strings.Trim(name, "'\""), addr) {
		name = ""
	}
	if addr == "" && name == "" {
		return ""
	}
	if at := strings.LastIndexByte(addr, '@'); at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " <>()[],;:\"\\") {
		local := addr
		if i := strings.LastIndex(strings.ToUpper(local), "CN="); i >= 0 {
			local = local[i+3:]
		}
		if at > 0 {
			local = local[:strings.LastIndexByte(local, '@')]
		}
		local = sanitizeLocal(local)
		if local == "" {
			local = sanitizeLocal(name)
		}
		if local == "" {
			local = "unknown"
		}
		addr = local + "@unknown.invalid"
	}
	return (&mail.Address{Name: name, Address: addr}).String()
}

func sanitizeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
			b.WriteByte(c)
		case c == '.' || c == ' ':
			if b.Len() > 0 && !strings.HasSuffix(b.String(), ".") {
				b.WriteByte('.')
			}
		}
	}
	return strings.Trim(b.String(), ".")
}

// extTypes maps file extensions to media types for attachments without a
// MIME tag (a fixed table: the system's mime.types must not change bytes).
var extTypes = map[string]string{
	".7z":   "application/x-7z-compressed",
	".avi":  "video/x-msvideo",
	".bmp":  "image/bmp",
	".csv":  "text/csv",
	".doc":  "application/msword",
	".docm": "application/vnd.ms-word.document.macroEnabled.12",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".dot":  "application/msword",
	".eml":  "message/rfc822",
	".emz":  "application/octet-stream",
	".gif":  "image/gif",
	".gz":   "application/gzip",
	".htm":  "text/html",
	".html": "text/html",
	".ico":  "image/x-icon",
	".ics":  "text/calendar",
	".jpe":  "image/jpeg",
	".jpeg": "image/jpeg",
	".jpg":  "image/jpeg",
	".js":   "text/javascript",
	".json": "application/json",
	".m4a":  "audio/mp4",
	".mov":  "video/quicktime",
	".mp3":  "audio/mpeg",
	".mp4":  "video/mp4",
	".mpg":  "video/mpeg",
	".msg":  "application/vnd.ms-outlook",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odt":  "application/vnd.oasis.opendocument.text",
	".pdf":  "application/pdf",
	".png":  "image/png",
	".pps":  "application/vnd.ms-powerpoint",
	".ppt":  "application/vnd.ms-powerpoint",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".rar":  "application/vnd.rar",
	".rtf":  "application/rtf",
	".svg":  "image/svg+xml",
	".tar":  "application/x-tar",
	".tif":  "image/tiff",
	".tiff": "image/tiff",
	".txt":  "text/plain",
	".vcf":  "text/vcard",
	".wav":  "audio/wav",
	".webp": "image/webp",
	".wmf":  "image/wmf",
	".xls":  "application/vnd.ms-excel",
	".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".xml":  "application/xml",
	".zip":  "application/zip",
}

// attachmentType returns the media type of an attachment: its MIME tag when
// that is a valid type, else from the file name's extension.
func attachmentType(tag, filename string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if mt, _, err := mime.ParseMediaType(tag); err == nil && strings.Count(mt, "/") == 1 && !strings.HasPrefix(mt, "multipart/") {
		return mt
	}
	if t, ok := extTypes[strings.ToLower(path.Ext(filename))]; ok {
		return t
	}
	return "application/octet-stream"
}

// formatDate formats t for a Date field, in UTC.
func formatDate(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
}
