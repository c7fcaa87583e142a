package message

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/binrec"
)

// BodyStructure returns the BODYSTRUCTURE of a served message, like
// imapserver.ExtractBodyStructure but robust: it never panics, a missing
// Content-Type is text/plain; charset=us-ascii (message/rfc822 inside
// multipart/digest), a multipart without a usable boundary is one text/plain
// part, a part without a close delimiter runs to the end of its parent, and
// every value is valid for go-imap's encoder (multiparts have children,
// Extended is set, nested messages have a structure; a message/rfc822 part
// that cannot be parsed, being transfer-encoded or nested too deep, is
// application/octet-stream). Sizes and line counts
// are those of msg.
func BodyStructure(msg []byte) (bs imap.BodyStructure) {
	defer func() {
		if recover() != nil {
			bs = fallbackStructure(msg)
		}
	}()
	return buildStructure(parseMessage(msg))
}

func fallbackStructure(msg []byte) imap.BodyStructure {
	_, body := SplitHeader(msg)
	return &imap.BodyStructureSinglePart{
		Type:     "text",
		Subtype:  "plain",
		Params:   map[string]string{"charset": "us-ascii"},
		Encoding: "7bit",
		Size:     uint32(len(body)),
		Text:     &imap.BodyStructureText{NumLines: int64(bytes.Count(body, []byte("\n")))},
		Extended: &imap.BodyStructureSinglePartExt{},
	}
}

func buildStructure(p *part) imap.BodyStructure {
	disp := disposition(p.header)
	lang := language(p.header)
	loc := HeaderValue(p.header, "Content-Location")
	if p.children != nil {
		mp := &imap.BodyStructureMultiPart{
			Subtype: p.sub,
			Extended: &imap.BodyStructureMultiPartExt{
				Params:      p.params,
				Disposition: disp,
				Language:    lang,
				Location:    loc,
			},
		}
		for _, c := range p.children {
			mp.Children = append(mp.Children, buildStructure(c))
		}
		return mp
	}
	enc := HeaderValue(p.header, "Content-Transfer-Encoding")
	if enc == "" {
		enc = "7bit"
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        p.typ,
		Subtype:     p.sub,
		Params:      p.params,
		ID:          HeaderValue(p.header, "Content-ID"),
		Description: HeaderValue(p.header, "Content-Description"),
		Encoding:    enc,
		Size:        uint32(len(p.body)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disp,
			Language:    lang,
			Location:    loc,
		},
	}
	lines := int64(bytes.Count(p.body, []byte("\n")))
	switch {
	case p.inner != nil:
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      Envelope(p.inner.header),
			BodyStructure: buildStructure(p.inner),
			NumLines:      lines,
		}
	case p.typ == "text":
		sp.Text = &imap.BodyStructureText{NumLines: lines}
	case p.typ == "message" && (p.sub == "rfc822" || p.sub == "global"):
		// Not parsed (transfer-encoded, or too deep): without an envelope
		// and inner structure the IMAP syntax of message/rfc822 would be
		// broken, so present it as an opaque part.
		sp.Type, sp.Subtype = "application", "octet-stream"
	}
	return sp
}

func disposition(header []byte) *imap.BodyStructureDisposition {
	v := HeaderValue(header, "Content-Disposition")
	if v == "" {
		return nil
	}
	value, params := parseParams(v)
	if value == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: value, Params: params}
}

func language(header []byte) []string {
	v := stripComments(HeaderValue(header, "Content-Language"))
	var l []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}

const bodyStructureVersion = 1

// EncodeBodyStructure encodes bs compactly for the FETCH cache; what
// DecodeBodyStructure returns is deeply equal to bs (nil and empty maps and
// lists kept apart, nested envelopes included).
func EncodeBodyStructure(bs imap.BodyStructure) []byte {
	e := &encoder{binrec.Encoder{B: make([]byte, 0, 256)}}
	e.Byte(bodyStructureVersion)
	e.bodyStructure(bs)
	return e.B
}

// Node tags.
const (
	bsNil    = 0
	bsSingle = 1
	bsMulti  = 2
)

func (e *encoder) disposition(d *imap.BodyStructureDisposition) {
	if d == nil {
		e.Byte(0)
		return
	}
	e.Byte(1)
	e.Str(d.Value)
	e.params(d.Params)
}

func (e *encoder) bodyStructure(bs imap.BodyStructure) {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if bs == nil {
			e.Byte(bsNil)
			return
		}
		e.Byte(bsSingle)
		e.Str(bs.Type)
		e.Str(bs.Subtype)
		e.params(bs.Params)
		e.Str(bs.ID)
		e.Str(bs.Description)
		e.Str(bs.Encoding)
		e.Uvarint(uint64(bs.Size))
		if m := bs.MessageRFC822; m != nil {
			e.Byte(1)
			e.envelope(m.Envelope)
			e.bodyStructure(m.BodyStructure)
			e.Varint(m.NumLines)
		} else {
			e.Byte(0)
		}
		if t := bs.Text; t != nil {
			e.Byte(1)
			e.Varint(t.NumLines)
		} else {
			e.Byte(0)
		}
		if x := bs.Extended; x != nil {
			e.Byte(1)
			e.disposition(x.Disposition)
			e.Strs(x.Language)
			e.Str(x.Location)
		} else {
			e.Byte(0)
		}
	case *imap.BodyStructureMultiPart:
		if bs == nil {
			e.Byte(bsNil)
			return
		}
		e.Byte(bsMulti)
		e.Str(bs.Subtype)
		e.ListLen(bs.Children == nil, len(bs.Children))
		for _, c := range bs.Children {
			e.bodyStructure(c)
		}
		if x := bs.Extended; x != nil {
			e.Byte(1)
			e.params(x.Params)
			e.disposition(x.Disposition)
			e.Strs(x.Language)
			e.Str(x.Location)
		} else {
			e.Byte(0)
		}
	default:
		e.Byte(bsNil)
	}
}

// DecodeBodyStructure decodes what EncodeBodyStructure encoded.
func DecodeBodyStructure(b []byte) (imap.BodyStructure, error) {
	d := &decoder{binrec.Decoder{B: b}}
	if v := d.Byte(); d.Err == nil && v != bodyStructureVersion {
		return nil, fmt.Errorf("decode body structure: unknown version %d", v)
	}
	bs := d.bodyStructure(0)
	if err := d.End(); err != nil {
		return nil, fmt.Errorf("decode body structure: %w", err)
	}
	return bs, nil
}

func (d *decoder) disposition() *imap.BodyStructureDisposition {
	if !d.Bool() {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: d.Str(), Params: d.params()}
}

func (d *decoder) bodyStructure(depth int) imap.BodyStructure {
	if depth > 2*maxDepth+2 {
		d.Fail(fmt.Errorf("nesting deeper than %d", 2*maxDepth+2))
		return nil
	}
	switch tag := d.Byte(); tag {
	case bsNil:
		return nil
	case bsSingle:
		bs := &imap.BodyStructureSinglePart{
			Type:        d.Str(),
			Subtype:     d.Str(),
			Params:      d.params(),
			ID:          d.Str(),
			Description: d.Str(),
			Encoding:    d.Str(),
		}
		size := d.Uvarint()
		if size > 1<<32-1 {
			d.Fail(fmt.Errorf("size %d out of range", size))
		}
		bs.Size = uint32(size)
		if d.Bool() {
			m := &imap.BodyStructureMessageRFC822{}
			m.Envelope = d.envelope()
			m.BodyStructure = d.bodyStructure(depth + 1)
			m.NumLines = d.Varint()
			bs.MessageRFC822 = m
		}
		if d.Bool() {
			bs.Text = &imap.BodyStructureText{NumLines: d.Varint()}
		}
		if d.Bool() {
			bs.Extended = &imap.BodyStructureSinglePartExt{
				Disposition: d.disposition(),
				Language:    d.Strs(),
				Location:    d.Str(),
			}
		}
		if d.Err != nil {
			return nil
		}
		return bs
	case bsMulti:
		bs := &imap.BodyStructureMultiPart{Subtype: d.Str()}
		if n := d.ListLen(); n >= 0 {
			bs.Children = make([]imap.BodyStructure, 0, n)
			for i := 0; i < n && d.Err == nil; i++ {
				bs.Children = append(bs.Children, d.bodyStructure(depth+1))
			}
		}
		if d.Bool() {
			bs.Extended = &imap.BodyStructureMultiPartExt{
				Params:      d.params(),
				Disposition: d.disposition(),
				Language:    d.Strs(),
				Location:    d.Str(),
			}
		}
		if d.Err != nil {
			return nil
		}
		return bs
	default:
		d.Fail(fmt.Errorf("bad node tag %d", tag))
		return nil
	}
}
