package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Detect guesses the format of the archive at path.
//
// A regular file is an mbox if it starts with "From " or is empty, a PST if
// it has the ".pst" extension or the "!BDN" magic, an Outlook Express
// folder if it has the ".dbx" extension or the .dbx magic. A directory is,
// in this order of checks: a Maildir if it has cur/ and new/; a Thunderbird
// profile if it has prefs.js or Mail/; a Windows Live Mail / Windows Mail
// store if it holds Mail.MSMessageStore, an .oeaccount file, "Storage
// Folders" or a "Local Folders" directory of .eml folders, or is named
// after the program; a Becky! data directory if it holds "<hex>.mb"
// mailboxes (or is one, or is a folder with Folder.idx or .bmf files); an
// Outlook Express store if it holds .dbx files; Apple Mail if it is or
// holds "*.mbox" directories or "V<n>" directories; a Thunderbird mail
// directory if it holds a "*.msf" file, a "*.sbd" directory or a "Local
// Folders" directory, is itself named "Local Folders", or holds an mbox
// file (Eudora's "*.mbx" included); a tree of .eml (or AL-Mail .alm)
// files if there is one anywhere below. Anything else is an error wrapping
// ErrUnknownFormat and naming path.
func Detect(path string) (Format, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	switch {
	case fi.Mode().IsRegular():
		return detectFile(path)
	case fi.IsDir():
		return detectDir(path)
	}
	return "", fmt.Errorf("%w: %s: neither a regular file nor a directory", ErrUnknownFormat, path)
}

func detectFile(path string) (Format, error) {
	head, err := readHead(path, 16)
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	switch {
	case len(head) == 0 || strings.HasPrefix(string(head), "From "):
		return FormatMbox, nil
	case strings.EqualFold(filepath.Ext(path), ".pst") || strings.HasPrefix(string(head), "!BDN"):
		return FormatPST, nil
	case strings.EqualFold(filepath.Ext(path), ".dbx") || len(head) >= 4 && string(head[:4]) == string(dbxMagicMessages[:4]):
		return FormatDBX, nil
	case strings.EqualFold(filepath.Ext(path), ".emlx"):
		return "", fmt.Errorf("%w: %s: a single Apple Mail .emlx file; use the mailbox (the \".mbox\" directory) or ~/Library/Mail", ErrUnknownFormat, path)
	case strings.EqualFold(filepath.Ext(path), ".eml"):
		return "", fmt.Errorf("%w: %s: a single .eml file; use the directory that holds the .eml files", ErrUnknownFormat, path)
	}
	return "", fmt.Errorf("%w: %s: not an mbox file (it does not start with \"From \"; if it is an mbox with junk in front, set format = \"mbox\")", ErrUnknownFormat, path)
}

// readHead returns up to n bytes from the start of the file.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return b[:k], nil
}

func detectDir(path string) (Format, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	if isMaildir(path) {
		return FormatMaildir, nil
	}
	if isProfile(path) {
		return FormatThunderbird, nil
	}
	if f, ok := detectLegacyDir(path, entries); ok {
		return f, nil
	}
	if filepath.Base(path) == "Local Folders" {
		return FormatThunderbird, nil
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		switch t := e.Type(); {
		case t.IsDir() && (strings.HasSuffix(name, ".sbd") || name == "Local Folders"):
			return FormatThunderbird, nil
		case t.IsRegular() && strings.HasSuffix(name, ".msf"):
			return FormatThunderbird, nil
		case t.IsRegular() && !ignoredMailFile(name):
			if head, err := readHead(filepath.Join(path, name), 5); err == nil && string(head) == "From " {
				return FormatThunderbird, nil
			}
		}
	}
	if hasEML(path, 0) {
		return FormatEML, nil
	}
	return "", fmt.Errorf("%w: %s: no mbox files, Maildir (cur/, new/), Thunderbird, Becky!, Outlook Express, Windows Live Mail or Apple Mail folders, or .eml files found", ErrUnknownFormat, path)
}

// detectLegacyDir recognises the stores of Windows Live Mail, Becky!,
// Outlook Express and Apple Mail.
func detectLegacyDir(path string, entries []fs.DirEntry) (Format, bool) {
	if isWLMStore(path, entries) {
		return FormatWLM, true
	}
	if isBeckyDataDir(path, entries) || isBeckyFolderDir(entries) {
		return FormatBecky, true
	}
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".dbx") {
			return FormatDBX, true
		}
	}
	if strings.EqualFold(filepath.Ext(path), ".mbox") {
		return FormatAppleMail, true
	}
	if v, _ := newestMailVersion(path); v != "" || isMailVersionDir(path, entries) {
		return FormatAppleMail, true
	}
	for _, e := range entries {
		if e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".mbox") && !strings.HasPrefix(e.Name(), ".") {
			return FormatAppleMail, true
		}
	}
	return "", false
}

// isMaildir reports whether dir has cur/ and new/ directories.
func isMaildir(dir string) bool {
	return isDir(filepath.Join(dir, "cur")) && isDir(filepath.Join(dir, "new"))
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// isProfile reports whether dir is a Thunderbird profile directory.
func isProfile(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "prefs.js")); err == nil && fi.Mode().IsRegular() {
		return true
	}
	return isDir(filepath.Join(dir, "Mail"))
}

// maxDepth bounds directory recursion (symbolic links to directories are
// never followed, so this only guards against absurd trees).
const maxDepth = 64

// hasEML reports whether a *.eml file exists in dir or below.
func hasEML(dir string, depth int) bool {
	if depth > maxDepth {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if isEMLName(e.Name()) && e.Type()&fs.ModeDir == 0 {
			return true
		}
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && hasEML(filepath.Join(dir, e.Name()), depth+1) {
			return true
		}
	}
	return false
}

// isEMLName reports whether name is a one-message file: "*.eml", or
// AL-Mail's "*.alm".
func isEMLName(name string) bool {
	if len(name) <= 4 || strings.HasPrefix(name, ".") {
		return false
	}
	ext := name[len(name)-4:]
	return strings.EqualFold(ext, ".eml") || strings.EqualFold(ext, ".alm")
}

// ignoredMailFile reports whether a file in a Thunderbird mail directory is
// known not to be a folder: summary files, POP state, filters, address
// books, logs, dotfiles.
func ignoredMailFile(name string) bool {
	if strings.HasPrefix(name, ".") || name == "filterlog.html" {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".msf", ".dat", ".json", ".html", ".htm", ".js", ".sqlite", ".mab",
		".sqlite-journal", ".sqlite-wal", ".sqlite-shm", ".eml", ".lock", ".toc", ".pce", ".alm":
		return true
	}
	return false
}
