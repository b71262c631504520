package limiter_test

import (
	"context"
	"fmt"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

func ExampleNewMetrics() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader() // in production: a Prometheus or OTLP reader
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	m, err := limiter.NewMetrics(limiter.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	l, err := limiter.New(memory.New(), []limiter.Rule{{
		Name: "per-user", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute,
		By: []dimensions.Dimension{dimensions.User},
	}}, limiter.WithObserver(m))
	if err != nil {
		panic(err)
	}
	for range 3 {
		l.Check(ctx, &limiter.Request{Facts: dimensions.Facts{User: "alice"}})
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			if md.Name != "tollgate.decisions" {
				continue
			}
			for _, p := range md.Data.(metricdata.Sum[int64]).DataPoints {
				rule, _ := p.Attributes.Value(limiter.AttrRule)
				result, _ := p.Attributes.Value(limiter.AttrResult)
				fmt.Printf("%s{rule=%s, result=%s} %d\n", md.Name, rule.AsString(), result.AsString(), p.Value)
			}
		}
	}
	// Unordered output:
	// tollgate.decisions{rule=per-user, result=allowed} 2
	// tollgate.decisions{rule=per-user, result=limited} 1
}
