//go:build linux

package main

import "syscall"

// procAttr puts a child in its own process group (so it can be killed with
// everything it started) and has the kernel kill it if popbench dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
