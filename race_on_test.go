//go:build race

package netpoll

// raceEnabled reports that the race detector is on: sync.Pool then drops
// items at random, so allocation counts mean nothing, and code runs several
// times slower.
const raceEnabled = true
