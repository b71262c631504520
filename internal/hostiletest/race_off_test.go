//go:build !race

package hostiletest

const raceEnabled = false
