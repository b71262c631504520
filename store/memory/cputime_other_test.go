//go:build !unix

package memory

import "time"

// processCPU returns 0: no CPU-time metric on this system.
func processCPU() time.Duration { return 0 }
