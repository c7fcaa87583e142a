package devices

import (
	"bytes"
	"crypto/x509"
	"errors"
	"image/png"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"
	"howett.net/plist"

	"github.com/popbridge/popbridge/certs"
)

func testBundle(t *testing.T) *certs.Bundle {
	t.Helper()
	b, err := certs.Ensure(certs.Options{
		Dir: filepath.Join(t.TempDir(), "tls"),
		Local: func() []string {
			return []string{"localhost", "127.0.0.1", "::1", "mypc", "mypc.local", "192.168.1.10"}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testAccount = Account{
	Description: "popbridge (このPCのメール)",
	Email:       "taro@gmail.com",
	DisplayName: "山田 太郎 <&>",
	Host:        "192.168.1.10",
	Port:        1993,
	TLS:         true,
	Username:    "me",
}

var uuidRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

func parseProfile(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	format, err := plist.Unmarshal(data, &m)
	if err != nil {
		t.Fatalf("profile does not parse: %v\n%s", err, data)
	}
	if format != plist.XMLFormat {
		t.Errorf("profile format %d, want XML", format)
	}
	return m
}

func TestMobileConfig(t *testing.T) {
	b := testBundle(t)
	data, err := MobileConfig(testAccount, b.CACert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"`)) {
		t.Errorf("profile does not start as an Apple XML plist:\n%.200s", data)
	}
	m := parseProfile(t, data)
	id, _ := m["PayloadIdentifier"].(string)
	if !strings.HasPrefix(id, IdentifierPrefix) || len(id) != len(IdentifierPrefix)+16 {
		t.Errorf("PayloadIdentifier %q", id)
	}
	content, _ := m["PayloadContent"].([]any)
	if len(content) != 2 {
		t.Fatalf("%d payloads, want 2", len(content))
	}
	top := maps.Clone(m)
	delete(top, "PayloadContent")
	for _, k := range []string{"PayloadUUID", "PayloadIdentifier", "PayloadDescription"} {
		delete(top, k)
	}
	wantTop := map[string]any{
		"PayloadDisplayName":       "popbridge (このPCのメール)",
		"PayloadOrganization":      "popbridge",
		"PayloadRemovalDisallowed": false,
		"PayloadType":              "Configuration",
		"PayloadVersion":           uint64(1),
	}
	if !maps.Equal(top, wantTop) {
		t.Errorf("profile keys\n got %v\nwant %v", top, wantTop)
	}
	if !uuidRE.MatchString(m["PayloadUUID"].(string)) {
		t.Errorf("PayloadUUID %q is not a version 5 UUID", m["PayloadUUID"])
	}

	mail := content[0].(map[string]any)
	mailUUID := mail["PayloadUUID"].(string)
	delete(mail, "PayloadUUID")
	delete(mail, "PayloadDescription")
	wantMail := map[string]any{
		"EmailAccountDescription":                "popbridge (このPCのメール)",
		"EmailAccountName":                       "山田 太郎 <&>",
		"EmailAccountType":                       "EmailTypeIMAP",
		"EmailAddress":                           "taro@gmail.com",
		"IncomingMailServerAuthentication":       "EmailAuthPassword",
		"IncomingMailServerHostName":             "192.168.1.10",
		"IncomingMailServerPortNumber":           uint64(1993),
		"IncomingMailServerUseSSL":               true,
		"IncomingMailServerUsername":             "me",
		"OutgoingMailServerAuthentication":       "EmailAuthPassword",
		"OutgoingMailServerHostName":             "smtp.gmail.com",
		"OutgoingMailServerPortNumber":           uint64(465),
		"OutgoingMailServerUseSSL":               true,
		"OutgoingMailServerUsername":             "taro@gmail.com",
		"OutgoingPasswordSameAsIncomingPassword": false,
		"PayloadDisplayName":                     "popbridge (このPCのメール)",
		"PayloadIdentifier":                      id + ".mail",
		"PayloadType":                            "com.apple.mail.managed",
		"PayloadVersion":                         uint64(1),
	}
	if !maps.Equal(mail, wantMail) {
		t.Errorf("mail payload\n got %v\nwant %v", mail, wantMail)
	}
	if !uuidRE.MatchString(mailUUID) || mailUUID == m["PayloadUUID"] {
		t.Errorf("mail PayloadUUID %q", mailUUID)
	}
	if bytes.Contains(bytes.ToLower(data), []byte("<key>incomingpassword")) || bytes.Contains(bytes.ToLower(data), []byte("<key>outgoingpassword<")) {
		t.Error("profile carries a password")
	}

	root := content[1].(map[string]any)
	caDER, _ := root["PayloadContent"].([]byte)
	rootUUID := root["PayloadUUID"].(string)
	delete(root, "PayloadContent")
	delete(root, "PayloadUUID")
	delete(root, "PayloadDescription")
	wantRoot := map[string]any{
		"PayloadCertificateFileName": "popbridge-ca.cer",
		"PayloadDisplayName":         b.CACert.Subject.CommonName,
		"PayloadIdentifier":          id + ".ca",
		"PayloadType":                "com.apple.security.root",
		"PayloadVersion":             uint64(1),
	}
	if !maps.Equal(root, wantRoot) {
		t.Errorf("root payload\n got %v\nwant %v", root, wantRoot)
	}
	if !uuidRE.MatchString(rootUUID) {
		t.Errorf("root PayloadUUID %q", rootUUID)
	}
	// The CA in the profile verifies the bridge's server certificate for
	// the host the profile names.
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := b.Leaf.Verify(x509.VerifyOptions{DNSName: testAccount.Host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the profile's CA does not verify the server certificate: %v", err)
	}
}

func TestMobileConfigStable(t *testing.T) {
	b := testBundle(t)
	p1, err := MobileConfig(testAccount, b.CACert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := MobileConfig(testAccount, b.CACert.Raw)
	if !bytes.Equal(p1, p2) {
		t.Error("same inputs, different profiles")
	}
	ids := func(data []byte) (id, uuid, mailUUID, caUUID string) {
		m := parseProfile(t, data)
		c := m["PayloadContent"].([]any)
		return m["PayloadIdentifier"].(string), m["PayloadUUID"].(string), c[0].(map[string]any)["PayloadUUID"].(string),
			c[len(c)-1].(map[string]any)["PayloadUUID"].(string)
	}
	id1, u1, mu1, cu1 := ids(p1)
	// The bridge moved to another address: the profile replaces the old.
	moved := testAccount
	moved.Host = "mypc.local"
	p3, _ := MobileConfig(moved, b.CACert.Raw)
	id3, u3, mu3, cu3 := ids(p3)
	if id3 != id1 || u3 == u1 || mu3 == mu1 || cu3 != cu1 {
		t.Errorf("moved host: identifier same %v (want true), UUIDs same %v %v (want false), CA UUID same %v (want true)", id3 == id1, u3 == u1, mu3 == mu1, cu3 == cu1)
	}
	// Another bridge user is another account.
	other := testAccount
	other.Username = "mom"
	p4, _ := MobileConfig(other, b.CACert.Raw)
	if id4, _, _, _ := ids(p4); id4 == id1 {
		t.Error("another user got the same identifier")
	}
	// Without a CA: only the account.
	p5, err := MobileConfig(testAccount, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := parseProfile(t, p5)["PayloadContent"].([]any); len(c) != 1 || c[0].(map[string]any)["PayloadType"] != "com.apple.mail.managed" {
		t.Errorf("profile without CA has %d payloads", len(c))
	}
}

func TestMobileConfigOutgoing(t *testing.T) {
	a := testAccount
	a.Email = "taro@example.com"
	if _, err := MobileConfig(a, nil); !errors.Is(err, ErrNoOutgoingServer) {
		t.Errorf("unknown domain without SMTP: %v", err)
	}
	a.SMTPHost = "mail.example.com"
	data, err := MobileConfig(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	mail := parseProfile(t, data)["PayloadContent"].([]any)[0].(map[string]any)
	got := []any{mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"], mail["OutgoingMailServerUseSSL"], mail["OutgoingMailServerUsername"]}
	if want := []any{"mail.example.com", uint64(587), true, "taro@example.com"}; !slices.Equal(got, want) {
		t.Errorf("outgoing %v, want %v", got, want)
	}
	// iCloud logs in with the name part.
	a = testAccount
	a.Email = "hanako@icloud.com"
	data, _ = MobileConfig(a, nil)
	mail = parseProfile(t, data)["PayloadContent"].([]any)[0].(map[string]any)
	if mail["OutgoingMailServerHostName"] != "smtp.mail.me.com" || mail["OutgoingMailServerUsername"] != "hanako" || mail["OutgoingMailServerPortNumber"] != uint64(587) {
		t.Errorf("iCloud outgoing %v %v %v", mail["OutgoingMailServerHostName"], mail["OutgoingMailServerUsername"], mail["OutgoingMailServerPortNumber"])
	}
}

func TestMobileConfigBadInput(t *testing.T) {
	b := testBundle(t)
	tests := []struct {
		name string
		mod  func(*Account)
		ca   []byte
		want string
	}{
		{"no host", func(a *Account) { a.Host = "" }, nil, "host"},
		{"host with a path", func(a *Account) { a.Host = "evil/x" }, nil, "host"},
		{"port 0", func(a *Account) { a.Port = 0 }, nil, "port 0"},
		{"port too big", func(a *Account) { a.Port = 70000 }, nil, "port 70000"},
		{"no user", func(a *Account) { a.Username = " " }, nil, "user name"},
		{"no address", func(a *Account) { a.Email = "taro" }, nil, "email address"},
		{"bad SMTP security", func(a *Account) { a.SMTPHost, a.SMTPTLS = "smtp.example.com", "ssl" }, nil, "SMTP security"},
		{"control character", func(a *Account) { a.DisplayName = "a\x00b" }, nil, "control character"},
		{"invalid UTF-8", func(a *Account) { a.Email = "\xff@example.com" }, nil, "UTF-8"},
		{"CA garbage", func(*Account) {}, []byte("garbage"), "does not parse"},
		{"CA is a leaf", func(*Account) {}, b.Leaf.Raw, "not a CA"},
	}
	for _, tt := range tests {
		a := testAccount
		tt.mod(&a)
		if _, err := MobileConfig(a, tt.ca); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestSettingsText(t *testing.T) {
	want := map[string]string{
		"en": "popbridge (このPCのメール)\nAccount type: IMAP\nServer: 192.168.1.10\nPort: 1993\nSecurity: SSL/TLS\nUsername: me\n" +
			"Email address: taro@gmail.com\nOutgoing server (SMTP): smtp.gmail.com:465 (SSL/TLS, Username taro@gmail.com)\n",
		"ja": "popbridge (このPCのメール)\nアカウントの種類: IMAP\nサーバー: 192.168.1.10\nポート: 1993\n暗号化: SSL/TLS\nユーザー名: me\n" +
			"メールアドレス: taro@gmail.com\n送信サーバー (SMTP): smtp.gmail.com:465 (SSL/TLS, ユーザー名 taro@gmail.com)\n",
	}
	for lang, w := range want {
		if got := SettingsText(testAccount, lang); got != w {
			t.Errorf("%s:\n got %q\nwant %q", lang, got, w)
		}
	}
	a := Account{Host: "127.0.0.1", Port: 1143, Username: "me"}
	if got, w := SettingsText(a, "fr"), "popbridge\nAccount type: IMAP\nServer: 127.0.0.1\nPort: 1143\nSecurity: STARTTLS\nUsername: me\n"; got != w {
		t.Errorf("minimal:\n got %q\nwant %q", got, w)
	}
}

func TestThunderbirdQR(t *testing.T) {
	got, err := ThunderbirdQR(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	want := `[1,[1,1],[0,"192.168.1.10",1993,3,1,"me","popbridge (このPCのメール)"],[[[0,"smtp.gmail.com",465,3,1,"taro@gmail.com"],["taro@gmail.com","山田 太郎 \u003c\u0026\u003e"]]]]`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	a := testAccount
	a.TLS, a.Port, a.Email, a.SMTPHost = false, 1143, "hanako@example.com", "mail.example.com"
	got, _ = ThunderbirdQR(a)
	if want := `[1,[1,1],[0,"192.168.1.10",1143,2,1,"me","popbridge (このPCのメール)"],[[[0,"mail.example.com",587,2,1,"hanako@example.com"],["hanako@example.com","山田 太郎 \u003c\u0026\u003e"]]]]`; got != want {
		t.Errorf("STARTTLS:\n got %s\nwant %s", got, want)
	}
	a.Host = "パソコン.local"
	if _, err := ThunderbirdQR(a); err == nil {
		t.Error("non-ASCII host accepted")
	}
}

// decodeQR reads a QR code PNG back with gozxing (a ZXing port).
func decodeQR(t *testing.T, data []byte) (text string, width, height int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_CHARACTER_SET: "UTF-8"})
	if err != nil {
		t.Fatalf("QR code does not decode: %v", err)
	}
	return res.GetText(), img.Bounds().Dx(), img.Bounds().Dy()
}

func TestQRPNG(t *testing.T) {
	tb, err := ThunderbirdQR(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"popbridge",
		SettingsText(testAccount, "ja"),
		SettingsText(testAccount, "en"),
		tb,
	} {
		data, err := QRPNG(text, 300)
		if err != nil {
			t.Fatal(err)
		}
		got, w, h := decodeQR(t, data)
		if got != text {
			t.Errorf("decoded %q, want %q", got, text)
		}
		if w != 300 || h != 300 {
			t.Errorf("image %dx%d, want 300x300", w, h)
		}
	}
	if _, err := QRPNG("popbridge", 20); err == nil || !strings.Contains(err.Error(), "at least 29") {
		t.Errorf("too small: %v", err)
	}
	if _, err := QRPNG("", 200); err == nil {
		t.Error("empty text accepted")
	}
	if _, err := QRPNG(strings.Repeat("x", 5000), 2000); err == nil {
		t.Error("text beyond a QR code's capacity accepted")
	}
}

// FuzzMobileConfig: whatever the strings, the profile parses back to the
// same values (escaping) or is refused with an error.
func FuzzMobileConfig(f *testing.F) {
	f.Add("popbridge", "taro@gmail.com", "山田 太郎", "192.168.1.10", "me", 1993)
	f.Add("<x>&]]>", "a@b.example", "\x00\x1f", "h", "u\u2028", 1)
	f.Fuzz(func(t *testing.T, desc, email, name, host, user string, port int) {
		a := Account{Description: desc, Email: email, DisplayName: name, Host: host, Port: port, Username: user, TLS: true, SMTPHost: "smtp.example.com"}
		data, err := MobileConfig(a, nil)
		if err != nil {
			return
		}
		var m map[string]any
		if _, err := plist.Unmarshal(data, &m); err != nil {
			t.Fatalf("profile for %+v does not parse: %v", a, err)
		}
		n, _ := a.normalized()
		mail := m["PayloadContent"].([]any)[0].(map[string]any)
		if mail["IncomingMailServerHostName"] != n.Host || mail["IncomingMailServerUsername"] != n.Username || mail["EmailAddress"] != n.Email {
			t.Fatalf("round trip of %+v gave %v", n, mail)
		}
	})
}
