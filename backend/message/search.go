package message

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"golang.org/x/text/cases"
)

// SearchMeta is what the backend knows about a message without reading it.
type SearchMeta struct {
	SeqNum uint32
	UID    imap.UID
	// MaxSeq and MaxUID are the values of "*" in sequence and UID sets.
	MaxSeq uint32
	MaxUID imap.UID

	Flags        []imap.Flag
	Size         int64
	InternalDate time.Time
}

type tri int8

const (
	triFalse tri = iota
	triTrue
	triUnknown // needs the message content
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// Match evaluates SEARCH criteria (RFC 3501 6.4.4, plus the IMAP4rev2 keys
// in imap.SearchCriteria) against one message. load is called at most
// once, and only when a key that needs the content must be evaluated: keys
// on metadata are evaluated first, across NOT and OR too, and short-circuit.
//
//   - Sequence and UID sets: "*" is MaxSeq/MaxUID; "n:*" with n above the
//     maximum still contains the maximum (RFC 3501 6.4.8). A SEARCHRES "$"
//     marker matches nothing: resolve it first with ResolveSearchRes.
//   - \Recent is never set.
//   - Since/Before (INTERNALDATE) and SentSince/SentBefore (Date:) compare
//     calendar dates, each time in its own zone; ON and SENTON arrive as a
//     Since/Before pair. A missing or unparseable Date: matches no SENT* key.
//   - Header: field present if the value is empty; else a substring of the
//     decoded value (RFC 2047, any charset) or of the raw value.
//   - Body: text/* parts (and message/rfc822 inner headers and text),
//     decoded from their transfer encoding and charset. Text: the decoded
//     header plus Body.
//   - Text comparison is Unicode case-folded substring matching.
//   - ModSeq is ignored.
//
// An error is returned only when load fails.
func Match(m SearchMeta, load func() ([]byte, error), c *imap.SearchCriteria) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("search uid %d: internal error: %v", m.UID, r)
		}
	}()
	if c == nil {
		return true, nil
	}
	mt := &matcher{meta: m, load: load}
	if r := mt.eval(c, false); r != triUnknown {
		return r == triTrue, nil
	}
	r := mt.eval(c, true)
	if mt.err != nil {
		return false, mt.err
	}
	return r == triTrue, nil
}

// NeedsContent reports whether c has a key that needs the message bytes.
func NeedsContent(c *imap.SearchCriteria) bool {
	if c == nil {
		return false
	}
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if NeedsContent(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if NeedsContent(&c.Or[i][0]) || NeedsContent(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// ResolveSearchRes returns a copy of c in which every SEARCHRES "$" marker
// is replaced by saved, the result of the last SEARCH ... SAVE.
func ResolveSearchRes(c *imap.SearchCriteria, saved imap.UIDSet) *imap.SearchCriteria {
	if c == nil {
		return nil
	}
	out := *c
	out.UID = make([]imap.UIDSet, len(c.UID))
	for i, s := range c.UID {
		if imap.IsSearchRes(s) {
			s = append(imap.UIDSet{}, saved...)
		}
		out.UID[i] = s
	}
	out.Not = make([]imap.SearchCriteria, len(c.Not))
	for i := range c.Not {
		out.Not[i] = *ResolveSearchRes(&c.Not[i], saved)
	}
	out.Or = make([][2]imap.SearchCriteria, len(c.Or))
	for i := range c.Or {
		out.Or[i][0] = *ResolveSearchRes(&c.Or[i][0], saved)
		out.Or[i][1] = *ResolveSearchRes(&c.Or[i][1], saved)
	}
	return &out
}

type matcher struct {
	meta   SearchMeta
	load   func() ([]byte, error)
	loaded bool
	err    error
	c      *content
}

func (mt *matcher) content() *content {
	if !mt.loaded {
		mt.loaded = true
		if mt.load == nil {
			mt.err = fmt.Errorf("search uid %d: no content loader", mt.meta.UID)
			return nil
		}
		b, err := mt.load()
		if err != nil {
			mt.err = fmt.Errorf("search uid %d: %w", mt.meta.UID, err)
			return nil
		}
		mt.c = newContent(b)
	}
	return mt.c
}

// eval evaluates c; without full, keys needing content give triUnknown.
func (mt *matcher) eval(c *imap.SearchCriteria, full bool) tri {
	res := triTrue
	// and folds v into res; it reports false when the answer is known false.
	and := func(v tri) bool {
		switch v {
		case triFalse:
			res = triFalse
			return false
		case triUnknown:
			res = triUnknown
		}
		return true
	}
	m := &mt.meta
	for _, s := range c.SeqNum {
		if !and(triOf(numSetContains([]imap.SeqRange(s), m.SeqNum, m.MaxSeq))) {
			return triFalse
		}
	}
	for _, s := range c.UID {
		ok := !imap.IsSearchRes(s) && numSetContains(uidRanges(s), uint32(m.UID), uint32(m.MaxUID))
		if !and(triOf(ok)) {
			return triFalse
		}
	}
	for _, f := range c.Flag {
		if !and(triOf(hasFlag(m.Flags, f))) {
			return triFalse
		}
	}
	for _, f := range c.NotFlag {
		if !and(triOf(!hasFlag(m.Flags, f))) {
			return triFalse
		}
	}
	if c.Larger > 0 && !and(triOf(m.Size > c.Larger)) {
		return triFalse
	}
	if c.Smaller > 0 && !and(triOf(m.Size < c.Smaller)) {
		return triFalse
	}
	if !c.Since.IsZero() && !and(triOf(dayOf(m.InternalDate) >= dayOf(c.Since))) {
		return triFalse
	}
	if !c.Before.IsZero() && !and(triOf(dayOf(m.InternalDate) < dayOf(c.Before))) {
		return triFalse
	}
	for i := range c.Not {
		v := mt.eval(&c.Not[i], full)
		switch v {
		case triTrue:
			v = triFalse
		case triFalse:
			v = triTrue
		}
		if !and(v) {
			return triFalse
		}
	}
	for i := range c.Or {
		a := mt.eval(&c.Or[i][0], full)
		v := a
		if a != triTrue {
			b := mt.eval(&c.Or[i][1], full)
			switch {
			case b == triTrue:
				v = triTrue
			case a == triUnknown || b == triUnknown:
				v = triUnknown
			default:
				v = triFalse
			}
		}
		if !and(v) {
			return triFalse
		}
	}
	needs := len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero()
	if !needs {
		return res
	}
	if !full {
		and(triUnknown)
		return res
	}
	ct := mt.content()
	if ct == nil {
		return triFalse
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		d, ok := ct.sentDay()
		if !ok || (!c.SentSince.IsZero() && d < dayOf(c.SentSince)) || (!c.SentBefore.IsZero() && d >= dayOf(c.SentBefore)) {
			return triFalse
		}
	}
	for _, h := range c.Header {
		if !ct.matchHeader(h.Key, h.Value) {
			return triFalse
		}
	}
	for _, s := range c.Body {
		if !strings.Contains(ct.bodyText(), fold(s)) {
			return triFalse
		}
	}
	for _, s := range c.Text {
		n := fold(s)
		if !strings.Contains(ct.headerText(), n) && !strings.Contains(ct.bodyText(), n) {
			return triFalse
		}
	}
	return res
}

func uidRanges(s imap.UIDSet) []imap.SeqRange {
	out := make([]imap.SeqRange, len(s))
	for i, r := range s {
		out[i] = imap.SeqRange{Start: uint32(r.Start), Stop: uint32(r.Stop)}
	}
	return out
}

// numSetContains reports whether n is in the set, "*" (0) standing for
// max. A range is unordered: "5:*" with max 3 is 3:5 and contains 3.
func numSetContains(set []imap.SeqRange, n, max uint32) bool {
	if n == 0 {
		return false
	}
	for _, r := range set {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = max
		}
		if hi == 0 {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo <= n && n <= hi {
			return true
		}
	}
	return false
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	if strings.EqualFold(string(f), `\Recent`) {
		return false
	}
	for _, g := range flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// dayOf is t's calendar date in t's own zone, as a sortable number.
func dayOf(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// fold applies Unicode full case folding, with a fast path for ASCII.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return cases.Fold().String(s)
		}
	}
	return strings.ToLower(s)
}

type hfield struct {
	name   string // lower case
	raw    string // unfolded
	folded string // case-folded decoded value, "" until needed
	done   bool
	cs     string
}

func (f *hfield) foldedValue() string {
	if !f.done {
		f.done = true
		f.folded = fold(decodeHeaderText(f.raw, f.cs))
	}
	return f.folded
}

// content is a loaded message prepared for text search; decoded texts are
// computed on first use.
type content struct {
	msg      []byte
	root     *part
	fields   []*hfield
	hdrText  *string
	body     *string
	fallback string
}

func newContent(msg []byte) *content {
	c := &content{msg: msg, root: parseMessage(msg)}
	c.fallback = firstCharset(c.root)
	c.fields = decodedFields(c.root.header, c.fallback)
	return c
}

func decodedFields(header []byte, cs string) []*hfield {
	var fields []*hfield
	forEachField(header, func(name, value []byte) bool {
		if name != nil {
			fields = append(fields, &hfield{name: strings.ToLower(string(name)), raw: unfold(value), cs: cs})
		}
		return true
	})
	return fields
}

// firstCharset is the charset of the first text part, used for raw 8-bit
// header text.
func firstCharset(p *part) string {
	if p == nil {
		return ""
	}
	if cs := p.params["charset"]; cs != "" && p.typ == "text" && !p.defaulted {
		return cs
	}
	for _, ch := range p.children {
		if cs := firstCharset(ch); cs != "" {
			return cs
		}
	}
	return ""
}

func (c *content) sentDay() (int, bool) {
	for _, f := range c.fields {
		if f.name == "date" {
			t, ok := parseDate(f.raw)
			return dayOf(t), ok
		}
	}
	return 0, false
}

func (c *content) matchHeader(key, value string) bool {
	key = strings.ToLower(strings.TrimSpace(key))
	n := fold(value)
	for _, f := range c.fields {
		if f.name != key {
			continue
		}
		if value == "" || strings.Contains(f.foldedValue(), n) || strings.Contains(fold(f.raw), n) {
			return true
		}
	}
	return false
}

func (c *content) headerText() string {
	if c.hdrText == nil {
		var b strings.Builder
		for _, f := range c.fields {
			b.WriteString(f.name)
			b.WriteString(": ")
			b.WriteString(f.foldedValue())
			b.WriteByte('\n')
		}
		s := b.String()
		c.hdrText = &s
	}
	return *c.hdrText
}

func (c *content) bodyText() string {
	if c.body == nil {
		var b strings.Builder
		appendPartText(&b, c.root)
		s := fold(b.String())
		c.body = &s
	}
	return *c.body
}

// appendPartText appends the decoded text of p's text parts; for an
// encapsulated message, its decoded header too.
func appendPartText(b *strings.Builder, p *part) {
	switch {
	case p.children != nil:
		for _, ch := range p.children {
			appendPartText(b, ch)
		}
	case p.inner != nil:
		cs := firstCharset(p.inner)
		for _, f := range decodedFields(p.inner.header, cs) {
			b.WriteString(f.name)
			b.WriteString(": ")
			b.WriteString(decodeHeaderText(f.raw, cs))
			b.WriteByte('\n')
		}
		appendPartText(b, p.inner)
	case p.typ == "text":
		raw := decodeTransfer(HeaderValue(p.header, "Content-Transfer-Encoding"), p.body)
		b.WriteString(toUTF8(raw, p.params["charset"], ""))
		b.WriteByte('\n')
	}
}
