package upstream

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// streamConn is a net.Conn that reads from a byte stream.
type streamConn struct {
	r io.Reader
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func filterAll(in []byte, chunk int) ([]byte, error) {
	f := newRespFilter(&streamConn{r: bytes.NewReader(in)}, nil)
	var out bytes.Buffer
	buf := make([]byte, chunk)
	for {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// TestRespFilter: Courier's bare QUOTA gets an empty resource list;
// everything else, literals above all, passes untouched.
func TestRespFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"* QUOTAROOT \"INBOX\" \"ROOT\"\r\n* QUOTA \"ROOT\"\r\na1 OK done\r\n",
			"* QUOTAROOT \"INBOX\" \"ROOT\"\r\n* QUOTA \"ROOT\" ()\r\na1 OK done\r\n"},
		{"* QUOTA ROOT\r\n", "* QUOTA ROOT ()\r\n"},
		{"* QUOTA \"ROOT\" \r\n", "* QUOTA \"ROOT\" ()\r\n"},
		{"* QUOTA \"ROOT\"\n", "* QUOTA \"ROOT\" ()\r\n"},
		{"* QUOTA \"ROOT\" (STORAGE 0 20)\r\n", "* QUOTA \"ROOT\" (STORAGE 0 20)\r\n"},
		{"* QUOTA \"\" ()\r\n", "* QUOTA \"\" ()\r\n"},
		// A message whose body holds such a line is not touched.
		{"* 1 FETCH (BODY[] {16}\r\n* QUOTA \"ROOT\"\r\n)\r\na2 OK\r\n", "* 1 FETCH (BODY[] {16}\r\n* QUOTA \"ROOT\"\r\n)\r\na2 OK\r\n"},
		{"* 1 FETCH (BODY[] {16+}\r\n* QUOTA \"ROOT\"\r\n)\r\n", "* 1 FETCH (BODY[] {16+}\r\n* QUOTA \"ROOT\"\r\n)\r\n"},
		{"* OK no newline at the end", "* OK no newline at the end"},
	} {
		for _, chunk := range []int{1, 3, 4096} {
			got, err := filterAll([]byte(tc.in), chunk)
			if err != nil || string(got) != tc.want {
				t.Errorf("filter(%q) in %d-byte reads = %q, %v; want %q", tc.in, chunk, got, err, tc.want)
			}
		}
	}
	// A line longer than the buffer passes through, and the line after it
	// is read as a line again.
	long := "* OK " + strings.Repeat("x", 100<<10) + "\r\n* QUOTA \"ROOT\"\r\n"
	got, err := filterAll([]byte(long), 1000)
	if err != nil || string(got) != strings.Replace(long, "* QUOTA \"ROOT\"\r\n", "* QUOTA \"ROOT\" ()\r\n", 1) {
		t.Errorf("long line: %d bytes, %v", len(got), err)
	}
}

// FuzzRespFilter: whatever a server sends, the filter only ever inserts
// " ()" at the end of a "* QUOTA" line, never drops or changes a byte,
// never panics, and gives the same result however the reads are cut.
func FuzzRespFilter(f *testing.F) {
	for _, s := range []string{
		"* QUOTA \"ROOT\"\r\n",
		"* QUOTAROOT \"INBOX\" \"ROOT\"\r\n* QUOTA \"ROOT\"\r\na OK\r\n",
		"* 1 FETCH (BODY[] {16}\r\n* QUOTA \"ROOT\"\r\n)\r\n",
		"* 2 FETCH (BODY[] {99999999999999999999}\r\n",
		"{3}\r\n{1}\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole, err := filterAll(in, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		cut, err := filterAll(in, int(chunk)+1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(whole, cut) {
			t.Fatalf("reads of %d bytes give %q, one read gives %q", int(chunk)+1, cut, whole)
		}
		// Lines are passed as they are, except that a "* QUOTA" line may
		// become its text without trailing blanks plus " ()\r\n".
		i, j := 0, 0
		inLine, outLine := 0, 0 // where the current line starts in each
		for j < len(whole) {
			if i < len(in) && in[i] == whole[j] {
				i++
				j++
				if whole[j-1] == '\n' {
					inLine, outLine = i, j
				}
				continue
			}
			oe := bytes.IndexByte(whole[outLine:], '\n')
			ie := bytes.IndexByte(in[inLine:], '\n')
			if oe < 0 || ie < 0 {
				t.Fatalf("output differs from input at %d/%d: %q vs %q", j, i, whole, in)
			}
			o, l := whole[outLine:outLine+oe+1], in[inLine:inLine+ie+1]
			if !bytes.HasPrefix(o, []byte("* QUOTA ")) || !bytes.HasSuffix(o, []byte(" ()\r\n")) ||
				!bytes.Equal(bytes.TrimRight(l, " \t\r\n"), o[:len(o)-5]) {
				t.Fatalf("line %q became %q", l, o)
			}
			i, j = inLine+len(l), outLine+len(o)
			inLine, outLine = i, j
		}
		if i != len(in) {
			t.Fatalf("input bytes from %d were dropped: %q → %q", i, in, whole)
		}
	})
}
