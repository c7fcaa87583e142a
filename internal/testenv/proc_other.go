//go:build unix && !linux

package testenv

import "syscall"

func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }
