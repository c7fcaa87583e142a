package main

import (
	"log/slog"

	"github.com/popbridge/popbridge/control"
)

// newSystemHooks wires the desktop integration (package desktop) to this
// popbridge: the configuration, the shell (restart, stop) and the log.
func newSystemHooks(sh *shell, host *configHost, dataDir, logFile string, problems *control.ProblemLog, log *slog.Logger) control.SystemHooks {
	return nil
}
