package legacytest

import (
	"encoding/binary"
	"time"
)

// Outlook Express message flags (message info index 0x01).
const (
	DBXDownloaded = 0x01
	DBXDraft      = 0x08
	DBXFlagged    = 0x20
	DBXRead       = 0x80
	DBXAnswered   = 0x80000
	DBXForwarded  = 0x100000
)

// DBXMsg is one message of a .dbx folder.
type DBXMsg struct {
	Raw      []byte // the message (CRLF line ends)
	Flags    uint32
	Received time.Time
	// Index is the message's index number (0: its position, from 1).
	Index uint32
	// Deleted messages leave their blocks in the file, marked deleted, and
	// are not in the index.
	Deleted bool
}

// DBXOptions describes the folder file.
type DBXOptions struct {
	// Source is the file info's source type: 3 local (the zero value is
	// taken as 3), 1 IMAP, 0 news (set NotLocal to use 0).
	Source   byte
	NotLocal bool
	// Name is the folder name in the file info (system code page).
	Name string
}

// DBXLayout says where DBXFile put things, for tests that damage files.
type DBXLayout struct {
	Nodes  []int64   // index tree nodes, root first
	Infos  []int64   // message info objects of the listed messages, in order
	Chains [][]int64 // data blocks of each listed message
}

var (
	dbxMagicMessages = []byte{0xCF, 0xAD, 0x12, 0xFE, 0xC5, 0xFD, 0x74, 0x6F, 0x66, 0xE3, 0xD1, 0x11, 0x9A, 0x4E, 0x00, 0xC0, 0x4F, 0xA3, 0x09, 0xD4}
	dbxMagicFolders  = []byte{0xCF, 0xAD, 0x12, 0xFE, 0xC6, 0xFD, 0x74, 0x6F, 0x66, 0xE3, 0xD1, 0x11, 0x9A, 0x4E, 0x00, 0xC0, 0x4F, 0xA3, 0x09, 0xD4}
)

const (
	dbxHeaderSize = 0x24bc
	dbxNodeSize   = 0x27c
	dbxMaxEntries = (dbxNodeSize - 0x18) / 12
)

type dbxBuf struct{ b []byte }

func (w *dbxBuf) alloc(n int) int64 {
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
	off := int64(len(w.b))
	w.b = append(w.b, make([]byte, n)...)
	return off
}

func (w *dbxBuf) put32(off int64, v uint32) { binary.LittleEndian.PutUint32(w.b[off:], v) }

// dbxValue is one entry of an indexed info object: a direct value (< 2^24)
// or data.
type dbxValue struct {
	idx    byte
	direct bool
	val    uint32
	data   []byte
}

func dInt(idx byte, v uint32) dbxValue {
	if v < 1<<24 {
		return dbxValue{idx: idx, direct: true, val: v}
	}
	return dbxValue{idx: idx, data: binary.LittleEndian.AppendUint32(nil, v)}
}

func dStr(idx byte, s string) dbxValue { return dbxValue{idx: idx, data: append([]byte(s), 0)} }

func dTime(idx byte, t time.Time) dbxValue {
	ft := uint64(t.Unix())*1e7 + 116444736000000000
	return dbxValue{idx: idx, data: binary.LittleEndian.AppendUint64(nil, ft)}
}

// info writes an indexed info object (values sorted by idx).
func (w *dbxBuf) info(vals []dbxValue) int64 {
	var table, data []byte
	for _, v := range vals {
		if v.direct {
			table = binary.LittleEndian.AppendUint32(table, uint32(v.idx)|0x80|v.val<<8)
			continue
		}
		table = binary.LittleEndian.AppendUint32(table, uint32(v.idx)|uint32(len(data))<<8)
		data = append(data, v.data...)
	}
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	body := append(table, data...)
	off := w.alloc(12 + len(body))
	w.put32(off, uint32(off))
	w.put32(off+4, uint32(len(body)))
	w.b[off+10] = byte(len(vals))
	w.b[off+11] = 1
	copy(w.b[off+12:], body)
	return off
}

// tree writes a tree holding values in order and returns its root; it
// appends the node offsets to nodes.
func (w *dbxBuf) tree(values []uint32, parent uint32, nodes *[]int64) (uint32, int) {
	if len(values) == 0 {
		return 0, 0
	}
	off := w.alloc(dbxNodeSize)
	*nodes = append(*nodes, off)
	w.put32(off, uint32(off))
	w.put32(off+0xc, parent)
	type entry struct {
		value, child uint32
		count        int
	}
	var left uint32
	var leftCount int
	var es []entry
	if len(values) <= dbxMaxEntries {
		for _, v := range values {
			es = append(es, entry{value: v})
		}
	} else {
		k := min(dbxMaxEntries, len(values)/2)
		rest := len(values) - k
		groups := make([]int, k+1)
		for i := range groups {
			groups[i] = rest / (k + 1)
			if i < rest%(k+1) {
				groups[i]++
			}
		}
		pos := 0
		left, leftCount = w.tree(values[pos:pos+groups[0]], uint32(off), nodes)
		pos += groups[0]
		for i := 1; i <= k; i++ {
			e := entry{value: values[pos]}
			pos++
			e.child, e.count = w.tree(values[pos:pos+groups[i]], uint32(off), nodes)
			pos += groups[i]
			es = append(es, e)
		}
	}
	w.put32(off+8, left)
	w.b[off+0x11] = byte(len(es))
	w.put32(off+0x14, uint32(leftCount))
	total := leftCount
	for i, e := range es {
		p := off + 0x18 + int64(12*i)
		w.put32(p, e.value)
		w.put32(p+4, e.child)
		w.put32(p+8, uint32(e.count))
		total += 1 + e.count
	}
	return uint32(off), total
}

// chain writes raw as a chain of data blocks and returns their offsets.
func (w *dbxBuf) chain(raw []byte, deleted bool) []int64 {
	var offs []int64
	for first := true; first || len(raw) > 0; first = false {
		n := min(len(raw), 0x200)
		off := w.alloc(0x210)
		offs = append(offs, off)
		w.put32(off, uint32(off))
		if deleted {
			w.put32(off+4, 0x1fc)
			w.put32(off+8, 0x210)
		} else {
			w.put32(off+4, 0x200)
			w.put32(off+8, uint32(n))
		}
		copy(w.b[off+16:], raw[:n])
		raw = raw[n:]
	}
	for i := range offs {
		if i+1 < len(offs) {
			w.put32(offs[i]+12, uint32(offs[i+1]))
		}
		if deleted {
			// Outlook Express overwrites the first data word with the
			// previous block's offset.
			prev := uint32(0)
			if i > 0 {
				prev = uint32(offs[i-1])
			}
			w.put32(offs[i]+16, prev)
		}
	}
	return offs
}

func newDBX(magic []byte, info []byte) *dbxBuf {
	w := &dbxBuf{b: make([]byte, dbxHeaderSize)}
	copy(w.b, magic)
	w.put32(0x1c, uint32(len(info)))
	w.b = append(w.b, info...)
	return w
}

// DBXFile returns a message .dbx file holding msgs.
func DBXFile(msgs []DBXMsg, opt DBXOptions) ([]byte, DBXLayout) {
	src := opt.Source
	if src == 0 && !opt.NotLocal {
		src = 3
	}
	fi := make([]byte, 0x618)
	fi[0] = 1
	fi[4] = src
	copy(fi[5:0x104], "00000001")
	copy(fi[0x105:0x20f], opt.Name)
	w := newDBX(dbxMagicMessages, fi)
	var lay DBXLayout
	var infos []uint32
	for i, m := range msgs {
		chain := w.chain(m.Raw, m.Deleted)
		if m.Deleted {
			continue
		}
		idx := m.Index
		if idx == 0 {
			idx = uint32(i + 1)
		}
		vals := []dbxValue{dInt(0x00, idx), dInt(0x01, m.Flags|DBXDownloaded)}
		if !m.Received.IsZero() {
			vals = append(vals, dTime(0x02, m.Received))
		}
		vals = append(vals, dInt(0x04, uint32(chain[0])))
		if id := header(m.Raw, "Message-ID"); id != "" {
			vals = append(vals, dStr(0x07, id))
		}
		vals = append(vals, dStr(0x08, header(m.Raw, "Subject")), dInt(0x11, uint32(len(m.Raw))))
		if !m.Received.IsZero() {
			vals = append(vals, dTime(0x12, m.Received))
		}
		off := w.info(vals)
		lay.Infos = append(lay.Infos, off)
		lay.Chains = append(lay.Chains, chain)
		infos = append(infos, uint32(off))
	}
	root, n := w.tree(infos, 0, &lay.Nodes)
	w.put32(0xc4, uint32(n))
	w.put32(0xe4, root)
	w.put32(0x24, uint32(len(w.b)))
	return w.b, lay
}

// DBXFolderInfo is one folder of Folders.dbx.
type DBXFolderInfo struct {
	ID, Parent uint32
	Name       string // system code page (CP932 bytes allowed)
	File       string // the folder's .dbx file name; "" for containers
}

// FoldersDBX returns a Folders.dbx listing folders.
func FoldersDBX(folders []DBXFolderInfo) []byte {
	fi := make([]byte, 0x108)
	binary.LittleEndian.PutUint64(fi, uint64(time.Date(2004, 4, 1, 0, 0, 0, 0, time.UTC).Unix())*1e7+116444736000000000)
	fi[8] = 1
	w := newDBX(dbxMagicFolders, fi)
	var infos []uint32
	for _, f := range folders {
		vals := []dbxValue{dInt(0x00, f.ID), dInt(0x01, f.Parent), dStr(0x02, f.Name)}
		if f.File != "" {
			vals = append(vals, dStr(0x03, f.File))
		}
		vals = append(vals, dInt(0x06, 0))
		infos = append(infos, uint32(w.info(vals)))
	}
	var nodes []int64
	root, n := w.tree(infos, 0, &nodes)
	w.put32(0xc4, uint32(n))
	w.put32(0xe4, root)
	w.put32(0x24, uint32(len(w.b)))
	return w.b
}
