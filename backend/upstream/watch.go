package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Backoff returns the wait before reconnect attempt n (n ≥ 1; smaller n
// count as 1): 1 s doubling per attempt, capped at 5 min, each with ±20 %
// jitter and never above 5 min.
func Backoff(n int) time.Duration {
	const (
		base    = time.Second
		maxWait = 5 * time.Minute
	)
	if n < 1 {
		n = 1
	}
	d := maxWait
	if n <= 20 { // 2^19 s is far past the cap; avoid overflow beyond
		if e := base << (n - 1); e < maxWait {
			d = e
		}
	}
	j := time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(j, maxWait)
}

// Watch owns one connection (it counts against MaxConnections; keep
// MaxConnections above the number of watchers) that EXAMINEs mailbox and
// reports changes: it IDLEs when the server has IDLE (restarting IDLE every
// 25 minutes, which also detects a dead connection) and otherwise sends
// NOOP every pollInterval (≤ 0 means 30 s).
//
// onChange is called after every successful EXAMINE (changes may have been
// missed while disconnected) and whenever the server reports EXISTS,
// EXPUNGE or FETCH. Calls are made from one goroutine, one at a time, and
// coalesced: reports that arrive while onChange runs lead to one more call.
// Watch reconnects with Backoff after failures and returns once ctx ends
// (or the pool is closed), after the last onChange call has returned.
func (p *Pool) Watch(ctx context.Context, mailbox string, pollInterval time.Duration, onChange func()) {
	if pollInterval <= 0 {
		pollInterval = defaultPollInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	pending := make(chan struct{}, 1)
	signal := func() {
		select {
		case pending <- struct{}{}:
		default:
		}
	}
	notifierDone := make(chan struct{})
	go func() {
		defer close(notifierDone)
		for {
			select {
			case <-pending:
				onChange()
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { <-notifierDone }()

	log := p.log.With("mailbox", mailbox)
	failures := 0
	for {
		err := p.watchOnce(ctx, mailbox, pollInterval, signal, func() { failures = 0 })
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := Backoff(failures)
		log.Warn("upstream watch failed; reconnecting", "err", err, "wait", wait.Round(time.Millisecond), "failures", failures)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// watchOnce runs one connection until it fails or ctx ends. ok is called
// once the mailbox is examined.
func (p *Pool) watchOnce(ctx context.Context, mailbox string, pollInterval time.Duration, signal, ok func()) error {
	if err := p.acquireSlot(ctx); err != nil {
		return err
	}
	handler := &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { signal() },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				signal()
			}
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			signal()
			_, _ = msg.Collect() // imapclient's reader waits until it is consumed
		},
	}
	cn, err := p.connect(ctx, handler)
	if err != nil {
		p.releaseSlot()
		return err
	}
	cn.dc.arm(p.opts.CommandTimeout)
	stop := context.AfterFunc(ctx, cn.dc.abort)
	defer func() {
		if stop() {
			p.logout(cn)
		} else {
			p.discard(cn)
		}
	}()

	if _, err := cn.c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return err
	}
	ok()
	signal()

	if cn.caps.Has(imap.CapIdle) && !p.forcePoll {
		return p.idleLoop(ctx, cn)
	}
	return p.pollLoop(ctx, cn, pollInterval)
}

func (p *Pool) idleLoop(ctx context.Context, cn *conn) error {
	for {
		cmd, err := cn.c.Idle()
		if err != nil {
			return err
		}
		// While idling the server may stay silent for as long as it likes.
		cn.dc.disarm()
		if p.onIdle != nil {
			p.onIdle()
		}
		t := time.NewTimer(p.idleRestart)
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-cn.c.Closed():
		}
		t.Stop()
		if ctx.Err() != nil {
			_ = cmd.Close()
			return ctx.Err()
		}
		cn.dc.arm(p.opts.CommandTimeout)
		if err := cmd.Close(); err != nil {
			return err
		}
		if err := cmd.Wait(); err != nil {
			return err
		}
		if isClosed(cn.c) {
			return errors.New("connection closed")
		}
	}
}

func (p *Pool) pollLoop(ctx context.Context, cn *conn, interval time.Duration) error {
	cn.dc.disarm()
	if p.onIdle != nil {
		p.onIdle()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.c.Closed():
			return errors.New("connection closed")
		}
		cn.dc.arm(p.opts.CommandTimeout)
		if err := cn.c.Noop().Wait(); err != nil {
			return err
		}
		cn.dc.disarm()
	}
}
