package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/message"
)

// seqJob is one mbox to APPEND into one server folder.
type seqJob struct {
	mbox   string
	folder string
}

// seqResult is one sequential APPEND loop.
type seqResult struct {
	Messages int
	Bytes    int64
	Elapsed  time.Duration
	Every    int // every n-th message of the corpus was sent (1: all)
	Total    int // messages in the corpus
}

// sequentialAppend is the reference the targets are relative to: the
// plainest client there is. One connection, and for each message (every
// every-th of the jobs' mboxes, in file order) one APPEND with the same
// bytes, flags and INTERNALDATE the bridge would send, waiting for its
// tagged OK before the next. The mboxes are read as it goes (from the page
// cache), as the bridge reads its archive. Login and CREATE are not timed.
func sequentialAppend(addr string, jobs []seqJob, every int) (seqResult, error) {
	r := seqResult{Every: max(every, 1)}
	c, err := dialLogin(addr)
	if err != nil {
		return r, err
	}
	defer c.Close()
	for _, j := range jobs {
		if err := createFolder(c, j.folder); err != nil {
			return r, err
		}
	}
	var buf []byte
	start := time.Now()
	for _, j := range jobs {
		f, err := os.Open(j.mbox)
		if err != nil {
			return r, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return r, err
		}
		_, probs, err := archive.ScanMbox(f, j.mbox, 0, fi.Size(), func(e archive.MboxEntry) error {
			r.Total++
			if (r.Total-1)%r.Every != 0 {
				return nil
			}
			buf = archive.AppendServedMbox(buf[:0], e.Raw)
			var flags []imap.Flag
			for _, fl := range archive.ParseMeta(e.Raw).Flags {
				if fl != string(imap.FlagDeleted) {
					flags = append(flags, imap.Flag(fl))
				}
			}
			cmd := c.Append(j.folder, int64(len(buf)), &imap.AppendOptions{Flags: flags, Time: e.FromDate})
			if _, err := cmd.Write(buf); err != nil {
				cmd.Close()
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			if _, err := cmd.Wait(); err != nil {
				return fmt.Errorf("APPEND to %q (%d bytes): %w", j.folder, len(buf), err)
			}
			r.Messages++
			r.Bytes += int64(len(buf))
			return nil
		})
		f.Close()
		if err == nil && len(probs) > 0 {
			err = errors.New(probs[0].Error())
		}
		if err != nil {
			return r, fmt.Errorf("sequential APPEND of %s: %w", j.mbox, err)
		}
	}
	r.Elapsed = time.Since(start)
	return r, c.Logout().Wait()
}

// createFolder creates name (and its parents, as Dovecot does) unless it
// exists.
func createFolder(c *imapclient.Client, name string) error {
	if name == "INBOX" {
		return nil
	}
	err := c.Create(name, nil).Wait()
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeAlreadyExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %q: %w", name, err)
	}
	return nil
}

// folderCounts returns STATUS MESSAGES of each folder.
func folderCounts(addr string, folders []string) (map[string]int, error) {
	c, err := dialLogin(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out := map[string]int{}
	for _, name := range folders {
		st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("status %q: %w", name, err)
		}
		if st.NumMessages != nil {
			out[name] = int(*st.NumMessages)
		}
	}
	return out, c.Logout().Wait()
}

// fpFetchResult is one plain UID FETCH 1:* of what a fingerprint sync reads.
type fpFetchResult struct {
	Messages int
	Elapsed  time.Duration
}

// plainFPFetch is U3's reference: a plain client selecting mailbox and
// fetching what SyncRemote fetches for new messages (UID FLAGS
// INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (the
// fingerprint fields)]), each response read and dropped: the server's share
// of a first sync, without the bridge's parsing and commit.
func plainFPFetch(addr, mailbox string) (fpFetchResult, error) {
	var r fpFetchResult
	c, err := dialLogin(addr)
	if err != nil {
		return r, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return r, fmt.Errorf("select %q: %w", mailbox, err)
	}
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: message.HeaderFPFields, Peek: true}
	cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodySection: []*imap.FetchItemBodySection{sec},
	})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		if _, err := msg.Collect(); err != nil {
			cmd.Close()
			return r, fmt.Errorf("uid fetch 1:* of %q: %w", mailbox, err)
		}
		r.Messages++
	}
	if err := cmd.Close(); err != nil {
		return r, fmt.Errorf("uid fetch 1:* of %q: %w", mailbox, err)
	}
	r.Elapsed = time.Since(start)
	return r, c.Logout().Wait()
}
