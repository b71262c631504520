//go:build race

package policy

// The race detector makes sync.Pool drop items, so allocation budgets do
// not hold under it.
const raceEnabled = true
