// Package units formats quantities for people.
package units

import "fmt"

// Bytes formats a size as people read it: "1.5 GB", "12.0 MB", "3.2 KB",
// "300 bytes" (1 KB = 1024 bytes, as mail programs count).
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
