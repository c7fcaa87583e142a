package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/server"
	"github.com/popbridge/popbridge/store"
)

// The bridge runs in a child process (this binary, re-executed with
// childEnv set) so that its peak RSS is its own: no corpus generator, no
// benchmark clients, nothing left over from earlier phases. Parent and
// child talk over the child's stdin/stdout, one JSON object per line.
const childEnv = "POPBENCH_BRIDGE"

const (
	benchUser = "bench"
	benchPass = "bench-pw"
)

// bridgeConfig is what the child serves.
type bridgeConfig struct {
	DataDir string           `json:"data_dir"`
	Sources []backend.Source `json:"sources"`
	// PasswordHash is bcrypt at the minimum cost: logins stay out of the
	// figures.
	PasswordHash string `json:"password_hash"`
	// Profile, if set, is a path prefix: the child writes a CPU profile of
	// its whole life to Profile+".cpu.pprof", a heap profile at every
	// "mem" command to Profile+".heap.pprof", and one at the Go heap's
	// peak to Profile+".peakheap.pprof".
	Profile string `json:"profile,omitempty"`
}

// childMsg is one line from the child.
type childMsg struct {
	Addr string    `json:"addr,omitempty"`
	Mem  memReport `json:"mem"`
	Err  string    `json:"err,omitempty"`
}

// serverCaps mirrors cmd/popbridge's: what the sessions implement.
var serverCaps = imap.CapSet{
	imap.CapIMAP4rev1:  {},
	imap.CapUIDPlus:    {},
	imap.CapMove:       {},
	imap.CapNamespace:  {},
	imap.CapChildren:   {},
	imap.CapSpecialUse: {},
}

func openAccount(dataDir string, sources []backend.Source, opts store.Options) (*store.DB, *backend.Account, error) {
	db, err := store.Open(filepath.Join(dataDir, "popbridge.db"), opts)
	if err != nil {
		return nil, nil, err
	}
	acct, err := backend.New(backend.Options{
		DB:      db,
		DataDir: dataDir,
		Sources: sources,
		Flatten: true,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, acct, nil
}

// bridgeChild is the child's main: open the data dir as `popbridge serve`
// does (durable store, an Index pass that finds nothing new), serve on a
// loopback port, answer "mem" and "reset" lines until stdin closes.
func bridgeChild(cfgJSON string, in io.Reader, out io.Writer) int {
	// The same soft memory limit `popbridge serve` sets.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
	sampler := startMemSampler()
	defer sampler.close()
	enc := json.NewEncoder(out)
	fail := func(err error) int {
		enc.Encode(childMsg{Err: err.Error()})
		return 1
	}
	var cfg bridgeConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fail(fmt.Errorf("decode %s: %w", childEnv, err))
	}
	if cfg.Profile != "" {
		stop, err := startCPUProfile(cfg.Profile + ".cpu.pprof")
		if err != nil {
			return fail(err)
		}
		defer stop()
		sampler.mu.Lock()
		sampler.onPeak = func() { _ = writeHeapProfile(cfg.Profile + ".peakheap.pprof") }
		sampler.mu.Unlock()
	}
	db, acct, err := openAccount(cfg.DataDir, cfg.Sources, store.Options{})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	if _, err := acct.Index(context.Background(), nil); err != nil {
		return fail(err)
	}
	srv, err := server.New(server.Options{
		Users:  []server.User{{Name: benchUser, PasswordHash: cfg.PasswordHash}},
		Caps:   serverCaps,
		Logger: slog.New(slog.DiscardHandler),
		NewSession: func(info server.SessionInfo) (imapserver.Session, error) {
			return acct.NewSession(info.User)
		},
	})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	enc.Encode(childMsg{Addr: ln.Addr().String(), Mem: sampler.report()})
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "mem":
			m := childMsg{Mem: sampler.report()}
			if cfg.Profile != "" {
				if err := writeHeapProfile(cfg.Profile + ".heap.pprof"); err != nil {
					m.Err = err.Error()
				}
			}
			enc.Encode(m)
		case "reset":
			m := childMsg{}
			if err := sampler.reset(); err != nil {
				m.Err = err.Error()
			}
			m.Mem = sampler.report()
			enc.Encode(m)
		default:
			enc.Encode(childMsg{Err: fmt.Sprintf("unknown command %q", sc.Text())})
		}
	}
	return 0
}

// bridgeProc is the parent's handle on a bridge child.
type bridgeProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	dec    *json.Decoder
	stderr *lockedBuffer
	done   chan struct{}
	Addr   string
	Start  memReport // memory right after start-up
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var hashOnce = sync.OnceValues(func() (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(benchPass), bcrypt.MinCost)
	return string(h), err
})

func startBridge(dataDir string, sources []backend.Source, profile string) (*bridgeProc, error) {
	hash, err := hashOnce()
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(bridgeConfig{DataDir: dataDir, Sources: sources, PasswordHash: hash, Profile: profile})
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable to start the bridge: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	cmd.SysProcAttr = procAttr()
	p := &bridgeProc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if p.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bridge child: %w", err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	p.dec = json.NewDecoder(stdout)
	m, err := p.recv()
	if err != nil {
		p.stop()
		return nil, err
	}
	p.Addr, p.Start = m.Addr, m.Mem
	return p, nil
}

func (p *bridgeProc) recv() (childMsg, error) {
	var m childMsg
	if err := p.dec.Decode(&m); err != nil {
		return m, fmt.Errorf("bridge child: %w; its stderr:\n%s", err, tail([]byte(p.stderr.String()), 4000))
	}
	if m.Err != "" {
		return m, fmt.Errorf("bridge child: %s", m.Err)
	}
	return m, nil
}

func (p *bridgeProc) call(cmd string) (memReport, error) {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return memReport{}, fmt.Errorf("bridge child: %w", err)
	}
	m, err := p.recv()
	return m.Mem, err
}

func (p *bridgeProc) mem() (memReport, error) { return p.call("mem") }

// stop closes the child's stdin (it shuts down cleanly) and kills it if it
// is still there after 10 s.
func (p *bridgeProc) stop() error {
	p.in.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		killGroup(p.cmd.Process.Pid)
		<-p.done
		return errors.New("bridge child did not exit within 10s; killed")
	}
	return nil
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the heap profile (in use and allocated).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return nil
}
