// Package devices makes what phones and other computers need to reach the
// bridge: an Apple configuration profile (.mobileconfig) with the IMAP
// account and popbridge's CA, the settings as text, a QR code, and the
// QR payload Thunderbird for Android imports.
//
// Implementation notes:
//
//   - The profile holds no password: the device asks for it when the
//     profile is installed (Apple's com.apple.mail.managed payload without
//     IncomingPassword). popbridge's device password never leaves the PC.
//   - popbridge does not send mail, but iOS requires an outgoing server on
//     a mail account. It is Account.SMTPHost when given, else the SMTP
//     server of the provider preset for the address (package providers);
//     with neither, MobileConfig returns ErrNoOutgoingServer so the caller
//     asks the user rather than shipping a profile that cannot send.
//   - Identifiers and UUIDs are derived from the inputs (name-based UUIDs),
//     so downloading the profile again replaces the installed one instead
//     of adding a second account: PayloadIdentifier depends only on the
//     bridge user name and the email address, the UUIDs on every input.
//   - The CA goes in a com.apple.security.root payload. iOS installs it but
//     trusts it for TLS only after the user turns on full trust in
//     Settings > General > About > Certificate Trust Settings (the
//     console's Devices page says so, with the steps for every kind of
//     device, in both languages: its catalog is the one place for them).
package devices

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"howett.net/plist"

	"github.com/popbridge/popbridge/providers"
)

// ContentType is the media type a .mobileconfig is served with; Safari on
// iOS offers to install the profile only with it.
const ContentType = "application/x-apple-aspen-config"

// ErrNoOutgoingServer: no SMTP server is known for the account's address.
var ErrNoOutgoingServer = errors.New("no outgoing (SMTP) server for this address: popbridge does not send mail, so the device needs your provider's SMTP server; enter it in the device settings")

// Account is the IMAP account a device gets.
type Account struct {
	// Description names the account and the profile on the device,
	// e.g. "popbridge (mail on this PC)". Default "popbridge".
	Description string
	Email       string // the user's address (the From of sent mail)
	DisplayName string // the user's name for sent mail; may be ""
	Host        string // the bridge as the device reaches it (LAN address or name)
	Port        int    // the bridge's IMAP port
	TLS         bool   // true: implicit TLS (the IMAPS listener); false: STARTTLS
	Username    string // the bridge's user name (not the provider's)

	// The outgoing server (optional; see the package notes). SMTPTLS is
	// "implicit" or "starttls" (default: implicit on 465, else starttls);
	// SMTPUsername defaults to Email.
	SMTPHost     string
	SMTPPort     int
	SMTPTLS      string
	SMTPUsername string
}

// normalized checks a and fills its defaults and outgoing server.
func (a Account) normalized() (Account, error) {
	a.Host = strings.TrimSpace(a.Host)
	a.Email = strings.TrimSpace(a.Email)
	a.Username = strings.TrimSpace(a.Username)
	if a.Description = strings.TrimSpace(a.Description); a.Description == "" {
		a.Description = "popbridge"
	}
	for _, f := range []struct{ name, v string }{{"description", a.Description}, {"email address", a.Email}, {"name", a.DisplayName},
		{"host", a.Host}, {"user name", a.Username}, {"SMTP host", a.SMTPHost}, {"SMTP user name", a.SMTPUsername}} {
		if err := checkText(f.v); err != nil {
			return a, fmt.Errorf("device settings: the %s %q %v", f.name, f.v, err)
		}
	}
	switch {
	case a.Host == "" || strings.ContainsAny(a.Host, " /@:") && net.ParseIP(a.Host) == nil:
		return a, fmt.Errorf("device settings: %q is not a host name or address for the bridge", a.Host)
	case a.Port <= 0 || a.Port > 65535:
		return a, fmt.Errorf("device settings: port %d is not a TCP port", a.Port)
	case a.Username == "":
		return a, errors.New("device settings: no user name for the bridge")
	case !strings.Contains(a.Email, "@"):
		return a, fmt.Errorf("device settings: %q is not an email address", a.Email)
	}
	if a.SMTPHost == "" {
		if p, ok := providers.ForAddress(a.Email); ok && p.SMTPHost != "" {
			a.SMTPHost, a.SMTPPort, a.SMTPTLS = p.SMTPHost, p.SMTPPort, p.SMTPTLS
			if a.SMTPUsername == "" {
				a.SMTPUsername = p.LoginName(a.Email)
			}
		} else {
			return a, ErrNoOutgoingServer
		}
	}
	if a.SMTPPort == 0 {
		a.SMTPPort = 587
	}
	if a.SMTPPort < 0 || a.SMTPPort > 65535 {
		return a, fmt.Errorf("device settings: SMTP port %d is not a TCP port", a.SMTPPort)
	}
	switch a.SMTPTLS {
	case "":
		a.SMTPTLS = providers.TLSStartTLS
		if a.SMTPPort == 465 {
			a.SMTPTLS = providers.TLSImplicit
		}
	case providers.TLSImplicit, providers.TLSStartTLS:
	default:
		return a, fmt.Errorf("device settings: SMTP security %q: use implicit or starttls", a.SMTPTLS)
	}
	if a.SMTPUsername == "" {
		a.SMTPUsername = a.Email
	}
	return a, nil
}

// checkText refuses what an XML plist cannot carry: invalid UTF-8 and
// control characters other than tab and newlines.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return fmt.Errorf("contains the control character %U", r)
		}
	}
	return nil
}

// profile is the top level of a configuration profile.
type profile struct {
	PayloadContent           []any  `plist:"PayloadContent"`
	PayloadDescription       string `plist:"PayloadDescription"`
	PayloadDisplayName       string `plist:"PayloadDisplayName"`
	PayloadIdentifier        string `plist:"PayloadIdentifier"`
	PayloadOrganization      string `plist:"PayloadOrganization"`
	PayloadRemovalDisallowed bool   `plist:"PayloadRemovalDisallowed"`
	PayloadType              string `plist:"PayloadType"`
	PayloadUUID              string `plist:"PayloadUUID"`
	PayloadVersion           int    `plist:"PayloadVersion"`
}

// mailPayload is Apple's com.apple.mail.managed (an IMAP account).
type mailPayload struct {
	EmailAccountDescription                string `plist:"EmailAccountDescription"`
	EmailAccountName                       string `plist:"EmailAccountName,omitempty"`
	EmailAccountType                       string `plist:"EmailAccountType"`
	EmailAddress                           string `plist:"EmailAddress"`
	IncomingMailServerAuthentication       string `plist:"IncomingMailServerAuthentication"`
	IncomingMailServerHostName             string `plist:"IncomingMailServerHostName"`
	IncomingMailServerPortNumber           int    `plist:"IncomingMailServerPortNumber"`
	IncomingMailServerUseSSL               bool   `plist:"IncomingMailServerUseSSL"`
	IncomingMailServerUsername             string `plist:"IncomingMailServerUsername"`
	OutgoingMailServerAuthentication       string `plist:"OutgoingMailServerAuthentication"`
	OutgoingMailServerHostName             string `plist:"OutgoingMailServerHostName"`
	OutgoingMailServerPortNumber           int    `plist:"OutgoingMailServerPortNumber"`
	OutgoingMailServerUseSSL               bool   `plist:"OutgoingMailServerUseSSL"`
	OutgoingMailServerUsername             string `plist:"OutgoingMailServerUsername"`
	OutgoingPasswordSameAsIncomingPassword bool   `plist:"OutgoingPasswordSameAsIncomingPassword"`
	PayloadDescription                     string `plist:"PayloadDescription"`
	PayloadDisplayName                     string `plist:"PayloadDisplayName"`
	PayloadIdentifier                      string `plist:"PayloadIdentifier"`
	PayloadType                            string `plist:"PayloadType"`
	PayloadUUID                            string `plist:"PayloadUUID"`
	PayloadVersion                         int    `plist:"PayloadVersion"`
}

// rootPayload is Apple's com.apple.security.root (a trusted root CA).
type rootPayload struct {
	PayloadCertificateFileName string `plist:"PayloadCertificateFileName"`
	PayloadContent             []byte `plist:"PayloadContent"`
	PayloadDescription         string `plist:"PayloadDescription"`
	PayloadDisplayName         string `plist:"PayloadDisplayName"`
	PayloadIdentifier          string `plist:"PayloadIdentifier"`
	PayloadType                string `plist:"PayloadType"`
	PayloadUUID                string `plist:"PayloadUUID"`
	PayloadVersion             int    `plist:"PayloadVersion"`
}

// IdentifierPrefix starts every PayloadIdentifier popbridge makes.
const IdentifierPrefix = "com.github.popbridge.profile."

// MobileConfig returns an Apple configuration profile (XML plist) with an
// IMAP account for a (no password inside) and, when caDER is not empty,
// popbridge's CA certificate (DER) as a trusted root. The same inputs give
// the same bytes.
func MobileConfig(a Account, caDER []byte) ([]byte, error) {
	a, err := a.normalized()
	if err != nil {
		return nil, err
	}
	var ca *x509.Certificate
	if len(caDER) > 0 {
		ca, err = x509.ParseCertificate(caDER)
		if err != nil {
			return nil, fmt.Errorf("device profile: the CA certificate does not parse: %w", err)
		}
		if !ca.IsCA {
			return nil, errors.New("device profile: the certificate given as CA is not a CA certificate")
		}
	}
	id := IdentifierPrefix + shortHash(a.Username, strings.ToLower(a.Email))
	all := fmt.Sprintf("%q", []any{a.Description, a.Email, a.DisplayName, a.Host, a.Port, a.TLS, a.Username,
		a.SMTPHost, a.SMTPPort, a.SMTPTLS, a.SMTPUsername, hex.EncodeToString(caDER)})
	mail := mailPayload{
		EmailAccountDescription:                a.Description,
		EmailAccountName:                       a.DisplayName,
		EmailAccountType:                       "EmailTypeIMAP",
		EmailAddress:                           a.Email,
		IncomingMailServerAuthentication:       "EmailAuthPassword",
		IncomingMailServerHostName:             a.Host,
		IncomingMailServerPortNumber:           a.Port,
		IncomingMailServerUseSSL:               a.TLS,
		IncomingMailServerUsername:             a.Username,
		OutgoingMailServerAuthentication:       "EmailAuthPassword",
		OutgoingMailServerHostName:             a.SMTPHost,
		OutgoingMailServerPortNumber:           a.SMTPPort,
		OutgoingMailServerUseSSL:               true,
		OutgoingMailServerUsername:             a.SMTPUsername,
		OutgoingPasswordSameAsIncomingPassword: false,
		PayloadDescription:                     "IMAP account for popbridge / popbridge の IMAP アカウント",
		PayloadDisplayName:                     a.Description,
		PayloadIdentifier:                      id + ".mail",
		PayloadType:                            "com.apple.mail.managed",
		PayloadUUID:                            nameUUID("mail", all),
		PayloadVersion:                         1,
	}
	p := profile{
		PayloadContent:      []any{mail},
		PayloadDescription:  "popbridge: the mail on this PC and your mailbox as one account / このパソコンのメールとメールボックスをひとつのアカウントで",
		PayloadDisplayName:  a.Description,
		PayloadIdentifier:   id,
		PayloadOrganization: "popbridge",
		PayloadType:         "Configuration",
		PayloadUUID:         nameUUID("profile", all),
		PayloadVersion:      1,
	}
	if ca != nil {
		p.PayloadContent = append(p.PayloadContent, rootPayload{
			PayloadCertificateFileName: "popbridge-ca.cer",
			PayloadContent:             caDER,
			PayloadDescription:         "popbridge's local certificate authority, for the bridge's TLS / popbridge の TLS 用のローカル認証局",
			PayloadDisplayName:         ca.Subject.CommonName,
			PayloadIdentifier:          id + ".ca",
			PayloadType:                "com.apple.security.root",
			PayloadUUID:                nameUUID("ca", hex.EncodeToString(caDER)),
			PayloadVersion:             1,
		})
	}
	var buf bytes.Buffer
	enc := plist.NewEncoderForFormat(&buf, plist.XMLFormat)
	enc.Indent("\t")
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("device profile: %w", err)
	}
	return buf.Bytes(), nil
}

// uuidNamespace is popbridge's namespace for name-based UUIDs (random,
// fixed forever: changing it would duplicate installed profiles).
var uuidNamespace = [16]byte{0x6f, 0x2c, 0x1e, 0x8a, 0x93, 0x4d, 0x4b, 0x52, 0xa1, 0x07, 0x3e, 0xd5, 0x58, 0xc9, 0x21, 0x7b}

// nameUUID is an RFC 9562 version 5 (SHA-1, name-based) UUID of kind and
// name in popbridge's namespace, upper-case as Apple writes them.
func nameUUID(kind, name string) string {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(kind + "\x00" + name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	s := hex.EncodeToString(u[:])
	return strings.ToUpper(s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:])
}

func shortHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}
