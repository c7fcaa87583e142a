package message

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// refContentFP is ContentFP as it was before it became line-driven (it
// fingerprints every index built since): the line-driven version and the
// streaming ContentHasher must agree with it on every input.
func refContentFP(msg []byte) (fp FP) {
	defer func() {
		if recover() != nil {
			fp = FP(sha256Trunc(msg))
		}
	}()
	var stack [16 << 10]byte
	w := &fpWriter{h: sha256.New(), buf: stack[:0]}
	var field []byte // current header field, normalised: "name:value"
	var fieldBuf [512]byte
	field = fieldBuf[:0]
	haveField := false
	skipField := false
	valStart := 0 // index in field where the value starts
	flush := func() {
		if haveField && !skipField {
			w.write(field)
			w.writeByte('\n')
		}
		haveField = false
		skipField = false
		field = field[:0]
	}

	pos := 0
	// An mbox "From " separator line left in front is framing, not content.
	if bytes.HasPrefix(msg, []byte("From ")) {
		rest := bytes.TrimLeft(msg[5:], " \t")
		if len(rest) > 0 && rest[0] != ':' {
			pos = len(msg)
			if nl := bytes.IndexByte(msg, '\n'); nl >= 0 {
				pos = nl + 1
			}
		}
	}
	// Header.
	for pos < len(msg) {
		end, next := len(msg), len(msg)
		if nl := bytes.IndexByte(msg[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		}
		line := trimLineEnd(msg[pos:end])
		pos = next
		if len(line) == 0 {
			break
		}
		if isWSP(line[0]) && haveField {
			if !skipField {
				if len(field) > valStart {
					// The fold is white space between the two pieces.
					field = append(field, ' ')
				}
				field = trimRightWSP(appendCollapsed(field, line))
			}
			continue
		}
		flush()
		haveField = true
		colon := bytes.IndexByte(line, ':')
		name := []byte(nil)
		if colon >= 0 {
			name = trimRightWSP(line[:colon])
		}
		if colon < 0 || !validFieldName(name) {
			// Not a field: keep it, normalised, as a line of its own.
			valStart = 0
			field = appendCollapsed(field, line)
			continue
		}
		for _, c := range name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			field = append(field, c)
		}
		if ignoredFields[string(field)] {
			skipField = true
			continue
		}
		field = append(field, ':')
		valStart = len(field)
		field = appendCollapsed(field, line[colon+1:])
	}
	flush()
	w.writeByte('\n')

	// Body.
	empty := 0
	for pos < len(msg) {
		end, next := len(msg), len(msg)
		if nl := bytes.IndexByte(msg[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		}
		line := trimLineEnd(msg[pos:end])
		pos = next
		if len(line) == 0 {
			empty++
			continue
		}
		for ; empty > 0; empty-- {
			w.writeByte('\n')
		}
		if line[0] == '>' {
			line = unquoteFrom(line)
		}
		w.write(line)
		w.writeByte('\n')
	}
	return w.sum()
}

func FuzzContentFPStable(f *testing.F) {
	for _, s := range []string{
		"", "From a@b Mon\nSubject: x\n\nbody\n>From y\n\n\n",
		"Subject: a\r\n b\r\nX-Mozilla-Status: 1\r\n\r\nhi\r\n",
		"From \r\nX: y\r\n", "From :x\n\nb", "no header line\nA: b\n\n",
		"A:\tb  c \n\tfold\n\n\nbody  \n\n",
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, msg []byte, cut int) {
		if len(msg) > 0 && bytes.HasPrefix(msg, []byte("From ")) && bytes.IndexByte(msg, '\n') < 0 {
			return // a lone "From …" without a line end: not a message
		}
		want := refContentFP(msg)
		if got := ContentFP(msg); got != want {
			t.Fatalf("ContentFP(%q) = %s, was %s", msg, got, want)
		}
		h := NewContentHasher()
		if cut < 0 {
			cut = -cut
		}
		for i := 0; i < len(msg); {
			n := 1 + (cut+i)%7
			if i+n > len(msg) {
				n = len(msg) - i
			}
			h.Write(msg[i : i+n])
			i += n
		}
		if got := h.Sum(); got != want {
			t.Fatalf("ContentHasher(%q) = %s, want %s", msg, got, want)
		}
	})
}
