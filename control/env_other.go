//go:build !windows

package control

// registryReader is nil: there is no registry off Windows.
func registryReader() func(key, value string) (string, bool) { return nil }
