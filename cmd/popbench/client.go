package main

import (
	"fmt"
	"io"
	"mime"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
)

// dialLogin connects and logs in as the bench user. Subjects and names are
// decoded with go-message's charsets (ISO-2022-JP included), as a real
// client would.
func dialLogin(addr string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if err := c.Login(benchUser, benchPass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login to %s: %w", addr, err)
	}
	return c, nil
}

var allUIDs = imap.UIDSet{{Start: 1, Stop: 0}} // 1:*

// metaResult is one UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
// ENVELOPE).
type metaResult struct {
	Select    time.Duration
	Fetch     time.Duration
	Exists    uint32
	Messages  int
	Envelopes int
	SizeSum   int64
}

// fetchMeta selects mailbox and fetches the headers list a client needs to
// show it, consuming the responses as they stream in (nothing is collected
// beyond one message).
func fetchMeta(c *imapclient.Client, mailbox string) (metaResult, error) {
	var r metaResult
	start := time.Now()
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		return r, fmt.Errorf("select %q: %w", mailbox, err)
	}
	r.Select = time.Since(start)
	r.Exists = sel.NumMessages
	start = time.Now()
	cmd := c.Fetch(allUIDs, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		r.Messages++
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataRFC822Size:
				r.SizeSum += it.Size
			case imapclient.FetchItemDataEnvelope:
				if it.Envelope != nil {
					r.Envelopes++
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return r, fmt.Errorf("uid fetch 1:* envelope: %w", err)
	}
	r.Fetch = time.Since(start)
	if r.Messages != int(r.Exists) || r.Envelopes != r.Messages {
		return r, fmt.Errorf("uid fetch 1:* envelope: got %d messages with %d envelopes, mailbox has %d", r.Messages, r.Envelopes, r.Exists)
	}
	return r, nil
}

// bodyResult is one UID FETCH 1:* BODY.PEEK[].
type bodyResult struct {
	Messages int
	Bytes    int64
	Elapsed  time.Duration
}

// fetchBodies streams every message of the selected mailbox to io.Discard.
func fetchBodies(c *imapclient.Client) (bodyResult, error) {
	var r bodyResult
	start := time.Now()
	sec := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(allUIDs, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		r.Messages++
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				n, err := io.Copy(io.Discard, b.Literal)
				r.Bytes += n
				if err != nil {
					cmd.Close()
					return r, fmt.Errorf("uid fetch 1:* body.peek[]: %w", err)
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return r, fmt.Errorf("uid fetch 1:* body.peek[]: %w", err)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// syncOnce is a client's first full sync of a folder: connect, log in,
// SELECT, UID FETCH 1:* of the list items.
func syncOnce(addr, mailbox string) (metaResult, error) {
	c, err := dialLogin(addr)
	if err != nil {
		return metaResult{}, err
	}
	defer c.Close()
	r, err := fetchMeta(c, mailbox)
	if err != nil {
		return r, err
	}
	return r, c.Logout().Wait()
}

// streamOnce fetches every body of mailbox over one connection.
func streamOnce(addr, mailbox string) (metaResult, bodyResult, error) {
	c, err := dialLogin(addr)
	if err != nil {
		return metaResult{}, bodyResult{}, err
	}
	defer c.Close()
	m, err := fetchMeta(c, mailbox)
	if err != nil {
		return m, bodyResult{}, err
	}
	b, err := fetchBodies(c)
	if err != nil {
		return m, b, err
	}
	if b.Messages != m.Messages || b.Bytes != m.SizeSum {
		return m, b, fmt.Errorf("body.peek[] of %q: %d messages, %d bytes; the list said %d messages, %d bytes (RFC822.SIZE)", mailbox, b.Messages, b.Bytes, m.Messages, m.SizeSum)
	}
	return m, b, c.Logout().Wait()
}

// loadResult is the concurrent-clients phase.
type loadResult struct {
	Clients  int
	Messages int   // per client
	Bytes    int64 // all clients, bodies
	Elapsed  time.Duration
	Slowest  time.Duration
}

// concurrentClients runs n clients at once, each doing the full list
// fetch and then BODY.PEEK[] of every message.
func concurrentClients(addr, mailbox string, n int) (loadResult, error) {
	r := loadResult{Clients: n}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			m, b, err := streamOnce(addr, mailbox)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			r.Messages = m.Messages
			r.Bytes += b.Bytes
			r.Slowest = max(r.Slowest, time.Since(t0))
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	return r, first
}
