package discover

import (
	"errors"
	"syscall"
)

// Windows refuses to open a file another program opened without sharing
// it (ERROR_SHARING_VIOLATION, 32) or locked a range of
// (ERROR_LOCK_VIOLATION, 33): what Outlook does to the .pst it uses.
func isLockedErr(err error) bool {
	return errors.Is(err, syscall.Errno(32)) || errors.Is(err, syscall.Errno(33))
}
