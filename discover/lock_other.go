//go:build !windows

package discover

// isLockedErr: only Windows refuses to open a file another program holds.
func isLockedErr(err error) bool { return false }
