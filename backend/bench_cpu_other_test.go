//go:build !unix

package backend

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
