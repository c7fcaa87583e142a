// Package store is popbridge's persistent state: the index of the legacy
// archives, the overlay of everything clients did to legacy messages, and
// (later) upstream sync state. It is the only package that imports bbolt and
// it owns every byte layout on disk.
//
// Implementation notes:
//
//   - One bbolt file per data directory; bbolt admits one process, so Open
//     fails fast with ErrLocked when another popbridge holds it.
//   - Transactions are short and never nested. Values are copied out before
//     a transaction ends (decoding does that).
//   - Folders live in the "folders" bucket keyed by their full IMAP name; each
//     folder has a numeric ID that never changes (a RENAME only moves the
//     key), and its messages live in the sub-bucket msgs/<ID> keyed by
//     big-endian UID so a cursor walks them in UID order.
//   - UIDs strictly increase and are never reused within a UIDVALIDITY
//     (RFC 3501 2.3.1.1): Folder.UIDNext only grows, AddMessage is the only
//     place that takes a UID.
//   - Message and upload records are binary (codec.go): decoding JSON
//     was most of a cold count of 100k messages. JSON records of older
//     versions are still read and become binary when next written; an
//     older popbridge cannot read a database this one has written.
//   - Legacy messages are never deleted from the index by a client: an
//     EXPUNGE or a MOVE away sets Message.Hidden (the overlay), so a re-index
//     of the sealed archive does not bring them back and the change can be
//     undone.
package store

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// ErrLocked means another process has the data directory open.
var ErrLocked = errors.New("another popbridge is already running on this data directory (the database is locked); stop it, or use its control endpoint")

// ErrNewerFormat means the database was written by a newer popbridge.
var ErrNewerFormat = errors.New("this data directory was written by a newer popbridge")

// formatVersion is the database format this build writes: 2 since the
// binary message records (codec.go). A build refuses a database of a
// higher format instead of misreading it.
const formatVersion = 2

// ErrNoFolder is returned for an unknown folder name.
var ErrNoFolder = errors.New("no such folder")

// ErrFolderExists is returned when creating or renaming onto an existing name.
var ErrFolderExists = errors.New("folder already exists")

// ErrNoMessage is returned for an unknown UID.
var ErrNoMessage = errors.New("no such message")

var (
	bucketFolders = []byte("folders")
	bucketMsgs    = []byte("msgs")
	bucketMeta    = []byte("meta")
	bucketKV      = []byte("kv")

	keyFolderSeq   = []byte("folder-seq")
	keyUIDValidity = []byte("uidvalidity")
	keyFormat      = []byte("format")

	subMsg  = []byte("m")  // uid -> Message record (codec.go)
	subFP   = []byte("fp") // fp(16) + uid(4) -> nil
	subEnv  = []byte("e")  // uid -> envelope
	subBS   = []byte("b")  // uid -> bodystructure
	subHFP  = []byte("h")  // hfp(16) + uid(4) -> nil
	subUIDL = []byte("u")  // uidl + 0 + uid -> nil
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Timeout is how long to wait for the file lock; 0 means 1s.
	Timeout time.Duration
	// NoSync skips fsync on commit (benchmarks and tests only).
	NoSync bool
}

// DB is the popbridge database.
type DB struct {
	bolt *bolt.DB
	path string
}

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFolders, bucketMsgs, bucketMeta, bucketKV} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyFormat); len(v) == 4 && binary.BigEndian.Uint32(v) > formatVersion {
			return fmt.Errorf("%w (format %d; this one reads up to %d): run that newer popbridge, or point data_dir at a new directory", ErrNewerFormat, binary.BigEndian.Uint32(v), formatVersion)
		} else if len(v) != 4 || binary.BigEndian.Uint32(v) < formatVersion {
			return meta.Put(keyFormat, u32(formatVersion))
		}
		return nil
	})
	if err != nil {
		b.Close()
		if errors.Is(err, ErrNewerFormat) {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		return nil, fmt.Errorf("initialise database %s: %w", path, err)
	}
	return &DB{bolt: b, path: path}, nil
}

// Path returns the database file path.
func (db *DB) Path() string { return db.path }

// Close closes the database.
func (db *DB) Close() error { return db.bolt.Close() }

// Folder is one IMAP folder known to the bridge.
type Folder struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"` // full IMAP name, "/"-separated
	// UIDValidity and UIDNext follow RFC 3501 2.3.1.1: UIDNext only grows.
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`

	Source     string `json:"source,omitempty"` // archive source name; "" for bridge-created folders
	Kind       int    `json:"kind,omitempty"`   // archive.Kind; 0 = no archive backing
	Loc        string `json:"loc,omitempty"`    // archive path backing this folder
	SpecialUse string `json:"special_use,omitempty"`
	NoSelect   bool   `json:"noselect,omitempty"`
	Created    bool   `json:"created,omitempty"` // created by a client: may be renamed/deleted
	Subscribed bool   `json:"subscribed,omitempty"`
	Missing    bool   `json:"missing,omitempty"` // archive path vanished at the last walk

	// Remote folders mirror an upstream folder: UIDs and UIDVALIDITY are
	// the server's, messages are metadata only (Src SrcRemote).
	Remote     bool   `json:"remote,omitempty"`
	HighestUID uint32 `json:"highest_uid,omitempty"` // highest upstream UID seen
	// ServerName is the folder's name on the server when it differs from
	// Name (another delimiter or a namespace prefix such as "INBOX.").
	ServerName string `json:"server_name,omitempty"`
	// ModSeq is the server's HIGHESTMODSEQ (RFC 7162) when the mirror was
	// last brought fully up to date; 0 = unknown or no CONDSTORE.
	ModSeq uint64 `json:"modseq,omitempty"`

	// Scan state of an mbox-backed folder.
	ScanEnd   int64  `json:"scan_end,omitempty"`   // offset up to which the file is indexed
	FileSize  int64  `json:"file_size,omitempty"`  // size at the last scan
	FileMtime int64  `json:"file_mtime,omitempty"` // mtime (ns) at the last scan
	LastOff   int64  `json:"last_off,omitempty"`   // offset of the last indexed entry
	LastLen   int64  `json:"last_len,omitempty"`   // its raw length
	LastUID   uint32 `json:"last_uid,omitempty"`   // its UID
	LastCRC   uint32 `json:"last_crc,omitempty"`   // its served-bytes CRC, to detect rewrites
	DirMtime  int64  `json:"dir_mtime,omitempty"`  // Maildir/eml: newest mtime of the scanned dirs
}

// Message sources.
const (
	SrcMbox   = 'm' // byte range of Folder.Loc
	SrcFile   = 'f' // archive file (Maildir, .eml) at Path
	SrcOwned  = 'o' // file in the bridge's own Maildir (Path relative to it)
	SrcRemote = 'r' // on the upstream server, same UID
	SrcCache  = 'p' // rebuilt from an archive (PST) and cached in the bridge's Maildir; archive semantics
	// SrcItem: a message inside an archive file the archive's program
	// manages (Becky! .bmf, Outlook Express .dbx, Apple Mail .emlx): Path,
	// Offset and Length as archive.ScanItems reported them, read with
	// archive.ReadItem for the folder's kind; Ext is the item's ID.
	SrcItem = 's'
)

// Message is one indexed message.
type Message struct {
	UID    uint32 `json:"uid"`
	Src    byte   `json:"src"`
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"off,omitempty"`
	Length int64  `json:"len,omitempty"`
	CRC    uint32 `json:"crc"`  // crc32c of the served bytes; checked before serving
	Size   int64  `json:"size"` // RFC822.SIZE: length of the served bytes
	// Date is the INTERNALDATE as found (unix seconds), possibly before
	// 1970; clients get it clamped.
	Date      int64    `json:"date"`
	DateZone  int32    `json:"tz,omitempty"` // zone offset in seconds
	Flags     []string `json:"flags,omitempty"`
	ArchFlags []string `json:"aflags,omitempty"` // flags as the archive recorded them
	Hidden    bool     `json:"hidden,omitempty"` // expunged/moved away by a client (overlay)
	FP        []byte   `json:"fp,omitempty"`     // content fingerprint (16 bytes)
	HFP       []byte   `json:"hfp,omitempty"`    // header fingerprint (16 bytes)
	MsgID     string   `json:"msgid,omitempty"`
	UIDL      string   `json:"uidl,omitempty"`
	Ext       string   `json:"ext,omitempty"`  // identity inside the archive (PST item ID, archive.Item ID)
	Seen      bool     `json:"seen,omitempty"` // still present at the last scan (used during re-index)
	// Copy marks a message the bridge put in a writable folder as a copy
	// of mail that exists elsewhere (a drag, migrate, a POP delivery), or a
	// server message whose content it proved equal to such mail; never a
	// client's APPEND. Only a copy may answer an APPEND of the same bytes.
	Copy bool `json:"copy,omitempty"`
}

// InternalDate returns the stored date with its zone.
func (m *Message) InternalDate() time.Time {
	return time.Unix(m.Date, 0).In(time.FixedZone("", int(m.DateZone)))
}

func u32(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

// Folders returns every folder, in name order.
func (db *DB) Folders() ([]Folder, error) {
	var out []Folder
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFolders).ForEach(func(k, v []byte) error {
			var f Folder
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("decode folder %q: %w", k, err)
			}
			f.Loc = decodePath(f.Loc)
			out = append(out, f)
			return nil
		})
	})
	return out, err
}

// Folder returns one folder by name.
func (db *DB) Folder(name string) (*Folder, error) {
	var f *Folder
	err := db.View(func(tx *Tx) error {
		var err error
		f, err = tx.Folder(name)
		return err
	})
	return f, err
}

// Tx is a transaction.
type Tx struct{ tx *bolt.Tx }

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// Update runs fn in a read-write transaction, committed (and fsynced) when
// fn returns nil.
func (db *DB) Update(fn func(tx *Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// Folder returns a folder by name.
func (t *Tx) Folder(name string) (*Folder, error) {
	v := t.tx.Bucket(bucketFolders).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("folder %q: %w", name, ErrNoFolder)
	}
	var f Folder
	if err := json.Unmarshal(v, &f); err != nil {
		return nil, fmt.Errorf("decode folder %q: %w", name, err)
	}
	f.Loc = decodePath(f.Loc)
	return &f, nil
}

// NewUIDValidity returns a fresh UIDVALIDITY, strictly greater than any
// handed out before by this database.
func (t *Tx) NewUIDValidity() (uint32, error) {
	meta := t.tx.Bucket(bucketMeta)
	last := uint32(0)
	if v := meta.Get(keyUIDValidity); len(v) == 4 {
		last = binary.BigEndian.Uint32(v)
	}
	next := uint32(time.Now().Unix())
	if next <= last {
		next = last + 1
	}
	return next, meta.Put(keyUIDValidity, u32(next))
}

// CreateFolder adds f (ID, UIDValidity and UIDNext are assigned when zero).
func (t *Tx) CreateFolder(f *Folder) error {
	b := t.tx.Bucket(bucketFolders)
	if b.Get([]byte(f.Name)) != nil {
		return fmt.Errorf("folder %q: %w", f.Name, ErrFolderExists)
	}
	meta := t.tx.Bucket(bucketMeta)
	if f.ID == 0 {
		id := uint32(1)
		if v := meta.Get(keyFolderSeq); len(v) == 4 {
			id = binary.BigEndian.Uint32(v) + 1
		}
		if err := meta.Put(keyFolderSeq, u32(id)); err != nil {
			return err
		}
		f.ID = id
	}
	if f.UIDValidity == 0 {
		v, err := t.NewUIDValidity()
		if err != nil {
			return err
		}
		f.UIDValidity = v
	}
	if f.UIDNext == 0 {
		f.UIDNext = 1
	}
	if _, err := t.msgBucket(f.ID, true); err != nil {
		return err
	}
	return t.PutFolder(f)
}

// PutFolder stores f under f.Name.
func (t *Tx) PutFolder(f *Folder) error {
	enc := *f
	enc.Loc = encodePath(f.Loc)
	v, err := json.Marshal(&enc)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketFolders).Put([]byte(f.Name), v)
}

// RenameFolder moves a folder record to a new name (messages stay put).
func (t *Tx) RenameFolder(oldName, newName string) error {
	f, err := t.Folder(oldName)
	if err != nil {
		return err
	}
	b := t.tx.Bucket(bucketFolders)
	if b.Get([]byte(newName)) != nil {
		return fmt.Errorf("folder %q: %w", newName, ErrFolderExists)
	}
	if err := b.Delete([]byte(oldName)); err != nil {
		return err
	}
	f.Name = newName
	return t.PutFolder(f)
}

// DeleteFolder removes a folder and all its index entries.
func (t *Tx) DeleteFolder(name string) error {
	f, err := t.Folder(name)
	if err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketFolders).Delete([]byte(name)); err != nil {
		return err
	}
	err = t.tx.Bucket(bucketMsgs).DeleteBucket(u32(f.ID))
	if errors.Is(err, bolt.ErrBucketNotFound) {
		err = nil
	}
	return err
}

func (t *Tx) msgBucket(id uint32, create bool) (*bolt.Bucket, error) {
	root := t.tx.Bucket(bucketMsgs)
	if create && t.tx.Writable() {
		b, err := root.CreateBucketIfNotExists(u32(id))
		if err != nil {
			return nil, err
		}
		for _, s := range [][]byte{subMsg, subFP, subEnv, subBS, subHFP, subUIDL} {
			if _, err := b.CreateBucketIfNotExists(s); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	b := root.Bucket(u32(id))
	if b == nil {
		return nil, fmt.Errorf("folder #%d: %w", id, ErrNoFolder)
	}
	return b, nil
}

func (t *Tx) sub(id uint32, name []byte) (*bolt.Bucket, error) {
	b, err := t.msgBucket(id, false)
	if err != nil {
		return nil, err
	}
	s := b.Bucket(name)
	if s == nil {
		return nil, fmt.Errorf("folder #%d: missing bucket %s", id, name)
	}
	return s, nil
}

// ForEachMessage calls fn for every message of folder id in UID order,
// hidden ones included. fn gets a fresh *Message it may keep.
func (t *Tx) ForEachMessage(id uint32, fn func(m *Message) error) error {
	b, err := t.sub(id, subMsg)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		m := new(Message)
		if err := decodeMessage(v, m); err != nil {
			return fmt.Errorf("decode message %d of folder #%d: %w", binary.BigEndian.Uint32(k), id, err)
		}
		return fn(m)
	})
}

// Message returns one message.
func (t *Tx) Message(id, uid uint32) (*Message, error) {
	b, err := t.sub(id, subMsg)
	if err != nil {
		return nil, err
	}
	v := b.Get(u32(uid))
	if v == nil {
		return nil, fmt.Errorf("uid %d: %w", uid, ErrNoMessage)
	}
	m := new(Message)
	if err := decodeMessage(v, m); err != nil {
		return nil, fmt.Errorf("decode message %d: %w", uid, err)
	}
	return m, nil
}

// AddMessage assigns the next UID of folder f to m and stores it. f is
// updated (UIDNext) in the same transaction.
func (t *Tx) AddMessage(f *Folder, m *Message) error {
	m.UID = f.UIDNext
	f.UIDNext++
	if err := t.PutFolder(f); err != nil {
		return err
	}
	return t.putMessage(f.ID, m, nil)
}

// PutRemoteMessage stores a mirrored upstream message under its own UID.
func (t *Tx) PutRemoteMessage(f *Folder, m *Message) error {
	old, _ := t.Message(f.ID, m.UID)
	if m.UID > f.HighestUID {
		f.HighestUID = m.UID
	}
	if m.UID >= f.UIDNext {
		f.UIDNext = m.UID + 1
	}
	if err := t.PutFolder(f); err != nil {
		return err
	}
	return t.putMessage(f.ID, m, old)
}

// ClearFolder drops every message of a folder (an upstream UIDVALIDITY change).
func (t *Tx) ClearFolder(f *Folder) error {
	root := t.tx.Bucket(bucketMsgs)
	if err := root.DeleteBucket(u32(f.ID)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return err
	}
	_, err := t.msgBucket(f.ID, true)
	f.HighestUID = 0
	return err
}

// Upload records that a legacy message is on the server.
type Upload struct {
	Folder      string `json:"folder"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
	At          int64  `json:"at"`
}

func uploadKey(folderID, uid uint32, folder string) []byte {
	return append(append(u32(folderID), u32(uid)...), folder...)
}

// PutUpload remembers where legacy message (folderID, uid) went.
func (t *Tx) PutUpload(folderID, uid uint32, up Upload) error {
	b, err := t.tx.CreateBucketIfNotExists([]byte("uploads"))
	if err != nil {
		return err
	}
	return b.Put(uploadKey(folderID, uid, up.Folder), encodeUpload(&up))
}

// Uploads returns every recorded upload of folder folderID, by local UID.
func (t *Tx) Uploads(folderID uint32) (map[uint32][]Upload, error) {
	out := map[uint32][]Upload{}
	b := t.tx.Bucket([]byte("uploads"))
	if b == nil {
		return out, nil
	}
	c := b.Cursor()
	p := u32(folderID)
	for k, v := c.Seek(p); k != nil && len(k) >= 8 && string(k[:4]) == string(p); k, v = c.Next() {
		var up Upload
		if err := decodeUpload(v, &up); err != nil {
			return nil, fmt.Errorf("decode an upload record of folder #%d: %w", folderID, err)
		}
		uid := binary.BigEndian.Uint32(k[4:])
		out[uid] = append(out[uid], up)
	}
	return out, nil
}

// PutMessage overwrites an existing message record (flags, hidden, location).
func (t *Tx) PutMessage(id uint32, m *Message) error {
	old, err := t.Message(id, m.UID)
	if err != nil {
		return err
	}
	return t.putMessage(id, m, old)
}

func (t *Tx) putMessage(id uint32, m, old *Message) error {
	b, err := t.msgBucket(id, true)
	if err != nil {
		return err
	}
	if err := b.Bucket(subMsg).Put(u32(m.UID), encodeMessage(m)); err != nil {
		return err
	}
	if old != nil {
		if err := delIndex(b.Bucket(subFP), old.FP, old.UID); err != nil {
			return err
		}
		if err := delIndex(b.Bucket(subHFP), old.HFP, old.UID); err != nil {
			return err
		}
		if old.UIDL != "" {
			if err := b.Bucket(subUIDL).Delete(uidlKey(old.UIDL, old.UID)); err != nil {
				return err
			}
		}
	}
	if err := putIndex(b.Bucket(subFP), m.FP, m.UID); err != nil {
		return err
	}
	if err := putIndex(b.Bucket(subHFP), m.HFP, m.UID); err != nil {
		return err
	}
	if m.UIDL != "" {
		return b.Bucket(subUIDL).Put(uidlKey(m.UIDL, m.UID), nil)
	}
	return nil
}

// DeleteMessage removes a message from the index (used when an archive
// message vanished from the archive, or a bridge-owned message is expunged).
func (t *Tx) DeleteMessage(id, uid uint32) error {
	old, err := t.Message(id, uid)
	if err != nil {
		return err
	}
	b, err := t.msgBucket(id, true)
	if err != nil {
		return err
	}
	for _, s := range [][]byte{subMsg, subEnv, subBS} {
		if err := b.Bucket(s).Delete(u32(uid)); err != nil {
			return err
		}
	}
	if err := delIndex(b.Bucket(subFP), old.FP, uid); err != nil {
		return err
	}
	if err := delIndex(b.Bucket(subHFP), old.HFP, uid); err != nil {
		return err
	}
	if old.UIDL != "" {
		return b.Bucket(subUIDL).Delete(uidlKey(old.UIDL, uid))
	}
	return nil
}

func uidlKey(uidl string, uid uint32) []byte {
	k := make([]byte, 0, len(uidl)+5)
	k = append(k, uidl...)
	k = append(k, 0)
	return append(k, u32(uid)...)
}

func putIndex(b *bolt.Bucket, fp []byte, uid uint32) error {
	if len(fp) == 0 {
		return nil
	}
	return b.Put(append(append([]byte{}, fp...), u32(uid)...), nil)
}

func delIndex(b *bolt.Bucket, fp []byte, uid uint32) error {
	if len(fp) == 0 {
		return nil
	}
	return b.Delete(append(append([]byte{}, fp...), u32(uid)...))
}

func prefixUIDs(b *bolt.Bucket, prefix []byte) []uint32 {
	var out []uint32
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(k) == len(prefix)+4 && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
		out = append(out, binary.BigEndian.Uint32(k[len(prefix):]))
	}
	return out
}

// FindFP returns the UIDs in folder id with content fingerprint fp.
func (t *Tx) FindFP(id uint32, fp []byte) ([]uint32, error) {
	b, err := t.sub(id, subFP)
	if err != nil || len(fp) == 0 {
		return nil, err
	}
	return prefixUIDs(b, fp), nil
}

// FindHFP returns the UIDs in folder id with header fingerprint fp.
func (t *Tx) FindHFP(id uint32, fp []byte) ([]uint32, error) {
	b, err := t.sub(id, subHFP)
	if err != nil || len(fp) == 0 {
		return nil, err
	}
	return prefixUIDs(b, fp), nil
}

// FindUIDL returns the UIDs in folder id whose X-UIDL is uidl.
func (t *Tx) FindUIDL(id uint32, uidl string) ([]uint32, error) {
	b, err := t.sub(id, subUIDL)
	if err != nil || uidl == "" {
		return nil, err
	}
	p := append([]byte(uidl), 0)
	return prefixUIDs(b, p), nil
}

// Envelope returns the cached ENVELOPE encoding of a message, nil if none.
func (t *Tx) Envelope(id, uid uint32) []byte { return t.getCopy(id, subEnv, uid) }

// BodyStructure returns the cached BODYSTRUCTURE encoding, nil if none.
func (t *Tx) BodyStructure(id, uid uint32) []byte { return t.getCopy(id, subBS, uid) }

// PutEnvelope caches an ENVELOPE encoding.
func (t *Tx) PutEnvelope(id, uid uint32, v []byte) error { return t.put(id, subEnv, uid, v) }

// PutBodyStructure caches a BODYSTRUCTURE encoding.
func (t *Tx) PutBodyStructure(id, uid uint32, v []byte) error { return t.put(id, subBS, uid, v) }

func (t *Tx) getCopy(id uint32, name []byte, uid uint32) []byte {
	b, err := t.sub(id, name)
	if err != nil {
		return nil
	}
	v := b.Get(u32(uid))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

func (t *Tx) put(id uint32, name []byte, uid uint32, v []byte) error {
	b, err := t.msgBucket(id, true)
	if err != nil {
		return err
	}
	return b.Bucket(name).Put(u32(uid), v)
}

// Get reads a small key/value setting (copy).
func (t *Tx) Get(key string) []byte {
	v := t.tx.Bucket(bucketKV).Get([]byte(key))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// Set writes a small key/value setting.
func (t *Tx) Set(key string, v []byte) error {
	return t.tx.Bucket(bucketKV).Put([]byte(key), v)
}

// Delete removes a key/value setting.
func (t *Tx) Delete(key string) error {
	return t.tx.Bucket(bucketKV).Delete([]byte(key))
}

// Scan calls fn for every key/value setting whose key starts with prefix.
func (t *Tx) Scan(prefix string, fn func(key string, v []byte) error) error {
	c := t.tx.Bucket(bucketKV).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && len(k) >= len(p) && string(k[:len(p)]) == prefix; k, v = c.Next() {
		if err := fn(string(k), append([]byte(nil), v...)); err != nil {
			return err
		}
	}
	return nil
}

// encodePath keeps a file path in a JSON record. JSON strings hold UTF-8
// only, and archive paths need not be (file names copied from old
// Windows disks may be CP932 bytes): such a path is stored as "base64:"
// and its bytes. No absolute path, and no path of the bridge's own
// Maildir, starts that way.
func encodePath(p string) string {
	if utf8.ValidString(p) {
		return p
	}
	return pathB64 + base64.StdEncoding.EncodeToString([]byte(p))
}

// decodePath undoes encodePath.
func decodePath(s string) string {
	if rest, ok := strings.CutPrefix(s, pathB64); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return s
}

const pathB64 = "base64:"
