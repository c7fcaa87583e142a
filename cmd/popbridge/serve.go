package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/server"
)

// serverCaps is what the sessions implement, each checked through the
// whole bridge by TestCapabilities (advertising anything else would break
// clients; imapserver adds IDLE, UNSELECT, ENABLE, UTF8=ACCEPT, LITERAL-
// and SASL-IR itself, the front door ID). Not offered: BINARY (a part that
// does not decode would be served empty), CONDSTORE, QUOTA, COMPRESS (not
// in imapserver).
var serverCaps = imap.CapSet{
	imap.CapIMAP4rev1:    {},
	imap.CapUIDPlus:      {},
	imap.CapMove:         {},
	imap.CapNamespace:    {},
	imap.CapChildren:     {},
	imap.CapSpecialUse:   {},
	imap.CapESearch:      {},
	imap.CapSearchRes:    {},
	imap.CapStatusSize:   {},
	imap.CapLiteralPlus:  {},
	imap.CapListExtended: {},
	imap.CapListStatus:   {},
}

// authCacheTTL is server.Options.AuthCacheTTL (0: its default);
// BenchmarkLoginLoop turns the cache off to show what it saves.
var authCacheTTL time.Duration

func runServe(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[-config FILE]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	if len(cfg.Users) == 0 {
		return fail(stderr, errors.New("no [[users]] in the configuration: add one with a password hash from 'popbridge passwd'"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	softMemoryLimit()
	if err := runShell(ctx, cfg, shellOptions{}, stdout, stderr); err != nil {
		return fail(stderr, err)
	}
	return 0
}

// serve runs the bridge until ctx ends.
func serve(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	a, err := openAppFor(cfg, log, false)
	if err != nil {
		return err
	}
	defer a.Close()

	tlsConfig, bundle, tlsInfo, err := serverTLS(cfg, log)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	ctl, err := attachControl(ctx, a)
	if err != nil {
		return err
	}
	defer ctl.detach()
	users := make([]server.User, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		users = append(users, server.User{Name: u.Name, PasswordHash: u.PasswordHash})
	}
	var trace io.Writer
	if cfg.Log.Trace {
		trace = os.Stderr
	}
	srv, err := server.New(server.Options{
		Users:        users,
		TLSConfig:    tlsConfig,
		TrustedNets:  cfg.Listen.TrustedPrefixes(),
		Caps:         serverCaps,
		AuthCacheTTL: authCacheTTL,
		Logger:       log,
		Version:      version,
		DebugWriter:  trace,
		NewSession: func(info server.SessionInfo) (imapserver.Session, error) {
			log.Info("session started", "user", info.User, "remote", info.RemoteAddr.String(), "tls", info.TLS)
			sess, err := a.acct.NewSession(info.User)
			if err == nil {
				sess.SetUntaggedWriter(info.WriteUntagged)
			}
			return ctl.session(info, sess, err)
		},
	})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	listen := func(addr string, tls bool) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another program using that port? change [listen] in the config)", addr, err)
		}
		kind := "IMAP (STARTTLS)"
		if tls {
			kind = "IMAPS (TLS)"
		}
		fmt.Fprintf(stdout, "popbridge: %s listening on %s\n", kind, ln.Addr())
		ctl.listening(ln.Addr(), tls)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if tls {
				err = srv.ServeTLS(ln)
			} else {
				err = srv.Serve(ln)
			}
			if err != nil {
				errc <- err
			}
		}()
		return nil
	}
	if err := listen(cfg.Listen.IMAP, false); err != nil {
		srv.Close()
		return err
	}
	if err := listen(cfg.Listen.IMAPS, true); err != nil {
		srv.Close()
		return err
	}
	fmt.Fprint(stdout, tlsInfo)

	ctl.ready(bundle, tlsConfig)
	// The old POP accounts keep flowing until cutover.
	startPOP(ctx, a, log)

	// The upstream: check it now so that configuration mistakes are
	// reported at start-up in plain words; the bridge serves the archive
	// either way and keeps retrying.
	if a.pool != nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.pool.Check(cctx)
		if err == nil {
			err = a.acct.SyncFolders(cctx)
			if errors.Is(err, backend.ErrPrefixClash) {
				cancel()
				srv.Close()
				return err
			}
		}
		cancel()
		if err != nil {
			log.Error("upstream server", "err", err)
			fmt.Fprintf(stdout, "popbridge: upstream: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "popbridge: upstream %s:%d connected\n", cfg.Upstream.Host, cfg.Upstream.Port)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.acct.RunRemote(ctx, 10*time.Second, 5*time.Minute)
		}()
	}

	// Index in the background while serving, then watch the archive.
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchArchive(ctx, a, log, 15*time.Second)
	}()

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("shutting down")
	srv.Close()
	wg.Wait()
	waitPOP(a)
	return err
}

// watchArchive indexes now and then every interval, so that mail the old
// client keeps downloading into the archive shows up (IDLE clients get
// EXISTS).
func watchArchive(ctx context.Context, a *app, log *slog.Logger, interval time.Duration) {
	for {
		start := time.Now()
		rep, err := a.acct.Index(ctx, nil)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("indexing failed", "err", err)
		} else if rep.Messages > 0 {
			log.Info("archive indexed", "messages", rep.Messages, "bytes", rep.Bytes, "elapsed", time.Since(start).Round(time.Millisecond))
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// softMemoryLimit sets a 48 MiB soft memory limit unless GOMEMLIMIT says
// otherwise: it keeps the heap near what is live while many clients stream
// large messages or migrate uploads batches (the Go default lets the heap
// double before collecting).
func softMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
}
