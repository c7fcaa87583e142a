package autostart

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzWindowsCommandLine: any arguments survive quoting for a Run value
// and CommandLineToArgvW's rules (the program path has no quotes, as
// Windows paths cannot).
func FuzzWindowsCommandLine(f *testing.F) {
	f.Add(`C:\Program Files\popbridge\popbridgew.exe`, "-config", `C:\My Mail\a "b"\`, "")
	f.Add(`C:\pb.exe`, `\\server\share\x.toml`, `a\\"b`, ` `)
	f.Fuzz(func(t *testing.T, exe, a1, a2, a3 string) {
		if exe == "" || strings.ContainsAny(exe, "\"\x00") || strings.TrimLeft(exe, " \t") != exe {
			return
		}
		for _, a := range []string{a1, a2, a3} {
			if strings.ContainsRune(a, 0) {
				return
			}
		}
		cmd := []string{exe, a1, a2, a3}
		got := splitWindowsCommandLine(windowsCommandLine(cmd))
		if !reflect.DeepEqual(got, cmd) {
			t.Fatalf("%q → %s → %q", cmd, windowsCommandLine(cmd), got)
		}
	})
}

// FuzzSplitSystemdExec: any arguments survive ExecStart= quoting, and
// splitting arbitrary text never panics.
func FuzzSplitSystemdExec(f *testing.F) {
	f.Add("/usr/bin/popbridge", "-config", `/home/me/50% "x" $HOME\y.toml`, "a b")
	f.Add("/x", "", ";", "'q'")
	f.Fuzz(func(t *testing.T, exe, a1, a2, a3 string) {
		splitSystemdExec(exe + " " + a1 + a2 + a3)
		cmd := []string{exe, a1, a2, a3}
		for _, a := range cmd {
			if !utf8.ValidString(a) || strings.ContainsAny(a, "\x00\r") {
				return
			}
		}
		got, err := splitSystemdExec(systemdExec(cmd))
		if err != nil || !reflect.DeepEqual(got, cmd) {
			t.Fatalf("%q → %s → %q, %v", cmd, systemdExec(cmd), got, err)
		}
	})
}
