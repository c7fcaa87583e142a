package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/control"
	desktoppkg "github.com/popbridge/popbridge/desktop"
)

// newSystemHooks wires the desktop integration (package desktop: the
// console's autostart switch, sign-in, uninstall and log view) to this
// popbridge: its configuration, the shell (restart, stop) and the log.
func newSystemHooks(sh *shell, host *configHost, dataDir, logFile string, problems *control.ProblemLog, log *slog.Logger) *desktoppkg.Hooks {
	exe, _ := os.Executable()
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return desktoppkg.New(desktoppkg.Options{
		DataDir:        dataDir,
		Config:         func() desktoppkg.Config { return desktopConfig(host.current()) },
		AutostartEnv:   func() (autostart.Env, error) { return autostartEnv() },
		AutostartEntry: func(cfg, logDir string) (autostart.Entry, error) { return autostartEntry(cfg, logDir) },
		Exe:            exe,
		LogFile:        logFile,
		Open:           func(u string) error { return openBrowser(u) },
		SignedIn: func() {
			problems.Clear("sign-in")
			sh.restart() // connect with the new sign-in now
		},
		Quit: sh.stop,
		Notify: func() {
			if sh.svc != nil {
				sh.svc.SystemChanged()
			}
		},
		Logger: log,
	})
}

// desktopConfig is what the desktop integration needs of c.
func desktopConfig(c *Config) desktoppkg.Config {
	d := desktoppkg.Config{Path: c.Path}
	for _, s := range c.Archive.Sources {
		d.Sources = append(d.Sources, s.Path)
	}
	if u := c.Upstream; u != nil && u.OAuth2 != nil {
		d.SignIn = &desktoppkg.SignIn{OAuth: oauthConfig(u.OAuth2), Account: u.Username}
	}
	return d
}
