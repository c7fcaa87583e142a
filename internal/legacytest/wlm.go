package legacytest

import (
	"fmt"
	"path/filepath"
)

// WLMFolder is a folder directory of .eml files.
type WLMFolder struct {
	Dir  string
	Msgs [][]byte // CRLF messages; file names are generated
	Sub  []WLMFolder
}

// WLMAccount is an account directory with its .oeaccount file.
type WLMAccount struct {
	Dir, Name string
	Kind      string // "pop", "imap" or "http"
	Folders   []WLMFolder
}

// WriteWLMFolder writes a folder (and subfolders) below dir.
func WriteWLMFolder(dir string, f WLMFolder) error {
	d := filepath.Join(dir, f.Dir)
	for i, m := range f.Msgs {
		name := fmt.Sprintf("{%08X-1A2B-4C3D-8E9F-%012X}.eml", 0x3C000000+i, i)
		if err := write(filepath.Join(d, name), m); err != nil {
			return err
		}
	}
	for _, s := range f.Sub {
		if err := WriteWLMFolder(d, s); err != nil {
			return err
		}
	}
	return nil
}

// WriteWLM writes a Windows Live Mail store: top-level storage folders,
// "Storage Folders" (user folders) and account directories.
func WriteWLM(root string, top, storage []WLMFolder, accounts []WLMAccount) error {
	if err := write(filepath.Join(root, "Mail.MSMessageStore"), make([]byte, 8192)); err != nil {
		return err
	}
	if err := write(filepath.Join(root, "Backup", "new", "Mail.MSMessageStore"), make([]byte, 4096)); err != nil {
		return err
	}
	for _, f := range top {
		if err := WriteWLMFolder(root, f); err != nil {
			return err
		}
	}
	for _, f := range storage {
		if err := WriteWLMFolder(filepath.Join(root, "Storage Folders"), f); err != nil {
			return err
		}
	}
	for _, a := range accounts {
		server := map[string]string{"pop": "POP3_Server", "imap": "IMAP_Server", "http": "HTTPMail_Server"}[a.Kind]
		xml := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<MessageAccount>\r\n\t<Account_Name type=\"SZ\">%s</Account_Name>\r\n\t<%s type=\"SZ\">mail.example.jp</%s>\r\n\t<Connection_Type type=\"DWORD\">00000003</Connection_Type>\r\n</MessageAccount>\r\n", a.Name, server, server)
		dir := filepath.Join(root, a.Dir)
		if err := write(filepath.Join(dir, "account{0B6C1F5E-2A3B-4C5D-9E8F-123456789ABC}.oeaccount"), []byte(xml)); err != nil {
			return err
		}
		for _, f := range a.Folders {
			if err := WriteWLMFolder(dir, f); err != nil {
				return err
			}
		}
	}
	return nil
}
