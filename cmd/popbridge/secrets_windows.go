//go:build windows

package main

import (
	"context"
	"os"
	"os/exec"
	"syscall"
)

// shellCommand runs command with cmd /C. The command line is passed to
// cmd.exe verbatim (/S strips exactly the outer quotes), because Go's
// argument quoting is not what cmd.exe parses.
func shellCommand(ctx context.Context, command string) *exec.Cmd {
	shell := os.Getenv("ComSpec")
	if shell == "" {
		shell = "cmd.exe"
	}
	cmd := exec.CommandContext(ctx, shell)
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `"` + shell + `" /S /C "` + command + `"`}
	return cmd
}
