package hostiletest

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// long reports whether the long variants run (TOLLGATE_LONG=1).
func long() bool { return os.Getenv("TOLLGATE_LONG") == "1" }

// procStatus returns a field of /proc/self/status in bytes (VmRSS,
// VmHWM), or -1 when it cannot be read (not Linux).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fs := strings.Fields(rest) // "123456 kB"
		if len(fs) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return -1
		}
		return n * kib
	}
	return -1
}

// heapAfterGC returns HeapAlloc and HeapInuse after a full collection.
func heapAfterGC() (alloc, inuse uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// settle returns as much memory as it can to the OS, so that a test's
// RSS figures are not those of the test before it.
func settle() { debug.FreeOSMemory() }

func mb(n uint64) float64 { return float64(n) / mib }
func mbi(n int64) float64 { return float64(n) / mib }
