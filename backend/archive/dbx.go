package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outlook Express 5/6 .dbx files (format as documented by Arne Schloh's
// oedbx and used by UnDBX). Walk(dir, FormatDBX) reads a store root
// (HKCU\Identities\<id>\Software\Microsoft\Outlook Express\5.0\Store Root):
// Folders.dbx names the folders and their tree, each other .dbx file is
// one folder. Walk(file, FormatDBX) reads one .dbx file as one folder.
//
// A .dbx file starts with a 0x24bc-byte header (the file type at 4, the
// number of messages at 0xc4, the root of the message tree at 0xe4), then
// the file info (for a message file: the source type at +4: 3 local, 1
// IMAP, 0 news). The tree's nodes (0x27c bytes) point to "indexed info"
// objects (the message info: 0x00 index, 0x01 flags, 0x02 sent time, 0x04
// the first data block, 0x12 received time). A message is a chain of data
// blocks (16-byte header: own offset, 0x200, data length, next block) whose
// data concatenated is the raw RFC 5322 message: served byte for byte.
//
// Implementation notes:
//
//   - Every object's first word is its own offset; every pointer is checked
//     against that and the file size, and chains and trees against loops,
//     so a damaged file yields Problems, never a hang or a wrong message.
//   - A damaged index (a node or message info that does not check, or
//     fewer messages found than the header counts) starts a scan of the
//     whole file for message chains the index does not reach: they are
//     served too (flags unknown) and named in a Problem, so a file near
//     the 2 GB limit that Outlook Express broke still gives up its mail.
//     Deleted messages (their blocks marked 0x1fc/0x210, their first bytes
//     overwritten by Outlook Express) are not recovered.
//   - Flags: 0x80 \Seen, 0x20 \Flagged, 0x08 \Draft, 0x80000 \Answered,
//     0x100000 $Forwarded.
//   - Folders.dbx folder info: 0x00 id, 0x01 parent id, 0x02 name, 0x03 the
//     folder's .dbx file name. Names are the system code page (CP932 on
//     Japanese Windows); cleanName decodes them.
//   - IMAP and news folders (file source type not local) are skipped with a
//     Problem in a store directory; a source naming one .dbx file is read
//     whatever its type.

var (
	dbxMagicMessages = []byte{0xCF, 0xAD, 0x12, 0xFE, 0xC5, 0xFD, 0x74, 0x6F, 0x66, 0xE3, 0xD1, 0x11, 0x9A, 0x4E, 0x00, 0xC0}
	dbxMagicFolders  = []byte{0xCF, 0xAD, 0x12, 0xFE, 0xC6, 0xFD, 0x74, 0x6F, 0x66, 0xE3, 0xD1, 0x11, 0x9A, 0x4E, 0x00, 0xC0}
)

const (
	dbxHeaderSize   = 0x24bc
	dbxNodeSize     = 0x27c
	dbxNodeEntries  = (dbxNodeSize - 0x18) / 12
	dbxBlockHeader  = 0x10
	dbxBlockData    = 0x200
	dbxMaxTreeDepth = 64
)

// OE message flags.
var dbxFlagBits = []struct {
	bit  uint32
	flag string
}{
	{0x80, `\Seen`},
	{0x20, `\Flagged`},
	{0x08, `\Draft`},
	{0x80000, `\Answered`},
	{0x100000, `$Forwarded`},
}

func dbxFlags(v uint32) []string {
	var out []string
	for _, b := range dbxFlagBits {
		if v&b.bit != 0 {
			out = append(out, b.flag)
		}
	}
	return sortedFlags(out)
}

// dbxReader reads a .dbx file through a window cache: message chains are
// mostly contiguous, so most block reads are copies from memory.
type dbxReader struct {
	r      io.ReaderAt
	size   int64
	path   string
	win    []byte
	winOff int64
	winLen int
	buf    []byte
}

func newDBXReader(r io.ReaderAt, size int64, path string, window int) *dbxReader {
	return &dbxReader{r: r, size: size, path: path, win: make([]byte, window), winOff: -1}
}

var errDBXRange = errors.New("points outside the file")

// at returns n bytes at off, valid until the next call.
func (d *dbxReader) at(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > d.size {
		return nil, fmt.Errorf("offset %#x (+%d): %w", off, n, errDBXRange)
	}
	if d.winOff >= 0 && off >= d.winOff && off+int64(n) <= d.winOff+int64(d.winLen) {
		s := off - d.winOff
		return d.win[s : s+int64(n)], nil
	}
	if n > len(d.win) {
		if cap(d.buf) < n {
			d.buf = make([]byte, n)
		}
		b := d.buf[:n]
		if _, err := d.r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("read at %#x: %w", off, err)
		}
		return b, nil
	}
	start := off &^ 0xfff
	if start+int64(len(d.win)) < off+int64(n) {
		start = off
	}
	k, err := d.r.ReadAt(d.win, start)
	if k < len(d.win) && err != nil && !errors.Is(err, io.EOF) {
		d.winOff = -1
		return nil, fmt.Errorf("read at %#x: %w", start, err)
	}
	d.winOff, d.winLen = start, k
	if off+int64(n) > start+int64(k) {
		d.winOff = -1
		return nil, fmt.Errorf("offset %#x (+%d): %w", off, n, io.ErrUnexpectedEOF)
	}
	s := off - start
	return d.win[s : s+int64(n)], nil
}

func (d *dbxReader) u32(off int64) (uint32, error) {
	b, err := d.at(off, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// magic returns the file type: "messages", "folders" or "".
func (d *dbxReader) magic() string {
	b, err := d.at(0, 16)
	switch {
	case err != nil:
		return ""
	case bytes.Equal(b, dbxMagicMessages):
		return "messages"
	case bytes.Equal(b, dbxMagicFolders):
		return "folders"
	}
	return ""
}

// tree visits the values stored in the tree rooted at node, in order. A
// damaged node is reported and its subtree skipped.
func (d *dbxReader) tree(node uint32, visit func(uint32), damaged func(error)) {
	seen := map[uint32]bool{}
	var walk func(node uint32, depth int)
	walk = func(node uint32, depth int) {
		if node == 0 {
			return
		}
		if seen[node] {
			damaged(fmt.Errorf("index node %#x is reached twice (loop)", node))
			return
		}
		seen[node] = true
		if depth > dbxMaxTreeDepth {
			damaged(fmt.Errorf("index node %#x is nested too deeply", node))
			return
		}
		b, err := d.at(int64(node), dbxNodeSize)
		if err != nil {
			damaged(fmt.Errorf("index node %#x: %w", node, err))
			return
		}
		if binary.LittleEndian.Uint32(b) != node {
			damaged(fmt.Errorf("index node %#x is damaged (its marker is %#x)", node, binary.LittleEndian.Uint32(b)))
			return
		}
		n := int(b[0x11])
		if n > dbxNodeEntries {
			damaged(fmt.Errorf("index node %#x claims %d entries", node, n))
			return
		}
		type entry struct{ value, child uint32 }
		left := binary.LittleEndian.Uint32(b[8:])
		es := make([]entry, n)
		for i := range es {
			e := b[0x18+12*i:]
			es[i] = entry{binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])}
		}
		walk(left, depth+1)
		for _, e := range es {
			visit(e.value)
			walk(e.child, depth+1)
		}
	}
	walk(node, 0)
}

// dbxInfo is a decoded indexed-info object.
type dbxInfo struct {
	ints map[byte]uint32 // direct or 4-byte values
	data map[byte][]byte // the bytes a pointer value addresses (to the next entry)
}

func (i dbxInfo) str(idx byte) string {
	b := i.data[idx]
	if k := bytes.IndexByte(b, 0); k >= 0 {
		b = b[:k]
	}
	return string(b)
}

func (i dbxInfo) int(idx byte) (uint32, bool) {
	if v, ok := i.ints[idx]; ok {
		return v, true
	}
	if b, ok := i.data[idx]; ok && len(b) >= 4 {
		return binary.LittleEndian.Uint32(b), true
	}
	return 0, false
}

func (i dbxInfo) filetime(idx byte) time.Time {
	b, ok := i.data[idx]
	if !ok || len(b) < 8 {
		return time.Time{}
	}
	return filetimeToTime(binary.LittleEndian.Uint64(b))
}

// filetimeToTime converts a Windows FILETIME; zero for values outside
// 1970–2200.
func filetimeToTime(ft uint64) time.Time {
	const epoch = 116444736000000000
	if ft <= epoch || ft > epoch+uint64(230*365*24*3600)*1e7 {
		return time.Time{}
	}
	ft -= epoch
	return time.Unix(int64(ft/1e7), int64(ft%1e7)*100).UTC()
}

// info reads the indexed-info object at off.
func (d *dbxReader) info(off uint32) (dbxInfo, error) {
	h, err := d.at(int64(off), 12)
	if err != nil {
		return dbxInfo{}, err
	}
	if binary.LittleEndian.Uint32(h) != off {
		return dbxInfo{}, fmt.Errorf("message info %#x is damaged (its marker is %#x)", off, binary.LittleEndian.Uint32(h))
	}
	body := binary.LittleEndian.Uint32(h[4:])
	count := int(h[10])
	if body > 1<<20 || int(body) < 4*count {
		return dbxInfo{}, fmt.Errorf("message info %#x has an impossible length %d", off, body)
	}
	b, err := d.at(int64(off)+12, int(body))
	if err != nil {
		return dbxInfo{}, fmt.Errorf("message info %#x: %w", off, err)
	}
	b = slices.Clone(b)
	data := b[4*count:]
	info := dbxInfo{ints: map[byte]uint32{}, data: map[byte][]byte{}}
	type ptr struct {
		idx byte
		at  uint32
	}
	var ptrs []ptr
	for k := range count {
		v := binary.LittleEndian.Uint32(b[4*k:])
		idx := byte(v & 0x7f)
		val := v >> 8
		if v&0x80 != 0 {
			info.ints[idx] = val
			continue
		}
		if val >= uint32(len(data)) {
			continue // points past the object: ignored
		}
		ptrs = append(ptrs, ptr{idx, val})
	}
	slices.SortStableFunc(ptrs, func(a, b ptr) int { return int(a.at) - int(b.at) })
	for k, p := range ptrs {
		end := uint32(len(data))
		if k+1 < len(ptrs) && ptrs[k+1].at > p.at {
			end = ptrs[k+1].at
		}
		info.data[p.idx] = data[p.at:end]
	}
	return info, nil
}

// chain reads the message whose first data block is at off, appending to
// dst.
func (d *dbxReader) chain(off uint32, dst []byte) ([]byte, error) {
	if off == 0 {
		return dst, errors.New("no message data (the message info points nowhere)")
	}
	start := len(dst)
	blocks := 0
	maxBlocks := int(d.size/(dbxBlockHeader+1)) + 1
	for off != 0 {
		b, err := d.at(int64(off), dbxBlockHeader)
		if err != nil {
			return dst, fmt.Errorf("data block %#x: %w", off, err)
		}
		marker := binary.LittleEndian.Uint32(b)
		blockSize := binary.LittleEndian.Uint32(b[4:])
		n := binary.LittleEndian.Uint32(b[8:]) & 0xffff
		next := binary.LittleEndian.Uint32(b[12:])
		switch {
		case marker != off:
			return dst, fmt.Errorf("data block %#x is damaged (its marker is %#x)", off, marker)
		case blockSize == 0x1fc:
			return dst, fmt.Errorf("data block %#x belongs to a deleted message", off)
		case blockSize != dbxBlockData || n > blockSize:
			return dst, fmt.Errorf("data block %#x is damaged (size %#x, %d bytes used)", off, blockSize, n)
		}
		blocks++
		if blocks > maxBlocks || len(dst)-start+int(n) > maxItemSize {
			return dst, fmt.Errorf("message data from %#x does not end (loop or larger than %d MiB)", off, maxItemSize>>20)
		}
		data, err := d.at(int64(off)+dbxBlockHeader, int(n))
		if err != nil {
			return dst, fmt.Errorf("data block %#x: %w", off, err)
		}
		dst = append(dst, data...)
		off = next
	}
	return dst, nil
}

// dbxMsg is one message found in a .dbx file.
type dbxMsg struct {
	id       string
	addr     uint32
	flags    []string
	received time.Time
	msgID    string
}

// dbxMessages lists the messages of an open message .dbx: through the
// index, and, when that is damaged, by a scan for the chains it does not
// reach.
func dbxMessages(d *dbxReader) (msgs []dbxMsg, problems []Problem) {
	report := func(off int64, format string, args ...any) {
		problems = append(problems, problem(d.path, off, format, args...))
	}
	count, err1 := d.u32(0xc4)
	root, err2 := d.u32(0xe4)
	if err1 != nil || err2 != nil {
		report(-1, "the file header is cut short")
		return nil, problems
	}
	damaged := false
	var infos []uint32
	if count > 0 || root != 0 {
		d.tree(root, func(v uint32) { infos = append(infos, v) }, func(err error) {
			damaged = true
			report(-1, "%v", err)
		})
	}
	ids := map[string]bool{}
	reached := map[uint32]bool{}
	for _, off := range infos {
		info, err := d.info(off)
		if err != nil {
			damaged = true
			report(int64(off), "%v; the message it describes is looked for by a scan", err)
			continue
		}
		m := dbxMsg{msgID: info.str(0x07)}
		idx, ok := info.int(0x00)
		if ok {
			m.id = strconv.FormatUint(uint64(idx), 10)
		} else {
			m.id = "@" + strconv.FormatUint(uint64(off), 16)
		}
		if ids[m.id] {
			m.id += "@" + strconv.FormatUint(uint64(off), 16)
		}
		ids[m.id] = true
		fl, _ := info.int(0x01)
		m.flags = dbxFlags(fl)
		m.addr, _ = info.int(0x04)
		if m.addr == 0 {
			report(int64(off), "message %s (%s): no message text stored, only its entry in the list; skipped", m.id, printable(m.msgID))
			continue
		}
		m.received = info.filetime(0x12)
		if m.received.IsZero() {
			m.received = info.filetime(0x02)
		}
		if reached[m.addr] {
			report(int64(off), "message %s: its text is listed twice; skipped", m.id)
			continue
		}
		reached[m.addr] = true
		msgs = append(msgs, m)
	}
	if !damaged && uint32(len(infos)) >= count {
		return msgs, problems
	}
	if !damaged {
		report(-1, "the header counts %d messages, the index lists %d; looking for the others by a scan", count, len(infos))
	}
	found := d.recover(reached)
	for _, addr := range found {
		msgs = append(msgs, dbxMsg{id: "@" + strconv.FormatUint(uint64(addr), 16), addr: addr})
	}
	if len(found) > 0 {
		report(-1, "%d messages recovered from outside the damaged index (shown without flags)", len(found))
	}
	return msgs, problems
}

// recover scans the whole file for the first blocks of message chains that
// are intact and neither in reached nor reached through another chain.
// It keeps 8 bytes per data block (some 32 MB for a 2 GB file).
func (d *dbxReader) recover(reached map[uint32]bool) []uint32 {
	var offs, nexts []uint32 // ascending offsets and their next pointers
	const chunk = 1 << 20
	buf := make([]byte, chunk+dbxBlockHeader)
	for base := int64(dbxHeaderSize) &^ 3; base < d.size; base += chunk {
		n, err := d.r.ReadAt(buf, base)
		if n == 0 && err != nil {
			break
		}
		b := buf[:n]
		for i := 0; i+dbxBlockHeader <= len(b) && i < chunk; i += 4 {
			off := uint32(base) + uint32(i)
			if binary.LittleEndian.Uint32(b[i:]) != off || binary.LittleEndian.Uint32(b[i+4:]) != dbxBlockData {
				continue
			}
			used := binary.LittleEndian.Uint32(b[i+8:])
			next := binary.LittleEndian.Uint32(b[i+12:])
			if used > dbxBlockData || int64(next) >= d.size || next&3 != 0 || next == off {
				continue
			}
			offs = append(offs, off)
			nexts = append(nexts, next)
			i += dbxBlockHeader + dbxBlockData - 4
		}
	}
	sortedNext := slices.Clone(nexts)
	slices.Sort(sortedNext)
	var starts []uint32
	for k, off := range offs {
		if _, isNext := slices.BinarySearch(sortedNext, off); isNext || reached[off] {
			continue
		}
		// The whole chain must be intact.
		ok, steps := true, 0
		for j := k; ; {
			nx := nexts[j]
			if nx == 0 {
				break
			}
			i, in := slices.BinarySearch(offs, nx)
			if !in || steps > len(offs) {
				ok = false
				break
			}
			j = i
			steps++
		}
		if ok {
			starts = append(starts, off)
		}
	}
	return starts
}

// printable shows a Message-ID (or anything from a file) in a Problem.
func printable(s string) string {
	if s == "" {
		return "no Message-ID"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// scanDBXFile is ScanItems for a .dbx file.
func scanDBXFile(path string, known func(*Item) bool, fn func(*Item) error) ([]Problem, error) {
	f, err := os.Open(path) // read-only: the archive is sealed
	if err != nil {
		return nil, fmt.Errorf("dbx: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dbx: %w", err)
	}
	return scanDBX(f, fi.Size(), path, known, fn)
}

func scanDBX(r io.ReaderAt, size int64, path string, known func(*Item) bool, fn func(*Item) error) ([]Problem, error) {
	if known == nil {
		known = func(*Item) bool { return false }
	}
	d := newDBXReader(r, size, path, 1<<20)
	switch d.magic() {
	case "messages":
	case "folders":
		return nil, fmt.Errorf("dbx %s: this is Folders.dbx, the list of folders, not a folder", path)
	default:
		return nil, fmt.Errorf("dbx %s: %w: not an Outlook Express 5/6 message file", path, ErrUnknownFormat)
	}
	msgs, problems := dbxMessages(d)
	var raw, out []byte
	for _, m := range msgs {
		it := &Item{ID: m.id, Path: path, Offset: int64(m.addr), Flags: m.flags, Received: m.received}
		if known(it) {
			if err := fn(it); err != nil {
				return problems, err
			}
			continue
		}
		var err error
		raw, err = d.chain(m.addr, raw[:0])
		if err != nil {
			problems = append(problems, problem(path, int64(m.addr), "message %s (%s): %v; skipped", m.id, printable(m.msgID), err))
			continue
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			problems = append(problems, problem(path, int64(m.addr), "message %s (%s) is empty; skipped", m.id, printable(m.msgID)))
			continue
		}
		if !bytes.Contains(raw, []byte("\n\r\n")) && !bytes.Contains(raw, []byte("\n\n")) {
			problems = append(problems, problem(path, int64(m.addr), "message %s (%s) has only its header (Outlook Express did not download the rest); shown as it is", m.id, printable(m.msgID)))
		}
		it.Length = int64(len(raw))
		out = AppendServedFile(out[:0], raw)
		it.Served = out
		if err := fn(it); err != nil {
			return problems, err
		}
	}
	return problems, nil
}

// dbxFolder is one folder of Folders.dbx.
type dbxFolder struct {
	id, parent uint32
	name, file string
}

// dbxFolderList reads Folders.dbx.
func dbxFolderList(d *dbxReader) ([]dbxFolder, []Problem, error) {
	if d.magic() != "folders" {
		return nil, nil, errors.New("not an Outlook Express Folders.dbx")
	}
	var problems []Problem
	var out []dbxFolder
	seen := map[uint32]bool{}
	for k, rootAt := range []int64{0xe4, 0xe8, 0xec} {
		root, err := d.u32(rootAt)
		if err != nil || root == 0 {
			continue
		}
		var infos []uint32
		d.tree(root, func(v uint32) { infos = append(infos, v) }, func(err error) {
			if k == 0 {
				problems = append(problems, problem(d.path, -1, "%v", err))
			}
		})
		for _, off := range infos {
			info, err := d.info(off)
			if err != nil {
				if k == 0 {
					problems = append(problems, problem(d.path, int64(off), "folder entry: %v", err))
				}
				continue
			}
			id, ok := info.int(0x00)
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			parent, _ := info.int(0x01)
			out = append(out, dbxFolder{id: id, parent: parent, name: info.str(0x02), file: info.str(0x03)})
		}
	}
	return out, problems, nil
}

// dbxSourceType reads a message .dbx's source type (3 local, 1 IMAP, 0
// news); ok is false when the file has no file info.
func dbxSourceType(d *dbxReader) (byte, bool) {
	n, err := d.u32(0x1c)
	if err != nil || n < 5 {
		return 0, false
	}
	b, err := d.at(dbxHeaderSize+4, 1)
	if err != nil {
		return 0, false
	}
	return b[0], true
}

// dbxNotMail are .dbx files of a store that are not folders.
func dbxNotMail(name string) bool {
	switch asciiLower(name) {
	case "folders.dbx", "pop3uidl.dbx", "offline.dbx", "cleanup.dbx":
		return true
	}
	return false
}

// walkDBX lists the folders of an Outlook Express store directory, or the
// one folder of a .dbx file.
func walkDBX(abs string) ([]Folder, []Problem, error) {
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(abs)
		if err != nil {
			return nil, nil, fmt.Errorf("archive: %w", err)
		}
		defer f.Close()
		switch newDBXReader(f, fi.Size(), abs, 64<<10).magic() {
		case "messages":
			return []Folder{{Kind: KindDBX, Loc: abs}}, nil, nil
		case "folders":
			return nil, nil, fmt.Errorf("%w: %s is the list of Outlook Express folders; use the directory that holds it", ErrUnknownFormat, abs)
		}
		return nil, nil, fmt.Errorf("%w: %s: not an Outlook Express 5/6 .dbx file", ErrUnknownFormat, abs)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	w := &walker{}
	files := map[string]string{} // lower-case name → name on disk
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".dbx") {
			files[asciiLower(e.Name())] = e.Name()
		}
	}
	// Folder paths from Folders.dbx: file name (lower case) → path.
	paths := map[string][]string{}
	if name, ok := files["folders.dbx"]; ok {
		paths = w.dbxTree(filepath.Join(abs, name), files)
	} else if len(files) > 0 {
		w.report(abs, errors.New("no Folders.dbx: folders are named after their .dbx files, without their tree"))
	}
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	slices.Sort(names)
	found := false
	var out, orphans []Folder
	for _, k := range names {
		name := files[k]
		if dbxNotMail(name) {
			continue
		}
		full := filepath.Join(abs, name)
		f, err := os.Open(full)
		if err != nil {
			w.report(full, fmt.Errorf("cannot read: %w", unwrapPath(err)))
			continue
		}
		st, _ := f.Stat()
		d := newDBXReader(f, st.Size(), full, 64<<10)
		magic := d.magic()
		src, hasSrc := dbxSourceType(d)
		f.Close()
		if magic != "messages" {
			w.report(full, errors.New("not an Outlook Express 5/6 message file; skipped"))
			continue
		}
		found = true
		path, inTree := paths[k]
		if !inTree {
			path = []string{w.legacyComponent(full, strings.TrimSuffix(name, filepath.Ext(name)))}
		}
		if hasSrc && src != 3 {
			what := "IMAP"
			if src == 0 {
				what = "newsgroup"
			}
			w.report(full, fmt.Errorf("Outlook Express %s folder %q skipped: its mail is on the server (to read this copy anyway, add %s as its own source)", what, strings.Join(path, "/"), full))
			continue
		}
		if inTree {
			out = append(out, Folder{Path: path, Kind: KindDBX, Loc: full})
		} else {
			orphans = append(orphans, Folder{Path: path, Kind: KindDBX, Loc: full})
		}
	}
	if !found && len(w.problems) == 0 {
		return nil, nil, fmt.Errorf("%w: %s: no Outlook Express .dbx files found", ErrUnknownFormat, abs)
	}
	// Local folders all hang below "Local Folders": drop that level.
	if len(out) > 0 {
		first := out[0].Path[0]
		same := len(out[0].Path) > 1
		for _, f := range out {
			if len(f.Path) < 2 || f.Path[0] != first {
				same = false
				break
			}
		}
		if same {
			for i := range out {
				out[i].Path = out[i].Path[1:]
			}
		}
	}
	// Files Folders.dbx does not know sit at the top, under names of their
	// own.
	used := map[string]bool{}
	for _, f := range out {
		used[strings.ToLower(f.Path[0])] = true
	}
	for _, f := range orphans {
		name := uniqueName(used, f.Path[0])
		if name != f.Path[0] {
			w.report(f.Loc, fmt.Errorf("not in Folders.dbx, and its name %q is taken; shown as %q", f.Path[0], name))
		}
		f.Path = []string{name}
		out = append(out, f)
	}
	for _, f := range out {
		f.SpecialUse = SpecialUse(f.Path[len(f.Path)-1])
		w.folders = append(w.folders, f)
	}
	return w.finish(), w.problems, nil
}

// dbxTree reads Folders.dbx and returns the path of each folder file.
func (w *walker) dbxTree(path string, files map[string]string) map[string][]string {
	out := map[string][]string{}
	f, err := os.Open(path)
	if err != nil {
		w.report(path, fmt.Errorf("cannot read: %w; folders are named after their .dbx files", unwrapPath(err)))
		return out
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		w.report(path, err)
		return out
	}
	list, probs, err := dbxFolderList(newDBXReader(f, st.Size(), path, 64<<10))
	w.problems = append(w.problems, probs...)
	if err != nil {
		w.report(path, fmt.Errorf("%w; folders are named after their .dbx files", err))
		return out
	}
	byID := map[uint32]dbxFolder{}
	for _, f := range list {
		byID[f.id] = f
	}
	// Names, de-duplicated among siblings.
	display := map[uint32]string{}
	used := map[uint32]map[string]bool{}
	for _, f := range list {
		if used[f.parent] == nil {
			used[f.parent] = map[string]bool{}
		}
		name, err := cleanLegacyName(f.name)
		if err != nil {
			w.report(path, fmt.Errorf("folder %d: %w", f.id, err))
		}
		if strings.TrimSpace(name) == "" {
			name = strings.TrimSuffix(f.file, filepath.Ext(f.file))
			if name, _ = cleanLegacyName(name); strings.TrimSpace(name) == "" {
				name = "Folder " + strconv.FormatUint(uint64(f.id), 10)
			}
		}
		display[f.id] = uniqueName(used[f.parent], name)
	}
	for _, f := range list {
		if f.file == "" {
			continue
		}
		if _, ok := files[asciiLower(f.file)]; !ok {
			continue
		}
		var p []string
		seen := map[uint32]bool{}
		for cur, ok := f, true; ok; cur, ok = byID[cur.parent] {
			if seen[cur.id] || cur.parent == cur.id {
				break
			}
			seen[cur.id] = true
			if _, hasParent := byID[cur.parent]; !hasParent && cur.file == "" {
				break // the tree's root
			}
			p = append(p, display[cur.id])
		}
		slices.Reverse(p)
		if len(p) > 0 {
			out[asciiLower(f.file)] = p
		}
	}
	return out
}
