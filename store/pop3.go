package store

// POP3 fetch state: per old POP account, which UIDLs were dealt with and
// how, plus the account's status record.
//
// Layout: one top-level bucket "pop3/<account name>" per account, holding
//
//   - the sub-bucket "uidl": UIDL (the server's unique-id string, or a
//     fingerprint key for servers without UIDL) → POP3Record JSON;
//   - the key "status": POP3Status JSON.
//
// A record is written only after the message is durable at its
// destination (or was found already known), so a crash between delivery
// and the record costs a re-download, never a loss; the fetcher's content
// dedup keeps that re-download from being stored twice.

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	pop3BucketPrefix = "pop3/"
	pop3SubUIDL      = []byte("uidl")
	pop3KeyStatus    = []byte("status")
)

// POP3 record states.
const (
	// POP3Fetched: downloaded and delivered to Folder (UID there).
	POP3Fetched = "fetched"
	// POP3Skipped: already known (archive X-UIDL, popstate.dat, same
	// content elsewhere); nothing was stored. Reason says which.
	POP3Skipped = "skipped"
	// POP3TooBig: larger than max_message_size; never downloaded.
	POP3TooBig = "too-big"
)

// POP3Record is what the fetcher remembers about one UIDL.
type POP3Record struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // for skipped: archive-uidl, popstate, content, duplicate
	Folder string `json:"folder,omitempty"`
	UID    uint32 `json:"uid,omitempty"`
	Size   int64  `json:"size,omitempty"` // LIST size on the server
	At     int64  `json:"at"`             // unix seconds when recorded
	// Deleted is when the message was deleted on the server (unix seconds,
	// 0: still there as far as we know).
	Deleted int64 `json:"deleted,omitempty"`
}

// POP3Status is the persisted status of one POP account.
type POP3Status struct {
	LastRun     int64  `json:"last_run,omitempty"`     // start of the last round (unix seconds)
	LastSuccess int64  `json:"last_success,omitempty"` // end of the last successful round
	LastResult  string `json:"last_result,omitempty"`  // one-line summary of the last round
	LastError   string `json:"last_error,omitempty"`   // "" after a successful round
	LastErrorAt int64  `json:"last_error_at,omitempty"`
	Fetched     int64  `json:"fetched"`           // messages delivered, all time
	Skipped     int64  `json:"skipped"`           // messages found already known, all time
	TooBig      int64  `json:"too_big"`           // messages skipped for size, all time
	Deleted     int64  `json:"deleted"`           // messages deleted on the server, all time
	Bytes       int64  `json:"bytes"`             // bytes downloaded, all time
	OnServer    int    `json:"on_server"`         // messages in the mailbox at the last round
	NoUIDL      bool   `json:"no_uidl,omitempty"` // the server has no UIDL; fingerprints are used
}

func pop3Bucket(account string) []byte { return []byte(pop3BucketPrefix + account) }

// pop3Buckets returns the account's bucket and its uidl sub-bucket, creating
// them in a writable transaction; nil, nil when absent in a read-only one.
func (t *Tx) pop3Buckets(account string) (*bolt.Bucket, *bolt.Bucket, error) {
	if account == "" {
		return nil, nil, fmt.Errorf("pop3 state: empty account name")
	}
	if t.tx.Writable() {
		b, err := t.tx.CreateBucketIfNotExists(pop3Bucket(account))
		if err != nil {
			return nil, nil, fmt.Errorf("pop3 state of %q: %w", account, err)
		}
		u, err := b.CreateBucketIfNotExists(pop3SubUIDL)
		if err != nil {
			return nil, nil, fmt.Errorf("pop3 state of %q: %w", account, err)
		}
		return b, u, nil
	}
	b := t.tx.Bucket(pop3Bucket(account))
	if b == nil {
		return nil, nil, nil
	}
	return b, b.Bucket(pop3SubUIDL), nil
}

// POP3Records returns every record of account, by UIDL.
func (t *Tx) POP3Records(account string) (map[string]POP3Record, error) {
	out := map[string]POP3Record{}
	_, u, err := t.pop3Buckets(account)
	if err != nil || u == nil {
		return out, err
	}
	err = u.ForEach(func(k, v []byte) error {
		var r POP3Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("pop3 state of %q: decode record %q: %w", account, k, err)
		}
		out[string(k)] = r
		return nil
	})
	return out, err
}

// POP3Record returns one record; ok is false when the UIDL is unknown.
func (t *Tx) POP3Record(account, uidl string) (r POP3Record, ok bool, err error) {
	_, u, err := t.pop3Buckets(account)
	if err != nil || u == nil {
		return r, false, err
	}
	v := u.Get([]byte(uidl))
	if v == nil {
		return r, false, nil
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, false, fmt.Errorf("pop3 state of %q: decode record %q: %w", account, uidl, err)
	}
	return r, true, nil
}

// PutPOP3Record stores the record of uidl.
func (t *Tx) PutPOP3Record(account, uidl string, r POP3Record) error {
	if uidl == "" {
		return fmt.Errorf("pop3 state of %q: empty UIDL", account)
	}
	_, u, err := t.pop3Buckets(account)
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return u.Put([]byte(uidl), v)
}

// POP3Status returns the account's status; ok is false if none was saved.
func (t *Tx) POP3Status(account string) (s POP3Status, ok bool, err error) {
	b, _, err := t.pop3Buckets(account)
	if err != nil || b == nil {
		return s, false, err
	}
	v := b.Get(pop3KeyStatus)
	if v == nil {
		return s, false, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return s, false, fmt.Errorf("pop3 state of %q: decode status: %w", account, err)
	}
	return s, true, nil
}

// PutPOP3Status stores the account's status.
func (t *Tx) PutPOP3Status(account string, s POP3Status) error {
	b, _, err := t.pop3Buckets(account)
	if err != nil {
		return err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return b.Put(pop3KeyStatus, v)
}

// POP3RecordCount returns how many UIDLs the account has records for.
func (t *Tx) POP3RecordCount(account string) (int, error) {
	_, u, err := t.pop3Buckets(account)
	if err != nil || u == nil {
		return 0, err
	}
	return u.Stats().KeyN, nil
}
