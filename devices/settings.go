package devices

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"

	"github.com/popbridge/popbridge/providers"
)

// SettingsText formats the settings a user types into a mail app, in
// lang ("ja" or "en"; anything else is English), one "label: value" per
// line. No password.
func SettingsText(a Account, lang string) string {
	a.Host = strings.TrimSpace(a.Host)
	l := labels["en"]
	if lang == "ja" {
		l = labels["ja"]
	}
	sec := l.startTLS
	if a.TLS {
		sec = l.tls
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", firstNonEmpty(strings.TrimSpace(a.Description), "popbridge"))
	fmt.Fprintf(&b, "%s: IMAP\n", l.kind)
	fmt.Fprintf(&b, "%s: %s\n", l.server, a.Host)
	fmt.Fprintf(&b, "%s: %d\n", l.port, a.Port)
	fmt.Fprintf(&b, "%s: %s\n", l.security, sec)
	fmt.Fprintf(&b, "%s: %s\n", l.username, a.Username)
	if a.Email != "" {
		fmt.Fprintf(&b, "%s: %s\n", l.email, a.Email)
	}
	if n, err := a.normalized(); err == nil {
		s := l.startTLS
		if n.SMTPTLS == providers.TLSImplicit {
			s = l.tls
		}
		fmt.Fprintf(&b, "%s: %s:%d (%s, %s %s)\n", l.smtp, n.SMTPHost, n.SMTPPort, s, l.username, n.SMTPUsername)
	}
	return b.String()
}

type labelSet struct {
	kind, server, port, security, username, email, smtp, tls, startTLS string
}

var labels = map[string]labelSet{
	"en": {"Account type", "Server", "Port", "Security", "Username", "Email address", "Outgoing server (SMTP)", "SSL/TLS", "STARTTLS"},
	"ja": {"アカウントの種類", "サーバー", "ポート", "暗号化", "ユーザー名", "メールアドレス", "送信サーバー (SMTP)", "SSL/TLS", "STARTTLS"},
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// ThunderbirdQR returns the payload of a QR code that Thunderbird for
// Android (and K-9 Mail) imports as an account: Thunderbird's "Export for
// Mobile" format version 1, JSON arrays. No password. Host names must be
// ASCII (an address or a punycode name).
func ThunderbirdQR(a Account) (string, error) {
	n, err := a.normalized()
	if err != nil {
		return "", err
	}
	if !isASCII(n.Host) || !isASCII(n.SMTPHost) || !isASCII(n.Email) {
		return "", errors.New("device settings: Thunderbird's QR format needs ASCII host names and address")
	}
	const (
		imapProto, smtpProto   = 0, 0
		secStartTLS, secTLS    = 2, 3
		authPasswordCleartext  = 1
		formatVersion, seq, of = 1, 1, 1
	)
	inSec := secStartTLS
	if n.TLS {
		inSec = secTLS
	}
	outSec := secStartTLS
	if n.SMTPTLS == providers.TLSImplicit {
		outSec = secTLS
	}
	payload := []any{
		formatVersion,
		[]any{seq, of},
		[]any{imapProto, n.Host, n.Port, inSec, authPasswordCleartext, n.Username, n.Description},
		[]any{[]any{
			[]any{smtpProto, n.SMTPHost, n.SMTPPort, outSec, authPasswordCleartext, n.SMTPUsername},
			[]any{n.Email, n.DisplayName},
		}},
	}
	out, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quietZone is the white border around a QR code, in modules (ISO/IEC
// 18004 asks for 4).
const quietZone = 4

// QRPNG renders text (UTF-8, byte mode) as a size×size pixel PNG QR code
// with error correction level M and a 4-module white border. Modules are
// whole pixels, so size must be at least the code's modules plus the
// border; the error says how many pixels are needed.
func QRPNG(text string, size int) ([]byte, error) {
	if text == "" {
		return nil, errors.New("QR code: no text")
	}
	qrc, err := qrcode.NewWith(text, qrcode.WithEncodingMode(qrcode.EncModeByte), qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	var m matrixWriter
	if err := qrc.Save(&m); err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	dim := m.mat.Width() + 2*quietZone
	scale := size / dim
	if scale < 1 {
		return nil, fmt.Errorf("QR code: %d pixels is too small, it needs at least %d", size, dim)
	}
	off := (size - scale*dim) / 2
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	m.mat.Iterate(qrcode.IterDirection_ROW, func(x, y int, v qrcode.QRValue) {
		if !v.IsSet() {
			return
		}
		x0, y0 := off+(x+quietZone)*scale, off+(y+quietZone)*scale
		for yy := y0; yy < y0+scale; yy++ {
			row := img.Pix[yy*img.Stride:]
			for xx := x0; xx < x0+scale; xx++ {
				row[xx] = 1
			}
		}
	})
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	return buf.Bytes(), nil
}

// matrixWriter takes the module matrix from the encoder.
type matrixWriter struct{ mat qrcode.Matrix }

func (w *matrixWriter) Write(mat qrcode.Matrix) error { w.mat = mat; return nil }
func (w *matrixWriter) Close() error                  { return nil }
