package archive

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/encoding/unicode"
)

// Windows Live Mail (2009–2012) and Windows Mail (Vista). The store root is
// %LOCALAPPDATA%\Microsoft\Windows Live Mail (or Windows Mail, whose local
// folders sit in "Local Folders"). Each message is one .eml file, each
// folder a directory:
//
//   - the storage folders of POP accounts: Inbox, Outbox, Sent Items,
//     Drafts, Deleted Items, Junk E-mail at the top level and the user's
//     own folders in "Storage Folders" (Windows Mail: all of them in
//     "Local Folders"): shown at the top level (a user folder whose name
//     is taken by a top-level one keeps its "Storage Folders" level);
//   - one directory per account, holding its account{GUID}.oeaccount
//     settings file (XML: Account_Name, POP3_Server, IMAP_Server,
//     HTTPMail_Server): IMAP and Hotmail (HTTP) accounts are skipped with a
//     Problem (their mail is on the server); mail in a POP account's
//     directory is shown below the account's name;
//   - Backup (copies of the database) is skipped.
//
// The folders are KindEML: messages are served byte for byte from the .eml
// files. Read state and other flags live only in the store's ESE database
// (Mail.MSMessageStore), which popbridge does not read: messages from these
// stores start unread. (A reader for it would be a database engine of its
// own; there is no well-kept Go one.)

// isWLMStore reports whether dir (with entries) is a Windows Live Mail or
// Windows Mail store root.
func isWLMStore(dir string, entries []fs.DirEntry) bool {
	switch strings.ToLower(filepath.Base(dir)) {
	case "windows live mail", "windows mail":
		return true
	}
	for _, e := range entries {
		n := strings.ToLower(e.Name())
		switch {
		case !e.IsDir() && (n == "mail.msmessagestore" || strings.HasSuffix(n, ".oeaccount")):
			return true
		case e.IsDir() && n == "storage folders":
			return true
		case e.IsDir() && n == "local folders":
			// Windows Mail's, not Thunderbird's: folders of .eml files.
			if hasEML(filepath.Join(dir, e.Name()), maxDepth-2) {
				return true
			}
		}
	}
	return false
}

// wlmAccount reads an .oeaccount file: the account's name and kind
// ("pop", "imap", "http", or "" when unknown).
func wlmAccount(data []byte) (name, kind string, err error) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		data, err = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder().Bytes(data)
		if err != nil {
			return "", "", err
		}
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) {
		return r, nil // already UTF-8 (the encoding label is left as is)
	}
	var cur string
	for steps := 0; steps < 100000; steps++ {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			cur = strings.ToLower(t.Name.Local)
			switch cur {
			case "imap_server":
				kind = "imap"
			case "httpmail_server":
				if kind == "" {
					kind = "http"
				}
			case "pop3_server":
				if kind == "" {
					kind = "pop"
				}
			}
		case xml.CharData:
			if cur == "account_name" && name == "" {
				name = strings.TrimSpace(string(t))
			}
		case xml.EndElement:
			cur = ""
		}
	}
	if name == "" && kind == "" {
		return "", "", errors.New("no account settings found")
	}
	return name, kind, nil
}

// walkWLM lists the folders of a Windows Live Mail or Windows Mail store.
func walkWLM(abs string) ([]Folder, []Problem, error) {
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	w := &walker{}
	type dir struct {
		full string
		path []string
	}
	var top, storage []dir
	topNames := map[string]bool{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, ok := w.entryType(abs, e)
		if !ok || !t.IsDir() {
			continue
		}
		full := filepath.Join(abs, e.Name())
		lname := strings.ToLower(e.Name())
		switch {
		case lname == "backup":
			continue
		case lname == "storage folders" || lname == "local folders":
			sub, ok := w.readDir(full)
			if !ok {
				continue
			}
			for _, s := range sub {
				if st, ok := w.entryType(full, s); ok && st.IsDir() && !strings.HasPrefix(s.Name(), ".") {
					sfull := filepath.Join(full, s.Name())
					storage = append(storage, dir{sfull, []string{w.component(sfull, s.Name())}})
				}
			}
			if lname == "local folders" {
				for _, s := range sub {
					if !s.IsDir() && isEMLName(s.Name()) {
						w.report(full, errors.New("messages directly in Local Folders are not in any folder; shown as the folder \"Local Folders\""))
						top = append(top, dir{full, []string{"Local Folders"}})
						topNames["local folders"] = true
						break
					}
				}
			}
		default:
			sub, ok := w.readDir(full)
			if !ok {
				continue
			}
			name := e.Name()
			acct := false
			for _, s := range sub {
				if s.IsDir() || !strings.EqualFold(filepath.Ext(s.Name()), ".oeaccount") {
					continue
				}
				acct = true
				p := filepath.Join(full, s.Name())
				data, err := readLimited(p, 1<<20)
				if err != nil {
					w.report(p, fmt.Errorf("cannot read: %w", unwrapPath(err)))
					continue
				}
				n, kind, err := wlmAccount(data)
				if err != nil {
					w.report(p, err)
					continue
				}
				if kind == "imap" || kind == "http" {
					what := map[string]string{"imap": "IMAP", "http": "Hotmail (HTTP)"}[kind]
					w.report(full, fmt.Errorf("Windows Live Mail %s account %q skipped: its mail is on the server (to read this copy anyway, add %s as its own source with format \"eml\")", what, w.component(full, n), full))
					name = ""
				} else if n != "" {
					name = n
				}
				break
			}
			if name == "" {
				continue
			}
			if acct && !hasEML(full, 0) {
				continue // a POP account's settings; its mail is in the storage folders
			}
			cname := w.component(full, name)
			topNames[strings.ToLower(cname)] = true
			top = append(top, dir{full, []string{cname}})
		}
	}
	for _, d := range top {
		w.emlDir(d.full, d.path, 1)
	}
	for _, d := range storage {
		p := d.path
		if topNames[strings.ToLower(p[0])] {
			p = []string{"Storage Folders", p[0]}
			w.report(d.full, fmt.Errorf("a top-level folder is also named %q; this one is shown as %q", d.path[0], strings.Join(p, "/")))
		}
		w.emlDir(d.full, p, 1)
	}
	if len(w.folders) == 0 && len(w.problems) == 0 && !isWLMStore(abs, entries) {
		return nil, nil, fmt.Errorf("%w: %s: not a Windows Live Mail or Windows Mail store (no folders of .eml files)", ErrUnknownFormat, abs)
	}
	return w.finish(), w.problems, nil
}
