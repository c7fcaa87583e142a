//go:build !windows

package autostart

func systemRegistry() Registry { return nil }
