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

// Steps are the device-specific steps after the settings, in Japanese and
// English, keyed by device: "ios" (iPhone, iPad), "mac", "android",
// "thunderbird". Each is a list of steps to show numbered.
var Steps = map[string]map[string][]string{
	"ios": {
		"ja": {
			"iPhone/iPad の Safari でこのページを開き、「構成プロファイルをダウンロード」を押します(ほかのブラウザでは入れられません)。",
			"「設定」を開き、上に出る「プロファイルがダウンロードされました」→「インストール」を押します。途中で popbridge の「デバイスのパスワード」を入力します。",
			"「設定」→「一般」→「情報」→ いちばん下の「証明書信頼設定」で「" + caNameHint["ja"] + "」をオンにします。これをしないとメールが接続できません。",
			"「メール」アプリを開くと「このパソコンのメール」が見えます。",
		},
		"en": {
			"Open this page in Safari on the iPhone/iPad and tap \"Download configuration profile\" (other browsers cannot install it).",
			"Open Settings, tap \"Profile Downloaded\" at the top, then Install. Enter popbridge's device password when asked.",
			"Go to Settings > General > About > Certificate Trust Settings (at the bottom) and turn on full trust for \"" + caNameHint["en"] + "\". Without this, Mail cannot connect.",
			"Open Mail: the mail on this PC is there.",
		},
	},
	"mac": {
		"ja": {
			"構成プロファイルをダウンロードし、ダブルクリックします。",
			"「システム設定」→「一般」→「デバイス管理」(または「プロファイル」)でプロファイルを開き、「インストール」を押します。popbridge の「デバイスのパスワード」を入力します。",
			"証明書はプロファイルと一緒に信頼されます。「メール」アプリを開いてください。",
		},
		"en": {
			"Download the configuration profile and double-click it.",
			"In System Settings > General > Device Management (or Profiles), open the profile and click Install. Enter popbridge's device password when asked.",
			"The certificate is trusted with the profile. Open Mail.",
		},
	},
	"android": {
		"ja": {
			"Thunderbird(または K-9 Mail)では、アカウント追加で「Thunderbird デスクトップからインポート」を選び、この QR コードを読み取れます。",
			"ほかのメールアプリでは、上の設定を「その他(IMAP)」のアカウントに手で入力します。",
			"証明書の確認が出たら、指紋が上に表示している CA の指紋と同じことを確かめて受け入れます(または CA 証明書を「設定」→「セキュリティ」→「暗号化と認証情報」→「証明書のインストール」→「CA 証明書」で入れます)。",
		},
		"en": {
			"In Thunderbird (or K-9 Mail), add an account with \"Import from Thunderbird desktop\" and scan this QR code.",
			"In other mail apps, enter the settings above by hand as an \"Other (IMAP)\" account.",
			"When asked about the certificate, check that the fingerprint matches the CA fingerprint shown above and accept it (or install the CA certificate in Settings > Security > Encryption & credentials > Install a certificate > CA certificate).",
		},
	},
	"thunderbird": {
		"ja": {
			"「アカウント設定」→「アカウント操作」→「メールアカウントを追加」で「手動設定」を選び、上の設定を入力します(自動設定はこのパソコンの popbridge を見つけられません)。",
			"同じパソコンなら、サーバーに 127.0.0.1 を使えます。ほかのパソコンでは、CA 証明書を「設定」→「プライバシーとセキュリティ」→「証明書を管理」→「認証局証明書」→「インポート」で入れます。",
		},
		"en": {
			"In Account Settings > Account Actions > Add Mail Account, choose \"Configure manually\" and enter the settings above (autoconfiguration cannot find popbridge on this PC).",
			"On this PC you can use 127.0.0.1 as the server. On another PC, import the CA certificate in Settings > Privacy & Security > Manage Certificates > Authorities > Import.",
		},
	},
}

var caNameHint = map[string]string{"ja": "popbridge local CA", "en": "popbridge local CA"}
