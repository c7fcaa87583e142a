//go:build unix && !linux

package main

import (
	"errors"
	"runtime"
	"syscall"
)

const peakSource = "ru_maxrss, getrusage(2)"

func readProcMem() (procMem, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return procMem{}, false
	}
	hwm := int64(ru.Maxrss)
	if runtime.GOOS != "darwin" && runtime.GOOS != "ios" {
		hwm <<= 10 // kilobytes elsewhere
	}
	return procMem{HWM: hwm}, hwm > 0
}

// resetPeak cannot reset ru_maxrss; the bridge child is a fresh process
// for every phase, so its maximum is that phase's.
func resetPeak() error { return errors.New("the peak RSS cannot be reset on " + runtime.GOOS) }
