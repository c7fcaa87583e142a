//go:build !unix

package testenv

import (
	"os"
	"syscall"
)

// Dovecot does not run here; these only keep the package compiling so
// that tests importing it can skip via RequireDovecot.

func procAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func groupAlive(int) bool { return false }
