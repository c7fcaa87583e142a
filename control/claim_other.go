//go:build !unix && !windows

package control

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("locked by another process")

// No file locks here: the control endpoint alone tells.
func lockFile(*os.File) error { return nil }
func unlockFile(*os.File)     {}

// processAlive cannot tell here; the control endpoint decides.
func processAlive(int) bool { return true }
