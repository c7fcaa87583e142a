package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// relay is a loopback TCP relay that delays every byte by a fixed one-way
// latency in each direction, preserving byte order: a WAN in miniature for
// the upload figures. Bandwidth is bounded only by the buffer (relayBuffer
// bytes in flight per direction and connection), so the delay, not the
// relay, is what a client feels.
type relay struct {
	ln     net.Listener
	target string
	delay  time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

const (
	relayChunk  = 64 << 10
	relayBuffer = 32 << 20 // bytes in flight per direction; 32 MB / 25 ms ≈ 1.3 GB/s
)

// startRelay listens on a loopback port and forwards every connection to
// target (which must be a loopback address) with delay added each way.
func startRelay(target string, delay time.Duration) (*relay, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("relay target %q: %w", target, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("relay target %q: only loopback targets are relayed", target)
	}
	if delay < 0 {
		return nil, fmt.Errorf("relay delay %v is negative", delay)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay listen: %w", err)
	}
	r := &relay{ln: ln, target: target, delay: delay, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the relay's listening address.
func (r *relay) Addr() string { return r.ln.Addr().String() }

// Close stops accepting, closes every relayed connection and waits for the
// relay's goroutines.
func (r *relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = true
	return true
}

func (r *relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

func (r *relay) serve(client net.Conn) {
	defer r.wg.Done()
	if !r.track(client) {
		return
	}
	defer r.untrack(client)
	server, err := net.DialTimeout("tcp", r.target, 10*time.Second)
	if err != nil {
		return
	}
	if !r.track(server) {
		return
	}
	defer r.untrack(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pipe(server, client) }()
	go func() { defer wg.Done(); r.pipe(client, server) }()
	wg.Wait()
}

// chunk is bytes read at one moment, due for writing delay later; nil
// data marks the end of the stream.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk written no earlier than delay after
// it was read. One reader and one writer per direction keep the order. At
// the end of src, dst's write side is shut down (half-close) once every
// byte is through; a write error closes both.
func (r *relay) pipe(dst, src net.Conn) {
	q := make(chan chunk, relayBuffer/relayChunk*4)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	inFlight := 0
	failed := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if c.data == nil {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				return
			}
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			_, err := dst.Write(c.data)
			mu.Lock()
			inFlight -= len(c.data)
			if err != nil {
				failed = true
			}
			cond.Broadcast()
			mu.Unlock()
			if err != nil {
				src.Close()
				dst.Close()
				for range q { // let the reader finish
				}
				return
			}
		}
	}()
	buf := make([]byte, relayChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			mu.Lock()
			for inFlight+n > relayBuffer && !failed {
				cond.Wait()
			}
			stop := failed
			inFlight += n
			mu.Unlock()
			if stop {
				break
			}
			q <- chunk{data: data, due: time.Now().Add(r.delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	q <- chunk{}
	close(q)
	<-done
}
