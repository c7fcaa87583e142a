package archive

import (
	"encoding/binary"
	"math"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Property types ([MS-OXCDATA] 2.11.1).
const (
	ptInt16    = 0x0002
	ptInt32    = 0x0003
	ptFloat32  = 0x0004
	ptFloat64  = 0x0005
	ptCurrency = 0x0006
	ptAppTime  = 0x0007
	ptError    = 0x000A
	ptBoolean  = 0x000B
	ptObject   = 0x000D
	ptInt64    = 0x0014
	ptString8  = 0x001E
	ptUnicode  = 0x001F
	ptTime     = 0x0040
	ptGUID     = 0x0048
	ptBinary   = 0x0102
	ptMultiBin = 0x1102
)

// fixedSize returns the size of a fixed-size property type, or 0 for a
// variable-size one.
func fixedSize(typ uint16) int {
	switch typ {
	case ptBoolean:
		return 1
	case ptInt16:
		return 2
	case ptInt32, ptFloat32, ptError:
		return 4
	case ptFloat64, ptCurrency, ptAppTime, ptInt64, ptTime:
		return 8
	case ptGUID:
		return 16
	}
	return 0
}

// pstHeap is a heap-on-node ([MS-PST] 2.3.1): the data blocks of a node
// plus the node's subnodes (for HNIDs that are NIDs).
type pstHeap struct {
	p         *pstFile
	blocks    [][]byte
	subs      map[uint32]pstNode
	clientSig byte
	userRoot  uint32
}

// openHeap reads the heap-on-node of n.
func (p *pstFile) openHeap(n pstNode) (*pstHeap, error) {
	blocks, err := p.dataTree(n.data)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 || len(blocks[0]) < 12 || blocks[0][2] != 0xEC {
		return nil, corrupt("node %#x: no heap-on-node signature", n.nid)
	}
	subs, err := p.subnodes(n.sub)
	if err != nil {
		return nil, err
	}
	return &pstHeap{
		p:         p,
		blocks:    blocks,
		subs:      subs,
		clientSig: blocks[0][3],
		userRoot:  binary.LittleEndian.Uint32(blocks[0][4:]),
	}, nil
}

// alloc returns the heap allocation hid.
func (h *pstHeap) alloc(hid uint32) ([]byte, error) {
	if hid&0x1F != nidTypeHID {
		return nil, corrupt("%#x is not a heap id", hid)
	}
	index := int(hid>>5) & 0x7FF
	bi := int(hid >> 16)
	if bi >= len(h.blocks) || index == 0 {
		return nil, corrupt("heap id %#x out of range", hid)
	}
	b := h.blocks[bi]
	if len(b) < 2 {
		return nil, corrupt("heap block %d too short", bi)
	}
	pm := int(binary.LittleEndian.Uint16(b))
	if pm+4 > len(b) {
		return nil, corrupt("heap block %d: page map at %d beyond %d bytes", bi, pm, len(b))
	}
	cAlloc := int(binary.LittleEndian.Uint16(b[pm:]))
	if index > cAlloc || pm+4+2*(index+1) > len(b) {
		return nil, corrupt("heap id %#x: allocation %d of %d", hid, index, cAlloc)
	}
	start := int(binary.LittleEndian.Uint16(b[pm+4+2*(index-1):]))
	end := int(binary.LittleEndian.Uint16(b[pm+4+2*index:]))
	if start > end || end > len(b) {
		return nil, corrupt("heap id %#x: allocation %d..%d beyond %d bytes", hid, start, end, len(b))
	}
	return b[start:end], nil
}

// hnid returns the value an HNID points at: a heap allocation or the data
// of a subnode. 0 is an empty value.
func (h *pstHeap) hnid(id uint32) ([]byte, error) {
	if id == 0 {
		return nil, nil
	}
	if id&0x1F == nidTypeHID {
		return h.alloc(id)
	}
	n, ok := h.subs[id]
	if !ok {
		return nil, corrupt("subnode %#x not found", id)
	}
	return h.p.data(n.data)
}

// bth calls fn for every record of the BTH whose header is at hid, in key
// order.
func (h *pstHeap) bth(hid uint32, fn func(key, data []byte)) (keySize, dataSize int, err error) {
	hdr, err := h.alloc(hid)
	if err != nil {
		return 0, 0, err
	}
	if len(hdr) < 8 || hdr[0] != 0xB5 {
		return 0, 0, corrupt("heap id %#x is not a BTH header", hid)
	}
	keySize, dataSize = int(hdr[1]), int(hdr[2])
	levels := int(hdr[3])
	root := binary.LittleEndian.Uint32(hdr[4:])
	if keySize == 0 || levels > 8 {
		return 0, 0, corrupt("BTH %#x: key size %d, %d levels", hid, keySize, levels)
	}
	seen := make(map[uint32]bool)
	var walk func(hid uint32, level int) error
	walk = func(hid uint32, level int) error {
		if hid == 0 {
			return nil
		}
		if seen[hid] {
			return corrupt("BTH %#x: record block %#x used twice", root, hid)
		}
		seen[hid] = true
		recs, err := h.alloc(hid)
		if err != nil {
			return err
		}
		size := keySize + dataSize
		if level > 0 {
			size = keySize + 4
		}
		for i := 0; i+size <= len(recs); i += size {
			r := recs[i : i+size]
			if level > 0 {
				if err := walk(binary.LittleEndian.Uint32(r[keySize:]), level-1); err != nil {
					return err
				}
				continue
			}
			fn(r[:keySize], r[keySize:])
		}
		return nil
	}
	return keySize, dataSize, walk(root, levels)
}

// pstProps is a property context ([MS-PST] 2.3.3): one object's
// properties, their values read on demand.
type pstProps struct {
	h     *pstHeap
	props map[uint16]pcEntry
}

type pcEntry struct {
	typ   uint16
	value uint32 // the value itself (≤ 4 bytes) or an HNID
}

// openProps reads the property context of n.
func (p *pstFile) openProps(n pstNode) (*pstProps, error) {
	h, err := p.openHeap(n)
	if err != nil {
		return nil, err
	}
	if h.clientSig != 0xBC {
		return nil, corrupt("node %#x is not a property context (signature %#x)", n.nid, h.clientSig)
	}
	pc := &pstProps{h: h, props: make(map[uint16]pcEntry)}
	ks, ds, err := h.bth(h.userRoot, func(key, data []byte) {
		pc.props[binary.LittleEndian.Uint16(key)] = pcEntry{
			typ:   binary.LittleEndian.Uint16(data),
			value: binary.LittleEndian.Uint32(data[2:]),
		}
	})
	if err == nil && (ks != 2 || ds != 6) {
		err = corrupt("node %#x: property BTH with %d/%d byte records", n.nid, ks, ds)
	}
	if err != nil {
		return nil, err
	}
	return pc, nil
}

// raw returns the type and bytes of property id; ok is false when the
// property is absent or unreadable (err says which for the latter).
func (c *pstProps) raw(id uint16) (typ uint16, b []byte, ok bool, err error) {
	e, found := c.props[id]
	if !found {
		return 0, nil, false, nil
	}
	if n := fixedSize(e.typ); n > 0 && n <= 4 {
		var v [4]byte
		binary.LittleEndian.PutUint32(v[:], e.value)
		return e.typ, v[:n], true, nil
	}
	b, err = c.h.hnid(e.value)
	if err != nil {
		return e.typ, nil, false, err
	}
	if n := fixedSize(e.typ); n > 0 && len(b) < n {
		return e.typ, nil, false, corrupt("property %#04x: %d bytes for a %d-byte type", id, len(b), n)
	}
	return e.typ, b, true, nil
}

func (c *pstProps) has(id uint16) bool {
	_, ok := c.props[id]
	return ok
}

// str returns a string property, decoding 8-bit strings with code page cp
// (0: guess).
func (c *pstProps) str(id uint16, cp int) string {
	typ, b, ok, _ := c.raw(id)
	if !ok {
		return ""
	}
	return decodePSTString(typ, b, cp)
}

func (c *pstProps) int32(id uint16) (int32, bool) {
	typ, b, ok, _ := c.raw(id)
	switch {
	case !ok:
		return 0, false
	case typ == ptInt32 || typ == ptError:
		return int32(binary.LittleEndian.Uint32(b)), true
	case typ == ptInt16:
		return int32(int16(binary.LittleEndian.Uint16(b))), true
	}
	return 0, false
}

func (c *pstProps) bool(id uint16) bool {
	typ, b, ok, _ := c.raw(id)
	return ok && typ == ptBoolean && b[0] != 0
}

func (c *pstProps) time(id uint16) time.Time {
	typ, b, ok, _ := c.raw(id)
	if !ok || typ != ptTime {
		return time.Time{}
	}
	return filetime(binary.LittleEndian.Uint64(b))
}

// bin returns a binary property (or the bytes of any variable-size one).
func (c *pstProps) bin(id uint16) ([]byte, bool, error) {
	typ, b, ok, err := c.raw(id)
	if !ok || fixedSize(typ) > 0 {
		return nil, false, err
	}
	return b, true, nil
}

// filetime converts a FILETIME (100 ns units since 1601) to a UTC time;
// zero and out-of-range values are the zero time.
func filetime(ft uint64) time.Time {
	const unixEpoch = 116444736000000000 // 1970-01-01 in FILETIME units
	if ft == 0 || ft > math.MaxInt64 {
		return time.Time{}
	}
	d := int64(ft) - unixEpoch
	return time.Unix(d/1e7, (d%1e7)*100).UTC()
}

// decodePSTString decodes a string property value to UTF-8.
func decodePSTString(typ uint16, b []byte, cp int) string {
	switch typ {
	case ptUnicode:
		return decodeUTF16(b)
	case ptString8, ptBinary:
		for len(b) > 0 && b[len(b)-1] == 0 {
			b = b[:len(b)-1]
		}
		return decodeCodepage(b, cp)
	}
	return ""
}

// decodeUTF16 decodes UTF-16LE, dropping trailing NULs; unpaired
// surrogates become U+FFFD.
func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	ascii := true
	for _, c := range u {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		s := make([]byte, len(u))
		for i, c := range u {
			s[i] = byte(c)
		}
		return string(s)
	}
	out := make([]byte, 0, len(u)*2)
	for _, r := range utf16.Decode(u) {
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// pstTable is a table context ([MS-PST] 2.3.4): columns and rows.
type pstTable struct {
	h    *pstHeap
	cols []tcCol
	rows [][]byte
	ceb  int // offset of the cell existence bitmap in a row
}

type tcCol struct {
	id, typ uint16
	off     int
	size    int
	bit     int
}

// openTable reads the table context of n.
func (p *pstFile) openTable(n pstNode) (*pstTable, error) {
	h, err := p.openHeap(n)
	if err != nil {
		return nil, err
	}
	if h.clientSig != 0x7C {
		return nil, corrupt("node %#x is not a table context (signature %#x)", n.nid, h.clientSig)
	}
	info, err := h.alloc(h.userRoot)
	if err != nil {
		return nil, err
	}
	if len(info) < 22 || info[0] != 0x7C {
		return nil, corrupt("node %#x: bad table header", n.nid)
	}
	ncols := int(info[1])
	if 22+8*ncols > len(info) {
		return nil, corrupt("node %#x: %d columns in a %d-byte table header", n.nid, ncols, len(info))
	}
	t := &pstTable{h: h}
	t.ceb = int(binary.LittleEndian.Uint16(info[2+2*2:]))
	rowSize := int(binary.LittleEndian.Uint16(info[2+3*2:]))
	if rowSize <= 0 || t.ceb+(ncols+7)/8 > rowSize {
		return nil, corrupt("node %#x: row size %d, bitmap at %d for %d columns", n.nid, rowSize, t.ceb, ncols)
	}
	for i := range ncols {
		d := info[22+8*i:]
		c := tcCol{
			typ:  binary.LittleEndian.Uint16(d),
			id:   binary.LittleEndian.Uint16(d[2:]),
			off:  int(binary.LittleEndian.Uint16(d[4:])),
			size: int(d[6]),
			bit:  int(d[7]),
		}
		if c.off+c.size > rowSize || c.bit/8 >= rowSize-t.ceb {
			return nil, corrupt("node %#x: column %#04x outside the %d-byte row", n.nid, c.id, rowSize)
		}
		t.cols = append(t.cols, c)
	}
	rowsID := binary.LittleEndian.Uint32(info[14:])
	var blocks [][]byte
	switch {
	case rowsID == 0:
	case rowsID&0x1F == nidTypeHID:
		b, err := h.alloc(rowsID)
		if err != nil {
			return nil, err
		}
		blocks = [][]byte{b}
	default:
		sn, ok := h.subs[rowsID]
		if !ok {
			return nil, corrupt("node %#x: row matrix subnode %#x not found", n.nid, rowsID)
		}
		if blocks, err = p.dataTree(sn.data); err != nil {
			return nil, err
		}
	}
	// Rows never span blocks: each block holds whole rows from its start.
	for _, b := range blocks {
		for i := 0; i+rowSize <= len(b); i += rowSize {
			t.rows = append(t.rows, b[i:i+rowSize])
		}
	}
	return t, nil
}

// col returns the index of column id, or -1.
func (t *pstTable) col(id uint16) int {
	return slices.IndexFunc(t.cols, func(c tcCol) bool { return c.id == id })
}

// raw returns the type and bytes of column id in row i.
func (t *pstTable) raw(i int, id uint16) (uint16, []byte, bool) {
	k := t.col(id)
	if k < 0 {
		return 0, nil, false
	}
	c, row := t.cols[k], t.rows[i]
	if row[t.ceb+c.bit/8]&(0x80>>(c.bit%8)) == 0 {
		return c.typ, nil, false
	}
	v := row[c.off : c.off+c.size]
	if n := fixedSize(c.typ); n > 0 && n <= 8 {
		if len(v) < n {
			return c.typ, nil, false
		}
		return c.typ, v[:n], true
	}
	if len(v) < 4 {
		return c.typ, nil, false
	}
	b, err := t.h.hnid(binary.LittleEndian.Uint32(v))
	if err != nil {
		return c.typ, nil, false
	}
	return c.typ, b, true
}

func (t *pstTable) int32(i int, id uint16) (int32, bool) {
	typ, b, ok := t.raw(i, id)
	if !ok || (typ != ptInt32 && typ != ptError) {
		return 0, false
	}
	return int32(binary.LittleEndian.Uint32(b)), true
}

func (t *pstTable) str(i int, id uint16, cp int) (string, bool) {
	typ, b, ok := t.raw(i, id)
	if !ok {
		return "", false
	}
	return decodePSTString(typ, b, cp), true
}
