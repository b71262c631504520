//go:build unix

package limiter_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

// BenchmarkCheckMetrics measures what Metrics add to a check on a hot key,
// recording into the OpenTelemetry SDK (a ManualReader, never collected
// during the run): compare "on" with "off". The budget is 0 allocations.
// cpu-ns/op is the process's CPU time per check, steadier than ns/op on a
// loaded machine.
func BenchmarkCheckMetrics(b *testing.B) {
	for _, c := range []struct {
		name  string
		rules []limiter.Rule
	}{{"1rule", oneRule}, {"4rules", four}} {
		for _, on := range []bool{false, true} {
			name := c.name + "/off"
			if on {
				name = c.name + "/on"
			}
			b.Run(name, func(b *testing.B) {
				var opts []limiter.Option
				if on {
					mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
					b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
					m, err := limiter.NewMetrics(limiter.WithMeterProvider(mp))
					if err != nil {
						b.Fatal(err)
					}
					opts = append(opts, limiter.WithObserver(m))
				}
				l, err := limiter.New(memory.New(), c.rules, opts...)
				if err != nil {
					b.Fatal(err)
				}
				req := &limiter.Request{Facts: dimensions.Facts{User: "hot", Tenant: "t"}}
				b.ReportAllocs()
				c0 := processCPU()
				for b.Loop() {
					check(b, l, req)
				}
				b.ReportMetric(float64(processCPU()-c0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
