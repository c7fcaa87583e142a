package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Compressed RTF ([MS-OXRTFCP]), as Outlook keeps rich-text bodies in
// PR_RTF_COMPRESSED, and the de-encapsulation of HTML or plain text that
// Outlook wrapped in RTF ([MS-OXRTFEX]).

// rtfPrebuf is the dictionary's initial content ([MS-OXRTFCP] 2.1.2.1).
const rtfPrebuf = "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"

const (
	rtfCompressed   = 0x75465a4c // "LZFu"
	rtfUncompressed = 0x414c454d // "MELA"
	maxRTFSize      = 64 << 20
)

// decompressRTF returns the RTF held in a PR_RTF_COMPRESSED value.
func decompressRTF(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, errors.New("compressed RTF: header too short")
	}
	compSize := int(binary.LittleEndian.Uint32(b))
	rawSize := int(binary.LittleEndian.Uint32(b[4:]))
	kind := binary.LittleEndian.Uint32(b[8:])
	// COMPSIZE counts the bytes after itself; tolerate trailing padding.
	if compSize < 12 || compSize > len(b)-4 {
		return nil, fmt.Errorf("compressed RTF: size %d for %d bytes", compSize, len(b))
	}
	data := b[16 : 4+compSize]
	switch kind {
	case rtfUncompressed:
		if rawSize > len(data) {
			rawSize = len(data)
		}
		return bytes.Clone(data[:rawSize]), nil
	case rtfCompressed:
	default:
		return nil, fmt.Errorf("compressed RTF: unknown type %#x", kind)
	}
	// An LZ reference is 2 bytes for at most 17 output bytes, plus one
	// control byte per 8 items: output never exceeds 9x the input.
	limit := min(rawSize, 9*len(data), maxRTFSize)
	out := make([]byte, 0, limit)
	var dict [4096]byte
	copy(dict[:], rtfPrebuf)
	w := len(rtfPrebuf)
	for i := 0; i < len(data); {
		ctrl := data[i]
		i++
		for bit := 0; bit < 8; bit++ {
			if ctrl&(1<<bit) == 0 {
				if i >= len(data) {
					return nil, errors.New("compressed RTF: truncated literal")
				}
				c := data[i]
				i++
				dict[w] = c
				w = (w + 1) & 4095
				out = append(out, c)
			} else {
				if i+2 > len(data) {
					return nil, errors.New("compressed RTF: truncated reference")
				}
				ref := int(data[i])<<8 | int(data[i+1])
				i += 2
				off, n := ref>>4, ref&15+2
				if off == w {
					return checkRTFSize(out, rawSize)
				}
				for k := 0; k < n; k++ {
					c := dict[(off+k)&4095]
					dict[w] = c
					w = (w + 1) & 4095
					out = append(out, c)
				}
			}
			if len(out) > limit {
				return nil, fmt.Errorf("compressed RTF: more than the %d bytes announced", rawSize)
			}
		}
	}
	return nil, errors.New("compressed RTF: no end marker")
}

func checkRTFSize(out []byte, rawSize int) ([]byte, error) {
	if len(out) != rawSize {
		return out, fmt.Errorf("compressed RTF: %d bytes, %d announced", len(out), rawSize)
	}
	return out, nil
}

// rtfContent says what an RTF body encapsulates.
type rtfContent int

const (
	rtfPlain rtfContent = iota // genuine RTF
	rtfHTML                    // \fromhtml1: HTML encapsulated in RTF
	rtfText                    // \fromtext: plain text encapsulated in RTF
)

// deencapsulateRTF extracts the HTML or text that Outlook encapsulated in
// RTF ([MS-OXRTFEX] 2.4), decoded to UTF-8. kind is rtfPlain (and out nil)
// for RTF that encapsulates nothing.
func deencapsulateRTF(rtf []byte) (out string, kind rtfContent) {
	head := rtf[:min(len(rtf), 1024)]
	switch {
	case bytes.Contains(head, []byte(`\fromhtml`)):
		kind = rtfHTML
	case bytes.Contains(head, []byte(`\fromtext`)):
		kind = rtfText
	default:
		return "", rtfPlain
	}
	d := rtfDecoder{cp: 1252}
	d.run(rtf, kind)
	return d.out.String(), kind
}

type rtfState struct {
	skip    bool // inside a destination whose text is not content
	htmlrtf bool // \htmlrtf: RTF-only content, not part of the original
	tag     bool // inside \*\htmltag or \*\mhtmltag
	uc      int  // fallback characters that follow \uN
}

type rtfDecoder struct {
	out     bytes.Buffer
	pending []byte // 8-bit text waiting for code page decoding
	cp      int
	hi      rune // a high surrogate from \uN waiting for its pair
}

func (d *rtfDecoder) flush() {
	if len(d.pending) > 0 {
		d.out.WriteString(decodeCodepage(d.pending, d.cp))
		d.pending = d.pending[:0]
	}
}

func (d *rtfDecoder) emitRune(r rune) {
	d.flush()
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		if d.hi != 0 {
			d.out.WriteRune(utf8.RuneError)
		}
		d.hi = r
		return
	case r >= 0xDC00 && r <= 0xDFFF:
		if d.hi != 0 {
			r = (d.hi-0xD800)<<10 + (r - 0xDC00) + 0x10000
			d.hi = 0
		} else {
			r = utf8.RuneError
		}
	case d.hi != 0:
		d.out.WriteRune(utf8.RuneError)
		d.hi = 0
	}
	d.out.WriteRune(r)
}

func (d *rtfDecoder) emitBytes(b ...byte) {
	if d.hi != 0 {
		d.flush()
		d.out.WriteRune(utf8.RuneError)
		d.hi = 0
	}
	d.pending = append(d.pending, b...)
}

func (d *rtfDecoder) emitString(s string) {
	d.flush()
	if d.hi != 0 {
		d.out.WriteRune(utf8.RuneError)
		d.hi = 0
	}
	d.out.WriteString(s)
}

// run decodes rtf: for rtfHTML the text of \*\htmltag groups plus the text
// outside \htmlrtf runs, for rtfText the text outside \htmlrtf runs.
func (d *rtfDecoder) run(rtf []byte, kind rtfContent) {
	st := rtfState{uc: 1}
	var stack []rtfState
	const maxDepth = 1000
	depth := 0          // group depth, also beyond maxDepth
	groupStart := false // just after "{" (or "{\*"): a destination may open
	skipNext := false   // the \htmltag after an \mhtmltag repeats it
	fallback := 0       // characters left to skip after \uN
	visible := func() bool {
		if st.skip {
			return false
		}
		return st.tag || !st.htmlrtf
	}
	parentSkip := func() bool {
		return len(stack) > 0 && stack[len(stack)-1].skip
	}
	for i := 0; i < len(rtf); {
		c := rtf[i]
		switch c {
		case '{':
			depth++
			if depth <= maxDepth {
				stack = append(stack, st)
			}
			groupStart = true
			fallback = 0
			i++
			continue
		case '}':
			if depth > 0 {
				if depth <= maxDepth {
					st = stack[len(stack)-1]
					stack = stack[:len(stack)-1]
				}
				depth--
			}
			groupStart = false
			fallback = 0
			i++
			continue
		case '\r', '\n':
			i++
			continue
		case '\\':
			word, param, hasParam, n := rtfControl(rtf[i:])
			i += n
			first := groupStart
			groupStart = false
			if word == "" {
				continue
			}
			if fallback > 0 {
				fallback--
				continue
			}
			switch word {
			case "*":
				if first {
					st.skip = true
					groupStart = true
				}
				continue
			case "htmltag", "mhtmltag":
				if first && kind == rtfHTML && !parentSkip() {
					st.skip = false
					st.tag = true
					if word == "mhtmltag" {
						skipNext = true
					} else if skipNext {
						skipNext = false
						st.skip = true
					}
				}
				continue
			case "htmlrtf":
				st.htmlrtf = !hasParam || param != 0
				continue
			case "ansicpg":
				if hasParam && param > 0 {
					d.flush()
					d.cp = param
				}
				continue
			case "uc":
				if hasParam && param >= 0 && param < 16 {
					st.uc = param
				}
				continue
			case "fonttbl", "colortbl", "stylesheet", "info", "pict", "object",
				"header", "footer", "headerl", "headerr", "footerl", "footerr",
				"listtable", "listoverridetable", "revtbl", "rsidtbl", "generator",
				"xmlnstbl", "themedata", "colorschememapping", "latentstyles",
				"datastore", "fldinst", "pntext", "pntxta", "pntxtb", "pn", "filetbl":
				if first {
					st.skip = true
				}
				continue
			}
			if !visible() {
				if word == "u" && hasParam {
					fallback = st.uc
				}
				continue
			}
			if !st.tag {
				skipNext = false
			}
			switch word {
			case "u":
				if hasParam {
					r := rune(param)
					if r < 0 {
						r += 65536
					}
					d.emitRune(r)
					fallback = st.uc
				}
			case "'":
				if hasParam {
					d.emitBytes(byte(param))
				}
			case "par", "line":
				d.emitString("\r\n")
			case "tab":
				d.emitString("\t")
			case "{", "}", "\\":
				d.emitBytes(word[0])
			case "~":
				d.emitRune('\u00a0')
			case "_":
				d.emitRune('\u2011')
			case "emdash":
				d.emitRune('\u2014')
			case "endash":
				d.emitRune('\u2013')
			case "lquote":
				d.emitRune('\u2018')
			case "rquote":
				d.emitRune('\u2019')
			case "ldblquote":
				d.emitRune('\u201c')
			case "rdblquote":
				d.emitRune('\u201d')
			case "bullet":
				d.emitRune('\u2022')
			}
			continue
		}
		groupStart = false
		i++
		if fallback > 0 {
			fallback--
			continue
		}
		if visible() {
			if !st.tag {
				skipNext = false
			}
			d.emitBytes(c)
		}
	}
	d.flush()
	if d.hi != 0 {
		d.out.WriteRune(utf8.RuneError)
	}
}

// rtfControl parses the control word or symbol at the start of b (which
// starts with a backslash). For \'hh the word is "'" and param the byte.
// n counts the bytes consumed, including a delimiting space.
func rtfControl(b []byte) (word string, param int, hasParam bool, n int) {
	if len(b) < 2 {
		return "", 0, false, len(b)
	}
	c := b[1]
	switch {
	case c == '\'':
		if len(b) >= 4 {
			if v, ok := unhex(b[2], b[3]); ok {
				return "'", v, true, 4
			}
		}
		return "'", 0, false, min(len(b), 4)
	case !isASCIILetter(c):
		if c == '\r' || c == '\n' {
			return "par", 0, false, 2
		}
		return string(c), 0, false, 2
	}
	j := 1
	for j < len(b) && j < 33 && isASCIILetter(b[j]) {
		j++
	}
	word = string(b[1:j])
	if j < len(b) && (b[j] == '-' || (b[j] >= '0' && b[j] <= '9')) {
		neg := b[j] == '-'
		if neg {
			j++
		}
		k := j
		for j < len(b) && j-k < 10 && b[j] >= '0' && b[j] <= '9' {
			param = param*10 + int(b[j]-'0')
			j++
		}
		hasParam = j > k
		if neg {
			param = -param
		}
	}
	if j < len(b) && b[j] == ' ' {
		j++
	}
	return word, param, hasParam, j
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func unhex(a, b byte) (int, bool) {
	h := func(c byte) (int, bool) {
		switch {
		case '0' <= c && c <= '9':
			return int(c - '0'), true
		case 'a' <= c && c <= 'f':
			return int(c-'a') + 10, true
		case 'A' <= c && c <= 'F':
			return int(c-'A') + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}
