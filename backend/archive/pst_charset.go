package archive

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
)

// codepageEncoding maps a Windows code page identifier (PR_MESSAGE_CODEPAGE,
// PR_INTERNET_CPID, RTF \ansicpg) to its decoder. ok is false for unknown
// code pages; UTF-8 (65001) and US-ASCII (20127) return a nil encoding.
func codepageEncoding(cp int) (enc encoding.Encoding, ok bool) {
	switch cp {
	case 65001, 20127:
		return nil, true
	case 932:
		return japanese.ShiftJIS, true
	case 50220, 50221, 50222:
		return japanese.ISO2022JP, true
	case 51932, 20932:
		return japanese.EUCJP, true
	case 936:
		return simplifiedchinese.GBK, true
	case 54936:
		return simplifiedchinese.GB18030, true
	case 52936:
		return simplifiedchinese.HZGB2312, true
	case 950:
		return traditionalchinese.Big5, true
	case 949, 51949:
		return korean.EUCKR, true
	case 1200:
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), true
	case 1201:
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), true
	case 874:
		return charmap.Windows874, true
	case 1250:
		return charmap.Windows1250, true
	case 1251:
		return charmap.Windows1251, true
	case 1252:
		return charmap.Windows1252, true
	case 1253:
		return charmap.Windows1253, true
	case 1254:
		return charmap.Windows1254, true
	case 1255:
		return charmap.Windows1255, true
	case 1256:
		return charmap.Windows1256, true
	case 1257:
		return charmap.Windows1257, true
	case 1258:
		return charmap.Windows1258, true
	case 28591:
		return charmap.ISO8859_1, true
	case 28592:
		return charmap.ISO8859_2, true
	case 28593:
		return charmap.ISO8859_3, true
	case 28594:
		return charmap.ISO8859_4, true
	case 28595:
		return charmap.ISO8859_5, true
	case 28596:
		return charmap.ISO8859_6, true
	case 28597:
		return charmap.ISO8859_7, true
	case 28598:
		return charmap.ISO8859_8, true
	case 38598:
		return charmap.ISO8859_8I, true
	case 28599:
		return charmap.ISO8859_9, true
	case 28603:
		return charmap.ISO8859_13, true
	case 28605:
		return charmap.ISO8859_15, true
	case 20866:
		return charmap.KOI8R, true
	case 21866:
		return charmap.KOI8U, true
	case 437:
		return charmap.CodePage437, true
	case 850:
		return charmap.CodePage850, true
	case 852:
		return charmap.CodePage852, true
	case 855:
		return charmap.CodePage855, true
	case 858:
		return charmap.CodePage858, true
	case 860:
		return charmap.CodePage860, true
	case 862:
		return charmap.CodePage862, true
	case 863:
		return charmap.CodePage863, true
	case 865:
		return charmap.CodePage865, true
	case 866:
		return charmap.CodePage866, true
	case 10000:
		return charmap.Macintosh, true
	case 10007:
		return charmap.MacintoshCyrillic, true
	}
	return nil, false
}

// ansiCodepage returns the code page MAPI stores 8-bit string properties in
// for a message whose internet code page is cp: the mail encodings of a
// language map to its Windows code page (ISO-2022-JP and EUC-JP mail is
// kept as Shift_JIS by Japanese Outlook).
func ansiCodepage(cp int) int {
	switch cp {
	case 50220, 50221, 50222, 51932, 20932:
		return 932
	case 51949:
		return 949
	case 52936:
		return 936
	case 28591:
		return 1252
	}
	return cp
}

// charsetCodepage maps a MIME charset name (from an HTML meta tag) to a code
// page, 0 if unknown.
func charsetCodepage(name string) int {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "utf-8", "utf8":
		return 65001
	case "us-ascii", "ascii":
		return 20127
	case "shift_jis", "shift-jis", "sjis", "x-sjis", "windows-31j", "cp932", "ms_kanji":
		return 932
	case "iso-2022-jp", "csiso2022jp":
		return 50220
	case "euc-jp", "x-euc-jp":
		return 51932
	case "gb2312", "gbk", "cp936", "x-gbk":
		return 936
	case "gb18030":
		return 54936
	case "hz-gb-2312":
		return 52936
	case "big5", "cp950", "big5-hkscs":
		return 950
	case "euc-kr", "ks_c_5601-1987", "cp949":
		return 949
	case "koi8-r":
		return 20866
	case "koi8-u":
		return 21866
	case "iso-8859-1", "latin1", "iso8859-1":
		return 28591
	case "iso-8859-2":
		return 28592
	case "iso-8859-5":
		return 28595
	case "iso-8859-7":
		return 28597
	case "iso-8859-9":
		return 28599
	case "iso-8859-15":
		return 28605
	}
	if s, ok := strings.CutPrefix(strings.ToLower(name), "windows-"); ok {
		switch s {
		case "874", "1250", "1251", "1252", "1253", "1254", "1255", "1256", "1257", "1258":
			n := 0
			for _, c := range s {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return 0
}

// decodeCodepage decodes b from code page cp to UTF-8. Unknown or unset
// code pages (0) are guessed: UTF-8 if valid, else Shift_JIS if it decodes
// cleanly, else Windows-1252.
func decodeCodepage(b []byte, cp int) string {
	if cp != 0 {
		if enc, ok := codepageEncoding(cp); ok {
			if enc == nil {
				return strings.ToValidUTF8(string(b), "\uFFFD")
			}
			if s, err := enc.NewDecoder().Bytes(b); err == nil {
				return strings.ToValidUTF8(string(s), "\uFFFD")
			}
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	if s, ok := decodeShiftJIS(string(b)); ok {
		return s
	}
	s, _ := charmap.Windows1252.NewDecoder().Bytes(b)
	return string(s)
}
