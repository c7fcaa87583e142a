package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	pst "github.com/mooijtech/go-pst/v6/pkg"
)

// The PST reader in layers ([MS-PST]):
//
//   - NDB (nodes and blocks): go-pst reads the file header and loads the
//     node and block B-trees; pstFile looks nodes and blocks up there and
//     reads blocks, data trees (XBLOCK/XXBLOCK) and subnode trees
//     (SLBLOCK/SIBLOCK) itself, with every size, count and depth checked.
//   - LTP (lists, tables, properties): heap-on-node, BTH, property contexts
//     and table contexts, in pst_ltp.go.
//   - Messaging: folders and messages, in pst.go and pst_mime.go.
//
// go-pst's own LTP layer is not used: it reads folder names of ANSI files
// as errors, does not follow SIBLOCK subnode trees or multi-level BTHs,
// prints to stdout on unknown message classes and can recurse without
// bound on a cyclic XXBLOCK. Calls into go-pst run under recover, so a
// corrupt file is an error, never a crash.

// errPSTCorrupt is wrapped by every error that comes from a PST's structure
// (as opposed to I/O errors).
var errPSTCorrupt = errors.New("corrupt pst")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPSTCorrupt, fmt.Sprintf(format, args...))
}

// Limits that keep a corrupt file from making us allocate without bound.
const (
	maxPSTValue    = 1 << 30 // one property value (an attachment), bytes
	maxPSTSubnodes = 1 << 20 // subnodes of one node
)

// NID types ([MS-PST] 2.2.2.1).
const (
	nidTypeHID            = 0x00
	nidTypeNormalFolder   = 0x02
	nidTypeNormalMessage  = 0x04
	nidTypeHierarchyTable = 0x0D
	nidTypeContentsTable  = 0x0E
)

// Well-known NIDs.
const (
	nidMessageStore     = 0x21
	nidRootFolder       = 0x122
	nidAttachmentTable  = 0x671 // subnode of a message
	nidRecipientTable   = 0x692 // subnode of a message
	pstBlockSizeUnicode = 8192 - 16
	pstBlockSizeANSI    = 8192 - 12
)

// pstFile is an open PST: go-pst's B-tree indexes over a read-only file.
type pstFile struct {
	path    string
	r       io.ReaderAt
	size    int64 // of the file: no value can be larger
	idx     *pst.File
	unicode bool
	permute bool
	// cp is the code page for 8-bit strings that carry none of their own
	// (ANSI files only); 0 until known, then guessed per string.
	cp int
}

// pstNode is a node of the NBT or a subnode: its data tree and its own
// subnode tree.
type pstNode struct {
	nid  uint32
	data uint64
	sub  uint64
}

// guard runs fn, turning a panic inside go-pst (or here) into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if pstStrictGuard && panickedHere() {
				panic(r)
			}
			err = corrupt("%v", r)
		}
	}()
	return fn()
}

// pstStrictGuard makes guard re-panic for panics raised in this package's
// own code (set by the fuzz tests, which want to see those).
var pstStrictGuard = false

// panickedHere reports whether the innermost frame of the panic being
// recovered is in this package.
func panickedHere() bool {
	pc := make([]uintptr, 32)
	n := runtime.Callers(3, pc)
	frames := runtime.CallersFrames(pc[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			// By file, not function name: go-pst code inlined here is
			// named after our function.
			return strings.Contains(filepath.ToSlash(f.File), "/backend/archive/")
		}
		if !more {
			return false
		}
	}
}

// openPSTFile opens path read-only and loads its B-tree indexes.
func openPSTFile(path string) (*pstFile, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := newPSTFile(path, f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return p, f, nil
}

// newPSTFile reads the header of the PST in r and loads its indexes.
func newPSTFile(path string, r io.ReaderAt) (*pstFile, error) {
	head := make([]byte, 564)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	if n < 4 || string(head[:4]) != "!BDN" {
		return nil, corrupt("not a PST file (no !BDN signature)")
	}
	if n < 512 {
		return nil, corrupt("file too short for a PST header (%d bytes)", n)
	}
	switch string(head[8:10]) {
	case "SM":
	case "SO":
		return nil, corrupt("an Outlook offline cache (.ost), not a .pst; export the mailbox to a .pst in Outlook")
	case "AB":
		return nil, corrupt("a personal address book (.pab), not a mail file")
	default:
		return nil, corrupt("unknown client signature %q", head[8:10])
	}
	p := &pstFile{path: path, r: r, size: readerSize(r)}
	ver := binary.LittleEndian.Uint16(head[10:])
	var format pst.FormatType
	var cryptAt int
	switch {
	case ver == 14 || ver == 15:
		format, cryptAt = pst.FormatTypeANSI, 461
	case ver >= 21 && ver <= 23:
		format, cryptAt, p.unicode = pst.FormatTypeUnicode, 513, true
		if n < 564 {
			return nil, corrupt("file too short for a Unicode PST header (%d bytes)", n)
		}
	case ver == 36:
		return nil, corrupt("4K-page format (Outlook 2013+ .ost) is not supported")
	default:
		return nil, corrupt("unknown format version %d", ver)
	}
	var crypt pst.EncryptionType
	switch head[cryptAt] {
	case 0:
		crypt = pst.EncryptionTypeNone
	case 1:
		crypt, p.permute = pst.EncryptionTypePermute, true
	case 2:
		return nil, corrupt("uses Outlook's \"high\" (cyclic) encryption, which popbridge cannot read; in Outlook, export the folders to a new .pst with the default settings")
	default:
		return nil, corrupt("unknown encryption method %d", head[cryptAt])
	}
	var nbt, bbt int64
	if p.unicode {
		nbt, bbt = int64(binary.LittleEndian.Uint64(head[224:])), int64(binary.LittleEndian.Uint64(head[240:]))
	} else {
		nbt, bbt = int64(binary.LittleEndian.Uint32(head[188:])), int64(binary.LittleEndian.Uint32(head[196:]))
	}
	idx := &pst.File{
		Reader:         pst.NewDefaultReader(r),
		FormatType:     format,
		EncryptionType: crypt,
		NodeBTree:      pst.NewBTreeStoreInMemory(),
		BlockBTree:     pst.NewBTreeStoreInMemory(),
	}
	err = guard(func() error {
		idx.WalkAndCreateBTree(nbt, pst.BTreeTypeNode, idx.NodeBTree)
		idx.WalkAndCreateBTree(bbt, pst.BTreeTypeBlock, idx.BlockBTree)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (in the node and block indexes)", err)
	}
	if idx.NodeBTree.Len() == 0 || idx.BlockBTree.Len() == 0 {
		return nil, corrupt("empty or unreadable node/block index")
	}
	p.idx = idx
	if !p.unicode {
		p.cp = p.probeCodepage()
	}
	return p, nil
}

// probeCodepage returns the code page of the first items of an ANSI file
// that name theirs (0 if none do): folder names and items without a code
// page are in the same one, the Windows code page of the PC that wrote it.
func (p *pstFile) probeCodepage() int {
	scanner, ok := p.idx.NodeBTree.(interface {
		Scan(func(pst.BTreeNode) bool)
	})
	if !ok {
		return 0
	}
	var nids []uint32
	guard(func() error {
		scanner.Scan(func(n pst.BTreeNode) bool {
			if n.NodeLevel == 0 && uint32(n.Identifier)&0x1F == nidTypeNormalMessage {
				nids = append(nids, uint32(n.Identifier))
			}
			return len(nids) < 32
		})
		return nil
	})
	for _, nid := range nids {
		cp := 0
		guard(func() error {
			n, err := p.node(nid)
			if err != nil {
				return err
			}
			props, err := p.openProps(n)
			if err != nil {
				return err
			}
			if c, ok := props.int32(prMessageCodepage); ok && c > 0 {
				cp = int(c)
			} else if c, ok := props.int32(prInternetCPID); ok && c > 0 {
				cp = int(c)
			}
			return nil
		})
		if _, known := codepageEncoding(ansiCodepage(cp)); cp > 0 && known {
			return ansiCodepage(cp)
		}
	}
	return 0
}

// readerSize returns the size of the file behind r.
func readerSize(r io.ReaderAt) int64 {
	switch f := r.(type) {
	case *os.File:
		if fi, err := f.Stat(); err == nil {
			return fi.Size()
		}
	case interface{ Size() int64 }:
		return f.Size()
	}
	return maxPSTValue
}

// node looks nid up in the node B-tree.
func (p *pstFile) node(nid uint32) (pstNode, error) {
	var n pst.BTreeNode
	err := guard(func() error {
		var err error
		n, err = p.idx.GetNodeBTreeNode(pst.Identifier(nid))
		return err
	})
	if err != nil {
		return pstNode{}, corrupt("node %#x not found", nid)
	}
	return pstNode{nid: nid, data: uint64(uint32(n.DataIdentifier)), sub: uint64(uint32(n.LocalDescriptorsIdentifier))}, nil
}

// readBlock returns the bytes of block bid, decoded when the file uses
// compressible encryption and the block is a data block.
func (p *pstFile) readBlock(bid uint64) ([]byte, error) {
	var n pst.BTreeNode
	err := guard(func() error {
		var err error
		n, err = p.idx.GetBlockBTreeNode(pst.Identifier(uint32(bid)))
		return err
	})
	if err != nil {
		return nil, corrupt("block %#x not found", bid)
	}
	if n.FileOffset < 0 {
		return nil, corrupt("block %#x at negative offset", bid)
	}
	b := make([]byte, n.Size)
	if _, err := p.r.ReadAt(b, n.FileOffset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, corrupt("block %#x at offset %d runs past the end of the file", bid, n.FileOffset)
		}
		return nil, err
	}
	if p.permute && bid&2 == 0 {
		for i, c := range b {
			b[i] = permuteDecode[c]
		}
	}
	return b, nil
}

// dataTree returns the data blocks of the data tree rooted at bid, in
// order. A bid of 0 is an empty tree.
func (p *pstFile) dataTree(bid uint64) ([][]byte, error) {
	var blocks [][]byte
	total := 0
	var walk func(bid uint64, depth int) error
	walk = func(bid uint64, depth int) error {
		b, err := p.readBlock(bid)
		if err != nil {
			return err
		}
		if bid&2 == 0 {
			total += len(b)
			if total > maxPSTValue || int64(total) > p.size {
				return corrupt("data tree %#x larger than the file", bid)
			}
			blocks = append(blocks, b)
			return nil
		}
		// XBLOCK (level 1) or XXBLOCK (level 2).
		if len(b) < 8 || b[0] != 0x01 || b[1] == 0 || b[1] > 2 || int(b[1]) != depth {
			return corrupt("block %#x is not a valid XBLOCK at level %d", bid, depth)
		}
		cnt := int(binary.LittleEndian.Uint16(b[2:]))
		size := 4
		if p.unicode {
			size = 8
		}
		if 8+cnt*size > len(b) {
			return corrupt("XBLOCK %#x lists %d blocks in %d bytes", bid, cnt, len(b))
		}
		for i := range cnt {
			child := p.bid(b[8+i*size:])
			if err := walk(child, depth-1); err != nil {
				return err
			}
		}
		return nil
	}
	if bid == 0 {
		return nil, nil
	}
	// The root's level tells the depth: read it once to find out.
	depth := 0
	if bid&2 != 0 {
		b, err := p.readBlock(bid)
		if err != nil {
			return nil, err
		}
		if len(b) < 2 {
			return nil, corrupt("block %#x too short", bid)
		}
		depth = int(b[1])
	}
	if err := walk(bid, depth); err != nil {
		return nil, err
	}
	return blocks, nil
}

// data returns the whole content of the data tree at bid.
func (p *pstFile) data(bid uint64) ([]byte, error) {
	blocks, err := p.dataTree(bid)
	if err != nil || len(blocks) == 1 {
		if len(blocks) == 1 {
			return blocks[0], nil
		}
		return nil, err
	}
	return bytes.Join(blocks, nil), nil
}

func (p *pstFile) bid(b []byte) uint64 {
	if p.unicode {
		return binary.LittleEndian.Uint64(b)
	}
	return uint64(binary.LittleEndian.Uint32(b))
}

// subnodes reads the subnode tree at bid (SLBLOCK, or SIBLOCK of
// SLBLOCKs). A bid of 0 is an empty tree.
func (p *pstFile) subnodes(bid uint64) (map[uint32]pstNode, error) {
	if bid == 0 {
		return nil, nil
	}
	out := make(map[uint32]pstNode)
	seen := make(map[uint64]bool)
	var walk func(bid uint64, depth int) error
	walk = func(bid uint64, depth int) error {
		if seen[bid] || depth > 4 {
			return corrupt("subnode tree loops at block %#x", bid)
		}
		seen[bid] = true
		b, err := p.readBlock(bid)
		if err != nil {
			return err
		}
		if len(b) < 4 || b[0] != 0x02 {
			return corrupt("block %#x is not a subnode block", bid)
		}
		level := b[1]
		cnt := int(binary.LittleEndian.Uint16(b[2:]))
		off, w := 4, 4
		if p.unicode {
			off, w = 8, 8
		}
		ent := 3 * w // SLENTRY: nid, bidData, bidSub
		if level > 0 {
			ent = 2 * w // SIENTRY: nid, bid
		}
		if off+cnt*ent > len(b) {
			return corrupt("subnode block %#x lists %d entries in %d bytes", bid, cnt, len(b))
		}
		for i := range cnt {
			e := b[off+i*ent:]
			nid := uint32(p.bid(e))
			if level > 0 {
				if err := walk(p.bid(e[w:]), depth+1); err != nil {
					return err
				}
				continue
			}
			if len(out) >= maxPSTSubnodes {
				return corrupt("too many subnodes under block %#x", bid)
			}
			out[nid] = pstNode{nid: nid, data: p.bid(e[w:]), sub: p.bid(e[2*w:])}
		}
		return nil
	}
	if err := walk(bid, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// permuteDecode undoes NDB_CRYPT_PERMUTE ([MS-PST] 5.1, mpbbI).
var permuteDecode = [256]byte{
	0x47, 0xf1, 0xb4, 0xe6, 0x0b, 0x6a, 0x72, 0x48, 0x85, 0x4e, 0x9e, 0xeb, 0xe2, 0xf8, 0x94, 0x53,
	0xe0, 0xbb, 0xa0, 0x02, 0xe8, 0x5a, 0x09, 0xab, 0xdb, 0xe3, 0xba, 0xc6, 0x7c, 0xc3, 0x10, 0xdd,
	0x39, 0x05, 0x96, 0x30, 0xf5, 0x37, 0x60, 0x82, 0x8c, 0xc9, 0x13, 0x4a, 0x6b, 0x1d, 0xf3, 0xfb,
	0x8f, 0x26, 0x97, 0xca, 0x91, 0x17, 0x01, 0xc4, 0x32, 0x2d, 0x6e, 0x31, 0x95, 0xff, 0xd9, 0x23,
	0xd1, 0x00, 0x5e, 0x79, 0xdc, 0x44, 0x3b, 0x1a, 0x28, 0xc5, 0x61, 0x57, 0x20, 0x90, 0x3d, 0x83,
	0xb9, 0x43, 0xbe, 0x67, 0xd2, 0x46, 0x42, 0x76, 0xc0, 0x6d, 0x5b, 0x7e, 0xb2, 0x0f, 0x16, 0x29,
	0x3c, 0xa9, 0x03, 0x54, 0x0d, 0xda, 0x5d, 0xdf, 0xf6, 0xb7, 0xc7, 0x62, 0xcd, 0x8d, 0x06, 0xd3,
	0x69, 0x5c, 0x86, 0xd6, 0x14, 0xf7, 0xa5, 0x66, 0x75, 0xac, 0xb1, 0xe9, 0x45, 0x21, 0x70, 0x0c,
	0x87, 0x9f, 0x74, 0xa4, 0x22, 0x4c, 0x6f, 0xbf, 0x1f, 0x56, 0xaa, 0x2e, 0xb3, 0x78, 0x33, 0x50,
	0xb0, 0xa3, 0x92, 0xbc, 0xcf, 0x19, 0x1c, 0xa7, 0x63, 0xcb, 0x1e, 0x4d, 0x3e, 0x4b, 0x1b, 0x9b,
	0x4f, 0xe7, 0xf0, 0xee, 0xad, 0x3a, 0xb5, 0x59, 0x04, 0xea, 0x40, 0x55, 0x25, 0x51, 0xe5, 0x7a,
	0x89, 0x38, 0x68, 0x52, 0x7b, 0xfc, 0x27, 0xae, 0xd7, 0xbd, 0xfa, 0x07, 0xf4, 0xcc, 0x8e, 0x5f,
	0xef, 0x35, 0x9c, 0x84, 0x2b, 0x15, 0xd5, 0x77, 0x34, 0x49, 0xb6, 0x12, 0x0a, 0x7f, 0x71, 0x88,
	0xfd, 0x9d, 0x18, 0x41, 0x7d, 0x93, 0xd8, 0x58, 0x2c, 0xce, 0xfe, 0x24, 0xaf, 0xde, 0xb8, 0x36,
	0xc8, 0xa1, 0x80, 0xa6, 0x99, 0x98, 0xa8, 0x2f, 0x0e, 0x81, 0x65, 0x73, 0xe4, 0xc2, 0xa2, 0x8a,
	0xd4, 0xe1, 0x11, 0xd0, 0x08, 0x8b, 0x2a, 0xf2, 0xed, 0x9a, 0x64, 0x3f, 0xc1, 0x6c, 0xf9, 0xec,
}
