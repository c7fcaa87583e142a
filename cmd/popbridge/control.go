package main

// The CLI's way into popbridge: the control API (package control). With a
// bridge running, status, import, fetch, migrate and verify ask it over its
// control endpoint (bbolt admits one process); without one they open the
// data dir and use an in-process control.Service: the same API either way.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/pop3"
	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
)

// runtimeFor describes an opened app to the control Service.
func runtimeFor(a *app, running bool, listeners []control.Listener, bundle *certs.Bundle) *control.Runtime {
	rt := &control.Runtime{
		Account:   a.acct,
		Migrate:   migrateDefaults(a.cfg),
		Listeners: listeners,
		Running:   running,
	}
	if a.cfg.Upstream != nil {
		rt.Upstream = net.JoinHostPort(a.cfg.Upstream.Host, strconv.Itoa(a.cfg.Upstream.Port))
	}
	if len(a.cfg.POP3) > 0 {
		rt.POP = popRuntime{a}
	}
	if bundle != nil {
		rt.CACert = bundle.CACert.Raw
		rt.CAFingerprint = bundle.CAFingerprintSHA256
	}
	return rt
}

// migrateDefaults are the [migrate] settings as backend options.
func migrateDefaults(cfg *Config) backend.MigrateOptions {
	o := backend.MigrateOptions{Mapping: cfg.Migrate.Folders, DailyLimit: int64(cfg.Migrate.DailyLimit)}
	if !cfg.Migrate.Since.IsZero() {
		o.Since = cfg.Migrate.Since.Time(time.Local)
	}
	if !cfg.Migrate.Before.IsZero() {
		o.Before = cfg.Migrate.Before.Time(time.Local)
	}
	return o
}

// popRuntime is an app's [[pop3]] accounts for the control Service.
type popRuntime struct{ a *app }

func (p popRuntime) Status() []pop3.AccountStatus { return popStatus(p.a) }

func (p popRuntime) Hosts() map[string]string {
	m := map[string]string{}
	for _, c := range p.a.cfg.POP3 {
		m[c.Name] = c.Host
	}
	return m
}

func (p popRuntime) Fetch(ctx context.Context, account string) (*control.FetchReport, error) {
	if account != "" && findPOP3(p.a.cfg, account) == nil {
		return nil, &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf("no [[pop3]] account named %q", account), Status: 404}
	}
	rep := fetchNow(ctx, p.a, account)
	return &rep, nil
}

// openAPI returns the API of the bridge running on cfg's data dir or, when
// none runs, an in-process Service over the data dir (index: after
// indexing the archive, as a command that runs alone must). done releases
// what it opened.
func openAPI(ctx context.Context, cfg *Config, stderr io.Writer, index bool) (api control.API, done func(), err error) {
	c, err := control.Dial(ctx, cfg.DataDir)
	if err == nil {
		return c, func() {}, nil
	}
	if !errors.Is(err, control.ErrNoBridge) {
		return nil, nil, err
	}
	log, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		return nil, nil, err
	}
	a, err := openApp(cfg, log)
	if err != nil {
		closeLog()
		if isLocked(err) {
			return nil, nil, fmt.Errorf("%w (the running bridge did not answer on its control endpoint)", err)
		}
		return nil, nil, err
	}
	done = func() {
		a.Close()
		closeLog()
	}
	if index {
		if _, err := a.acct.Index(ctx, nil); err != nil {
			done()
			return nil, nil, fmt.Errorf("index the archive: %w", err)
		}
	}
	svc := control.NewService(control.Options{Version: version, DataDir: cfg.DataDir, Logger: log})
	svc.Attach(runtimeFor(a, false, nil, nil))
	return svc, done, nil
}

// getStatus asks a running bridge, else reads the data dir itself.
func getStatus(cfg *Config) (*control.Status, error) {
	ctx := context.Background()
	api, done, err := openAPIQuiet(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer done()
	return api.Status(ctx)
}

// openAPIQuiet is openAPI with a logger that discards (status prints its
// own report).
func openAPIQuiet(ctx context.Context, cfg *Config) (control.API, func(), error) {
	c, err := control.Dial(ctx, cfg.DataDir)
	if err == nil {
		return c, func() {}, nil
	}
	if !errors.Is(err, control.ErrNoBridge) {
		return nil, nil, err
	}
	log := slog.New(slog.DiscardHandler)
	a, err := openApp(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	svc := control.NewService(control.Options{Version: version, DataDir: cfg.DataDir, Logger: log})
	svc.Attach(runtimeFor(a, false, nil, nil))
	return svc, func() { a.Close() }, nil
}
