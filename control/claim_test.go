package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The claim tests' other popbridge is a child process of the test binary:
// it claims the data dir, serves a control endpoint (control.json) and
// waits until stdin closes or it is killed.
const claimChildEnv = "POPBRIDGE_CONTROL_CLAIM_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(claimChildEnv); dir != "" {
		os.Exit(claimChild(dir))
	}
	os.Exit(m.Run())
}

func claimChild(dir string) int {
	c, err := ClaimDataDir(dir)
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	defer c.Release()
	srv, err := Listen(NewService(Options{DataDir: dir, Version: "child"}), dir, "")
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	defer srv.Close()
	fmt.Printf("ready %d\n", os.Getpid())
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startClaimChild starts the child and waits for it to hold dir.
func startClaimChild(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), claimChildEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("child: %q %v", line, err)
	}
	return cmd
}

// TestClaim: one claim per data dir at a time; Held names the holder;
// a released claim can be taken again.
func TestClaim(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, held := Held(dir); held {
		t.Fatal("held before anyone claimed it")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Held created the data dir: %v", err)
	}
	c, err := ClaimDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir %v %v", st.Mode(), err)
	}
	if _, err := ClaimDataDir(dir); !errors.Is(err, ErrClaimed) {
		t.Fatalf("second claim = %v, want ErrClaimed", err)
	}
	pid, held := Held(dir)
	if !held || (runtime.GOOS != "windows" && pid != os.Getpid()) {
		t.Errorf("Held = %d %v, want this process (%d)", pid, held, os.Getpid())
	}
	c.Release()
	c.Release() // twice is harmless
	if _, held := Held(dir); held {
		t.Error("held after Release")
	}
	c2, err := ClaimDataDir(dir)
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	c2.Release()
}

// TestClaimAfterSIGKILL: a popbridge killed with SIGKILL leaves its
// control.json; Dial sees that nobody is there and the data dir can be
// claimed at once, without anyone cleaning up.
func TestClaimAfterSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	dir := t.TempDir()
	child := startClaimChild(t, dir)
	c, err := Dial(context.Background(), dir)
	if err != nil || c.PID() != child.Process.Pid {
		t.Fatalf("Dial the running child = %v (pid %d), want pid %d", err, c.PID(), child.Process.Pid)
	}
	if _, err := ClaimDataDir(dir); !errors.Is(err, ErrClaimed) {
		t.Fatalf("claim while the child holds it = %v", err)
	}
	if pid, held := Held(dir); !held || pid != child.Process.Pid {
		t.Errorf("Held = %d %v", pid, held)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	if _, err := ReadInfo(dir); err != nil {
		t.Fatalf("control.json should outlive SIGKILL: %v", err)
	}
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("Dial after SIGKILL = %v, want ErrNoBridge", err)
	}
	cl, err := ClaimDataDir(dir)
	if err != nil {
		t.Fatalf("claim after SIGKILL: %v", err)
	}
	cl.Release()
}

// TestDialStale: control.json that no bridge stands behind is ErrNoBridge,
// quickly: a process that has ended, a port someone else answers on
// (recycled), a damaged file.
func TestDialStale(t *testing.T) {
	dir := t.TempDir()
	write := func(info Info) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, InfoFile), []byte(fmt.Sprintf(`{"addr":%q,"token":%q,"pid":%d}`, info.Addr, info.Token, info.PID)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Someone else's server on the port, this (live) pid.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	write(Info{Addr: ln.Addr().String(), Token: "old", PID: os.Getpid()})
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoBridge) {
		t.Errorf("recycled port: %v", err)
	}
	// A process that has ended, at an address that hangs.
	if runtime.GOOS != "windows" {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		hang, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer hang.Close()
		write(Info{Addr: hang.Addr().String(), Token: "old", PID: cmd.Process.Pid})
		start := time.Now()
		if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoBridge) {
			t.Errorf("ended process: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Dial waited %s for a process that has ended", d)
		}
	}
	// Nothing listening.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := closed.Addr().String()
	closed.Close()
	write(Info{Addr: addr, Token: "old", PID: os.Getpid()})
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoBridge) {
		t.Errorf("nothing listening: %v", err)
	}
	os.WriteFile(filepath.Join(dir, InfoFile), []byte(`{"addr":`), 0o600)
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoBridge) {
		t.Errorf("damaged file: %v", err)
	}
}
