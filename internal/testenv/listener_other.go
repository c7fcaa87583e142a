//go:build !linux

package testenv

// groupListens cannot look into other processes here; the privately
// unpacked servers run on Linux only.
func groupListens(pgid, port int) bool { return false }
