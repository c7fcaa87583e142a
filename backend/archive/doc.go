// Package archive reads legacy POP-era mail archives — Thunderbird "Local
// Folders" (mbox files plus ".sbd" subfolder directories, or Thunderbird's
// Maildir store), plain mbox files, Maildir / Maildir++ trees and directories
// of .eml files — strictly read-only.
//
// Implementation notes (invariants):
//
//   - The archive is sealed. Every file and directory is opened with os.Open
//     (O_RDONLY) or read with os.ReadDir / os.Lstat / os.Stat; nothing in an
//     archive path is ever written, renamed, locked, created, chmod-ed or
//     touched. A test scans this package's sources for calls that could.
//   - Bad input never panics and never stops the walk: whatever is skipped or
//     looks wrong is returned as a Problem naming the file (and offset).
//     Only a root that cannot be used at all is an error.
//   - Folder paths are valid UTF-8, have no empty component and no component
//     containing "/" or a control character. For every folder returned by
//     Walk, every non-empty proper prefix of its Path is returned too (as a
//     NoSelect container when nothing selectable lives there), so an IMAP
//     LIST built from them has no holes.
//   - Served bytes (ServeMbox, ServeFile) are the archive's bytes minus the
//     archive's framing: the mbox "From " line, mboxrd ">From " quoting,
//     Thunderbird's X-Mozilla-Status / X-Mozilla-Status2 / X-Mozilla-Keys
//     header fields and the blank line that separates mbox messages; every
//     LF line ending becomes CRLF. Nothing else is changed.
//   - ScanMbox streams: it holds one bounded read buffer plus the message
//     being assembled, never the whole file.
//
// Flags: Thunderbird keeps them in X-Mozilla-Status headers inside the
// message (also in its Maildir store, whose file names carry no ":2," info),
// mbox writers in Status / X-Status, Maildir in the file name. For a Maildir
// folder, callers should take the union of FileEntry.Flags and
// ParseMeta(content).Flags, and hide messages whose Meta.Expunged is set.
package archive
