package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Record encoding.
//
// Message and Upload records were JSON until format 1; decoding them was
// most of the time of a cold count or a SELECT of a large folder (2 µs a
// message). Records written now are binary: a format byte (recBinary1),
// then the fields in a fixed order as varints and length-prefixed bytes.
// JSON records always begin with '{', so both are read; a record is
// rewritten in binary the next time it is written. Fields added later go
// at the end: a decoder ignores what follows the fields it knows.

const recBinary1 = 0x01

// Message bits.
const (
	bitHidden = 1 << iota
	bitSeen
	bitCopy
)

// errRecord is wrapped by every decoding error of a binary record.
var errRecord = errors.New("damaged record")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// encodeMessage returns m's record.
func encodeMessage(m *Message) []byte {
	b := make([]byte, 0, 64+len(m.Path)+len(m.MsgID)+len(m.UIDL)+len(m.Ext)+len(m.FP)+len(m.HFP))
	b = append(b, recBinary1)
	b = binary.AppendUvarint(b, uint64(m.UID))
	b = append(b, m.Src)
	b = appendStr(b, m.Path)
	b = binary.AppendVarint(b, m.Offset)
	b = binary.AppendVarint(b, m.Length)
	b = binary.AppendUvarint(b, uint64(m.CRC))
	b = binary.AppendVarint(b, m.Size)
	b = binary.AppendVarint(b, m.Date)
	b = binary.AppendVarint(b, int64(m.DateZone))
	b = appendStrs(b, m.Flags)
	b = appendStrs(b, m.ArchFlags)
	var bits byte
	if m.Hidden {
		bits |= bitHidden
	}
	if m.Seen {
		bits |= bitSeen
	}
	if m.Copy {
		bits |= bitCopy
	}
	b = append(b, bits)
	b = appendBytes(b, m.FP)
	b = appendBytes(b, m.HFP)
	b = appendStr(b, m.MsgID)
	b = appendStr(b, m.UIDL)
	b = appendStr(b, m.Ext)
	return b
}

// reader reads a binary record; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s cut short or out of range", errRecord, what)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u32(what string) uint32 {
	v := r.uvarint(what)
	if v > math.MaxUint32 {
		r.fail(what)
		return 0
	}
	return uint32(v)
}

func (r *reader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// raw returns the next length-prefixed field, aliasing the record.
func (r *reader) raw(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) str(what string) string { return string(r.raw(what)) }

// bytes copies (bbolt's memory is gone when the transaction ends); an
// empty field stays nil, as JSON's omitempty left it.
func (r *reader) bytes(what string) []byte {
	s := r.raw(what)
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}

func (r *reader) strs(what string) []string {
	n := r.uvarint(what)
	if r.err != nil || n == 0 {
		return nil
	}
	// Every string takes at least its length byte.
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str(what)
	}
	if r.err != nil {
		return nil
	}
	return out
}

// decodeMessage reads a message record of either encoding into m.
func decodeMessage(v []byte, m *Message) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: empty", errRecord)
	}
	if v[0] != recBinary1 {
		*m = Message{}
		if err := json.Unmarshal(v, m); err != nil {
			return err
		}
		m.Path = decodePath(m.Path)
		return nil
	}
	r := reader{b: v[1:]}
	*m = Message{}
	m.UID = r.u32("uid")
	m.Src = r.byte1("source")
	m.Path = r.str("path")
	m.Offset = r.varint("offset")
	m.Length = r.varint("length")
	m.CRC = r.u32("crc")
	m.Size = r.varint("size")
	m.Date = r.varint("date")
	zone := r.varint("zone")
	if zone < math.MinInt32 || zone > math.MaxInt32 {
		r.fail("zone")
	}
	m.DateZone = int32(zone)
	m.Flags = r.strs("flags")
	m.ArchFlags = r.strs("archive flags")
	bits := r.byte1("bits")
	m.Hidden, m.Seen, m.Copy = bits&bitHidden != 0, bits&bitSeen != 0, bits&bitCopy != 0
	m.FP = r.bytes("fingerprint")
	m.HFP = r.bytes("header fingerprint")
	m.MsgID = r.str("message-id")
	m.UIDL = r.str("uidl")
	m.Ext = r.str("archive id")
	return r.err
}

// encodeUpload returns up's record.
func encodeUpload(up *Upload) []byte {
	b := make([]byte, 0, 24+len(up.Folder))
	b = append(b, recBinary1)
	b = appendStr(b, up.Folder)
	b = binary.AppendUvarint(b, uint64(up.UIDValidity))
	b = binary.AppendUvarint(b, uint64(up.UID))
	b = binary.AppendVarint(b, up.At)
	return b
}

// decodeUpload reads an upload record of either encoding into up.
func decodeUpload(v []byte, up *Upload) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: empty", errRecord)
	}
	if v[0] != recBinary1 {
		*up = Upload{}
		return json.Unmarshal(v, up)
	}
	r := reader{b: v[1:]}
	*up = Upload{}
	up.Folder = r.str("folder")
	up.UIDValidity = r.u32("uidvalidity")
	up.UID = r.u32("uid")
	up.At = r.varint("time")
	return r.err
}
