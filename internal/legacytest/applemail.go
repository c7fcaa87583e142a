package legacytest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Apple Mail .emlx flag bits.
const (
	EMLXRead      = 1 << 0
	EMLXDeleted   = 1 << 1
	EMLXAnswered  = 1 << 2
	EMLXEncrypted = 1 << 3
	EMLXFlagged   = 1 << 4
	EMLXRecent    = 1 << 5
	EMLXDraft     = 1 << 6
	EMLXInitial   = 1 << 7
	EMLXForwarded = 1 << 8
	EMLXRedirect  = 1 << 9
	EMLXJunk      = 1 << 24
	EMLXNotJunk   = 1 << 25
)

// EMLX returns an .emlx file: the byte count, the message (line ends as
// given; Mail stores LF), the property list.
func EMLX(raw []byte, flags uint64, received time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d        \n", len(raw))
	b.Write(raw)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>date-last-viewed</key>
	<integer>1262304000</integer>
`)
	if !received.IsZero() {
		fmt.Fprintf(&b, "\t<key>date-received</key>\n\t<integer>%d</integer>\n", received.Unix())
	}
	fmt.Fprintf(&b, "\t<key>flags</key>\n\t<integer>%d</integer>\n\t<key>remote-id</key>\n\t<string>%d</string>\n</dict>\n</plist>\n", flags, len(raw))
	return b.Bytes()
}

// AppleMsg is one message of a mailbox.
type AppleMsg struct {
	ID       int
	Raw      []byte // LF line ends, as Mail stores them
	Flags    uint64
	Received time.Time
	// Partial makes it a .partial.emlx whose Raw is the skeleton; Parts
	// are written as "<id>.<part>.emlxpart" (as transferred), Attachments
	// as Attachments/<id>/<part>/<name> (decoded).
	Partial     bool
	Parts       map[string][]byte
	Attachments map[string]AppleAttachment
}

// AppleAttachment is a decoded attachment file.
type AppleAttachment struct {
	Name string
	Data []byte
}

// AppleMailbox is an "X.mbox" directory.
type AppleMailbox struct {
	Name     string
	Msgs     []AppleMsg
	Children []AppleMailbox
	// Exported writes an exported bundle (X.mbox/mbox, an mbox file)
	// holding Mbox instead of messages.
	Exported bool
	Mbox     []byte
	// V2 uses the old layout (X.mbox/Messages/) instead of
	// X.mbox/<UUID>/Data/…/Messages/.
	V2 bool
}

// WriteAppleMailbox writes the mailbox (and its children) into dir.
func WriteAppleMailbox(dir string, mb AppleMailbox) error {
	box := filepath.Join(dir, mb.Name+".mbox")
	if mb.Exported {
		if err := write(filepath.Join(box, "mbox"), mb.Mbox); err != nil {
			return err
		}
		if err := write(filepath.Join(box, "table_of_contents"), []byte{0, 0, 0, 1}); err != nil {
			return err
		}
	} else {
		if err := write(filepath.Join(box, "Info.plist"), []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>DisplayName</key><string>`+mb.Name+`</string></dict></plist>
`)); err != nil {
			return err
		}
		for _, m := range mb.Msgs {
			data := filepath.Join(box, "4E2D2D3B-6C1B-4B8E-9A55-0A1B2C3D4E5F", "Data")
			if mb.V2 {
				data = box
			}
			if m.ID >= 1000 {
				data = filepath.Join(data, strconv.Itoa(m.ID/1000%10), strconv.Itoa(m.ID/10000%10))
			}
			msgs := filepath.Join(data, "Messages")
			name := strconv.Itoa(m.ID) + ".emlx"
			if m.Partial {
				name = strconv.Itoa(m.ID) + ".partial.emlx"
			}
			if err := write(filepath.Join(msgs, name), EMLX(m.Raw, m.Flags, m.Received)); err != nil {
				return err
			}
			for part, b := range m.Parts {
				if err := write(filepath.Join(msgs, fmt.Sprintf("%d.%s.emlxpart", m.ID, part)), b); err != nil {
					return err
				}
			}
			for part, a := range m.Attachments {
				if err := write(filepath.Join(data, "Attachments", strconv.Itoa(m.ID), part, a.Name), a.Data); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range mb.Children {
		if err := WriteAppleMailbox(box, c); err != nil {
			return err
		}
	}
	return nil
}

// WriteAppleMail writes ~/Library/Mail/V<version> under root with the local
// mailboxes ("On My Mac", in Mailboxes/) and POP accounts (directory name
// → mailboxes), plus the MailData directory.
func WriteAppleMail(root string, version int, local []AppleMailbox, accounts map[string][]AppleMailbox) (string, error) {
	v := filepath.Join(root, fmt.Sprintf("V%d", version))
	if err := write(filepath.Join(v, "MailData", "Envelope Index"), []byte("SQLite format 3\x00")); err != nil {
		return "", err
	}
	for _, mb := range local {
		if err := WriteAppleMailbox(filepath.Join(v, "Mailboxes"), mb); err != nil {
			return "", err
		}
	}
	for acct, mbs := range accounts {
		for _, mb := range mbs {
			if err := WriteAppleMailbox(filepath.Join(v, acct), mb); err != nil {
				return "", err
			}
		}
	}
	return v, nil
}
