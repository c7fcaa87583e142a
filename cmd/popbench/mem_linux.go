//go:build linux

package main

import (
	"bytes"
	"os"
	"strconv"
)

const peakSource = "VmHWM, /proc/self/status"

// readProcMem reads VmHWM, VmRSS, RssAnon and RssFile of this process.
func readProcMem() (procMem, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return procMem{}, false
	}
	var m procMem
	for _, line := range bytes.Split(b, []byte("\n")) {
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmHWM":
			dst = &m.HWM
		case "VmRSS":
			dst = &m.RSS
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		f := bytes.Fields(val) // "1234 kB"
		if len(f) == 2 && string(f[1]) == "kB" {
			if n, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
				*dst = n << 10
			}
		}
	}
	return m, m.HWM > 0
}

// resetPeak resets VmHWM to the current RSS (Linux 4.0+, proc(5)
// clear_refs "5").
func resetPeak() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
