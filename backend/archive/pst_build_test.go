package archive

import (
	"encoding/binary"
	"slices"
	"unicode/utf16"
)

// A minimal PST writer for tests ([MS-PST]): enough NDB (header, blocks,
// data trees, subnode trees, one- or two-level B-trees) and LTP (heaps,
// BTHs, property and table contexts) to make files that Outlook would
// write, in the ANSI or Unicode format, optionally with compressible
// encryption. CRCs and allocation maps are left zero (no reader here
// checks them).

type tProp struct {
	id, typ uint16
	val     []byte
}

func pInt32(id uint16, v int32) tProp {
	b := binary.LittleEndian.AppendUint32(nil, uint32(v))
	return tProp{id, ptInt32, b}
}

func pBool(id uint16, v bool) tProp {
	b := []byte{0}
	if v {
		b[0] = 1
	}
	return tProp{id, ptBoolean, b}
}

func pTime(id uint16, unixSec int64) tProp {
	ft := uint64(unixSec)*1e7 + 116444736000000000
	return tProp{id, ptTime, binary.LittleEndian.AppendUint64(nil, ft)}
}

func pBin(id uint16, b []byte) tProp { return tProp{id, ptBinary, b} }

// pUni is a Unicode string property.
func pUni(id uint16, s string) tProp {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return tProp{id, ptUnicode, b}
}

// pStr8 is an 8-bit string property holding b as it is.
func pStr8(id uint16, b []byte) tProp { return tProp{id, ptString8, b} }

func pMultiBin(id uint16, vals ...[]byte) tProp {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(vals)))
	off := 4 + 4*len(vals)
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, uint32(off))
		off += len(v)
	}
	for _, v := range vals {
		b = append(b, v...)
	}
	return tProp{id, ptMultiBin, b}
}

func entryID(nid uint32) []byte {
	b := make([]byte, 24)
	copy(b[4:], "popbridge-test-!")
	binary.LittleEndian.PutUint32(b[20:], nid)
	return b
}

// tSub is a subnode: its data and its own subnodes.
type tSub struct {
	nid    uint32
	data   []byte
	blocks [][]byte // data already cut into blocks (a table's rows)
	subs   []tSub
}

// pstBuilder accumulates nodes and writes the file.
type pstBuilder struct {
	unicode bool
	permute bool
	nextBID uint64
	nextSub uint32
	blocks  []tBlock
	nodes   []tNBT
}

type tBlock struct {
	bid  uint64
	data []byte
}

type tNBT struct {
	nid       uint32
	data, sub uint64
	parent    uint32
}

func newPSTBuilder(unicode, permute bool) *pstBuilder {
	return &pstBuilder{unicode: unicode, permute: permute, nextBID: 4, nextSub: 1}
}

func (b *pstBuilder) maxBlock() int {
	if b.unicode {
		return pstBlockSizeUnicode
	}
	return pstBlockSizeANSI
}

func (b *pstBuilder) bid(internal bool) uint64 {
	id := b.nextBID
	b.nextBID += 4
	if internal {
		id |= 2
	}
	return id
}

// data stores data as a data tree and returns its root BID (XBLOCK or
// XXBLOCK when it does not fit one block). Empty data is still one block.
func (b *pstBuilder) data(data []byte) uint64 {
	return b.dataBlocks(chunk(data, b.maxBlock()))
}

// dataBlocks stores the given blocks as one data tree.
func (b *pstBuilder) dataBlocks(chunks [][]byte) uint64 {
	if len(chunks) == 1 {
		id := b.bid(false)
		b.blocks = append(b.blocks, tBlock{id, chunks[0]})
		return id
	}
	var ids []uint64
	total := 0
	for _, c := range chunks {
		id := b.bid(false)
		b.blocks = append(b.blocks, tBlock{id, c})
		ids = append(ids, id)
		total += len(c)
	}
	w := 4
	if b.unicode {
		w = 8
	}
	per := (b.maxBlock() - 8) / w
	xblock := func(level byte, ids []uint64, total int) uint64 {
		x := []byte{0x01, level, 0, 0, 0, 0, 0, 0}
		binary.LittleEndian.PutUint16(x[2:], uint16(len(ids)))
		binary.LittleEndian.PutUint32(x[4:], uint32(total))
		for _, id := range ids {
			x = b.appendBID(x, id)
		}
		id := b.bid(true)
		b.blocks = append(b.blocks, tBlock{id, x})
		return id
	}
	if len(ids) <= per {
		return xblock(1, ids, total)
	}
	var xs []uint64
	for i := 0; i < len(ids); i += per {
		j := min(i+per, len(ids))
		sub := 0
		for _, c := range chunks[i:j] {
			sub += len(c)
		}
		xs = append(xs, xblock(1, ids[i:j], sub))
	}
	return xblock(2, xs, total)
}

func (b *pstBuilder) appendBID(x []byte, id uint64) []byte {
	if b.unicode {
		return binary.LittleEndian.AppendUint64(x, id)
	}
	return binary.LittleEndian.AppendUint32(x, uint32(id))
}

func chunk(data []byte, n int) [][]byte {
	var out [][]byte
	for len(data) > n {
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

// subnodes stores a subnode tree (an SLBLOCK, or an SIBLOCK of SLBLOCKs
// when split is set) and returns its BID; 0 for none.
func (b *pstBuilder) subnodes(subs []tSub, split bool) uint64 {
	if len(subs) == 0 {
		return 0
	}
	subs = slices.Clone(subs)
	slices.SortFunc(subs, func(x, y tSub) int { return int(x.nid) - int(y.nid) })
	type ent struct {
		nid       uint32
		data, sub uint64
	}
	var ents []ent
	for _, s := range subs {
		var data uint64
		if s.blocks != nil {
			data = b.dataBlocks(s.blocks)
		} else {
			data = b.data(s.data)
		}
		ents = append(ents, ent{s.nid, data, b.subnodes(s.subs, false)})
	}
	sl := func(ents []ent) uint64 {
		x := []byte{0x02, 0x00, 0, 0}
		binary.LittleEndian.PutUint16(x[2:], uint16(len(ents)))
		if b.unicode {
			x = append(x, 0, 0, 0, 0)
		}
		for _, e := range ents {
			x = b.appendBID(x, uint64(e.nid))
			x = b.appendBID(x, e.data)
			x = b.appendBID(x, e.sub)
		}
		id := b.bid(true)
		b.blocks = append(b.blocks, tBlock{id, x})
		return id
	}
	if !split || len(ents) < 2 {
		return sl(ents)
	}
	half := len(ents) / 2
	parts := [][]ent{ents[:half], ents[half:]}
	x := []byte{0x02, 0x01, 2, 0}
	if b.unicode {
		x = append(x, 0, 0, 0, 0)
	}
	for _, p := range parts {
		x = b.appendBID(x, uint64(p[0].nid))
		x = b.appendBID(x, sl(p))
	}
	id := b.bid(true)
	b.blocks = append(b.blocks, tBlock{id, x})
	return id
}

// node adds a node (a heap) to the NBT.
func (b *pstBuilder) node(nid uint32, blocks [][]byte, subs []tSub, parent uint32) {
	b.nodes = append(b.nodes, tNBT{nid: nid, data: b.dataBlocks(blocks), sub: b.subnodes(subs, len(subs) > 3), parent: parent})
}

// newSubNID returns a fresh NID of the given type for a subnode.
func (b *pstBuilder) newSubNID(typ uint32) uint32 {
	n := b.nextSub<<5 | typ
	b.nextSub++
	return n
}

// hnBuilder builds a heap-on-node, starting a new block when one is full.
type hnBuilder struct {
	max    int        // block size
	blocks [][][]byte // allocations per block
	used   []int
}

func (h *hnBuilder) hdrSize(block int) int {
	switch {
	case block == 0:
		return 12 // HNHDR
	case block%128 == 8:
		return 66 // HNBITMAPHDR
	}
	return 2 // HNPAGEHDR
}

func (h *hnBuilder) add(b []byte) uint32 {
	if h.max == 0 {
		h.max = pstBlockSizeANSI - 4
	}
	n := len(h.blocks) - 1
	if n < 0 || h.hdrSize(n)+h.used[n]+len(b)+1+4+2*(len(h.blocks[n])+2) > h.max {
		h.blocks = append(h.blocks, nil)
		h.used = append(h.used, 0)
		n++
	}
	h.blocks[n] = append(h.blocks[n], b)
	h.used[n] += len(b)
	return uint32(n)<<16 | uint32(len(h.blocks[n]))<<5
}

// bytes returns the heap's blocks.
func (h *hnBuilder) bytes(sig byte, root uint32) [][]byte {
	if len(h.blocks) == 0 {
		h.add(nil)
	}
	var out [][]byte
	for bi, allocs := range h.blocks {
		blk := make([]byte, h.hdrSize(bi))
		if bi == 0 {
			blk[2], blk[3] = 0xEC, sig
			binary.LittleEndian.PutUint32(blk[4:], root)
		}
		offs := []int{len(blk)}
		for _, a := range allocs {
			blk = append(blk, a...)
			offs = append(offs, len(blk))
		}
		if len(blk)%2 == 1 {
			blk = append(blk, 0)
		}
		binary.LittleEndian.PutUint16(blk, uint16(len(blk)))
		blk = binary.LittleEndian.AppendUint16(blk, uint16(len(allocs)))
		blk = binary.LittleEndian.AppendUint16(blk, 0)
		for _, o := range offs {
			blk = binary.LittleEndian.AppendUint16(blk, uint16(o))
		}
		out = append(out, blk)
	}
	return out
}

// bigValue is the size above which a value goes to a subnode.
const bigValue = 256

// pc builds a property context; large values become subnodes, returned
// with the data.
func (b *pstBuilder) pc(props []tProp) ([][]byte, []tSub) {
	props = slices.Clone(props)
	slices.SortFunc(props, func(x, y tProp) int { return int(x.id) - int(y.id) })
	h := &hnBuilder{}
	var subs []tSub
	var recs []byte
	for _, p := range props {
		recs = binary.LittleEndian.AppendUint16(recs, p.id)
		recs = binary.LittleEndian.AppendUint16(recs, p.typ)
		var v uint32
		switch n := fixedSize(p.typ); {
		case n > 0 && n <= 4:
			var buf [4]byte
			copy(buf[:], p.val)
			v = binary.LittleEndian.Uint32(buf[:])
		case len(p.val) > bigValue:
			nid := b.newSubNID(0x1F)
			subs = append(subs, tSub{nid: nid, data: p.val})
			v = nid
		default:
			v = h.add(p.val)
		}
		recs = binary.LittleEndian.AppendUint32(recs, v)
	}
	recHID := h.add(recs)
	hdr := []byte{0xB5, 2, 6, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(hdr[4:], recHID)
	root := h.add(hdr)
	return h.bytes(0xBC, root), subs
}

// tCol is a table column.
type tCol struct {
	id, typ uint16
}

// tc builds a table context; rows map column IDs to values (absent =
// not present). cols[0] must be 0x67F2 (the row ID).
func (b *pstBuilder) tc(cols []tCol, rows []map[uint16][]byte) ([][]byte, []tSub) {
	h := &hnBuilder{}
	var subs []tSub
	size := func(c tCol) int {
		if n := fixedSize(c.typ); n > 0 && n <= 8 {
			return n
		}
		return 4 // an HNID
	}
	offs := make([]int, len(cols))
	off := 0
	var rgib [4]int
	for gi, group := range [][2]int{{4, 8}, {2, 2}, {1, 1}} {
		for i, c := range cols {
			if s := size(c); s >= group[0] && s <= group[1] {
				offs[i] = off
				off += s
			}
		}
		rgib[gi] = off
	}
	rowSize := off + (len(cols)+7)/8
	rgib[3] = rowSize
	var matrix []byte
	for _, r := range rows {
		row := make([]byte, rowSize)
		for i, c := range cols {
			v, ok := r[c.id]
			if !ok {
				continue
			}
			row[rgib[2]+i/8] |= 0x80 >> (i % 8)
			if n := fixedSize(c.typ); n > 0 && n <= 8 {
				copy(row[offs[i]:], v)
				continue
			}
			var hnid uint32
			if len(v) > bigValue {
				hnid = b.newSubNID(0x1F)
				subs = append(subs, tSub{nid: hnid, data: v})
			} else {
				hnid = h.add(v)
			}
			binary.LittleEndian.PutUint32(row[offs[i]:], hnid)
		}
		matrix = append(matrix, row...)
	}
	// The row index BTH: row ID to row number.
	var idx []byte
	for i, r := range rows {
		idx = append(idx, r[prLTPRowID]...)
		if b.unicode {
			idx = binary.LittleEndian.AppendUint32(idx, uint32(i))
		} else {
			idx = binary.LittleEndian.AppendUint16(idx, uint16(i))
		}
	}
	ent := byte(2)
	if b.unicode {
		ent = 4
	}
	bth := []byte{0xB5, 4, ent, 0, 0, 0, 0, 0}
	if len(idx) > 0 {
		binary.LittleEndian.PutUint32(bth[4:], h.add(idx))
	}
	bthHID := h.add(bth)
	var rowsHNID uint32
	switch {
	case len(matrix) == 0:
	case len(matrix) <= 1024:
		rowsHNID = h.add(matrix)
	default:
		// Rows never span blocks: each block but the last is padded.
		per := b.maxBlock() / rowSize
		var blocks [][]byte
		for i := 0; i < len(rows); i += per {
			j := min(i+per, len(rows))
			blk := slices.Clone(matrix[i*rowSize : j*rowSize])
			if j < len(rows) {
				blk = append(blk, make([]byte, b.maxBlock()-len(blk))...)
			}
			blocks = append(blocks, blk)
		}
		rowsHNID = b.newSubNID(0x1F)
		subs = append(subs, tSub{nid: rowsHNID, blocks: blocks})
	}
	info := []byte{0x7C, byte(len(cols))}
	for _, v := range rgib {
		info = binary.LittleEndian.AppendUint16(info, uint16(v))
	}
	info = binary.LittleEndian.AppendUint32(info, bthHID)
	info = binary.LittleEndian.AppendUint32(info, rowsHNID)
	info = binary.LittleEndian.AppendUint32(info, 0)
	for i, c := range cols {
		info = binary.LittleEndian.AppendUint32(info, uint32(c.id)<<16|uint32(c.typ))
		info = binary.LittleEndian.AppendUint16(info, uint16(offs[i]))
		info = append(info, byte(size(c)), byte(i))
	}
	root := h.add(info)
	return h.bytes(0x7C, root), subs
}

// bytes writes the file.
func (b *pstBuilder) bytes() []byte {
	hdrSize := 512
	if b.unicode {
		hdrSize = 564
	}
	out := make([]byte, 1024)
	trailer := 12
	if b.unicode {
		trailer = 16
	}
	type bbt struct {
		bid, ib uint64
		cb      int
	}
	var bbts []bbt
	for _, blk := range b.blocks {
		data := slices.Clone(blk.data)
		if b.permute && blk.bid&2 == 0 {
			for i, c := range data {
				data[i] = permuteEncode[c]
			}
		}
		ib := uint64(len(out))
		total := (len(data) + trailer + 63) / 64 * 64
		buf := make([]byte, total)
		copy(buf, data)
		t := buf[total-trailer:]
		binary.LittleEndian.PutUint16(t, uint16(len(data)))
		if b.unicode {
			binary.LittleEndian.PutUint64(t[8:], blk.bid)
		} else {
			binary.LittleEndian.PutUint32(t[4:], uint32(blk.bid))
		}
		out = append(out, buf...)
		bbts = append(bbts, bbt{blk.bid, ib, len(data)})
	}
	slices.SortFunc(bbts, func(x, y bbt) int { return int(x.bid) - int(y.bid) })
	nodes := slices.Clone(b.nodes)
	slices.SortFunc(nodes, func(x, y tNBT) int { return int(x.nid) - int(y.nid) })

	nextPage := uint64(0x10000)
	// page writes one B-tree page (entries of size esz) and returns its BREF.
	page := func(ptype byte, level int, esz int, entries [][]byte) (uint64, uint64) {
		for len(out)%512 != 0 {
			out = append(out, 0)
		}
		p := make([]byte, 512)
		for i, e := range entries {
			copy(p[i*esz:], e)
		}
		meta := 496
		if b.unicode {
			meta = 488
		}
		p[meta] = byte(len(entries))
		p[meta+1] = byte((meta) / esz)
		p[meta+2] = byte(esz)
		p[meta+3] = byte(level)
		pt := 500
		if b.unicode {
			pt = 496
		}
		p[pt], p[pt+1] = ptype, ptype
		bid := nextPage
		nextPage += 4
		if b.unicode {
			binary.LittleEndian.PutUint64(p[pt+8:], bid)
		} else {
			binary.LittleEndian.PutUint32(p[pt+4:], uint32(bid))
		}
		ib := uint64(len(out))
		out = append(out, p...)
		return bid, ib
	}
	// tree writes leaf entries (key, bytes) as a B-tree and returns the
	// root's BREF.
	tree := func(ptype byte, keys []uint64, leaves [][]byte) (uint64, uint64) {
		esz := len(leaves[0])
		meta := 496
		bsz := 12
		if b.unicode {
			meta, bsz = 488, 24
		}
		per := meta / esz
		type ref struct{ key, bid, ib uint64 }
		var level []ref
		for i := 0; i < len(leaves); i += per {
			j := min(i+per, len(leaves))
			bid, ib := page(ptype, 0, esz, leaves[i:j])
			level = append(level, ref{keys[i], bid, ib})
		}
		for lv := 1; len(level) > 1; lv++ {
			per := meta / bsz
			var next []ref
			for i := 0; i < len(level); i += per {
				j := min(i+per, len(level))
				var ents [][]byte
				for _, r := range level[i:j] {
					var e []byte
					e = b.appendBID(e, r.key)
					e = b.appendBID(e, r.bid)
					e = b.appendBID(e, r.ib)
					ents = append(ents, e)
				}
				bid, ib := page(ptype, lv, bsz, ents)
				next = append(next, ref{level[i].key, bid, ib})
			}
			level = next
		}
		return level[0].bid, level[0].ib
	}
	var keys []uint64
	var leaves [][]byte
	for _, e := range bbts {
		var x []byte
		x = b.appendBID(x, e.bid)
		x = b.appendBID(x, e.ib)
		x = binary.LittleEndian.AppendUint16(x, uint16(e.cb))
		x = binary.LittleEndian.AppendUint16(x, 2)
		if b.unicode {
			x = append(x, 0, 0, 0, 0)
		}
		keys = append(keys, e.bid)
		leaves = append(leaves, x)
	}
	bbtBID, bbtIB := tree(0x80, keys, leaves)
	keys, leaves = nil, nil
	for _, n := range nodes {
		var x []byte
		x = b.appendBID(x, uint64(n.nid))
		x = b.appendBID(x, n.data)
		x = b.appendBID(x, n.sub)
		x = binary.LittleEndian.AppendUint32(x, n.parent)
		if b.unicode {
			x = append(x, 0, 0, 0, 0)
		}
		keys = append(keys, uint64(n.nid))
		leaves = append(leaves, x)
	}
	nbtBID, nbtIB := tree(0x81, keys, leaves)

	h := out[:hdrSize]
	copy(h, "!BDN")
	copy(h[8:], "SM")
	h[14], h[15] = 1, 1
	crypt := byte(0)
	if b.permute {
		crypt = 1
	}
	if b.unicode {
		binary.LittleEndian.PutUint16(h[10:], 23)
		binary.LittleEndian.PutUint16(h[12:], 19)
		binary.LittleEndian.PutUint64(h[32:], nextPage)
		binary.LittleEndian.PutUint64(h[184:], uint64(len(out)))
		binary.LittleEndian.PutUint64(h[216:], nbtBID)
		binary.LittleEndian.PutUint64(h[224:], nbtIB)
		binary.LittleEndian.PutUint64(h[232:], bbtBID)
		binary.LittleEndian.PutUint64(h[240:], bbtIB)
		h[248] = 2
		h[512], h[513] = 0x80, crypt
		binary.LittleEndian.PutUint64(h[516:], b.nextBID)
	} else {
		binary.LittleEndian.PutUint16(h[10:], 14)
		binary.LittleEndian.PutUint16(h[12:], 19)
		binary.LittleEndian.PutUint32(h[24:], uint32(b.nextBID))
		binary.LittleEndian.PutUint32(h[28:], uint32(nextPage))
		binary.LittleEndian.PutUint32(h[168:], uint32(len(out)))
		binary.LittleEndian.PutUint32(h[184:], uint32(nbtBID))
		binary.LittleEndian.PutUint32(h[188:], uint32(nbtIB))
		binary.LittleEndian.PutUint32(h[192:], uint32(bbtBID))
		binary.LittleEndian.PutUint32(h[196:], uint32(bbtIB))
		h[200] = 2
		h[460], h[461] = 0x80, crypt
	}
	return out
}

// permuteEncode is the inverse of permuteDecode.
var permuteEncode = func() (t [256]byte) {
	for i, c := range permuteDecode {
		t[c] = byte(i)
	}
	return t
}()

// The messaging layer.

type tFolder struct {
	nid      uint32
	name     tProp // PR_DISPLAY_NAME
	class    string
	hidden   bool
	children []*tFolder
	items    []*tItem
}

type tItem struct {
	nid         uint32
	class       string
	props       []tProp
	recipients  []tRecip
	attachments []*tAttach
}

type tRecip struct {
	kind             int32
	name, addr, smtp string
	addrType         string
}

type tAttach struct {
	props    []tProp
	embedded *tItem
}

// str is a string property in the file's format (Unicode, or 8-bit bytes
// for ASCII text).
func (b *pstBuilder) str(id uint16, s string) tProp {
	if b.unicode {
		return pUni(id, s)
	}
	return pStr8(id, []byte(s))
}

// store writes the message store, root folder and the IPM subtree top
// (0x8022) with the given folders below it.
func (b *pstBuilder) store(storeProps []tProp, top []*tFolder) {
	props := append([]tProp{
		b.str(prDisplayName, "Test PST"),
		pBin(prIPMSubtreeEntryID, entryID(0x8022)),
	}, storeProps...)
	data, subs := b.pc(props)
	b.node(nidMessageStore, data, subs, 0)
	root := &tFolder{nid: nidRootFolder, name: b.str(prDisplayName, ""), children: []*tFolder{{nid: 0x8022, name: b.str(prDisplayName, "Top of Personal Folders"), children: top}}}
	b.folder(root, nidRootFolder)
}

func (b *pstBuilder) folder(f *tFolder, parent uint32) {
	props := []tProp{f.name, pInt32(prContentCount, int32(len(f.items))), pBool(0x360A, len(f.children) > 0)}
	if f.class != "" {
		props = append(props, b.str(prContainerClass, f.class))
	}
	if f.hidden {
		props = append(props, pBool(prAttrHidden, true))
	}
	data, subs := b.pc(props)
	b.node(f.nid, data, subs, parent)
	strType := uint16(ptString8)
	if b.unicode {
		strType = ptUnicode
	}
	var rows []map[uint16][]byte
	for _, c := range f.children {
		rows = append(rows, map[uint16][]byte{
			prLTPRowID:     binary.LittleEndian.AppendUint32(nil, c.nid),
			prDisplayName:  c.name.val,
			prContentCount: binary.LittleEndian.AppendUint32(nil, uint32(len(c.items))),
		})
	}
	data, subs = b.tc([]tCol{{prLTPRowID, ptInt32}, {prDisplayName, strType}, {prContentCount, ptInt32}, {0x360A, ptBoolean}}, rows)
	b.node(f.nid&^0x1F|nidTypeHierarchyTable, data, subs, f.nid)
	rows = nil
	for _, it := range f.items {
		rows = append(rows, map[uint16][]byte{
			prLTPRowID:     binary.LittleEndian.AppendUint32(nil, it.nid),
			prMessageClass: b.str(0, it.class).val,
		})
	}
	data, subs = b.tc([]tCol{{prLTPRowID, ptInt32}, {prMessageClass, strType}, {prMessageFlags, ptInt32}}, rows)
	b.node(f.nid&^0x1F|nidTypeContentsTable, data, subs, f.nid)
	for _, it := range f.items {
		data, subs := b.message(it)
		b.node(it.nid, data, subs, f.nid)
	}
	for _, c := range f.children {
		b.folder(c, f.nid)
	}
}

// message returns the property context of an item and its subnodes.
func (b *pstBuilder) message(it *tItem) ([][]byte, []tSub) {
	props := append([]tProp{b.str(prMessageClass, it.class)}, it.props...)
	data, subs := b.pc(props)
	strType := uint16(ptString8)
	if b.unicode {
		strType = ptUnicode
	}
	if len(it.recipients) > 0 {
		var rows []map[uint16][]byte
		for i, r := range it.recipients {
			row := map[uint16][]byte{
				prLTPRowID:      binary.LittleEndian.AppendUint32(nil, uint32(i)),
				prRecipientType: binary.LittleEndian.AppendUint32(nil, uint32(r.kind)),
				prDisplayName:   b.str(0, r.name).val,
				prEmailAddress:  b.str(0, r.addr).val,
				prAddrType:      b.str(0, r.addrType).val,
			}
			if r.smtp != "" {
				row[prSMTPAddress] = b.str(0, r.smtp).val
			}
			rows = append(rows, row)
		}
		td, ts := b.tc([]tCol{{prLTPRowID, ptInt32}, {prRecipientType, ptInt32}, {prDisplayName, strType}, {prEmailAddress, strType}, {prAddrType, strType}, {prSMTPAddress, strType}}, rows)
		subs = append(subs, tSub{nid: nidRecipientTable, blocks: td, subs: ts})
	}
	if len(it.attachments) > 0 {
		var rows []map[uint16][]byte
		for _, a := range it.attachments {
			anid := b.newSubNID(0x05)
			aprops := slices.Clone(a.props)
			var asubs []tSub
			if a.embedded != nil {
				enid := b.newSubNID(0x04)
				ed, es := b.message(a.embedded)
				asubs = append(asubs, tSub{nid: enid, blocks: ed, subs: es})
				obj := binary.LittleEndian.AppendUint32(nil, enid)
				obj = binary.LittleEndian.AppendUint32(obj, uint32(len(slices.Concat(ed...))))
				aprops = append(aprops, tProp{prAttachData, ptObject, obj}, pInt32(prAttachMethod, attachEmbedded))
			}
			ad, as := b.pc(aprops)
			subs = append(subs, tSub{nid: anid, blocks: ad, subs: append(asubs, as...)})
			rows = append(rows, map[uint16][]byte{prLTPRowID: binary.LittleEndian.AppendUint32(nil, anid)})
		}
		td, ts := b.tc([]tCol{{prLTPRowID, ptInt32}, {prAttachMethod, ptInt32}}, rows)
		subs = append(subs, tSub{nid: nidAttachmentTable, blocks: td, subs: ts})
	}
	return data, subs
}

// compressRTF encodes rtf in the compressed RTF format with literals only
// (valid, if not small).
func compressRTF(rtf []byte) []byte {
	var body []byte
	for i := 0; i < len(rtf); i += 8 {
		body = append(body, 0)
		body = append(body, rtf[i:min(i+8, len(rtf))]...)
	}
	// The end marker: a reference to the current write position.
	w := (len(rtfPrebuf) + len(rtf)) % 4096
	if len(rtf)%8 == 0 {
		body = append(body, 0x01)
	} else {
		body[len(body)-1-(len(rtf)%8)] |= 1 << (len(rtf) % 8)
	}
	body = append(body, byte(w>>4), byte(w<<4))
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(body)+12))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(rtf)))
	out = binary.LittleEndian.AppendUint32(out, rtfCompressed)
	out = binary.LittleEndian.AppendUint32(out, 0)
	return append(out, body...)
}
