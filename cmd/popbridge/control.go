package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/pop3"
	"github.com/popbridge/popbridge/instance"
)

// The control endpoint lets `status`, `import` (and later fetch, migrate,
// verify) talk to a running `serve`: bbolt admits one process, so they can't
// open the data dir while it runs. It is HTTP on a loopback port; the
// address and a random bearer token are in data_dir/control.json (mode
// 0600), so only the user who runs the bridge can use it.

type controlInfo struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

func controlFile(cfg *Config) string { return filepath.Join(cfg.DataDir, "control.json") }

// statusReport is what `popbridge status` prints.
type statusReport struct {
	Version  string                 `json:"version"`
	Running  bool                   `json:"running"`
	Indexed  time.Time              `json:"indexed"` // end of the last complete index run (zero: in progress)
	Folders  []backend.FolderStatus `json:"folders"`
	Quota    *quotaInfo             `json:"quota,omitempty"`
	POP3     []pop3.AccountStatus   `json:"pop3,omitempty"`
	Problems []string               `json:"problems,omitempty"`
}

type quotaInfo struct {
	Used  int64  `json:"used"`
	Limit int64  `json:"limit"`
	Error string `json:"error,omitempty"`
}

func buildStatus(a *app, running bool) (*statusReport, error) {
	folders, err := a.acct.Status()
	if err != nil {
		return nil, err
	}
	rep := &statusReport{Version: version, Running: running, Indexed: a.acct.LastIndexed(), Folders: folders, Problems: a.acct.Problems(), POP3: popStatus(a)}
	if a.pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		used, limit, ok, err := a.acct.Quota(ctx)
		cancel()
		if err != nil {
			rep.Quota = &quotaInfo{Error: err.Error()}
		} else if ok {
			rep.Quota = &quotaInfo{Used: used, Limit: limit}
		}
	}
	return rep, nil
}

// startControl serves the control endpoint until ctx ends.
func startControl(ctx context.Context, a *app, addr string) (func(), error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("[listen] control: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("[listen] control: %q must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control endpoint: %w", err)
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		ln.Close()
		return nil, err
	}
	info := controlInfo{Addr: ln.Addr().String(), Token: hex.EncodeToString(tok[:]), PID: os.Getpid()}
	data, _ := json.Marshal(info)
	path := controlFile(a.cfg)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			want := "Bearer " + info.Token
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /status", auth(func(w http.ResponseWriter, r *http.Request) {
		rep, err := buildStatus(a, true)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	}))
	mux.HandleFunc("POST /index", auth(func(w http.ResponseWriter, r *http.Request) {
		rep, err := a.acct.Index(r.Context(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	}))
	mux.HandleFunc("POST /fetch", auth(fetchHandler(a)))
	mux.HandleFunc("POST /migrate", auth(migrateHandler(a)))
	mux.HandleFunc("POST /verify", auth(verifyHandler(a)))
	instance.Register(mux, auth, consoleLoginURL)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		// Only remove the file if it is still ours.
		if b, err := os.ReadFile(path); err == nil {
			var cur controlInfo
			if json.Unmarshal(b, &cur) == nil && cur.Token == info.Token {
				os.Remove(path)
			}
		}
	}
	go func() { <-ctx.Done(); stop() }()
	return stop, nil
}

var errNoBridge = errors.New("no running bridge")

// callControl asks a running bridge; errNoBridge when none answers.
func callControl(cfg *Config, method, path string, timeout time.Duration, out any) error {
	b, err := os.ReadFile(controlFile(cfg))
	if err != nil {
		return errNoBridge
	}
	var info controlInfo
	if err := json.Unmarshal(b, &info); err != nil || info.Addr == "" {
		return errNoBridge
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+info.Addr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+info.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("running bridge at %s did not answer: %w", info.Addr, err)
		}
		return errNoBridge // stale control.json: nothing listens there
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("running bridge at %s: %s", info.Addr, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
