package logfile

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestTailEmpty(t *testing.T) {
	lines, err := Tail(t.TempDir(), 10)
	if err != nil || len(lines) != 0 {
		t.Fatalf("Tail of no log = %q, %v; want nothing", lines, err)
	}
}

func TestWriteAndTail(t *testing.T) {
	data := t.TempDir()
	w, err := Open(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var term bytes.Buffer
	log := NewLogger(w, &term, slog.LevelInfo)
	for i := range 5 {
		log.Info("record", "i", i, "folder", "送信済みアイテム")
	}
	lines, err := Tail(data, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("Tail(3) = %d lines: %q", len(lines), lines)
	}
	for k, want := range []string{"i=2", "i=3", "i=4"} {
		if !strings.Contains(lines[k], "msg=record "+want+" folder=送信済みアイテム") {
			t.Errorf("line %d = %q, want %s", k, lines[k], want)
		}
	}
	if got := strings.Count(term.String(), "\n"); got != 5 {
		t.Errorf("terminal got %d lines, want 5", got)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(Path(data))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("log file mode %04o, want 0600", st.Mode().Perm())
		}
		st, err = os.Stat(Dir(data))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("log dir mode %04o, want 0700", st.Mode().Perm())
		}
	}
}

// TestRotation writes past the size limit: the file rotates, and Tail
// continues into the rotated file for lines the new one does not have.
func TestRotation(t *testing.T) {
	data := t.TempDir()
	w, err := Open(data, Options{MaxSizeMB: 1, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	line := strings.Repeat("x", 1000)
	const perFile = (1 << 20) / 1010 // lines of ~1 KB per MiB
	total := perFile + 10
	for i := range total {
		if _, err := fmt.Fprintf(w, "%06d %s\n", i, line); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Files(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != Name {
		t.Fatalf("files after one rotation = %q, want %s and one rotated file", files, Name)
	}
	st, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Errorf("current file is %d bytes, over the 1 MiB limit", st.Size())
	}
	// More lines than the current file holds: the rest come from the
	// rotated one, in order.
	n := 50
	inCurrent := int(st.Size() / int64(len(line)+8))
	if inCurrent >= n {
		t.Fatalf("test setup: current file holds %d lines, want fewer than %d", inCurrent, n)
	}
	lines, err := Tail(data, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != n {
		t.Fatalf("Tail(%d) = %d lines", n, len(lines))
	}
	for k, l := range lines {
		want := fmt.Sprintf("%06d ", total-n+k)
		if !strings.HasPrefix(l, want) {
			t.Fatalf("line %d = %.20q…, want prefix %q", k, l, want)
		}
	}
}

// TestTailLongFile reads the tail of a file longer than one read chunk.
func TestTailLongFile(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(Dir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	b.WriteString("last without newline")
	if err := os.WriteFile(Path(data), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, err := Tail(data, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"line 19998", "line 19999", "last without newline"}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("Tail = %q, want %q", lines, want)
	}
	lines, err = Tail(data, 30000)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 20001 || lines[0] != "line 0" {
		t.Errorf("Tail(all) = %d lines starting %q", len(lines), lines[0])
	}
}

// TestTailFile: the end of one file of the user's choosing ([log] file),
// oldest first; a file not written yet is no lines.
func TestTailFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "my.log")
	var b strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&b, "line %d of the log\r\n", i)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := TailFile(p, 3)
	if err != nil || strings.Join(got, "|") != "line 4998 of the log|line 4999 of the log|line 5000 of the log" {
		t.Fatalf("TailFile = %q %v", got, err)
	}
	if got, err := TailFile(filepath.Join(t.TempDir(), "none.log"), 3); err != nil || len(got) != 0 {
		t.Errorf("missing file: %q %v", got, err)
	}
}
