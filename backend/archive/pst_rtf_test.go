package archive

import (
	"bytes"
	"encoding/hex"
	"testing"
	"unicode/utf8"
)

// The examples of [MS-OXRTFCP] 3.1 and 3.2.
func TestDecompressRTFSpec(t *testing.T) {
	for _, c := range []struct{ hex, want string }{
		{"2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af320" +
			"68656c090020627705b06c647d0a800fa0", "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"},
		{"1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0", "{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"},
	} {
		in, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decompressRTF(in)
		if err != nil || string(got) != c.want {
			t.Errorf("decompressRTF(%s) = %q, %v; want %q", c.hex, got, err, c.want)
		}
	}
}

func TestDecompressRTFErrors(t *testing.T) {
	valid := compressRTF([]byte(`{\rtf1 x}`))
	mela := append([]byte{0x11, 0, 0, 0, 5, 0, 0, 0, 'M', 'E', 'L', 'A', 0, 0, 0, 0}, "{\\rtf"...)
	for _, c := range []struct {
		name string
		in   []byte
		want string // "" for an error
	}{
		{"literal-only", valid, `{\rtf1 x}`},
		{"uncompressed", mela, `{\rtf`},
		{"empty", nil, ""},
		{"short header", valid[:10], ""},
		{"unknown type", append(append([]byte{}, valid[:8]...), append([]byte("ABCD"), valid[12:]...)...), ""},
		{"size beyond data", append([]byte{0xff, 0, 0, 0}, valid[4:]...), ""},
		{"truncated stream", append(append([]byte{byte(len(valid) - 4 - 3)}, valid[1:4]...), valid[4:len(valid)-3]...), ""},
		{"raw size too small", append(append(append([]byte{}, valid[:4]...), 3, 0, 0, 0), valid[8:]...), ""},
	} {
		got, err := decompressRTF(c.in)
		if c.want == "" && err == nil || c.want != "" && (err != nil || string(got) != c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestDeencapsulateRTF(t *testing.T) {
	for _, c := range []struct {
		name, rtf string
		kind      rtfContent
		want      string
	}{
		{"plain RTF", `{\rtf1\ansi Hello}`, rtfPlain, ""},
		{"html", `{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0 Arial;}}{\colortbl\red0;}` + "\r\n" +
			`{\*\htmltag64}{\*\htmltag <html><head>\par<style>p \{x:y\}</style></head>}` +
			`{\*\htmltag <body>}{\htmlrtf \f0 \htmlrtf0 Text \'e9 \{b\}\\}{\*\htmltag <br>\par}\htmlrtf\line\htmlrtf0` +
			`{\*\htmltag &nbsp;}\htmlrtf \'a0\htmlrtf0{\*\htmltag </body></html>}}`,
			rtfHTML, "<html><head>\r\n<style>p {x:y}</style></head><body>Text é {b}\\<br>\r\n&nbsp;</body></html>"},
		{"html mhtmltag replaces the htmltag after it", `{\rtf1\fromhtml1 {\*\mhtmltag84 <img src="cid:a@b">}{\*\htmltag84 <img src="file:///tmp/a">}{\*\htmltag <p>}}`,
			rtfHTML, `<img src="cid:a@b"><p>`},
		{"html optional destinations skipped", `{\rtf1\fromhtml1 {\*\generator Riched20;}{\*\htmltag <p>}x{\*\bkmkstart y}{\pntext 1.}}`, rtfHTML, "<p>x"},
		{"text", `{\rtf1\ansi\ansicpg1252\fromtext \deff0{\fonttbl{\f0 Courier;}}\pard Hello\par world\tab end}`, rtfText, "Hello\r\nworld\tend"},
		{"text shift_jis bytes", `{\rtf1\ansi\ansicpg932\fromtext \'93\'fa\'96\'7b}`, rtfText, "日本"},
		{"text unicode with fallbacks", `{\rtf1\fromtext \uc2\u26085\'93\'fa\u26412\'96\'7b!}`, rtfText, "日本!"},
		{"text surrogate pair", `{\rtf1\fromtext \u-10179?\u-8704?}`, rtfText, "😀"},
		{"text unpaired surrogate", `{\rtf1\fromtext a\u-10179?b}`, rtfText, "a\uFFFDb"},
		{"text htmlrtf suppressed", `{\rtf1\fromtext a{\htmlrtf b\htmlrtf0 c}d}`, rtfText, "acd"},
		{"unbalanced braces", `{\rtf1\fromtext a}}}b{{{c`, rtfText, "abc"},
	} {
		got, kind := deencapsulateRTF([]byte(c.rtf))
		if kind != c.kind || got != c.want {
			t.Errorf("%s: %q (%d); want %q (%d)", c.name, got, kind, c.want, c.kind)
		}
	}
}

func FuzzDecompressRTF(f *testing.F) {
	f.Add(compressRTF([]byte(`{\rtf1\fromhtml1 {\*\htmltag <p>}}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := decompressRTF(data)
		if err == nil && len(out) > 9*len(data)+16 {
			t.Fatalf("%d bytes from %d", len(out), len(data))
		}
		// Whatever it is, literal-only compression round-trips.
		back, err := decompressRTF(compressRTF(data))
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip: %q, %v", back, err)
		}
	})
}

func FuzzDeencapsulateRTF(f *testing.F) {
	f.Add([]byte(`{\rtf1\fromhtml1 {\*\htmltag <p>}\htmlrtf x\htmlrtf0 y\u-10179?\u-8704?}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _ := deencapsulateRTF(data)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 %q", out)
		}
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeCodepage(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		cp   int
		want string
	}{
		{[]byte("plain"), 0, "plain"},
		{[]byte("\x93\xfa\x96\x7b"), 932, "日本"},
		{[]byte("\x93\xfa\x96\x7b"), 0, "日本"}, // guessed: Shift_JIS decodes cleanly
		{[]byte("\x1b$BF|K\\\x1b(B"), 50220, "日本"},
		{[]byte("\xc9l\xe9ments"), 1252, "Éléments"},
		{[]byte("\xc9l\xe9ments"), 0, "ﾉl駑ents"}, // why ANSI files probe their code page
		{[]byte("Gr\xfc\xdfe"), 0, "Grüße"},      // not Shift_JIS: Windows-1252
		{[]byte("caf\xc3\xa9"), 65001, "café"},
		{[]byte("caf\xe9"), 65001, "caf\uFFFD"},
		{[]byte("\xa4\xa4\xa4\xe5"), 950, "中文"},
		{[]byte("caf\xe9"), 12345, "café"}, // unknown code page: guessed
	} {
		if got := decodeCodepage(c.in, c.cp); got != c.want {
			t.Errorf("decodeCodepage(%q, %d) = %q, want %q", c.in, c.cp, got, c.want)
		}
	}
}
