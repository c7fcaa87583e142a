package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/popbridge/popbridge/internal/binrec"
)

// Record encoding.
//
// Message and Upload records were JSON until format 1; decoding them was
// most of the time of a cold count or a SELECT of a large folder (2 µs a
// message). Records written now are binary: a format byte (recBinary1),
// then the fields in a fixed order in the layout of package binrec.
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

// encodeMessage returns m's record.
func encodeMessage(m *Message) []byte {
	e := binrec.Encoder{B: make([]byte, 0, 64+len(m.Path)+len(m.MsgID)+len(m.UIDL)+len(m.Ext)+len(m.FP)+len(m.HFP))}
	e.Byte(recBinary1)
	e.Uvarint(uint64(m.UID))
	e.Byte(m.Src)
	e.Str(m.Path)
	e.Varint(m.Offset)
	e.Varint(m.Length)
	e.Uvarint(uint64(m.CRC))
	e.Varint(m.Size)
	e.Varint(m.Date)
	e.Varint(int64(m.DateZone))
	e.Strs(m.Flags)
	e.Strs(m.ArchFlags)
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
	e.Byte(bits)
	e.Bytes(m.FP)
	e.Bytes(m.HFP)
	e.Str(m.MsgID)
	e.Str(m.UIDL)
	e.Str(m.Ext)
	return e.B
}

// decodeMessage reads a message record of either encoding into m.
func decodeMessage(v []byte, m *Message) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: empty", errRecord)
	}
	*m = Message{}
	if v[0] != recBinary1 {
		if err := json.Unmarshal(v, m); err != nil {
			return err
		}
		m.Path = decodePath(m.Path)
		return nil
	}
	d := binrec.Decoder{B: v[1:]}
	m.UID = d.Uint32()
	m.Src = d.Byte()
	m.Path = d.Str()
	m.Offset = d.Varint()
	m.Length = d.Varint()
	m.CRC = d.Uint32()
	m.Size = d.Varint()
	m.Date = d.Varint()
	m.DateZone = d.Int32()
	m.Flags = d.Strs()
	m.ArchFlags = d.Strs()
	bits := d.Byte()
	m.Hidden, m.Seen, m.Copy = bits&bitHidden != 0, bits&bitSeen != 0, bits&bitCopy != 0
	m.FP = d.Bytes()
	m.HFP = d.Bytes()
	m.MsgID = d.Str()
	m.UIDL = d.Str()
	m.Ext = d.Str()
	if d.Err != nil {
		return fmt.Errorf("%w: %v", errRecord, d.Err)
	}
	return nil
}

// encodeUpload returns up's record.
func encodeUpload(up *Upload) []byte {
	e := binrec.Encoder{B: make([]byte, 0, 24+len(up.Folder))}
	e.Byte(recBinary1)
	e.Str(up.Folder)
	e.Uvarint(uint64(up.UIDValidity))
	e.Uvarint(uint64(up.UID))
	e.Varint(up.At)
	return e.B
}

// decodeUpload reads an upload record of either encoding into up.
func decodeUpload(v []byte, up *Upload) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: empty", errRecord)
	}
	*up = Upload{}
	if v[0] != recBinary1 {
		return json.Unmarshal(v, up)
	}
	d := binrec.Decoder{B: v[1:]}
	up.Folder = d.Str()
	up.UIDValidity = d.Uint32()
	up.UID = d.Uint32()
	up.At = d.Varint()
	if d.Err != nil {
		return fmt.Errorf("%w: %v", errRecord, d.Err)
	}
	return nil
}
