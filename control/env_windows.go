package control

import "golang.org/x/sys/windows/registry"

// registryReader reads string values under HKEY_CURRENT_USER.
func registryReader() func(key, value string) (string, bool) {
	return func(key, value string) (string, bool) {
		k, err := registry.OpenKey(registry.CURRENT_USER, key, registry.QUERY_VALUE)
		if err != nil {
			return "", false
		}
		defer k.Close()
		v, _, err := k.GetStringValue(value)
		if err != nil {
			return "", false
		}
		return v, true
	}
}
