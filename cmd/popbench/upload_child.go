package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/store"
)

// The upload figures run popbridge's migrate in a child process (this
// binary, re-executed with migrateChildEnv set), as `popbridge migrate`
// runs without a bridge: open the data dir with the durable store, an Index
// pass, then PlanMigration and Migrate through an upstream.Pool built like
// cmd/popbridge's. Its peak RSS (VmHWM) is then the migration's alone. The
// child answers with one JSON line on stdout.
//
// The child is dispatched from init, not main, so that the test binary
// (whose TestMain lives in popbench_test.go) acts as the child too.
const migrateChildEnv = "POPBENCH_MIGRATE"

func init() {
	if cfg := os.Getenv(migrateChildEnv); cfg != "" {
		os.Exit(migrateChild(cfg))
	}
}

// migrateChildConfig is what the child does.
type migrateChildConfig struct {
	// Op is "migrate" (Index, PlanMigration, Migrate) or "sync" (a fresh
	// data dir: SyncFolders, then SyncRemote of SyncFolder, twice).
	Op             string            `json:"op"`
	DataDir        string            `json:"data_dir"`
	Sources        []backend.Source  `json:"sources,omitempty"`
	Upstream       string            `json:"upstream"` // host:port, loopback, no TLS
	User           string            `json:"user"`
	Password       string            `json:"password"`
	MaxConnections int               `json:"max_connections"`
	Folders        []string          `json:"folders,omitempty"`
	Mapping        map[string]string `json:"mapping,omitempty"`
	SyncFolder     string            `json:"sync_folder,omitempty"`
	// Exclusive: the account is alone on the upstream connections, as in
	// `popbridge migrate` without a running bridge (U4); U1 stands for a
	// drag inside the bridge, which leaves one connection for clients.
	Exclusive bool `json:"exclusive,omitempty"`
	// Profile, if set, is where the child writes a CPU profile of its
	// whole life (popbench -profile DIR).
	Profile string `json:"profile,omitempty"`
}

// migrateChildResult is the child's answer.
type migrateChildResult struct {
	Index   time.Duration `json:"index"`   // the Index pass (finds nothing new)
	Plan    time.Duration `json:"plan"`    // PlanMigration
	Migrate time.Duration `json:"migrate"` // Migrate

	InScope     int   `json:"in_scope"`
	ScopeBytes  int64 `json:"scope_bytes"`
	OnServer    int   `json:"on_server"`
	ToUpload    int   `json:"to_upload"`
	UploadBytes int64 `json:"upload_bytes"`
	Folders     int   `json:"folders"`
	Create      int   `json:"create"`

	Uploaded int   `json:"uploaded"`
	Already  int   `json:"already"`
	Failed   int   `json:"failed"`
	Bytes    int64 `json:"bytes"` // uploaded bytes (Migrate's count)
	Complete bool  `json:"complete"`

	Sync     time.Duration `json:"sync"`   // first SyncRemote of a fresh mirror
	Resync   time.Duration `json:"resync"` // a second one: nothing new
	Mirrored int           `json:"mirrored"`

	Mem memReport `json:"mem"`
	Err string    `json:"err,omitempty"`
}

func migrateChild(cfgJSON string) int {
	sampler := startMemSampler()
	defer sampler.close()
	enc := json.NewEncoder(os.Stdout)
	var res migrateChildResult
	err := func() error {
		var cfg migrateChildConfig
		if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
			return fmt.Errorf("decode %s: %w", migrateChildEnv, err)
		}
		// As popbridge does: migrate (run without a bridge) and serve
		// (which runs the mirror sync) both set this soft limit.
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(48 << 20)
		}
		if cfg.Profile != "" {
			stop, err := startCPUProfile(cfg.Profile)
			if err != nil {
				return err
			}
			defer stop()
		}
		return runMigrateChild(&cfg, &res)
	}()
	if err != nil {
		res.Err = err.Error()
	}
	res.Mem = sampler.report()
	enc.Encode(res)
	if err != nil {
		return 1
	}
	return 0
}

// newBenchPool builds the pool as cmd/popbridge's newPool does for
// tls = "none" and auth = "plain".
func newBenchPool(addr, user, password string, maxConns int, log *slog.Logger) (*upstream.Pool, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("upstream port %q: %w", portStr, err)
	}
	return upstream.New(upstream.Options{
		Host:           host,
		Port:           port,
		TLS:            upstream.TLSNone,
		Username:       user,
		Auth:           upstream.AuthPlain,
		MaxConnections: maxConns,
		Logger:         log,
		Password:       func(context.Context) (string, error) { return password, nil },
	})
}

func runMigrateChild(cfg *migrateChildConfig, res *migrateChildResult) error {
	ctx := context.Background()
	// Warnings (refused uploads, retries) go to stderr: the parent shows
	// them with any failure.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pool, err := newBenchPool(cfg.Upstream, cfg.User, cfg.Password, cfg.MaxConnections, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	db, err := store.Open(cfg.DataDir+"/popbridge.db", store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	acct, err := backend.New(backend.Options{DB: db, DataDir: cfg.DataDir, Sources: cfg.Sources, Flatten: true, Logger: log, Remote: pool, Exclusive: cfg.Exclusive})
	if err != nil {
		return err
	}
	switch cfg.Op {
	case "migrate":
		start := time.Now()
		if _, err := acct.Index(ctx, nil); err != nil {
			return err
		}
		res.Index = time.Since(start)
		o := backend.MigrateOptions{Folders: cfg.Folders, Mapping: cfg.Mapping}
		start = time.Now()
		plan, err := acct.PlanMigration(ctx, o)
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		res.Plan = time.Since(start)
		for _, f := range plan.Folders {
			res.Folders++
			if f.Create {
				res.Create++
			}
			res.InScope += f.InScope
			res.ScopeBytes += f.Bytes
			res.OnServer += f.OnServer
			res.ToUpload += f.ToUpload
			res.UploadBytes += f.UploadBytes
		}
		start = time.Now()
		out, err := acct.Migrate(ctx, plan, o)
		res.Migrate = time.Since(start)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for _, f := range out.Folders {
			res.Uploaded += f.Uploaded
			res.Already += f.Already
			res.Failed += f.Failed
			if f.Error != "" {
				return fmt.Errorf("migrate %s → %s: %s", f.Source, f.Target, f.Error)
			}
		}
		res.Bytes, res.Complete = out.Bytes, out.Complete
		return nil
	case "sync":
		if err := acct.SyncFolders(ctx); err != nil {
			return err
		}
		start := time.Now()
		if err := acct.SyncRemote(ctx, cfg.SyncFolder); err != nil {
			return fmt.Errorf("sync %q: %w", cfg.SyncFolder, err)
		}
		res.Sync = time.Since(start)
		start = time.Now()
		if err := acct.SyncRemote(ctx, cfg.SyncFolder); err != nil {
			return fmt.Errorf("re-sync %q: %w", cfg.SyncFolder, err)
		}
		res.Resync = time.Since(start)
		st, err := acct.Status()
		if err != nil {
			return err
		}
		for _, f := range st {
			if f.Name == cfg.SyncFolder {
				res.Mirrored = f.Messages
			}
		}
		return nil
	}
	return fmt.Errorf("unknown op %q", cfg.Op)
}

// runChild runs one migrate child to completion and returns its answer.
// ctx ending kills it.
func runChild(ctx context.Context, cfg migrateChildConfig) (*migrateChildResult, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable to start the migrate child: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), migrateChildEnv+"="+string(b))
	cmd.SysProcAttr = procAttr()
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start migrate child: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { killGroup(cmd.Process.Pid) })
	defer stop()
	werr := cmd.Wait()
	var res migrateChildResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		if werr == nil {
			werr = err
		}
		return nil, fmt.Errorf("migrate child (%s): %v; its stderr:\n%s", cfg.Op, werr, tail([]byte(stderr.String()), 4000))
	}
	if res.Err != "" {
		return &res, fmt.Errorf("migrate child (%s): %s; its stderr:\n%s", cfg.Op, res.Err, tail([]byte(stderr.String()), 4000))
	}
	if werr != nil {
		return &res, fmt.Errorf("migrate child (%s): %w", cfg.Op, werr)
	}
	return &res, nil
}

var errNoDovecot = errors.New("dovecot not installed (apt-get install -y dovecot-imapd)")
