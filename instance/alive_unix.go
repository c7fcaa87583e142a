//go:build unix

package instance

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this pid exists (signal 0;
// EPERM: it exists but is someone else's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
