// Package legacytest writes synthetic mail stores of the programs
// popbridge reads — Becky! Internet Mail 2, Outlook Express 5/6 (.dbx),
// Windows Live Mail, Apple Mail (.emlx) — for tests and benchmarks. It is
// test code: nothing in the product imports it.
//
// The writers follow the formats as the programs write them (see the
// readers in backend/archive for the layouts), including their
// bookkeeping: Becky!'s Folder.idx and dot-stuffing, .dbx headers, trees,
// message info objects and 512-byte block chains (readable by Debian's
// undbx), .emlx byte counts and property lists, partial .emlx files with
// their .emlxpart and Attachments parts. Names may be CP932 bytes (SJIS),
// as the Windows programs store them.
package legacytest

import (
	"os"
	"path/filepath"

	"golang.org/x/text/encoding/japanese"
)

// SJIS encodes s in CP932 (Shift_JIS), as Windows programs store Japanese
// names. It panics on text CP932 cannot hold (test data only).
func SJIS(s string) string {
	b, err := japanese.ShiftJIS.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return b
}

// write creates the file path (and its directories) with data.
func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
