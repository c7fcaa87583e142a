//go:build !unix

package main

import "errors"

const peakSource = "unavailable"

func readProcMem() (procMem, bool) { return procMem{}, false }

func resetPeak() error { return errors.New("the peak RSS cannot be read on this system") }
