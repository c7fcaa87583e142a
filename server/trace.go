package server

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// traceSink serialises the protocol trace of all connections.
type traceSink struct {
	mu sync.Mutex
	w  io.Writer
}

// tracer writes one connection's trace. A nil *tracer traces nothing.
type tracer struct {
	sink *traceSink
	id   uint64
}

func (s *Server) newTracer(id uint64) *tracer {
	if s.trace == nil {
		return nil
	}
	return &tracer{sink: s.trace, id: id}
}

// client traces bytes received from the client.
func (t *tracer) client(b []byte) { t.write("C", b) }

// server traces bytes sent to the client.
func (t *tracer) server(b []byte) { t.write("S", b) }

// redacted traces a client command whose arguments must not be recorded.
func (t *tracer) redacted(tag, name string) {
	if t == nil {
		return
	}
	if tag == "" {
		t.write("C", []byte("[redacted]\r\n"))
		return
	}
	t.write("C", []byte(tag+" "+name+" [redacted]\r\n"))
}

func (t *tracer) write(dir string, b []byte) {
	if t == nil || len(b) == 0 {
		return
	}
	var out bytes.Buffer
	prefix := fmt.Sprintf("[%d] %s: ", t.id, dir)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		out.WriteString(prefix)
		out.Write(line)
		if line[len(line)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	t.sink.mu.Lock()
	defer t.sink.mu.Unlock()
	t.sink.w.Write(out.Bytes())
}
