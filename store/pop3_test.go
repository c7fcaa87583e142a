package store

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestPOP3State(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Nothing yet: empty results, no error, nothing created by a read.
	err = db.View(func(tx *Tx) error {
		recs, err := tx.POP3Records("old")
		if err != nil || len(recs) != 0 {
			t.Errorf("records of a new account: %v, %v", recs, err)
		}
		if _, ok, err := tx.POP3Record("old", "u1"); ok || err != nil {
			t.Errorf("record of a new account: %v, %v", ok, err)
		}
		if _, ok, err := tx.POP3Status("old"); ok || err != nil {
			t.Errorf("status of a new account: %v, %v", ok, err)
		}
		if n, err := tx.POP3RecordCount("old"); n != 0 || err != nil {
			t.Errorf("count: %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	r1 := POP3Record{State: POP3Fetched, Folder: "Local/Inbox", UID: 7, Size: 1234, At: 1700000000}
	r2 := POP3Record{State: POP3Skipped, Reason: "popstate", Size: 99, At: 1700000001, Deleted: 1700000002}
	st := POP3Status{LastRun: 1, LastResult: "ok", Fetched: 3, OnServer: 5, NoUIDL: true}
	err = db.Update(func(tx *Tx) error {
		if err := tx.PutPOP3Record("old", "u1", r1); err != nil {
			return err
		}
		if err := tx.PutPOP3Record("old", "u 2", r2); err != nil {
			return err
		}
		if err := tx.PutPOP3Record("other", "u1", r2); err != nil {
			return err
		}
		if err := tx.PutPOP3Record("old", "", r1); err == nil {
			t.Error("empty UIDL accepted")
		}
		return tx.PutPOP3Status("old", st)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		recs, err := tx.POP3Records("old")
		if err != nil || !reflect.DeepEqual(recs, map[string]POP3Record{"u1": r1, "u 2": r2}) {
			t.Errorf("records %v, %v", recs, err)
		}
		if r, ok, err := tx.POP3Record("other", "u1"); !ok || err != nil || r != r2 {
			t.Errorf("other account: %v %v %v", r, ok, err)
		}
		if got, ok, err := tx.POP3Status("old"); !ok || err != nil || got != st {
			t.Errorf("status %+v %v %v", got, ok, err)
		}
		if n, _ := tx.POP3RecordCount("old"); n != 2 {
			t.Errorf("count %d", n)
		}
		return nil
	})
}

// TestNonUTF8Paths: archive paths that are not UTF-8 (CP932 file names
// from an old Windows disk) survive the store's JSON records.
func TestNonUTF8Paths(t *testing.T) {
	db, err := Open(t.TempDir()+"/p.db", Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loc := "/mnt/old/\x91\x97\x90M\x8d\xcf\x82\xdd" // "送信済み" in CP932
	path := loc + "/1.eml"
	err = db.Update(func(tx *Tx) error {
		f := &Folder{Name: "Local/送信済み", Loc: loc}
		if err := tx.CreateFolder(f); err != nil {
			return err
		}
		return tx.AddMessage(f, &Message{Src: SrcFile, Path: path})
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := db.Folder("Local/送信済み")
	if err != nil || f.Loc != loc {
		t.Fatalf("folder Loc %q, want %q (%v)", f.Loc, loc, err)
	}
	var got *Message
	db.View(func(tx *Tx) error { got, err = tx.Message(f.ID, 1); return err })
	if got == nil || got.Path != path {
		t.Fatalf("message Path %+v, want %q", got, path)
	}
	fs, _ := db.Folders()
	for _, x := range fs {
		if x.Name == f.Name && x.Loc != loc {
			t.Errorf("Folders(): Loc %q", x.Loc)
		}
	}
}
