package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestLegacySourceFormats: the formats of issue I are accepted, their
// sources get the mail program's name, and a format that needs a
// directory refuses a file with a message naming both.
func TestLegacySourceFormats(t *testing.T) {
	env := newCfgEnv(t)
	cfgWriteFile(t, filepath.Join(env.dir, "Becky", "4a5b6c7d.mb", "Mailbox.ini"), "[Account]\r\nName=x\r\n", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "OE", "Inbox.dbx"), "\xCF\xAD\x12\xFE", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "Windows Live Mail", "Inbox", "a.eml"), "A: b\r\n\r\n", 0o600)
	cfgWriteFile(t, filepath.Join(env.dir, "Windows Mail", "Local Folders", "Inbox", "a.eml"), "A: b\r\n\r\n", 0o600)
	cfgMkdir(t, filepath.Join(env.dir, "Library", "Mail", "V10", "MailData"))
	cfgMkdir(t, filepath.Join(env.dir, "Archive.mbox", "Messages"))
	for _, tt := range []struct{ path, format, want string }{
		{"Becky", "", "Becky"},
		{"Becky", "becky", "Becky"},
		{"OE", "DBX", "Outlook Express"},
		{"OE/Inbox.dbx", "dbx", "Inbox"},
		{"Windows Live Mail", "", "Windows Live Mail"},
		{"Windows Mail", "wlm", "Windows Mail"},
		{"Library/Mail", "", "Apple Mail"},
		{"Library/Mail/V10", "applemail", "Apple Mail"},
		{"Archive.mbox", "", "Archive"},
	} {
		t.Run(tt.path+"/"+tt.format, func(t *testing.T) {
			cfg, _, err := env.parse(fmt.Sprintf("[[archive.sources]]\npath = %q\nformat = %q\n", tt.path, tt.format))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Archive.Sources[0].Name; got != tt.want {
				t.Errorf("name = %q, want %q", got, tt.want)
			}
		})
	}
	for _, f := range []string{"becky", "wlm", "applemail"} {
		_, _, err := env.parse(fmt.Sprintf("[[archive.sources]]\npath = \"old.mbox\"\nformat = %q\n", f))
		want := fmt.Sprintf("archive.sources[0].path: %s is a file, but format %q needs the program's mail folder", filepath.Join(env.dir, "old.mbox"), f)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s on a file: %v", f, err)
		}
	}
}
