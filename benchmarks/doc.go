// Package benchmarks is tollgate's benchmark suite: every performance budget
// the issues set, each measured next to its baseline in the same run.
//
// The benchmarks live in this package's _test.go files; [Budgets] names,
// for each budget, the benchmark, its baseline and the bound. The report
// command runs them and checks the bounds:
//
//	go run ./benchmarks/report            # the full run (about 10 minutes)
//	go run ./benchmarks/report -short     # the CI smoke run
//	go run ./benchmarks/report -run Redis -count 5
//
// The benchmarks can also be run directly, for benchstat:
//
//	go test -run='^$' -bench=. -benchmem -count=10 ./benchmarks
//
// Comparisons with other Go rate limiters live in the nested module
// benchmarks/peers, so that users of tollgate never download them.
package benchmarks
