package archive

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"howett.net/plist"
)

// Apple Mail .emlx files. A mailbox is an "X.mbox" directory; its messages
// are "<id>.emlx" files in a Messages directory below it (V2:
// X.mbox/Messages/, V3 and later: X.mbox/<UUID>/Data/[digits/…]/Messages/).
// An .emlx file is a decimal byte count on the first line, the message
// (LF line ends), then an XML property list whose "flags" integer holds
// the state: bit 0 read, 1 deleted, 2 answered, 4 flagged, 6 draft, 8
// forwarded, 24 junk, 25 not junk; "date-received" is the arrival time.
//
// A "<id>.partial.emlx" keeps the MIME skeleton of a message whose larger
// parts Mail kept apart: each such part has an empty body and an
// X-Apple-Content-Length field, its bytes are in "<id>.<part>.emlxpart"
// beside it (as transferred) or in Attachments/<id>/<part>/<file> beside
// the Messages directory (decoded).
//
// Implementation notes:
//
//   - Served bytes are the counted message, line ends CRLF (like mbox).
//   - Messages flagged deleted are not shown.
//   - A partial message is rebuilt once, at index time: each stripped part
//     is filled from its .emlxpart file, else from its attachment file
//     (encoded again with the part's Content-Transfer-Encoding, which may
//     wrap lines differently from the original), and its
//     X-Apple-Content-Length field is dropped. A part found nowhere stays
//     empty and a Problem names the message as incomplete.
//   - Child mailboxes are "Y.mbox" directories inside "X.mbox": a folder
//     never lists the messages below a child's directory.

// emlxFlagBits maps .emlx flag bits to IMAP flags (bit 1, deleted, hides
// the message).
var emlxFlagBits = []struct {
	bit  uint
	flag string
}{
	{0, `\Seen`},
	{2, `\Answered`},
	{4, `\Flagged`},
	{6, `\Draft`},
	{8, `$Forwarded`},
	{24, `$Junk`},
	{25, `$NotJunk`},
}

func emlxFlags(v uint64) (flags []string, deleted bool) {
	for _, b := range emlxFlagBits {
		if v&(1<<b.bit) != 0 {
			flags = append(flags, b.flag)
		}
	}
	return sortedFlags(flags), v&2 != 0
}

// emlxHead parses the byte count line at the start of an .emlx file:
// the message starts at off and has n bytes.
func emlxHead(b []byte) (off, n int64, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 || i > 40 {
		return 0, 0, errors.New("no byte count line: not an .emlx file")
	}
	s := strings.TrimSpace(string(b[:i]))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, 0, fmt.Errorf("first line %q is not a byte count: not an .emlx file", s)
	}
	return int64(i + 1), v, nil
}

// emlxMeta reads the property list after the message.
type emlxMeta struct {
	flags    []string
	deleted  bool
	received time.Time
}

func parseEMLXPlist(b []byte) (m emlxMeta, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return m, errors.New("no property list after the message")
	}
	if m, ok := quickEMLXPlist(b); ok {
		return m, nil
	}
	return slowEMLXPlist(b)
}

// slowEMLXPlist reads the property list with the plist package.
func slowEMLXPlist(b []byte) (m emlxMeta, err error) {
	var dict map[string]any
	err = guard(func() error {
		_, err := plist.Unmarshal(b, &dict)
		return err
	})
	if err != nil {
		return m, fmt.Errorf("property list after the message: %v", err)
	}
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case uint64:
			return float64(x), true
		case int64:
			return float64(x), true
		case float64:
			return x, true
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			return f, err == nil
		}
		return 0, false
	}
	if v, ok := dict["flags"]; ok {
		if f, ok := num(v); ok && f >= 0 && f < 1<<63 {
			m.flags, m.deleted = emlxFlags(uint64(f))
		}
	}
	if v, ok := dict["date-received"]; ok {
		if f, ok := num(v); ok && f > 0 && f < 1<<40 {
			m.received = time.Unix(int64(f), 0).UTC()
		}
	}
	return m, nil
}

// quickEMLXPlist reads the flags and date-received integers of the XML
// property list Mail writes, without a full parse; ok is false for
// anything else (parseEMLXPlist then uses the plist package).
func quickEMLXPlist(b []byte) (m emlxMeta, ok bool) {
	if !bytes.HasPrefix(b, []byte("<?xml")) || !bytes.HasSuffix(b, []byte("</plist>")) || bytes.Contains(b, []byte("<!--")) ||
		bytes.Contains(b, []byte("<![")) || bytes.Count(b, []byte("<dict>")) != 1 || bytes.Count(b, []byte("</dict>")) != 1 {
		return m, false
	}
	open, end := bytes.Index(b, []byte("<dict>")), bytes.Index(b, []byte("</dict>"))
	if open > end {
		return m, false
	}
	integer := func(key string) (uint64, bool, bool) { // value, present, ok
		k := bytes.Index(b, []byte("<key>"+key+"</key>"))
		if k < 0 {
			return 0, false, !bytes.Contains(b, []byte(key))
		}
		if k < open || k > end {
			return 0, true, false
		}
		rest := bytes.TrimLeft(b[k+len(key)+11:], " \t\r\n")
		rest, found := bytes.CutPrefix(rest, []byte("<integer>"))
		if !found {
			return 0, true, false
		}
		end := bytes.Index(rest, []byte("</integer>"))
		if end < 0 {
			return 0, true, false
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(rest[:end])), 10, 64)
		return v, true, err == nil
	}
	flags, hasFlags, ok1 := integer("flags")
	recv, hasRecv, ok2 := integer("date-received")
	if !ok1 || !ok2 || bytes.Count(b, []byte("<key>flags</key>")) > 1 || bytes.Count(b, []byte("<key>date-received</key>")) > 1 {
		return m, false
	}
	if hasFlags && flags < 1<<63 {
		m.flags, m.deleted = emlxFlags(flags)
	}
	if hasRecv && recv > 0 && recv < 1<<40 {
		m.received = time.Unix(int64(recv), 0).UTC()
	}
	return m, true
}

// emlxFile describes one message file of a mailbox.
type emlxFile struct {
	path    string
	id      string // path below the mailbox, without extension
	num     uint64 // the numeric id, for ordering
	partial bool
}

// emlxName reports whether name is a message file: "<digits>.emlx" or
// "<digits>.partial.emlx"; it returns the digits.
func emlxName(name string) (digits string, partial, ok bool) {
	l := asciiLower(name)
	switch {
	case strings.HasSuffix(l, ".partial.emlx"):
		digits, partial = name[:len(name)-len(".partial.emlx")], true
	case strings.HasSuffix(l, ".emlx"):
		digits = name[:len(name)-len(".emlx")]
	default:
		return "", false, false
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return "", false, false
	}
	return digits, partial, true
}

// walkMailboxFiles calls fn for every file below an .mbox directory, not
// descending into child mailboxes ("*.mbox") or, when skipAttachments,
// Attachments directories.
func walkMailboxFiles(dir string, skipAttachments bool, fn func(path string, d fs.DirEntry) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return fn(path, nil) // unreadable entry
		}
		if d.IsDir() {
			if path != dir && (strings.EqualFold(filepath.Ext(d.Name()), ".mbox") || skipAttachments && d.Name() == "Attachments" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(path, d)
	})
}

// listEMLX lists the message files of a mailbox, in id order.
func listEMLX(dir string) ([]emlxFile, []Problem, error) {
	var files []emlxFile
	var problems []Problem
	byID := map[string]int{}
	err := walkMailboxFiles(dir, true, func(path string, d fs.DirEntry) error {
		if d == nil {
			problems = append(problems, problem(path, -1, "cannot read"))
			return nil
		}
		digits, partial, ok := emlxName(d.Name())
		if !ok || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		id := filepath.ToSlash(filepath.Join(filepath.Dir(rel), digits))
		num, _ := strconv.ParseUint(digits, 10, 64)
		f := emlxFile{path: path, id: id, num: num, partial: partial}
		if i, dup := byID[id]; dup {
			// Both 1.emlx and 1.partial.emlx: the complete one wins.
			if partial {
				return nil
			}
			files[i] = f
			return nil
		}
		byID[id] = len(files)
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, problems, fmt.Errorf("apple mail mailbox: %w", err)
	}
	slices.SortFunc(files, func(a, b emlxFile) int {
		if a.num != b.num {
			if a.num < b.num {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	return files, problems, nil
}

// emlxSignature feeds the state of a mailbox's files to add.
func emlxSignature(dir string, add func(string, os.FileInfo)) error {
	return walkMailboxFiles(dir, false, func(path string, d fs.DirEntry) error {
		if d == nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		add(path, fi)
		return nil
	})
}

// emlxReader reads .emlx files with one reused buffer.
type emlxReader struct{ buf []byte }

// emlxInfo is what emlxReader.read found in a file.
type emlxInfo struct {
	off, n    int64 // the message's place (n: the bytes there are, if truncated)
	meta      emlxMeta
	msg       []byte // the message, when asked for; valid until the next read
	truncated bool   // the file ends before the counted bytes do
	metaErr   error  // the property list could not be read (no flags then)
}

// read reads the .emlx file at path: where the message is, its metadata,
// and, when body is true, its bytes. err is returned for a file that
// cannot be read or is no .emlx file.
func (r *emlxReader) read(path string, body bool) (emlxInfo, error) {
	var in emlxInfo
	f, err := os.Open(path) // read-only: the archive is sealed
	if err != nil {
		return in, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return in, err
	}
	return r.readAt(f, fi.Size(), body)
}

// readAt is read for the size bytes of f.
func (r *emlxReader) readAt(f io.ReaderAt, size int64, body bool) (emlxInfo, error) {
	var in emlxInfo
	var err error
	if size > maxItemSize+1<<20 {
		return in, fmt.Errorf("%d bytes, more than the %d MiB limit", size, maxItemSize>>20)
	}
	head := min(size, 64<<10)
	if body {
		head = size
	}
	if int64(cap(r.buf)) < head {
		r.buf = make([]byte, head)
	}
	b := r.buf[:head]
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return in, err
	}
	in.off, in.n, err = emlxHead(b)
	if err != nil {
		return in, err
	}
	if in.off+in.n > size {
		in.truncated = true
		in.metaErr = fmt.Errorf("the file ends %d bytes before the message does (truncated?)", in.off+in.n-size)
		in.n = size - in.off
		if body {
			in.msg = b[in.off:size]
		}
		return in, nil
	}
	var tail []byte
	if in.off+in.n <= head {
		tail = b[in.off+in.n : head]
		if head < size {
			more := make([]byte, size-head)
			if _, err := f.ReadAt(more, head); err != nil && !errors.Is(err, io.EOF) {
				return in, err
			}
			tail = append(slices.Clone(tail), more...)
		}
	} else {
		tail = make([]byte, size-in.off-in.n)
		if _, err := f.ReadAt(tail, in.off+in.n); err != nil && !errors.Is(err, io.EOF) {
			return in, err
		}
	}
	in.meta, in.metaErr = parseEMLXPlist(tail)
	if body {
		in.msg = b[in.off : in.off+in.n]
	}
	return in, nil
}

// scanEMLX is ScanItems for an Apple Mail mailbox directory.
func scanEMLX(dir string, known func(*Item) bool, fn func(*Item) error) ([]Problem, error) {
	files, problems, err := listEMLX(dir)
	if err != nil {
		return problems, err
	}
	report := func(path string, format string, args ...any) {
		problems = append(problems, problem(path, -1, format, args...))
	}
	var r emlxReader
	var out []byte
	for _, f := range files {
		// One read of the whole file: messages that are not known yet (the
		// common case, when a mailbox changes) need it all.
		in, err := r.read(f.path, true)
		if err != nil {
			report(f.path, "%v; skipped", unwrapPath(err))
			continue
		}
		if in.meta.deleted {
			continue
		}
		if in.n <= 0 {
			report(f.path, "no message in the file; skipped")
			continue
		}
		if in.metaErr != nil {
			report(f.path, "%v; shown as it is, without flags", in.metaErr)
		}
		it := &Item{ID: f.id, Path: f.path, Offset: in.off, Length: in.n, Flags: in.meta.flags, Received: in.meta.received, Rebuilt: f.partial}
		if known(it) {
			if err := fn(it); err != nil {
				return problems, err
			}
			continue
		}
		in2 := in
		if f.partial {
			msg, missing := rebuildPartialEMLX(in2.msg, emlxPartSource(f.path))
			if len(missing) > 0 {
				report(f.path, "Apple Mail kept only part of this message: part(s) %s not found; shown incomplete", strings.Join(missing, ", "))
			}
			out = AppendServedFile(out[:0], msg)
		} else {
			out = AppendServedFile(out[:0], in2.msg)
		}
		it.Served = out
		if err := fn(it); err != nil {
			return problems, err
		}
	}
	return problems, nil
}

// emlxPartSource returns where the stripped parts of the .partial.emlx at
// path are: "<id>.<part>.emlxpart" beside it (as transferred), else
// Attachments/<id>/<part>/<file> beside its Messages directory (decoded).
func emlxPartSource(path string) func(part string) ([]byte, bool, bool) {
	dir := filepath.Dir(path)
	digits, _, _ := emlxName(filepath.Base(path))
	return func(part string) (data []byte, encoded, ok bool) {
		if b, err := readLimited(filepath.Join(dir, digits+"."+part+".emlxpart"), maxItemSize); err == nil {
			return b, true, true
		}
		att := filepath.Join(filepath.Dir(dir), "Attachments", digits, part)
		entries, err := os.ReadDir(att)
		if err != nil {
			return nil, false, false
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				if b, err := readLimited(filepath.Join(att, e.Name()), maxItemSize); err == nil {
					return b, false, true
				}
			}
		}
		return nil, false, false
	}
}

// mimeHeader is a parsed header block: where it is and the fields that
// matter here.
type mimeHeader struct {
	start, end   int // the header lines, end at the blank line
	bodyStart    int
	contentType  string
	params       map[string]string
	encoding     string
	appleLength  bool
	appleLengths [][2]int // byte ranges of the X-Apple-Content-Length lines
	blank        bool     // the header block ends with a blank line
	crlf         bool     // its lines end with CRLF
}

// parseMIMEHeader reads the header block at b[start:end].
func parseMIMEHeader(b []byte, start, end int) mimeHeader {
	h := mimeHeader{start: start, end: end, bodyStart: end}
	type field struct {
		name       string
		value      []byte
		start, end int
	}
	var fields []field
	pos := start
	for pos < end {
		e := bytes.IndexByte(b[pos:end], '\n')
		lineEnd := end
		next := end
		if e >= 0 {
			lineEnd, next = pos+e, pos+e+1
		}
		line := trimCR(b[pos:lineEnd])
		if pos == start && lineEnd > pos && b[lineEnd-1] == '\r' {
			h.crlf = true
		}
		if len(line) == 0 {
			h.end, h.bodyStart, h.blank = pos, next, e >= 0
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.value = append(append(f.value, ' '), bytes.TrimSpace(line)...)
			f.end = next
		} else if name, ok := fieldName(line); ok {
			_, v, _ := bytes.Cut(line, []byte(":"))
			fields = append(fields, field{name: strings.ToLower(string(name)), value: slices.Clone(bytes.TrimSpace(v)), start: pos, end: next})
		}
		pos = next
	}
	if pos >= end {
		h.end, h.bodyStart = end, end
	}
	for _, f := range fields {
		switch f.name {
		case "content-type":
			if t, p, err := mime.ParseMediaType(string(f.value)); err == nil {
				h.contentType, h.params = t, p
			} else {
				h.contentType = strings.ToLower(strings.TrimSpace(strings.SplitN(string(f.value), ";", 2)[0]))
			}
		case "content-transfer-encoding":
			h.encoding = strings.ToLower(strings.TrimSpace(string(f.value)))
		case "x-apple-content-length":
			h.appleLength = true
			h.appleLengths = append(h.appleLengths, [2]int{f.start, f.end})
		}
	}
	if h.contentType == "" {
		h.contentType = "text/plain"
	}
	return h
}

// emlxFill is one edit of a partial message: drop the header ranges and
// put body in place of b[start:end], after a blank line if the header
// block has none (the delimiter took its line break).
type emlxFill struct {
	drop       [][2]int
	start, end int
	body       []byte
	blank      string
}

// rebuildPartialEMLX fills the stripped parts of a partial message from
// source (part number → data, whether it is still transfer-encoded, ok)
// and returns the message and the part numbers not found.
func rebuildPartialEMLX(msg []byte, source func(part string) ([]byte, bool, bool)) ([]byte, []string) {
	var fills []emlxFill
	var missing []string
	var walk func(start, end int, num string, depth int)
	walk = func(start, end int, num string, depth int) {
		h := parseMIMEHeader(msg, start, end)
		if strings.HasPrefix(h.contentType, "multipart/") && h.params["boundary"] != "" && depth < 32 {
			parts := splitMultipart(msg, h.bodyStart, end, h.params["boundary"])
			for i, p := range parts {
				child := strconv.Itoa(i + 1)
				if num != "" {
					child = num + "." + child
				}
				walk(p[0], p[1], child, depth+1)
			}
			return
		}
		if !h.appleLength {
			return
		}
		part := num
		if part == "" {
			part = "1"
		}
		data, encoded, ok := source(part)
		if !ok {
			missing = append(missing, part)
			return
		}
		if !encoded {
			data = encodePart(data, h.encoding)
		}
		fill := emlxFill{drop: h.appleLengths, start: h.bodyStart, end: end, body: data}
		if !h.blank {
			fill.blank = "\n"
			if h.crlf {
				fill.blank = "\r\n"
			}
		}
		fills = append(fills, fill)
	}
	walk(0, len(msg), "", 0)
	if len(fills) == 0 {
		return msg, missing
	}
	var out []byte
	pos := 0
	for _, f := range fills {
		for _, d := range f.drop {
			out = append(out, msg[pos:d[0]]...)
			pos = d[1]
		}
		out = append(out, msg[pos:f.start]...)
		out = append(out, f.blank...)
		body := f.body
		// The part's end is where the delimiter's line break starts: keep
		// that, so the body's own last line break goes.
		if f.end < len(msg) {
			body = bytes.TrimSuffix(bytes.TrimSuffix(body, []byte("\n")), []byte("\r"))
		}
		out = append(out, body...)
		pos = f.end
	}
	out = append(out, msg[pos:]...)
	return out, missing
}

// splitMultipart returns the byte ranges of the parts of a multipart body
// in b[start:end]: each from its first header line to the line break
// before the next delimiter line.
func splitMultipart(b []byte, start, end int, boundary string) [][2]int {
	delim := []byte("--" + boundary)
	var parts [][2]int
	partStart := -1
	pos := start
	for pos < end {
		e := bytes.IndexByte(b[pos:end], '\n')
		lineEnd, next := end, end
		if e >= 0 {
			lineEnd, next = pos+e, pos+e+1
		}
		line := bytes.TrimRight(b[pos:lineEnd], " \t\r")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				if partStart >= 0 {
					pe := pos
					// The line break before the delimiter belongs to it.
					if pe > partStart && b[pe-1] == '\n' {
						pe--
						if pe > partStart && b[pe-1] == '\r' {
							pe--
						}
					}
					parts = append(parts, [2]int{partStart, pe})
				}
				if len(rest) == 2 {
					return parts
				}
				partStart = next
			}
		}
		pos = next
	}
	if partStart >= 0 && partStart < end {
		parts = append(parts, [2]int{partStart, end})
	}
	return parts
}

// encodePart encodes decoded part data with a Content-Transfer-Encoding.
func encodePart(data []byte, encoding string) []byte {
	switch encoding {
	case "base64":
		enc := base64.StdEncoding.EncodeToString(data)
		var b bytes.Buffer
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteByte('\n')
			enc = enc[76:]
		}
		b.WriteString(enc)
		b.WriteByte('\n')
		return b.Bytes()
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write(data)
		_ = w.Close()
		return b.Bytes()
	}
	return data
}

// walkAppleMail lists the mailboxes of Apple Mail's Mail directory, one
// V<n> directory, a directory of .mbox mailboxes or exported bundles, or
// one .mbox directory.
func walkAppleMail(abs string) ([]Folder, []Problem, error) {
	w := &walker{}
	root := abs
	if v, older := newestMailVersion(abs); v != "" {
		root = filepath.Join(abs, v)
		for _, o := range older {
			w.report(filepath.Join(abs, o), fmt.Errorf("older Apple Mail data (Mail copied it into %s when it was upgraded); skipped (add it as its own source to read it anyway)", v))
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	switch {
	case strings.EqualFold(filepath.Ext(root), ".mbox"):
		w.appleMailbox(root, nil, 0)
	case isMailVersionDir(root, entries):
		for _, e := range entries {
			full := filepath.Join(root, e.Name())
			t, ok := w.entryType(root, e)
			if !ok || !t.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			name := e.Name()
			switch {
			case name == "MailData" || name == "Bundles" || name == "RSS":
				continue
			case name == "Mailboxes":
				w.appleMailboxes(full, nil, 0)
			case isAppleRemoteAccount(name):
				w.report(full, fmt.Errorf("Apple Mail %s account skipped: its mail is on the server (to read this copy anyway, add %s as its own source)", strings.SplitN(name, "-", 2)[0], full))
			default:
				acct := strings.TrimPrefix(name, "POP-")
				w.appleMailboxes(full, []string{w.component(full, acct)}, 0)
			}
		}
	default:
		w.appleMailboxes(root, nil, 0)
	}
	if len(w.folders) == 0 && len(w.problems) == 0 {
		return nil, nil, fmt.Errorf("%w: %s: no Apple Mail mailboxes (\"*.mbox\" directories) found", ErrUnknownFormat, abs)
	}
	return w.finish(), w.problems, nil
}

// isAppleRemoteAccount reports whether a V2-style account directory name
// is that of an IMAP or Exchange account.
func isAppleRemoteAccount(name string) bool {
	for _, p := range []string{"IMAP-", "EWS-", "Exchange-", "Mac-", "MobileMe-", "iCloud-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// newestMailVersion returns the newest "V<n>" directory in dir (Apple
// Mail's ~/Library/Mail) and the older ones.
func newestMailVersion(dir string) (string, []string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil
	}
	best, bestN := "", -1
	var all []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || len(n) < 2 || n[0] != 'V' {
			continue
		}
		v, err := strconv.Atoi(n[1:])
		if err != nil {
			continue
		}
		all = append(all, n)
		if v > bestN {
			best, bestN = n, v
		}
	}
	var older []string
	for _, n := range all {
		if n != best {
			older = append(older, n)
		}
	}
	slices.Sort(older)
	return best, older
}

// isMailVersionDir reports whether dir is a V<n> directory of Apple Mail.
func isMailVersionDir(dir string, entries []fs.DirEntry) bool {
	for _, e := range entries {
		if e.IsDir() && (e.Name() == "Mailboxes" || e.Name() == "MailData") {
			return true
		}
	}
	return false
}

// appleMailboxes adds the "*.mbox" directories in dir below prefix.
func (w *walker) appleMailboxes(dir string, prefix []string, depth int) {
	if depth > maxDepth {
		w.report(dir, errors.New("mailboxes nested too deeply; skipped"))
		return
	}
	entries, ok := w.readDir(dir)
	if !ok {
		return
	}
	used := map[string]bool{}
	for _, e := range entries {
		if !strings.EqualFold(filepath.Ext(e.Name()), ".mbox") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, ok := w.entryType(dir, e)
		if !ok || !t.IsDir() {
			continue
		}
		full := filepath.Join(dir, e.Name())
		raw := e.Name()[:len(e.Name())-len(".mbox")]
		if raw == "" {
			continue
		}
		name := w.component(full, raw)
		if name == "INBOX" {
			name = "Inbox"
		}
		base := name
		name = uniqueName(used, name)
		if name != base {
			w.report(full, fmt.Errorf("two mailboxes named %q; this one is shown as %q", base, name))
		}
		w.appleMailbox(full, appendPath(prefix, name), depth+1)
	}
}

// appleMailbox adds the mailbox directory dir as path, then its children.
func (w *walker) appleMailbox(dir string, path []string, depth int) {
	entries, ok := w.readDir(dir)
	if !ok {
		return
	}
	f := Folder{Path: path, Kind: KindEMLX, Loc: dir}
	if name, ok := findFold(entries, "mbox"); ok {
		// An exported bundle: a plain mbox file.
		f.Kind, f.Loc = KindMbox, filepath.Join(dir, name)
	}
	if len(path) > 0 {
		f.SpecialUse = SpecialUse(path[len(path)-1])
	}
	w.folders = append(w.folders, f)
	w.appleMailboxes(dir, path, depth)
}
