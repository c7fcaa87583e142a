package archive

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Becky! Internet Mail 2 (RimArts). Walk(dir, FormatBecky) reads a data
// directory (HKCU\Software\RimArts\B2\Settings\DataDir, by default
// C:\Becky!\<user>\): one "<hex>.mb" directory per mailbox (account), its
// folders as nested directories. Special folders: "!!!!Inbox" (Inbox),
// "!!!!Outbox" (the sent mail: Sent, \Sent), "!!!!Unsent" (Unsent),
// "!Trash" (Trash, \Trash); user folders have CP932 names.
//
// A folder directory holds "<8hex>.bmf" files with the messages and
// Folder.idx, its index: CRLF lines, the first a header, fields separated
// by 0x01, numbers in hex: offset in the .bmf, .bmf file name, Message-Id,
// date, received date, size, status. In a .bmf each message is its raw
// header, a blank line and the body, ended by a line holding only ".",
// lines that begin with "." dot-stuffed ("..").
//
// Implementation notes:
//
//   - An item's ID is its .bmf file and offset plus the size and a hash of
//     the Message-Id the index records for it: a compaction that puts
//     another message at the same place changes the ID.
//   - Messages are listed from Folder.idx, in its order: bytes of a .bmf
//     that the index no longer names are deleted or moved mail and are not
//     shown. A folder without a readable Folder.idx shows every message of
//     its .bmf files (flags unknown) and a Problem says so.
//   - Served bytes are the message as stored, dot-stuffing undone, line
//     ends CRLF. X-Becky-* header fields are kept byte for byte: they are
//     part of the stored message, not Becky!'s bookkeeping of its state
//     (that lives in Folder.idx).
//   - X-Becky-Include names a file Becky! attaches only when it sends the
//     message (drafts, the outbox); it lies outside the data directory and
//     may have changed or gone since. It is never read or embedded (the
//     message stays as Becky! stored it); each reference is a Problem that
//     names the message and the file, so the user can keep the file.
//   - Status bits map to flags: 0x1 \Seen, 0x2 $Forwarded, 0x4 \Answered,
//     0x400 $MDNSent, 0x1000 \Flagged.
//   - Folders are the directories below a mailbox that hold a Folder.idx or
//     .bmf files, found by scanning; Folder.lst (Becky!'s display order of
//     the children, absent when there is one child) is not needed for that
//     and not read. A directory with neither is only a container.
//   - IMAP mailboxes (Mailbox.ini says the account is IMAP: [Account]
//     Protocol=1 or IMAP*, or IMAP4=1) are skipped
//     with a Problem: their mail is on the server. A source pointing at
//     one "<hex>.mb" directory is read whatever its protocol.

// beckyStatus maps Folder.idx status bits to IMAP flags.
var beckyStatus = []struct {
	bit  uint64
	flag string
}{
	{0x1, `\Seen`},
	{0x2, `$Forwarded`},
	{0x4, `\Answered`},
	{0x400, `$MDNSent`},
	{0x1000, `\Flagged`},
}

func beckyFlags(status uint64) []string {
	var out []string
	for _, s := range beckyStatus {
		if status&s.bit != 0 {
			out = append(out, s.flag)
		}
	}
	return sortedFlags(out)
}

// isBeckyFolderDir reports whether entries (of a directory) make it a Becky!
// folder: a Folder.idx or a .bmf file.
func isBeckyFolderDir(entries []fs.DirEntry) bool {
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		n := e.Name()
		if strings.EqualFold(n, "Folder.idx") || strings.EqualFold(filepath.Ext(n), ".bmf") {
			return true
		}
	}
	return false
}

// isBeckyMailbox reports whether dir is a Becky! mailbox directory.
func isBeckyMailbox(dir string, entries []fs.DirEntry) bool {
	if _, ok := findFold(entries, "Mailbox.ini"); ok {
		return true
	}
	return strings.EqualFold(filepath.Ext(dir), ".mb")
}

// findFold returns the name of the regular file among entries named name,
// compared case-insensitively (Windows names).
func findFold(entries []fs.DirEntry, name string) (string, bool) {
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(e.Name(), name) {
			return e.Name(), true
		}
	}
	return "", false
}

// isBeckyDataDir reports whether dir holds Becky! mailboxes.
func isBeckyDataDir(dir string, entries []fs.DirEntry) bool {
	if isBeckyMailbox(dir, entries) {
		return true
	}
	for _, e := range entries {
		if e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".mb") {
			sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
			if err == nil && isBeckyMailbox(e.Name(), sub) {
				return true
			}
		}
	}
	return false
}

// beckyMailboxINI reads a mailbox's Mailbox.ini: the account name and
// whether it is an IMAP account.
func beckyMailboxINI(data []byte) (name string, imap bool) {
	section := ""
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.ToLower(string(bytes.Trim(line, "[] \t")))
			continue
		}
		if section != "account" {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		key := strings.ToLower(string(bytes.TrimSpace(k)))
		val := string(bytes.TrimSpace(v))
		switch key {
		case "name":
			name = val
		case "protocol":
			l := strings.ToLower(val)
			imap = imap || val == "1" || strings.HasPrefix(l, "imap")
		case "imap", "imap4", "useimap", "useimap4":
			imap = imap || val == "1"
		}
	}
	return name, imap
}

// walkBecky lists the folders of a Becky! data directory, mailbox
// directory or single folder directory.
func walkBecky(abs string) ([]Folder, []Problem, error) {
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	w := &walker{}
	switch {
	case isBeckyFolderDir(entries):
		w.folders = append(w.folders, Folder{Kind: KindBecky, Loc: abs})
		w.beckyFolders(abs, nil, 0, false)
	case isBeckyMailbox(abs, entries):
		w.beckyFolders(abs, nil, 0, true)
	default:
		type mailbox struct{ dir, name string }
		var boxes []mailbox
		for _, e := range entries {
			if !e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".mb") {
				continue
			}
			dir := filepath.Join(abs, e.Name())
			name := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
			if ini, ok := readSmallFold(dir, "Mailbox.ini"); ok {
				n, imap := beckyMailboxINI(ini)
				if imap {
					w.report(dir, fmt.Errorf("Becky! IMAP mailbox %q skipped: its mail is on the IMAP server (to read this copy anyway, add %s as its own source)", w.legacyComponent(dir, n), dir))
					continue
				}
				if strings.TrimSpace(n) != "" {
					name = n
				}
			}
			boxes = append(boxes, mailbox{dir, name})
		}
		if len(boxes) == 0 && len(w.problems) == 0 {
			return nil, nil, fmt.Errorf("%w: %s: no Becky! mailboxes (\"<hex>.mb\" directories) found", ErrUnknownFormat, abs)
		}
		used := map[string]bool{}
		for _, b := range boxes {
			var prefix []string
			if len(boxes) > 1 {
				name := uniqueName(used, w.legacyComponent(b.dir, b.name))
				prefix = []string{name}
			}
			w.beckyFolders(b.dir, prefix, 0, true)
		}
	}
	return w.finish(), w.problems, nil
}

// readSmallFold reads the file named name (case-insensitively) in dir, up
// to 1 MB.
func readSmallFold(dir, name string) ([]byte, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	real, ok := findFold(entries, name)
	if !ok {
		return nil, false
	}
	f, err := os.Open(filepath.Join(dir, real))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return b, err == nil
}

// uniqueName returns name, or name with " (2)", " (3)"… when used (case-
// insensitively) already, and marks the result used.
func uniqueName(used map[string]bool, name string) string {
	if strings.TrimSpace(name) == "" {
		name = "Folder"
	}
	out := name
	for k := 2; used[strings.ToLower(out)]; k++ {
		out = fmt.Sprintf("%s (%d)", name, k)
	}
	used[strings.ToLower(out)] = true
	return out
}

// beckySpecial maps the special folder names of a mailbox's top level.
func beckySpecial(name string) (string, string, bool) {
	if !strings.HasPrefix(name, "!") {
		return "", "", false
	}
	switch strings.ToLower(strings.TrimLeft(name, "!")) {
	case "inbox":
		return "Inbox", "", true
	case "outbox":
		return "Sent", `\Sent`, true
	case "unsent":
		return "Unsent", "", true
	case "trash":
		return "Trash", `\Trash`, true
	case "draft", "drafts":
		return "Drafts", `\Drafts`, true
	}
	return "", "", false
}

// beckyFolders adds the folder directories below dir (a mailbox or a
// folder) as folders below path.
func (w *walker) beckyFolders(dir string, path []string, depth int, top bool) {
	if depth > maxDepth {
		w.report(dir, errors.New("folders nested too deeply; skipped"))
		return
	}
	entries, ok := w.readDir(dir)
	if !ok {
		return
	}
	type sub struct {
		full, name, special string
	}
	var subs []sub
	used := map[string]bool{}
	// Plain names first, so a special folder's display name yields to a
	// user folder of the same name.
	for pass := 0; pass < 2; pass++ {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			t, ok := w.entryType(dir, e)
			if !ok || !t.IsDir() {
				continue
			}
			full := filepath.Join(dir, e.Name())
			name, special, isSpecial := "", "", false
			if top {
				name, special, isSpecial = beckySpecial(e.Name())
			}
			if isSpecial != (pass == 1) {
				continue
			}
			if !isSpecial {
				name = w.legacyComponent(full, e.Name())
			}
			base := name
			name = uniqueName(used, name)
			if name != base {
				w.report(full, fmt.Errorf("two folders named %q; this one is shown as %q", base, name))
			}
			subs = append(subs, sub{full, name, special})
		}
	}
	for _, s := range subs {
		sentries, err := os.ReadDir(s.full)
		if err != nil {
			w.report(s.full, fmt.Errorf("cannot read directory: %w", unwrapPath(err)))
			continue
		}
		p := appendPath(path, s.name)
		if isBeckyFolderDir(sentries) {
			f := Folder{Path: p, Kind: KindBecky, Loc: s.full, SpecialUse: s.special}
			if f.SpecialUse == "" {
				f.SpecialUse = SpecialUse(s.name)
			}
			w.folders = append(w.folders, f)
		}
		w.beckyFolders(s.full, p, depth+1, false)
	}
}

// beckyEntry is one message line of Folder.idx.
type beckyEntry struct {
	line   int
	off    int64
	file   string
	msgID  string
	recv   int64
	size   uint64
	status uint64
}

// parseBeckyIndex parses Folder.idx. A line that does not parse is named
// in problems (1-based line numbers); the first line is Becky!'s header
// unless it parses as a message line.
func parseBeckyIndex(data []byte) (entries []beckyEntry, problems []string) {
	line := 0
	for len(data) > 0 {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		line++
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		e, err := parseBeckyLine(l)
		if err != nil {
			if line > 1 {
				problems = append(problems, fmt.Sprintf("Folder.idx line %d: %v; skipped", line, err))
			}
			continue
		}
		e.line = line
		entries = append(entries, e)
	}
	return entries, problems
}

func parseBeckyLine(l []byte) (beckyEntry, error) {
	f := bytes.Split(l, []byte{0x01})
	if len(f) < 7 {
		return beckyEntry{}, fmt.Errorf("%d fields, want at least 7", len(f))
	}
	hex := func(i int) (uint64, error) {
		s := strings.TrimSpace(string(f[i]))
		if s == "" {
			return 0, nil
		}
		return strconv.ParseUint(s, 16, 64)
	}
	off, err := hex(0)
	if err != nil || off > 1<<40 {
		return beckyEntry{}, fmt.Errorf("offset %q is not a hexadecimal number", f[0])
	}
	file := strings.TrimSpace(string(f[1]))
	if !strings.EqualFold(filepath.Ext(file), ".bmf") || strings.ContainsAny(file, `/\:`) || len(file) <= 4 {
		return beckyEntry{}, fmt.Errorf("%q is not a .bmf file name", f[1])
	}
	e := beckyEntry{off: int64(off), file: file, msgID: string(f[2])}
	if v, err := hex(4); err == nil && v > 0 && v < 1<<40 {
		e.recv = int64(v)
	} else if v, err := hex(3); err == nil && v > 0 && v < 1<<40 {
		e.recv = int64(v)
	}
	e.size, _ = hex(5)
	st, err := hex(6)
	if err != nil {
		return beckyEntry{}, fmt.Errorf("status %q is not a hexadecimal number", f[6])
	}
	e.status = st
	return e, nil
}

// beckySignature feeds the state of a folder's Folder.idx and .bmf files
// to add.
func beckySignature(dir string, add func(string, os.FileInfo)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.EqualFold(n, "Folder.idx") || strings.EqualFold(filepath.Ext(n), ".bmf")) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		add(n, fi)
	}
	return nil
}

// beckyFiles keeps the .bmf files of one folder open while it is scanned.
type beckyFiles struct {
	dir   string
	names map[string]string // lower-case name → name on disk
	open  map[string]*os.File
	sizes map[string]int64
	buf   []byte
	out   []byte
}

func (b *beckyFiles) close() {
	for _, f := range b.open {
		f.Close()
	}
}

func (b *beckyFiles) file(name string) (*os.File, int64, error) {
	if f, ok := b.open[name]; ok {
		return f, b.sizes[name], nil
	}
	f, err := os.Open(filepath.Join(b.dir, name)) // read-only: the archive is sealed
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	b.open[name], b.sizes[name] = f, fi.Size()
	return f, fi.Size(), nil
}

// beckyEnd finds the line holding only "." in b (a message's bytes from
// its start): msgEnd is where the message ends (after the line end before
// the "."), next where the following message starts. atEOF says b ends
// the file.
func beckyEnd(b []byte, atEOF bool) (msgEnd, next int, found bool) {
	isEnd := func(i int) (int, bool) { // b[i] == '.' at a line start
		switch {
		case i+1 == len(b):
			return len(b), atEOF
		case b[i+1] == '\n':
			return i + 2, true
		case b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n':
			return i + 3, true
		case b[i+1] == '\r' && i+2 == len(b):
			return len(b), atEOF
		}
		return 0, false
	}
	if len(b) > 0 && b[0] == '.' {
		if n, ok := isEnd(0); ok {
			return 0, n, true
		}
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("\n."))
		if j < 0 {
			return 0, 0, false
		}
		dot := i + j + 1
		if n, ok := isEnd(dot); ok {
			return dot, n, true
		}
		i = dot
	}
}

// message reads the message at off of file name: its raw bytes (up to the
// end line, exclusive) and where the next message starts. hint is where
// the message probably ends (the next indexed offset), 0 if unknown.
func (b *beckyFiles) message(name string, off, hint int64) (raw []byte, next int64, complete bool, err error) {
	f, size, err := b.file(name)
	if err != nil {
		return nil, 0, false, err
	}
	if off < 0 || off >= size {
		return nil, 0, false, fmt.Errorf("offset %d is beyond the end of the file (%d bytes)", off, size)
	}
	want := int64(64 << 10)
	if hint > off && hint <= size {
		want = hint - off + 3 // the end line may follow the hinted range
	}
	for {
		if off+want > size {
			want = size - off
		}
		if want > maxItemSize+3 {
			want = maxItemSize + 3
		}
		if int64(cap(b.buf)) < want {
			b.buf = make([]byte, want)
		}
		buf := b.buf[:want]
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, false, err
		}
		buf = buf[:n]
		atEOF := off+int64(n) >= size
		if end, nx, ok := beckyEnd(buf, atEOF); ok {
			return buf[:end], off + int64(nx), true, nil
		}
		if atEOF {
			return buf, size, false, nil
		}
		if want >= maxItemSize {
			return nil, 0, false, fmt.Errorf("no end of message within %d MiB", maxItemSize>>20)
		}
		want *= 2
	}
}

// scanBecky is ScanItems for a Becky! folder directory.
func scanBecky(dir string, known func(*Item) bool, fn func(*Item) error) ([]Problem, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("becky folder: %w", err)
	}
	var problems []Problem
	report := func(path string, off int64, format string, args ...any) {
		problems = append(problems, problem(path, off, format, args...))
	}
	b := &beckyFiles{dir: dir, names: map[string]string{}, open: map[string]*os.File{}, sizes: map[string]int64{}}
	defer b.close()
	var bmfs []string
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".bmf") {
			b.names[asciiLower(e.Name())] = e.Name()
			bmfs = append(bmfs, e.Name())
		}
	}
	deliver := func(it *Item, raw []byte, msgID string) error {
		if !looksLikeHeader(raw) {
			report(it.Path, it.Offset, "not the start of a message (Folder.idx out of date?); skipped")
			return nil
		}
		it.Length = int64(len(raw))
		b.out = appendServedBecky(b.out[:0], raw)
		it.Served = b.out
		for _, inc := range beckyIncludes(b.out) {
			who := "message"
			if msgID != "" {
				who = "message " + msgID
			}
			report(it.Path, it.Offset, "%s refers to a file Becky! attaches only when sending (X-Becky-Include: %s); that file is not part of the archive and is not served with the message", who, inc)
		}
		return fn(it)
	}
	idxName, ok := findFold(entries, "Folder.idx")
	var data []byte
	if ok {
		data, err = readLimited(filepath.Join(dir, idxName), 256<<20)
		if err != nil {
			report(filepath.Join(dir, idxName), -1, "cannot read: %v; every message in the folder's .bmf files is shown, including any deleted in Becky!", unwrapPath(err))
			ok = false
		}
	} else if len(bmfs) > 0 {
		report(dir, -1, "no Folder.idx: every message in the folder's .bmf files is shown, including any deleted in Becky!, without flags")
	}
	if !ok {
		// Every message of every .bmf, in file order.
		slices.Sort(bmfs)
		for _, name := range bmfs {
			path := filepath.Join(dir, name)
			_, size, err := b.file(name)
			if err != nil {
				report(path, -1, "cannot read: %v", unwrapPath(err))
				continue
			}
			for off := int64(0); off < size; {
				it := &Item{ID: asciiLower(name) + ":" + strconv.FormatInt(off, 16), Path: path, Offset: off}
				raw, next, complete, err := b.message(name, off, 0)
				if err != nil {
					report(path, off, "%v; the rest of the file is skipped", err)
					break
				}
				off = next
				if len(bytes.TrimSpace(raw)) == 0 {
					continue
				}
				it.Length = int64(len(raw))
				if !complete {
					report(path, it.Offset, "the last message has no end line (truncated file?); shown as it is")
				}
				if known(it) {
					if err := fn(it); err != nil {
						return problems, err
					}
					continue
				}
				if err := deliver(it, raw, ""); err != nil {
					return problems, err
				}
			}
		}
		return problems, nil
	}
	idxPath := filepath.Join(dir, idxName)
	list, bad := parseBeckyIndex(data)
	for _, p := range bad {
		report(idxPath, -1, "%s", p)
	}
	// Where each message probably ends: the next indexed offset in its file.
	offsets := map[string][]int64{}
	for _, e := range list {
		k := asciiLower(e.file)
		offsets[k] = append(offsets[k], e.off)
	}
	for _, o := range offsets {
		slices.Sort(o)
	}
	seen := map[string]bool{}
	for _, e := range list {
		key := asciiLower(e.file)
		name, ok := b.names[key]
		if !ok {
			report(idxPath, -1, "line %d names %s, which is not in the folder; skipped", e.line, e.file)
			continue
		}
		// The place, and what the index says is there: after a compaction
		// another message may sit at the same offset.
		id := key + ":" + strconv.FormatInt(e.off, 16) + ":" + strconv.FormatUint(e.size, 16) + ":" + strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(e.msgID))), 16)
		if seen[id] {
			report(idxPath, -1, "line %d lists the message at offset %d of %s a second time; skipped", e.line, e.off, name)
			continue
		}
		seen[id] = true
		it := &Item{ID: id, Path: filepath.Join(dir, name), Offset: e.off, Flags: beckyFlags(e.status)}
		if e.recv > 0 {
			it.Received = time.Unix(e.recv, 0).UTC()
		}
		if known(it) {
			if err := fn(it); err != nil {
				return problems, err
			}
			continue
		}
		var hint int64
		o := offsets[key]
		if i, found := slices.BinarySearch(o, e.off); found {
			for i < len(o) && o[i] == e.off {
				i++
			}
			if i < len(o) {
				hint = o[i]
			}
		}
		if hint == 0 {
			if _, size, err := b.file(name); err == nil {
				hint = size
			}
		}
		raw, _, complete, err := b.message(name, e.off, hint)
		if err != nil {
			report(it.Path, e.off, "%v; skipped", unwrapPath(err))
			continue
		}
		if !complete {
			report(it.Path, e.off, "the message has no end line (truncated file?); shown as it is")
		}
		if err := deliver(it, raw, e.msgID); err != nil {
			return problems, err
		}
	}
	return problems, nil
}

// readLimited reads a whole file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) // read-only: the archive is sealed
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d MiB", limit>>20)
	}
	return b, nil
}

// looksLikeHeader reports whether raw starts with a header field.
func looksLikeHeader(raw []byte) bool {
	line := raw
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line = raw[:i]
	}
	_, ok := fieldName(trimCR(line))
	return ok
}

// appendServedBecky appends the served form of a raw .bmf message to dst:
// one leading "." removed from every line (dot-stuffing undone), then as
// ServeFile.
func appendServedBecky(dst, raw []byte) []byte {
	start := len(dst)
	dst = AppendServedFile(dst, raw)
	out := dst[start:]
	// Lines before the first one that starts with "." stay where they are.
	w := 0
	if len(out) == 0 || out[0] != '.' {
		k := bytes.Index(out, []byte("\n."))
		if k < 0 {
			return dst
		}
		w = k + 1
	}
	i := w
	for i < len(out) {
		if out[i] == '.' {
			i++
		}
		j := bytes.IndexByte(out[i:], '\n')
		if j < 0 {
			w += copy(out[w:], out[i:])
			break
		}
		w += copy(out[w:], out[i:i+j+1])
		i += j + 1
	}
	return dst[:start+w]
}

// beckyIncludes returns the values of the X-Becky-Include fields in the
// header of served (CRLF) bytes.
func beckyIncludes(served []byte) []string {
	hdr := served
	if i := bytes.Index(served, []byte("\r\n\r\n")); i >= 0 {
		hdr = served[:i+2]
	}
	if !bytes.Contains(bytes.ToLower(hdr), []byte("x-becky-include")) {
		return nil
	}
	var out []string
	for _, line := range bytes.Split(hdr, []byte("\r\n")) {
		name, ok := fieldName(line)
		if !ok || !strings.EqualFold(string(name), "X-Becky-Include") {
			continue
		}
		_, v, _ := bytes.Cut(line, []byte(":"))
		if s, ok := decodeShiftJIS(string(bytes.TrimSpace(v))); ok {
			out = append(out, s)
		} else {
			out = append(out, strings.ToValidUTF8(string(bytes.TrimSpace(v)), "\uFFFD"))
		}
	}
	return out
}
