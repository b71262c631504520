// Package peers compares tollgate with other Go rate limiters on the same
// scenarios: one hot key and 100,000 keys in memory, and one and four limits
// per decision on Redis. It is a module of its own, so that tollgate's users
// never download the limiters it compares with; its benchmarks are in
// peers_test.go:
//
//	cd benchmarks/peers && go test -run='^$' -bench=. -benchmem -count=5
package peers
