package archive

import (
	"errors"
	"fmt"
	"slices"
)

// Format names an archive format, as written in the configuration.
type Format string

// Archive formats. FormatAuto asks Walk to Detect the format.
const (
	FormatAuto        Format = "auto"
	FormatMbox        Format = "mbox"
	FormatThunderbird Format = "thunderbird"
	FormatMaildir     Format = "maildir"
	FormatEML         Format = "eml"
	// FormatPST is an Outlook .pst file (Detect: a ".pst" file or the
	// "!BDN" magic); its folders are KindPST.
	FormatPST Format = "pst"
	// FormatBecky is a Becky! Internet Mail 2 data directory (or one
	// "<hex>.mb" mailbox in it); its folders are KindBecky.
	FormatBecky Format = "becky"
	// FormatDBX is an Outlook Express 5/6 store directory (Folders.dbx and
	// one .dbx file per folder) or a single .dbx file; its folders are
	// KindDBX.
	FormatDBX Format = "dbx"
	// FormatWLM is a Windows Live Mail or Windows Mail store directory (one
	// .eml file per message); its folders are KindEML.
	FormatWLM Format = "wlm"
	// FormatAppleMail is Apple Mail's ~/Library/Mail (or one V<n>
	// directory, or .mbox mailboxes and exported .mbox bundles); its
	// folders are KindEMLX (and KindMbox for exported bundles).
	FormatAppleMail Format = "applemail"
)

// Formats lists every format name ParseFormat accepts, in the order the
// configuration documents them.
var Formats = []Format{FormatAuto, FormatMbox, FormatThunderbird, FormatMaildir, FormatEML, FormatPST, FormatBecky, FormatDBX, FormatWLM, FormatAppleMail}

// ParseFormat maps a configuration value (case-insensitive; "" means auto)
// to a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "":
		return FormatAuto, nil
	}
	if slices.Contains(Formats, Format(asciiLower(s))) {
		return Format(asciiLower(s)), nil
	}
	return "", fmt.Errorf("unknown archive format %q (want auto, mbox, thunderbird, maildir, eml, pst, becky, dbx, wlm or applemail)", s)
}

// ErrPSTUnsupported is no longer returned: Walk reads .pst files (see
// ErrPSTCorrupt and ErrPSTPassword for the files it cannot read).
var ErrPSTUnsupported = errors.New("pst archives are not supported yet")

// ErrUnknownFormat is returned (wrapped, naming the path) by Detect and Walk
// when a path is not an archive this package can read.
var ErrUnknownFormat = errors.New("not a recognised archive")

// ErrNotAtSeparator is returned (wrapped) by ScanMbox when start is not the
// offset of a "From " line: the file was rewritten since that offset was
// recorded.
var ErrNotAtSeparator = errors.New("offset is not at a message separator (file rewritten?)")

// Kind says how a folder's messages are stored.
type Kind int

// Folder kinds.
const (
	KindMbox    Kind = iota + 1 // one mbox file; read with ScanMbox
	KindMaildir                 // a Maildir (cur/, new/); read with ListFiles
	KindEML                     // a directory of .eml files; read with ListFiles
	KindPST                     // a folder inside an Outlook .pst file; read with ScanPST
	KindBecky                   // a Becky! folder directory (Folder.idx, *.bmf); read with ScanItems
	KindDBX                     // an Outlook Express .dbx file; read with ScanItems
	KindEMLX                    // an Apple Mail .mbox directory of .emlx files; read with ScanItems
)

func (k Kind) String() string {
	switch k {
	case KindMbox:
		return "mbox"
	case KindMaildir:
		return "maildir"
	case KindEML:
		return "eml"
	case KindPST:
		return "pst"
	case KindBecky:
		return "becky"
	case KindDBX:
		return "dbx"
	case KindEMLX:
		return "emlx"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Folder is one IMAP folder found in a source.
type Folder struct {
	// Path is the folder's name components below the source root: valid
	// UTF-8, no "/" or control character in a component. Empty means the
	// source root itself is the folder (a single mbox file, a flat .eml
	// directory, the INBOX of a plain Maildir).
	Path []string
	Kind Kind
	// Loc is an absolute path: the mbox file, the Maildir directory (holding
	// cur/ and new/), the directory of .eml files, the Becky! folder
	// directory, the .dbx file, or the Apple Mail .mbox directory.
	Loc string
	// SpecialUse is "", `\Sent`, `\Drafts`, `\Trash`, `\Junk` or `\Archive`,
	// from SpecialUse of the last Path component (always "" for NoSelect).
	SpecialUse string
	// NoSelect marks a pure container (e.g. "X.sbd/" whose "X" mbox file is
	// missing); Kind and Loc are unused then.
	NoSelect bool
	// Ref finds the folder again inside its archive file (for KindPST the
	// folder's node ID, for ScanPST); "" for other kinds.
	Ref string
}

// Problem is something skipped or suspicious, reported once, naming the file
// (and the offset, when there is one).
type Problem struct {
	Path   string
	Offset int64 // -1 if not applicable
	Err    error
}

func (p Problem) Error() string {
	if p.Offset >= 0 {
		return fmt.Sprintf("%s at offset %d: %v", p.Path, p.Offset, p.Err)
	}
	return fmt.Sprintf("%s: %v", p.Path, p.Err)
}

// Unwrap returns p.Err.
func (p Problem) Unwrap() error { return p.Err }

func problem(path string, off int64, format string, args ...any) Problem {
	return Problem{Path: path, Offset: off, Err: fmt.Errorf(format, args...)}
}

// comparePath orders folder paths component by component (byte order).
func comparePath(a, b []string) int {
	return slices.Compare(a, b)
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
