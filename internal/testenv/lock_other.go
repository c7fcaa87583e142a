//go:build !unix

package testenv

import "errors"

// lockFile is only needed where the privately unpacked servers run (Linux).
func lockFile(string) (func(), error) {
	return nil, errors.New("file locking is not supported on this platform")
}
