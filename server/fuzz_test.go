package server

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzPreAuth feeds arbitrary bytes to a connection's command loop over
// real loopback TCP. The server must neither panic (panics are recovered
// and logged at error level, so error records fail the input) nor hang:
// once the client has sent everything and shut down its side, the server
// must close the connection.
func FuzzPreAuth(f *testing.F) {
	env := newTestEnv(f, func(o *Options) {
		o.AuthFailDelay = time.Millisecond
		o.DebugWriter = io.Discard
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			conn.Write(data)
			conn.(*net.TCPConn).CloseWrite()
		}()
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server did not close the connection after input %q", data)
		}
		if n := env.logErrors.Load(); n != 0 {
			t.Fatalf("%d error records (panic?) for input %q:\n%s", n, data, env.log.String())
		}
	})
}
