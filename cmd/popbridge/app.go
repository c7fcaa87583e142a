package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/store"
)

// app is what every subcommand that touches the data dir needs.
type app struct {
	cfg  *Config
	log  *slog.Logger
	db   *store.DB
	acct *backend.Account
	pool *upstream.Pool // nil without [upstream]
}

// newFlagSet makes a subcommand flag set whose -h prints a usage text.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: popbridge %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// loadConfigFlag resolves and loads the configuration, printing warnings.
func loadConfigFlag(path string, stderr io.Writer) (*Config, error) {
	p, err := FindConfig(path)
	if err != nil {
		return nil, err
	}
	cfg, warnings, err := LoadConfig(p)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "popbridge: warning: %s\n", w)
	}
	return cfg, nil
}

// newLogger builds the slog logger from [log].
func newLogger(cfg *Config, stderr io.Writer) (*slog.Logger, func(), error) {
	out := stderr
	closeFn := func() {}
	if cfg.Log.File != "" {
		f, err := os.OpenFile(cfg.Log.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("[log] file: %w", err)
		}
		out = f
		closeFn = func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	var h slog.Handler
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(out, opts)
	} else {
		h = slog.NewTextHandler(out, opts)
	}
	return slog.New(h), closeFn, nil
}

func dbPath(cfg *Config) string { return filepath.Join(cfg.DataDir, "popbridge.db") }

// openApp opens the data dir (one process at a time) and the account for
// a command that runs alone (import, status, fetch, migrate, verify without
// a bridge): no IMAP clients share its upstream connections.
func openApp(cfg *Config, log *slog.Logger) (*app, error) {
	return openAppFor(cfg, log, true)
}

// openAppFor is openApp; exclusive is false for serve, whose clients and
// watcher need upstream connections too.
func openAppFor(cfg *Config, log *slog.Logger, exclusive bool) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	var pool *upstream.Pool
	if cfg.Upstream != nil {
		p, err := newPool(cfg.Upstream, log)
		if err != nil {
			return nil, err
		}
		pool = p
	}
	// A command run alone fails fast when the data dir is in use; serve
	// waits a little, so that a `popbridge status` that happened to open
	// the data dir while serve was starting does not stop it.
	timeout := time.Second
	if !exclusive {
		timeout = 5 * time.Second
	}
	db, err := store.Open(dbPath(cfg), store.Options{Timeout: timeout})
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, err
	}
	acct, err := backend.New(backend.Options{
		DB:        db,
		DataDir:   cfg.DataDir,
		Prefix:    cfg.Archive.Prefix,
		Sources:   sources(cfg),
		Flatten:   true,
		Logger:    log,
		Remote:    pool,
		Exclusive: exclusive,
	})
	if err != nil {
		db.Close()
		if pool != nil {
			pool.Close()
		}
		return nil, err
	}
	return &app{cfg: cfg, log: log, db: db, acct: acct, pool: pool}, nil
}

func (a *app) Close() error {
	if a.pool != nil {
		a.pool.Close()
	}
	return a.db.Close()
}

func sources(cfg *Config) []backend.Source {
	var out []backend.Source
	for _, s := range cfg.Archive.Sources {
		out = append(out, backend.Source{Name: s.Name, Path: s.Path, Format: archive.Format(s.Format)})
	}
	return out
}

// isLocked reports whether err means another popbridge holds the data dir.
func isLocked(err error) bool { return errors.Is(err, store.ErrLocked) }

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "popbridge: %v\n", err)
	return 1
}
