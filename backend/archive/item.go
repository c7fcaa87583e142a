package archive

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"time"
)

// Becky!, Outlook Express and Apple Mail folders hold their messages inside
// files the program manages (a Becky! .bmf file, a .dbx file, one .emlx
// file per message plus a trailer). ScanItems lists such a folder's
// messages with where their bytes are; ReadItem reads one back by that
// location, for serving.

// Item is one message of a KindBecky, KindDBX or KindEMLX folder: where its
// bytes are and what the archive records about it.
type Item struct {
	// ID identifies the message within its folder for as long as the
	// archive keeps it in place: "<file>.bmf:<offset in hex>" for Becky!,
	// the message's index number for Outlook Express (with "@<offset>"
	// for messages recovered from a damaged file), the .emlx file's path
	// below the mailbox without its extension for Apple Mail.
	ID string
	// Path, Offset and Length locate the message for ReadItem: the file,
	// and where in it the message starts (for a .dbx file its first data
	// block). Length is the message's length in the file, exact when
	// Served is set; 0 when not yet known.
	Path   string
	Offset int64
	Length int64
	// Flags are the IMAP flags the archive records, sorted.
	Flags []string
	// Received is when the message arrived, if the archive records it.
	Received time.Time
	// Served holds the bytes served to clients (CRLF line ends, archive
	// framing removed). It is nil when the caller's known function
	// reported it already has the message; valid only during the callback.
	Served []byte
	// Rebuilt means Served was put together from several files (an Apple
	// Mail .partial.emlx and its parts): ReadItem cannot read it back, so
	// the caller keeps a copy.
	Rebuilt bool
}

// maxItemSize bounds one message read from a Becky!, .dbx or .emlx file.
const maxItemSize = 256 << 20

// ErrItemChanged is wrapped by ReadItem's error when the bytes at a
// recorded location are no longer a whole message (the file was rewritten
// since it was scanned).
var ErrItemChanged = errors.New("the message is no longer at the recorded place (file rewritten?)")

// ScanItems calls fn for each message of folder f (KindBecky, KindDBX or
// KindEMLX), in the archive's order. For each message it first asks known
// (which may be nil): when that returns true, fn gets the message without
// reading its bytes (Served nil); otherwise with them. Messages that cannot
// be read are Problems naming the file (and offset) and are skipped;
// messages the archive marks deleted are not delivered. err is returned
// for a folder that cannot be read at all, or is fn's error as is.
func ScanItems(f Folder, known func(*Item) bool, fn func(*Item) error) ([]Problem, error) {
	if f.NoSelect {
		return nil, fmt.Errorf("folder %q is a container and holds no messages", strings.Join(f.Path, "/"))
	}
	if known == nil {
		known = func(*Item) bool { return false }
	}
	switch f.Kind {
	case KindBecky:
		return scanBecky(f.Loc, known, fn)
	case KindDBX:
		return scanDBXFile(f.Loc, known, fn)
	case KindEMLX:
		return scanEMLX(f.Loc, known, fn)
	}
	return nil, fmt.Errorf("folder %q is a %v folder, not a Becky!, Outlook Express or Apple Mail one", strings.Join(f.Path, "/"), f.Kind)
}

// ReadItem appends to dst the served bytes of the message of a folder of
// the given kind at (path, off, length), as ScanItems reported them, and
// returns the result. An error wrapping ErrItemChanged means the file no
// longer holds a message there.
func ReadItem(kind Kind, path string, off, length int64, dst []byte) ([]byte, error) {
	if off < 0 || length <= 0 || length > maxItemSize {
		return dst, fmt.Errorf("%s at offset %d: %d bytes: %w", path, off, length, ErrItemChanged)
	}
	f, err := os.Open(path) // read-only: the archive is sealed
	if err != nil {
		return dst, err
	}
	defer f.Close()
	switch kind {
	case KindBecky, KindEMLX:
		raw := make([]byte, length)
		if _, err := f.ReadAt(raw, off); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: %w", ErrItemChanged, err)
			}
			return dst, fmt.Errorf("%s at offset %d: %w", path, off, err)
		}
		if kind == KindBecky {
			return appendServedBecky(dst, raw), nil
		}
		return AppendServedFile(dst, raw), nil
	case KindDBX:
		if off > 1<<32-1 {
			return dst, fmt.Errorf("%s at offset %d: beyond what a .dbx file can address: %w", path, off, ErrItemChanged)
		}
		fi, err := f.Stat()
		if err != nil {
			return dst, err
		}
		d := newDBXReader(f, fi.Size(), path, 64<<10)
		raw, err := d.chain(uint32(off), nil)
		if err != nil {
			return dst, fmt.Errorf("%s at offset %d: %w: %w", path, off, ErrItemChanged, err)
		}
		if int64(len(raw)) != length {
			return dst, fmt.Errorf("%s at offset %d: %d bytes, indexed %d: %w", path, off, len(raw), length, ErrItemChanged)
		}
		return AppendServedFile(dst, raw), nil
	}
	return dst, fmt.Errorf("%s: a %v folder has no messages inside files", path, kind)
}

// Signature summarises the state of a KindBecky, KindDBX or KindEMLX
// folder's files (names, sizes and modification times) without reading
// them: when neither size nor sum changed, neither did the messages.
func Signature(f Folder) (size int64, sum uint64, err error) {
	h := fnv.New64a()
	add := func(name string, fi os.FileInfo) {
		size += fi.Size()
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", name, fi.Size(), fi.ModTime().UnixNano())
	}
	switch f.Kind {
	case KindDBX:
		fi, err := os.Stat(f.Loc)
		if err != nil {
			return 0, 0, err
		}
		add(f.Loc, fi)
	case KindBecky:
		if err := beckySignature(f.Loc, add); err != nil {
			return 0, 0, err
		}
	case KindEMLX:
		if err := emlxSignature(f.Loc, add); err != nil {
			return 0, 0, err
		}
	default:
		return 0, 0, fmt.Errorf("folder %q: no signature for a %v folder", strings.Join(f.Path, "/"), f.Kind)
	}
	return size, h.Sum64(), nil
}
