package message

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/binrec"
)

// Envelope returns the ENVELOPE of a message from its header (a whole
// message works too). Strings stay raw: RFC 2047 encoded words are not
// decoded, as IMAP servers send them. Date is the parsed Date: field with
// its zone offset (zero if absent or unparseable). Never nil.
func Envelope(header []byte) (env *imap.Envelope) {
	env = &imap.Envelope{}
	defer func() {
		if recover() != nil {
			env = &imap.Envelope{}
		}
	}()
	var seen [10]bool
	forEachField(header, func(name, value []byte) bool {
		if name == nil {
			return true
		}
		idx := -1
		for i, f := range envelopeFields {
			if equalFoldASCII(name, f) {
				idx = i
				break
			}
		}
		if idx < 0 || seen[idx] {
			return true
		}
		seen[idx] = true
		v := unfold(value)
		switch idx {
		case 0:
			env.Date, _ = parseDate(v)
		case 1:
			env.Subject = v
		case 2:
			env.From = parseAddressList(v)
		case 3:
			env.Sender = parseAddressList(v)
		case 4:
			env.ReplyTo = parseAddressList(v)
		case 5:
			env.To = parseAddressList(v)
		case 6:
			env.Cc = parseAddressList(v)
		case 7:
			env.Bcc = parseAddressList(v)
		case 8:
			env.InReplyTo = msgIDList(v)
		case 9:
			env.MessageID = msgID(v)
		}
		return true
	})
	return env
}

var envelopeFields = [10]string{"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id"}

const envelopeVersion = 1

// EncodeEnvelope encodes e compactly for the FETCH cache. DecodeEnvelope
// gives back an equal envelope: the same instant and zone offset of Date,
// the same strings, nil and empty lists kept apart.
func EncodeEnvelope(e *imap.Envelope) []byte {
	enc := &encoder{binrec.Encoder{B: make([]byte, 0, 128)}}
	enc.Byte(envelopeVersion)
	enc.envelope(e)
	return enc.B
}

func (e *encoder) envelope(env *imap.Envelope) {
	if env == nil {
		e.Byte(0)
		return
	}
	e.Byte(1)
	e.time(env.Date)
	e.Str(env.Subject)
	for _, l := range [][]imap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.ListLen(l == nil, len(l))
		for _, a := range l {
			e.Str(a.Name)
			e.Str(a.Mailbox)
			e.Str(a.Host)
		}
	}
	e.Strs(env.InReplyTo)
	e.Str(env.MessageID)
}

// time: 0 = zero; 1 = UTC; 2 = fixed offset (seconds follow); 3 = Local.
// Then Unix seconds and nanoseconds.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.Byte(0)
		return
	}
	switch t.Location() {
	case time.UTC:
		e.Byte(1)
	case time.Local:
		e.Byte(3)
	default:
		_, off := t.Zone()
		e.Byte(2)
		e.Varint(int64(off))
	}
	e.Varint(t.Unix())
	e.Uvarint(uint64(t.Nanosecond()))
}

func (d *decoder) time() time.Time {
	kind := d.Byte()
	var loc *time.Location
	switch kind {
	case 0:
		return time.Time{}
	case 1:
		loc = time.UTC
	case 2:
		off := d.Varint()
		if off < -86400 || off > 86400 {
			d.Fail(fmt.Errorf("bad zone offset %d", off))
			return time.Time{}
		}
		loc = fixedZone(int(off))
	case 3:
		loc = time.Local
	default:
		d.Fail(fmt.Errorf("bad time kind %d", kind))
		return time.Time{}
	}
	sec := d.Varint()
	nsec := d.Uvarint()
	if nsec >= 1e9 {
		d.Fail(fmt.Errorf("bad nanoseconds %d", nsec))
	}
	if d.Err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).In(loc)
}

// DecodeEnvelope decodes what EncodeEnvelope encoded.
func DecodeEnvelope(b []byte) (*imap.Envelope, error) {
	d := &decoder{binrec.Decoder{B: b}}
	if v := d.Byte(); d.Err == nil && v != envelopeVersion {
		return nil, fmt.Errorf("decode envelope: unknown version %d", v)
	}
	env := d.envelope()
	if err := d.End(); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return env, nil
}

func (d *decoder) envelope() *imap.Envelope {
	if !d.Bool() {
		return nil
	}
	env := &imap.Envelope{}
	env.Date = d.time()
	env.Subject = d.Str()
	for _, l := range []*[]imap.Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		n := d.ListLen()
		if n < 0 {
			continue
		}
		*l = make([]imap.Address, 0, n)
		for i := 0; i < n && d.Err == nil; i++ {
			*l = append(*l, imap.Address{Name: d.Str(), Mailbox: d.Str(), Host: d.Str()})
		}
	}
	env.InReplyTo = d.Strs()
	env.MessageID = d.Str()
	return env
}
