package legacytest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"
)

// Becky! status bits in Folder.idx.
const (
	BeckyRead      = 0x1
	BeckyForwarded = 0x2
	BeckyReplied   = 0x4
	BeckyMDNSent   = 0x400
	BeckyFlagged   = 0x1000
)

// BeckyMsg is one message of a Becky! folder.
type BeckyMsg struct {
	Raw      []byte // the message (CRLF line ends, as Becky! stores it)
	Status   uint32
	Received time.Time
	// Deleted messages stay in the .bmf file but are not in Folder.idx.
	Deleted bool
}

// BeckyFolder is a folder directory.
type BeckyFolder struct {
	Dir     string // the directory name as stored (CP932 bytes allowed)
	Msgs    []BeckyMsg
	Sub     []BeckyFolder
	PerFile int  // messages per .bmf file (0: all in one)
	NoIndex bool // write no Folder.idx
}

// BeckyMailbox is a "<hex>.mb" mailbox directory.
type BeckyMailbox struct {
	Dir     string // e.g. "4a5b6c7d.mb"
	Name    string // Mailbox.ini [Account] Name= (CP932 bytes allowed)
	IMAP    bool
	Folders []BeckyFolder
}

// WriteBecky writes a Becky! data directory with the given mailboxes.
func WriteBecky(root string, boxes []BeckyMailbox) error {
	for _, b := range boxes {
		dir := filepath.Join(root, b.Dir)
		proto := "0"
		if b.IMAP {
			proto = "1"
		}
		ini := fmt.Sprintf("[Account]\r\nName=%s\r\nMailAddress=me@example.jp\r\nProtocol=%s\r\n", b.Name, proto)
		if err := write(filepath.Join(dir, "Mailbox.ini"), []byte(ini)); err != nil {
			return err
		}
		for _, f := range b.Folders {
			if err := WriteBeckyFolder(filepath.Join(dir, f.Dir), f); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteBeckyFolder writes one folder directory (and its subfolders).
func WriteBeckyFolder(dir string, f BeckyFolder) error {
	per := f.PerFile
	if per <= 0 {
		per = len(f.Msgs) + 1
	}
	var idx bytes.Buffer
	idx.WriteString("Becky! Folder Index 2.05\r\n")
	for start, n := 0, 0; start < len(f.Msgs); start, n = start+per, n+1 {
		end := min(start+per, len(f.Msgs))
		name := fmt.Sprintf("%08x.bmf", 0x5a000000+n)
		bmf, offs := BeckyBMF(f.Msgs[start:end])
		if err := write(filepath.Join(dir, name), bmf); err != nil {
			return err
		}
		for i, m := range f.Msgs[start:end] {
			if !m.Deleted {
				idx.Write(BeckyIndexLine(name, offs[i], m))
			}
		}
	}
	if !f.NoIndex {
		if err := write(filepath.Join(dir, "Folder.idx"), idx.Bytes()); err != nil {
			return err
		}
	}
	for _, s := range f.Sub {
		if err := WriteBeckyFolder(filepath.Join(dir, s.Dir), s); err != nil {
			return err
		}
	}
	return nil
}

// BeckyBMF returns the bytes of a .bmf file holding msgs, and the offset of
// each message: every message dot-stuffed and ended by a "." line.
func BeckyBMF(msgs []BeckyMsg) ([]byte, []int64) {
	var b bytes.Buffer
	offs := make([]int64, len(msgs))
	for i, m := range msgs {
		offs[i] = int64(b.Len())
		raw := m.Raw
		for len(raw) > 0 {
			line := raw
			if k := bytes.IndexByte(raw, '\n'); k >= 0 {
				line, raw = raw[:k+1], raw[k+1:]
			} else {
				raw = nil
			}
			if line[0] == '.' {
				b.WriteByte('.')
			}
			b.Write(line)
		}
		if b.Len() > 0 && b.Bytes()[b.Len()-1] != '\n' {
			b.WriteString("\r\n")
		}
		b.WriteString(".\r\n")
	}
	return b.Bytes(), offs
}

// BeckyIndexLine is one Folder.idx line: offset, file, Message-Id, date,
// received date, size, status (hex, separated by 0x01), then the sender
// and subject as Becky! keeps them for its list.
func BeckyIndexLine(file string, off int64, m BeckyMsg) []byte {
	msgID := header(m.Raw, "Message-Id")
	recv := m.Received.Unix()
	if m.Received.IsZero() {
		recv = 0
	}
	return fmt.Appendf(nil, "%x\x01%s\x01%s\x01%x\x01%x\x01%x\x01%x\x01%s\x01%s\r\n",
		off, file, msgID, recv, recv, len(m.Raw), m.Status, header(m.Raw, "From"), header(m.Raw, "Subject"))
}

// header returns the first value of a header field in raw (unfolded no
// further than the first line).
func header(raw []byte, name string) string {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(k, []byte(name)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}
