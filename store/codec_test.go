package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleMessages covers every field, empty and non-UTF-8 paths, negative
// dates and zones, and the extremes of the integer fields.
func sampleMessages() []Message {
	return []Message{
		{UID: 1},
		{UID: 7, Src: 3, Path: "Inbox/受信トレイ.mbx", Offset: 123456789012, Length: 4096, CRC: 0xdeadbeef, Size: 4100,
			Date: -86400 * 365 * 3, DateZone: -5 * 3600, Flags: []string{`\Seen`, `$Forwarded`, "日本語"}, ArchFlags: []string{`\Answered`},
			Hidden: true, FP: []byte("0123456789abcdef"), HFP: []byte("fedcba9876543210"), MsgID: "<a@b>", UIDL: "0000abc", Ext: "pst:42", Seen: true, Copy: true},
		{UID: 4294967295, Path: "C:\\Mail\\\x83\x81\x81[\x83\x8b.dbx", Offset: -1, Length: 1 << 40, CRC: 4294967295, Size: 1 << 40,
			Date: 1 << 40, DateZone: 14 * 3600, Copy: true},
	}
}

// TestMessageRecordRoundTrip: what is written is read back the same, in
// the binary format, and the JSON records of older versions still read.
func TestMessageRecordRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		v := encodeMessage(&m)
		if v[0] != recBinary1 {
			t.Fatalf("record starts with %#x", v[0])
		}
		var got Message
		if err := decodeMessage(v, &got); err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
		// A record of a later version with fields after ours still reads.
		if err := decodeMessage(append(v, 9, 9, 9), &got); err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("with trailing fields: %+v %v", got, err)
		}
		// The JSON of format 1, as putMessage wrote it.
		enc := m
		enc.Path = encodePath(m.Path)
		old, err := json.Marshal(&enc)
		if err != nil {
			t.Fatal(err)
		}
		got = Message{UID: 99, Flags: []string{"stale"}}
		if err := decodeMessage(old, &got); err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("JSON record:\n got %+v %v\nwant %+v", got, err, m)
		}
		// Every cut of the record is an error, never a panic.
		for i := 1; i < len(v); i++ {
			if err := decodeMessage(v[:i], &got); !errors.Is(err, errRecord) {
				t.Fatalf("record cut at %d of %d: %v", i, len(v), err)
			}
		}
	}
	if err := decodeMessage(nil, new(Message)); !errors.Is(err, errRecord) {
		t.Fatalf("empty record: %v", err)
	}
}

func TestUploadRecordRoundTrip(t *testing.T) {
	for _, up := range []Upload{{}, {Folder: "INBOX.送信済み", UIDValidity: 4294967295, UID: 12, At: -5}, {Folder: "Sent", UIDValidity: 1, UID: 1, At: 1765000000}} {
		var got Upload
		if err := decodeUpload(encodeUpload(&up), &got); err != nil || got != up {
			t.Fatalf("round trip %+v: %+v %v", up, got, err)
		}
		old, _ := json.Marshal(up)
		got = Upload{Folder: "stale"}
		if err := decodeUpload(old, &got); err != nil || got != up {
			t.Fatalf("JSON record %+v: %+v %v", up, got, err)
		}
	}
}

// TestOldRecordsInDatabase: a database written with JSON records (before
// the binary format) is read as it was, and a record rewritten is binary.
func TestOldRecordsInDatabase(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &Folder{Name: "Local/Old"}
	want := sampleMessages()[1]
	err = db.Update(func(tx *Tx) error {
		if err := tx.CreateFolder(f); err != nil {
			return err
		}
		if err := tx.AddMessage(f, &want); err != nil {
			return err
		}
		uid := want.UID
		// Written as the older version did.
		enc := want
		enc.Path = encodePath(want.Path)
		old, _ := json.Marshal(&enc)
		b, err := tx.sub(f.ID, subMsg)
		if err != nil {
			return err
		}
		if err := b.Put(u32(uid), old); err != nil {
			return err
		}
		oldUp, _ := json.Marshal(Upload{Folder: "Sent", UIDValidity: 5, UID: 6, At: 7})
		ub, err := tx.tx.CreateBucketIfNotExists([]byte("uploads"))
		if err != nil {
			return err
		}
		return ub.Put(uploadKey(f.ID, uid, "Sent"), oldUp)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		got, err := tx.Message(f.ID, want.UID)
		if err != nil || !reflect.DeepEqual(*got, want) {
			t.Fatalf("old record: %+v %v", got, err)
		}
		ups, err := tx.Uploads(f.ID)
		if err != nil || len(ups[want.UID]) != 1 || ups[want.UID][0] != (Upload{Folder: "Sent", UIDValidity: 5, UID: 6, At: 7}) {
			t.Fatalf("old upload record: %+v %v", ups, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Flags = append(want.Flags, `\Flagged`)
	if err := db.Update(func(tx *Tx) error { return tx.PutMessage(f.ID, &want) }); err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		b, err := tx.sub(f.ID, subMsg)
		if err != nil {
			return err
		}
		if v := b.Get(u32(want.UID)); len(v) == 0 || v[0] != recBinary1 {
			t.Fatalf("a rewritten record is not binary: %q", v)
		}
		n := 0
		err = tx.ForEachMessage(f.ID, func(m *Message) error {
			n++
			if !reflect.DeepEqual(*m, want) {
				t.Fatalf("rewritten record: %+v", m)
			}
			return nil
		})
		if n != 1 {
			t.Fatalf("%d messages", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzMessageRecord: any bytes decode to a message or an error; what
// decodes re-encodes to a record that decodes the same.
func FuzzMessageRecord(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(encodeMessage(&m))
	}
	// More seeds (JSON records of format 1, damaged ones) are in
	// testdata/fuzz/FuzzMessageRecord.
	f.Fuzz(func(t *testing.T, v []byte) {
		var m Message
		if err := decodeMessage(v, &m); err != nil {
			return
		}
		var again Message
		if err := decodeMessage(encodeMessage(&m), &again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(normal(m), normal(again)) {
			t.Fatalf("re-encoded record differs:\n%+v\n%+v", m, again)
		}
		var up Upload
		_ = decodeUpload(v, &up)
	})
}

// normal makes empty slices nil (JSON may give either).
func normal(m Message) Message {
	if len(m.Flags) == 0 {
		m.Flags = nil
	}
	if len(m.ArchFlags) == 0 {
		m.ArchFlags = nil
	}
	if len(m.FP) == 0 {
		m.FP = nil
	}
	if len(m.HFP) == 0 {
		m.HFP = nil
	}
	return m
}

func BenchmarkDecodeMessage(b *testing.B) {
	m := sampleMessages()[1]
	bin := encodeMessage(&m)
	enc := m
	js, _ := json.Marshal(&enc)
	for _, c := range []struct {
		name string
		v    []byte
	}{{"binary", bin}, {"json", js}} {
		b.Run(c.name, func(b *testing.B) {
			var got Message
			for b.Loop() {
				if err := decodeMessage(c.v, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestNewerFormatRefused: a database of a later format is not misread: Open
// says what happened and what to do, and leaves the file alone.
func TestNewerFormatRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error { return tx.tx.Bucket(bucketMeta).Put(keyFormat, u32(formatVersion+1)) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{NoSync: true})
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "newer popbridge") || !strings.Contains(err.Error(), path) {
		t.Fatalf("open a newer database: %v", err)
	}
	db, err = Open(filepath.Join(t.TempDir(), "db2"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		if v := tx.tx.Bucket(bucketMeta).Get(keyFormat); len(v) != 4 || binary.BigEndian.Uint32(v) != formatVersion {
			t.Fatalf("a new database has format %v", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
